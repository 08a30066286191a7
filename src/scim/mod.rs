//! The SCIM 2.0 service provider (RFC 7643/7644) behind `/scim/v2`: a
//! directory of users and groups that an identity provider (Pocket ID)
//! pushes, kept in the session store so every replica sees it, and what it
//! does to sessions — a user made inactive or deleted loses every session
//! and cannot sign in again until active; a user's SCIM groups replace its
//! sign-in's groups from the next request.
//!
//! `resource` (the model and its JSON), `filter` (list filters), `patch`
//! (PATCH operations), `discovery` (what the provider says about itself),
//! `directory` (the operations and their effects), `overlay` (what the
//! request path reads). The HTTP side (`http::scim`) only extracts and
//! answers; nothing here knows actix.

mod directory;
mod discovery;
mod error;
mod filter;
mod overlay;
mod patch;
mod resource;

use std::sync::Arc;

pub use directory::{Answer, Deprovisioned, ListQuery, Scope};
pub use discovery::{all, project, resource_types, schemas, service_provider_config};
pub use error::ScimError;
pub use overlay::group_names;
pub use resource::ERROR_SCHEMA;

use crate::policy::Identity;
use crate::session::store::StoreError;
use crate::session::{Current, SessionKeys, Sessions};
use overlay::{Overlay, Snapshot};

/// The directory service: one per process, kept across reloads
/// ([`Directory::reconfigured`] takes the new secret).
pub struct Directory {
    keys: SessionKeys,
    shared: Arc<Shared>,
}

/// What outlives a reload.
#[derive(Default)]
struct Shared {
    overlay: Overlay,
    /// One SCIM write at a time in this process.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

impl Directory {
    /// A directory sealing with `keys` (the session secret).
    pub fn new(keys: SessionKeys) -> Directory {
        Directory {
            keys,
            shared: Arc::default(),
        }
    }

    /// The same directory under a reloaded secret.
    pub fn reconfigured(&self, keys: SessionKeys) -> Directory {
        Directory {
            keys,
            shared: self.shared.clone(),
        }
    }

    /// Read the directory again when the store's change counter moved
    /// (`force`: check now, else at most once a second).
    async fn follow(&self, sessions: &Sessions, now: u64, force: bool) -> Result<(), StoreError> {
        let Some(store) = sessions.store() else {
            return Ok(());
        };
        let Some(_checking) = self.shared.overlay.due(now, force) else {
            return Ok(());
        };
        let generation = store.directory_generation().await?;
        if self.shared.overlay.is_at(generation) {
            return Ok(());
        }
        let state = directory::load(store, &self.keys)
            .await
            .map_err(|e| match e {
                ScimError::Store(e) => e,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        self.shared
            .overlay
            .install(Snapshot::of(&state.users, &state.groups, Some(generation)));
        Ok(())
    }

    /// Whether SCIM keeps this person inactive: their sign-in is refused.
    pub async fn refuses(
        &self,
        sessions: &Sessions,
        identity: &Identity,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.follow(sessions, now, true).await?;
        Ok(self
            .shared
            .overlay
            .current()
            .find(identity)
            .is_some_and(|k| !k.active))
    }
}

/// `check`'s line about `[scim]`.
pub fn summary(rt: &crate::config::Runtime) -> String {
    match &rt.scim {
        Some(s) => format!(
            "scim: on at {}/scim/v2 (bearer token from {}); users made inactive or deleted lose every session",
            rt.public_url.origin,
            s.token_file.display()
        ),
        None => "scim: off (set [scim] token_file to receive users and groups)".into(),
    }
}

/// The session as SCIM has it: none for an inactive user, without the
/// groups SCIM took the user out of for a user it knows, unchanged
/// otherwise (and without `[scim]`).
pub async fn adjust(
    directory: Option<&Directory>,
    sessions: &Sessions,
    current: Option<Current>,
    now: u64,
) -> Option<Current> {
    let Some(directory) = directory else {
        return current;
    };
    let mut current = current?;
    if let Err(e) = directory.follow(sessions, now, false).await {
        tracing::warn!(target: "pocketgate::scim", error = %e, "the SCIM directory could not be read again; the last one read stays in force");
    }
    let snapshot = directory.shared.overlay.current();
    let Some(known) = snapshot.find(&current.session.identity) else {
        return Some(current);
    };
    if !known.active {
        tracing::info!(target: "pocketgate::scim", user = %current.session.identity.user, "SCIM keeps this user inactive: the session is refused");
        return None;
    }
    if let Some(identity) = known.regroup(&current.session.identity, snapshot.groups()) {
        current.session.identity = Arc::new(identity);
    }
    Some(current)
}

#[cfg(test)]
mod tests;
