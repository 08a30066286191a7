//! The signed identity assertion: every allow with identity carries a JWT
//! that verifies against `/.well-known/jwks.json` with the request's origin
//! as audience; a bypass, a trusted network or a deny carries none; the cache
//! reuses an assertion for half its lifetime and never across identities; a
//! replaced key stays published until its assertions expired.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use pocketgate::domain::SigningKey;
use pocketgate::reload::Reloader;
use serde_json::Value;

use crate::common::*;

const HEADER: &str = "x-pocketgate-assertion";

fn with_assertion(extra: &str) -> Options {
    Options {
        policies: Some(format!(
            "{POLICIES}\n[assertion]\nheader = \"X-Pocketgate-Assertion\"\n{extra}\n"
        )),
        discover: false,
        ..Options::default()
    }
}

async fn jwks(app: &TestApp) -> JwkSet {
    let r = client()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    r.json().await.unwrap()
}

fn assertion_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(HEADER)
        .map(|v| v.to_str().unwrap().to_string())
}

/// Verify `token` against `set` as a backend at `audience` would.
fn verify(app: &TestApp, set: &JwkSet, token: &str, audience: &str) -> Value {
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("a kid");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[audience]);
    v.set_issuer(&[app.public_url.as_str()]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims
}

async fn allowed(app: &TestApp, how: Ask, cookie: &str) -> reqwest::Response {
    let r = ask(app, how, "app.example.test", "/x", &[("Cookie", cookie)]).await;
    assert_eq!(r.status(), 200);
    r
}

#[actix_web::test]
async fn an_allow_carries_an_assertion_that_verifies_with_the_jwks() {
    let app = spawn(with_assertion("lifetime = \"90s\"")).await;
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 1);
    let cookie = app.cookie("bob", &["users", "ops"]);
    for how in BOTH {
        let r = allowed(&app, how, &cookie).await;
        let token = assertion_of(&r).expect("an assertion on allow");
        let claims = verify(&app, &set, &token, "https://app.example.test");
        assert_eq!(claims["sub"], "sub-bob");
        assert_eq!(claims["preferred_username"], "bob");
        assert_eq!(claims["email"], "bob@example.test");
        assert_eq!(claims["name"], "bob Example");
        assert_eq!(claims["groups"], serde_json::json!(["users", "ops"]));
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 90);
        assert!(iat.abs_diff(now()) <= 2);
        // Another backend's audience refuses it.
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["https://grafana.example.test"]);
        let jwk = set.keys.first().unwrap();
        assert!(decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &v).is_err());
    }
}

#[actix_web::test]
async fn an_unverified_email_stays_out_of_the_assertion() {
    let app = spawn(with_assertion("")).await;
    let mut who = identity("eve", &["users"]);
    who.email_verified = false;
    let cookie = app.cookie_with(&app.keys, who, 3600);
    let r = allowed(&app, Ask::ForwardAuth, &cookie).await;
    let claims = verify(
        &app,
        &jwks(&app).await,
        &assertion_of(&r).unwrap(),
        "https://app.example.test",
    );
    assert!(claims.get("email").is_none(), "{claims}");
}

#[actix_web::test]
async fn a_bypass_a_trusted_network_and_a_deny_carry_none() {
    let app = spawn(with_assertion("")).await;
    let cookie = app.cookie("bob", &["users"]);
    // bypass_paths on open.example.test, with a session cookie present.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "open.example.test",
        "/api/x",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(assertion_of(&r).is_none());
    // A trusted network (lan.example.test's policy allows 10.0.0.0/8).
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "lan.example.test",
        "/",
        &[("Cookie", &cookie), ("X-Forwarded-For", "10.1.2.3")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(assertion_of(&r).is_none());
    // A deny.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(assertion_of(&r).is_none());
}

#[actix_web::test]
async fn off_unless_a_header_is_set_and_then_the_jwks_is_empty() {
    let app = spawn_plain("").await;
    assert!(jwks(&app).await.keys.is_empty());
    let r = allowed(&app, Ask::ForwardAuth, &app.cookie("bob", &["users"])).await;
    assert!(assertion_of(&r).is_none());
}

#[actix_web::test]
async fn the_cache_reuses_an_assertion_for_half_its_lifetime_and_never_across_identities() {
    let app = spawn(with_assertion("lifetime = \"2s\"")).await;
    let bob = app.cookie("bob", &["users"]);
    let first = assertion_of(&allowed(&app, Ask::ForwardAuth, &bob).await).unwrap();
    let again = assertion_of(&allowed(&app, Ask::AuthRequest, &bob).await).unwrap();
    // ES256 signatures are randomised: equal tokens come from the cache.
    assert_eq!(first, again, "reused within half the lifetime");
    let refreshed = app.cookie("bob", &["users", "admins"]);
    let other = assertion_of(&allowed(&app, Ask::ForwardAuth, &refreshed).await).unwrap();
    assert_ne!(first, other, "new groups, new assertion");
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "open.example.test",
        "/",
        &[("Cookie", &bob)],
    )
    .await;
    let elsewhere = assertion_of(&r).unwrap();
    assert_ne!(first, elsewhere, "another origin, another assertion");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = assertion_of(&allowed(&app, Ask::ForwardAuth, &bob).await).unwrap();
    assert_ne!(first, later, "signed anew after half the lifetime");
    verify(&app, &jwks(&app).await, &later, "https://app.example.test");
}

