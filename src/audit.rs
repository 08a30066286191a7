//! Audit events: one JSON object per security event (a sign-in, a refusal, a
//! session ended), in a versioned schema that log pipelines can rely on. The
//! records go out on their own tracing target ([`AUDIT_TARGET`]), which
//! `telemetry` writes to stdout (told from the log lines by the `"audit"`
//! marker field) or to `[audit] file`, whatever the log level.
//!
//! Every record holds the time, the request id, the client address, the
//! user and subject where known, and a short reference to the session —
//! never a session id, a token, a cookie or a secret. Call sites are one
//! line: build a [`Context`] and call the event's function. Nothing here
//! decides anything, and with no audit layer installed (tests, `check`)
//! an event costs one `enabled` check.
//!
//! The schema is documented in the book's "Audit events" page; a change to
//! a field's meaning or a removed field raises [`SCHEMA`], new events and
//! new fields do not.

use std::borrow::Cow;
use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use chrono::{SecondsFormat, Utc};
use cookie::Cookie;
use serde::Serialize;

use crate::domain::{ClientAddr, Networks};
use crate::gate::{Identified, Verdict};
use crate::policy::{Identity, Outcome};
use crate::request;
use crate::session::store::StoreKey;
use crate::session::{Current, Purpose, SessionKeys};
pub use crate::telemetry::AUDIT_TARGET;

/// The schema version every record carries in `"schema"`.
pub const SCHEMA: u32 = 1;
/// The marker field's value: `"audit": "pocketgate/1"` tells audit lines
/// from log lines on a shared stdout.
pub const MARKER: &str = "pocketgate/1";
/// The request header a trusted proxy names its request id in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest request id taken from a proxy.
const MAX_REQUEST_ID: usize = 128;
/// Hex digits of the store key a record shows: enough to tell sessions
/// apart and to find one with `pocketgate sessions list`.
const SESSION_REF: usize = 16;

/// Who revoked sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedBy {
    /// `pocketgate sessions revoke`.
    Cli,
    /// The provider's back-channel logout.
    Backchannel,
    /// SCIM deprovisioning.
    Scim,
    /// The session sat unused past its idle limit.
    Idle,
}

/// What happened: the event name and the fields of that event.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// A sign-in completed and a session started.
    Login,
    /// A sign-in did not complete (`reason`: pocketgate's words for why).
    LoginFailed { reason: &'a str },
    /// The browser's session ended at `/logout`.
    Logout,
    /// A request was denied by the policy.
    Deny {
        host: &'a str,
        path: &'a str,
        rule: &'a str,
        reason: &'a str,
    },
    /// A request needs a fresher or stronger sign-in than its session has.
    StepUp {
        host: &'a str,
        path: &'a str,
        rule: &'a str,
        reason: &'a str,
    },
    /// Sessions ended by an operator or a rule, not by their user.
    Revoke { by: RevokedBy, sessions: usize },
    /// The provider refused a refresh: the session ended.
    RefreshInvalid { reason: &'a str },
    /// The provider's back-channel logout ended sessions.
    BackchannelLogout { sessions: usize },
    /// A SCIM client deprovisioned a user; their sessions ended.
    ScimDeprovision { sessions: usize },
    /// The configuration was reloaded (`result`: `ok` or `error`).
    ConfigReload {
        result: &'static str,
        error: Option<&'a str>,
    },
}

/// Who and where an event is about; every field is optional because
/// events outside a request (the command line, a reload) know less.
#[derive(Debug, Default, Clone)]
pub struct Context<'a> {
    /// The proxy's `X-Request-Id`, or one made up for this request.
    pub request_id: Option<Cow<'a, str>>,
    /// The client's address, as the decision reads it.
    pub client: Option<IpAddr>,
    /// The user name.
    pub user: Option<&'a str>,
    /// The provider's subject (`sub`).
    pub subject: Option<&'a str>,
    /// The store key of the session, when the session lives in a store.
    pub session: Option<&'a StoreKey>,
}

impl<'a> Context<'a> {
    /// The context of an HTTP request: its request id and client address
    /// (both believed from the proxy only when the peer is a trusted one).
    pub fn http(req: &'a HttpRequest, trusted_proxies: &Networks) -> Context<'a> {
        let peer = req.peer_addr().map(|a| a.ip());
        Context::of_headers(req.headers(), peer, trusted_proxies)
    }

    /// [`Context::http`] from the parts of a request.
    pub fn of_headers(
        headers: &'a HeaderMap,
        peer: Option<IpAddr>,
        trusted_proxies: &Networks,
    ) -> Context<'a> {
        Context {
            request_id: Some(request_id(headers, peer, trusted_proxies)),
            client: peer.map(|ip| request::client_of(headers, ip, trusted_proxies)),
            ..Context::default()
        }
    }

    /// With the user and subject of `identity`.
    pub fn who(mut self, identity: Option<&'a Identity>) -> Context<'a> {
        self.user = identity.map(|i| i.user.as_str());
        self.subject = identity.map(|i| i.subject.as_str());
        self
    }

    /// With the user name and subject of a sign-in.
    pub fn signed_in(mut self, user: &'a str, subject: &'a str) -> Context<'a> {
        self.user = Some(user);
        self.subject = Some(subject);
        self
    }

