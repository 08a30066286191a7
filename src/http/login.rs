//! `/login`, `/callback`, `/logout` and the small page at `/`.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cookie::{time, Cookie, SameSite};
use serde::Deserialize;

use super::metrics::{BadRequestEndpoint, BadRequestReason, LoginEvent};
use super::pages::escape;
use super::{html, now, request_cookies, AppState, FLOW_LIFETIME};
use crate::config::Runtime;
use crate::oidc::{random_token, OidcError};
use crate::session::{self, flow_cookie_name, FlowState, Session};

#[derive(Deserialize)]
pub(super) struct RdQuery {
    rd: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Why a post-login or post-logout target is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRedirect(pub &'static str);

/// Validate a post-login/post-logout target: an absolute http(s) URL without
/// credentials, whitespace, control characters or backslashes, on a host the
/// configuration covers, and not a downgrade to http when `public_url` is https.
/// Returns the URL re-serialised by the URL parser (what is followed is what was checked).
pub fn validate_rd(rt: &Runtime, rd: &str) -> Result<String, BadRedirect> {
    if rd.len() > 4096 {
        return Err(BadRedirect("too long"));
    }
    if rd
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(BadRedirect(
            "holds whitespace, control characters or backslashes",
        ));
    }
    let lower = rd.get(..8).unwrap_or(rd).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(BadRedirect("is not an absolute http(s) URL"));
    }
    let url = url::Url::parse(rd).map_err(|_| BadRedirect("is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadRedirect("holds credentials"));
    }
    if rt.public_url.https && url.scheme() != "https" {
        return Err(BadRedirect("would downgrade to http"));
    }
    let host = url.host_str().ok_or(BadRedirect("has no host"))?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if !rt.is_redirect_host(host.trim_start_matches('[').trim_end_matches(']')) {
        return Err(BadRedirect(
            "points at a host this configuration does not cover",
        ));
    }
    Ok(url.to_string())
}

/// Login flows kept per browser at once (each one cookie).
const MAX_PARALLEL_FLOWS: usize = 4;
/// Longest return URL carried through a login: the sealed flow cookie must stay
/// well under the 4 KB browsers keep.
const MAX_RD_IN_FLOW: usize = 2000;

/// A return URL short enough for the flow cookie: without its query if need be,
/// else just its origin. (Already validated, so slicing at ASCII bytes is safe.)
fn fit_rd(rd: String) -> String {
    if rd.len() <= MAX_RD_IN_FLOW {
        return rd;
    }
    let Ok(mut url) = url::Url::parse(&rd) else {
        return rd;
    };
    url.set_query(None);
    url.set_fragment(None);
    if url.as_str().len() <= MAX_RD_IN_FLOW {
        return url.to_string();
    }
    url.set_path("/");
    url.to_string()
}

fn redirect_uri(rt: &Runtime) -> String {
    format!("{}/callback", rt.public_url.origin)
}

fn default_target(rt: &Runtime) -> String {
    format!("{}/", rt.public_url.origin)
}

fn found(location: &str) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::Found();
    b.insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

fn flow_cookie(
    state: &AppState,
    name: String,
    value: String,
    max_age: time::Duration,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.cookie.secure);
    c.set_max_age(max_age);
    c
}

fn bad_rd(
    state: &AppState,
    endpoint: BadRequestEndpoint,
    rd: &str,
    why: BadRedirect,
) -> HttpResponse {
    state
        .metrics
        .bad_request(endpoint, BadRequestReason::bad_rd);
    html(
        StatusCode::BAD_REQUEST,
        "Refused redirect",
        &format!(
            "<p>The return address <code>{}</code> {}, so pocketgate will not send you there.</p>",
            escape(rd),
            escape(why.0)
        ),
    )
}

