//! Every refusal of [`verify_jwt`], [`check_introspection`] and
//! [`credential`], one row each.

use jsonwebtoken::Algorithm;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::json;

use super::*;
use crate::oidc::jws;
use crate::oidc::test_keys::{b64, es, impostor, keys, oidc_settings, rs, sign};
use CoreJwsSigningAlgorithm as A;
use JwsError as J;

const ISS: &str = "https://id.example.com";
const NOW: u64 = 1_700_000_000;
const ALGS: &[CoreJwsSigningAlgorithm] = &[A::RsaSsaPkcs1V15Sha256, A::EcdsaP256Sha256];

/// Verify a compact JWS bearer token against the provider's `jwks` and
/// `algs` and check its claims; the claims, once everything held. `now` is
/// seconds since the Unix epoch: what [`BearerAuth`] does with the provider's
/// current keys (refetched on an unknown `kid`).
fn verify_jwt(
    jws: &Jws<'_>,
    jwks: &CoreJsonWebKeySet,
    algs: &[CoreJwsSigningAlgorithm],
    issuer: &str,
    audiences: &[String],
    now: u64,
) -> Result<Map<String, Value>, TokenError> {
    let typ = check_type(jws)?;
    let claims = jws::verify(jws, jwks, algs)?;
    check_claims(&claims, typ, issuer, audiences, now)?;
    Ok(claims)
}

/// An access token as Pocket ID issues one (plus groups), valid at `NOW`.
fn valid() -> Value {
    json!({
        "iss": ISS, "aud": "pocketgate", "sub": "u-1", "iat": NOW - 5, "exp": NOW + 3600,
        "jti": "j-1", "type": "oauth-access-token", "groups": ["admins"],
    })
}

/// `claims` with `name` set to `value`, or removed when `value` is null.
fn changed(mut claims: Value, name: &str, value: Value) -> Value {
    match value {
        Value::Null => {
            claims.as_object_mut().unwrap().remove(name);
        }
        value => claims[name] = value,
    }
    claims
}

fn with(name: &str, value: Value) -> Value {
    changed(valid(), name, value)
}

fn rs_header() -> Value {
    json!({ "alg": "RS256", "kid": "rsa-1", "typ": "JWT" })
}

fn rs256(claims: Value) -> String {
    rs(rs_header(), claims)
}

fn es256(claims: Value) -> String {
    es(
        json!({ "alg": "ES256", "kid": "ec-1", "typ": "at+jwt" }),
        claims,
    )
}

fn typed(typ: &str) -> String {
    rs(
        json!({ "alg": "RS256", "kid": "rsa-1", "typ": typ }),
        valid(),
    )
}

fn unsigned(claims: Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT" });
    format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
}

fn hs256_with_rsa_pem(claims: Value) -> String {
    crate::oidc::test_keys::hs256_with_rsa_pem(rs_header(), &claims)
}

fn ps256(claims: Value) -> String {
    let header = json!({ "alg": "PS256", "kid": "rsa-1" });
    sign(&header, &claims.to_string(), Algorithm::PS256, &keys().rsa)
}

fn check(token: &str) -> Result<Map<String, Value>, TokenError> {
    let jws = Jws::parse(token, MAX_TOKEN_LEN)?;
    let audiences = [
        "pocketgate".to_string(),
        "https://api.example.com".to_string(),
    ];
    verify_jwt(&jws, &keys().jwks, ALGS, ISS, &audiences, NOW)
}

#[test]
fn valid_tokens_yield_their_claims() {
    assert_eq!(check(&rs256(valid())).unwrap()["sub"], json!("u-1"));
    assert_eq!(check(&es256(valid())).unwrap()["sub"], json!("u-1"));
    // aud as a list sharing one value; within the leeway of exp, nbf, iat.
    let ok = [
        with("aud", json!(["other", "https://api.example.com"])),
        with("exp", json!(NOW - 30)),
        with("nbf", json!(NOW + 30)),
        with("iat", json!(NOW + 30)),
        with("type", Value::Null),
    ];
    for claims in ok {
        assert!(check(&rs256(claims.clone())).is_ok(), "{claims}");
    }
}

macro_rules! refused {
    ($($name:ident: $token:expr => $error:pat,)*) => {$(
        #[test]
        fn $name() {
            let result = check(&$token);
            assert!(matches!(result, Err($error)), "{result:?}");
        }
    )*};
}

