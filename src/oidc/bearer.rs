//! Bearer tokens from API clients (`[bearer]`): `Authorization: Bearer
//! <token>` on `/forward-auth` and `/auth-request`, turned into an
//! [`Identity`] or refused. Free of any HTTP framework.
//!
//! A token with two dots or more is a JWT or nothing: it must parse strictly
//! as a compact JWS (unpadded base64url, as RFC 7515 says), or it is a 401
//! and no provider is asked (Pocket ID's userinfo reads padded and
//! standard-alphabet tokens too, and checks no audience). A JWT is verified
//! as an ID token is: the provider's keys (an unknown `kid` refetches them,
//! rate-limited), only the asymmetric algorithms the provider advertises
//! (never `none`, never HMAC), `iss` the issuer, `aud` sharing a value with
//! the configured audiences, `exp` (required), `nbf` and `iat` with the usual
//! leeway. It must also be an access token, by an allowlist: `typ` `at+jwt`
//! (RFC 9068), or `typ` `JWT`/absent with what an access token carries
//! (`sub`, and Pocket ID's `type` marker, if any, `oauth-access-token`) and
//! nothing only ID or logout tokens carry (`nonce`, `at_hash`, `c_hash`,
//! `auth_time`... no: see [`check_access_token`]). The identity comes from the
//! token's claims; a token without the groups claim (Pocket ID's access tokens
//! carry none) is completed by the provider's userinfo endpoint.
//!
//! Any other token is opaque: by default the provider's introspection
//! endpoint (RFC 7662) vouches for it (`active`, `exp`, `aud` or `client_id`
//! in the audiences), and userinfo then says who it is when the answer lacks
//! the groups claim; without an introspection endpoint it is refused.
//! `bearer.opaque = "userinfo"` asks userinfo alone, which checks no audience.
//!
//! Answers are cached in memory, keyed by the SHA-256 of the token (the token
//! itself is never kept, logged or repeated): an identity until the token's
//! `exp` and at most [`MAX_CACHE_TTL`], so the hot path verifies no signature
//! and asks no provider; a refusal for [`REFUSAL_TTL`]. Both caches are
//! bounded. Concurrent requests with one token share one check
//! (single-flight), and provider lookups are bounded ([`limits`]): past the
//! bounds, [`BearerError::Throttled`], a 503. A provider that cannot answer
//! (down, 5xx, timeout) is [`BearerError::Unavailable`]: never a refusal,
//! never cached, a 503 and not a 401 for the caller.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jws::{numeric_date, string_claim, Jws, JwsError};
use super::{OidcError, Provider, ProviderError, Unverified, LEEWAY};
use crate::config::{BearerSettings, OpaqueTokens};
use crate::policy::Identity;

mod flight;
mod limits;
use flight::{Running, RunningChecks};
use limits::Limits;
pub use limits::Throttle;

/// Longest token accepted in the header; provider tokens are well under 4 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest an identity from a token is cached (and never past its `exp`).
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking again.
pub const REFUSAL_TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered by each cache (verified, refused).
const CACHE_CAPACITY: u64 = 10_000;
/// How long a forward-auth request waits for introspection or userinfo.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Pocket ID's marker claim on its access tokens (`type: oauth-access-token`);
/// its ID tokens say `id-token`.
const POCKET_ID_ACCESS_TOKEN_TYPE: &str = "oauth-access-token";
/// Claims only ID tokens (OpenID Connect Core 2, 3.1.3.6, 3.3.2.11) or
/// logout tokens (Back-Channel Logout 2.4) carry: an access token without a
/// `typ` of its own must have none of them.
const NOT_IN_ACCESS_TOKENS: &[&str] = &["nonce", "at_hash", "c_hash", "s_hash", "events"];
/// `token_type` values of an introspection answer that name an access token.
const ACCESS_TOKEN_TYPES: &[&str] = &[
    "access_token",
    "bearer",
    "urn:ietf:params:oauth:token-type:access_token",
];

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
    /// The `Authorization` header holds no usable token.
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    /// A JWT that fails the JWS checks shared with ID and logout tokens
    /// ([`super::jws`]), strict parsing included.
    #[error("the bearer token {0}")]
    Jws(#[from] JwsError),
    #[error("the bearer token's typ is none of JWT, at+jwt")]
    BadType,
    #[error(
        "the bearer token is a JWT without typ at+jwt and lacks what an access token carries: {0}"
    )]
    NotAccessToken(&'static str),
    #[error("the bearer token is a logout token")]
    LogoutToken,
    #[error("the bearer token is an ID token, not an access token")]
    IdToken,
    #[error("the bearer token's iss is not the configured issuer")]
    WrongIssuer,
    #[error("the bearer token's aud (or introspected client_id) names none of bearer.audiences")]
    WrongAudience,
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
    #[error("the provider's introspection endpoint says the bearer token is not active")]
    Inactive,
    #[error("the introspection answer names another token type than an access token")]
    IntrospectedType,
    #[error("opaque bearer tokens are refused: the provider lists no introspection_endpoint (bearer.opaque = \"userinfo\" would accept them without an audience check)")]
    NoIntrospection,
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
        !matches!(self, TokenError::Jws(JwsError::UnknownKey))
    }
}

