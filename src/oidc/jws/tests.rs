//! Every refusal of [`Jws::parse`], [`Jws::typ`], [`verify`] and the claim
//! readers, one row each, each reached by a crafted token.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::oidc::test_keys::{
    b64, hs256_with_rsa_pem, impostor, jwks, keys, refused_rows, set, sign,
};
use CoreJwsSigningAlgorithm as A;

const MAX: usize = 16 * 1024;
const ALGS: &[CoreJwsSigningAlgorithm] = &[A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256];

fn header() -> Value {
    json!({ "alg": "RS256", "kid": "rsa-1", "typ": "JWT" })
}

fn claims() -> Value {
    json!({ "sub": "u-1", "iat": 1_700_000_000 })
}

/// Signed with the provider's RSA key under `header`.
fn rs(header: Value) -> String {
    sign(
        &header,
        &claims().to_string(),
        Algorithm::RS256,
        &keys().rsa,
    )
}

fn check(token: &str) -> Result<Map<String, Value>, JwsError> {
    verify(&Jws::parse(token, MAX)?, &keys().jwks, ALGS)
}

#[test]
fn a_token_signed_by_a_provider_key_yields_its_payload() {
    assert_eq!(
        check(&rs(header())),
        Ok(claims().as_object().unwrap().clone())
    );
    let es = json!({ "alg": "ES256", "kid": "ec-1" });
    let token = sign(&es, &claims().to_string(), Algorithm::ES256, &keys().ec);
    assert!(check(&token).is_ok());
    // Without kid, the only key of the algorithm's type.
    assert!(check(&rs(set(header(), "kid", Value::Null))).is_ok());
}

#[rustfmt::skip]
mod refusals {
    use super::*;

    refused_rows! {
        too_large:          "a".repeat(MAX + 1)                                       => JwsError::TooLarge { max: MAX };
        two_parts:          format!("{}.{}", b64(header().to_string()), b64("{}"))    => JwsError::NotThreeParts;
        four_parts:         format!("{}.", rs(header()))                              => JwsError::NotThreeParts;
        padded:             format!("{}=", rs(header()))                              => JwsError::NotBase64Url;
        standard_alphabet:  rs(header()).replacen('.', "+.", 1)                       => JwsError::NotBase64Url;
        header_not_json:    format!("{}.{}.", b64("alg"), b64("{}"))                  => JwsError::HeaderNotJson;
        alg_missing:        rs(set(header(), "alg", Value::Null))                     => JwsError::UnknownAlgorithm;
        alg_unknown:        rs(set(header(), "alg", json!("ES256K")))                 => JwsError::UnknownAlgorithm;
        alg_none:           format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"))    => JwsError::Unsigned;
        hmac:               hs256_with_rsa_pem(header(), &claims())                   => JwsError::SymmetricAlgorithm;
        alg_not_allowed:    sign(&set(header(), "alg", json!("PS256")), "{}", Algorithm::PS256, &keys().rsa) => JwsError::AlgorithmNotAllowed("PS256".into());
        crit:               rs(set(header(), "crit", json!(["exp"])))                 => JwsError::CriticalHeader;
        kid_not_a_string:   rs(set(header(), "kid", json!(1)))                        => JwsError::KidNotString;
        unknown_kid:        rs(set(header(), "kid", json!("rotated")))                => JwsError::UnknownKey;
        kid_of_other_type:  rs(set(header(), "kid", json!("ec-1")))                   => JwsError::UnknownKey;
        other_key_same_kid: impostor(header(), claims()) => JwsError::BadSignature;
        payload_not_json:   sign(&header(), "sub=admin", Algorithm::RS256, &keys().rsa) => JwsError::PayloadNotJson;
    }
}

#[test]
fn without_kid_two_keys_of_the_type_are_ambiguous() {
    let k = keys();
    let other = set(k.impostor_jwk.clone(), "kid", json!("rsa-2"));
    let two_rsa = jwks(&[&k.rsa_jwk, &other]);
    let token = rs(set(header(), "kid", Value::Null));
    let jws = Jws::parse(&token, MAX).unwrap();
    assert_eq!(verify(&jws, &two_rsa, ALGS), Err(JwsError::AmbiguousKey));
}

#[test]
fn hmac_is_refused_even_when_the_caller_allows_it() {
    let token = hs256_with_rsa_pem(header(), &claims());
    let jws = Jws::parse(&token, MAX).unwrap();
    let algs = [A::HmacSha256, A::RsaSsaPkcs1V15Sha256];
    assert_eq!(
        verify(&jws, &keys().jwks, &algs),
        Err(JwsError::SymmetricAlgorithm)
    );
}

#[test]
fn typ_is_read_in_any_spelling_rfc_7515_allows() {
    let typ = |value: Value| {
        Jws::parse(&rs(set(header(), "typ", value)), MAX)
            .unwrap()
            .typ()
    };
    assert_eq!(typ(Value::Null), Ok(None));
    assert_eq!(typ(json!("JWT")), Ok(Some("application/jwt".into())));
    assert_eq!(typ(json!("AT+JWT")), Ok(Some("application/at+jwt".into())));
    assert_eq!(
        typ(json!("application/logout+JWT")),
        Ok(Some("application/logout+jwt".into()))
    );
    assert_eq!(typ(json!(1)), Err(JwsError::TypeNotMediaType));
    assert_eq!(typ(json!("jwt;v=\"a/b\"")), Err(JwsError::TypeNotMediaType));
}

#[test]
fn claims_of_the_wrong_json_type_are_named() {
    let payload = json!({ "sub": 1, "iat": "soon", "exp": -1, "nbf": 1.5, "jti": "j" });
    let claims = payload.as_object().unwrap();
    assert_eq!(string_claim(claims, "sub"), Err(JwsError::ClaimType("sub")));
    assert_eq!(string_claim(claims, "jti"), Ok(Some("j")));
    assert_eq!(string_claim(claims, "sid"), Ok(None));
    assert_eq!(numeric_date(claims, "iat"), Err(JwsError::ClaimType("iat")));
    assert_eq!(numeric_date(claims, "exp"), Err(JwsError::ClaimType("exp")));
    assert_eq!(numeric_date(claims, "nbf"), Ok(Some(1)));
    assert_eq!(numeric_date(claims, "auth_time"), Ok(None));
}

#[test]
fn every_truncation_of_a_valid_token_is_refused() {
    let token = rs(header());
    for end in 0..token.len() {
        assert!(check(&token[..end]).is_err(), "accepted {end} bytes");
    }
}

#[test]
fn messages_never_repeat_the_token() {
    let token = rs(set(header(), "alg", json!("SECRET")));
    let message = check(&token).unwrap_err().to_string();
    assert!(!message.contains("SECRET"), "{message}");
}