#[rustfmt::skip]
refused! {
    bad_signature:         impostor(rs_header(), valid())                              => TokenError::Jws(J::BadSignature),
    alg_none:              unsigned(valid())                              => TokenError::Jws(J::Unsigned),
    hs256_with_public_key: hs256_with_rsa_pem(valid())                    => TokenError::Jws(J::SymmetricAlgorithm),
    alg_not_advertised:    ps256(valid())                                 => TokenError::Jws(J::AlgorithmNotAllowed(_)),
    wrong_issuer:          rs256(with("iss", json!("https://evil.example"))) => TokenError::WrongIssuer,
    no_issuer:             rs256(with("iss", Value::Null))                => TokenError::WrongIssuer,
    wrong_audience:        rs256(with("aud", json!("some-other-client"))) => TokenError::WrongAudience,
    wrong_audience_list:   rs256(with("aud", json!(["a", "b"])))          => TokenError::WrongAudience,
    no_audience:           rs256(with("aud", Value::Null))                => TokenError::WrongAudience,
    expired:               rs256(with("exp", json!(NOW - 61)))            => TokenError::Expired,
    no_expiry:             rs256(with("exp", Value::Null))                => TokenError::NoExpiry,
    exp_not_a_number:      rs256(with("exp", json!("soon")))              => TokenError::Jws(J::ClaimType("exp")),
    not_yet_valid:         rs256(with("nbf", json!(NOW + 120)))           => TokenError::NotYetValid,
    issued_in_future:      rs256(with("iat", json!(NOW + 120)))           => TokenError::IssuedInFuture,
    logout_token_by_typ:   typed("logout+jwt")                            => TokenError::LogoutToken,
    logout_token_by_claim: rs256(with("events", json!({"http://schemas.openid.net/event/backchannel-logout": {}}))) => TokenError::LogoutToken,
    id_token_by_nonce:     rs256(with("nonce", json!("n")))               => TokenError::IdToken,
    pocket_id_id_token:    rs256(with("type", json!("id-token")))         => TokenError::IdToken,
    other_typ:             typed("secevent+jwt")                          => TokenError::BadType,
    id_typ:                typed("id_token+jwt")                          => TokenError::BadType,
    id_token_by_at_hash:   rs256(with("at_hash", json!("h")))             => TokenError::IdToken,
    id_token_by_c_hash:    rs256(with("c_hash", json!("h")))              => TokenError::IdToken,
    id_token_as_at_jwt:    rs(json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}), with("type", json!("id-token"))) => TokenError::IdToken,
    other_pocket_id_type:  rs256(with("type", json!("refresh-token")))   => TokenError::NotAccessToken(_),
    no_subject:            rs256(with("sub", Value::Null))                => TokenError::NotAccessToken(_),
    empty_subject:         rs256(with("sub", json!("")))                  => TokenError::NotAccessToken(_),
    padded_parts:          reencoded(&rs256(valid()), Reencode::Padded)    => TokenError::Jws(J::NotBase64Url),
    standard_alphabet:     reencoded(&rs256(valid()), Reencode::Standard)  => TokenError::Jws(J::NotBase64Url),
    unknown_kid:           rs(json!({"alg": "RS256", "kid": "rsa-9"}), valid()) => TokenError::Jws(J::UnknownKey),
    crit_header:           rs(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["x"]}), valid()) => TokenError::Jws(J::CriticalHeader),
    payload_not_json:      sign(&rs_header(), "not json", Algorithm::RS256, &keys().rsa) => TokenError::Jws(J::PayloadNotJson),
    garbage:               String::from("not.a.jwt")                      => TokenError::Jws(J::NotBase64Url),
}

#[test]
fn access_token_types_are_accepted_by_an_allowlist() {
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "JWT",
        "jwt",
        "application/jwt",
    ] {
        assert!(check(&typed(typ)).is_ok(), "{typ}");
    }
    // `at+jwt` says "access token" itself: claims shared with ID tokens are fine there.
    let at_jwt = json!({ "alg": "RS256", "kid": "rsa-1", "typ": "at+jwt" });
    assert!(check(&rs(at_jwt, with("at_hash", json!("h")))).is_ok());
}

/// How [`reencoded`] spells a valid token's parts in another base64.
enum Reencode {
    /// base64url with `=` padding.
    Padded,
    /// The standard alphabet (`+`, `/`), with padding.
    Standard,
}

