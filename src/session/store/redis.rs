//! The Redis store (`session.store = "redis"`): Redis or Valkey at
//! `redis_url`, shared by every replica, so each one sees every session and a
//! revocation on one is in force on all of them once their caches let go
//! (`CACHE_TTL`, 5 s).
//!
//! Every key lives under [`Redis::PREFIX`], so one database can serve other
//! applications too:
//!
//! | key                           | type   | holds                                 | expires                              |
//! |-------------------------------|--------|---------------------------------------|--------------------------------------|
//! | `pocketgate:s:<store key>`    | string | the [`Stored`] record as JSON         | at the record's `expires`            |
//! | `pocketgate:u:<user>`         | set    | store keys of the user's sessions     | no sooner than its newest member     |
//! | `pocketgate:sub:<sub>`        | set    | store keys by provider subject        | no sooner than its newest member     |
//! | `pocketgate:sid:<sid>`        | set    | store keys by provider session        | no sooner than its newest member     |
//! | `pocketgate:jti:<jti>`        | string | a back-channel logout token, seen     | at the token's end                   |
//! | `pocketgate:lock:<store key>` | string | the refresh lock's owner token        | after the lock's ttl                 |
//!
//! Redis ends sessions by itself: a record is written with the time left to
//! its `expires`. The index sets therefore keep members whose record is gone
//! (and, after a refresh that renamed the user, members whose record no
//! longer matches); reads skip such stale members and remove them.
//!
//! Needs Redis 7.0 or later (`PEXPIRE ... NX|GT`, `GETDEL`) or any Valkey,
//! with Lua scripting allowed (the owner-only unlock); one server (or a
//! primary behind a fixed address), not Redis Cluster: a transaction here
//! spans keys of several hash slots.
//!
//! When Redis is down, every call fails with [`StoreError::Unavailable`]
//! within [`Redis::CALL_TIMEOUT`] (at once when the connection is refused).
//! A call that finds the connection broken starts a new one and, where
//! sending it twice is harmless, goes again on it, so the first request
//! after Redis comes back already works, without a restart of pocketgate.
//! Opening succeeds while Redis is down: bypasses keep working and
//! `/readyz` (which pings) says what is wrong.
//!
//! This module keeps; it never decides. It is not for cookies or sealing: it
//! stores what the session service hands it.

use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, FromRedisValue, Pipeline, RedisResult, Script};

mod directory;
mod keys;

use self::keys::{
    index_keys, index_of, lock_key, named_key, record_key, scan_pattern, RECORD_PREFIX,
};
use super::{Filter, StoreError, StoreKey, Stored};
use crate::config::RedisUrl;

/// The prefix of every key pocketgate writes ([`Redis::PREFIX`]).
const PREFIX: &str = "pocketgate:";

/// Longest wait for a TCP (and TLS) connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one reply on an open connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest any one call may take ([`Redis::CALL_TIMEOUT`]).
const CALL_TIMEOUT: Duration = Duration::from_millis(2500);
/// Keys asked of Redis per `SCAN` call and per `MGET`.
const BATCH: usize = 500;
/// `SCAN` calls one listing may take before giving up (`BATCH` times this
/// is far beyond any real number of sessions).
const MAX_SCAN_CALLS: usize = 100_000;

/// Delete the lock only when it still holds our token: a lock that expired
/// and was taken by another replica is theirs.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

/// Whether a call may be sent again after its connection broke.
#[derive(Debug, Clone, Copy)]
enum Repeat {
    /// Sending it twice does what sending it once does.
    Safe,
    /// A second sending could answer otherwise: only after a refusal.
    OnlyIfRefused,
}

/// The Redis-backed store. Cheap to share: every call clones the connection
/// manager (an `Arc`) and multiplexes on its one connection.
pub struct Redis {
    /// The URL without its password, for messages.
    place: String,
    conn: ConnectionManager,
    /// This instance's refresh-lock token: only it releases its locks.
    owner: String,
}

impl Redis {
    /// The prefix of every key pocketgate writes: `pocketgate:`.
    pub const PREFIX: &'static str = PREFIX;

    /// Longest any one call may take, connecting and the one repeat
    /// included: a request never waits longer than this for one store call.
    pub const CALL_TIMEOUT: Duration = CALL_TIMEOUT;

