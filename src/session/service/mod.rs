//! Sessions as the HTTP layer sees them: find the request's session, start
//! one at login, end it at logout, revoke by user, subject or provider
//! session, refresh its identity. One type, [`Sessions`], over both kinds:
//! stateless sealed cookies, or a sealed random id in the cookie and the
//! session in a [`Store`] behind a small in-process cache.
//!
//! This file is the facade and the request's lookup; the work is split by
//! job: `codec` (what goes into the cookies and comes back), `lookup` (the
//! store-backed lookup and its cache), `activity` (last uses, in memory and
//! flushed), `shape` (idle timeout and the host's limits), `lifecycle`
//! (start, end, revoke, refresh), `events` (what the metrics hear).

mod activity;
mod codec;
mod events;
mod lifecycle;
mod lookup;
mod renew;
mod shape;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::store::{Store, StoreError, StoreKey};
use super::{CookieSettings, SessionKeys, TooLarge};
use crate::config::SessionShape;
use crate::policy::Identity;
use lookup::Lookup;

pub use activity::{flush_interval, MAX_TRACKED};
pub use events::{EndReason, NoEvents, RefreshOutcome, SessionEvents};
pub use lookup::CACHE_TTL;

/// The tokens a login (or refresh) returned.
#[derive(Default)]
pub struct Tokens {
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    /// The provider's session id (`sid`).
    pub sid: Option<String>,
}

/// Where the browser signed in from (shown by `pocketgate sessions list`).
#[derive(Debug, Default, Clone)]
pub struct LoginContext {
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// The session a request carries.
#[derive(Debug, Clone)]
pub struct Current {
    pub session: SignedIn,
    /// The store key (none for stateless cookies).
    pub key: Option<StoreKey>,
    /// The provider's session id.
    pub sid: Option<Arc<str>>,
    /// The identity is older than `refresh_interval` and can be refreshed.
    pub refresh_due: bool,
}

/// Who is signed in, and for how long. The identity is shared, not copied:
/// with a store it is the cache's own, so a signed-in request costs no copy
/// of the user's groups and claims.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Arc<Identity>,
    /// When the session was created, in unix seconds.
    pub issued: u64,
    /// When the session ends, in unix seconds.
    pub expires: u64,
}

/// What ending a session leaves to do.
#[derive(Debug, Default)]
pub struct Ended {
    /// The ID token, for `id_token_hint` at the provider.
    pub id_token: Option<String>,
    /// Who it was.
    pub user: Option<String>,
}

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

#[derive(Clone)]
enum Backend {
    Cookie,
    Store(Lookup),
}

/// The session service.
pub struct Sessions {
    keys: SessionKeys,
    cookie: CookieSettings,
    backend: Backend,
    refresh_interval: Option<Duration>,
    /// `session.idle_timeout`: a session unused this long ends.
    idle_timeout: Option<Duration>,
    events: Arc<dyn SessionEvents>,
    /// Sessions whose refresh runs in this process now (shared across reloads).
    refreshing: Arc<Mutex<HashSet<StoreKey>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.store().map(|s| s.place()))
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions kept in `store`, or stateless cookies when it is `None`.
    pub fn new(
        keys: SessionKeys,
        cookie: CookieSettings,
        store: Option<Store>,
        refresh_interval: Option<Duration>,
        events: Arc<dyn SessionEvents>,
    ) -> Sessions {
        let backend = store.map_or(Backend::Cookie, |s| {
            Backend::Store(Lookup::new(s, keys.clone(), flush_interval(None)))
        });
        Sessions {
            refresh_interval: Self::refreshing_with(&backend, refresh_interval),
            idle_timeout: None,
            keys,
            cookie,
            backend,
            events,
            refreshing: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The same store, cache and refresh bookkeeping under new keys and
    /// cookie settings (a reloaded configuration: a rotated secret, a new
    /// lifetime). The store itself is only chosen at start.
    pub fn reconfigured(
        &self,
        keys: SessionKeys,
        cookie: CookieSettings,
        refresh_interval: Option<Duration>,
    ) -> Sessions {
        if let Backend::Store(lookup) = &self.backend {
            let every = lookup.activity().interval();
            lookup.activity().reconfigure(keys.clone(), every);
        }
        Sessions {
            keys,
            cookie,
            backend: self.backend.clone(),
            refresh_interval: Self::refreshing_with(&self.backend, refresh_interval),
            idle_timeout: self.idle_timeout,
            events: self.events.clone(),
            refreshing: self.refreshing.clone(),
        }
    }

    /// End sessions unused for `idle_timeout` (`session.idle_timeout`),
    /// and flush last uses often enough for `shortest`, the shortest idle
    /// timeout in force (the session's or a host's; see [`flush_interval`]).
    /// Without a store there is no last use, and the configuration refuses
    /// an idle timeout.
    pub fn with_idle_timeout(
        mut self,
        idle_timeout: Option<Duration>,
        shortest: Option<Duration>,
    ) -> Sessions {
        if let Backend::Store(lookup) = &self.backend {
            lookup
                .activity()
                .reconfigure(self.keys.clone(), flush_interval(shortest));
            self.idle_timeout = idle_timeout;
        }
        self
    }

    /// Write the last uses that moved to the store now (the background
    /// flush does this every [`flush_interval`]); how many were written.
    pub async fn flush_activity(&self, now: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Cookie => Ok(0),
            Backend::Store(lookup) => lookup.activity().flush(lookup.store(), now).await,
        }
    }

    /// Stateless cookies keep no refresh token: nothing to refresh.
    fn refreshing_with(backend: &Backend, interval: Option<Duration>) -> Option<Duration> {
        interval.filter(|_| !matches!(backend, Backend::Cookie))
    }

    /// The store, if sessions are kept on the server.
    pub fn store(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Cookie => None,
            Backend::Store(lookup) => Some(lookup.store()),
        }
    }

    /// The session the request's cookies carry (`cookies`: the session
    /// family only, as `is_family` selects), if it opens and lives.
    pub async fn current(
        &self,
        cookies: &[(&str, &str)],
        now: u64,
    ) -> Result<Option<Current>, StoreError> {
        self.current_on(cookies, now, SessionShape::default()).await
    }
}
