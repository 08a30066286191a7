//! A session's life after the lookup: started at login, ended at logout,
//! revoked by filter (back-channel logout, the CLI, SCIM), listed, and its
//! identity refreshed with the provider now and then. Every change is
//! written to the store first and then to this process's cache, so this
//! replica sees it at once and the others within the cache's lifetime.

use std::time::Duration;

use cookie::Cookie;

use super::super::store::{open_listed, Filter, Record, StoreError, StoreKey};
use super::super::{logout_hint_cookie_name, CookieSettings, Session};
use super::lookup::RefreshClock;
use super::{
    codec, Backend, CreateError, Current, EndReason, Ended, LoginContext, RefreshOutcome, Sessions,
    Tokens,
};
use crate::policy::Identity;

/// Longest `User-Agent` kept with a session, in bytes.
const MAX_USER_AGENT: usize = 200;

impl Sessions {
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
        let lookup = match &self.backend {
            Backend::Cookie => {
                let session = Session {
                    identity,
                    issued: now,
                    expires,
                };
                return Ok(self.sealed(cookie, &session, tokens.id_token, present)?);
            }
            Backend::Store(lookup) => lookup,
        };
        let (id, key) = codec::new_id().map_err(CreateError::Random)?;
        let seal = |t: String| codec::seal_token(&self.keys, t);
        let record = Record {
            identity,
            issued: now,
            expires,
            refreshed: now,
            refresh_token: tokens.refresh_token.map(seal),
            id_token: tokens.id_token.map(seal),
            sid: tokens.sid,
            client: context.client,
            user_agent: context.user_agent.map(|ua| truncate(ua, MAX_USER_AGENT)),
            refresh_failures: 0,
            retry_at: 0,
            last_used: None,
        };
        lookup
            .store()
            .put(&key, &record.seal(&self.keys, &key))
            .await?;
        lookup.remember(key, record);
        self.events.created();
        Ok(codec::id_cookies(
            &self.keys, cookie, hint_name, &id, present,
        )?)
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
        let identity = &current.session.identity;
        let user = Some(identity.user.clone());
        match (&self.backend, &current.key) {
            (Backend::Store(lookup), Some(key)) => {
                lookup.forget(key);
                lookup.activity().forget(key);
                let record = lookup.store().remove(key).await?;
                if record.is_some() {
                    self.events.ended(EndReason::Logout, 1);
                }
                Ok(Ended {
                    id_token: record
                        .and_then(|r| r.open(&self.keys, key).ok())
                        .and_then(|r| r.id_token)
                        .and_then(|t| codec::unseal_token(&self.keys, &t)),
                    user,
                })
            }
            _ => Ok(Ended {
                id_token: codec::hint_id_token(&self.keys, hint, &identity.subject, now),
                user,
            }),
        }
    }

    /// End every session matching `filter` (back-channel logout, the CLI);
    /// how many. Nothing to do for stateless cookies.
    pub async fn revoke(&self, filter: &Filter, reason: EndReason) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Cookie => Ok(0),
            Backend::Store(lookup) => {
                let keys = lookup.store().remove_matching(filter).await?;
                for k in &keys {
                    lookup.forget(k);
                    lookup.activity().forget(k);
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
            Some(store) => Ok(open_listed(&self.keys, store.list(filter, now).await?)),
        }
    }

    /// Record a logout token's `jti` until `until`; false when it was seen
    /// before (a replay). Without a store there is nothing to record.
    pub async fn claim_jti(&self, jti: &str, until: u64) -> Result<bool, StoreError> {
        match self.store() {
            None => Ok(true),
            Some(store) => store.claim_jti(jti, until).await,
        }
    }

    /// The cookies that clear every cookie of ours the browser sent, with
    /// the attributes of `cookie` (the login domain's `Domain`).
    pub fn clearing(&self, cookie: &CookieSettings, present: &[&str]) -> Vec<Cookie<'static>> {
        codec::clearing(cookie, present)
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
        if now >= record.expires || !RefreshClock::of(&record).due(self.refresh_interval, now) {
            return Ok(None);
        }
        let token = record
            .refresh_token
            .as_deref()
            .and_then(|t| codec::unseal_token(&self.keys, t));
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
        // A refresh is no sign-in: the session keeps when and how it signed in.
        let identity = Identity {
            sign_in: record.identity.sign_in.clone(),
            ..identity
        };
        let outcome = if record.identity == identity {
            RefreshOutcome::Unchanged
        } else {
            RefreshOutcome::Changed
        };
        record.identity = identity;
        record.refreshed = now;
        record.refresh_failures = 0;
        record.retry_at = 0;
        let seal = |t: String| codec::seal_token(&self.keys, t);
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
        if let Backend::Store(lookup) = &self.backend {
            lookup.forget(key);
            if lookup.store().remove(key).await?.is_some() {
                self.events.ended(EndReason::RefreshInvalid, 1);
            }
        }
        self.events.refresh(RefreshOutcome::Invalid);
        Ok(())
    }

    /// Write a record back unless the session ended meanwhile, and let this
    /// process see it at once.
    async fn save_if_live(&self, key: &StoreKey, record: Record) -> Result<(), StoreError> {
        if let Backend::Store(lookup) = &self.backend {
            if lookup
                .store()
                .update(key, &record.seal(&self.keys, key))
                .await?
            {
                lookup.remember(key.clone(), record);
            } else {
                lookup.forget(key);
            }
        }
        Ok(())
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
