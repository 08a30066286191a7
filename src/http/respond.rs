//! The one place where decisions and rejections become HTTP responses.
//!
//! Handlers extract, call one function, and hand the result here. A browser
//! gets a small HTML page with a plain message; an API client gets JSON; the
//! log gets the detail. Provider-supplied text never reaches a page.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

use super::metrics::{BadRequestReason, Endpoint};
use super::pages;
use crate::assertion::AssertionError;
use crate::config::{HeaderNames, PublicUrl};
use crate::gate::{GateError, Verdict};
use crate::oidc::bearer::{BearerError, Throttle, TokenError};
use crate::oidc::flow::{BadRedirect, FlowError, OAuthError, OAuthErrorCode};
use crate::oidc::OidcError;
use crate::policy::{Identity, Outcome};
use crate::request::RequestError;
use crate::session::store::StoreError;
use crate::session::{CreateError, TooLarge};

mod denied;
mod scim;
mod service;
pub(crate) use denied::Denied;
pub(crate) use scim::{scim, scim_error, scim_json};
pub(crate) use service::{
    alive, backchannel, bad_query, jwks, metrics, private_json, readiness, LogoutAnswer, Readiness,
};

/// Who is asking: a person's browser navigating, or a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Browser,
    Api,
}

impl Client {
    /// A browser sends `Accept` with `text/html`, no `X-Requested-With:
    /// XMLHttpRequest`, and no `Sec-Fetch-Mode` other than `navigate`.
    pub(crate) fn of(headers: &HeaderMap) -> Client {
        let xhr = headers
            .get("x-requested-with")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
        let not_navigation = headers
            .get("sec-fetch-mode")
            .is_some_and(|m| !m.as_bytes().eq_ignore_ascii_case(b"navigate"));
        let wants_html = headers
            .get_all(header::ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/html"));
        if wants_html && !xhr && !not_navigation {
            Client::Browser
        } else {
            Client::Api
        }
    }
}

/// Every way pocketgate refuses a request outside a policy decision.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    /// The connection has no peer address (cannot happen over TCP).
    #[error("no peer address")]
    NoPeer,
    /// The proxy's description of the original request is unusable.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// `rd` on `/login` or `/logout` is not a configured target.
    #[error("return address {rd:?} {why}")]
    Redirect { rd: String, why: BadRedirect },
    /// The answer at `/callback` does not complete a flow of this browser.
    #[error("sign-in failed: {error}")]
    Flow {
        error: FlowError,
        retry: Option<String>,
    },
    /// The code exchange or the ID token failed.
    #[error("sign-in failed: {error}")]
    SignIn {
        error: OidcError,
        retry: Option<String>,
    },
    /// `/login` while the provider's metadata is not loaded.
    #[error("login impossible: {0}")]
    ProviderUnavailable(OidcError),
    /// The signed-in identity does not fit in the cookies browsers keep.
    #[error(transparent)]
    SessionTooLarge(TooLarge),
    /// The session store cannot answer: never a login loop, never an allow.
    #[error(transparent)]
    StoreUnavailable(#[from] StoreError),
    /// A session could not be started in the store.
    #[error("cannot start the session: {0}")]
    SessionNotStored(CreateError),
    /// The OS random source failed: no state, nonce or verifier can be drawn.
    #[error("the operating system's random source failed: {0}")]
    NoRandomness(getrandom::Error),
    /// The identity assertion could not be signed.
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    /// `Authorization: Bearer` with a token that is refused: 401
    /// `invalid_token`, never a redirect.
    #[error(transparent)]
    BearerInvalid(TokenError),
    /// The provider cannot answer for a bearer token now (keys, userinfo): 503.
    #[error("bearer token not checked: {0}")]
    BearerUnavailable(std::sync::Arc<OidcError>),
    /// A bearer token needs a provider lookup past the bounds on lookups:
    /// 503 with `Retry-After`.
    #[error("bearer token not checked: {0}")]
    BearerThrottled(Throttle),
    /// A field of the identity cannot be sent as a header (control characters).
    #[error("the user's {0} holds characters that cannot go into a header")]
    UnsendableIdentity(&'static str),
    /// The query string does not fit the endpoint's parameters (`rd` twice).
    #[error("bad query string: {0}")]
    Query(String),
    /// SCIM keeps this user inactive: no sign-in until it is active again.
    #[error("sign-in refused: SCIM keeps the account of {0:?} inactive")]
    AccountDisabled(String),
}

impl Rejection {
    /// The status code.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Rejection::NoPeer
            | Rejection::Request(_)
            | Rejection::Redirect { .. }
            | Rejection::Query(_) => StatusCode::BAD_REQUEST,
            Rejection::Flow { error, .. } => match error {
                FlowError::Refused {
                    code: OAuthErrorCode(OAuthError::AccessDenied),
                    ..
                } => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            },
            Rejection::SignIn { error, .. } => match error {
                OidcError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
                OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
                OidcError::Refused { .. } => StatusCode::BAD_REQUEST,
                OidcError::IdToken(_) => StatusCode::UNAUTHORIZED,
                OidcError::Claims(_) => StatusCode::FORBIDDEN,
            },
            Rejection::BearerInvalid(_) => StatusCode::UNAUTHORIZED,
            Rejection::ProviderUnavailable(_)
            | Rejection::BearerUnavailable(_)
            | Rejection::BearerThrottled(_)
            | Rejection::NoRandomness(_)
            | Rejection::StoreUnavailable(_)
            | Rejection::SessionNotStored(_)
            | Rejection::Assertion(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::SessionTooLarge(_)
            | Rejection::UnsendableIdentity(_)
            | Rejection::AccountDisabled(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The bounded `reason` label of `pocketgate_bad_requests_total`, when
    /// this rejection is a bad request (400).
    pub(crate) fn bad_request_reason(&self) -> Option<BadRequestReason> {
        if self.status() != StatusCode::BAD_REQUEST {
            return None;
        }
        Some(match self {
            Rejection::NoPeer => BadRequestReason::no_peer,
            Rejection::Request(e) => BadRequestReason::from(e),
            Rejection::Redirect { .. } => BadRequestReason::bad_rd,
            // Refused by the extractor before any handler counts it.
            Rejection::Query(_) => return None,
            _ => BadRequestReason::bad_flow,
        })
    }

    /// A title and a sentence for the person in front of the browser: what
    /// happened and what to do, without internal or provider-supplied detail.
    fn public(&self) -> (&'static str, String) {
        match self {
            Rejection::NoPeer => ("Bad request", "pocketgate: no peer address".into()),
            Rejection::Request(e) => ("Bad request", format!("pocketgate: 400 Bad Request: {e}")),
            Rejection::Redirect { why, .. } => (
                "Refused redirect",
                format!("The return address {why}, so pocketgate will not send you there."),
            ),
            Rejection::Flow { error, .. } => match error {
                FlowError::UnknownFlow => ("Sign-in expired", "This sign-in was not started in this browser, was already completed, or took longer than 10 minutes.".into()),
                FlowError::NoState => ("Sign-in failed", "The answer from the identity provider carries no state.".into()),
                FlowError::IssMissing => ("Sign-in failed", "The answer from the identity provider lacks the iss parameter it promises (RFC 9207).".into()),
                FlowError::IssMismatch(_) => ("Sign-in failed", "The answer names another identity provider than the configured issuer (iss mismatch).".into()),
                FlowError::Refused { code, .. } => ("Sign-in refused", refused_sentence(code.0)),
                FlowError::NoCode => ("Sign-in failed", "The answer from the identity provider carries no code.".into()),
            },
            Rejection::SignIn { error, .. } => ("Sign-in failed", match error {
                OidcError::NotReady(_) => "The identity provider cannot be reached right now. Try again in a minute.".into(),
                OidcError::Provider(_) => "The identity provider did not answer properly. Try again in a minute.".into(),
                OidcError::Refused { code, .. } => format!("The identity provider refused to complete the sign-in ({code}). Sign in again."),
                OidcError::IdToken(_) => "The identity provider's answer could not be verified.".into(),
                OidcError::Claims(_) => "The identity the provider sent cannot be used (see pocketgate's log).".into(),
            }),
            Rejection::BearerInvalid(_) => (
                "Invalid token",
                "The bearer token is invalid, expired or not meant for this service.".into(),
            ),
            Rejection::BearerThrottled(t) => (
                "Token not checked",
                format!("Too many bearer tokens are waiting for the identity provider's answer right now. Try again in {} seconds.", t.retry_after()),
            ),
            Rejection::BearerUnavailable(_) => (
                "Token not checked",
                "The identity provider cannot be reached right now to check the bearer token. Try again in a minute.".into(),
            ),
            Rejection::ProviderUnavailable(_) => (
                "Sign-in unavailable",
                "The identity provider cannot be reached right now, so you cannot sign in. Try again in a minute.".into(),
            ),
            Rejection::StoreUnavailable(_) | Rejection::SessionNotStored(_) => (
                "Session store unavailable",
                "pocketgate cannot reach its session store right now, so it cannot check your sign-in. Try again in a minute.".into(),
            ),
            Rejection::NoRandomness(_) => (
                "Sign-in unavailable",
                "pocketgate cannot start a sign-in right now (see its log).".into(),
            ),
            Rejection::Assertion(_) => (
                "Access unavailable",
                "pocketgate cannot sign your identity for the application right now (see its log).".into(),
            ),
            Rejection::SessionTooLarge(_) => (
                "Sign-in failed",
                "Your identity is too large for a cookie (too many groups or claims).".into(),
            ),
            Rejection::UnsendableIdentity(field) => (
                "Access denied",
                format!("Your {field} holds characters that cannot be passed to the application."),
            ),
            Rejection::Query(e) => (
                "Bad request",
                format!("The address's query string cannot be read ({e})."),
            ),
            Rejection::AccountDisabled(_) => (
                "Account disabled",
                "This account is disabled. Ask an administrator to enable it again.".into(),
            ),
        }
    }

    /// The link offered below the message, if signing in again makes sense.
    fn retry(&self) -> Option<Option<&str>> {
        match self {
            Rejection::Flow { retry, .. } | Rejection::SignIn { retry, .. } => {
                Some(retry.as_deref())
            }
            _ => None,
        }
    }

    fn log(&self) {
        match self {
            Rejection::Request(_) | Rejection::NoPeer => {
                tracing::warn!(error = %self, "cannot reconstruct the original request")
            }
            Rejection::Redirect { .. } => tracing::info!(error = %self, "refused return address"),
            Rejection::Query(_) => tracing::info!(error = %self, "refused query string"),
            // The reason only: a token is never logged.
            Rejection::BearerInvalid(_) => tracing::info!(error = %self, "bearer token refused"),
            _ => tracing::warn!(error = %self, "request refused"),
        }
    }
}

fn refused_sentence(code: OAuthError) -> String {
    match code {
        OAuthError::AccessDenied => "The identity provider refused the sign-in (access_denied): your account may not be allowed to use this service.".into(),
        other => format!("The identity provider refused the sign-in ({}).", other.as_str()),
    }
}

/// The response for a rejection, logged with its detail.
pub(crate) fn reject(rejection: &Rejection, client: Client) -> HttpResponse {
    reject_to(rejection, client, None)
}

/// [`reject`], with the `support_contact` line on a browser's page.
pub(crate) fn reject_to(
    rejection: &Rejection,
    client: Client,
    support: Option<&str>,
) -> HttpResponse {
    rejection.log();
    let status = rejection.status();
    let (title, message) = rejection.public();
    let mut response = match (rejection, client) {
        // A proxy misconfiguration: plain text for whoever reads the proxy's error.
        (Rejection::Request(_) | Rejection::NoPeer, _) => text(status, format!("{message}\n")),
        (_, Client::Browser) => {
            let mut body = format!("<p>{}</p>", pages::escape(&message));
            body.push_str(&pages::support_line(support));
            if let Some(retry) = rejection.retry() {
                body.push_str(&sign_in_again(retry));
            }
            html(status, title, &body)
        }
        (_, Client::Api) => no_store(HttpResponse::build(status)).json(serde_json::json!({
            "error": match rejection {
                Rejection::BearerInvalid(_) => "invalid_token".to_string(),
                _ => status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace(' ', "_"),
            },
            "message": message,
        })),
    };
    // RFC 6750 section 3: the scheme and the error code, nothing about the token.
    if let Rejection::BearerInvalid(_) = rejection {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    if let Rejection::BearerThrottled(t) = rejection {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after()));
    }
    if let Rejection::ProviderUnavailable(_) = rejection {
        // The provider is asked again every few seconds; a minute is the page's own advice.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    response
}

fn sign_in_again(rd: Option<&str>) -> String {
    let href = match rd {
        Some(rd) => format!(
            "/login?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ),
        None => "/login".into(),
    };
    format!(
        "<p><a href=\"{}\">Sign in again</a></p>",
        pages::escape(&href)
    )
}

impl From<GateError> for Rejection {
    fn from(e: GateError) -> Rejection {
        match e {
            GateError::Store(e) => Rejection::StoreUnavailable(e),
            GateError::Bearer(BearerError::Invalid(e)) => Rejection::BearerInvalid(e),
            GateError::Bearer(BearerError::Unavailable(e)) => Rejection::BearerUnavailable(e),
            GateError::Bearer(BearerError::Throttled(t)) => Rejection::BearerThrottled(t),
            GateError::Assertion(e) => Rejection::Assertion(e),
        }
    }
}

/// The response when the gate reached no decision. A refused or unchecked
/// bearer token answers a script, whatever its `Accept` header says: never
/// a login page.
pub(crate) fn refused(e: GateError, client: Client) -> HttpResponse {
    let client = match e {
        GateError::Bearer(_) => Client::Api,
        _ => client,
    };
    reject(&Rejection::from(e), client)
}

/// What answering a decision needs besides the gate's verdict.
pub(crate) struct Answer<'a> {
    pub endpoint: Endpoint,
    pub client: Client,
    pub verdict: &'a Verdict<'a>,
}

/// The response for a decision: 200 (with identity headers on allow), a
/// redirect or 401 to sign in, or 403 with the reason.
pub(crate) fn decision(answer: &Answer<'_>) -> HttpResponse {
    let verdict = answer.verdict;
    match verdict.outcome() {
        Outcome::Bypass => no_store(HttpResponse::Ok()).finish(),
        Outcome::Allow => {
            let Some(user) = verdict.identity() else {
                // The engine never allows without an identity; fail closed if it ever did.
                return text(StatusCode::FORBIDDEN, "pocketgate: no identity\n");
            };
            match identity_headers(verdict.names, user) {
                Ok(headers) => {
                    let mut resp = no_store(HttpResponse::Ok());
                    for (name, value) in headers {
                        resp.insert_header((name, value));
                    }
                    if let Some((name, value)) = &verdict.assertion {
                        resp.insert_header(((*name).clone(), value.clone()));
                    }
                    resp.finish()
                }
                Err(field) => {
                    tracing::warn!(user = %user.subject, field, "identity holds characters that cannot go into a header; denied");
                    let lack = Rejection::UnsendableIdentity(field).public().1;
                    deny(
                        answer.client,
                        &Denied::with_lack(verdict, lack.clone()),
                        &lack,
                    )
                }
            }
        }
        Outcome::Login => login(answer),
        Outcome::Deny => deny(answer.client, &Denied::of(verdict), &verdict.reason()),
    }
}

fn login(answer: &Answer<'_>) -> HttpResponse {
    let public_url = answer.verdict.public_url;
    let login_url = format!(
        "{}/login?rd={}",
        public_url.origin,
        url::form_urlencoded::byte_serialize(answer.verdict.original.url().as_bytes())
            .collect::<String>()
    );
    match answer.client {
        Client::Browser => {
            let status = match answer.endpoint {
                Endpoint::ForwardAuth => StatusCode::FOUND,
                // nginx's auth_request understands only 2xx, 401 and 403.
                Endpoint::AuthRequest => StatusCode::UNAUTHORIZED,
            };
            no_store(HttpResponse::build(status))
                .insert_header((header::LOCATION, login_url))
                .content_type("text/plain; charset=utf-8")
                .body("sign-in required\n")
        }
        Client::Api => no_store(HttpResponse::Unauthorized())
            .insert_header((
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"{}\"", public_url.host),
            ))
            .json(serde_json::json!({
                "error": "unauthorized",
                "message": "sign-in required",
                "login_url": login_url,
            })),
    }
}

/// 403: for a browser, a page in the person's words with a way out; for a
/// script, JSON with the operator's `reason`.
pub(crate) fn deny(client: Client, page: &Denied<'_>, reason: &str) -> HttpResponse {
    match client {
        Client::Browser => html(StatusCode::FORBIDDEN, "Access denied", &page.body()),
        Client::Api => no_store(HttpResponse::Forbidden()).json(serde_json::json!({
            "error": "forbidden",
            "host": page.host,
            "reason": reason,
        })),
    }
}

/// 401 for `/whoami` without a session.
pub(crate) fn no_session(public_url: &PublicUrl) -> HttpResponse {
    no_store(HttpResponse::Unauthorized())
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!("Bearer realm=\"{}\"", public_url.host),
        ))
        .json(serde_json::json!({"error": "unauthorized", "message": "no session"}))
}

/// The identity headers for `user`, or the name of the field that cannot be
/// sent (a control character, CR or LF in it). The e-mail header only when
/// `email_verified` is true. Groups are comma-joined; a group
/// whose name itself holds a comma is left out of the header, since a backend
/// splitting on commas would read it as two groups.
pub fn identity_headers(
    names: &HeaderNames,
    user: &Identity,
) -> Result<Vec<(header::HeaderName, HeaderValue)>, &'static str> {
    let mut out = Vec::with_capacity(4);
    out.push((
        names.user.clone(),
        header_value(&user.user).ok_or("user name")?,
    ));
    // Only an address the provider vouches for: an unverified one could
    // name anyone, and backends key accounts on it.
    if let Some(email) = user.email.as_ref().filter(|_| user.email_verified) {
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

/// `Cache-Control: no-store` on every answer: decisions are per request.
pub(crate) fn no_store(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// A 302 to `location`, not cached.
pub(crate) fn found(location: &str) -> HttpResponseBuilder {
    let mut b = no_store(HttpResponse::Found());
    b.insert_header((header::LOCATION, location.to_string()));
    b
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    no_store(HttpResponse::build(status))
        .content_type("text/plain; charset=utf-8")
        .body(body.into())
}

/// A small HTML page, with a content security policy that allows no script.
/// The page that asks before signing out (a `/logout` from another site):
/// 200, not cached, and never in a frame, so that another site cannot
/// overlay the button.
pub(crate) fn confirm_logout(rd: &str) -> HttpResponse {
    let mut resp = html(StatusCode::OK, "Sign out?", &pages::logout_confirmation(rd));
    let headers = resp.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    resp
}

pub(crate) fn html(status: StatusCode, title: &str, body_html: &str) -> HttpResponse {
    no_store(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(pages::page(title, body_html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_e_mail_header_goes_only_with_a_verified_address() {
        let names = HeaderNames {
            user: header::HeaderName::from_static("x-remote-user"),
            email: header::HeaderName::from_static("x-remote-email"),
            name: header::HeaderName::from_static("x-remote-name"),
            groups: header::HeaderName::from_static("x-remote-groups"),
        };
        let mut user = Identity {
            user: "bob".into(),
            email: Some("boss@example.com".into()),
            email_verified: false,
            ..Identity::default()
        };
        let email_of = |user: &Identity| {
            identity_headers(&names, user).map(|headers| {
                headers
                    .into_iter()
                    .find(|(n, _)| n == "x-remote-email")
                    .map(|(_, v)| v)
            })
        };
        assert_eq!(email_of(&user), Ok(None), "unverified: left out");
        user.email_verified = true;
        assert_eq!(
            email_of(&user),
            Ok(Some(HeaderValue::from_static("boss@example.com")))
        );
    }
}