/// Why a bearer token did not yield an identity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BearerError {
    /// The token is refused: 401 `invalid_token`.
    #[error(transparent)]
    Invalid(#[from] TokenError),
    /// The provider could not answer for it (keys, introspection, userinfo):
    /// 503, retry. Shared by every request that waited for the same check.
    #[error("the bearer token cannot be checked now: {0}")]
    Unavailable(Arc<OidcError>),
    /// The token needs a provider lookup and the bounds on lookups are
    /// reached: 503 with `Retry-After`, not cached.
    #[error("the bearer token is not checked now: {0}")]
    Throttled(Throttle),
}

impl From<OidcError> for BearerError {
    fn from(e: OidcError) -> BearerError {
        BearerError::Unavailable(Arc::new(e))
    }
}

impl From<Throttle> for BearerError {
    fn from(t: Throttle) -> BearerError {
        BearerError::Throttled(t)
    }
}

/// Where an accepted token's identity came from, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Answered from the cache: no signature verified, no provider asked.
    Cache,
    /// Verified JWT, identity from its claims.
    Jwt,
    /// Asked the provider's userinfo endpoint (a JWT without groups, or an
    /// opaque token with `bearer.opaque = "userinfo"`).
    Userinfo,
    /// Vouched for by the provider's introspection endpoint (opaque token).
    Introspection,
}

/// What the header's `typ` says the token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typ {
    /// `at+jwt` (or `application/at+jwt`): an access token by RFC 9068.
    AccessToken,
    /// `JWT` or no `typ`: the claims must show an access token.
    Generic,
}

/// `typ`, by an allowlist: `at+jwt`, `JWT` or absent (any case, with or
/// without `application/`); `logout+jwt` is named, anything else refused.
fn check_type(jws: &Jws<'_>) -> Result<Typ, TokenError> {
    match jws.typ()?.as_deref() {
        None | Some("application/jwt") => Ok(Typ::Generic),
        Some("application/at+jwt") => Ok(Typ::AccessToken),
        Some("application/logout+jwt") => Err(TokenError::LogoutToken),
        Some(_) => Err(TokenError::BadType),
    }
}

/// The positive requirements of an access token, on verified claims: a
/// string `sub`; Pocket ID's `type` marker, if present, is
/// `oauth-access-token` (its ID tokens say `id-token`); and, for a `typ`
/// that does not say "access token" itself, none of the claims only ID and
/// logout tokens carry.
fn check_access_token(claims: &Map<String, Value>, typ: Typ) -> Result<(), TokenError> {
    match string_claim(claims, "type")? {
        None | Some(POCKET_ID_ACCESS_TOKEN_TYPE) => {}
        Some("id-token") => return Err(TokenError::IdToken),
        Some(_) => {
            return Err(TokenError::NotAccessToken(
                "Pocket ID's type claim is not oauth-access-token",
            ))
        }
    }
    if string_claim(claims, "sub")?.is_none_or(str::is_empty) {
        return Err(TokenError::NotAccessToken("no sub"));
    }
    if typ == Typ::Generic {
        if claims.contains_key("events") {
            return Err(TokenError::LogoutToken);
        }
        if NOT_IN_ACCESS_TOKENS.iter().any(|c| claims.contains_key(*c)) {
            return Err(TokenError::IdToken);
        }
    }
    Ok(())
}

/// Whether one of `aud` (a string or an array of strings) is in `audiences`.
fn audience_named(aud: Option<&Value>, audiences: &[String]) -> bool {
    let named = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| audiences.iter().any(|x| x == a))
    };
    match aud {
        Some(aud @ Value::String(_)) => named(aud),
        Some(Value::Array(auds)) => auds.iter().any(named),
        _ => false,
    }
}

/// `exp` (required, not passed), `nbf` and `iat` (not in the future), with
/// [`LEEWAY`]; the `exp`.
fn check_times(claims: &Map<String, Value>, now: u64) -> Result<u64, TokenError> {
    let leeway = LEEWAY.as_secs();
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::NoExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(exp)
}

