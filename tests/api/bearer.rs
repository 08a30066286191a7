//! `[bearer]`: `Authorization: Bearer` tokens from the development provider,
//! on both auth endpoints: allowed and denied by group, every broken token a
//! 401 `invalid_token`, opaque tokens through userinfo and its cache, and the
//! provider down.

use dev_idp::{AccessTokenFlaw, AccessTokenOptions, Fault, LogoutTokenFlaw, LogoutTokenOptions};

use crate::common::*;

async fn spawn_bearer() -> TestApp {
    spawn(Options {
        idp: true,
        policies: Some(format!("{POLICIES}\n[bearer]\nenabled = true\n")),
        ..Options::default()
    })
    .await
}

fn idp(app: &TestApp) -> &dev_idp::DevIdp {
    app.idp.as_ref().unwrap()
}

async fn token(app: &TestApp, options: AccessTokenOptions) -> String {
    idp(app).access_token(&options).await.unwrap()
}

/// A JWT carrying the user's claims (groups included): decided without userinfo.
async fn jwt_with_groups(app: &TestApp, user: &str) -> String {
    token(
        app,
        AccessTokenOptions {
            with_user_claims: true,
            ..AccessTokenOptions::new(user)
        },
    )
    .await
}

async fn status(app: &TestApp, how: Ask, host: &str, token: &str) -> (u16, reqwest::Response) {
    let auth = format!("Bearer {token}");
    let r = ask(app, how, host, "/", &[("Authorization", &auth), HTML]).await;
    (r.status().as_u16(), r)
}

#[actix_web::test]
async fn a_valid_jwt_is_allowed_or_denied_by_its_groups() {
    let app = spawn_bearer().await;
    let alice = jwt_with_groups(&app, "alice").await;
    let bob = jwt_with_groups(&app, "bob").await;
    for how in BOTH {
        let (code, r) = status(&app, how, "grafana.example.test", &alice).await;
        assert_eq!(code, 200);
        assert_eq!(r.headers()["x-remote-user"], "alice");
        assert_eq!(r.headers()["x-remote-groups"], "admins,users");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "a token never makes a session"
        );
        let (code, _) = status(&app, how, "grafana.example.test", &bob).await;
        assert_eq!(code, 403);
        let (code, _) = status(&app, how, "app.example.test", &bob).await;
        assert_eq!(code, 200);
    }
    assert_eq!(
        idp(&app).userinfo_calls(),
        0,
        "groups in the JWT: no userinfo"
    );
}

#[actix_web::test]
async fn every_broken_token_is_a_401_invalid_token_never_a_redirect() {
    let app = spawn_bearer().await;
    let flawed = |flaw| AccessTokenOptions {
        with_user_claims: true,
        flaw: Some(flaw),
        ..AccessTokenOptions::new("alice")
    };
    let mut broken = vec![
        (
            "bad signature",
            token(&app, flawed(AccessTokenFlaw::WrongSignature)).await,
        ),
        (
            "alg none",
            token(&app, flawed(AccessTokenFlaw::AlgNone)).await,
        ),
        (
            "HS256 with the public key",
            token(&app, flawed(AccessTokenFlaw::Hs256WithPublicKey)).await,
        ),
        (
            "wrong iss",
            token(&app, flawed(AccessTokenFlaw::WrongIssuer)).await,
        ),
        (
            "wrong aud",
            token(&app, flawed(AccessTokenFlaw::WrongAudience)).await,
        ),
        (
            "expired",
            token(&app, flawed(AccessTokenFlaw::Expired)).await,
        ),
        ("garbage", "garbage-token".to_string()),
        (
            "garbage JWT",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".to_string(),
        ),
    ];
    let logout = idp(&app)
        .logout_token(&LogoutTokenOptions::new("alice", "sid-1"))
        .await
        .unwrap();
    broken.push(("a logout token", logout));
    let no_events = idp(&app)
        .logout_token(&LogoutTokenOptions {
            flaw: Some(LogoutTokenFlaw::MissingEvents),
            ..LogoutTokenOptions::new("alice", "sid-1")
        })
        .await
        .unwrap();
    broken.push(("a logout token without events (typ logout+jwt)", no_events));
    for how in BOTH {
        for (what, t) in &broken {
            let (code, r) = status(&app, how, "app.example.test", t).await;
            assert_eq!(code, 401, "{what}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\"",
                "{what}"
            );
            assert!(r.headers().get("location").is_none(), "{what}");
            assert!(r.headers().get("set-cookie").is_none(), "{what}");
        }
        // Not a token68: refused before anything is asked.
        let r = ask(
            &app,
            how,
            "app.example.test",
            "/",
            &[("Authorization", "Bearer a b")],
        )
        .await;
        assert_eq!(r.status(), 401);
    }
}

