//! `/forward-auth` (Caddy, Traefik), `/auth-request` (nginx) and `/whoami`.
//!
//! The auth handlers read the request (the original request from the
//! proxy's headers, the session cookies, `Authorization`), ask
//! [`gate::decide`], count the answer and hand it to `respond`.

use std::time::Instant;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse};

use super::metrics::{BearerResult, Endpoint, Metrics};
use super::respond::{self, Answer, Client, Rejection};
use super::{cookie_values, now, peer_ip, AppState, State};
use crate::audit;
use crate::gate::{self, Credentials, GateError, Services, Verdict};
use crate::oidc::bearer::{self, BearerError, Source};
use crate::request::{self, Scheme};
use crate::session;
use crate::telemetry::otel;
use tracing::Instrument;

pub(super) async fn forward_auth(req: HttpRequest, state: State) -> HttpResponse {
    check(&req, &state, Endpoint::ForwardAuth).await
}

pub(super) async fn auth_request(req: HttpRequest, state: State) -> HttpResponse {
    check(&req, &state, Endpoint::AuthRequest).await
}

/// Read the request, let the gate decide, answer.
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
    let cookies = state.session_cookies(req.headers());
    let credentials = state.credentials(req.headers(), &cookies);
    let span = otel::decision_span(req.headers(), &original.host);
    // Wrapped in the span only when traces are on, and made where it is
    // awaited: a future bound to a name, or wrapped, is moved (the
    // decision's is about a kilobyte, copied twice a request).
    let verdict = if span.is_disabled() {
        gate::decide(&original, rt, state.services(), credentials, now()).await
    } else {
        gate::decide(&original, rt, state.services(), credentials, now())
            .instrument(span.clone())
            .await
    };
    count_bearer(&state.metrics, &verdict);
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => return respond::refused(e, client, rt.support_contact.as_deref()),
    };
    if let Some(current) = verdict.refresh_due() {
        super::refresh::spawn(state, current);
    }
    audit::decision(req, &rt.trusted_proxies, &verdict);
    let user = verdict.identity().map(|i| i.user.as_str());
    otel::decided(
        &span,
        verdict.outcome().as_str(),
        || verdict.decision.rule_name(),
        user,
    );
    let (host, outcome) = (verdict.decision.host, verdict.outcome());
    state
        .decisions
        .count(endpoint, host, outcome, started.elapsed());
    respond::decision(&Answer {
        endpoint,
        client,
        verdict: &verdict,
    })
}

/// `pocketgate_bearer_tokens{result}` (and `_throttled{reason}`) for a
/// request whose bearer token was looked at.
fn count_bearer(metrics: &Metrics, verdict: &Result<Verdict<'_>, GateError>) {
    let result = match verdict {
        Ok(v) => match v.bearer_source() {
            Some(Source::Cache) => BearerResult::Cached,
            Some(Source::Jwt) => BearerResult::Jwt,
            Some(Source::Userinfo) => BearerResult::Userinfo,
            Some(Source::Introspection) => BearerResult::Introspection,
            None => return,
        },
        Err(GateError::Bearer(BearerError::Invalid(_))) => BearerResult::Invalid,
        Err(GateError::Bearer(BearerError::Unavailable(_))) => BearerResult::Unavailable,
        Err(GateError::Bearer(BearerError::Throttled(t))) => return metrics.bearer_throttled(*t),
        Err(_) => return,
    };
    metrics.bearer(result);
}

impl AppState {
    /// What the gate may ask, from this configuration.
    pub(crate) fn services(&self) -> Services<'_> {
        Services {
            sessions: &self.sessions,
            bearer: self.bearer.as_deref(),
            assertion: self.assertion.as_deref(),
            directory: self.directory.as_ref(),
        }
    }

    /// The request's session cookies: the configured name's family only.
    pub(crate) fn session_cookies<'h>(&self, headers: &'h HeaderMap) -> Vec<(&'h str, &'h str)> {
        let name = self.cookie.name.as_str();
        cookie_values(headers, |n| session::is_family(name, n))
    }

    /// What the request carries that may name a user, for the gate.
    pub(crate) fn credentials<'h>(
        &self,
        headers: &'h HeaderMap,
        cookies: &'h [(&'h str, &'h str)],
    ) -> Credentials<'h> {
        let values = headers.get_all(header::AUTHORIZATION).map(|v| v.as_bytes());
        Credentials {
            session: cookies,
            bearer: bearer::credential(values),
        }
    }
}

pub(super) async fn whoami(req: HttpRequest, state: State) -> HttpResponse {
    match state.session(req.headers()).await {
        Ok(Some(c)) => respond::private_json(serde_json::json!({
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
