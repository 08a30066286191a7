//! When each session was last used, kept in memory and written to the
//! store in the background: a request that uses a session costs a map
//! update, never a store write.
//!
//! The map is bounded ([`MAX_TRACKED`] sessions, the least recently used
//! go first) and holds only sessions this process has looked up. A
//! session's entry in the lookup's cache holds its [`Use`], so a request
//! records its use without a second map lookup. Losing an entry (evicted,
//! or the process restarts) only means that use is not flushed (nor the
//! uses recorded through a cached entry in the seconds until it is read
//! again): the store still has the last flushed one, and the session is
//! judged by that, at worst ending one flush interval early.
//!
//! The flush runs every [`flush_interval`] (at most 30 s, at most a quarter
//! of the shortest idle timeout, at least 1 s) and writes only the
//! sessions whose last use moved since, sealed and bound to their store
//! key. Several replicas each flush their own uses; each judges idleness
//! by the later of its own and the stored value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use moka::sync::Cache;

use super::super::store::{seal_last_use, Store, StoreError, StoreKey};
use super::super::SessionKeys;

/// Most sessions whose last use is kept in memory.
pub const MAX_TRACKED: u64 = 200_000;
/// The longest and shortest time between two flushes.
const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
const MIN_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How often uses are written to the store when the shortest idle timeout
/// in force is `idle`: `min(30 s, idle / 4)`, at least 1 s.
pub fn flush_interval(idle: Option<Duration>) -> Duration {
    idle.map_or(MAX_FLUSH_INTERVAL, |i| {
        (i / 4).clamp(MIN_FLUSH_INTERVAL, MAX_FLUSH_INTERVAL)
    })
}

/// One session's last use, and the last use the store has from us.
#[derive(Debug)]
pub(super) struct Use {
    at: AtomicU64,
    flushed: AtomicU64,
    /// The session's end: its stored last use lapses then too.
    expires: u64,
}

/// The in-memory last uses, and what the flush seals them with.
pub(super) struct Activity {
    uses: Cache<StoreKey, Arc<Use>>,
    /// The keys in force (a reload may rotate them).
    keys: Mutex<SessionKeys>,
    interval_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new(keys: SessionKeys, interval: Duration) -> Activity {
        Activity {
            uses: Cache::builder().max_capacity(MAX_TRACKED).build(),
            keys: Mutex::new(keys),
            interval_ms: AtomicU64::new(millis(interval)),
        }
    }

    /// Seal with `keys` and flush every `interval` from now on (a reload).
    pub(super) fn reconfigure(&self, keys: SessionKeys, interval: Duration) {
        *self.keys.lock().unwrap_or_else(PoisonError::into_inner) = keys;
        self.interval_ms.store(millis(interval), Ordering::Relaxed);
    }

    pub(super) fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    /// The last use of the session under `key` (ending at `expires`), to be
    /// recorded through: the one this process has, else a new one (no use
    /// yet). The lookup keeps it with the session's cached entry.
    pub(super) fn track(&self, key: &StoreKey, expires: u64) -> Arc<Use> {
        self.uses.get_with_by_ref(key, || {
            Arc::new(Use {
                at: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                expires,
            })
        })
    }

    /// The session ended: nothing more to flush for it.
    pub(super) fn forget(&self, key: &StoreKey) {
        self.uses.invalidate(key);
    }

    /// Write every last use that moved since the previous flush (sessions
    /// past their end at `now` are dropped instead); how many were written.
    /// On an error nothing is marked written: the next flush tries again.
    pub(super) async fn flush(&self, store: &Store, now: u64) -> Result<usize, StoreError> {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut moved = Vec::new();
        let mut batch = Vec::new();
        for (key, u) in self.uses.iter() {
            if u.expires <= now {
                self.uses.invalidate(key.as_ref());
                continue;
            }
            let at = u.at.load(Ordering::Relaxed);
            if at > u.flushed.load(Ordering::Relaxed) {
                batch.push((
                    key.as_ref().clone(),
                    seal_last_use(&keys, &key, at),
                    u.expires,
                ));
                moved.push((u, at));
            }
        }
        store.record_use(&batch).await?;
        for (u, at) in &moved {
            u.flushed.fetch_max(*at, Ordering::Relaxed);
        }
        Ok(moved.len())
    }
}

/// Flush `activity` into `store` every interval while both live (the
/// session service holds them; a dropped service ends the loop within a
/// second). Needs a tokio runtime; without one (a bench, a one-shot
/// command) nothing is spawned and uses stay in memory.
pub(super) fn spawn_flusher(activity: Weak<Activity>, store: Weak<Store>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        // A turn a second, so that a reload's shorter interval applies at once.
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(MIN_FLUSH_INTERVAL).await;
            let (Some(activity), Some(store)) = (activity.upgrade(), store.upgrade()) else {
                return;
            };
            if last.elapsed() < activity.interval() {
                continue;
            }
            last = tokio::time::Instant::now();
            if let Err(e) = activity.flush(&store, unix_now()).await {
                tracing::warn!(error = %e, "session last uses not written; tried again at the next flush");
            }
        }
    });
}

impl Use {
    /// The session was used at `now`.
    pub(super) fn touch(&self, now: u64) {
        self.at.fetch_max(now, Ordering::Relaxed);
    }

    /// The last use this process saw (0: none yet).
    pub(super) fn last(&self) -> u64 {
        self.at.load(Ordering::Relaxed)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_interval_is_a_quarter_of_the_idle_timeout_between_1_and_30_seconds() {
        let s = Duration::from_secs;
        for (idle, every) in [
            (None, s(30)),
            (Some(s(7200)), s(30)),
            (Some(s(60)), s(15)),
            (Some(s(3)), s(1)),
            (Some(s(1)), s(1)),
        ] {
            assert_eq!(flush_interval(idle), every, "{idle:?}");
        }
    }
}