#[actix_web::test]
async fn opaque_and_group_less_tokens_are_answered_by_userinfo_once() {
    let app = spawn_bearer().await;
    let opaque = token(
        &app,
        AccessTokenOptions {
            opaque: true,
            ..AccessTokenOptions::new("alice")
        },
    )
    .await;
    for _ in 0..10 {
        let (code, r) = status(&app, Ask::ForwardAuth, "grafana.example.test", &opaque).await;
        assert_eq!(code, 200);
        assert_eq!(r.headers()["x-remote-user"], "alice");
    }
    assert_eq!(idp(&app).userinfo_calls(), 1);

    // Pocket ID's own access tokens: a JWT without groups.
    let plain = token(&app, AccessTokenOptions::new("bob")).await;
    for _ in 0..10 {
        let (code, _) = status(&app, Ask::AuthRequest, "app.example.test", &plain).await;
        assert_eq!(code, 200);
        let (code, _) = status(&app, Ask::AuthRequest, "grafana.example.test", &plain).await;
        assert_eq!(code, 403);
    }
    assert_eq!(idp(&app).userinfo_calls(), 2);

    // A refused token is remembered: a flood is not a flood on the provider.
    for _ in 0..10 {
        let (code, _) = status(
            &app,
            Ask::ForwardAuth,
            "app.example.test",
            "not-a-real-token",
        )
        .await;
        assert_eq!(code, 401);
    }
    assert_eq!(idp(&app).userinfo_calls(), 3);
    let metrics = client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "pocketgate_bearer_tokens_total{result=\"userinfo\"} 2",
        "pocketgate_bearer_tokens_total{result=\"cached\"} 28",
        "pocketgate_bearer_tokens_total{result=\"invalid\"} 10",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[actix_web::test]
async fn provider_down_cached_tokens_work_new_ones_get_503() {
    let app = spawn_bearer().await;
    let cached = token(&app, AccessTokenOptions::new("alice")).await;
    let fresh = token(&app, AccessTokenOptions::new("alice")).await;
    let (code, _) = status(&app, Ask::ForwardAuth, "app.example.test", &cached).await;
    assert_eq!(code, 200);
    idp(&app).set_fault(Some(Fault::Unavailable));
    let (code, _) = status(&app, Ask::ForwardAuth, "app.example.test", &cached).await;
    assert_eq!(code, 200, "a cached answer keeps working");
    let (code, r) = status(&app, Ask::ForwardAuth, "app.example.test", &fresh).await;
    assert_eq!(code, 503, "not 401: the token may be fine");
    assert!(r.headers().get("www-authenticate").is_none());
    // Not cached as a refusal: once the provider is back, the token works.
    idp(&app).set_fault(None);
    let (code, _) = status(&app, Ask::ForwardAuth, "app.example.test", &fresh).await;
    assert_eq!(code, 200);
}

#[actix_web::test]
async fn the_session_wins_and_bypasses_never_look_at_the_token() {
    let app = spawn_bearer().await;
    let bob = jwt_with_groups(&app, "bob").await;
    let cookie = app.cookie("alice", &["admins"]);
    let auth = format!("Bearer {bob}");
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Authorization", &auth), ("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-remote-user"], "alice");
    // A bypass path answers without reading the (broken) token.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "open.example.test",
        "/api/x",
        &[("Authorization", "Bearer garbage")],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn without_bearer_enabled_a_token_is_ignored() {
    let app = spawn_with_idp().await;
    let alice = jwt_with_groups(&app, "alice").await;
    let (code, _) = status(&app, Ask::ForwardAuth, "app.example.test", &alice).await;
    assert_eq!(code, 302);
}
