//! `/forward-auth` (Caddy, Traefik), `/auth-request` (nginx) and `/whoami`.
//!
//! Identity, when the decision needs one: the session cookie, else (with
//! `[bearer]`) an `Authorization: Bearer` token. A request carrying both is
//! decided by its session.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::metrics::{BearerResult, Endpoint};
use super::respond::{self, Answer, Client, Rejection};
use super::{peer_ip, State};
use crate::oidc::bearer::{self, BearerAuth, BearerError, Credential, Source};
use crate::policy::{self, Identity, Outcome};
use crate::request::{self, Scheme};

pub(super) async fn forward_auth(req: HttpRequest, state: State) -> HttpResponse {
    check(&req, &state, Endpoint::ForwardAuth).await
}

pub(super) async fn auth_request(req: HttpRequest, state: State) -> HttpResponse {
    check(&req, &state, Endpoint::AuthRequest).await
}

/// Extract the original request, decide, answer. The session is looked up
/// only when the decision needs an identity: bypasses, trusted networks and
/// unknown hosts never touch the cookie or the store.
async fn check(req: &HttpRequest, state: &State, endpoint: Endpoint) -> HttpResponse {
    let started = Instant::now();
    let rt = &state.runtime;
    let client = Client::of(req.headers());
    let default_scheme = if rt.public_url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let original = peer_ip(req).ok_or(Rejection::NoPeer).and_then(|peer| {
        request::reconstruct(
            req.headers(),
            peer,
            &rt.trusted_proxies,
            req.method().as_str(),
            default_scheme,
        )
        .map_err(Rejection::from)
    });
    let original = match original {
        Ok(o) => o,
        Err(rejection) => {
            if let Some(reason) = rejection.bad_request_reason() {
                state.metrics.bad_request(endpoint, reason);
            }
            return respond::reject(&rejection, client);
        }
    };
    let facts = original.facts();
    let mut decision = policy::decide(&rt.rules, &facts, None);
    let mut current = None;
    let mut token_identity = None;
    if decision.outcome == Outcome::Login {
        current = match state.session(req.headers()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "session store unavailable");
                return respond::reject(&Rejection::StoreUnavailable(e), client);
            }
        };
        if let Some(c) = &current {
            decision = policy::decide(&rt.rules, &facts, Some(&c.session.identity));
            if c.refresh_due {
                super::refresh::spawn(state, c);
            }
        } else if let Some(bearer) = &state.bearer {
            // The session wins: a token is only looked at without one.
            match bearer_identity(req, bearer, original.client.ip(), state).await {
                Ok(Some(identity)) => {
                    decision = policy::decide(&rt.rules, &facts, Some(&identity));
                    token_identity = Some(identity);
                }
                Ok(None) => {}
                // A script, whatever its Accept header says: never a login page.
                Err(rejection) => return respond::reject(&rejection, Client::Api),
            }
        }
    }
    let identity = current
        .as_ref()
        .map(|c| &*c.session.identity)
        .or(token_identity.as_deref());
    state
        .metrics
        .decision(endpoint, decision.outcome, started.elapsed());
    if tracing::enabled!(tracing::Level::DEBUG) || decision.outcome == Outcome::Deny {
        let rule = decision.rule_name();
        let user = identity.map(|i| i.user.as_str()).unwrap_or("");
        if decision.outcome == Outcome::Deny {
            tracing::info!(host = %original.host, path = %original.path, client = %original.client, user, outcome = "deny", rule, "decision");
        } else {
            tracing::debug!(host = %original.host, path = %original.path, client = %original.client, user, outcome = decision.outcome.as_str(), rule, "decision");
        }
    }
    // The assertion is signed (or taken from the cache) only for an allow
    // with identity: a bypass or a trusted network never carries one.
    let assertion = match (&state.assertion, identity, decision.outcome) {
        (Some(a), Some(user), Outcome::Allow) => {
            let audience =
                crate::assertion::audience(original.scheme == Scheme::Https, &original.authority);
            match a.assertion(user, &audience, super::now()) {
                Ok(value) => Some((a.header(), value)),
                Err(e) => return respond::reject(&Rejection::Assertion(e), client),
            }
        }
        _ => None,
    };
    let answer = Answer {
        endpoint,
        client,
        // A login for this host runs where its session cookie will be set.
        public_url: &rt.login_domain_for(&original.host).public_url,
        original: &original,
        // The matched host entry's `[hosts.headers]`, else `[headers]`.
        names: rt.headers_for(&decision.host),
        identity,
        assertion,
    };
    respond::decision(decision.outcome, &answer, || {
        decision.reason(&rt.rules, &facts, identity)
    })
}

/// The identity of the request's `Authorization: Bearer` token; `None`
/// without one (or with another scheme), a rejection for a refused token or
/// one the provider cannot check now.
async fn bearer_identity(
    req: &HttpRequest,
    bearer: &BearerAuth,
    client: IpAddr,
    state: &State,
) -> Result<Option<Arc<Identity>>, Rejection> {
    let values = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let token = match bearer::credential(values) {
        Credential::None => return Ok(None),
        Credential::Bearer(token) => token,
        Credential::Malformed(e) => {
            state.metrics.bearer(BearerResult::Invalid);
            return Err(Rejection::BearerInvalid(e));
        }
    };
    match bearer.authenticate(token, client).await {
        Ok((identity, source)) => {
            state.metrics.bearer(match source {
                Source::Cache => BearerResult::Cached,
                Source::Jwt => BearerResult::Jwt,
                Source::Userinfo => BearerResult::Userinfo,
                Source::Introspection => BearerResult::Introspection,
            });
            Ok(Some(identity))
        }
        Err(BearerError::Invalid(e)) => {
            state.metrics.bearer(BearerResult::Invalid);
            Err(Rejection::BearerInvalid(e))
        }
        Err(BearerError::Unavailable(e)) => {
            state.metrics.bearer(BearerResult::Unavailable);
            Err(Rejection::BearerUnavailable(e))
        }
        Err(BearerError::Throttled(t)) => {
            state.metrics.bearer_throttled(t);
            Err(Rejection::BearerThrottled(t))
        }
    }
}

pub(super) async fn whoami(req: HttpRequest, state: State) -> HttpResponse {
    match state.session(req.headers()).await {
        Ok(Some(c)) => respond::no_store(HttpResponse::Ok()).json(serde_json::json!({
            "user": c.session.identity.user,
            "email": c.session.identity.email,
            "email_verified": c.session.identity.email_verified,
            "name": c.session.identity.name,
            "groups": c.session.identity.groups,
            "subject": c.session.identity.subject,
            "issued": c.session.issued,
            "expires": c.session.expires,
        })),
        Ok(None) => respond::no_session(&state.runtime.public_url),
        Err(e) => respond::reject(&Rejection::StoreUnavailable(e), Client::Api),
    }
}