    /// The store at `url`. Tries to connect once (at most
    /// [`Redis::CALL_TIMEOUT`]) and succeeds while Redis is down: the next
    /// calls connect. Fails only for a URL the client cannot use.
    pub async fn open(url: &RedisUrl) -> Result<Redis, StoreError> {
        let place = url.to_string();
        let fail = |reason: String| StoreError::Unavailable {
            place: place.clone(),
            reason,
        };
        let client = ::redis::Client::open(url.expose()).map_err(|e| fail(e.to_string()))?;
        // No backoff inside the manager: a request must fail fast, and the
        // next call after a failure starts a fresh connection attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| fail(e.to_string()))?;
        let mut token = [0u8; 16];
        getrandom::getrandom(&mut token).map_err(|e| fail(format!("no random lock token: {e}")))?;
        let store = Redis {
            place: place.clone(),
            conn,
            owner: hex(&token),
        };
        // Connect now so the first request does not pay for it; down is
        // not an error here.
        if let Err(e) = store.ping().await {
            tracing::warn!(store = %place, error = %e, "redis is not reachable yet; every call retries");
        }
        Ok(store)
    }

    /// The URL without its password, for messages.
    pub fn place(&self) -> String {
        self.place.clone()
    }

    pub(super) async fn get(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        let text: Option<String> = self
            .query(::redis::cmd("GET").arg(record_key(key).as_bytes()))
            .await?;
        text.map(|t| parse(&t)).transpose()
    }

