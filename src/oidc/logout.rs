//! Verification of the logout token the provider POSTs to
//! `/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0, section
//! 2.6), free of any HTTP framework.
//!
//! [`verify`] is pure: the provider's keys, the allowed algorithms, the
//! issuer, the client id and the time come from the caller
//! ([`super::Provider::verify_logout_token`] supplies the discovered ones).
//! The JWS itself (parts, `alg`, `kid`, `crit`, signature) is checked by
//! [`super::jws`], as for ID and bearer tokens; this module decides which
//! `typ` a logout token may have and reads its claims.
//!
//! Not done here: ending sessions, and replay protection. A token whose `jti`
//! was seen before must be refused by the caller, who keeps the store; every
//! token older than [`MAX_AGE`] is refused here, so the store needs to
//! remember a `jti` for [`MAX_AGE`] plus [`LEEWAY`](super::LEEWAY) only.
//! Encrypted (JWE) logout tokens are not supported.

use std::time::Duration;

use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::{Map, Value};

use super::jws::{self, numeric_date, string_claim, Jws, JwsError};
use super::LEEWAY;

/// Longest logout token accepted; real ones are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Oldest logout token accepted (by its `iat`); older ones could be replays
/// the caller's `jti` store no longer remembers.
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// The member of `events` that makes a JWT a logout token (section 2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Longest issuer value repeated in an error, so a log line stays a line.
const MAX_ISSUER_IN_ERROR: usize = 128;

/// What a verified logout token says: whose sessions to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The subject whose sessions end (when there is no `sid`).
    pub sub: Option<String>,
    /// The provider's session id; when present, only that session ends.
    pub sid: Option<String>,
    /// The token's id, for the caller's replay check.
    pub jti: String,
    /// When the token was issued (seconds since the Unix epoch).
    pub iat: u64,
    /// When the token expires, if it says so.
    pub exp: Option<u64>,
}

/// Why a logout token is refused: one variant per check, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("the provider's keys are not loaded yet")]
    NotReady,
    /// The JWS checks shared with ID and bearer tokens ([`jws`]).
    #[error("the logout token {0}")]
    Jws(#[from] JwsError),
    #[error("the logout token's typ is neither logout+jwt nor JWT")]
    BadType,
    #[error("the provider's keys could not be refetched for the logout token's unknown kid")]
    KeysUnavailable,
    #[error("the logout token's iss {0:?} is not the configured issuer")]
    WrongIssuer(String),
    #[error("the logout token's aud does not name this client")]
    WrongAudience,
    #[error("the logout token has no iat")]
    NoIssuedAt,
    #[error("the logout token is issued in the future")]
    IssuedInFuture,
    #[error("the logout token is older than {} seconds", MAX_AGE.as_secs())]
    TooOld,
    #[error("the logout token has expired")]
    Expired,
    #[error("the logout token has no jti")]
    NoJti,
    #[error("the logout token has no events object")]
    NoEvents,
    #[error("the logout token's events lack the back-channel logout event")]
    NotLogoutEvent,
    #[error("the logout token's back-channel logout event is not a JSON object")]
    EventNotObject,
    #[error("the logout token carries a nonce, which logout tokens must not")]
    HasNonce,
    #[error("the logout token names neither sub nor sid")]
    NoSubject,
}

use LogoutTokenError as E;

/// Verify a logout token as section 2.6 says and return its claims.
///
/// Checks, all of which must hold: a compact JWS of at most
/// [`MAX_TOKEN_LEN`] bytes that passes [`jws::verify`] with `jwks` and
/// `algs` (an asymmetric `alg` the provider advertises, no `crit`, the
/// provider's key); `typ`, if present, is `logout+jwt` or `JWT`; `iss` is
/// `issuer`; `aud` names `client_id`; `iat` is neither in the future nor
/// older than [`MAX_AGE`]; `exp`, if present, has not passed; `jti` is
/// present; `events` holds the back-channel logout event as an object;
/// `sub` or `sid` is present; `nonce` is absent. `iat`/`exp` tolerate
/// [`LEEWAY`](super::LEEWAY) of clock skew; `now` is seconds since the Unix
/// epoch.
///
/// Replay is not checked: the caller refuses a `jti` it has seen before.
pub fn verify(
    token: &str,
    jwks: &CoreJsonWebKeySet,
    algs: &[CoreJwsSigningAlgorithm],
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutClaims, LogoutTokenError> {
    let jws = parse(token)?;
    let claims = jws::verify(&jws, jwks, algs)?;
    check_claims(&claims, issuer, client_id, now)
}

/// The token as a JWS whose `typ`, if any, is a logout token's; nothing verified yet.
pub(super) fn parse(token: &str) -> Result<Jws<'_>, LogoutTokenError> {
    let jws = Jws::parse(token, MAX_TOKEN_LEN)?;
    // Section 2.4 says logout+jwt; plain JWT is what most providers send.
    match jws.typ()?.as_deref() {
        None | Some("application/logout+jwt" | "application/jwt") => Ok(jws),
        Some(_) => Err(E::BadType),
    }
}

/// The claim checks of section 2.6, on a payload whose signature verified.
pub(super) fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutClaims, LogoutTokenError> {
    match string_claim(claims, "iss")? {
        Some(iss) if iss == issuer => {}
        iss => return Err(E::WrongIssuer(shorten(iss.unwrap_or_default()))),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(E::WrongAudience);
    }

    let leeway = LEEWAY.as_secs();
    let iat = numeric_date(claims, "iat")?.ok_or(E::NoIssuedAt)?;
    if iat > now.saturating_add(leeway) {
        return Err(E::IssuedInFuture);
    }
    if now.saturating_sub(iat) > MAX_AGE.as_secs() {
        return Err(E::TooOld);
    }
    let exp = numeric_date(claims, "exp")?;
    if exp.is_some_and(|exp| now >= exp.saturating_add(leeway)) {
        return Err(E::Expired);
    }

    let jti = string_claim(claims, "jti")?
        .filter(|jti| !jti.is_empty())
        .ok_or(E::NoJti)?;
    match claims.get("events") {
        Some(Value::Object(events)) => match events.get(BACKCHANNEL_LOGOUT_EVENT) {
            Some(Value::Object(_)) => {}
            Some(_) => return Err(E::EventNotObject),
            None => return Err(E::NotLogoutEvent),
        },
        _ => return Err(E::NoEvents),
    }
    if claims.contains_key("nonce") {
        return Err(E::HasNonce);
    }
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let sub = non_empty(string_claim(claims, "sub")?);
    let sid = non_empty(string_claim(claims, "sid")?);
    if sub.is_none() && sid.is_none() {
        return Err(E::NoSubject);
    }
    Ok(LogoutClaims {
        sub,
        sid,
        jti: jti.to_string(),
        iat,
        exp,
    })
}

/// At most [`MAX_ISSUER_IN_ERROR`] characters of a provider-supplied value.
fn shorten(s: &str) -> String {
    s.chars().take(MAX_ISSUER_IN_ERROR).collect()
}

#[cfg(test)]
mod tests;
