//! Verification of the logout token the provider POSTs to
//! `/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0, section
//! 2.6), free of any HTTP framework.
//!
//! [`verify`] is pure: the provider's keys, the allowed algorithms, the
//! issuer, the client id and the time come from the caller
//! ([`super::Provider::verify_logout_token`] supplies the discovered ones). The
//! signature is checked with `openidconnect`'s own JWK type; this module only
//! decides which key and which algorithm may be used, and reads the claims.
//!
//! Not done here: ending sessions, and replay protection. A token whose `jti`
//! was seen before must be refused by the caller, who keeps the store; every
//! token older than [`MAX_AGE`] is refused here, so the store needs to
//! remember a `jti` for [`MAX_AGE`] plus [`LEEWAY`](super::LEEWAY) only.
//! Encrypted (JWE) logout tokens are not supported.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{
    JsonWebKey as _, JsonWebKeyAlgorithm, JsonWebKeyUse as _, JsonWebTokenType,
    JwsSigningAlgorithm as _,
};
use serde_json::{Map, Value};

use super::{is_asymmetric, LEEWAY};

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
    #[error("the logout token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("the logout token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the logout token's alg is missing or not a JWS algorithm")]
    UnknownAlgorithm,
    #[error("the logout token is unsigned (alg none)")]
    Unsigned,
    #[error("the logout token is signed with a shared secret (HMAC); only the provider's public keys are accepted")]
    SymmetricAlgorithm,
    #[error("the logout token's alg {0} is not one the provider advertises")]
    AlgorithmNotAllowed(String),
    #[error("the logout token's typ is neither logout+jwt nor JWT")]
    BadType,
    #[error("the logout token has critical header parameters (crit), none of which are supported")]
    CriticalHeader,
    #[error("no key of the provider matches the logout token's kid and alg")]
    UnknownKey,
    #[error("the logout token has no kid and several keys of the provider would fit")]
    AmbiguousKey,
    #[error("the provider's keys could not be refetched for the logout token's unknown kid")]
    KeysUnavailable,
    #[error("the logout token's signature does not verify")]
    BadSignature,
    #[error("the logout token's iss {0:?} is not the configured issuer")]
    WrongIssuer(String),
    #[error("the logout token's aud does not name this client")]
    WrongAudience,
    #[error("claim {0} of the logout token has the wrong JSON type")]
    ClaimType(&'static str),
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
/// [`MAX_TOKEN_LEN`] bytes; its `alg` is in `algs` and asymmetric (never
/// `none`, never HMAC, whatever `algs` holds); `typ`, if present, is
/// `logout+jwt` or `JWT`; no `crit`; the signature verifies with the key named
/// by `kid` (or, without `kid`, the only key that fits the algorithm); `iss`
/// is `issuer`; `aud` names `client_id`; `iat` is neither in the future nor
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
    let jws = Jws::parse(token)?;
    let alg = allowed_alg(&jws.header, algs)?;
    check_type(&jws.header)?;
    if jws.header.contains_key("crit") {
        return Err(E::CriticalHeader);
    }
    let kid = match jws.header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(E::Malformed("the header's kid is not a string")),
    };
    let key = select_key(jwks, kid, &alg)?;
    key.verify_signature(&alg, jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| E::BadSignature)?;
    // Only now is the payload the provider's word.
    let claims: Map<String, Value> = serde_json::from_slice(&jws.payload)
        .map_err(|_| E::Malformed("the payload is not a JSON object"))?;
    check_claims(&claims, issuer, client_id, now)
}

/// A compact JWS split and decoded, nothing verified yet.
pub(super) struct Jws<'a> {
    pub(super) header: Map<String, Value>,
    pub(super) payload: Vec<u8>,
    pub(super) signature: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    pub(super) signing_input: &'a str,
}