pub(super) async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<RdQuery>,
) -> HttpResponse {
    let rt = &state.runtime;
    let rd = match q.rd.as_deref() {
        Some(rd) => match validate_rd(rt, rd) {
            Ok(u) => u,
            Err(why) => return bad_rd(&state, BadRequestEndpoint::Login, rd, why),
        },
        None => default_target(rt),
    };
    let flow = FlowState {
        state: random_token(32),
        nonce: random_token(32),
        pkce_verifier: random_token(32),
        rd: fit_rd(rd),
        expires: now() + FLOW_LIFETIME.as_secs(),
    };
    let url = match state.provider.authorization_url(
        &redirect_uri(rt),
        &flow.state,
        &flow.nonce,
        &flow.pkce_verifier,
    ) {
        Ok(u) => u,
        Err(e) => return provider_unavailable(&e),
    };
    state.metrics.login(LoginEvent::Started);
    let mut resp = found(&url);
    // Drop flow cookies of abandoned logins: those that no longer open, and all
    // but the newest few, so that many tabs cannot grow the Cookie header
    // past what proxies accept.
    let prefix = format!("{}_flow_", state.cookie.name);
    let mut live = Vec::new();
    for (name, value) in request_cookies(req.headers(), &prefix) {
        match FlowState::open(&state.keys, &value, now()) {
            Some(f) => live.push((f.expires, name)),
            None => live.push((0, name)),
        }
    }
    live.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    for (i, (expires, name)) in live.into_iter().enumerate() {
        // Keep room for the flow being started now.
        if expires == 0 || i >= MAX_PARALLEL_FLOWS - 1 {
            resp.append_header((
                header::SET_COOKIE,
                flow_cookie(&state, name, String::new(), time::Duration::ZERO).to_string(),
            ));
        }
    }
    let name = flow_cookie_name(&state.cookie.name, &flow.state);
    let max_age = time::Duration::seconds(FLOW_LIFETIME.as_secs() as i64);
    resp.append_header((
        header::SET_COOKIE,
        flow_cookie(&state, name, flow.seal(&state.keys), max_age).to_string(),
    ));
    resp.finish()
}

fn provider_unavailable(e: &OidcError) -> HttpResponse {
    tracing::warn!(error = %e, "login impossible: provider not available");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        &format!(
            "<p>The identity provider cannot be reached right now, so you cannot sign in. Try again in a minute.</p><p><small>{}</small></p>",
            escape(&e.to_string())
        ),
    )
}

fn sign_in_again(rd: Option<&str>) -> String {
    let href = match rd {
        Some(rd) => format!(
            "/login?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ),
        None => "/login".into(),
    };
    format!("<p><a href=\"{}\">Sign in again</a></p>", escape(&href))
}

pub(super) async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    let rt = &state.runtime;
    let fail = |status: StatusCode, title: &str, msg: &str, rd: Option<&str>| {
        state.metrics.login(LoginEvent::Failed);
        if status == StatusCode::BAD_REQUEST {
            state
                .metrics
                .bad_request(BadRequestEndpoint::Callback, BadRequestReason::bad_flow);
        }
        let mut resp = html(
            status,
            title,
            &format!("<p>{}</p>{}", escape(msg), sign_in_again(rd)),
        );
        if let Some(s) = q.state.as_deref() {
            let name = flow_cookie_name(&state.cookie.name, s);
            if let Ok(c) = header::HeaderValue::from_str(
                &flow_cookie(&state, name, String::new(), time::Duration::ZERO).to_string(),
            ) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
        }
        resp
    };

    let Some(state_param) = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The answer from the identity provider carries no state.",
            None,
        );
    };
    let cookie_name = flow_cookie_name(&state.cookie.name, state_param);
    let flow = request_cookies(req.headers(), &cookie_name)
        .into_iter()
        .find(|(n, _)| *n == cookie_name)
        .and_then(|(_, v)| FlowState::open(&state.keys, &v, now()))
        .filter(|f| f.state == state_param);
    let Some(flow) = flow else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in was not started in this browser, was already completed, or took longer than 10 minutes.",
            None,
        );
    };
    if q.iss.is_none() && state.provider.iss_required() {
        return fail(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The answer from the identity provider lacks the iss parameter it promises (RFC 9207).",
            Some(&flow.rd),
        );
    }
    if let Some(iss) = q.iss.as_deref() {
        if iss != state.provider.issuer() {
            return fail(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The answer names another identity provider than the configured issuer (iss mismatch).",
                Some(&flow.rd),
            );
        }
    }
    if let Some(error) = q.error.as_deref() {
        let msg = match q.error_description.as_deref() {
            Some(d) => format!("The identity provider refused the sign-in: {error}: {d}"),
            None => format!("The identity provider refused the sign-in: {error}"),
        };
        let status = if error == "access_denied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        return fail(status, "Sign-in refused", &msg, Some(&flow.rd));
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The answer from the identity provider carries no code.",
            Some(&flow.rd),
        );
    };
    let sign_in = match state
        .provider
        .complete(&redirect_uri(rt), code, &flow.pkce_verifier, &flow.nonce)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            let status = match e {
                OidcError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
                OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
                OidcError::Refused(_) => StatusCode::BAD_REQUEST,
                OidcError::IdToken(_) => StatusCode::UNAUTHORIZED,
                OidcError::Claims(_) => StatusCode::FORBIDDEN,
            };
            return fail(status, "Sign-in failed", &e.to_string(), Some(&flow.rd));
        }
    };
    let issued = now();
    let session = Session {
        identity: sign_in.identity,
        issued,
        expires: issued + rt.session.lifetime.as_secs(),
        id_token: Some(sign_in.id_token),
    };
    let present = request_cookies(req.headers(), &state.cookie.name);
    let present_names: Vec<&str> = present.iter().map(|(n, _)| n.as_str()).collect();
    let cookies =
        match session::write_cookies(&state.cookie, &session.seal(&state.keys), &present_names) {
            Ok(c) => c,
            Err(_) => {
                // Without the ID token the session fits; logout then goes without id_token_hint.
                let slim = Session {
                    id_token: None,
                    ..session.clone()
                };
                match session::write_cookies(&state.cookie, &slim.seal(&state.keys), &present_names)
                {
                    Ok(c) => c,
                    Err(e) => {
                        return fail(
                            StatusCode::FORBIDDEN,
                            "Sign-in failed",
                            &format!("The identity is too large for a cookie: {e}"),
                            None,
                        )
                    }
                }
            }
        };
    tracing::info!(user = %session.identity.user, groups = ?session.identity.groups, "signed in");
    state.metrics.login(LoginEvent::Completed);
    let mut resp = found(&flow.rd);
    for c in cookies {
        resp.append_header((header::SET_COOKIE, c.to_string()));
    }
    resp.append_header((
        header::SET_COOKIE,
        flow_cookie(&state, cookie_name, String::new(), time::Duration::ZERO).to_string(),
    ));
    resp.finish()
}

