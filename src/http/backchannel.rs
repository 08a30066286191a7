//! `POST /backchannel-logout`: OIDC Back-Channel Logout 1.0. The provider
//! posts a signed `logout_token`; once it verifies (`oidc::logout`), the
//! sessions of its `sid` end (a token without a `sid`: every session of its
//! `sub`), and only then is its `jti` recorded: a token seen before is a
//! replay. 200 on success; 400 with the reason otherwise; 503 when the
//! provider's keys or the session store cannot be reached, and then the
//! token is not spent, so the provider's retry ends the sessions. Every
//! answer carries `Cache-Control: no-store`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::respond::no_store;
use super::{now, State};
use crate::oidc::logout::{LogoutTokenError, MAX_AGE};
use crate::session::store::Filter;
use crate::session::EndReason;

/// Largest form body accepted (a logout token is at most 16 KiB).
pub(super) const MAX_BODY: usize = 32 * 1024;

#[derive(Deserialize)]
pub(super) struct LogoutForm {
    logout_token: Option<String>,
}

fn answer(status: StatusCode, error: Option<(&str, String)>) -> HttpResponse {
    let mut b = no_store(HttpResponse::build(status));
    match error {
        None => b.finish(),
        Some((code, description)) => b.json(serde_json::json!({
            "error": code,
            "error_description": description,
        })),
    }
}

pub(super) async fn backchannel_logout(state: State, form: web::Form<LogoutForm>) -> HttpResponse {
    let Some(token) = form.logout_token.as_deref().filter(|t| !t.is_empty()) else {
        return answer(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "no logout_token".into())),
        );
    };
    if state.sessions.store().is_none() {
        tracing::warn!(
            "back-channel logout received, but session.store = \"cookie\" keeps nothing to end"
        );
        return answer(
            StatusCode::BAD_REQUEST,
            Some((
                "invalid_request",
                "this relying party keeps stateless sessions (session.store = cookie) and cannot end them".into(),
            )),
        );
    }
    let now = now();
    let claims = match state.provider.verify_logout_token(token, now).await {
        Ok(c) => c,
        Err(e @ (LogoutTokenError::NotReady | LogoutTokenError::KeysUnavailable)) => {
            tracing::warn!(error = %e, "back-channel logout: cannot verify now");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(("temporarily_unavailable", e.to_string())),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: logout token refused");
            return answer(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", e.to_string())),
            );
        }
    };
    let result = async {
        let until = now + MAX_AGE.as_secs() + 120;
        // The sessions of the token's provider session; only a token without
        // a sid ends every session of its subject. (After pocketgate's own
        // /logout the provider sends a token for the sid just ended: falling
        // back to the subject then would sign the user out of every browser.)
        let ended = match (&claims.sid, &claims.sub) {
            (Some(sid), _) => {
                state
                    .sessions
                    .revoke(
                        &Filter::ProviderSession(sid.clone()),
                        EndReason::BackChannel,
                    )
                    .await?
            }
            (None, Some(sub)) => {
                state
                    .sessions
                    .revoke(&Filter::Subject(sub.clone()), EndReason::BackChannel)
                    .await?
            }
            (None, None) => 0,
        };
        // Spent only once its sessions have ended: had the store failed
        // above, the provider's retry of this token must still work. A
        // replay ends nothing new (that provider session has ended).
        let fresh = state.sessions.claim_jti(&claims.jti, until).await?;
        Ok::<_, crate::session::store::StoreError>(fresh.then_some(ended))
    }
    .await;
    match result {
        Ok(Some(ended)) => {
            tracing::info!(
                sub = claims.sub.as_deref().unwrap_or(""),
                sid = claims.sid.as_deref().unwrap_or(""),
                ended,
                "back-channel logout"
            );
            answer(StatusCode::OK, None)
        }
        Ok(None) => {
            tracing::warn!(jti = %claims.jti, "back-channel logout: replayed logout token");
            answer(
                StatusCode::BAD_REQUEST,
                Some((
                    "invalid_request",
                    "this logout token (jti) was already used".into(),
                )),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: session store unavailable");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                Some((
                    "temporarily_unavailable",
                    "the session store is unavailable".into(),
                )),
            )
        }
    }
}
