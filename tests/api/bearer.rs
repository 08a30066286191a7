//! `[bearer]`: `Authorization: Bearer` tokens from the development provider,
//! on both auth endpoints: allowed and denied by group, every broken token a
//! 401 `invalid_token` (re-encoded JWTs too, without asking the provider),
//! opaque tokens through introspection (or, opted in, userinfo) and the
//! cache, one lookup per token however many ask at once, the bounds on
//! lookups, and the provider down.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use dev_idp::{AccessTokenFlaw, AccessTokenOptions, Fault, LogoutTokenFlaw, LogoutTokenOptions};

use crate::common::*;

async fn spawn_bearer() -> TestApp {
    spawn_bearer_with("").await
}

/// With these keys added to `[bearer]`.
async fn spawn_bearer_with(keys: &str) -> TestApp {
    spawn(Options {
        idp: true,
        policies: Some(format!("{POLICIES}\n[bearer]\nenabled = true\n{keys}\n")),
        ..Options::default()
    })
    .await
}

async fn opaque(app: &TestApp, user: &str) -> String {
    token(
        app,
        AccessTokenOptions {
            opaque: true,
            ..AccessTokenOptions::new(user)
        },
    )
    .await
}

/// `token` with its signature decoded and encoded again with `engine`: the
/// same token to a lenient reader (Pocket ID's JWT library), not a JWS to
/// RFC 7515. Only the last part changes, so the header still passes as a
/// token68 (`=` only at the end).
fn reencoded(token: &str, engine: &base64::engine::GeneralPurpose) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let out = format!(
        "{signed}.{}",
        engine.encode(URL_SAFE_NO_PAD.decode(signature).unwrap())
    );
    assert_ne!(out, token);
    out
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
async fn another_clients_token_re_encoded_is_refused_and_the_provider_never_asked() {
    let app = spawn_bearer().await;
    // Pocket ID's own kind: a JWT without groups, here issued to another client.
    let theirs = token(
        &app,
        AccessTokenOptions {
            audience: Some("another-client".into()),
            ..AccessTokenOptions::new("alice")
        },
    )
    .await;
    for how in BOTH {
        let (code, _) = status(&app, how, "app.example.test", &theirs).await;
        assert_eq!(code, 401, "as issued: the audience is checked");
        for (what, t) in [
            ("padded", reencoded(&theirs, &URL_SAFE)),
            ("standard alphabet", reencoded(&theirs, &STANDARD_NO_PAD)),
            ("a trailing dot", format!("{theirs}.")),
        ] {
            let (code, r) = status(&app, how, "app.example.test", &t).await;
            assert_eq!(code, 401, "{what}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\"",
                "{what}"
            );
        }
    }
    assert_eq!(idp(&app).userinfo_calls(), 0, "no lookup for a broken JWT");
    assert_eq!(idp(&app).introspection_calls(), 0);
}