pub(super) async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<RdQuery>,
) -> HttpResponse {
    let rt = &state.runtime;
    let rd = match q.rd.as_deref() {
        Some(rd) => match validate_rd(rt, rd) {
            Ok(u) => u,
            Err(why) => return bad_rd(&state, BadRequestEndpoint::Logout, rd, why),
        },
        None => default_target(rt),
    };
    let session = state.session(req.headers());
    let present = request_cookies(req.headers(), &state.cookie.name);
    let present_names: Vec<&str> = present.iter().map(|(n, _)| n.as_str()).collect();
    let mut clear = session::clear_cookies(&state.cookie, &present_names);
    if clear.is_empty() {
        // Nothing visible to clear; still expire the main name in case the browser scoped it elsewhere.
        clear = session::clear_cookies(&state.cookie, &[state.cookie.name.as_str()]);
    }
    state.metrics.login(LoginEvent::Logout);
    if let Some(s) = &session {
        tracing::info!(user = %s.identity.user, "signed out");
    }
    // RP-initiated logout at the provider when it offers it; it returns to /logout/done, which goes on to rd.
    let target = session
        .as_ref()
        .and_then(|s| s.id_token.as_deref())
        .and_then(|hint| {
            state.provider.end_session_url(
                Some(hint),
                &format!("{}/logout/done", rt.public_url.origin),
                Some(&rd),
            )
        })
        .unwrap_or(rd);
    let mut resp = found(&target);
    for c in clear {
        resp.append_header((header::SET_COOKIE, c.to_string()));
    }
    resp.finish()
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    state: Option<String>,
}

/// Where the provider sends the browser after RP-initiated logout; `state` carries the `rd`.
pub(super) async fn logout_done(
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> HttpResponse {
    let rt = &state.runtime;
    match q.state.as_deref().map(|rd| validate_rd(rt, rd)) {
        Some(Ok(rd)) => found(&rd).finish(),
        _ => html(StatusCode::OK, "Signed out", "<p>You are signed out.</p>"),
    }
}

pub(super) async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let body = match state.session(req.headers()) {
        Some(s) => format!(
            "<p>Signed in as <strong>{}</strong>{}.</p><p>Groups: {}</p><p><a href=\"/logout\">Sign out</a></p>",
            escape(&s.identity.user),
            s.identity.email.as_deref().map(|e| format!(" ({})", escape(e))).unwrap_or_default(),
            if s.identity.groups.is_empty() { "none".into() } else { escape(&s.identity.groups.join(", ")) }
        ),
        None => "<p>Not signed in.</p><p><a href=\"/login\">Sign in</a></p>".into(),
    };
    html(StatusCode::OK, "pocketgate", &body)
}