impl<'a> Jws<'a> {
    pub(super) fn parse(token: &'a str) -> Result<Jws<'a>, LogoutTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(E::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(E::Malformed("not three dot-separated parts"));
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| E::Malformed("a part is not base64url"))
        };
        let header = serde_json::from_slice(&decode(header)?)
            .map_err(|_| E::Malformed("the header is not a JSON object"))?;
        Ok(Jws {
            header,
            payload: decode(payload)?,
            signature: decode(signature)?,
            signing_input,
        })
    }
}

/// The header's `alg`, if the caller allows it and it is asymmetric.
pub(super) fn allowed_alg(
    header: &Map<String, Value>,
    algs: &[CoreJwsSigningAlgorithm],
) -> Result<CoreJwsSigningAlgorithm, LogoutTokenError> {
    let Some(Value::String(name)) = header.get("alg") else {
        return Err(E::UnknownAlgorithm);
    };
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(Value::String(name.clone())).map_err(|_| E::UnknownAlgorithm)?;
    if alg == CoreJwsSigningAlgorithm::None {
        return Err(E::Unsigned);
    }
    if alg.uses_shared_secret() {
        return Err(E::SymmetricAlgorithm);
    }
    // `name` is one of the algorithm names openidconnect knows: safe to repeat.
    if !is_asymmetric(&alg) || !algs.contains(&alg) {
        return Err(E::AlgorithmNotAllowed(name.clone()));
    }
    Ok(alg)
}

/// `typ`, if present, is `logout+jwt` (section 2.4) or plain `JWT`, in any
/// spelling RFC 7515 allows (case, the `application/` prefix).
fn check_type(header: &Map<String, Value>) -> Result<(), LogoutTokenError> {
    let typ = match header.get("typ") {
        None => return Ok(()),
        Some(Value::String(typ)) => typ,
        Some(_) => return Err(E::BadType),
    };
    let normalized = JsonWebTokenType::new(typ.clone())
        .normalize()
        .map_err(|_| E::BadType)?;
    match normalized.as_str() {
        "application/logout+jwt" | "application/jwt" => Ok(()),
        _ => Err(E::BadType),
    }
}

/// The key named by `kid` that fits `alg`, or without `kid` the only key that
/// fits `alg`. Keys embedded in or pointed to by the header (`jwk`, `jku`,
/// `x5u`, `x5c`) are never used: only the provider's JWKS counts.
pub(super) fn select_key<'k>(
    jwks: &'k CoreJsonWebKeySet,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
) -> Result<&'k CoreJsonWebKey, LogoutTokenError> {
    let mut candidates = jwks
        .keys()
        .iter()
        .filter(|key| kid.is_none() || key.key_id().map(|id| id.as_str()) == kid)
        .filter(|key| fits(key, alg));
    match (candidates.next(), candidates.next()) {
        (Some(key), None) => Ok(key),
        (None, _) => Err(E::UnknownKey),
        (Some(_), Some(_)) => Err(E::AmbiguousKey),
    }
}

/// Whether `key` may verify an `alg` signature: its type is the algorithm's,
/// its `use` (if any) allows signing, its `alg` (if any) is this one.
fn fits(key: &CoreJsonWebKey, alg: &CoreJwsSigningAlgorithm) -> bool {
    alg.key_type().as_ref() == Some(key.key_type())
        && key.key_use().is_none_or(|u| u.allows_signature())
        && match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(key_alg) => key_alg == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        }
}

/// The claim checks of section 2.6, on a payload whose signature verified.
fn check_claims(
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

/// A string claim; absent is `None`, any other JSON type (null too) an error.
pub(super) fn string_claim<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'c str>, LogoutTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(E::ClaimType(name)),
    }
}

/// A NumericDate claim (RFC 7519: seconds, possibly fractional); absent is `None`.
pub(super) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, LogoutTokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    value
        .as_u64()
        // Fractions are cut off; huge values saturate (and then fail the time checks).
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .map(Some)
        .ok_or(E::ClaimType(name))
}

/// At most [`MAX_ISSUER_IN_ERROR`] characters of a provider-supplied value.
fn shorten(s: &str) -> String {
    s.chars().take(MAX_ISSUER_IN_ERROR).collect()
}

