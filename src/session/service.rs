//! Sessions as the HTTP layer sees them: find the request's session, start
//! one at login, end it at logout, revoke by user, subject or provider
//! session. One type over both kinds: stateless sealed cookies, or a sealed
//! random id in the cookie and the session in a [`Store`] behind a small
//! in-process cache.
//!
//! The cache keeps a record at most [`CACHE_TTL`]: a session revoked on
//! another replica, or by `pocketgate sessions revoke`, is refused everywhere
//! within that time. It never extends a session: expiry is checked on every
//! read. It holds records already opened: the signed-in path opens a sealed
//! record once per cache lifetime, not once per request.
//!
//! A stored record that does not open (edited, copied under another key,
//! sealed by a secret no longer configured, garbage) is no session: it is
//! removed, counted and logged once, and the browser goes to login.

use std::sync::Arc;
use std::time::Duration;

use cookie::Cookie;
use moka::sync::Cache;

use super::store::{Filter, Record, Store, StoreError, StoreKey};
use super::{
    cookies, logout_hint_cookie_name, CookieSettings, LogoutHint, Purpose, Refused, Session,
    SessionKeys, TooLarge,
};
use crate::policy::Identity;

/// How long a record read from the store is trusted without asking again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most records cached at once.
const CACHE_CAPACITY: u64 = 100_000;
/// Bytes of session id.
const ID_LEN: usize = 32;

/// Why sessions ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    Logout,
    RefreshInvalid,
    BackChannel,
    Revoke,
    Expired,
}

impl EndReason {
    /// Every reason, in label order.
    pub const ALL: [EndReason; 5] = [
        EndReason::Logout,
        EndReason::RefreshInvalid,
        EndReason::BackChannel,
        EndReason::Revoke,
        EndReason::Expired,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::RefreshInvalid => "refresh_invalid",
            EndReason::BackChannel => "back_channel",
            EndReason::Revoke => "revoke",
            EndReason::Expired => "expired",
        }
    }
}

/// What happened to one refresh attempt, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshOutcome {
    /// The provider confirmed the identity unchanged.
    Unchanged,
    /// Groups, e-mail or name changed and were taken over.
    Changed,
    /// `invalid_grant`: the session ended.
    Invalid,
    /// The provider could not be reached or failed: tried again later.
    Unavailable,
}

impl RefreshOutcome {
    /// Every outcome, in label order.
    pub const ALL: [RefreshOutcome; 4] = [
        RefreshOutcome::Unchanged,
        RefreshOutcome::Changed,
        RefreshOutcome::Invalid,
        RefreshOutcome::Unavailable,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Unchanged => "unchanged",
            RefreshOutcome::Changed => "changed",
            RefreshOutcome::Invalid => "invalid",
            RefreshOutcome::Unavailable => "unavailable",
        }
    }
}

/// Who wants to know what sessions do (the metrics). Implemented above this
/// module, so that it stays free of any metrics library.
pub trait SessionEvents: Send + Sync {
    /// A session started.
    fn created(&self);
    /// `count` sessions ended.
    fn ended(&self, reason: EndReason, count: usize);
    /// A lookup was answered from the cache (`hit`) or had to ask the store.
    fn cache(&self, hit: bool);
    /// One store call took `took`; `ok` unless it failed.
    fn store_call(&self, took: Duration, ok: bool);
    /// One refresh attempt ended so.
    fn refresh(&self, outcome: RefreshOutcome);
    /// A stored record did not open and was removed.
    fn record_rejected(&self);
}

/// Events nobody listens to.
#[derive(Debug, Default)]
pub struct NoEvents;

impl SessionEvents for NoEvents {
    fn created(&self) {}
    fn ended(&self, _: EndReason, _: usize) {}
    fn cache(&self, _: bool) {}
    fn store_call(&self, _: Duration, _: bool) {}
    fn refresh(&self, _: RefreshOutcome) {}
    fn record_rejected(&self) {}
}

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
    pub session: Session,
    /// The store key (none for stateless cookies).
    pub key: Option<StoreKey>,
    /// The provider's session id.
    pub sid: Option<String>,
    /// The identity is older than `refresh_interval` and can be refreshed.
    pub refresh_due: bool,
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
    Store {
        store: Arc<Store>,
        cache: Cache<StoreKey, Arc<Record>>,
    },
}

