//! The store-backed lookup: the session under a store key, from a small
//! in-process cache, else from the [`Store`] (opened, checked, cached).
//!
//! The cache keeps an entry at most [`CACHE_TTL`]: a session revoked on
//! another replica, or by `pocketgate sessions revoke`, is refused everywhere
//! within that time. It never extends a session: expiry is checked on every
//! read. It holds records already opened, with the identity behind an
//! [`Arc`]: the signed-in path opens a sealed record once per cache
//! lifetime, and hands out the identity without copying it.
//!
//! The cache's entry also carries the session's last use as the store had
//! it; with this process's own ([`Activity`]) it says how long the session
//! has been unused.
//!
//! Concurrent misses of one session wait for one store read: a browser
//! opening a page sends its requests in parallel, and when the cached entry
//! ends they all miss at once. Without this, each went to the store (and, for
//! the embedded store, queued on its one connection).
//!
//! A stored record that does not open (edited, copied under another key,
//! sealed by a secret no longer configured, garbage) is no session: it is
//! removed, counted and logged once, and the browser goes to login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use super::super::store::{Record, Store, StoreError, StoreKey};
use super::super::SessionKeys;
use super::activity::{self, Activity, Use};
use super::events::{EndReason, SessionEvents};
use crate::policy::Identity;

/// How long a record read from the store is trusted without asking again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most records cached at once.
const CACHE_CAPACITY: u64 = 100_000;

/// When a session's identity is next re-checked with the provider.
#[derive(Debug, Clone, Copy)]
pub(super) struct RefreshClock {
    /// The record keeps a refresh token.
    refreshable: bool,
    /// The last successful check.
    refreshed: u64,
    /// Not before this (a backoff after the provider failed).
    retry_at: u64,
}

impl RefreshClock {
    pub(super) fn of(record: &Record) -> RefreshClock {
        RefreshClock {
            refreshable: record.refresh_token.is_some(),
            refreshed: record.refreshed,
            retry_at: record.retry_at,
        }
    }

    /// Whether a refresh is due at `now` every `interval` (never without one).
    pub(super) fn due(self, interval: Option<Duration>, now: u64) -> bool {
        self.refreshable
            && now >= self.retry_at
            && interval.is_some_and(|i| now >= self.refreshed.saturating_add(i.as_secs()))
    }
}

/// What the cache keeps of an opened record: what a signed-in request
/// needs, shared. The tokens stay in the store.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) identity: Arc<Identity>,
    pub(super) issued: u64,
    pub(super) expires: u64,
    pub(super) sid: Option<Arc<str>>,
    pub(super) refresh: RefreshClock,
    /// The last use the store had recorded when the entry was read (0: none).
    pub(super) stored_use: u64,
    /// This process's last use of the session, shared with [`Activity`].
    pub(super) used: Arc<Use>,
}

impl Entry {
    /// When the session was last used: the later of this process's use,
    /// the stored one, and its sign-in.
    pub(super) fn last_used(&self) -> u64 {
        self.used.last().max(self.stored_use).max(self.issued)
    }

    /// The entry of an opened record (its identity moved, not copied).
    fn of(record: Record, stored_use: u64, used: Arc<Use>) -> Entry {
        Entry {
            used,
            refresh: RefreshClock::of(&record),
            identity: Arc::new(record.identity),
            issued: record.issued,
            expires: record.expires,
            sid: record.sid.map(Arc::from),
            stored_use,
        }
    }
}

/// What one store read found for a key: the entry, or no live session.
type Loaded = OnceCell<Option<Arc<Entry>>>;

/// A store, the cache in front of it, the store reads under way, and the
/// sessions' last uses. Cloning shares them.
#[derive(Clone)]
pub(super) struct Lookup {
    store: Arc<Store>,
    cache: Cache<StoreKey, Arc<Entry>>,
    /// The store reads under way, by key: a miss joins the read of its key
    /// if there is one. At most one entry per request in flight; each is
    /// removed by the last request that waited on it (see [`Joined`]).
    loading: Arc<Mutex<HashMap<StoreKey, Arc<Loaded>>>>,
    activity: Arc<Activity>,
}

/// A request's part in the store read of `key`; dropping it (done, or the
/// request went away) removes the read from the map once nobody else
/// waits on it, so abandoned reads do not pile up.
struct Joined<'a> {
    loading: &'a Mutex<HashMap<StoreKey, Arc<Loaded>>>,
    key: &'a StoreKey,
    cell: Arc<Loaded>,
}