#[cfg(test)]
mod tests {
    use crate::oidc::test_keys::{b64, ec_key, rsa_key};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use jsonwebtoken::{Algorithm, EncodingKey};
    use serde_json::json;

    use super::*;
    use crate::config::{ClientAuth, OidcSettings};
    use crate::oidc::Provider;
    use CoreJwsSigningAlgorithm as A;

    const ISS: &str = "https://id.example.com";
    const CLIENT: &str = "pocketgate";
    const NOW: u64 = 1_700_000_000;
    /// What the provider advertises (`id_token_signing_alg_values_supported`).
    const ALGS: &[CoreJwsSigningAlgorithm] = &[A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256];
    const EVENT: &str = BACKCHANNEL_LOGOUT_EVENT;

    /// The provider's RSA and P-256 keys (published), and an impostor RSA key
    /// that claims the RSA key's `kid` (not published).
    struct Keys {
        rsa: EncodingKey,
        rsa_jwk: Value,
        rsa_pem: String,
        ec: EncodingKey,
        ec_jwk: Value,
        impostor: EncodingKey,
        impostor_jwk: Value,
        jwks: CoreJsonWebKeySet,
    }

    fn jwks(keys: &[&Value]) -> CoreJsonWebKeySet {
        serde_json::from_value(json!({ "keys": keys })).unwrap()
    }

