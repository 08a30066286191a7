//! What SCIM says about the users it knows, for the request path: a
//! snapshot of `subject → (active, groups)` read from the store, replaced
//! whole, never locked. The replica that took a SCIM call installs the new
//! snapshot at once ("from the next request"); every replica asks the
//! store's change counter at most once a second and reads the directory
//! again only when it moved, so the others follow within about a second.
//!
//! Users SCIM does not know keep their sign-in's groups; a user SCIM knows
//! gets SCIM's groups (the display names of the groups listing them); an
//! inactive user has no session at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::resource::{Group, User};
use crate::policy::Identity;

/// What SCIM says about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) active: bool,
    pub(super) groups: Vec<String>,
}

/// The directory as the request path reads it.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// The store's change counter this was read at; `None`: read it again
    /// at the next check (never read, or installed by a write here).
    generation: Option<u64>,
    /// By `externalId` (the provider's subject).
    by_subject: HashMap<String, Arc<Known>>,
    /// By `userName`, lower-cased, of users without an `externalId`.
    by_user: HashMap<String, Arc<Known>>,
}

impl Snapshot {
    /// The snapshot of `users` and `groups`, read at `generation`.
    pub(super) fn of(users: &[User], groups: &[Group], generation: Option<u64>) -> Snapshot {
        let mut by_subject = HashMap::new();
        let mut by_user = HashMap::new();
        for u in users {
            let mut names: Vec<String> = groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m.value == u.id))
                .map(|g| g.display_name.clone())
                .collect();
            names.sort();
            names.dedup();
            let known = Arc::new(Known {
                active: u.is_active(),
                groups: names,
            });
            match &u.external_id {
                Some(subject) => by_subject.insert(subject.clone(), known),
                None => by_user.insert(u.user_name.to_lowercase(), known),
            };
        }
        Snapshot {
            generation,
            by_subject,
            by_user,
        }
    }

    /// What SCIM says about `identity`: by subject, else by user name.
    pub(super) fn find(&self, identity: &Identity) -> Option<&Known> {
        if self.by_subject.is_empty() && self.by_user.is_empty() {
            return None;
        }
        self.by_subject
            .get(&identity.subject)
            .or_else(|| self.by_user.get(&identity.user.to_lowercase()))
            .map(|k| &**k)
    }
}

impl Known {
    /// The identity with SCIM's groups, when they differ from its own.
    pub(super) fn regroup(&self, identity: &Identity) -> Option<Identity> {
        let same = self.groups.len() == identity.groups.len()
            && self.groups.iter().all(|g| identity.groups.contains(g));
        (!same).then(|| Identity {
            groups: self.groups.clone(),
            ..identity.clone()
        })
    }
}

/// The snapshot in force and when the store was last asked.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    snapshot: ArcSwap<Snapshot>,
    /// The unix second of the last check.
    checked: AtomicU64,
    /// A check is under way (one request at a time pays for it).
    checking: AtomicBool,
}

/// Clears `checking` however the check ends (a dropped request included).
struct Checking<'a>(&'a AtomicBool);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Overlay {
    pub(super) fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub(super) fn install(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Whether this request should ask the store now (`force`: whatever the
    /// time), and if so the guard that lets the next one ask.
    pub(super) fn due(&self, now: u64, force: bool) -> Option<impl Drop + '_> {
        let stale = self.snapshot.load().generation.is_none();
        if !force && !stale && self.checked.load(Ordering::Acquire) >= now {
            return None;
        }
        if self.checking.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.checked.store(now, Ordering::Release);
        Some(Checking(&self.checking))
    }

    /// Whether the snapshot was read at `generation`.
    pub(super) fn is_at(&self, generation: u64) -> bool {
        self.snapshot.load().generation == Some(generation)
    }
}
