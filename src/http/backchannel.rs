//! `POST /backchannel-logout`: OIDC Back-Channel Logout 1.0. The provider
//! posts a signed `logout_token`; once it verifies (`oidc::logout`), the
//! sessions of its `sid` end (a token without a `sid`: every session of its
//! `sub`), and only then is its `jti` recorded: a token seen before is a
//! replay. 200 on success; 400 with the reason otherwise; 503 when the
//! provider's keys or the session store cannot be reached, and then the
//! token is not spent, so the provider's retry ends the sessions. Every
//! answer carries `Cache-Control: no-store`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::respond::{self, LogoutAnswer};
use super::{now, State};
use crate::audit;
use crate::oidc::logout::{LogoutTokenError, MAX_AGE};
use crate::session::store::Filter;
use crate::session::EndReason;

/// Largest form body accepted (a logout token is at most 16 KiB).
pub(super) const MAX_BODY: usize = 32 * 1024;

#[derive(Deserialize)]
pub(super) struct LogoutForm {
    logout_token: Option<String>,
}

pub(super) async fn backchannel_logout(
    req: HttpRequest,
    state: State,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    let Some(token) = form.logout_token.as_deref().filter(|t| !t.is_empty()) else {
        return respond::backchannel(LogoutAnswer::Refused("no logout_token".into()));
    };
    if state.sessions.store().is_none() {
        tracing::warn!(
            "back-channel logout received, but session.store = \"cookie\" keeps nothing to end"
        );
        return respond::backchannel(LogoutAnswer::Refused(
            "this relying party keeps stateless sessions (session.store = cookie) and cannot end them".into(),
        ));
    }
    let now = now();
    let claims = match state.provider.verify_logout_token(token, now).await {
        Ok(c) => c,
        Err(e @ (LogoutTokenError::NotReady | LogoutTokenError::KeysUnavailable)) => {
            tracing::warn!(error = %e, "back-channel logout: cannot verify now");
            return respond::backchannel(LogoutAnswer::Unavailable(e.to_string()));
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: logout token refused");
            return respond::backchannel(LogoutAnswer::Refused(e.to_string()));
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
            let who = audit::Context::http(&req, &state.runtime.trusted_proxies);
            audit::backchannel_logout(
                &audit::Context {
                    subject: claims.sub.as_deref(),
                    ..who
                },
                ended,
            );
            respond::backchannel(LogoutAnswer::Ended)
        }
        Ok(None) => {
            tracing::warn!(jti = %claims.jti, "back-channel logout: replayed logout token");
            respond::backchannel(LogoutAnswer::Refused(
                "this logout token (jti) was already used".into(),
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: session store unavailable");
            respond::backchannel(LogoutAnswer::Unavailable(
                "the session store is unavailable".into(),
            ))
        }
    }
}