/// `token` with each part decoded and encoded again as `how` says, so that
/// a lenient decoder (Pocket ID's) reads the same token. Both spellings pad
/// the 256-byte RS256 signature, so every row really differs.
fn reencoded(token: &str, how: Reencode) -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let out: Vec<String> = token
        .split('.')
        .map(|part| {
            let bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
            match how {
                Reencode::Padded => URL_SAFE.encode(bytes),
                Reencode::Standard => STANDARD.encode(bytes),
            }
        })
        .collect();
    let joined = out.join(".");
    assert_ne!(joined, token, "the re-encoding changed nothing");
    joined
}

const CLIENT: &str = "pocketgate";

/// An introspection answer as Pocket ID gives one for a live access token
/// (no `token_type`: Pocket ID never writes one).
fn active() -> Value {
    json!({
        "active": true, "scope": "openid profile",
        "exp": NOW + 3600, "iat": NOW - 5, "sub": "u-1", "aud": [CLIENT], "iss": ISS,
    })
}

fn answer_with(name: &str, value: Value) -> Value {
    changed(active(), name, value)
}

fn introspected(answer: Value) -> Result<u64, TokenError> {
    let audiences = [CLIENT.to_string(), "https://api.example.com".to_string()];
    check_introspection(answer.as_object().unwrap(), ISS, &audiences, NOW)
}

#[test]
fn introspection_answers_that_are_accepted() {
    assert_eq!(introspected(active()), Ok(NOW + 3600));
    let ok = [
        answer_with("aud", json!(CLIENT)),
        answer_with("aud", json!(["other", "https://api.example.com"])),
        // No aud, but issued to us.
        {
            let mut a = answer_with("aud", Value::Null);
            a["client_id"] = json!(CLIENT);
            a
        },
        // Another client's token naming us as its audience.
        {
            let mut a = active();
            a["client_id"] = json!("other-client");
            a
        },
        answer_with("token_type", json!("Bearer")),
        answer_with("token_type", json!("access_token")),
        answer_with("token_use", json!("access")),
        answer_with("iss", Value::Null),
        answer_with("exp", json!(NOW - 30)),
    ];
    for answer in ok {
        assert!(introspected(answer.clone()).is_ok(), "{answer}");
    }
}

macro_rules! introspection_refused {
    ($($name:ident: $answer:expr => $error:pat,)*) => {$(
        #[test]
        fn $name() {
            let result = introspected($answer);
            assert!(matches!(result, Err($error)), "{result:?}");
        }
    )*};
}

#[rustfmt::skip]
introspection_refused! {
    introspection_inactive:         json!({"active": false})                          => TokenError::Inactive,
    introspection_active_as_string: answer_with("active", json!("true"))              => TokenError::Inactive,
    introspection_no_active:        answer_with("active", Value::Null)                => TokenError::Inactive,
    introspection_other_client:     answer_with("aud", json!(["other-client"]))       => TokenError::WrongAudience,
    introspection_other_client_id:  { let mut a = answer_with("aud", Value::Null); a["client_id"] = json!("other-client"); a } => TokenError::WrongAudience,
    introspection_no_audience:      answer_with("aud", Value::Null)                   => TokenError::WrongAudience,
    introspection_expired:          answer_with("exp", json!(NOW - 61))              => TokenError::Expired,
    introspection_no_expiry:        answer_with("exp", Value::Null)                   => TokenError::NoExpiry,
    introspection_not_yet_valid:    answer_with("nbf", json!(NOW + 120))              => TokenError::NotYetValid,
    introspection_refresh_token:    answer_with("token_type", json!("refresh_token")) => TokenError::IntrospectedType,
    introspection_refresh_use:      answer_with("token_use", json!("refresh"))        => TokenError::IntrospectedType,
    introspection_id_token_use:     answer_with("token_use", json!("id"))             => TokenError::IntrospectedType,
    introspection_wrong_issuer:     answer_with("iss", json!("https://evil.example")) => TokenError::WrongIssuer,
}

#[test]
fn every_truncation_of_a_valid_token_is_refused() {
    let token = rs256(valid());
    for end in (0..token.len()).step_by(7) {
        assert!(
            check(&token[..end]).is_err(),
            "accepted a prefix of {end} bytes"
        );
    }
}

fn header(values: &[&str]) -> Credential<'static> {
    let leaked: Vec<&'static [u8]> = values
        .iter()
        .map(|v| &*Box::leak(v.as_bytes().to_vec().into_boxed_slice()))
        .collect();
    credential(leaked.into_iter())
}