fn write_key_file(path: &Path, keys: &[&SigningKey]) {
    let pem: String = keys.iter().map(|k| k.to_pem().unwrap()).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, pem).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_random(&[seed; 32]).unwrap()
}

#[actix_web::test]
async fn a_replaced_key_stays_published_so_its_assertions_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("assertion.pem");
    let (old, new) = (key(1), key(2));
    write_key_file(&key_path, &[&old]);
    let app = spawn(with_assertion(&format!(
        "key_file = {:?}",
        key_path.display().to_string()
    )))
    .await;
    let cookie = app.cookie("bob", &["users"]);
    let before = assertion_of(&allowed(&app, Ask::ForwardAuth, &cookie).await).unwrap();
    assert_eq!(
        decode_header(&before).unwrap().kid.as_deref(),
        Some(old.kid())
    );

    let config = dir.path().join("pocketgate.toml");
    std::fs::write(&config, &app.toml).unwrap();
    let mut reloader = Reloader::new(&config, app.live.clone(), None);
    write_key_file(&key_path, &[&new]);
    reloader.reload().await.unwrap();

    let after = assertion_of(&allowed(&app, Ask::ForwardAuth, &cookie).await).unwrap();
    assert_eq!(
        decode_header(&after).unwrap().kid.as_deref(),
        Some(new.kid()),
        "the new key signs at once"
    );
    let set = jwks(&app).await;
    let kids: Vec<_> = set
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, [new.kid(), old.kid()], "the old key stays published");
    verify(&app, &set, &before, "https://app.example.test");
    verify(&app, &set, &after, "https://app.example.test");

    // Another reload within the old key's grace keeps it; the retirement time does not move.
    reloader.reload().await.unwrap();
    assert_eq!(jwks(&app).await.keys.len(), 2);
}

#[actix_web::test]
async fn a_key_file_may_publish_a_next_key_before_it_signs() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("assertion.pem");
    let (current, next) = (key(3), key(4));
    write_key_file(&key_path, &[&current, &next]);
    let app = spawn(with_assertion(&format!(
        "key_file = {:?}",
        key_path.display().to_string()
    )))
    .await;
    let set = jwks(&app).await;
    let kids: Vec<_> = set
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, [current.kid(), next.kid()]);
    let token =
        assertion_of(&allowed(&app, Ask::ForwardAuth, &app.cookie("bob", &["users"])).await)
            .unwrap();
    assert_eq!(
        decode_header(&token).unwrap().kid.as_deref(),
        Some(current.kid())
    );
}

#[actix_web::test]
async fn the_generated_key_is_kept_in_the_state_dir_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let session = format!(
        "store = \"embedded\"\nstate_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let first = spawn(Options {
        session: session.clone(),
        ..with_assertion("")
    })
    .await;
    let kid = jwks(&first)
        .await
        .keys
        .first()
        .unwrap()
        .common
        .key_id
        .clone();
    drop(first);
    assert!(dir.path().join("assertion-key.pem").exists());
    let second = spawn(Options {
        session,
        ..with_assertion("")
    })
    .await;
    let again = jwks(&second)
        .await
        .keys
        .first()
        .unwrap()
        .common
        .key_id
        .clone();
    assert_eq!(kid, again);
}
