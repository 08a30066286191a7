//! Bearer tokens from API clients (`[bearer]`): `Authorization: Bearer
//! <token>` on `/forward-auth` and `/auth-request`, turned into an
//! [`Identity`] or refused. Free of any HTTP framework.
//!
//! A JWT is verified as an ID token is: the provider's keys (an unknown `kid`
//! refetches them, rate-limited), only the asymmetric algorithms the provider
//! advertises (never `none`, never HMAC), `iss` the issuer, `aud` sharing a
//! value with the configured audiences, `exp` (required), `nbf` and `iat` with
//! the usual leeway. Logout tokens (`typ: logout+jwt` or an `events` claim)
//! and ID tokens (a `nonce`, or Pocket ID's `type: id-token`) are refused: a
//! token meant for something else never becomes a credential here. The
//! identity comes from the token's claims; a token without the groups claim
//! (Pocket ID's access tokens carry none) and a token that is no JWT at all
//! are answered by the provider's userinfo endpoint.
//!
//! Answers are cached in memory, keyed by the SHA-256 of the token (the token
//! itself is never kept, logged or repeated): an identity until the token's
//! `exp` and at most [`MAX_CACHE_TTL`], so the hot path verifies no signature
//! and asks no provider; a refusal for [`REFUSAL_TTL`], so a flood of one bad
//! token is not a flood on the provider. Both caches are bounded. A provider
//! that cannot answer (down, 5xx, timeout) is [`BearerError::Unavailable`]:
//! never a refusal, never cached, a 503 and not a 401 for the caller.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey as _, JsonWebTokenType};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::logout::{self, Jws, LogoutTokenError};
use super::{Provider, LEEWAY};
use crate::policy::Identity;

/// Longest token accepted in the header; provider tokens are well under 4 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest an identity from a token is cached (and never past its `exp`).
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking again.
pub const REFUSAL_TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered by each cache (verified, refused).
const CACHE_CAPACITY: u64 = 10_000;
/// How long a forward-auth request waits for the userinfo endpoint.
const USERINFO_TIMEOUT: Duration = Duration::from_secs(5);
/// Pocket ID's marker claim on its ID tokens (`type: id-token`).
const POCKET_ID_ID_TOKEN_TYPE: &str = "id-token";

/// What the `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'h> {
    /// No `Authorization` header, or another scheme (Basic for the backend):
    /// not ours to judge.
    None,
    /// `Bearer <token>`, the token in the token68 character set.
    Bearer(&'h str),
    /// `Bearer` with no usable token: refused, never passed on as anonymous.
    Malformed(TokenError),
}

/// Read `Authorization` header values (all of them: two are refused) as RFC
/// 6750 section 2.1 says: the scheme `Bearer` in any case, one space, a
/// token68 (`A-Z a-z 0-9 - . _ ~ + /`, then `=` padding only), at most
/// [`MAX_TOKEN_LEN`] bytes.
pub fn credential<'h>(mut values: impl Iterator<Item = &'h [u8]>) -> Credential<'h> {
    let Some(value) = values.next() else {
        return Credential::None;
    };
    let scheme_len = value.iter().position(|b| *b == b' ').unwrap_or(value.len());
    if !value[..scheme_len].eq_ignore_ascii_case(b"bearer") {
        return Credential::None;
    }
    if values.next().is_some() {
        return Credential::Malformed(TokenError::Malformed("several Authorization headers"));
    }
    let token = value.get(scheme_len + 1..).unwrap_or_default();
    if token.is_empty() {
        return Credential::Malformed(TokenError::Malformed("Bearer without a token"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Credential::Malformed(TokenError::TooLarge);
    }
    let body_end = token.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    let token68 = body_end > 0
        && token[..body_end]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b));
    match std::str::from_utf8(token) {
        Ok(t) if token68 => Credential::Bearer(t),
        _ => Credential::Malformed(TokenError::Malformed(
            "the token is not a token68 after one space",
        )),
    }
}

/// Why a bearer token is refused (401 `invalid_token`). Messages never
/// repeat the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the bearer token's alg is missing or not a JWS algorithm")]
    UnknownAlgorithm,
    #[error("the bearer token is unsigned (alg none)")]
    Unsigned,
    #[error("the bearer token is signed with a shared secret (HMAC); only the provider's public keys are accepted")]
    SymmetricAlgorithm,
    #[error("the bearer token's alg {0} is not one the provider advertises")]
    AlgorithmNotAllowed(String),
    #[error("the bearer token's typ is none of JWT, at+jwt")]
    BadType,
    #[error("the bearer token has critical header parameters (crit), none of which are supported")]
    CriticalHeader,
    #[error("no key of the provider matches the bearer token's kid and alg")]
    UnknownKey,
    #[error("the bearer token has no kid and several keys of the provider would fit")]
    AmbiguousKey,
    #[error("the bearer token's signature does not verify")]
    BadSignature,
    #[error("the bearer token is a logout token")]
    LogoutToken,
    #[error("the bearer token is an ID token, not an access token")]
    IdToken,
    #[error("the bearer token's iss is not the configured issuer")]
    WrongIssuer,
    #[error("the bearer token's aud names none of bearer.audiences")]
    WrongAudience,
    #[error("claim {0} of the bearer token has the wrong JSON type")]
    ClaimType(&'static str),
    #[error("the bearer token has no exp")]
    NoExpiry,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the bearer token is issued in the future")]
    IssuedInFuture,
    #[error("the provider's userinfo endpoint refused the bearer token ({0})")]
    Refused(u16),
    #[error("the bearer token needs the provider's userinfo endpoint, and the provider has none")]
    NoUserinfo,
    #[error("the userinfo answer is about another subject than the bearer token")]
    OtherSubject,
    #[error("the bearer token's identity is unusable: {0}")]
    Claims(String),
}