    /// Generated once per test run: RSA key generation takes a moment.
    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let (rsa, rsa_jwk, rsa_pem) = rsa_key("rsa-1");
            let (ec, ec_jwk) = ec_key("ec-1");
            let (impostor, impostor_jwk, _) = rsa_key("rsa-1");
            let jwks = jwks(&[&rsa_jwk, &ec_jwk]);
            Keys {
                rsa,
                rsa_jwk,
                rsa_pem,
                ec,
                ec_jwk,
                impostor,
                impostor_jwk,
                jwks,
            }
        })
    }

    /// The claims of a valid logout token, issued 5 seconds ago.
    fn valid() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "iat": NOW - 5, "exp": NOW + 120, "jti": "jti-1",
            "sub": "user-1", "sid": "sid-1", "events": { EVENT: {} },
        })
    }

    /// [`valid`] with claim `name` set to `value`.
    fn with(name: &str, value: Value) -> Value {
        let mut claims = valid();
        claims[name] = value;
        claims
    }

    /// [`valid`] without the claims `names`.
    fn without(names: &[&str]) -> Value {
        let mut claims = valid();
        for name in names {
            claims.as_object_mut().unwrap().remove(*name);
        }
        claims
    }

    fn rs_header() -> Value {
        json!({ "alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt" })
    }

    fn es_header() -> Value {
        json!({ "alg": "ES256", "kid": "ec-1", "typ": "logout+jwt" })
    }

    /// `header` with member `name` set to `value` (or removed, for `null`).
    fn set(mut header: Value, name: &str, value: Value) -> Value {
        let object = header.as_object_mut().unwrap();
        match value {
            Value::Null => object.remove(name),
            value => object.insert(name.to_string(), value),
        };
        header
    }

    /// A compact JWS of `header` and `payload`, signed as `alg` with `key`
    /// whatever the header says.
    fn jws(header: &Value, payload: &str, alg: Algorithm, key: &EncodingKey) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(payload));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
        format!("{input}.{signature}")
    }

    /// Signed with the provider's RSA key.
    fn rs(header: Value, claims: Value) -> String {
        jws(&header, &claims.to_string(), Algorithm::RS256, &keys().rsa)
    }

    fn rs256(claims: Value) -> String {
        rs(rs_header(), claims)
    }

    /// Signed with the provider's P-256 key.
    fn es(header: Value, claims: Value) -> String {
        jws(&header, &claims.to_string(), Algorithm::ES256, &keys().ec)
    }

    fn es256(claims: Value) -> String {
        es(es_header(), claims)
    }

    /// Signed with another RSA key under the provider's `kid`.
    fn impostor(claims: Value) -> String {
        jws(
            &rs_header(),
            &claims.to_string(),
            Algorithm::RS256,
            &keys().impostor,
        )
    }

    /// PS256 with the provider's RSA key: sound, but not what the provider advertises.
    fn ps256(claims: Value) -> String {
        let header = set(rs_header(), "alg", json!("PS256"));
        jws(&header, &claims.to_string(), Algorithm::PS256, &keys().rsa)
    }

    /// `alg: none` and an empty signature.
    fn unsigned(claims: Value) -> String {
        let header = json!({ "alg": "none", "typ": "logout+jwt" });
        format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
    }

    /// The algorithm-confusion forgery: HS256 keyed with the RSA public key's
    /// PEM text, under the RSA key's `kid`.
    fn hs256_with_rsa_pem(claims: Value) -> String {
        let header = set(rs_header(), "alg", json!("HS256"));
        let secret = EncodingKey::from_secret(keys().rsa_pem.as_bytes());
        jws(&header, &claims.to_string(), Algorithm::HS256, &secret)
    }

    /// A valid signature over a payload that is not JSON.
    fn rs_payload(payload: &str) -> String {
        jws(&rs_header(), payload, Algorithm::RS256, &keys().rsa)
    }

    /// The header and payload of one token with the signature of another.
    fn spliced() -> String {
        let token = rs256(with("sub", json!("admin")));
        let other = rs256(valid());
        let (input, _) = token.rsplit_once('.').unwrap();
        let (_, signature) = other.rsplit_once('.').unwrap();
        format!("{input}.{signature}")
    }

    fn check(token: &str) -> Result<LogoutClaims, LogoutTokenError> {
        verify(token, &keys().jwks, ALGS, ISS, CLIENT, NOW)
    }

    fn claims(sub: Option<&str>, sid: Option<&str>) -> LogoutClaims {
        LogoutClaims {
            sub: sub.map(str::to_string),
            sid: sid.map(str::to_string),
            jti: "jti-1".into(),
            iat: NOW - 5,
            exp: Some(NOW + 120),
        }
    }

    #[test]
    fn a_valid_rs256_token_yields_its_claims() {
        assert_eq!(
            check(&rs256(valid())),
            Ok(claims(Some("user-1"), Some("sid-1")))
        );
    }

    #[test]
    fn a_valid_es256_token_yields_its_claims() {
        assert_eq!(
            check(&es256(valid())),
            Ok(claims(Some("user-1"), Some("sid-1")))
        );
    }

    #[test]
    fn sub_or_sid_alone_is_enough() {
        assert_eq!(
            check(&rs256(without(&["sid"]))),
            Ok(claims(Some("user-1"), None))
        );
        assert_eq!(
            check(&rs256(without(&["sub"]))),
            Ok(claims(None, Some("sid-1")))
        );
        let no_exp = LogoutClaims {
            exp: None,
            ..claims(Some("user-1"), Some("sid-1"))
        };
        assert_eq!(check(&rs256(without(&["exp"]))), Ok(no_exp));
    }

    /// Each row a token that passes: the edges of what is accepted.
    macro_rules! accepts {
        ($($name:ident: $token:expr;)*) => {$(
            #[test]
            fn $name() {
                let token: String = $token;
                assert!(check(&token).is_ok(), "{:?}", check(&token));
            }
        )*};
    }

    accepts! {
        typ_jwt:                        rs(set(rs_header(), "typ", json!("JWT")), valid());
        typ_with_media_type_prefix:     rs(set(rs_header(), "typ", json!("application/logout+JWT")), valid());
        typ_absent:                     rs(set(rs_header(), "typ", Value::Null), valid());
        no_kid_and_one_key_of_the_type: rs(set(rs_header(), "kid", Value::Null), valid());
        aud_array_naming_the_client:    rs256(with("aud", json!(["other", CLIENT])));
        iat_in_the_future_within_leeway: rs256(with("iat", json!(NOW + 60)));
        iat_exactly_max_age_ago:        rs256(with("iat", json!(NOW - 600)));
        iat_fractional:                 rs256(with("iat", json!(NOW as f64 - 0.5)));
        exp_passed_within_leeway:       rs256(with("exp", json!(NOW - 59)));
        event_with_members:             rs256(with("events", json!({ EVENT: { "reason": "x" } })));
    }

    /// Each row a token and the one check it fails.
    macro_rules! rejects {
        ($($name:ident: $token:expr => $error:expr;)*) => {$(
            #[test]
            fn $name() {
                let token: String = $token;
                assert_eq!(check(&token), Err($error));
            }
        )*};
    }

    rejects! {
        oversized:                      "a".repeat(MAX_TOKEN_LEN + 1)                             => E::TooLarge;
        garbage:                        "garbage".into()                                          => E::Malformed("not three dot-separated parts");
        two_parts:                      format!("{}.{}", b64(rs_header().to_string()), b64(valid().to_string())) => E::Malformed("not three dot-separated parts");
        four_parts:                     format!("{}.", rs256(valid()))                            => E::Malformed("not three dot-separated parts");
        part_not_base64url:             rs256(valid()).replacen('.', "+.", 1)                     => E::Malformed("a part is not base64url");
        part_padded:                    format!("{}=", rs256(valid()))                            => E::Malformed("a part is not base64url");
        header_not_json:                format!("{}.{}.", b64("alg"), b64(valid().to_string()))   => E::Malformed("the header is not a JSON object");
        alg_missing:                    rs(set(rs_header(), "alg", Value::Null), valid())         => E::UnknownAlgorithm;
        alg_unknown:                    rs(set(rs_header(), "alg", json!("ES256K")), valid())     => E::UnknownAlgorithm;
        alg_none_unsigned:              unsigned(valid())                                         => E::Unsigned;
        hs256_keyed_with_rsa_pem:       hs256_with_rsa_pem(valid())                               => E::SymmetricAlgorithm;
        alg_not_advertised:             ps256(valid())                                            => E::AlgorithmNotAllowed("PS256".into());
        typ_of_an_access_token:         rs(set(rs_header(), "typ", json!("at+jwt")), valid())     => E::BadType;
        typ_not_a_string:               rs(set(rs_header(), "typ", json!(1)), valid())            => E::BadType;
        crit_header:                    rs(set(rs_header(), "crit", json!(["exp"])), valid())     => E::CriticalHeader;
        kid_not_a_string:               rs(set(rs_header(), "kid", json!(1)), valid())            => E::Malformed("the header's kid is not a string");
        unknown_kid:                    rs(set(rs_header(), "kid", json!("rotated")), valid())    => E::UnknownKey;
        kid_of_a_key_of_another_type:   es(set(es_header(), "kid", json!("rsa-1")), valid())      => E::UnknownKey;
        other_key_same_kid:             impostor(valid())                                         => E::BadSignature;
        signature_of_another_token:     spliced()                                                 => E::BadSignature;
        payload_not_json:               rs_payload("sub=admin")                                   => E::Malformed("the payload is not a JSON object");
        wrong_iss:                      rs256(with("iss", json!("https://evil.example")))         => E::WrongIssuer("https://evil.example".into());
        iss_with_trailing_slash:        rs256(with("iss", json!("https://id.example.com/")))      => E::WrongIssuer("https://id.example.com/".into());
        iss_missing:                    rs256(without(&["iss"]))                                  => E::WrongIssuer(String::new());
        wrong_aud:                      rs256(with("aud", json!("someone-else")))                 => E::WrongAudience;
        aud_array_without_the_client:   rs256(with("aud", json!(["a", "b"])))                     => E::WrongAudience;
        aud_missing:                    rs256(without(&["aud"]))                                  => E::WrongAudience;
        iat_missing:                    rs256(without(&["iat"]))                                  => E::NoIssuedAt;
        iat_not_a_number:               rs256(with("iat", json!(NOW.to_string())))                => E::ClaimType("iat");
        iat_negative:                   rs256(with("iat", json!(-1)))                             => E::ClaimType("iat");
        iat_in_the_future:              rs256(with("iat", json!(NOW + 61)))                       => E::IssuedInFuture;
        iat_too_old:                    rs256(with("iat", json!(NOW - 601)))                      => E::TooOld;
        exp_passed:                     rs256(with("exp", json!(NOW - 60)))                       => E::Expired;
        jti_missing:                    rs256(without(&["jti"]))                                  => E::NoJti;
        jti_empty:                      rs256(with("jti", json!("")))                             => E::NoJti;
        events_missing:                 rs256(without(&["events"]))                               => E::NoEvents;
        events_not_an_object:           rs256(with("events", json!([EVENT])))                     => E::NoEvents;
        events_without_the_member:      rs256(with("events", json!({ "urn:other": {} })))         => E::NotLogoutEvent;
        event_member_not_an_object:     rs256(with("events", json!({ EVENT: true })))             => E::EventNotObject;
        nonce_present:                  rs256(with("nonce", json!("n-1")))                        => E::HasNonce;
        neither_sub_nor_sid:            rs256(without(&["sub", "sid"]))                           => E::NoSubject;
        sub_and_sid_empty:              rs256(set(with("sid", json!("")), "sub", json!("")))      => E::NoSubject;
        sub_not_a_string:               rs256(with("sub", json!(42)))                             => E::ClaimType("sub");
    }

    #[test]
    fn hmac_is_refused_even_when_the_caller_allows_it_and_the_keys_hold_the_secret() {
        let k = keys();
        let secret = json!({ "kty": "oct", "kid": "rsa-1", "k": b64(&k.rsa_pem) });
        let jwks = jwks(&[&secret, &k.rsa_jwk]);
        let algs = [A::HmacSha256, A::RsaSsaPkcs1V15Sha256];
        let token = hs256_with_rsa_pem(valid());
        assert_eq!(
            verify(&token, &jwks, &algs, ISS, CLIENT, NOW),
            Err(E::SymmetricAlgorithm)
        );
    }

    #[test]
    fn without_kid_two_keys_of_the_type_are_ambiguous() {
        let k = keys();
        let other = set(k.impostor_jwk.clone(), "kid", json!("rsa-2"));
        let jwks = jwks(&[&k.rsa_jwk, &other, &k.ec_jwk]);
        let token = rs(set(rs_header(), "kid", Value::Null), valid());
        assert_eq!(
            verify(&token, &jwks, ALGS, ISS, CLIENT, NOW),
            Err(E::AmbiguousKey)
        );
    }

    #[test]
    fn an_asymmetric_alg_the_caller_did_not_allow_is_refused() {
        let token = es256(valid());
        let rsa_only = [A::RsaSsaPkcs1V15Sha256];
        assert_eq!(
            verify(&token, &keys().jwks, &rsa_only, ISS, CLIENT, NOW),
            Err(E::AlgorithmNotAllowed("ES256".into()))
        );
    }

    #[test]
    fn every_truncation_of_a_valid_token_is_refused() {
        let token = es256(valid());
        for end in 0..token.len() {
            assert!(check(&token[..end]).is_err(), "accepted {end} bytes");
        }
    }

    /// A provider on loopback serving discovery and a JWKS the test changes;
    /// it counts JWKS fetches and can fail them.
    struct FakeProvider {
        issuer: String,
        jwks: Arc<Mutex<Value>>,
        jwks_fetches: Arc<AtomicUsize>,
        jwks_down: Arc<AtomicBool>,
    }

    impl FakeProvider {
        fn start(keys: &[&Value]) -> FakeProvider {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let fake = FakeProvider {
                issuer: issuer.clone(),
                jwks: Arc::new(Mutex::new(json!({ "keys": keys }))),
                jwks_fetches: Arc::default(),
                jwks_down: Arc::default(),
            };
            let discovery = json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
            });
            let (jwks, fetches, down) = (
                Arc::clone(&fake.jwks),
                Arc::clone(&fake.jwks_fetches),
                Arc::clone(&fake.jwks_down),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let mut stream = stream.unwrap();
                    let mut reader = BufReader::new(&stream);
                    let (mut request_line, mut header) = (String::new(), String::new());
                    reader.read_line(&mut request_line).unwrap();
                    // Up to the blank line that ends the head ("\r\n"), or the end.
                    while reader.read_line(&mut header).unwrap() > 2 {
                        header.clear();
                    }
                    let (status, body) = match request_line.split(' ').nth(1) {
                        Some("/.well-known/openid-configuration") => {
                            ("200 OK", discovery.to_string())
                        }
                        Some("/jwks") if down.load(Ordering::SeqCst) => {
                            ("503 Service Unavailable", String::new())
                        }
                        Some("/jwks") => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", jwks.lock().unwrap().to_string())
                        }
                        _ => ("404 Not Found", String::new()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            fake
        }

        fn provider(&self) -> Arc<Provider> {
            let settings = OidcSettings {
                issuer: self.issuer.clone(),
                client_id: CLIENT.into(),
                client_secret: None,
                client_auth: ClientAuth::None,
                scopes: vec!["openid".into()],
                username_claim: "preferred_username".into(),
                groups_claim: "groups".into(),
                offline_access: false,
            };
            Provider::new(settings, Vec::new()).unwrap()
        }

        /// [`valid`] claims from this provider.
        fn claims(&self) -> Value {
            with("iss", json!(self.issuer))
        }
    }

    #[tokio::test]
    async fn the_provider_refetches_its_keys_once_for_an_unknown_kid() {
        let k = keys();
        let fake = FakeProvider::start(&[&k.rsa_jwk]);
        let provider = fake.provider();
        let rotated = es256(fake.claims());
        assert_eq!(
            provider.verify_logout_token(&rotated, NOW).await,
            Err(E::NotReady)
        );

        provider.discover().await.unwrap();
        assert_eq!(fake.jwks_fetches.load(Ordering::SeqCst), 1);
        let known = provider
            .verify_logout_token(&rs256(fake.claims()), NOW)
            .await;
        assert_eq!(known, Ok(claims(Some("user-1"), Some("sid-1"))));
        assert_eq!(
            fake.jwks_fetches.load(Ordering::SeqCst),
            1,
            "no refetch for a known kid"
        );

        // The provider rotates to its P-256 key: one refetch finds it.
        *fake.jwks.lock().unwrap() = json!({ "keys": [k.rsa_jwk, k.ec_jwk] });
        let verified = provider.verify_logout_token(&rotated, NOW).await;
        assert_eq!(verified, Ok(claims(Some("user-1"), Some("sid-1"))));
        assert_eq!(fake.jwks_fetches.load(Ordering::SeqCst), 2);

        // Unknown kids in a burst cost no further fetches.
        let unknown = rs(set(rs_header(), "kid", json!("rsa-9")), fake.claims());
        assert_eq!(
            provider.verify_logout_token(&unknown, NOW).await,
            Err(E::UnknownKey)
        );
        assert_eq!(fake.jwks_fetches.load(Ordering::SeqCst), 2, "rate-limited");
        // HS256 is advertised, and still refused.
        let forged = hs256_with_rsa_pem(fake.claims());
        assert_eq!(
            provider.verify_logout_token(&forged, NOW).await,
            Err(E::SymmetricAlgorithm)
        );
    }

    #[tokio::test]
    async fn an_unknown_kid_while_the_keys_cannot_be_fetched_says_so() {
        let fake = FakeProvider::start(&[&keys().rsa_jwk]);
        let provider = fake.provider();
        provider.discover().await.unwrap();
        fake.jwks_down.store(true, Ordering::SeqCst);
        let rotated = es256(fake.claims());
        assert_eq!(
            provider.verify_logout_token(&rotated, NOW).await,
            Err(E::KeysUnavailable)
        );
    }

    #[test]
    fn errors_repeat_only_a_short_issuer() {
        let long = "x".repeat(10_000);
        let error = check(&rs256(with("iss", json!(long)))).unwrap_err();
        assert_eq!(error, E::WrongIssuer("x".repeat(MAX_ISSUER_IN_ERROR)));
        assert!(error.to_string().len() < 250, "{error}");
    }
}