    /// With the session kept under `key`.
    pub fn session(mut self, key: Option<&'a StoreKey>) -> Context<'a> {
        self.session = key;
        self
    }

    /// With the user, subject and store key of the request's session.
    pub fn current(self, current: Option<&'a Current>) -> Context<'a> {
        self.who(current.map(|c| &*c.session.identity))
            .session(current.and_then(|c| c.key.as_ref()))
    }
}

/// The request id: a trusted proxy's `X-Request-Id` when it is short
/// printable text, else a fresh random one (so every record of one request
/// can still be told apart from another's).
pub fn request_id<'h>(
    headers: &'h HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxies: &Networks,
) -> Cow<'h, str> {
    let trusted =
        peer.is_some_and(|ip| trusted_proxies.contains(ClientAddr::new(ip.to_canonical())));
    let given = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| trusted && is_request_id(id));
    match given {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(kit::random_token(12).unwrap_or_default()),
    }
}

/// 1 to 128 visible ASCII characters, no quote or backslash: what proxies
/// generate (UUIDs, hex), nothing a log parser trips on.
fn is_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// The store key behind a sealed session id cookie (the value pocketgate
/// sets under the session cookie's name when sessions live in a store).
pub fn key_of_cookie(keys: &SessionKeys, value: &str) -> Option<StoreKey> {
    keys.open(Purpose::SessionId, value)
        .ok()
        .map(|id| StoreKey::of(&id))
}

/// The store key of the session whose cookies a sign-in just set (`name`:
/// the session cookie's name); `None` for stateless sessions.
pub fn key_in(keys: &SessionKeys, name: &str, cookies: &[Cookie<'_>]) -> Option<StoreKey> {
    cookies
        .iter()
        .find(|c| c.name() == name)
        .and_then(|c| key_of_cookie(keys, c.value()))
}

/// One record, as written.
#[derive(Serialize)]
struct Record<'a> {
    audit: &'static str,
    schema: u32,
    time: String,
    #[serde(flatten)]
    event: &'a Event<'a>,
    request_id: Option<&'a str>,
    client: Option<String>,
    user: Option<&'a str>,
    subject: Option<&'a str>,
    session: Option<&'a str>,
}

/// Write `event` about `ctx`: one line on [`AUDIT_TARGET`].
pub fn emit(ctx: &Context<'_>, event: &Event<'_>) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let line = record(ctx, event, Utc::now());
    tracing::info!(target: AUDIT_TARGET, record = line.as_str());
}

/// The JSON line of `event` about `ctx` at `time`.
fn record(ctx: &Context<'_>, event: &Event<'_>, time: chrono::DateTime<Utc>) -> String {
    let record = Record {
        audit: MARKER,
        schema: SCHEMA,
        time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
        event,
        request_id: ctx.request_id.as_deref(),
        client: ctx.client.map(|ip| ip.to_string()),
        user: ctx.user,
        subject: ctx.subject,
        session: ctx.session.and_then(|k| k.as_str().get(..SESSION_REF)),
    };
    // Only strings, numbers and options: serializing cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// A sign-in completed.
pub fn login(ctx: &Context<'_>) {
    emit(ctx, &Event::Login);
}

/// A sign-in failed, and why.
pub fn login_failed(ctx: &Context<'_>, reason: &str) {
    emit(ctx, &Event::LoginFailed { reason });
}

/// A session ended at `/logout`.
pub fn logout(ctx: &Context<'_>) {
    emit(ctx, &Event::Logout);
}

/// The verdict of `req`, when it is a deny or a step-up (other outcomes
/// are not security events: the metrics count them). The context is built
/// only for those, so an allow pays one comparison.
pub fn decision(req: &HttpRequest, trusted_proxies: &Networks, verdict: &Verdict<'_>) {
    let outcome = verdict.outcome();
    if !matches!(outcome, Outcome::Deny | Outcome::StepUp) {
        return;
    }
    let session = match &verdict.identified {
        Some(Identified::Session(c)) => c.key.as_ref(),
        _ => None,
    };
    let ctx = Context::http(req, trusted_proxies)
        .who(verdict.identity())
        .session(session);
    let (rule, reason) = (verdict.decision.rule_name(), verdict.reason());
    let (host, path) = (&*verdict.original.host, verdict.original.path);
    if outcome == Outcome::StepUp {
        return step_up(&ctx, host, path, &rule, &reason);
    }
    emit(
        &ctx,
        &Event::Deny {
            host,
            path,
            rule: &rule,
            reason: &reason,
        },
    );
}

/// A request sent to sign in again for a step-up (its rule asks for a
/// fresher or stronger sign-in than the session's).
pub fn step_up(ctx: &Context<'_>, host: &str, path: &str, rule: &str, reason: &str) {
    emit(
        ctx,
        &Event::StepUp {
            host,
            path,
            rule,
            reason,
        },
    );
}

/// Sessions ended by `by`.
pub fn revoke(ctx: &Context<'_>, by: RevokedBy, sessions: usize) {
    emit(ctx, &Event::Revoke { by, sessions });
}

/// The provider refused a refresh; the session ended.
pub fn refresh_invalid(ctx: &Context<'_>, reason: &str) {
    emit(ctx, &Event::RefreshInvalid { reason });
}

/// A back-channel logout ended `sessions` sessions.
pub fn backchannel_logout(ctx: &Context<'_>, sessions: usize) {
    emit(ctx, &Event::BackchannelLogout { sessions });
}

/// A SCIM deprovisioning ended `sessions` sessions.
pub fn scim_deprovision(ctx: &Context<'_>, sessions: usize) {
    emit(ctx, &Event::ScimDeprovision { sessions });
}

/// A reload put a configuration in force, or left the running one (`error`).
pub fn config_reload(error: Option<&str>) {
    let result = if error.is_some() { "error" } else { "ok" };
    emit(&Context::default(), &Event::ConfigReload { result, error });
}

#[cfg(test)]
mod tests;
