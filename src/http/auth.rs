//! `/forward-auth` (Caddy, Traefik), `/auth-request` (nginx) and `/whoami`.

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

use super::metrics::{BadRequestReason, Endpoint};
use super::{html, is_browser, pages::escape, peer_ip, text, AppState, IdentityHeaderNames};
use crate::policy::{self, Decision, Identity, Outcome};
use crate::request::{self, OriginalRequest, Scheme};

pub(super) async fn forward_auth(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    check(&req, &state, Endpoint::ForwardAuth)
}

pub(super) async fn auth_request(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    check(&req, &state, Endpoint::AuthRequest)
}

fn check(req: &HttpRequest, state: &AppState, endpoint: Endpoint) -> HttpResponse {
    let started = Instant::now();
    let rt = &state.runtime;
    let Some(peer) = peer_ip(req) else {
        state
            .metrics
            .bad_request(endpoint, BadRequestReason::no_peer);
        return text(StatusCode::BAD_REQUEST, "pocketgate: no peer address\n");
    };
    let default_scheme = if rt.public_url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let original = match request::reconstruct(
        req.headers(),
        peer,
        &rt.trusted_proxies,
        req.method().as_str(),
        default_scheme,
    ) {
        Ok(o) => o,
        Err(e) => {
            state.metrics.bad_request(endpoint, (&e).into());
            tracing::warn!(%peer, error = %e, "cannot reconstruct the original request");
            return text(
                StatusCode::BAD_REQUEST,
                format!("pocketgate: 400 Bad Request: {e}\n"),
            );
        }
    };
    let facts = original.facts();
    let mut session = None;
    let slot = &mut session;
    let decision = policy::decide_with(rt, &facts, move || {
        *slot = state.session(req.headers());
        slot.as_ref().map(|s| &s.identity)
    });
    let identity = session.as_ref().map(|s| &s.identity);
    state
        .metrics
        .decision(endpoint, decision.outcome, started.elapsed());
    if tracing::enabled!(tracing::Level::DEBUG) || decision.outcome == Outcome::Deny {
        let rule = decision.rule_name(rt);
        let user = identity.map(|i| i.user.as_str()).unwrap_or("");
        if decision.outcome == Outcome::Deny {
            tracing::info!(host = %original.host, path = %original.path, client = %original.client_ip, user, outcome = "deny", rule, "decision");
        } else {
            tracing::debug!(host = %original.host, path = %original.path, client = %original.client_ip, user, outcome = decision.outcome.as_str(), rule, "decision");
        }
    }
    respond(req, state, endpoint, &original, &decision, identity)
}

fn respond(
    req: &HttpRequest,
    state: &AppState,
    endpoint: Endpoint,
    original: &OriginalRequest,
    decision: &Decision,
    identity: Option<&Identity>,
) -> HttpResponse {
    let rt = &state.runtime;
    match decision.outcome {
        Outcome::Bypass => no_store(HttpResponse::Ok()).finish(),
        Outcome::Allow => {
            let Some(user) = identity else {
                // The engine never allows without an identity; fail closed if it ever did.
                return text(StatusCode::FORBIDDEN, "pocketgate: no identity\n");
            };
            let mut resp = no_store(HttpResponse::Ok());
            match identity_headers(&state.headers, user) {
                Ok(headers) => {
                    for (name, value) in headers {
                        resp.insert_header((name, value));
                    }
                    resp.finish()
                }
                Err(field) => {
                    tracing::warn!(user = %user.subject, field, "identity holds characters that cannot go into a header; denied");
                    deny_page(
                        req,
                        &original.host,
                        &format!("your {field} holds characters that cannot be passed to the application"),
                    )
                }
            }
        }
        Outcome::Login => {
            let login_url = format!(
                "{}/login?rd={}",
                rt.public_url.origin,
                url::form_urlencoded::byte_serialize(original.url().as_bytes()).collect::<String>()
            );
            if is_browser(req.headers()) {
                let status = match endpoint {
                    Endpoint::ForwardAuth => StatusCode::FOUND,
                    Endpoint::AuthRequest => StatusCode::UNAUTHORIZED,
                };
                no_store(HttpResponse::build(status))
                    .insert_header((header::LOCATION, login_url))
                    .content_type("text/plain; charset=utf-8")
                    .body("sign-in required\n")
            } else {
                no_store(HttpResponse::Unauthorized())
                    .insert_header((
                        header::WWW_AUTHENTICATE,
                        format!("Bearer realm=\"{}\"", rt.public_url.host),
                    ))
                    .json(serde_json::json!({
                        "error": "unauthorized",
                        "message": "sign-in required",
                        "login_url": login_url,
                    }))
            }
        }
        Outcome::Deny => {
            let facts = original.facts();
            let reason = decision.reason(rt, &facts, identity);
            deny_page(req, &original.host, &reason)
        }
    }
}

fn deny_page(req: &HttpRequest, host: &str, reason: &str) -> HttpResponse {
    if is_browser(req.headers()) {
        html(
            StatusCode::FORBIDDEN,
            "Access denied",
            &format!(
                "<p>You may not open <strong>{}</strong>.</p><p>{}</p>",
                escape(host),
                escape(reason)
            ),
        )
    } else {
        no_store(HttpResponse::Forbidden()).json(serde_json::json!({
            "error": "forbidden",
            "host": host,
            "reason": reason,
        }))
    }
}

fn no_store(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// The identity headers for `user`, or the name of the field that cannot be
/// sent (a control character, CR or LF in it). Groups are comma-joined; a group
/// whose name itself holds a comma is left out of the header, since a backend
/// splitting on commas would read it as two groups.
pub fn identity_headers(
    names: &IdentityHeaderNames,
    user: &Identity,
) -> Result<Vec<(actix_web::http::header::HeaderName, HeaderValue)>, &'static str> {
    let mut out = Vec::with_capacity(4);
    out.push((
        names.user.clone(),
        header_value(&user.user).ok_or("user name")?,
    ));
    if let Some(email) = &user.email {
        out.push((
            names.email.clone(),
            header_value(email).ok_or("e-mail address")?,
        ));
    }
    if let Some(name) = &user.name {
        out.push((names.name.clone(), header_value(name).ok_or("name")?));
    }
    let groups: Vec<&str> = user
        .groups
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty() && !g.contains(','))
        .collect();
    if !groups.is_empty() {
        out.push((
            names.groups.clone(),
            header_value(&groups.join(",")).ok_or("group names")?,
        ));
    }
    Ok(out)
}

/// A header value from UTF-8 text, refusing control characters (CR, LF, NUL, DEL...).
fn header_value(s: &str) -> Option<HeaderValue> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    HeaderValue::from_bytes(s.as_bytes()).ok()
}

pub(super) async fn whoami(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.session(req.headers()) {
        Some(s) => no_store(HttpResponse::Ok()).json(serde_json::json!({
            "user": s.identity.user,
            "email": s.identity.email,
            "email_verified": s.identity.email_verified,
            "name": s.identity.name,
            "groups": s.identity.groups,
            "subject": s.identity.subject,
            "issued": s.issued,
            "expires": s.expires,
        })),
        None => no_store(HttpResponse::Unauthorized())
            .insert_header((
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"{}\"", state.runtime.public_url.host),
            ))
            .json(serde_json::json!({"error": "unauthorized", "message": "no session"})),
    }
}