#[actix_web::test]
async fn opaque_tokens_are_checked_by_introspection_with_their_audience() {
    let app = spawn_bearer().await;
    let alice = opaque(&app, "alice").await;
    for _ in 0..10 {
        let (code, r) = status(&app, Ask::ForwardAuth, "grafana.example.test", &alice).await;
        assert_eq!(code, 200);
        assert_eq!(r.headers()["x-remote-user"], "alice");
        assert_eq!(r.headers()["x-remote-groups"], "admins,users");
    }

    let theirs = token(
        &app,
        AccessTokenOptions {
            opaque: true,
            audience: Some("another-client".into()),
            ..AccessTokenOptions::new("alice")
        },
    )
    .await;
    let (code, r) = status(&app, Ask::AuthRequest, "app.example.test", &theirs).await;
    assert_eq!(code, 401, "another client's opaque token");
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let (code, _) = status(
        &app,
        Ask::AuthRequest,
        "app.example.test",
        "not-a-real-token",
    )
    .await;
    assert_eq!(code, 401, "inactive");
    assert_eq!(idp(&app).introspection_calls(), 3);
    assert_eq!(
        idp(&app).userinfo_calls(),
        1,
        "a refused token is never sent to userinfo"
    );

    // Pocket ID's access tokens: a JWT without groups, completed by userinfo.
    let plain = token(&app, AccessTokenOptions::new("bob")).await;
    for _ in 0..10 {
        let (code, _) = status(&app, Ask::AuthRequest, "app.example.test", &plain).await;
        assert_eq!(code, 200);
        let (code, _) = status(&app, Ask::AuthRequest, "grafana.example.test", &plain).await;
        assert_eq!(code, 403);
    }
    assert_eq!(idp(&app).userinfo_calls(), 2);
    let metrics = metrics_text(&app).await;
    for line in [
        "pocketgate_bearer_tokens_total{result=\"introspection\"} 1",
        "pocketgate_bearer_tokens_total{result=\"userinfo\"} 1",
        "pocketgate_bearer_tokens_total{result=\"cached\"} 28",
        "pocketgate_bearer_tokens_total{result=\"invalid\"} 2",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[actix_web::test]
async fn without_introspection_opaque_tokens_are_refused_unless_userinfo_is_opted_in() {
    let no_introspection = |c: &mut dev_idp::DevIdpConfig| c.introspection = false;
    let app = spawn(Options {
        idp: true,
        configure_idp: no_introspection,
        policies: Some(format!("{POLICIES}\n[bearer]\nenabled = true\n")),
        ..Options::default()
    })
    .await;
    let alice = opaque(&app, "alice").await;
    let (code, r) = status(&app, Ask::ForwardAuth, "app.example.test", &alice).await;
    assert_eq!(code, 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(idp(&app).userinfo_calls(), 0);

    // Opted in: userinfo alone (which checks no audience).
    let app = spawn(Options {
        idp: true,
        configure_idp: no_introspection,
        policies: Some(format!(
            "{POLICIES}\n[bearer]\nenabled = true\nopaque = \"userinfo\"\n"
        )),
        ..Options::default()
    })
    .await;
    let alice = opaque(&app, "alice").await;
    let (code, r) = status(&app, Ask::ForwardAuth, "grafana.example.test", &alice).await;
    assert_eq!(code, 200);
    assert_eq!(r.headers()["x-remote-user"], "alice");
    assert_eq!(idp(&app).userinfo_calls(), 1);
    assert_eq!(idp(&app).introspection_calls(), 0);
}

/// Pocket ID's introspection writes no `token_type` and falls back to
/// refresh tokens: pocketgate's own refresh token is answered active, with
/// our `client_id`, and so passes the audience check. Userinfo refuses it
/// (it answers only access tokens): 401.
#[actix_web::test]
async fn a_refresh_token_sent_as_a_bearer_token_is_refused() {
    let app = spawn_bearer().await;
    let refresh = idp(&app).refresh_token("alice").unwrap();
    let answer: serde_json::Value = client()
        .post(format!("{}/api/oidc/introspect", idp(&app).issuer()))
        .basic_auth("pocketgate", Some("client-secret"))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], "pocketgate", "{answer}");
    assert!(answer.get("token_type").is_none(), "{answer}");

    for ask in [Ask::ForwardAuth, Ask::AuthRequest] {
        let (code, r) = status(&app, ask, "app.example.test", &refresh).await;
        assert_eq!(code, 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    assert_eq!(
        idp(&app).introspection_calls(),
        2,
        "the test's own and the first ask's: the refusal is cached"
    );
    assert_eq!(idp(&app).userinfo_calls(), 1, "userinfo refused it");

    // An opaque access token, whose introspection answer has no token_type either, works.
    let alice = opaque(&app, "alice").await;
    let (code, r) = status(&app, Ask::ForwardAuth, "app.example.test", &alice).await;
    assert_eq!(code, 200);
    assert_eq!(r.headers()["x-remote-user"], "alice");
}

#[actix_web::test]
async fn concurrent_requests_with_one_token_share_one_lookup() {
    let app = spawn_bearer().await;
    let alice = opaque(&app, "alice").await;
    idp(&app).set_lookup_delay(Duration::from_millis(300));
    let asks = (0..8).map(|_| status(&app, Ask::ForwardAuth, "app.example.test", &alice));
    for (code, _) in futures_join_all(asks).await {
        assert_eq!(code, 200);
    }
    assert_eq!(idp(&app).userinfo_calls(), 1);
    assert_eq!(idp(&app).introspection_calls(), 1);
}

#[actix_web::test]
async fn lookups_past_the_in_flight_bound_get_503_at_once() {
    let app = spawn_bearer_with("lookups_in_flight = 2").await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(opaque(&app, "alice").await);
    }
    idp(&app).set_lookup_delay(Duration::from_millis(500));
    let asks = tokens
        .iter()
        .map(|t| status(&app, Ask::ForwardAuth, "app.example.test", t));
    let answers = futures_join_all(asks).await;
    let ok = answers.iter().filter(|(code, _)| *code == 200).count();
    let throttled: Vec<_> = answers.iter().filter(|(code, _)| *code == 503).collect();
    assert_eq!(
        (ok, throttled.len()),
        (2, 3),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for (_, r) in &throttled {
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(
            r.headers().get("www-authenticate").is_none(),
            "not the token's fault"
        );
    }
    assert_eq!(idp(&app).introspection_calls(), 2);
    let metrics = metrics_text(&app).await;
    for line in [
        "pocketgate_bearer_throttled_total{reason=\"in_flight\"} 3",
        "pocketgate_bearer_tokens_total{result=\"throttled\"} 3",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[actix_web::test]
async fn each_client_has_a_budget_of_lookups() {
    let app = spawn_bearer_with("lookups_per_minute = 3").await;
    let from = |ip: &'static str| ("X-Forwarded-For", ip);
    let ask_as = |ip: &'static str, token: String| {
        let app = &app;
        async move {
            let auth = format!("Bearer {token}");
            ask(
                app,
                Ask::ForwardAuth,
                "app.example.test",
                "/",
                &[("Authorization", &auth), from(ip)],
            )
            .await
        }
    };
    for i in 0..3 {
        let r = ask_as("192.0.2.1", format!("unknown-{i}")).await;
        assert_eq!(r.status(), 401);
    }
    let r = ask_as("192.0.2.1", "unknown-3".into()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "20");
    // A token already answered needs no lookup: refused from the cache, budget or not.
    let r = ask_as("192.0.2.1", "unknown-0".into()).await;
    assert_eq!(r.status(), 401);
    // Another client has its own budget.
    let r = ask_as("192.0.2.2", "unknown-4".into()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(idp(&app).introspection_calls(), 4);
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_bearer_throttled_total{reason=\"client_budget\"} 1"),
        "{metrics}"
    );
}

/// Run `futures` concurrently on this task; their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, out) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(f) = slot {
                if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                    *out = Some(v);
                    *slot = None;
                }
            }
        }
        if pending.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
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
