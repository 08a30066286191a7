//! Where sessions live on the server: the embedded database (`embedded.rs`)
//! or Redis (`redis.rs`). With a store, the browser's cookie holds only a
//! sealed random session id; the store is keyed by a hash of that id, and
//! each [`Record`] is kept [`Stored`]: sealed whole with the session secret,
//! bound to its key, so a copy of the store yields no usable credential and
//! nothing in it can be edited (or copied under another key) into access.
//! Only what listing and revocation filter on sits beside it in the clear.
//!
//! A store answers every question a revocable session needs: is it there
//! (`get`), end it (`remove`, `remove_matching`), who is signed in (`list`),
//! has this logout token been seen (`claim_jti`), who may refresh it now
//! (`try_lock`). It never decides; it only keeps.

mod directory;
mod embedded;
mod key;
mod redis;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Purpose, Refused, SessionKeys};
use crate::config::StoreSettings;
use crate::policy::Identity;

pub use self::redis::Redis;
pub use directory::DirectoryKind;
pub use embedded::Embedded;
pub use key::StoreKey;

/// One session as a store keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Who is signed in, as of the last login or refresh.
    pub identity: Identity,
    /// Login time, unix seconds.
    pub issued: u64,
    /// End of the session, unix seconds.
    pub expires: u64,
    /// Last successful identity check with the provider (login or refresh).
    pub refreshed: u64,
    /// The refresh token, sealed with the session secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (for `id_token_hint` at logout), sealed with the session secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The provider's session id (`sid` claim), for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The client address at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The browser's `User-Agent` at login (at most 200 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Refreshes that failed in a row because the provider could not answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refresh_failures: u32,
    /// Not before this time is the next refresh tried (backoff), unix seconds.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub retry_at: u64,
}

impl Record {
    /// Seal the whole record for the store, bound to `key`, with the fields
    /// listing and revocation filter on beside it in the clear.
    pub fn seal(&self, keys: &SessionKeys, key: &StoreKey) -> Stored {
        // A record is strings, integers and a list: it always serializes.
        let json = serde_json::to_vec(self).unwrap_or_default();
        Stored {
            user: self.identity.user.clone(),
            subject: self.identity.subject.clone(),
            sid: self.sid.clone(),
            issued: self.issued,
            expires: self.expires,
            sealed: keys.seal_bound(Purpose::StoredRecord, key.as_bytes(), &json),
        }
    }
}

/// A [`Record`] as a store keeps it: sealed whole with the session secret
/// (AES-256-GCM, the store key bound in as associated data), and beside it
/// in the clear only what `list` and the revocation filters need. Nothing
/// decides on the clear fields: a session is what [`Stored::open`] returns.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The user name, for `--user` and the Redis index.
    pub user: String,
    /// The provider subject, for back-channel logout without `sid`.
    #[serde(rename = "sub")]
    pub subject: String,
    /// The provider session, for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Login time, unix seconds (the order of `list`).
    #[serde(rename = "iat")]
    pub issued: u64,
    /// End of the session, unix seconds (the store's own expiry).
    #[serde(rename = "exp")]
    pub expires: u64,
    /// The whole record, sealed.
    #[serde(rename = "rec")]
    pub sealed: String,
}

impl Stored {
    /// The record sealed in, when it opens under `key` with one of `keys`
    /// (an older secret line too) and the clear fields agree with it.
    pub fn open(&self, keys: &SessionKeys, key: &StoreKey) -> Result<Record, Refused> {
        let json = keys.open_bound(Purpose::StoredRecord, key.as_bytes(), &self.sealed)?;
        let record: Record = serde_json::from_slice(&json).map_err(|_| Refused::NotThisKind)?;
        // Edited clear fields would hide the session from revocation.
        if record.identity.user != self.user
            || record.identity.subject != self.subject
            || record.sid != self.sid
            || record.issued != self.issued
            || record.expires != self.expires
        {
            return Err(Refused::Disagrees);
        }
        Ok(record)
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("user", &self.user)
            .field("sid", &self.sid)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Open every listed record; those that do not open are counted, not shown.
pub fn open_listed(
    keys: &SessionKeys,
    listed: Vec<(StoreKey, Stored)>,
) -> (Vec<(StoreKey, Record)>, usize) {
    let mut opened = Vec::with_capacity(listed.len());
    let mut unopened = 0;
    for (key, stored) in listed {
        match stored.open(keys, &key) {
            Ok(record) => opened.push((key, record)),
            Err(_) => unopened += 1,
        }
    }
    (opened, unopened)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl fmt::Debug for Record {
    // Tokens never reach a log, even sealed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("user", &self.identity.user)
            .field("groups", &self.identity.groups)
            .field("issued", &self.issued)
            .field("expires", &self.expires)
            .field("refreshed", &self.refreshed)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// Which sessions to end or list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every session.
    All,
    /// The sessions of a user name.
    User(String),
    /// The sessions of a provider subject (`sub`).
    Subject(String),
    /// The sessions of a provider session (`sid`).
    ProviderSession(String),
    /// The session whose key starts with these hex digits (at least 8; the
    /// short id `pocketgate sessions list` shows).
    Id(String),
}

impl Filter {
    /// Whether the session under `key` matches (on the clear fields).
    pub fn matches(&self, key: &StoreKey, r: &Stored) -> bool {
        match self {
            Filter::All => true,
            Filter::User(u) => r.user == *u,
            Filter::Subject(s) => r.subject == *s,
            Filter::ProviderSession(sid) => r.sid.as_deref() == Some(sid.as_str()),
            Filter::Id(prefix) => key.as_str().starts_with(&prefix.to_ascii_lowercase()),
        }
    }
}

/// Why the store could not answer. Never a reason to allow, never a reason to
/// send the user to login: the request gets a 503 and the log says what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store at {place}: {reason}")]
    Unavailable { place: String, reason: String },
    #[error("session store: a record does not parse: {0}")]
    Corrupt(String),
}

/// A session store.
pub enum Store {
    Embedded(Embedded),
    Redis(Redis),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Embedded(e) => write!(f, "Store::Embedded({})", e.place()),
            Store::Redis(r) => write!(f, "Store::Redis({})", r.place()),
        }
    }
}