#[test]
fn the_header_is_read_as_rfc_6750_says() {
    assert_eq!(header(&[]), Credential::None);
    assert_eq!(header(&["Basic YWxpY2U6cGFzcw=="]), Credential::None);
    assert_eq!(
        header(&["Bearer abc.DEF-_~+/=="]),
        Credential::Bearer("abc.DEF-_~+/==")
    );
    assert_eq!(header(&["bearer abc"]), Credential::Bearer("abc"));
    assert_eq!(header(&["BEARER abc"]), Credential::Bearer("abc"));
    for bad in [
        "Bearer",
        "Bearer ",
        "Bearer  abc",
        "Bearer abc ",
        "Bearer a b",
        "Bearer a=b",
        "Bearer ===",
        "Bearer a,b",
        "Bearer a\"b",
        "Bearer ä",
    ] {
        assert!(
            matches!(header(&[bad]), Credential::Malformed(_)),
            "{bad:?}"
        );
    }
    let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    assert_eq!(
        header(&[&long]),
        Credential::Malformed(TokenError::TooLarge)
    );
    assert!(matches!(
        header(&["Bearer abc", "Bearer def"]),
        Credential::Malformed(_)
    ));
}

#[test]
fn errors_never_repeat_the_token() {
    let token = rs256(with("iss", json!("https://evil.example/SECRET")));
    let message = check(&token).unwrap_err().to_string();
    assert!(
        !message.contains("SECRET") && !message.contains(&token[..20]),
        "{message}"
    );
}

/// Requests that wait for one provider lookup and go away together (their
/// tasks aborted at once, on several threads) leave nothing in the
/// single-flight map: each round's entry is gone once its last waiter is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_that_go_away_together_leave_no_running_check() {
    use dev_idp::{AccessTokenOptions, DevIdp, DevIdpConfig};

    let idp = DevIdp::start(DevIdpConfig {
        redirect_uris: vec!["http://127.0.0.1:1/callback".into()],
        ..DevIdpConfig::default()
    })
    .await
    .unwrap();
    let provider = Provider::new(oidc_settings(idp.issuer()), Vec::new()).unwrap();
    provider.discover().await.unwrap();
    let auth = Arc::new(BearerAuth::new(
        provider,
        BearerSettings {
            audiences: vec!["pocketgate".into()],
            opaque: OpaqueTokens::Userinfo,
            lookups_in_flight: 1_000,
            lookups_per_minute: 100_000,
        },
    ));
    idp.set_lookup_delay(Duration::from_secs(30));
    let client: IpAddr = [127, 0, 0, 1].into();
    for round in 0..10 {
        let token = idp
            .access_token(&AccessTokenOptions {
                opaque: true,
                ..AccessTokenOptions::new("alice")
            })
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (auth, token) = (auth.clone(), token.clone());
                tokio::spawn(async move { auth.authenticate(&token, client).await })
            })
            .collect();
        // Every task waits for the one lookup (bounded: 5 s).
        for _ in 0..500 {
            if auth.running_len() == 1 && idp.userinfo_calls() > round {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(auth.running_len(), 1, "round {round}: one check runs");
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        assert_eq!(auth.running_len(), 0, "round {round}: a stale entry stays");
    }
}

/// The last waiter to leave takes the check out of the map, whatever the
/// order, even when every guard is dropped before any other lets go of the
/// check (what two requests cancelled at once on two threads do); a waiter
/// of a finished check leaves a later check of the same token alone.
#[test]
fn the_last_waiter_to_leave_takes_the_check_out_in_any_order() {
    let key = [7; 32];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let running: RunningChecks = Mutex::new(HashMap::new());
        let mut guards: Vec<Option<Running<'_>>> =
            (0..3).map(|_| Some(Running::join(&running, key))).collect();
        for (n, i) in order.into_iter().enumerate() {
            assert_eq!(running.lock().unwrap().len(), 1, "{order:?} after {n}");
            drop(guards[i].take());
        }
        assert_eq!(running.lock().unwrap().len(), 0, "{order:?}");
    }

    let running: RunningChecks = Mutex::new(HashMap::new());
    let (done, other) = (Running::join(&running, key), Running::join(&running, key));
    done.cell
        .set(Err(OidcError::NotReady(None).into()))
        .unwrap();
    drop(done);
    let later = Running::join(&running, key);
    drop(other);
    assert_eq!(running.lock().unwrap().len(), 1, "the later check stays");
    drop(later);
    assert_eq!(running.lock().unwrap().len(), 0);
}
