//! Strict JWS compact parsing and signature checks, shared by ID tokens,
//! back-channel logout tokens and bearer tokens. Pure: the keys, the allowed
//! algorithms and the size bound come from the caller.
//!
//! A token is exactly three unpadded base64url parts (RFC 7515 section 7.1:
//! no padding, no standard alphabet, whatever a lenient provider reads); its
//! header a JSON object whose `alg` is one the caller allows and asymmetric
//! (never `none`, never HMAC, whatever the caller allows); no `crit` (none of
//! its extensions are supported); the key is the provider's, named by `kid`
//! (or, without `kid`, the only one that fits the algorithm), never one the
//! header embeds or points to (`jwk`, `jku`, `x5u`, `x5c`). Only once the
//! signature verifies is the payload read, as a JSON object.
//!
//! Not done here: which `typ` a token may have ([`Jws::typ`] only reads it),
//! the claims (the caller's: logout, bearer, `openidconnect` for ID tokens),
//! fetching or refetching keys ([`super::Provider::verify_signed`]).
//! Encrypted (JWE) tokens are not supported.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{
    JsonWebKey as _, JsonWebKeyAlgorithm, JsonWebKeyUse as _, JsonWebTokenType,
    JwsSigningAlgorithm as _,
};
use serde_json::{Map, Value};

use super::is_asymmetric;

/// Why a token is not a JWS the provider signed, one variant per check.
/// Messages are predicates the caller puts after the token's name ("the
/// logout token {0}"); they never repeat the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("is longer than {max} bytes")]
    TooLarge { max: usize },
    #[error("is not three dot-separated parts")]
    NotThreeParts,
    #[error("has a part that is not unpadded base64url")]
    NotBase64Url,
    #[error("has a header that is not a JSON object")]
    HeaderNotJson,
    #[error("has no alg, or one that is not a JWS algorithm")]
    UnknownAlgorithm,
    #[error("is unsigned (alg none)")]
    Unsigned,
    #[error("is signed with a shared secret (HMAC); only the provider's public keys are accepted")]
    SymmetricAlgorithm,
    #[error("is signed with alg {0}, which is not one the provider advertises")]
    AlgorithmNotAllowed(String),
    #[error("has a typ that is not a media type")]
    TypeNotMediaType,
    #[error("has critical header parameters (crit), none of which are supported")]
    CriticalHeader,
    #[error("has a kid that is not a string")]
    KidNotString,
    #[error("names no key of the provider that fits its kid and alg")]
    UnknownKey,
    #[error("has no kid, and several keys of the provider would fit")]
    AmbiguousKey,
    #[error("has a signature that does not verify")]
    BadSignature,
    #[error("has a payload that is not a JSON object")]
    PayloadNotJson,
    #[error("has claim {0} of the wrong JSON type")]
    ClaimType(&'static str),
}

use JwsError as E;

/// A compact JWS split and decoded, nothing verified yet.
pub(crate) struct Jws<'a> {
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    signing_input: &'a str,
}

impl<'a> Jws<'a> {
    /// Split `token` into its three parts and decode them, refusing a token
    /// longer than `max_len` bytes first.
    pub(crate) fn parse(token: &'a str, max_len: usize) -> Result<Jws<'a>, JwsError> {
        if token.len() > max_len {
            return Err(E::TooLarge { max: max_len });
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(E::NotThreeParts);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| E::NotBase64Url);
        let header = serde_json::from_slice(&decode(header)?).map_err(|_| E::HeaderNotJson)?;
        Ok(Jws {
            header,
            payload: decode(payload)?,
            signature: decode(signature)?,
            signing_input,
        })
    }

    /// The header's `typ`, normalized as RFC 7515 section 4.1.9 allows (lower
    /// case, `application/` prefixed: `at+JWT` is `application/at+jwt`), or
    /// `None` without one. Which types a token may have is the caller's call.
    pub(crate) fn typ(&self) -> Result<Option<String>, JwsError> {
        let typ = match self.header.get("typ") {
            None => return Ok(None),
            Some(Value::String(typ)) => typ,
            Some(_) => return Err(E::TypeNotMediaType),
        };
        let normalized = JsonWebTokenType::new(typ.clone())
            .normalize()
            .map_err(|_| E::TypeNotMediaType)?;
        Ok(Some(String::from(normalized)))
    }

    /// The payload as JSON, unverified: for `explain --bearer` only.
    pub(crate) fn unverified_payload(&self) -> Result<Map<String, Value>, JwsError> {
        serde_json::from_slice(&self.payload).map_err(|_| E::PayloadNotJson)
    }
}

/// Verify `jws` with the provider's `jwks`, by an `alg` in `algs`, and
/// return its payload: the module's checks, in the order the module doc
/// gives them.
pub(crate) fn verify(
    jws: &Jws<'_>,
    jwks: &CoreJsonWebKeySet,
    algs: &[CoreJwsSigningAlgorithm],
) -> Result<Map<String, Value>, JwsError> {
    let alg = allowed_alg(&jws.header, algs)?;
    if jws.header.contains_key("crit") {
        return Err(E::CriticalHeader);
    }
    let kid = match jws.header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(E::KidNotString),
    };
    let key = select_key(jwks, kid, &alg)?;
    key.verify_signature(&alg, jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| E::BadSignature)?;
    // Only now is the payload the provider's word.
    serde_json::from_slice(&jws.payload).map_err(|_| E::PayloadNotJson)
}

/// The header's `alg`, if the caller allows it and it is asymmetric.
fn allowed_alg(
    header: &Map<String, Value>,
    algs: &[CoreJwsSigningAlgorithm],
) -> Result<CoreJwsSigningAlgorithm, JwsError> {
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

/// The key named by `kid` that fits `alg`, or without `kid` the only key that
/// fits `alg`.
fn select_key<'k>(
    jwks: &'k CoreJsonWebKeySet,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
) -> Result<&'k CoreJsonWebKey, JwsError> {
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

/// A string claim; absent is `None`, any other JSON type (null too) an error.
pub(crate) fn string_claim<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'c str>, JwsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(E::ClaimType(name)),
    }
}

/// A NumericDate claim (RFC 7519: seconds, possibly fractional); absent is `None`.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, JwsError> {
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

#[cfg(test)]
mod tests;
