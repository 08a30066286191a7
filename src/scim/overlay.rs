//! What SCIM says about the users it knows, for the request path: a
//! snapshot of `subject → (active, groups)` read from the store, replaced
//! whole, never locked. The replica that took a SCIM call installs the new
//! snapshot at once ("from the next request"); every replica asks the
//! store's change counter at most once a second and reads the directory
//! again only when it moved, so the others follow within about a second.
//!
//! Users SCIM does not know keep their sign-in's groups; an inactive user
//! has no session at all. A user SCIM knows loses, from the next request,
//! every group of their sign-in that the directory knows and no longer
//! lists them in. SCIM never adds a group: Pocket ID sends a group's
//! friendly name (`displayName` "Grafana Admins") while its tokens carry the
//! group's name (`grafana_admins`), so a group is known by either its
//! display name or the name Pocket ID derives from it by default (lower
//! case, every character outside `a-z0-9_` an underscore). Taking a group
//! away on such a match can only narrow access; granting one on it could
//! hand out another group whose name happens to match. Groups joined reach
//! the session with its next refresh.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::resource::{Group, User};
use crate::policy::Identity;

/// What SCIM says about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) active: bool,
    /// The names the groups listing this user go by (see [`group_names`]).
    pub(super) groups: Vec<String>,
}

/// The names a SCIM group with `display_name` goes by in a token's groups
/// claim: the display name itself, and the name Pocket ID derives from it
/// by default (its group form: lower case, every character outside
/// `a-z0-9_` replaced by `_`).
pub fn group_names(display_name: &str) -> [String; 2] {
    let derived = display_name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    [display_name.to_owned(), derived]
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
    /// Every name a group of the directory goes by ([`group_names`]).
    groups: HashSet<String>,
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
                .flat_map(|g| group_names(&g.display_name))
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
            groups: groups
                .iter()
                .flat_map(|g| group_names(&g.display_name))
                .collect(),
        }
    }

    /// Every name a group of the directory goes by.
    pub(super) fn groups(&self) -> &HashSet<String> {
        &self.groups
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
    /// The identity without the groups the directory (`known`: every name
    /// its groups go by) knows and no longer lists this user in; `None`
    /// when nothing is taken away.
    pub(super) fn regroup(&self, identity: &Identity, known: &HashSet<String>) -> Option<Identity> {
        let kept = |g: &&String| !known.contains(*g) || self.groups.contains(*g);
        if identity.groups.iter().all(|g| kept(&g)) {
            return None;
        }
        Some(Identity {
            groups: identity.groups.iter().filter(kept).cloned().collect(),
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