/// The claim checks, on a payload whose signature verified; the token's `exp`.
fn check_claims(
    claims: &Map<String, Value>,
    typ: Typ,
    issuer: &str,
    audiences: &[String],
    now: u64,
) -> Result<u64, TokenError> {
    check_access_token(claims, typ)?;
    if string_claim(claims, "iss")? != Some(issuer) {
        return Err(TokenError::WrongIssuer);
    }
    if !audience_named(claims.get("aud"), audiences) {
        return Err(TokenError::WrongAudience);
    }
    check_times(claims, now)
}

/// RFC 7662 section 2.2: what an introspection answer must say for its
/// token to be accepted: `active: true`; `token_type`, if present, an
/// access token; `iss`, if present, the issuer; `aud` (string or array) or
/// `client_id` in `audiences`; `exp` present and not passed (`nbf`, `iat`
/// not in the future). The token's `exp`.
pub(super) fn check_introspection(
    answer: &Map<String, Value>,
    issuer: &str,
    audiences: &[String],
    now: u64,
) -> Result<u64, TokenError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    // Pocket ID writes neither (its answer for its own refresh token is
    // active, with our client_id): userinfo refuses those, later. When the
    // provider does say, anything but an access token is refused here.
    if let Some(t) = string_claim(answer, "token_type")? {
        if !ACCESS_TOKEN_TYPES.iter().any(|a| a.eq_ignore_ascii_case(t)) {
            return Err(TokenError::IntrospectedType);
        }
    }
    if let Some(t) = string_claim(answer, "token_use")? {
        if !t.eq_ignore_ascii_case("access") {
            return Err(TokenError::IntrospectedType);
        }
    }
    if string_claim(answer, "iss")?.is_some_and(|iss| iss != issuer) {
        return Err(TokenError::WrongIssuer);
    }
    if !audience_named(answer.get("aud"), audiences)
        && !audience_named(answer.get("client_id"), audiences)
    {
        return Err(TokenError::WrongAudience);
    }
    check_times(answer, now)
}

/// An accepted token's identity and until when (Unix seconds) it may be reused.
#[derive(Debug)]
struct Verified {
    identity: Arc<Identity>,
    until: u64,
}

/// The answer of one check, shared by every request that waited for it.
type Checked = Result<(Arc<Identity>, Source), BearerError>;

/// Bearer-token authentication with its caches: one per configuration (a
/// reload that changes the provider or `[bearer]` starts empty caches).
pub struct BearerAuth {
    provider: Arc<Provider>,
    settings: BearerSettings,
    verified: Cache<[u8; 32], Arc<Verified>>,
    refused: Cache<[u8; 32], TokenError>,
    /// Checks running now, by token hash: a second request with the same
    /// token waits for the first one's answer instead of asking again.
    running: RunningChecks,
    limits: Limits,
    /// Whether the missing introspection endpoint was logged (once per configuration).
    said_no_introspection: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("settings", &self.settings)
            .field("cached", &self.verified.entry_count())
            .field("refused", &self.refused.entry_count())
            .finish()
    }
}

