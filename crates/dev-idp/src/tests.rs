//! End-to-end tests of the development identity provider: each one starts a provider on a free
//! loopback port and talks to it over HTTP, verifying ID tokens against the served JWKS the way
//! a relying party would.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::protocol::random_token;
use super::*;

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const LOGGED_OUT: &str = "http://127.0.0.1:9/logged-out";
/// A secret that only survives HTTP Basic when form-encoded first (RFC 6749 section 2.3.1).
const SECRET: &str = "s3cr3t:with+special=chars&more/%";
const STATE: &str = "state-5f1c";
const NONCE: &str = "nonce-9a7e";
const ALL_SCOPES: &str = "openid profile email groups";

fn config(secret: Option<&str>, alg: SigningAlg) -> DevIdpConfig {
    DevIdpConfig {
        client_secret: secret.map(str::to_owned),
        redirect_uris: vec![CALLBACK.to_owned()],
        post_logout_redirect_uris: vec![LOGGED_OUT.to_owned()],
        alg,
        ..DevIdpConfig::default()
    }
}

async fn start(secret: Option<&str>) -> DevIdp {
    DevIdp::start(config(secret, SigningAlg::Rs256))
        .await
        .expect("provider starts")
}

/// A client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

async fn get_json(url: &str) -> Value {
    http()
        .get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = random_token(32).expect("randomness");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The authorization URL a relying party would send a browser to.
fn authorize_url(idp: &DevIdp, scope: &str, pkce: &Pkce) -> String {
    authorize_url_with(
        idp,
        &[
            ("response_type", "code"),
            ("client_id", "pocketgate"),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("state", STATE),
            ("nonce", NONCE),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

fn authorize_url_with(idp: &DevIdp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", idp.issuer())).expect("URL");
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

fn location(response: &reqwest::Response) -> url::Url {
    let value = response
        .headers()
        .get(LOCATION)
        .expect("Location header")
        .to_str()
        .expect("ASCII Location");
    url::Url::parse(value).expect("absolute Location")
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Approves as `user` and returns the code, checking the redirect on the way.
async fn code_for(idp: &DevIdp, user: &str, scope: &str, pkce: &Pkce) -> String {
    let approve = idp
        .approve_url(&authorize_url(idp, scope, pkce), user)
        .expect("approve URL");
    let response = http().get(approve).send().await.expect("approve");
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    assert_eq!(
        format!("{}://{}{}", back.scheme(), back.authority(), back.path()),
        CALLBACK
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some(STATE));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(idp.issuer()));
    let code = query_param(&back, "code").expect("code");
    assert!(code.len() >= 22, "code carries at least 128 bits");
    code
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic(&'a str),
    Post(&'a str),
    Public,
}

async fn redeem(idp: &DevIdp, auth: Auth<'_>, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        idp,
        auth,
        vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The refresh token grant; `extra` adds form parameters (`scope`).
async fn refresh(
    idp: &DevIdp,
    auth: Auth<'_>,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend_from_slice(extra);
    token_request(idp, auth, form).await
}

/// A POST to the token endpoint with `form`, authenticated as `auth` says.
async fn token_request(
    idp: &DevIdp,
    auth: Auth<'_>,
    mut form: Vec<(&str, &str)>,
) -> reqwest::Response {
    let mut request = http().post(format!("{}/api/oidc/token", idp.issuer()));
    match auth {
        Auth::Basic(secret) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc("pocketgate"),
                enc(secret)
            ));
            request = request.header(AUTHORIZATION, format!("Basic {credentials}"));
        }
        Auth::Post(secret) => form.extend([("client_id", "pocketgate"), ("client_secret", secret)]),
        Auth::Public => form.push(("client_id", "pocketgate")),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
}

/// The whole flow; returns the token response.
async fn tokens(idp: &DevIdp, auth: Auth<'_>, user: &str, scope: &str) -> Value {
    let pkce = pkce();
    let code = code_for(idp, user, scope, &pkce).await;
    let response = redeem(idp, auth, &code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.json().await.expect("token JSON")
}

fn id_token_of(tokens: &Value) -> &str {
    tokens["id_token"].as_str().expect("id_token")
}

fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWT segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn jwt_header(token: &str) -> Value {
    segment(token, 0)
}

fn jwt_claims(token: &str) -> Value {
    segment(token, 1)
}

/// Verifies like a relying party: algorithm pinned to discovery, key from the JWKS by `kid`,
/// issuer and audience checked.
async fn verify(idp: &DevIdp, token: &str) -> Result<Value, ErrorKind> {
    verify_with(idp, token, |validation| {
        validation.set_issuer(&[idp.issuer()]);
        validation.set_audience(&["pocketgate"]);
    })
    .await
}

/// Verifies the signature as [`verify`] does, with the claim checks `adjust` sets up.
async fn verify_with(
    idp: &DevIdp,
    token: &str,
    adjust: impl FnOnce(&mut Validation),
) -> Result<Value, ErrorKind> {
    let discovery = get_json(&format!(
        "{}/.well-known/openid-configuration",
        idp.issuer()
    ))
    .await;
    let alg = match discovery["id_token_signing_alg_values_supported"][0].as_str() {
        Some("ES256") => Algorithm::ES256,
        _ => Algorithm::RS256,
    };
    let jwks: JwkSet =
        serde_json::from_value(get_json(discovery["jwks_uri"].as_str().expect("jwks_uri")).await)
            .expect("JWKS");
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.into_kind())?;
    let kid = header.kid.ok_or(ErrorKind::InvalidToken)?;
    let jwk = jwks.find(&kid).ok_or(ErrorKind::InvalidKeyFormat)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.into_kind())?;
    let mut validation = Validation::new(alg);
    adjust(&mut validation);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.into_kind())
}

async fn userinfo(idp: &DevIdp, bearer: Option<&str>) -> reqwest::Response {
    let mut request = http().get(format!("{}/api/oidc/userinfo", idp.issuer()));
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.expect("userinfo request")
}

fn alice() -> DevUser {
    default_users().remove(0)
}

#[actix_web::test]
async fn discovery_advertises_what_pocket_id_does() {
    let idp = start(Some(SECRET)).await;
    let issuer = idp.issuer().to_owned();
    assert_eq!(issuer, format!("http://127.0.0.1:{}", idp.addr().port()));
    let d = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(d["token_endpoint"], format!("{issuer}/api/oidc/token"));
    assert_eq!(
        d["userinfo_endpoint"],
        format!("{issuer}/api/oidc/userinfo")
    );
    assert_eq!(d["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        d["end_session_endpoint"],
        format!("{issuer}/api/oidc/end-session")
    );
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["plain", "S256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!(["openid", "profile", "email", "groups", "offline_access"])
    );
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    let claims = d["claims_supported"].as_array().expect("claims_supported");
    for claim in [
        "sub",
        "name",
        "email",
        "email_verified",
        "preferred_username",
        "groups",
    ] {
        assert!(claims.contains(&Value::from(claim)), "{claim}");
    }

    let jwks = get_json(&format!("{issuer}/.well-known/jwks.json")).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().expect("n"))
            .expect("n")
            .len(),
        256
    );
    assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    idp.stop().await;
}

#[actix_web::test]
async fn internal_host_moves_only_the_backchannel_endpoints() {
    let idp = DevIdp::start(DevIdpConfig {
        internal_host: Some("localhost".to_owned()),
        ..config(None, SigningAlg::Rs256)
    })
    .await
    .expect("provider starts");
    let issuer = idp.issuer().to_owned();
    let internal = format!("http://localhost:{}", idp.addr().port());
    let d = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(
        d["end_session_endpoint"],
        format!("{issuer}/api/oidc/end-session")
    );
    assert_eq!(d["token_endpoint"], format!("{internal}/api/oidc/token"));
    assert_eq!(
        d["userinfo_endpoint"],
        format!("{internal}/api/oidc/userinfo")
    );
    assert_eq!(d["jwks_uri"], format!("{internal}/.well-known/jwks.json"));
    // The advertised JWKS URL works and verifies the provider's tokens.
    let tokens = tokens(&idp, Auth::Public, "bob", ALL_SCOPES).await;
    assert!(verify(&idp, id_token_of(&tokens)).await.is_ok());
    idp.stop().await;

    let bad = DevIdp::start(DevIdpConfig {
        internal_host: Some("host/with/path".to_owned()),
        ..config(None, SigningAlg::Rs256)
    })
    .await;
    assert!(matches!(bad, Err(DevIdpError::Config(_))), "{bad:?}");
}

#[actix_web::test]
async fn confidential_client_with_basic_auth_completes_the_code_flow() {
    let idp = start(Some(SECRET)).await;
    let tokens = tokens(&idp, Auth::Basic(SECRET), "alice", ALL_SCOPES).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], ALL_SCOPES);
    assert!(tokens["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let id_token = id_token_of(&tokens);
    let header = jwt_header(id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], idp.shared.keys.primary().kid());

    let claims = verify(&idp, id_token).await.expect("ID token verifies");
    let alice = alice();
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["aud"], "pocketgate");
    assert_eq!(claims["sub"], alice.subject());
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["name"], alice.name);
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Andersen");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["groups"], serde_json::json!(["admins", "users"]));
    assert!(claims.get("azp").is_none(), "Pocket ID sends no azp");
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp - iat, 3600);
    assert!(claims["auth_time"].as_u64().is_some_and(|t| t <= iat));
    assert!(
        claims["sid"].as_str().is_some_and(|sid| sid.len() >= 22),
        "a per-login sid of at least 128 bits"
    );
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn confidential_client_with_post_auth_completes_the_code_flow() {
    let idp = start(Some(SECRET)).await;
    let tokens = tokens(&idp, Auth::Post(SECRET), "bob", ALL_SCOPES).await;
    let claims = verify(&idp, id_token_of(&tokens))
        .await
        .expect("ID token verifies");
    assert_eq!(claims["preferred_username"], "bob");
    assert_eq!(claims["groups"], serde_json::json!(["users"]));
    idp.stop().await;
}