impl<'a> Joined<'a> {
    fn join(loading: &'a Mutex<HashMap<StoreKey, Arc<Loaded>>>, key: &'a StoreKey) -> Self {
        let cell = match loading.lock() {
            Ok(mut map) => {
                let cell = map.entry(key.clone()).or_default();
                // A read already answered is not joined: what it found may
                // predate the miss (a revocation just forgot the key).
                if cell.initialized() {
                    *cell = Arc::default();
                }
                cell.clone()
            }
            // A poisoned map only costs the sharing: read alone.
            Err(_) => Arc::default(),
        };
        Joined { loading, key, cell }
    }
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.loading.lock() {
            let ours = map
                .get(self.key)
                .is_some_and(|c| Arc::ptr_eq(c, &self.cell));
            // The map's reference and this one: nobody else waits on it.
            if ours && (self.cell.initialized() || Arc::strong_count(&self.cell) == 2) {
                map.remove(self.key);
            }
        }
    }
}

impl Lookup {
    /// Over `store`, flushing last uses sealed with `keys` every `flush`.
    pub(super) fn new(store: Store, keys: SessionKeys, flush: Duration) -> Lookup {
        let lookup = Lookup {
            store: Arc::new(store),
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(CACHE_TTL)
                .build(),
            loading: Arc::default(),
            activity: Arc::new(Activity::new(keys, flush)),
        };
        activity::spawn_flusher(
            Arc::downgrade(&lookup.activity),
            Arc::downgrade(&lookup.store),
        );
        lookup
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The live session under `key`: from the cache, else from the store
    /// (and then cached). `None` when there is none or it has ended.
    pub(super) async fn find(
        &self,
        keys: &SessionKeys,
        events: &dyn SessionEvents,
        key: &StoreKey,
        now: u64,
    ) -> Result<Option<Arc<Entry>>, StoreError> {
        let entry = match self.cache.get(key) {
            Some(entry) => {
                events.cache(true);
                Some(entry)
            }
            None => {
                events.cache(false);
                // The first miss reads; the others wait for its answer. If
                // it fails (or its request goes away) the next one reads.
                let joined = Joined::join(&self.loading, key);
                joined
                    .cell
                    .get_or_try_init(|| async {
                        let loaded = self.load(keys, events, key, now).await?.map(|(r, stored)| {
                            let used = self.activity.track(key, r.expires);
                            Arc::new(Entry::of(r, stored, used))
                        });
                        if let Some(entry) = &loaded {
                            self.cache.insert(key.clone(), entry.clone());
                        }
                        Ok::<_, StoreError>(loaded)
                    })
                    .await?
                    .clone()
            }
        };
        Ok(entry.filter(|e| now < e.expires))
    }

    /// This process's view of `key` is `record` from now on (just written).
    pub(super) fn remember(&self, key: StoreKey, record: Record) {
        let used = self.activity.track(&key, record.expires);
        self.cache.insert(key, Arc::new(Entry::of(record, 0, used)));
    }

    /// This process asks the store again for `key` (it ended, or changed).
    pub(super) fn forget(&self, key: &StoreKey) {
        self.cache.invalidate(key);
    }

    /// The opened record under `key` from the store (a cache miss), with
    /// its recorded last use (0: none); `None` when there is none, when it
    /// has ended (removed now rather than at the next purge), or when it
    /// does not open (removed, counted, logged once).
    async fn load(
        &self,
        keys: &SessionKeys,
        events: &dyn SessionEvents,
        key: &StoreKey,
        now: u64,
    ) -> Result<Option<(Record, u64)>, StoreError> {
        let started = Instant::now();
        let got = self.store.get(key).await;
        events.store_call(
            started.elapsed(),
            !matches!(got, Err(StoreError::Unavailable { .. })),
        );
        let opened = match got {
            Ok(None) => return Ok(None),
            Ok(Some(stored)) => stored
                .open(keys, key)
                .map(|r| (r, stored.last_used(keys, key).unwrap_or(0)))
                .map_err(|why| why.to_string()),
            Err(StoreError::Corrupt(why)) => Err(why),
            Err(e) => return Err(e),
        };
        match opened {
            Err(why) => {
                self.reject(events, key, &why).await?;
                Ok(None)
            }
            Ok((r, _)) if now >= r.expires => {
                if self.store.remove(key).await?.is_some() {
                    events.ended(EndReason::Expired, 1);
                }
                Ok(None)
            }
            Ok(r) => Ok(Some(r)),
        }
    }

    /// A stored record that does not open is no session: remove it (so it
    /// is logged and counted once, not on every request) and say why.
    async fn reject(
        &self,
        events: &dyn SessionEvents,
        key: &StoreKey,
        why: &str,
    ) -> Result<(), StoreError> {
        match self.store.remove(key).await {
            // Removed, or what was removed does not parse either.
            Ok(_) | Err(StoreError::Corrupt(_)) => {}
            Err(e) => return Err(e),
        }
        events.record_rejected();
        tracing::warn!(
            session = key.short(),
            %why,
            "a stored session record does not open; removed, the browser signs in again"
        );
        Ok(())
    }
}
