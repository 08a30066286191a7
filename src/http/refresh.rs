//! Refreshing a session's identity with the provider, off the request path.
//!
//! A request whose session is due (`refresh_interval` since the last check)
//! is answered with the identity as it stands and starts a refresh in the
//! background; the first request after it completes sees the new groups, or
//! finds the session ended (`invalid_grant`). A provider that cannot answer
//! leaves the session as it is and is tried again after a backoff: an outage
//! logs nobody out. In this process one refresh per session runs at a time
//! (with Redis, the store's lock makes that true across replicas).

use super::{now, AppState, State};
use crate::audit;
use crate::oidc::RefreshError;
use crate::session::store::StoreKey;
use crate::session::{Current, RefreshOutcome};

/// Start refreshing `current` in the background, unless one is under way.
pub(super) fn spawn(state: &State, current: &Current) {
    let Some(key) = current.key.clone() else {
        return;
    };
    if !state.sessions.refresh_claim(&key) {
        return;
    }
    let state = state.clone();
    actix_web::rt::spawn(async move {
        // Across replicas too: the store's lock (Redis) lets one refresh a
        // session at a time, so none redeems a refresh token another rotated.
        if let Some(store) = state.sessions.store() {
            match store.try_lock(&key, LOCK_TTL).await {
                Ok(true) => {
                    refresh(&state, &key).await;
                    if let Err(e) = store.unlock(&key).await {
                        tracing::debug!(error = %e, "refresh: lock not released; it expires by itself");
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "refresh: session store unavailable; tried again later")
                }
            }
        }
        state.sessions.refresh_done(&key);
    });
}

/// How long a refresh may hold its lock: the provider's 10 s timeout plus the store writes.
const LOCK_TTL: std::time::Duration = std::time::Duration::from_secs(30);

async fn refresh(state: &AppState, key: &StoreKey) {
    let now = now();
    // Read again from the store: another replica (or an earlier task) may
    // have refreshed, rotated the token or ended the session meanwhile.
    let (record, token) = match state.sessions.due_for_refresh(key, now).await {
        Ok(Some(due)) => due,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "refresh: session store unavailable; tried again later");
            return;
        }
    };
    let user = record.identity.user.clone();
    let subject = record.identity.subject.clone();
    let result = match state.provider.refresh(&token, &subject).await {
        Ok(r) => state
            .sessions
            .refreshed(key, record, r.identity, r.refresh_token, r.id_token, now)
            .await
            .map(|outcome| {
                if outcome == RefreshOutcome::Changed {
                    tracing::info!(user = %user, "refresh: the identity changed at the provider; taken over");
                } else {
                    tracing::debug!(user = %user, "refresh: identity confirmed");
                }
            }),
        Err(RefreshError::Invalid(why)) => {
            tracing::info!(user = %user, reason = %why, "refresh refused by the provider: session ended");
            let who = audit::Context::default().signed_in(&user, &subject);
            audit::refresh_invalid(&who.session(Some(key)), &why.to_string());
            state.sessions.refresh_refused(key).await
        }
        Err(RefreshError::Unavailable(why)) => {
            tracing::warn!(user = %user, reason = %why, "refresh: provider unavailable; the session stays, tried again later");
            state.sessions.refresh_failed(key, record, now).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "refresh: could not write the session back");
    }
}