impl TokenError {
    /// Whether asking again could give another answer soon: an unknown key
    /// may be published by the next (rate-limited) refetch.
    fn worth_remembering(&self) -> bool {
        !matches!(self, TokenError::UnknownKey)
    }
}

impl From<LogoutTokenError> for TokenError {
    fn from(e: LogoutTokenError) -> TokenError {
        use LogoutTokenError as L;
        match e {
            L::TooLarge => TokenError::TooLarge,
            L::Malformed(why) => TokenError::Malformed(why),
            L::UnknownAlgorithm => TokenError::UnknownAlgorithm,
            L::Unsigned => TokenError::Unsigned,
            L::SymmetricAlgorithm => TokenError::SymmetricAlgorithm,
            L::AlgorithmNotAllowed(alg) => TokenError::AlgorithmNotAllowed(alg),
            L::UnknownKey => TokenError::UnknownKey,
            L::AmbiguousKey => TokenError::AmbiguousKey,
            L::BadSignature => TokenError::BadSignature,
            L::ClaimType(name) => TokenError::ClaimType(name),
            _ => TokenError::Malformed("unexpected check"),
        }
    }
}

/// Why a bearer token did not yield an identity.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// The token is refused: 401 `invalid_token`.
    #[error(transparent)]
    Invalid(#[from] TokenError),
    /// The provider could not answer for it (keys or userinfo): 503, retry.
    #[error("the bearer token cannot be checked now: {0}")]
    Unavailable(String),
}

/// Where an accepted token's identity came from, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Answered from the cache: no signature verified, no provider asked.
    Cache,
    /// Verified JWT, identity from its claims.
    Jwt,
    /// Asked the provider's userinfo endpoint (opaque token, or a JWT without groups).
    Userinfo,
}

/// Verify a compact JWS bearer token against the provider's `jwks` and
/// `algs` and check its claims; the claims, once everything held. `now` is
/// seconds since the Unix epoch.
pub(super) fn verify_jwt(
    jws: &Jws<'_>,
    jwks: &CoreJsonWebKeySet,
    algs: &[CoreJwsSigningAlgorithm],
    issuer: &str,
    audiences: &[String],
    now: u64,
) -> Result<Map<String, Value>, TokenError> {
    let alg = logout::allowed_alg(&jws.header, algs)?;
    check_type(&jws.header)?;
    if jws.header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match jws.header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(TokenError::Malformed("the header's kid is not a string")),
    };
    let key = logout::select_key(jwks, kid, &alg)?;
    key.verify_signature(&alg, jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| TokenError::BadSignature)?;
    // Only now is the payload the provider's word.
    let claims: Map<String, Value> = serde_json::from_slice(&jws.payload)
        .map_err(|_| TokenError::Malformed("the payload is not a JSON object"))?;
    check_claims(&claims, issuer, audiences, now)?;
    Ok(claims)
}

/// `typ`, if present, is `JWT` or `at+jwt` (RFC 9068); `logout+jwt` is a
/// logout token.
fn check_type(header: &Map<String, Value>) -> Result<(), TokenError> {
    let typ = match header.get("typ") {
        None => return Ok(()),
        Some(Value::String(typ)) => typ,
        Some(_) => return Err(TokenError::BadType),
    };
    let normalized = JsonWebTokenType::new(typ.clone())
        .normalize()
        .map_err(|_| TokenError::BadType)?;
    match normalized.as_str() {
        "application/jwt" | "application/at+jwt" => Ok(()),
        "application/logout+jwt" => Err(TokenError::LogoutToken),
        _ => Err(TokenError::BadType),
    }
}