    pub(super) async fn put(&self, key: &StoreKey, record: &Stored) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ttl = millis_until(record.expires);
        if ttl == 0 {
            // Already ended: nothing to keep (and nothing older may stay).
            return self.remove(key).await.map(drop);
        }
        // The record and its memberships in one transaction: a session is
        // never findable by user without its record, nor the reverse.
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(record_key(key).as_bytes())
            .arg(text)
            .arg("PX")
            .arg(ttl)
            .ignore();
        add_memberships(&mut pipe, key, record, ttl);
        self.query_pipe(&pipe).await
    }

    /// Replace a record that still exists (`SET XX`): a refresh never brings
    /// back a session ended meanwhile. Index memberships are added for a
    /// changed user name; the old one becomes a stale member that reads skip.
    pub(super) async fn update(&self, key: &StoreKey, record: &Stored) -> Result<bool, StoreError> {
        let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ttl = millis_until(record.expires);
        if ttl == 0 {
            return Ok(false);
        }
        let replaced: Option<String> = self
            .query_at_most_once(
                ::redis::cmd("SET")
                    .arg(record_key(key).as_bytes())
                    .arg(text)
                    .arg("PX")
                    .arg(ttl)
                    .arg("XX"),
            )
            .await?;
        if replaced.is_none() {
            return Ok(false);
        }
        let mut pipe = ::redis::pipe();
        add_memberships(&mut pipe, key, record, ttl);
        self.query_pipe::<()>(&pipe).await?;
        Ok(true)
    }

    pub(super) async fn remove(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        // GETDEL: of two concurrent removals only one gets the record back.
        let text: Option<String> = self
            .query_at_most_once(::redis::cmd("GETDEL").arg(record_key(key).as_bytes()))
            .await?;
        let Some(text) = text else {
            return Ok(None);
        };
        let record = parse(&text)?;
        let mut pipe = ::redis::pipe();
        for index in index_keys(&record) {
            pipe.cmd("SREM")
                .arg(index.as_slice())
                .arg(key.as_str())
                .ignore();
        }
        // The session has ended either way; a membership left behind is a
        // stale member, which reads skip and remove.
        if let Err(e) = self.query_pipe::<()>(&pipe).await {
            tracing::warn!(store = %self.place, error = %e, "session ended; its index memberships stay until read");
        }
        Ok(Some(record))
    }

    pub(super) async fn remove_matching(
        &self,
        filter: &Filter,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let mut removed = Vec::new();
        match index_of(filter) {
            Some(index) => {
                let members = self.members(&index).await?;
                for chunk in members.chunks(BATCH) {
                    let found = self.fetch(chunk).await?;
                    removed.extend(self.remove_found(filter, Some(&index), found).await?);
                }
            }
            None => {
                let Some(pattern) = scan_pattern(filter) else {
                    return Ok(removed);
                };
                let mut cursor = 0u64;
                for _ in 0..MAX_SCAN_CALLS {
                    let (next, page) = self.scan(cursor, &pattern).await?;
                    let found = self.fetch(&page).await?;
                    removed.extend(self.remove_found(filter, None, found).await?);
                    if next == 0 {
                        return Ok(removed);
                    }
                    cursor = next;
                }
                return Err(self.too_many_keys());
            }
        }
        Ok(removed)
    }

    /// Delete, in one transaction, the records among `found` that match (a
    /// record that does not parse goes too: ending a session is always
    /// safe), with their memberships; drop stale members of `index`. The
    /// keys this call deleted (not those a concurrent call got first).
    async fn remove_found(
        &self,
        filter: &Filter,
        index: Option<&[u8]>,
        found: Vec<(StoreKey, Option<String>)>,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let mut deleting = Vec::new();
        for (key, text) in found {
            match text.as_deref().map(parse) {
                Some(Ok(r)) if filter.matches(&key, &r) => {
                    pipe.cmd("DEL").arg(record_key(&key).as_bytes());
                    for index in index_keys(&r) {
                        pipe.cmd("SREM")
                            .arg(index.as_slice())
                            .arg(key.as_str())
                            .ignore();
                    }
                    deleting.push(key);
                }
                // Ending a session is always safe, so a record that does not
                // parse goes too; its other memberships turn stale.
                Some(Err(_)) => {
                    pipe.cmd("DEL").arg(record_key(&key).as_bytes());
                    if let Some(index) = index {
                        pipe.cmd("SREM").arg(index).arg(key.as_str()).ignore();
                    }
                    deleting.push(key);
                }
                // Gone, or no longer matching: a stale member of the set read.
                Some(Ok(_)) | None => {
                    if let Some(index) = index {
                        pipe.cmd("SREM").arg(index).arg(key.as_str()).ignore();
                    }
                }
            }
        }
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        let deleted: Vec<u64> = self.query_pipe_at_most_once(&pipe).await?;
        Ok(deleting
            .into_iter()
            .zip(deleted)
            .filter(|(_, n)| *n > 0)
            .map(|(k, _)| k)
            .collect())
    }

    pub(super) async fn list(
        &self,
        filter: &Filter,
        now: u64,
    ) -> Result<Vec<(StoreKey, Stored)>, StoreError> {
        let mut found = Vec::new();
        match index_of(filter) {
            Some(index) => {
                let members = self.members(&index).await?;
                let mut stale = Vec::new();
                for chunk in members.chunks(BATCH) {
                    for (key, text) in self.fetch(chunk).await? {
                        match text.as_deref().map(parse).transpose()? {
                            Some(r) if filter.matches(&key, &r) => found.push((key, r)),
                            _ => stale.push(key),
                        }
                    }
                }
                self.drop_stale(&index, &stale).await;
            }
            None => {
                let Some(pattern) = scan_pattern(filter) else {
                    return Ok(found);
                };
                let mut cursor = 0u64;
                let mut finished = false;
                for _ in 0..MAX_SCAN_CALLS {
                    let (next, page) = self.scan(cursor, &pattern).await?;
                    for (key, text) in self.fetch(&page).await? {
                        // Gone since the SCAN: it ended meanwhile.
                        let Some(text) = text else { continue };
                        let r = parse(&text)?;
                        if filter.matches(&key, &r) {
                            found.push((key, r));
                        }
                    }
                    if next == 0 {
                        finished = true;
                        break;
                    }
                    cursor = next;
                }
                if !finished {
                    return Err(self.too_many_keys());
                }
            }
        }
        found.retain(|(_, r)| r.expires > now);
        // SCAN may return a key twice; a set never does, but sorting and
        // deduplicating both keeps one rule.
        found.sort_by(|(ka, a), (kb, b)| a.issued.cmp(&b.issued).then_with(|| ka.cmp(kb)));
        found.dedup_by(|(a, _), (b, _)| a == b);
        Ok(found)
    }

    pub(super) async fn claim_jti(&self, jti: &str, until: u64) -> Result<bool, StoreError> {
        // A token already past its end is still remembered for a second:
        // the verifier refuses it from then on anyway.
        let seconds = until.saturating_sub(unix_now()).max(1);
        let set: Option<String> = self
            .query_at_most_once(
                ::redis::cmd("SET")
                    .arg(named_key("jti:", jti))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(seconds),
            )
            .await?;
        Ok(set.is_some())
    }

    pub(super) async fn try_lock(&self, key: &StoreKey, ttl: Duration) -> Result<bool, StoreError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .query_at_most_once(
                ::redis::cmd("SET")
                    .arg(lock_key(key).as_bytes())
                    .arg(&self.owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis),
            )
            .await?;
        Ok(set.is_some())
    }

    pub(super) async fn unlock(&self, key: &StoreKey) -> Result<(), StoreError> {
        let mut call = UNLOCK.key(lock_key(key).as_bytes());
        call.arg(&self.owner);
        let call = &call;
        // Deleting our own lock twice is deleting it once.
        self.bounded(Repeat::Safe, |mut conn| async move {
            call.invoke_async::<u64>(&mut conn).await
        })
        .await
        .map(drop)
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&::redis::cmd("PING")).await.map(drop)
    }

    /// The store keys in an index set (invalid members are dropped).
    async fn members(&self, index: &[u8]) -> Result<Vec<StoreKey>, StoreError> {
        let members: Vec<String> = self.query(::redis::cmd("SMEMBERS").arg(index)).await?;
        Ok(members
            .iter()
            .filter_map(|m| StoreKey::from_hex(m))
            .collect())
    }

    /// One `SCAN` page of record keys: the next cursor and the store keys.
    async fn scan(&self, cursor: u64, pattern: &str) -> Result<(u64, Vec<StoreKey>), StoreError> {
        let (next, keys): (u64, Vec<String>) = self
            .query(
                ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(BATCH),
            )
            .await?;
        let keys = keys
            .iter()
            .filter_map(|k| k.strip_prefix(RECORD_PREFIX))
            .filter_map(StoreKey::from_hex)
            .collect();
        Ok((next, keys))
    }

    /// The records of `keys` (at most [`BATCH`]) as stored, `None` where gone.
    async fn fetch(
        &self,
        keys: &[StoreKey],
    ) -> Result<Vec<(StoreKey, Option<String>)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = ::redis::cmd("MGET");
        for k in keys {
            mget.arg(record_key(k).as_bytes());
        }
        let texts: Vec<Option<String>> = self.query(&mget).await?;
        Ok(keys.iter().cloned().zip(texts).collect())
    }

    /// Remove members of `index` whose record is gone or no longer matches.
    /// Best effort: a member left behind is skipped again next time.
    async fn drop_stale(&self, index: &[u8], stale: &[StoreKey]) {
        if stale.is_empty() {
            return;
        }
        let mut srem = ::redis::cmd("SREM");
        srem.arg(index);
        for k in stale {
            srem.arg(k.as_str());
        }
        if let Err(e) = self.query::<u64>(&srem).await {
            tracing::debug!(store = %self.place, error = %e, "stale index members stay until the next read");
        }
    }

    /// A command that does the same when sent twice (reads, overwrites).
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.bounded(Repeat::Safe, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// A command whose second sending could answer otherwise (`SET NX`, `GETDEL`).
    async fn query_at_most_once<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.bounded(Repeat::OnlyIfRefused, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        self.bounded(Repeat::Safe, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    async fn query_pipe_at_most_once<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        self.bounded(Repeat::OnlyIfRefused, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    /// One call, never longer than [`CALL_TIMEOUT`] in all. A call that
    /// found the connection broken is sent once more, on the connection
    /// that failure has just started: otherwise the first call after Redis
    /// came back (or restarted between two calls) would be the one to find
    /// out, and fail. A refusal means the command never left; a dropped
    /// connection may have carried it, so then only a [`Repeat::Safe`] call
    /// goes again.
    async fn bounded<T, F, Fut>(&self, repeat: Repeat, call: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            match call(self.conn.clone()).await {
                Err(e)
                    if e.is_connection_refusal()
                        || (matches!(repeat, Repeat::Safe) && e.is_connection_dropped()) =>
                {
                    call(self.conn.clone()).await
                }
                done => done,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, attempts).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.unavailable(e.to_string())),
            Err(_) => {
                Err(self.unavailable(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())))
            }
        }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable {
            place: self.place.clone(),
            reason,
        }
    }

    fn too_many_keys(&self) -> StoreError {
        self.unavailable(format!("SCAN did not finish within {MAX_SCAN_CALLS} calls"))
    }
}

/// Add `key` to the index sets of `record`, each kept for at least `ttl` ms.
fn add_memberships(pipe: &mut Pipeline, key: &StoreKey, record: &Stored, ttl: u64) {
    for index in index_keys(record) {
        let index = index.as_slice();
        pipe.cmd("SADD").arg(index).arg(key.as_str()).ignore();
        // NX gives a new set its first expiry; GT only ever lengthens it,
        // so the set outlives its newest member.
        for when in ["NX", "GT"] {
            pipe.cmd("PEXPIRE").arg(index).arg(ttl).arg(when).ignore();
        }
    }
}

fn parse(text: &str) -> Result<Stored, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds from now until the unix time `at`; 0 when it has passed.
fn millis_until(at: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let at = u128::from(at) * 1000;
    u64::try_from(at.saturating_sub(now)).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_owner_token_is_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn millis_until_is_zero_for_the_past() {
        assert_eq!(millis_until(0), 0);
        assert_eq!(millis_until(unix_now().saturating_sub(1)), 0);
        let left = millis_until(unix_now() + 60);
        assert!((59_000..=60_000).contains(&left), "{left}");
    }
}