impl BearerAuth {
    /// Accept tokens of `provider` as `settings` say.
    pub fn new(provider: Arc<Provider>, settings: BearerSettings) -> BearerAuth {
        let limits = Limits::new(settings.lookups_in_flight, settings.lookups_per_minute);
        BearerAuth {
            provider,
            settings,
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
            running: Mutex::new(HashMap::new()),
            limits,
            said_no_introspection: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this was built for `provider` and `settings` (a reload may keep it).
    pub fn serves(&self, provider: &Arc<Provider>, settings: &BearerSettings) -> bool {
        Arc::ptr_eq(&self.provider, provider) && self.settings == *settings
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.settings.audiences
    }

    /// The identity `token` stands for, from the cache when it can; `client`
    /// is the address whose lookup budget a provider lookup spends.
    pub async fn authenticate(&self, token: &str, client: IpAddr) -> Checked {
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
        // Removes the entry however this ends, a dropped request included,
        // so the map holds only checks that are running.
        let running = Running::join(&self.running, key);
        // If the request running the check goes away, a waiting one runs it.
        running
            .cell
            .get_or_init(|| self.check_and_remember(token, key, now, client))
            .await
            .clone()
    }

    /// How many checks the single-flight map holds.
    #[cfg(test)]
    fn running_len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Check `token` and remember the answer in the caches.
    async fn check_and_remember(
        &self,
        token: &str,
        key: [u8; 32],
        now: u64,
        client: IpAddr,
    ) -> Checked {
        match self.check(token, now, client).await {
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
    async fn check(
        &self,
        token: &str,
        now: u64,
        client: IpAddr,
    ) -> Result<(Identity, u64, Source), BearerError> {
        let cap = now.saturating_add(MAX_CACHE_TTL.as_secs());
        let jws = match Jws::parse(token, MAX_TOKEN_LEN) {
            Ok(jws) => jws,
            // Three parts or more: a JWT that does not parse strictly is no
            // token at all, whatever a lenient provider would make of it.
            Err(e) if token.matches('.').count() >= 2 => return Err(TokenError::from(e).into()),
            Err(_) => return self.check_opaque(token, now, cap, client).await,
        };
        let typ = check_type(&jws)?;
        let signed = match self.provider.verify_signed(&jws).await {
            Ok(signed) => signed,
            Err(Unverified::Refused(e)) => return Err(TokenError::Jws(e).into()),
            Err(Unverified::Unavailable(e)) => return Err(e.into()),
        };
        check_claims(
            &signed.claims,
            typ,
            signed.issuer(),
            &self.settings.audiences,
            now,
        )?;
        let mut claims = signed.claims;
        let until = numeric_date(&claims, "exp")
            .ok()
            .flatten()
            .unwrap_or(now)
            .min(cap);
        if claims.contains_key(self.provider.groups_claim()) {
            return Ok((self.identity(&claims)?, until, Source::Jwt));
        }
        let _permit = self.limits.admit(client)?;
        let info = self.userinfo(token).await?;
        super::claims::merge_userinfo(&mut claims, info).map_err(|_| TokenError::OtherSubject)?;
        Ok((self.identity(&claims)?, until, Source::Userinfo))
    }

    /// An opaque token: introspection (audience checked), then userinfo for
    /// the identity if the answer lacks the groups claim; or, opted in,
    /// userinfo alone. Cached until `cap` at the latest.
    async fn check_opaque(
        &self,
        token: &str,
        now: u64,
        cap: u64,
        client: IpAddr,
    ) -> Result<(Identity, u64, Source), BearerError> {
        if self.settings.opaque == OpaqueTokens::Userinfo {
            let _permit = self.limits.admit(client)?;
            let claims = self.userinfo(token).await?;
            return Ok((self.identity(&claims)?, cap, Source::Userinfo));
        }
        let Some(endpoint) = self.provider.introspection_endpoint()? else {
            if !self
                .said_no_introspection
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(issuer = %self.provider.issuer(), "opaque bearer tokens are refused: the provider's discovery lists no introspection_endpoint (bearer.opaque = \"userinfo\" would accept them, with no audience check)");
            }
            return Err(TokenError::NoIntrospection.into());
        };
        let _permit = self.limits.admit(client)?;
        let mut claims = self
            .provider
            .introspect(&endpoint, token, LOOKUP_TIMEOUT)
            .await
            .map_err(OidcError::from)?;
        let exp = check_introspection(
            &claims,
            self.provider.issuer(),
            &self.settings.audiences,
            now,
        )?;
        if !claims.contains_key(self.provider.groups_claim()) {
            let info = self.userinfo(token).await?;
            super::claims::merge_userinfo(&mut claims, info)
                .map_err(|_| TokenError::OtherSubject)?;
        }
        Ok((self.identity(&claims)?, exp.min(cap), Source::Introspection))
    }

    /// The provider's userinfo answer for `token`: a refusal (400, 401, 403,
    /// and 404: Pocket ID's answer when the token names no user, as a
    /// `client_credentials` token or a deleted user's does) is the token's
    /// fault, anything else the provider's.
    async fn userinfo(&self, token: &str) -> Result<Map<String, Value>, BearerError> {
        let endpoint = self
            .provider
            .userinfo_endpoint()?
            .ok_or(TokenError::NoUserinfo)?;
        match self
            .provider
            .userinfo(&endpoint, token, Some(LOOKUP_TIMEOUT))
            .await
        {
            Ok(claims) => Ok(claims),
            Err(ProviderError::Status { status, .. })
                if matches!(status.as_u16(), 400 | 401 | 403 | 404) =>
            {
                Err(TokenError::Refused(status.as_u16()).into())
            }
            Err(e) => Err(OidcError::from(e).into()),
        }
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, TokenError> {
        self.provider
            .identity_of(claims)
            .map_err(TokenError::Claims)
    }
}

/// The claims of an unverified JWT, for `explain --bearer` only: nothing
/// here is trusted, and nothing else may use it.
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, String> {
    let jws =
        Jws::parse(token.trim(), MAX_TOKEN_LEN).map_err(|e| TokenError::from(e).to_string())?;
    jws.unverified_payload()
        .map_err(|e| TokenError::from(e).to_string())
}

#[cfg(test)]
mod tests;