/// The claim checks, on a payload whose signature verified; the token's `exp`.
fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    audiences: &[String],
    now: u64,
) -> Result<u64, TokenError> {
    if claims.contains_key("events") {
        return Err(TokenError::LogoutToken);
    }
    let pocket_id_type = logout::string_claim(claims, "type").unwrap_or(None);
    if claims.contains_key("nonce") || pocket_id_type == Some(POCKET_ID_ID_TOKEN_TYPE) {
        return Err(TokenError::IdToken);
    }
    if logout::string_claim(claims, "iss")? != Some(issuer) {
        return Err(TokenError::WrongIssuer);
    }
    let named = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| audiences.iter().any(|x| x == a))
    };
    let audience_ok = match claims.get("aud") {
        Some(aud @ Value::String(_)) => named(aud),
        Some(Value::Array(auds)) => auds.iter().any(named),
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let leeway = LEEWAY.as_secs();
    let exp = logout::numeric_date(claims, "exp")?.ok_or(TokenError::NoExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if logout::numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    if logout::numeric_date(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(exp)
}

/// An accepted token's identity and until when (Unix seconds) it may be reused.
#[derive(Debug)]
struct Verified {
    identity: Arc<Identity>,
    until: u64,
}

/// Bearer-token authentication with its caches: one per configuration (a
/// reload that changes the provider or the audiences starts empty caches).
pub struct BearerAuth {
    provider: Arc<Provider>,
    audiences: Vec<String>,
    verified: Cache<[u8; 32], Arc<Verified>>,
    refused: Cache<[u8; 32], TokenError>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("audiences", &self.audiences)
            .field("cached", &self.verified.entry_count())
            .field("refused", &self.refused.entry_count())
            .finish()
    }
}

impl BearerAuth {
    /// Accept tokens of `provider` whose `aud` names one of `audiences`.
    pub fn new(provider: Arc<Provider>, audiences: Vec<String>) -> BearerAuth {
        BearerAuth {
            provider,
            audiences,
            // One time-to-live for all (cheaper per read than moka's
            // per-entry expiry); each entry's own `until` (the token's
            // `exp`) is checked on every read.
            verified: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(MAX_CACHE_TTL)
                .build(),
            refused: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(REFUSAL_TTL)
                .build(),
        }
    }

    /// Whether this was built for `provider` and `audiences` (a reload may keep it).
    pub fn serves(&self, provider: &Arc<Provider>, audiences: &[String]) -> bool {
        Arc::ptr_eq(&self.provider, provider) && self.audiences == audiences
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The identity `token` stands for, from the cache when it can.
    pub async fn authenticate(&self, token: &str) -> Result<(Arc<Identity>, Source), BearerError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = kit::unix_now();
        if let Some(v) = self.verified.get(&key) {
            if v.until > now {
                return Ok((v.identity.clone(), Source::Cache));
            }
            self.verified.invalidate(&key);
        }
        if let Some(e) = self.refused.get(&key) {
            return Err(BearerError::Invalid(e));
        }
        match self.check(token, now).await {
            Ok((identity, until, source)) => {
                let identity = Arc::new(identity);
                if until > now {
                    self.verified.insert(
                        key,
                        Arc::new(Verified {
                            identity: identity.clone(),
                            until,
                        }),
                    );
                }
                Ok((identity, source))
            }
            Err(BearerError::Invalid(e)) => {
                if e.worth_remembering() {
                    self.refused.insert(key, e.clone());
                }
                Err(BearerError::Invalid(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Verify or ask: the identity, until when it may be cached, and how it was found.
    async fn check(&self, token: &str, now: u64) -> Result<(Identity, u64, Source), BearerError> {
        let cap = now.saturating_add(MAX_CACHE_TTL.as_secs());
        let Ok(jws) = Jws::parse(token) else {
            // Not a JWT (or not one we can read): only the provider can say.
            let claims = self.provider.bearer_userinfo(token).await?;
            let identity = self.identity(&claims)?;
            return Ok((identity, cap, Source::Userinfo));
        };
        let mut claims = self
            .provider
            .verify_bearer_jwt(&jws, &self.audiences, now)
            .await?;
        let until = logout::numeric_date(&claims, "exp")
            .ok()
            .flatten()
            .unwrap_or(now)
            .min(cap);
        if claims.contains_key(self.provider.groups_claim()) {
            return Ok((self.identity(&claims)?, until, Source::Jwt));
        }
        let info = self.provider.bearer_userinfo(token).await?;
        super::claims::merge_userinfo(&mut claims, info).map_err(|_| TokenError::OtherSubject)?;
        Ok((self.identity(&claims)?, until, Source::Userinfo))
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, TokenError> {
        self.provider
            .identity_of(claims)
            .map_err(TokenError::Claims)
    }
}

/// Why the userinfo endpoint gave no claims.
#[derive(Debug)]
pub(super) enum UserinfoError {
    /// 400, 401 or 403: the provider refuses the token.
    Refused(u16),
    /// Anything else: no answer, 5xx, a garbled answer.
    Failed(String),
}

impl From<UserinfoError> for BearerError {
    fn from(e: UserinfoError) -> BearerError {
        match e {
            UserinfoError::Refused(status) => BearerError::Invalid(TokenError::Refused(status)),
            UserinfoError::Failed(why) => BearerError::Unavailable(format!("userinfo: {why}")),
        }
    }
}

/// The userinfo request timeout for a bearer token.
pub(super) fn userinfo_timeout() -> Duration {
    USERINFO_TIMEOUT
}

/// The claims of an unverified JWT, for `explain --bearer` only: nothing
/// here is trusted, and nothing else may use it.
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, String> {
    let jws = Jws::parse(token.trim()).map_err(|e| TokenError::from(e).to_string())?;
    serde_json::from_slice(&jws.payload).map_err(|_| "the payload is not a JSON object".into())
}

#[cfg(test)]
mod tests;