impl Store {
    /// Open the configured store; `None` for stateless cookies.
    pub async fn open(settings: &StoreSettings) -> Result<Option<Store>, StoreError> {
        match settings {
            StoreSettings::Cookie => Ok(None),
            StoreSettings::Embedded { state_dir } => {
                Ok(Some(Store::Embedded(Embedded::open(state_dir).await?)))
            }
            // Succeeds while Redis is down: the first call connects.
            StoreSettings::Redis { url } => Ok(Some(Store::Redis(Redis::open(url).await?))),
        }
    }

    /// Where the store is, for messages.
    pub fn place(&self) -> String {
        match self {
            Store::Embedded(e) => e.place(),
            Store::Redis(r) => r.place(),
        }
    }

    /// The session of this key, if present (possibly expired: the caller
    /// checks `expires`, so that it can count and remove ended sessions).
    pub async fn get(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        match self {
            Store::Embedded(e) => e.get(key).await,
            Store::Redis(r) => r.get(key).await,
        }
    }

    /// Create or replace a session.
    pub async fn put(&self, key: &StoreKey, record: &Stored) -> Result<(), StoreError> {
        match self {
            Store::Embedded(e) => e.put(key, record).await,
            Store::Redis(r) => r.put(key, record).await,
        }
    }

    /// Replace a session that still exists; false when it ended meanwhile
    /// (a refresh never brings a revoked session back).
    pub async fn update(&self, key: &StoreKey, record: &Stored) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => e.update(key, record).await,
            Store::Redis(r) => r.update(key, record).await,
        }
    }

    /// End one session; the record it had.
    pub async fn remove(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        match self {
            Store::Embedded(e) => e.remove(key).await,
            Store::Redis(r) => r.remove(key).await,
        }
    }

    /// End every session matching `filter`; their keys.
    pub async fn remove_matching(&self, filter: &Filter) -> Result<Vec<StoreKey>, StoreError> {
        match self {
            Store::Embedded(e) => e.remove_matching(filter).await,
            Store::Redis(r) => r.remove_matching(filter).await,
        }
    }

    /// The live sessions matching `filter`, oldest first.
    pub async fn list(
        &self,
        filter: &Filter,
        now: u64,
    ) -> Result<Vec<(StoreKey, Stored)>, StoreError> {
        match self {
            Store::Embedded(e) => e.list(filter, now).await,
            Store::Redis(r) => r.list(filter, now).await,
        }
    }

    /// Record a logout token's `jti` until `until`; false when it was seen before.
    pub async fn claim_jti(&self, jti: &str, until: u64) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => e.claim_jti(jti, until).await,
            Store::Redis(r) => r.claim_jti(jti, until).await,
        }
    }

    /// Take the refresh lock of a session for `ttl`, unless someone holds
    /// it; true when taken. The owner is this store instance (one replica):
    /// call [`Store::unlock`] only after a `true`.
    pub async fn try_lock(&self, key: &StoreKey, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => e.try_lock(key, ttl).await,
            Store::Redis(r) => r.try_lock(key, ttl).await,
        }
    }

    /// Release a refresh lock this instance holds; a lock that expired and
    /// was taken by another instance stays theirs.
    pub async fn unlock(&self, key: &StoreKey) -> Result<(), StoreError> {
        match self {
            Store::Embedded(e) => e.unlock(key).await,
            Store::Redis(r) => r.unlock(key).await,
        }
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Embedded(e) => e.ping().await,
            Store::Redis(r) => r.ping().await,
        }
    }
}