#[actix_web::test]
async fn public_client_completes_the_code_flow_with_pkce_only() {
    let idp = start(None).await;
    let tokens = tokens(&idp, Auth::Public, "carol", ALL_SCOPES).await;
    let claims = verify(&idp, id_token_of(&tokens))
        .await
        .expect("ID token verifies");
    assert_eq!(claims["preferred_username"], "carol");
    assert_eq!(claims["groups"], serde_json::json!([]));

    // A public client has no secret to send.
    let pkce = pkce();
    let code = code_for(&idp, "carol", ALL_SCOPES, &pkce).await;
    let response = redeem(&idp, Auth::Post("guess"), &code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    idp.stop().await;
}

#[actix_web::test]
async fn bad_client_authentication_is_401_invalid_client() {
    let idp = start(Some(SECRET)).await;
    for auth in [Auth::Basic("wrong"), Auth::Post("wrong"), Auth::Public] {
        let pkce = pkce();
        let code = code_for(&idp, "alice", ALL_SCOPES, &pkce).await;
        let response = redeem(&idp, auth, &code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    idp.stop().await;
}

#[actix_web::test]
async fn wrong_code_verifier_is_invalid_grant() {
    let idp = start(Some(SECRET)).await;
    let pkce = pkce();
    let code = code_for(&idp, "alice", ALL_SCOPES, &pkce).await;
    let other = self::pkce();
    let response = redeem(&idp, Auth::Basic(SECRET), &code, &other.verifier).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"], "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn reused_code_is_invalid_grant_and_revokes_the_access_token() {
    let idp = start(Some(SECRET)).await;
    let pkce = pkce();
    let code = code_for(&idp, "alice", ALL_SCOPES, &pkce).await;
    let first = redeem(&idp, Auth::Basic(SECRET), &code, &pkce.verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.expect("tokens");
    let access_token = first["access_token"].as_str().expect("access_token");
    assert_eq!(
        userinfo(&idp, Some(access_token)).await.status(),
        StatusCode::OK
    );

    let again = redeem(&idp, Auth::Basic(SECRET), &code, &pkce.verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.expect("JSON error");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        userinfo(&idp, Some(access_token)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let unknown = redeem(&idp, Auth::Basic(SECRET), "no-such-code", &pkce.verifier).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    idp.stop().await;
}

#[actix_web::test]
async fn token_request_with_another_redirect_uri_is_invalid_grant() {
    let idp = DevIdp::start(DevIdpConfig {
        redirect_uris: vec![CALLBACK.to_owned(), "http://127.0.0.1:9/other".to_owned()],
        ..config(Some(SECRET), SigningAlg::Rs256)
    })
    .await
    .expect("provider starts");
    let pkce = pkce();
    let code = code_for(&idp, "alice", ALL_SCOPES, &pkce).await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &pkce.verifier),
            ("client_id", "pocketgate"),
            ("client_secret", SECRET),
        ])
        .finish();
    let response = http()
        .post(format!("{}/api/oidc/token", idp.issuer()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"], "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn malformed_token_requests_are_refused() {
    let idp = start(Some(SECRET)).await;
    let url = format!("{}/api/oidc/token", idp.issuer());
    let cases: [(&str, &str, &str); 4] = [
        ("application/json", "{}", "invalid_request"),
        (
            "application/x-www-form-urlencoded",
            "code=x",
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=password",
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=authorization_code&grant_type=authorization_code",
            "invalid_request",
        ),
    ];
    for (content_type, body, error) in cases {
        let response = http()
            .post(&url)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let json: Value = response.json().await.expect("JSON error");
        assert_eq!(json["error"], error, "{body}");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn untrusted_client_or_redirect_uri_gets_a_400_page_never_a_redirect() {
    let idp = start(Some(SECRET)).await;
    let pkce = pkce();
    let good = |name: &'static str, value: &'static str| {
        move |(n, v): (&'static str, String)| {
            if n == name {
                (n, value.to_owned())
            } else {
                (n, v)
            }
        }
    };
    let base: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "pocketgate".into()),
        ("redirect_uri", CALLBACK.into()),
        ("scope", "openid".into()),
        ("state", STATE.into()),
        ("code_challenge", pkce.challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ];
    let cases: Vec<Vec<(&'static str, String)>> = vec![
        base.clone()
            .into_iter()
            .map(good("redirect_uri", "http://evil.example.test/callback"))
            .collect(),
        base.clone()
            .into_iter()
            .map(good("redirect_uri", "http://127.0.0.1:9/callback/"))
            .collect(),
        base.clone()
            .into_iter()
            .map(good("redirect_uri", "http://127.0.0.1:9/callback?x=1"))
            .collect(),
        base.clone()
            .into_iter()
            .filter(|(n, _)| *n != "redirect_uri")
            .collect(),
        base.clone()
            .into_iter()
            .map(good("client_id", "someone-else"))
            .collect(),
        base.clone()
            .into_iter()
            .filter(|(n, _)| *n != "client_id")
            .collect(),
    ];
    for params in cases {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let url = authorize_url_with(&idp, &pairs);
        for target in [
            url.clone(),
            idp.approve_url(&url, "alice").expect("approve URL"),
        ] {
            let response = http().get(&target).send().await.expect("authorize");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{target}");
            assert!(!response.headers().contains_key(LOCATION), "{target}");
            assert!(response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html")));
        }
    }
    idp.stop().await;
}

#[actix_web::test]
async fn invalid_authorization_requests_are_sent_back_with_an_error() {
    let idp = start(Some(SECRET)).await;
    let pkce = pkce();
    let challenge = pkce.challenge.as_str();
    let with = |overrides: &[(&'static str, Option<&'static str>)]| {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", "pocketgate"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email"),
            ("state", STATE),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| n != name);
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        authorize_url_with(&idp, &params)
    };
    let cases = [
        (
            with(&[("response_type", Some("token"))]),
            "unsupported_response_type",
            true,
        ),
        (
            with(&[("scope", Some("profile email"))]),
            "invalid_scope",
            true,
        ),
        (with(&[("state", None)]), "invalid_request", false),
        (
            with(&[("code_challenge", None), ("code_challenge_method", None)]),
            "invalid_request",
            true,
        ),
        (
            with(&[("code_challenge_method", Some("S512"))]),
            "invalid_request",
            true,
        ),
        (
            with(&[("code_challenge", Some("too-short"))]),
            "invalid_request",
            true,
        ),
        (with(&[("prompt", Some("none"))]), "login_required", true),
    ];
    for (url, error, has_state) in cases {
        let response = http().get(&url).send().await.expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND, "{url}");
        let back = location(&response);
        assert!(back.as_str().starts_with(CALLBACK), "{back}");
        assert_eq!(query_param(&back, "error").as_deref(), Some(error), "{url}");
        assert!(query_param(&back, "error_description").is_some());
        assert_eq!(query_param(&back, "iss").as_deref(), Some(idp.issuer()));
        assert_eq!(query_param(&back, "state").is_some(), has_state, "{url}");
        assert!(query_param(&back, "code").is_none());
    }
    idp.stop().await;
}

#[actix_web::test]
async fn sign_in_page_lists_every_user_escaped_with_working_links() {
    let mut users = default_users();
    users.push(DevUser {
        username: "mallory".to_owned(),
        name: "<script>alert(1)</script> & Co".to_owned(),
        email: "mallory@example.test".to_owned(),
        email_verified: false,
        groups: vec!["\"quoted\"".to_owned()],
    });
    let idp = DevIdp::start(DevIdpConfig {
        users,
        ..config(Some(SECRET), SigningAlg::Rs256)
    })
    .await
    .expect("provider starts");
    let pkce = pkce();
    let response = http()
        .get(authorize_url(&idp, ALL_SCOPES, &pkce))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("page");
    assert!(page.contains("Sign in to the development identity provider"));
    for needle in [
        "Alice Andersen",
        "alice",
        "admins, users",
        "Bob Brennan",
        "Carol Castillo",
        "no groups",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
    assert!(page.contains("&quot;quoted&quot;"));

    // Follow bob's link exactly as a browser would.
    let start = page
        .find("href=\"/authorize/approve?user=bob&amp;")
        .expect("bob's link")
        + "href=\"".len();
    let end = start + page[start..].find('"').expect("end of href");
    let href = page[start..end].replace("&amp;", "&");
    let response = http()
        .get(format!("{}{href}", idp.issuer()))
        .send()
        .await
        .expect("approve");
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    let code = query_param(&back, "code").expect("code");
    let tokens = redeem(&idp, Auth::Basic(SECRET), &code, &pkce.verifier).await;
    let tokens: Value = tokens.json().await.expect("tokens");
    let claims = verify(&idp, id_token_of(&tokens))
        .await
        .expect("ID token verifies");
    assert_eq!(claims["preferred_username"], "bob");

    let unknown = http()
        .get(
            idp.approve_url(&authorize_url(&idp, ALL_SCOPES, &pkce), "nobody")
                .expect("URL"),
        )
        .send()
        .await
        .expect("approve");
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(!unknown.headers().contains_key(LOCATION));
    idp.stop().await;
}

#[actix_web::test]
async fn claims_follow_the_requested_scopes_like_pocket_id() {
    let idp = start(None).await;
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "openid",
            &["sub"],
            &["groups", "email", "preferred_username", "name"],
        ),
        (
            "openid profile email",
            &["preferred_username", "name", "email", "email_verified"],
            &["groups"],
        ),
        (
            "openid groups",
            &["groups"],
            &["email", "preferred_username"],
        ),
        (ALL_SCOPES, &["groups", "email", "preferred_username"], &[]),
    ];
    for (scope, present, absent) in cases {
        let tokens = tokens(&idp, Auth::Public, "alice", scope).await;
        assert_eq!(tokens["scope"], scope);
        let id_claims = verify(&idp, id_token_of(&tokens))
            .await
            .expect("ID token verifies");
        let info: Value = userinfo(&idp, tokens["access_token"].as_str())
            .await
            .json()
            .await
            .expect("userinfo JSON");
        for claims in [&id_claims, &info] {
            assert_eq!(claims["sub"], alice().subject());
            for claim in present {
                assert!(claims.get(claim).is_some(), "{scope}: {claim} missing");
            }
            for claim in absent {
                assert!(claims.get(claim).is_none(), "{scope}: {claim} present");
            }
        }
    }
    idp.stop().await;
}

#[actix_web::test]
async fn userinfo_needs_a_valid_bearer_access_token() {
    let idp = start(Some(SECRET)).await;
    let tokens = tokens(&idp, Auth::Basic(SECRET), "alice", ALL_SCOPES).await;
    let response = userinfo(&idp, tokens["access_token"].as_str()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("userinfo JSON");
    assert_eq!(info["sub"], alice().subject());
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["groups"], serde_json::json!(["admins", "users"]));

    let id_token = id_token_of(&tokens).to_owned();
    for bearer in [None, Some("garbage"), Some(id_token.as_str())] {
        let response = userinfo(&idp, bearer).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
    }
    idp.stop().await;
}

#[actix_web::test]
async fn unavailable_fault_answers_503_everywhere_until_cleared() {
    let idp = start(None).await;
    idp.set_fault(Some(Fault::Unavailable));
    assert_eq!(idp.fault(), Some(Fault::Unavailable));
    let issuer = idp.issuer().to_owned();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/authorize",
        "/api/oidc/userinfo",
        "/healthz",
        "/nope",
    ] {
        let response = http()
            .get(format!("{issuer}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    let token = http()
        .post(format!("{issuer}/api/oidc/token"))
        .send()
        .await
        .expect("request");
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);

    idp.set_fault(None);
    let health = http()
        .get(format!("{issuer}/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), StatusCode::OK);
    let tokens = tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await;
    assert!(verify(&idp, id_token_of(&tokens)).await.is_ok());
    idp.stop().await;
}

#[actix_web::test]
async fn id_token_faults_break_exactly_what_they_name() {
    let idp = start(None).await;
    let primary_kid = idp.shared.keys.primary().kid().to_owned();
    let now = protocol::now();

    idp.set_fault(Some(Fault::WrongSignature));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(jwt_header(&token)["kid"], primary_kid.as_str());
    assert_eq!(verify(&idp, &token).await, Err(ErrorKind::InvalidSignature));

    idp.set_fault(Some(Fault::WrongIssuer));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(
        jwt_claims(&token)["iss"],
        "http://wrong-issuer.example.test"
    );
    assert_eq!(verify(&idp, &token).await, Err(ErrorKind::InvalidIssuer));

    idp.set_fault(Some(Fault::WrongAudience));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(verify(&idp, &token).await, Err(ErrorKind::InvalidAudience));

    idp.set_fault(Some(Fault::Expired));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    let claims = jwt_claims(&token);
    assert!(claims["exp"].as_u64().is_some_and(|exp| exp + 3500 < now));
    assert!(claims["iat"].as_u64().is_some_and(|iat| iat + 3500 < now));
    assert_eq!(verify(&idp, &token).await, Err(ErrorKind::ExpiredSignature));

    idp.set_fault(Some(Fault::NonceMismatch));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    let claims = verify(&idp, &token)
        .await
        .expect("signature and issuer are fine");
    assert!(claims["nonce"].as_str().is_some_and(|nonce| nonce != NONCE));

    idp.set_fault(Some(Fault::AlgNone));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(
        jwt_header(&token),
        serde_json::json!({"alg": "none", "typ": "JWT"})
    );
    assert!(token.ends_with('.'));
    assert_eq!(jwt_claims(&token)["nonce"], NONCE);
    assert!(verify(&idp, &token).await.is_err());

    idp.set_fault(Some(Fault::Hs256WithPublicKey));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(jwt_header(&token)["alg"], "HS256");
    assert_eq!(jwt_header(&token)["kid"], primary_kid.as_str());
    assert!(idp
        .public_key_pem()
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let mut hs256 = Validation::new(Algorithm::HS256);
    hs256.set_audience(&["pocketgate"]);
    let forged = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(idp.public_key_pem().as_bytes()),
        &hs256,
    );
    assert!(forged.is_ok(), "the HMAC key is the public PEM: {forged:?}");
    assert_eq!(verify(&idp, &token).await, Err(ErrorKind::InvalidAlgorithm));

    idp.set_fault(Some(Fault::GroupsOnlyInUserinfo));
    let issued = tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await;
    let claims = verify(&idp, id_token_of(&issued))
        .await
        .expect("valid ID token");
    for claim in ["groups", "email", "email_verified"] {
        assert!(claims.get(claim).is_none(), "{claim}");
    }
    assert_eq!(claims["preferred_username"], "alice");
    let info: Value = userinfo(&idp, issued["access_token"].as_str())
        .await
        .json()
        .await
        .expect("userinfo");
    assert_eq!(info["groups"], serde_json::json!(["admins", "users"]));
    assert_eq!(info["email"], "alice@example.test");

    idp.set_fault(None);
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    let claims = verify(&idp, &token).await.expect("back to normal");
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["groups"], serde_json::json!(["admins", "users"]));
    idp.stop().await;
}

#[actix_web::test]
async fn unknown_kid_key_is_published_only_after_the_token_exists() {
    let idp = start(None).await;
    let jwks_url = format!("{}/.well-known/jwks.json", idp.issuer());
    let cached: JwkSet = serde_json::from_value(get_json(&jwks_url).await).expect("JWKS");
    assert_eq!(cached.keys.len(), 1);

    idp.set_fault(Some(Fault::UnknownKid));
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    let kid = jwt_header(&token)["kid"].as_str().expect("kid").to_owned();
    assert!(
        cached.find(&kid).is_none(),
        "the old JWKS cannot know the new key"
    );

    let refetched: JwkSet = serde_json::from_value(get_json(&jwks_url).await).expect("JWKS");
    assert_eq!(refetched.keys.len(), 2);
    assert!(refetched.find(&kid).is_some());
    assert!(
        verify(&idp, &token).await.is_ok(),
        "verifies after a refetch"
    );

    // Clearing the fault signs with the original key again; the rotated key stays published.
    idp.set_fault(None);
    let token = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    assert_eq!(jwt_header(&token)["kid"], idp.shared.keys.primary().kid());
    assert!(verify(&idp, &token).await.is_ok());
    idp.stop().await;
}

#[actix_web::test]
async fn deny_authorize_sends_access_denied_back_like_a_group_restricted_client() {
    let idp = start(None).await;
    idp.set_fault(Some(Fault::DenyAuthorize));
    let pkce = pkce();
    let url = authorize_url(&idp, ALL_SCOPES, &pkce);
    for target in [
        url.clone(),
        idp.approve_url(&url, "alice").expect("approve URL"),
    ] {
        let response = http().get(&target).send().await.expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND);
        let back = location(&response);
        assert!(back.as_str().starts_with(CALLBACK));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("access_denied")
        );
        assert_eq!(
            query_param(&back, "error_description").as_deref(),
            Some("User is not in an allowed group")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some(STATE));
        assert_eq!(query_param(&back, "iss").as_deref(), Some(idp.issuer()));
        assert!(query_param(&back, "code").is_none());
    }
    idp.set_fault(None);
    code_for(&idp, "alice", ALL_SCOPES, &pkce).await;
    idp.stop().await;
}

#[actix_web::test]
async fn end_session_redirects_only_to_registered_uris_with_a_genuine_hint() {
    let idp = start(None).await;
    let genuine = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    idp.set_fault(Some(Fault::Expired));
    let expired = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    idp.set_fault(Some(Fault::WrongSignature));
    let forged = id_token_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await).to_owned();
    idp.set_fault(None);

    let end_session = |params: &[(&str, &str)]| {
        let mut url =
            url::Url::parse(&format!("{}/api/oidc/end-session", idp.issuer())).expect("URL");
        url.query_pairs_mut().extend_pairs(params);
        String::from(url)
    };
    let redirected = [
        end_session(&[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "s1"),
        ]),
        end_session(&[
            ("id_token_hint", &expired),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "s1"),
        ]),
    ];
    for url in redirected {
        let response = http().get(&url).send().await.expect("end-session");
        assert_eq!(response.status(), StatusCode::FOUND);
        let back = location(&response);
        assert!(back.as_str().starts_with(LOGGED_OUT));
        assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    }
    let no_state = http()
        .get(end_session(&[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ]))
        .send()
        .await
        .expect("end-session");
    assert_eq!(location(&no_state).as_str(), LOGGED_OUT);

    let stays = [
        end_session(&[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", "http://evil.example.test/"),
        ]),
        end_session(&[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", CALLBACK),
        ]),
        end_session(&[("post_logout_redirect_uri", LOGGED_OUT)]),
        end_session(&[
            ("id_token_hint", &forged),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ]),
        end_session(&[
            ("id_token_hint", "not-a-jwt"),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ]),
        end_session(&[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("client_id", "other"),
        ]),
        end_session(&[]),
    ];
    for url in stays {
        let response = http().get(&url).send().await.expect("end-session");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(!response.headers().contains_key(LOCATION));
        let page = response.text().await.expect("page");
        assert!(page.contains("You are signed out"));
    }
    idp.stop().await;
}

#[actix_web::test]
async fn es256_provider_signs_with_a_p256_key() {
    let idp = DevIdp::start(config(Some(SECRET), SigningAlg::Es256))
        .await
        .expect("provider starts");
    let d = get_json(&format!(
        "{}/.well-known/openid-configuration",
        idp.issuer()
    ))
    .await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    let jwks = get_json(&format!("{}/.well-known/jwks.json", idp.issuer())).await;
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("x").is_some() && key.get("y").is_some() && key.get("d").is_none());

    let issued = tokens(&idp, Auth::Basic(SECRET), "alice", ALL_SCOPES).await;
    assert_eq!(jwt_header(id_token_of(&issued))["alg"], "ES256");
    assert!(verify(&idp, id_token_of(&issued)).await.is_ok());
    assert_eq!(
        userinfo(&idp, issued["access_token"].as_str())
            .await
            .status(),
        StatusCode::OK
    );

    idp.set_fault(Some(Fault::WrongSignature));
    let forged = tokens(&idp, Auth::Basic(SECRET), "alice", ALL_SCOPES).await;
    assert_eq!(
        verify(&idp, id_token_of(&forged)).await,
        Err(ErrorKind::InvalidSignature)
    );
    idp.stop().await;
}

#[actix_web::test]
async fn only_loopback_addresses_are_accepted() {
    for bind in ["0.0.0.0:0", "192.0.2.1:0", "[::]:0", "10.0.0.1:4000"] {
        let bind: SocketAddr = bind.parse().expect("address");
        let result = DevIdp::start(DevIdpConfig {
            bind,
            ..config(None, SigningAlg::Rs256)
        })
        .await;
        assert!(
            matches!(result, Err(DevIdpError::NotLoopback(addr)) if addr == bind),
            "{bind}"
        );
    }
}

#[actix_web::test]
async fn unusable_configurations_are_refused_with_the_reason() {
    let cases = [
        DevIdpConfig {
            redirect_uris: vec![],
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            redirect_uris: vec!["/relative".to_owned()],
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            client_secret: Some(String::new()),
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            users: vec![alice(), alice()],
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            users: vec![],
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            backchannel_logout_uri: Some("http://127.0.0.1:9/logout#fragment".to_owned()),
            ..config(None, SigningAlg::Rs256)
        },
        DevIdpConfig {
            backchannel_logout_uri: Some("/relative".to_owned()),
            ..config(None, SigningAlg::Rs256)
        },
    ];
    for config in cases {
        let result = DevIdp::start(config).await;
        assert!(matches!(result, Err(DevIdpError::Config(_))), "{result:?}");
    }
}

#[test]
fn provider_handle_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DevIdp>();
}