/// The session service.
pub struct Sessions {
    keys: SessionKeys,
    cookie: CookieSettings,
    backend: Backend,
    refresh_interval: Option<Duration>,
    events: Arc<dyn SessionEvents>,
    /// Sessions whose refresh runs in this process now (shared across reloads).
    refreshing: Arc<std::sync::Mutex<std::collections::HashSet<StoreKey>>>,
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
        let backend = match store {
            None => Backend::Cookie,
            Some(store) => Backend::Store {
                store: Arc::new(store),
                cache: Cache::builder()
                    .max_capacity(CACHE_CAPACITY)
                    .time_to_live(CACHE_TTL)
                    .build(),
            },
        };
        // Stateless cookies keep no refresh token: nothing to refresh.
        let refresh_interval = refresh_interval.filter(|_| !matches!(backend, Backend::Cookie));
        Sessions {
            keys,
            cookie,
            backend,
            refresh_interval,
            events,
            refreshing: Arc::new(std::sync::Mutex::new(std::collections::HashSet::new())),
        }
    }

    /// The store, if sessions are kept on the server.
    /// The same store, cache and refresh bookkeeping under new keys and
    /// cookie settings (a reloaded configuration: a rotated secret, a new
    /// lifetime). The store itself is only chosen at start.
    pub fn reconfigured(
        &self,
        keys: SessionKeys,
        cookie: CookieSettings,
        refresh_interval: Option<Duration>,
    ) -> Sessions {
        Sessions {
            keys,
            cookie,
            backend: self.backend.clone(),
            refresh_interval: refresh_interval.filter(|_| !matches!(self.backend, Backend::Cookie)),
            events: self.events.clone(),
            refreshing: self.refreshing.clone(),
        }
    }

    pub fn store(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Cookie => None,
            Backend::Store { store, .. } => Some(store),
        }
    }

    /// The session the request's cookies carry (`cookies`: the session
    /// family only, as `is_family` selects), if it opens and lives.
    pub async fn current(
        &self,
        cookies: &[(&str, &str)],
        now: u64,
    ) -> Result<Option<Current>, StoreError> {
        let name = self.cookie.name.as_str();
        match &self.backend {
            Backend::Cookie => Ok(self.open_cookie(cookies, now).map(|session| Current {
                session,
                key: None,
                sid: None,
                refresh_due: false,
            })),
            Backend::Store { store, cache } => {
                // Several cookies of the name can arrive (a stale host-only one
                // next to the cookie_domain one): the first whose session lives counts.
                for (_, value) in cookies.iter().filter(|(n, _)| *n == name) {
                    let Some(key) = self.open_id(value) else {
                        continue;
                    };
                    let record = match cache.get(&key) {
                        Some(r) => {
                            self.events.cache(true);
                            Some(r)
                        }
                        None => {
                            self.events.cache(false);
                            let loaded = self.load(store, &key, now).await?.map(Arc::new);
                            if let Some(r) = &loaded {
                                cache.insert(key.clone(), r.clone());
                            }
                            loaded
                        }
                    };
                    if let Some(r) = record.filter(|r| now < r.expires) {
                        return Ok(Some(Current {
                            refresh_due: self.refresh_due(&r, now),
                            session: Session {
                                identity: r.identity.clone(),
                                issued: r.issued,
                                expires: r.expires,
                            },
                            sid: r.sid.clone(),
                            key: Some(key),
                        }));
                    }
                    tracing::debug!(
                        cookie = name,
                        "session id not in the store (ended or expired)"
                    );
                }
                Ok(None)
            }
        }
    }

    /// The opened record under `key` from the store (a cache miss); `None`
    /// when there is none, when it has ended (removed now rather than at the
    /// next purge), or when it does not open (removed, counted, logged once).
    async fn load(
        &self,
        store: &Store,
        key: &StoreKey,
        now: u64,
    ) -> Result<Option<Record>, StoreError> {
        let started = std::time::Instant::now();
        let got = store.get(key).await;
        self.events.store_call(
            started.elapsed(),
            !matches!(got, Err(StoreError::Unavailable { .. })),
        );
        let opened = match got {
            Ok(None) => return Ok(None),
            Ok(Some(stored)) => stored.open(&self.keys, key).map_err(|why| why.to_string()),
            Err(StoreError::Corrupt(why)) => Err(why),
            Err(e) => return Err(e),
        };
        match opened {
            Err(why) => {
                self.reject(store, key, &why).await?;
                Ok(None)
            }
            Ok(r) if now >= r.expires => {
                if store.remove(key).await?.is_some() {
                    self.events.ended(EndReason::Expired, 1);
                }
                Ok(None)
            }
            Ok(r) => Ok(Some(r)),
        }
    }

    /// A stored record that does not open is no session: remove it (so it
    /// is logged and counted once, not on every request) and say why.
    async fn reject(&self, store: &Store, key: &StoreKey, why: &str) -> Result<(), StoreError> {
        match store.remove(key).await {
            // Removed, or what was removed does not parse either.
            Ok(_) | Err(StoreError::Corrupt(_)) => {}
            Err(e) => return Err(e),
        }
        self.events.record_rejected();
        tracing::warn!(
            session = key.short(),
            %why,
            "a stored session record does not open; removed, the browser signs in again"
        );
        Ok(())
    }

    fn refresh_due(&self, r: &Record, now: u64) -> bool {
        r.refresh_token.is_some()
            && now >= r.retry_at
            && self
                .refresh_interval
                .is_some_and(|i| now >= r.refreshed.saturating_add(i.as_secs()))
    }

    /// Claim the refresh of `key` in this process; false when one is under
    /// way. Release with [`Sessions::refresh_done`].
    pub fn refresh_claim(&self, key: &StoreKey) -> bool {
        self.refreshing
            .lock()
            .map(|mut set| set.insert(key.clone()))
            .unwrap_or(false)
    }

    /// Release a claim taken by [`Sessions::refresh_claim`].
    pub fn refresh_done(&self, key: &StoreKey) {
        if let Ok(mut set) = self.refreshing.lock() {
            set.remove(key);
        }
    }

    /// The record as the store has it now (not the cache), with its refresh
    /// token unsealed, when a refresh is still due.
    pub async fn due_for_refresh(
        &self,
        key: &StoreKey,
        now: u64,
    ) -> Result<Option<(Record, String)>, StoreError> {
        let Some(store) = self.store() else {
            return Ok(None);
        };
        let Some(record) = store
            .get(key)
            .await?
            .and_then(|stored| stored.open(&self.keys, key).ok())
        else {
            return Ok(None);
        };
        if now >= record.expires || !self.refresh_due(&record, now) {
            return Ok(None);
        }
        let token = record.refresh_token.as_deref().and_then(|t| self.unseal(t));
        Ok(token.map(|t| (record, t)))
    }

    /// Take over what a refresh returned: the identity now, the rotated
    /// tokens. Says whether the identity changed.
    pub async fn refreshed(
        &self,
        key: &StoreKey,
        mut record: Record,
        identity: Identity,
        refresh_token: Option<String>,
        id_token: Option<String>,
        now: u64,
    ) -> Result<RefreshOutcome, StoreError> {
        let outcome = if record.identity == identity {
            RefreshOutcome::Unchanged
        } else {
            RefreshOutcome::Changed
        };
        record.identity = identity;
        record.refreshed = now;
        record.refresh_failures = 0;
        record.retry_at = 0;
        let seal = |t: String| self.keys.seal(Purpose::StoredToken, t.as_bytes());
        if let Some(t) = refresh_token {
            record.refresh_token = Some(seal(t));
        }
        if let Some(t) = id_token {
            record.id_token = Some(seal(t));
        }
        self.save_if_live(key, record).await?;
        self.events.refresh(outcome);
        Ok(outcome)
    }

    /// The provider could not answer: try again after a backoff (30 s,
    /// doubling, at most `refresh_interval`); the session stays as it is.
    pub async fn refresh_failed(
        &self,
        key: &StoreKey,
        mut record: Record,
        now: u64,
    ) -> Result<(), StoreError> {
        record.refresh_failures = record.refresh_failures.saturating_add(1);
        let backoff = 30u64.saturating_mul(1 << record.refresh_failures.min(10).saturating_sub(1));
        let cap = self
            .refresh_interval
            .map_or(backoff, |i| i.as_secs().max(5));
        record.retry_at = now.saturating_add(backoff.min(cap));
        self.save_if_live(key, record).await?;
        self.events.refresh(RefreshOutcome::Unavailable);
        Ok(())
    }

    /// The provider refused the refresh token: the session ends.
    pub async fn refresh_refused(&self, key: &StoreKey) -> Result<(), StoreError> {
        if let Some(store) = self.store() {
            if let Backend::Store { cache, .. } = &self.backend {
                cache.invalidate(key);
            }
            if store.remove(key).await?.is_some() {
                self.events.ended(EndReason::RefreshInvalid, 1);
            }
        }
        self.events.refresh(RefreshOutcome::Invalid);
        Ok(())
    }

    /// Write a record back unless the session ended meanwhile, and let this
    /// process see it at once.
    async fn save_if_live(&self, key: &StoreKey, record: Record) -> Result<(), StoreError> {
        if let Backend::Store { store, cache } = &self.backend {
            if store.update(key, &record.seal(&self.keys, key)).await? {
                cache.insert(key.clone(), Arc::new(record));
            } else {
                cache.invalidate(key);
            }
        }
        Ok(())
    }

    /// Stateless: the first cookie of the exact name that opens, else the chunks joined.
    fn open_cookie(&self, cookies: &[(&str, &str)], now: u64) -> Option<Session> {
        let name = self.cookie.name.as_str();
        let open = |value: &str| {
            Session::open(&self.keys, value, now)
                .map_err(|why| tracing::debug!(cookie = name, %why, "session cookie refused"))
                .ok()
        };
        if let Some(s) = cookies
            .iter()
            .filter(|(n, _)| *n == name)
            .find_map(|(_, v)| open(v))
        {
            return Some(s);
        }
        let chunks: Vec<(&str, &str)> = cookies
            .iter()
            .filter(|(n, _)| *n != name)
            .copied()
            .collect();
        open(&cookies::read_cookie_value(name, &chunks)?)
    }

    /// The store key behind a sealed session id.
    fn open_id(&self, sealed: &str) -> Option<StoreKey> {
        match self.keys.open(Purpose::SessionId, sealed) {
            Ok(id) if id.len() == ID_LEN => Some(StoreKey::of(&id)),
            Ok(_) => {
                tracing::debug!(why = %Refused::NotThisKind, "session cookie refused");
                None
            }
            Err(why) => {
                tracing::debug!(%why, "session cookie refused");
                None
            }
        }
    }

    /// Start a session at login; the cookies to set, with the attributes of
    /// `cookie` (the login domain's `Domain` and `Secure`; the name is the
    /// service's). `present`: the names of our cookies the browser sent
    /// (stale chunks get removal cookies).
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, every argument named there"
    )]
    pub async fn create(
        &self,
        cookie: &CookieSettings,
        identity: Identity,
        tokens: Tokens,
        context: LoginContext,
        lifetime: Duration,
        now: u64,
        present: &[&str],
    ) -> Result<Vec<Cookie<'static>>, CreateError> {
        let expires = now.saturating_add(lifetime.as_secs());
        let hint_name = logout_hint_cookie_name(&self.cookie.name);
        match &self.backend {
            Backend::Cookie => {
                let session = Session {
                    identity,
                    issued: now,
                    expires,
                };
                let mut out = cookies::write_cookies(cookie, &session.seal(&self.keys), present)?;
                // The ID token rides in its own cookie, read only by /logout;
                // when it does not fit, logout goes without id_token_hint.
                if let Some(id_token) = tokens.id_token {
                    let hint = LogoutHint {
                        id_token,
                        subject: session.identity.subject.clone(),
                        expires,
                    }
                    .seal(&self.keys);
                    if hint.len() <= cookies::CHUNK_SIZE {
                        out.push(cookies::cookie(cookie, hint_name, hint));
                    }
                }
                Ok(out)
            }
            Backend::Store { store, cache } => {
                let mut id = [0u8; ID_LEN];
                getrandom::getrandom(&mut id).map_err(CreateError::Random)?;
                let key = StoreKey::of(&id);
                let seal = |t: String| self.keys.seal(Purpose::StoredToken, t.as_bytes());
                let record = Record {
                    identity,
                    issued: now,
                    expires,
                    refreshed: now,
                    refresh_token: tokens.refresh_token.map(seal),
                    id_token: tokens.id_token.map(seal),
                    sid: tokens.sid,
                    client: context.client,
                    user_agent: context.user_agent.map(|ua| truncate(ua, 200)),
                    refresh_failures: 0,
                    retry_at: 0,
                };
                store.put(&key, &record.seal(&self.keys, &key)).await?;
                cache.insert(key, Arc::new(record));
                self.events.created();
                let sealed = self.keys.seal(Purpose::SessionId, &id);
                let mut out = cookies::write_cookies(cookie, &sealed, present)?;
                if present.contains(&hint_name.as_str()) {
                    out.push(cookies::removal(cookie, hint_name));
                }
                Ok(out)
            }
        }
    }

    /// End the request's session (logout). For stateless cookies only the
    /// browser's copy goes; `hint` is the logout-hint cookie's value.
    pub async fn end(
        &self,
        current: Option<&Current>,
        hint: Option<&str>,
        now: u64,
    ) -> Result<Ended, StoreError> {
        let Some(current) = current else {
            return Ok(Ended::default());
        };
        let user = Some(current.session.identity.user.clone());
        match (&self.backend, &current.key) {
            (Backend::Store { store, cache }, Some(key)) => {
                cache.invalidate(key);
                let record = store.remove(key).await?;
                if record.is_some() {
                    self.events.ended(EndReason::Logout, 1);
                }
                Ok(Ended {
                    id_token: record
                        .and_then(|r| r.open(&self.keys, key).ok())
                        .and_then(|r| r.id_token)
                        .and_then(|t| self.unseal(&t)),
                    user,
                })
            }
            _ => Ok(Ended {
                id_token: hint
                    .and_then(|h| LogoutHint::open(&self.keys, h, now).ok())
                    .filter(|h| h.subject == current.session.identity.subject)
                    .map(|h| h.id_token),
                user,
            }),
        }
    }

    /// End every session matching `filter` (back-channel logout, the CLI);
    /// how many. Nothing to do for stateless cookies.
    pub async fn revoke(&self, filter: &Filter, reason: EndReason) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Cookie => Ok(0),
            Backend::Store { store, cache } => {
                let keys = store.remove_matching(filter).await?;
                for k in &keys {
                    cache.invalidate(k);
                }
                self.events.ended(reason, keys.len());
                Ok(keys.len())
            }
        }
    }

    /// The live sessions matching `filter` with their records opened, oldest
    /// first, and how many records did not open.
    pub async fn list(
        &self,
        filter: &Filter,
        now: u64,
    ) -> Result<(Vec<(StoreKey, Record)>, usize), StoreError> {
        match self.store() {
            None => Ok((Vec::new(), 0)),
            Some(store) => Ok(super::store::open_listed(
                &self.keys,
                store.list(filter, now).await?,
            )),
        }
    }

    /// Record a logout token's `jti` until `until`; false when it was seen
    /// before (a replay). Without a store there is nothing to record.
    pub async fn claim_jti(&self, jti: &str, until: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Cookie => Ok(true),
            Backend::Store { store, .. } => store.claim_jti(jti, until).await,
        }
    }

    /// The cookies that clear every cookie of ours the browser sent, with
    /// the attributes of `cookie` (the login domain's `Domain`).
    pub fn clearing(&self, cookie: &CookieSettings, present: &[&str]) -> Vec<Cookie<'static>> {
        let mut names: Vec<&str> = present.to_vec();
        if names.is_empty() {
            // Nothing visible to clear; still expire the main name in case the browser scoped it elsewhere.
            names.push(cookie.name.as_str());
        }
        let mut out = cookies::clear_cookies(cookie, &names);
        let hint = logout_hint_cookie_name(&cookie.name);
        out.push(cookies::removal(cookie, hint));
        out
    }

    /// A token sealed into a record.
    fn unseal(&self, sealed: &str) -> Option<String> {
        let bytes = self.keys.open(Purpose::StoredToken, sealed).ok()?;
        String::from_utf8(bytes).ok()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
