//! The request's session, judged by its shape: the lookup, then the idle
//! timeout (`[session] idle_timeout`: the session ends) and the request's
//! host's limits (`[[hosts]]` `idle_timeout` and `lifetime`: the session
//! does not serve this host, and the browser signs in again).
//!
//! A session is used by every request it identifies for its host; that
//! use is recorded in memory ([`super::activity`]) only after the judgement,
//! so a request refused for its host does not keep the session alive.
//!
//! "Unused" is measured from the later of this process's last use, the
//! last use recorded in the store (another replica's, flushed), and the
//! sign-in. A judgement of "too long unused" made on a cached entry is
//! checked once against the store before it ends anything: another
//! replica may have flushed a use since the entry was cached.

use std::sync::Arc;
use std::time::Duration;

use super::super::store::{StoreError, StoreKey};
use super::lookup::{Entry, Lookup};
use super::{codec, Backend, Current, EndReason, SessionShape, Sessions, SignedIn};

impl Sessions {
    /// The session the request's cookies carry (`cookies`: the session
    /// family only, as `is_family` selects), if it opens, lives, and has
    /// the `shape` the request's host asks for (see the module's doc).
    pub async fn current_on(
        &self,
        cookies: &[(&str, &str)],
        now: u64,
        shape: SessionShape,
    ) -> Result<Option<Current>, StoreError> {
        let name = self.cookie.name.as_str();
        let lookup = match &self.backend {
            Backend::Cookie => {
                let session = codec::open_session(&self.keys, name, cookies, now)
                    .filter(|s| within(shape.lifetime, s.issued, now));
                return Ok(session.map(|s| Current {
                    session: SignedIn {
                        identity: Arc::new(s.identity),
                        issued: s.issued,
                        expires: s.expires,
                    },
                    key: None,
                    sid: None,
                    refresh_due: false,
                }));
            }
            Backend::Store(lookup) => lookup,
        };
        // Several cookies of the name can arrive (a stale host-only one
        // next to the cookie_domain one): the first whose session lives counts.
        for (_, value) in cookies.iter().filter(|(n, _)| *n == name) {
            let Some(key) = codec::open_id(&self.keys, value) else {
                continue;
            };
            let Some(entry) = self.judged(lookup, &key, now, shape).await? else {
                continue;
            };
            entry.used.touch(now);
            return Ok(Some(Current {
                refresh_due: entry.refresh.due(self.refresh_interval, now),
                session: SignedIn {
                    identity: entry.identity.clone(),
                    issued: entry.issued,
                    expires: entry.expires,
                },
                sid: entry.sid.clone(),
                key: Some(key),
            }));
        }
        Ok(None)
    }

    /// The live session under `key` when it has `shape`; ends it when it
    /// was unused for the idle timeout.
    async fn judged(
        &self,
        lookup: &Lookup,
        key: &StoreKey,
        now: u64,
        shape: SessionShape,
    ) -> Result<Option<Arc<Entry>>, StoreError> {
        let find = || lookup.find(&self.keys, &*self.events, key, now);
        let Some(mut entry) = find().await? else {
            tracing::debug!(
                session = key.short(),
                "session id not in the store (ended or expired)"
            );
            return Ok(None);
        };
        // Without an idle timeout the last use is not even looked up.
        let mut last = 0;
        if let Some(idle) = shortest(self.idle_timeout, shape.idle_timeout) {
            last = entry.last_used();
            if !within(Some(idle), last, now) {
                // The cached entry may be older than another replica's flush.
                lookup.forget(key);
                let Some(fresh) = find().await? else {
                    return Ok(None);
                };
                entry = fresh;
                last = entry.last_used();
            }
            if !within(self.idle_timeout, last, now) {
                self.end_idle(lookup, key, now.saturating_sub(last)).await?;
                return Ok(None);
            }
        }
        if !within(shape.idle_timeout, last, now) || !within(shape.lifetime, entry.issued, now) {
            tracing::debug!(
                session = key.short(),
                age = now.saturating_sub(entry.issued),
                "the session is too long unused or too old for this host: sign in again"
            );
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// End a session unused for `unused` seconds, past the idle timeout.
    async fn end_idle(
        &self,
        lookup: &Lookup,
        key: &StoreKey,
        unused: u64,
    ) -> Result<(), StoreError> {
        lookup.forget(key);
        lookup.activity().forget(key);
        if lookup.store().remove(key).await?.is_some() {
            self.events.ended(EndReason::Idle, 1);
            tracing::info!(
                session = key.short(),
                unused_for = unused,
                "session ended: unused for longer than session.idle_timeout"
            );
        }
        Ok(())
    }
}

/// Whether `since` (unix seconds) is at most `limit` before `now`; no
/// limit: always.
fn within(limit: Option<Duration>, since: u64, now: u64) -> bool {
    limit.is_none_or(|l| now.saturating_sub(since) <= l.as_secs())
}

/// The shorter of two optional limits.
fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