/// Plain tokio (no actix system), as pocketgate's own integration tests may run.
#[tokio::test]
async fn healthz_unknown_paths_and_stop() {
    let idp = start(None).await;
    let issuer = idp.issuer().to_owned();
    let health = http()
        .get(format!("{issuer}/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), StatusCode::OK);
    let missing = http()
        .get(format!("{issuer}/api/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    idp.stop().await;
    assert!(http()
        .get(format!("{issuer}/healthz"))
        .send()
        .await
        .is_err());
}

const OFFLINE_SCOPES: &str = "openid profile email groups offline_access";

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

/// The status and OAuth `error` of a refused token request.
async fn token_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON error");
    let error = body["error"].as_str().unwrap_or_default().to_owned();
    (status, error)
}

fn invalid_grant() -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
}

/// A successful refresh; returns the token response.
async fn refreshed(idp: &DevIdp, auth: Auth<'_>, refresh_token: &str) -> Value {
    let response = refresh(idp, auth, refresh_token, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.json().await.expect("token JSON")
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_its_whole_login() {
    let idp = start(Some(SECRET)).await;
    let first = tokens(&idp, Auth::Basic(SECRET), "alice", OFFLINE_SCOPES).await;
    assert_eq!(first["scope"], OFFLINE_SCOPES);
    let r1 = refresh_token_of(&first);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&r1).expect("base64url").len(),
        32,
        "256 random bits"
    );
    let before = verify(&idp, id_token_of(&first)).await.expect("ID token");
    // Another login of the same user: a family of its own.
    let other = tokens(&idp, Auth::Basic(SECRET), "alice", OFFLINE_SCOPES).await;
    // Let the clock tick, so a fresh `iat` shows.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = refreshed(&idp, Auth::Basic(SECRET), &r1).await;
    let r2 = refresh_token_of(&second);
    assert_ne!(r1, r2, "rotated");
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(second["scope"], OFFLINE_SCOPES);
    assert_ne!(second["access_token"], first["access_token"]);
    let after = verify(&idp, id_token_of(&second))
        .await
        .expect("the refreshed ID token verifies");
    assert_eq!(after["sub"], alice().subject());
    assert_eq!(after["sid"], before["sid"], "same login, same sid");
    assert_eq!(after["auth_time"], before["auth_time"]);
    assert!(after.get("nonce").is_none(), "no nonce at refresh");
    let (iat, exp) = (
        after["iat"].as_u64().expect("iat"),
        after["exp"].as_u64().expect("exp"),
    );
    assert!(before["iat"].as_u64().is_some_and(|old| iat > old));
    assert_eq!(exp - iat, 3600);
    assert_eq!(after["groups"], serde_json::json!(["admins", "users"]));
    assert_eq!(after["email"], "alice@example.test");
    assert_eq!(after["preferred_username"], "alice");
    // The rotation revoked the access token issued before it.
    let old_access = first["access_token"].as_str();
    let new_access = second["access_token"].as_str();
    assert_eq!(
        userinfo(&idp, old_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(userinfo(&idp, new_access).await.status(), StatusCode::OK);

    // The rotated token is refused, and its reuse revokes everything issued since.
    let reuse = refresh(&idp, Auth::Basic(SECRET), &r1, &[]).await;
    assert_eq!(token_error(reuse).await, invalid_grant());
    let successor = refresh(&idp, Auth::Basic(SECRET), &r2, &[]).await;
    assert_eq!(token_error(successor).await, invalid_grant());
    assert_eq!(
        userinfo(&idp, new_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The other login is untouched.
    let other = refreshed(&idp, Auth::Basic(SECRET), &refresh_token_of(&other)).await;
    assert!(verify(&idp, id_token_of(&other)).await.is_ok());

    let unknown = refresh(&idp, Auth::Basic(SECRET), "no-such-token", &[]).await;
    assert_eq!(token_error(unknown).await, invalid_grant());
    let missing = token_request(
        &idp,
        Auth::Basic(SECRET),
        vec![("grant_type", "refresh_token")],
    )
    .await;
    assert_eq!(
        token_error(missing).await,
        (StatusCode::BAD_REQUEST, "invalid_request".to_owned())
    );
    idp.stop().await;
}

#[actix_web::test]
async fn refresh_authenticates_the_client_like_the_code_grant() {
    let idp = start(Some(SECRET)).await;
    let issued = tokens(&idp, Auth::Post(SECRET), "bob", OFFLINE_SCOPES).await;
    let mut token = refresh_token_of(&issued);
    for auth in [Auth::Basic("wrong"), Auth::Post("wrong"), Auth::Public] {
        let response = refresh(&idp, auth, &token, &[]).await;
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(
            token_error(response).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
        );
    }
    // Refused client authentication consumed nothing.
    for auth in [Auth::Basic(SECRET), Auth::Post(SECRET)] {
        token = refresh_token_of(&refreshed(&idp, auth, &token).await);
    }
    idp.stop().await;

    let idp = start(None).await;
    let issued = tokens(&idp, Auth::Public, "carol", OFFLINE_SCOPES).await;
    let token = refresh_token_of(&issued);
    let response = refresh(&idp, Auth::Post("guess"), &token, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let refreshed = refreshed(&idp, Auth::Public, &token).await;
    assert!(verify(&idp, id_token_of(&refreshed)).await.is_ok());
    idp.stop().await;
}

#[actix_web::test]
async fn refresh_may_narrow_the_scopes_but_never_widen_them() {
    let idp = start(None).await;
    let issued = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let narrowed = refresh(
        &idp,
        Auth::Public,
        &refresh_token_of(&issued),
        &[("scope", "openid email")],
    )
    .await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    let narrowed: Value = narrowed.json().await.expect("token JSON");
    assert_eq!(narrowed["scope"], "openid email");
    let claims = verify(&idp, id_token_of(&narrowed))
        .await
        .expect("ID token");
    assert_eq!(claims["email"], "alice@example.test");
    assert!(claims.get("groups").is_none());
    // The rotated refresh token keeps the original grant.
    let full = refreshed(&idp, Auth::Public, &refresh_token_of(&narrowed)).await;
    assert_eq!(full["scope"], OFFLINE_SCOPES);

    let small = tokens(&idp, Auth::Public, "alice", "openid offline_access").await;
    let token = refresh_token_of(&small);
    let widened = refresh(&idp, Auth::Public, &token, &[("scope", "openid groups")]).await;
    assert_eq!(
        token_error(widened).await,
        (StatusCode::BAD_REQUEST, "invalid_scope".to_owned())
    );
    refreshed(&idp, Auth::Public, &token).await;
    idp.stop().await;
}

#[actix_web::test]
async fn user_changes_show_in_refreshed_id_tokens_and_userinfo() {
    let idp = start(None).await;
    let issued = tokens(&idp, Auth::Public, "bob", OFFLINE_SCOPES).await;
    idp.set_groups("bob", ["users", "admins"])
        .expect("bob exists");
    idp.set_email("bob", "robert@example.test", false)
        .expect("bob exists");
    idp.set_name("bob", "Robert Brennan-Smith")
        .expect("bob exists");

    let info: Value = userinfo(&idp, issued["access_token"].as_str())
        .await
        .json()
        .await
        .expect("userinfo");
    let refreshed = refreshed(&idp, Auth::Public, &refresh_token_of(&issued)).await;
    let claims = verify(&idp, id_token_of(&refreshed))
        .await
        .expect("ID token");
    for claims in [&info, &claims] {
        assert_eq!(claims["groups"], serde_json::json!(["users", "admins"]));
        assert_eq!(claims["email"], "robert@example.test");
        assert_eq!(claims["email_verified"], false);
        assert_eq!(claims["name"], "Robert Brennan-Smith");
        assert_eq!(claims["given_name"], "Robert");
        assert_eq!(claims["family_name"], "Brennan-Smith");
        assert_eq!(claims["sub"], default_users()[1].subject());
    }
    idp.set_groups("bob", Vec::<String>::new())
        .expect("bob exists");
    let emptied = refreshed_groups(&idp, &refresh_token_of(&refreshed)).await;
    assert_eq!(emptied, serde_json::json!([]));

    let nobody = || Err(UnknownUser("nobody".to_owned()));
    assert_eq!(idp.set_groups("nobody", ["admins"]), nobody());
    assert_eq!(idp.set_email("nobody", "n@example.test", true), nobody());
    assert_eq!(idp.set_name("nobody", "No Body"), nobody());
    assert_eq!(idp.disable_user("nobody"), nobody());
    assert_eq!(idp.enable_user("nobody"), nobody());
    assert_eq!(
        idp.revoke_refresh_tokens("nobody"),
        Err(UnknownUser("nobody".to_owned()))
    );
    idp.stop().await;
}

/// The `groups` of the ID token a refresh returns.
async fn refreshed_groups(idp: &DevIdp, refresh_token: &str) -> Value {
    let tokens = refreshed(idp, Auth::Public, refresh_token).await;
    let claims = verify(idp, id_token_of(&tokens)).await.expect("ID token");
    claims["groups"].clone()
}

#[actix_web::test]
async fn a_disabled_user_can_neither_sign_in_nor_refresh() {
    let idp = start(None).await;
    let issued = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let token = refresh_token_of(&issued);
    let pkce = pkce();
    let pending = code_for(&idp, "alice", OFFLINE_SCOPES, &pkce).await;

    idp.disable_user("alice").expect("alice exists");
    let refused = refresh(&idp, Auth::Public, &token, &[]).await;
    assert_eq!(token_error(refused).await, invalid_grant());
    let refused = redeem(&idp, Auth::Public, &pending, &pkce.verifier).await;
    assert_eq!(token_error(refused).await, invalid_grant());
    assert_eq!(
        userinfo(&idp, issued["access_token"].as_str())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let url = authorize_url(&idp, OFFLINE_SCOPES, &self::pkce());
    let approve = idp.approve_url(&url, "alice").expect("approve URL");
    let response = http().get(approve).send().await.expect("approve");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.headers().contains_key(LOCATION));
    let picker = http()
        .get(&url)
        .send()
        .await
        .expect("picker")
        .text()
        .await
        .expect("page");
    assert!(picker.contains("groups: admins, users · disabled"));
    assert!(picker.contains("groups: users</span>"), "bob is not");
    // Other users are not affected.
    tokens(&idp, Auth::Public, "bob", OFFLINE_SCOPES).await;

    // Nothing was deleted: enabling makes the refresh token work again.
    idp.enable_user("alice").expect("alice exists");
    refreshed(&idp, Auth::Public, &token).await;
    idp.stop().await;
}

#[actix_web::test]
async fn revoked_refresh_tokens_are_invalid_grant() {
    let idp = start(None).await;
    let first = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let second = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let bob = tokens(&idp, Auth::Public, "bob", OFFLINE_SCOPES).await;

    assert_eq!(idp.revoke_refresh_tokens("alice"), Ok(2));
    for issued in [&first, &second] {
        let refused = refresh(&idp, Auth::Public, &refresh_token_of(issued), &[]).await;
        assert_eq!(token_error(refused).await, invalid_grant());
    }
    refreshed(&idp, Auth::Public, &refresh_token_of(&bob)).await;
    // Access tokens live until they expire.
    assert_eq!(
        userinfo(&idp, first["access_token"].as_str())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(idp.revoke_refresh_tokens("alice"), Ok(0));
    // A new sign-in gets a working refresh token.
    let again = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    refreshed(&idp, Auth::Public, &refresh_token_of(&again)).await;
    idp.stop().await;
}

#[actix_web::test]
async fn token_faults_take_down_only_the_token_endpoint_and_consume_nothing() {
    let idp = start(None).await;
    let issued = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let token = refresh_token_of(&issued);
    let access = issued["access_token"].as_str();
    let pkce = pkce();
    let code = code_for(&idp, "alice", OFFLINE_SCOPES, &pkce).await;
    let issuer = idp.issuer().to_owned();
    let others_answer = || async {
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/jwks.json",
            "/healthz",
        ] {
            let response = http()
                .get(format!("{issuer}{path}"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        assert_eq!(userinfo(&idp, access).await.status(), StatusCode::OK);
    };

    for fault in [Fault::Unavailable, Fault::TokenUnavailable] {
        idp.set_fault(Some(fault));
        for response in [
            refresh(&idp, Auth::Public, &token, &[]).await,
            redeem(&idp, Auth::Public, &code, &pkce.verifier).await,
        ] {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(
                token_error(response).await,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable".to_owned()
                ),
                "{fault:?}"
            );
        }
    }
    // Only the token endpoint is down.
    others_answer().await;
    code_for(&idp, "bob", ALL_SCOPES, &self::pkce()).await;

    idp.set_fault(Some(Fault::TokenHangs));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("HTTP client");
    let started = std::time::Instant::now();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
            ("client_id", "pocketgate"),
        ])
        .finish();
    let held = impatient
        .post(format!("{issuer}/api/oidc/token"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    assert!(
        held.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{held:?}"
    );
    assert!(started.elapsed() < TOKEN_HANG);
    // The rest answers while a token request is held.
    others_answer().await;

    idp.set_fault(None);
    // Neither the code nor the refresh token was consumed by the refused requests.
    let redeemed = redeem(&idp, Auth::Public, &code, &pkce.verifier).await;
    assert_eq!(redeemed.status(), StatusCode::OK);
    refreshed(&idp, Auth::Public, &token).await;
    idp.stop().await;
}

const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A relying party's back-channel logout endpoint: records every POST, answers `status`.
struct Receiver {
    uri: String,
    state: web::Data<Received>,
    handle: actix_web::dev::ServerHandle,
}

struct Received {
    status: actix_web::http::StatusCode,
    /// Content type and body of each POST.
    posts: Mutex<Vec<(String, String)>>,
}

impl Receiver {
    fn posts(&self) -> Vec<(String, String)> {
        self.state.posts.lock().expect("lock").clone()
    }

    /// The `logout_token` of the last POST, checking the form it came in.
    fn last_token(&self) -> String {
        let (content_type, body) = self.posts().pop().expect("a POST");
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(form.len(), 1, "{body}");
        let (name, token) = form.into_iter().next().expect("one parameter");
        assert_eq!(name, "logout_token");
        token
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn record(
    req: actix_web::HttpRequest,
    body: web::Bytes,
    state: web::Data<Received>,
) -> actix_web::HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = String::from_utf8_lossy(&body).into_owned();
    state.posts.lock().expect("lock").push((content_type, body));
    actix_web::HttpResponse::build(state.status).finish()
}

async fn receiver(status: u16) -> Receiver {
    let state = web::Data::new(Received {
        status: actix_web::http::StatusCode::from_u16(status).expect("status"),
        posts: Mutex::new(Vec::new()),
    });
    let data = state.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/backchannel-logout", web::post().to(record))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        uri: format!("http://{addr}/backchannel-logout"),
        state,
        handle,
    }
}

async fn start_with_backchannel(uri: &str) -> DevIdp {
    DevIdp::start(DevIdpConfig {
        backchannel_logout_uri: Some(uri.to_owned()),
        ..config(None, SigningAlg::Rs256)
    })
    .await
    .expect("provider starts")
}

fn sid_of(tokens: &Value) -> String {
    jwt_claims(id_token_of(tokens))["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

/// Every check a relying party makes on a logout token (Back-Channel Logout 1.0 section 2.6),
/// each failing one named: "signature" (algorithm, key or signature, against the JWKS), "iss",
/// "aud", "expired", "events", "nonce", "jti", "sub or sid".
async fn logout_problems(idp: &DevIdp, token: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    let signature = verify_with(idp, token, |v| {
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
    })
    .await;
    if signature.is_err() {
        problems.push("signature");
    }
    let claims = jwt_claims(token);
    if claims["iss"] != idp.issuer() {
        problems.push("iss");
    }
    if claims["aud"] != "pocketgate" {
        problems.push("aud");
    }
    let now = protocol::now();
    let fresh = claims["iat"].as_u64().is_some_and(|iat| iat <= now + 60)
        && claims["exp"].as_u64().is_some_and(|exp| exp > now);
    if !fresh {
        problems.push("expired");
    }
    if !claims["events"][BACKCHANNEL_LOGOUT_EVENT].is_object() {
        problems.push("events");
    }
    if claims.get("nonce").is_some() {
        problems.push("nonce");
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        problems.push("jti");
    }
    if claims.get("sub").is_none() && claims.get("sid").is_none() {
        problems.push("sub or sid");
    }
    problems
}

#[actix_web::test]
async fn backchannel_logout_posts_a_valid_logout_token_per_session() {
    let rp = receiver(200).await;
    let idp = start_with_backchannel(&rp.uri).await;
    let first = tokens(&idp, Auth::Public, "alice", OFFLINE_SCOPES).await;
    let second = tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await;
    tokens(&idp, Auth::Public, "bob", ALL_SCOPES).await;
    let (sid1, sid2) = (sid_of(&first), sid_of(&second));
    assert_ne!(sid1, sid2, "a sid per login");
    assert_eq!(idp.sessions("alice"), [sid1.clone(), sid2.clone()]);

    let statuses = idp
        .backchannel_logout(LogoutTarget::Session(&sid2))
        .await
        .expect("delivered");
    assert_eq!(statuses, [200]);
    assert_eq!(rp.posts().len(), 1);
    let token = rp.last_token();
    assert_eq!(logout_problems(&idp, &token).await, Vec::<&str>::new());
    let header = jwt_header(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], idp.shared.keys.primary().kid());
    assert_eq!(header["typ"], "logout+jwt");
    let claims = verify(&idp, &token).await.expect("verifies with the JWKS");
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["aud"], "pocketgate");
    assert_eq!(claims["sub"], alice().subject());
    assert_eq!(claims["sid"], sid2.as_str());
    assert_eq!(
        claims["events"],
        serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} })
    );
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 22));
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp - iat, 120);
    assert!(iat.abs_diff(protocol::now()) <= 5);
    assert_eq!(idp.sessions("alice"), std::slice::from_ref(&sid1));

    // By username: every remaining session of the user.
    let statuses = idp
        .backchannel_logout(LogoutTarget::User("alice"))
        .await
        .expect("delivered");
    assert_eq!(statuses, [200]);
    let token = rp.last_token();
    assert_eq!(logout_problems(&idp, &token).await, Vec::<&str>::new());
    assert_eq!(jwt_claims(&token)["sid"], sid1.as_str());
    assert_ne!(jwt_claims(&token)["jti"], claims["jti"], "a fresh jti each");
    assert!(idp.sessions("alice").is_empty());
    assert_eq!(idp.sessions("bob").len(), 1, "bob is still signed in");
    // Refresh tokens are left alone: the relying party must act on the logout token.
    refreshed(&idp, Auth::Public, &refresh_token_of(&first)).await;

    assert!(matches!(
        idp.backchannel_logout(LogoutTarget::User("alice")).await,
        Err(BackchannelLogoutError::NoSession(user)) if user == "alice"
    ));
    assert!(matches!(
        idp.backchannel_logout(LogoutTarget::Session(&sid2)).await,
        Err(BackchannelLogoutError::UnknownSession(sid)) if sid == sid2
    ));
    assert_eq!(rp.posts().len(), 2, "nothing sent for the refusals");
    idp.stop().await;
    rp.stop().await;
}

#[actix_web::test]
async fn backchannel_logout_reports_what_the_relying_party_answered() {
    let rp = receiver(400).await;
    let idp = start_with_backchannel(&rp.uri).await;
    tokens(&idp, Auth::Public, "bob", ALL_SCOPES).await;
    let statuses = idp
        .backchannel_logout(LogoutTarget::User("bob"))
        .await
        .expect("delivered");
    assert_eq!(statuses, [400]);
    assert!(idp.sessions("bob").is_empty(), "the session ends anyway");
    assert_eq!(idp.send_logout_token("not-a-jwt").await.ok(), Some(400));
    assert_eq!(rp.last_token(), "not-a-jwt");
    idp.stop().await;
    rp.stop().await;

    let unconfigured = start(None).await;
    tokens(&unconfigured, Auth::Public, "alice", ALL_SCOPES).await;
    assert!(matches!(
        unconfigured
            .backchannel_logout(LogoutTarget::User("alice"))
            .await,
        Err(BackchannelLogoutError::NotConfigured)
    ));
    assert!(matches!(
        unconfigured.send_logout_token("x").await,
        Err(BackchannelLogoutError::NotConfigured)
    ));
    unconfigured.stop().await;

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "http://{}/backchannel-logout",
            listener.local_addr().expect("address")
        )
    };
    let idp = start_with_backchannel(&closed).await;
    tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await;
    let result = idp.backchannel_logout(LogoutTarget::User("alice")).await;
    assert!(
        matches!(&result, Err(BackchannelLogoutError::Delivery { uri, .. }) if *uri == closed),
        "{result:?}"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn logout_token_flaws_break_exactly_what_they_name() {
    let idp = start(None).await;
    let sid = sid_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await);
    let valid = LogoutTokenOptions::new("alice", &sid);
    let build = |options: LogoutTokenOptions| {
        let idp = &idp;
        async move { idp.logout_token(&options).await.expect("built") }
    };
    let with_flaw = |flaw| LogoutTokenOptions {
        flaw: Some(flaw),
        ..valid.clone()
    };

    let token = build(valid.clone()).await;
    assert_eq!(logout_problems(&idp, &token).await, Vec::<&str>::new());
    let claims = verify(&idp, &token).await.expect("verifies with the JWKS");
    assert_eq!(claims["sub"], alice().subject());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(jwt_header(&token)["typ"], "logout+jwt");

    let cases = [
        (LogoutTokenFlaw::WrongSignature, "signature"),
        (LogoutTokenFlaw::AlgNone, "signature"),
        (LogoutTokenFlaw::Hs256WithPublicKey, "signature"),
        (LogoutTokenFlaw::MissingEvents, "events"),
        (LogoutTokenFlaw::WithNonce, "nonce"),
        (LogoutTokenFlaw::Expired, "expired"),
        (LogoutTokenFlaw::WrongIssuer, "iss"),
        (LogoutTokenFlaw::WrongAudience, "aud"),
    ];
    for (flaw, problem) in cases {
        let token = build(with_flaw(flaw)).await;
        assert_eq!(logout_problems(&idp, &token).await, [problem], "{flaw:?}");
        // Everything but the flaw is as in a valid token.
        let claims = jwt_claims(&token);
        assert_eq!(claims["sub"], alice().subject(), "{flaw:?}");
        assert_eq!(claims["sid"], sid.as_str(), "{flaw:?}");
    }

    // The forgeries are the classic ones.
    let primary_kid = idp.shared.keys.primary().kid().to_owned();
    let forged = build(with_flaw(LogoutTokenFlaw::WrongSignature)).await;
    assert_eq!(jwt_header(&forged)["kid"], primary_kid.as_str());
    assert_eq!(jwt_header(&forged)["alg"], "RS256");
    assert_eq!(
        verify(&idp, &forged).await,
        Err(ErrorKind::InvalidSignature)
    );
    let unsigned = build(with_flaw(LogoutTokenFlaw::AlgNone)).await;
    assert_eq!(
        jwt_header(&unsigned),
        serde_json::json!({"alg": "none", "typ": "logout+jwt"})
    );
    assert!(unsigned.ends_with('.'));
    let confused = build(with_flaw(LogoutTokenFlaw::Hs256WithPublicKey)).await;
    assert_eq!(jwt_header(&confused)["alg"], "HS256");
    assert_eq!(jwt_header(&confused)["kid"], primary_kid.as_str());
    let mut hs256 = Validation::new(Algorithm::HS256);
    hs256.set_audience(&["pocketgate"]);
    let hmac = jsonwebtoken::decode::<Value>(
        &confused,
        &DecodingKey::from_secret(idp.public_key_pem().as_bytes()),
        &hs256,
    );
    assert!(hmac.is_ok(), "the HMAC key is the public PEM: {hmac:?}");
    assert_eq!(
        verify(&idp, &confused).await,
        Err(ErrorKind::InvalidAlgorithm)
    );
    let expired = jwt_claims(&build(with_flaw(LogoutTokenFlaw::Expired)).await);
    let now = protocol::now();
    assert!(expired["exp"].as_u64().is_some_and(|exp| exp + 400 < now));
    let wrong = jwt_claims(&build(with_flaw(LogoutTokenFlaw::WrongIssuer)).await);
    assert_eq!(wrong["iss"], "http://wrong-issuer.example.test");
    let wrong = jwt_claims(&build(with_flaw(LogoutTokenFlaw::WrongAudience)).await);
    assert_eq!(wrong["aud"], "some-other-client");

    // A chosen jti, for replay tests; otherwise a fresh one each time.
    let replayed = LogoutTokenOptions {
        jti: Some("jti-to-replay".to_owned()),
        ..valid.clone()
    };
    for _ in 0..2 {
        let token = build(replayed.clone()).await;
        assert_eq!(jwt_claims(&token)["jti"], "jti-to-replay");
        assert_eq!(logout_problems(&idp, &token).await, Vec::<&str>::new());
    }
    let (a, b) = (build(valid.clone()).await, build(valid.clone()).await);
    assert_ne!(jwt_claims(&a)["jti"], jwt_claims(&b)["jti"]);

    // `sub` or `sid` alone is valid; neither is not.
    let sub_only = build(LogoutTokenOptions {
        sid: None,
        ..valid.clone()
    })
    .await;
    assert!(jwt_claims(&sub_only).get("sid").is_none());
    assert_eq!(logout_problems(&idp, &sub_only).await, Vec::<&str>::new());
    let sid_only = build(LogoutTokenOptions {
        username: None,
        ..valid.clone()
    })
    .await;
    assert!(jwt_claims(&sid_only).get("sub").is_none());
    assert_eq!(logout_problems(&idp, &sid_only).await, Vec::<&str>::new());
    let neither = build(LogoutTokenOptions::default()).await;
    assert_eq!(logout_problems(&idp, &neither).await, ["sub or sid"]);
    idp.stop().await;
}

#[actix_web::test]
async fn es256_logout_tokens_are_signed_with_the_p256_key() {
    let idp = DevIdp::start(config(None, SigningAlg::Es256))
        .await
        .expect("provider starts");
    let sid = sid_of(&tokens(&idp, Auth::Public, "alice", ALL_SCOPES).await);
    let token = idp
        .logout_token(&LogoutTokenOptions::new("alice", &sid))
        .await
        .expect("built");
    assert_eq!(jwt_header(&token)["alg"], "ES256");
    assert_eq!(logout_problems(&idp, &token).await, Vec::<&str>::new());
    let forged = idp
        .logout_token(&LogoutTokenOptions {
            flaw: Some(LogoutTokenFlaw::WrongSignature),
            ..LogoutTokenOptions::new("alice", &sid)
        })
        .await
        .expect("built");
    assert_eq!(logout_problems(&idp, &forged).await, ["signature"]);
    idp.stop().await;
}
