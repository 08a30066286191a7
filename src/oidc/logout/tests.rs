//! Every check of [`verify`], one row each, and the provider's key refetch
//! for logout tokens.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::oidc::test_keys::{
    b64, es, impostor, jwks, keys, oidc_settings, refused_rows, rs, set, sign,
};
use crate::oidc::Provider;
use CoreJwsSigningAlgorithm as A;
use JwsError as J;

const ISS: &str = "https://id.example.com";
const CLIENT: &str = "pocketgate";
const NOW: u64 = 1_700_000_000;
/// What the provider advertises (`id_token_signing_alg_values_supported`).
const ALGS: &[CoreJwsSigningAlgorithm] = &[A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256];
const EVENT: &str = BACKCHANNEL_LOGOUT_EVENT;

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

fn rs256(claims: Value) -> String {
    rs(rs_header(), claims)
}

fn es256(claims: Value) -> String {
    es(es_header(), claims)
}

/// PS256 with the provider's RSA key: sound, but not what the provider advertises.
fn ps256(claims: Value) -> String {
    let header = set(rs_header(), "alg", json!("PS256"));
    sign(&header, &claims.to_string(), Algorithm::PS256, &keys().rsa)
}

/// `alg: none` and an empty signature.
fn unsigned(claims: Value) -> String {
    let header = json!({ "alg": "none", "typ": "logout+jwt" });
    format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
}

/// The algorithm-confusion forgery: HS256 keyed with the RSA public key's
/// PEM text, under the RSA key's `kid`.
fn hs256_with_rsa_pem(claims: Value) -> String {
    crate::oidc::test_keys::hs256_with_rsa_pem(rs_header(), &claims)
}

/// A valid signature over a payload that is not JSON.
fn rs_payload(payload: &str) -> String {
    sign(&rs_header(), payload, Algorithm::RS256, &keys().rsa)
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

// Each row a token and the one check it fails.
#[rustfmt::skip]
refused_rows! {
    oversized:                      "a".repeat(MAX_TOKEN_LEN + 1)                             => E::Jws(J::TooLarge { max: MAX_TOKEN_LEN });
    garbage:                        "garbage".into()                                          => E::Jws(J::NotThreeParts);
    two_parts:                      format!("{}.{}", b64(rs_header().to_string()), b64(valid().to_string())) => E::Jws(J::NotThreeParts);
    four_parts:                     format!("{}.", rs256(valid()))                            => E::Jws(J::NotThreeParts);
    part_not_base64url:             rs256(valid()).replacen('.', "+.", 1)                     => E::Jws(J::NotBase64Url);
    part_padded:                    format!("{}=", rs256(valid()))                            => E::Jws(J::NotBase64Url);
    header_not_json:                format!("{}.{}.", b64("alg"), b64(valid().to_string()))   => E::Jws(J::HeaderNotJson);
    alg_missing:                    rs(set(rs_header(), "alg", Value::Null), valid())         => E::Jws(J::UnknownAlgorithm);
    alg_unknown:                    rs(set(rs_header(), "alg", json!("ES256K")), valid())     => E::Jws(J::UnknownAlgorithm);
    alg_none_unsigned:              unsigned(valid())                                         => E::Jws(J::Unsigned);
    hs256_keyed_with_rsa_pem:       hs256_with_rsa_pem(valid())                               => E::Jws(J::SymmetricAlgorithm);
    alg_not_advertised:             ps256(valid())                                            => E::Jws(J::AlgorithmNotAllowed("PS256".into()));
    typ_of_an_access_token:         rs(set(rs_header(), "typ", json!("at+jwt")), valid())     => E::BadType;
    typ_not_a_string:               rs(set(rs_header(), "typ", json!(1)), valid())            => E::Jws(J::TypeNotMediaType);
    crit_header:                    rs(set(rs_header(), "crit", json!(["exp"])), valid())     => E::Jws(J::CriticalHeader);
    kid_not_a_string:               rs(set(rs_header(), "kid", json!(1)), valid())            => E::Jws(J::KidNotString);
    unknown_kid:                    rs(set(rs_header(), "kid", json!("rotated")), valid())    => E::Jws(J::UnknownKey);
    kid_of_a_key_of_another_type:   es(set(es_header(), "kid", json!("rsa-1")), valid())      => E::Jws(J::UnknownKey);
    other_key_same_kid:             impostor(rs_header(), valid())                                         => E::Jws(J::BadSignature);
    signature_of_another_token:     spliced()                                                 => E::Jws(J::BadSignature);
    payload_not_json:               rs_payload("sub=admin")                                   => E::Jws(J::PayloadNotJson);
    wrong_iss:                      rs256(with("iss", json!("https://evil.example")))         => E::WrongIssuer("https://evil.example".into());
    iss_with_trailing_slash:        rs256(with("iss", json!("https://id.example.com/")))      => E::WrongIssuer("https://id.example.com/".into());
    iss_missing:                    rs256(without(&["iss"]))                                  => E::WrongIssuer(String::new());
    wrong_aud:                      rs256(with("aud", json!("someone-else")))                 => E::WrongAudience;
    aud_array_without_the_client:   rs256(with("aud", json!(["a", "b"])))                     => E::WrongAudience;
    aud_missing:                    rs256(without(&["aud"]))                                  => E::WrongAudience;
    iat_missing:                    rs256(without(&["iat"]))                                  => E::NoIssuedAt;
    iat_not_a_number:               rs256(with("iat", json!(NOW.to_string())))                => E::Jws(J::ClaimType("iat"));
    iat_negative:                   rs256(with("iat", json!(-1)))                             => E::Jws(J::ClaimType("iat"));
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
    sub_not_a_string:               rs256(with("sub", json!(42)))                             => E::Jws(J::ClaimType("sub"));
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
        Err(E::Jws(J::SymmetricAlgorithm))
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
        Err(E::Jws(J::AmbiguousKey))
    );
}

#[test]
fn an_asymmetric_alg_the_caller_did_not_allow_is_refused() {
    let token = es256(valid());
    let rsa_only = [A::RsaSsaPkcs1V15Sha256];
    assert_eq!(
        verify(&token, &keys().jwks, &rsa_only, ISS, CLIENT, NOW),
        Err(E::Jws(J::AlgorithmNotAllowed("ES256".into())))
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
                    Some("/.well-known/openid-configuration") => ("200 OK", discovery.to_string()),
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
        Provider::new(oidc_settings(&self.issuer), Vec::new()).unwrap()
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
        Err(E::Jws(J::UnknownKey))
    );
    assert_eq!(fake.jwks_fetches.load(Ordering::SeqCst), 2, "rate-limited");
    // HS256 is advertised, and still refused.
    let forged = hs256_with_rsa_pem(fake.claims());
    assert_eq!(
        provider.verify_logout_token(&forged, NOW).await,
        Err(E::Jws(J::SymmetricAlgorithm))
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
