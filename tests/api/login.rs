//! The browser flow against the development provider: /login, /callback,
//! /logout, and every way it must fail.

use std::time::{Duration, Instant};

use dev_idp::{Fault, SigningAlg};

use crate::common::*;

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const RD: &str = "https://app.example.test/dash/board?tab=2&x=%2F";

/// The session cookie(s) a response sets, as a `Cookie:` header value.
pub(crate) fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let parts: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter(|kv| kv.starts_with("pocketgate=") || kv.starts_with("pocketgate_"))
        .filter(|kv| !kv.starts_with("pocketgate_flow_") && !kv.ends_with('='))
        .map(str::to_string)
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The live flow cookie a /login answer sets, as `name=value`.
fn flow_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pocketgate_flow_") && !v.contains("Max-Age=0"))
        .and_then(|v| v.split(';').next())
        .expect("a flow cookie")
        .to_string()
}

/// /login → provider approval as `user` → the callback URL (not yet requested).
pub(crate) async fn to_callback(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
    rd: &str,
) -> String {
    let r = b
        .get(app.url(&format!("/login?rd={}", enc(rd))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let authz = location(&r);
    assert!(
        authz.starts_with(app.idp.as_ref().unwrap().issuer()),
        "{authz}"
    );
    for p in [
        "code_challenge_method=S256",
        "scope=openid",
        "groups",
        "nonce=",
        "state=",
    ] {
        assert!(authz.contains(p), "{p} missing in {authz}");
    }
    let approve = app.idp.as_ref().unwrap().approve_url(&authz, user).unwrap();
    let r = b.get(approve).send().await.unwrap();
    assert_eq!(r.status(), 302);
    location(&r)
}

pub(crate) async fn sign_in(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
    rd: &str,
) -> reqwest::Response {
    let cb = to_callback(app, b, user, rd).await;
    b.get(cb).send().await.unwrap()
}

pub(crate) async fn whoami(app: &TestApp, b: &reqwest::Client) -> Option<String> {
    let r = b.get(app.url("/whoami")).send().await.unwrap();
    if r.status() != 200 {
        return None;
    }
    let v: serde_json::Value = r.json().await.unwrap();
    v["user"].as_str().map(str::to_string)
}

#[actix_web::test]
async fn login_allowed_request_logout_cycle() {
    let app = spawn_with_idp().await;
    let b = browser();
    // The proxy sends an anonymous browser to /login with the original URL.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/dash/board?tab=2&x=%2F",
        &[HTML],
    )
    .await;
    let login = location(&r);
    assert_eq!(login, format!("{}/login?rd={}", app.base, enc(RD)));

    let r = sign_in(&app, &b, "alice", RD).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        RD,
        "lands on the original URL with path and query intact"
    );
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("pocketgate="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "public_url is http here");
    assert!(
        set.iter()
            .any(|c| c.starts_with("pocketgate_flow_") && c.contains("Max-Age=0")),
        "flow cookie cleared: {set:?}"
    );

    let cookie = session_cookie(&r).unwrap();
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/",
            &[("Cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-remote-user"], "alice");
        assert_eq!(r.headers()["x-remote-groups"], "admins,users");
        assert_eq!(r.headers()["x-remote-email"], "alice@example.test");
    }
    assert_eq!(whoami(&app, &b).await.as_deref(), Some("alice"));

    // Logout: cookie cleared, RP-initiated logout at the provider with id_token_hint, back to rd.
    let r = b
        .get(app.url(&format!(
            "/logout?rd={}",
            enc("https://app.example.test/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let end = location(&r);
    assert!(
        end.starts_with(&format!(
            "{}/api/oidc/end-session?",
            app.idp.as_ref().unwrap().issuer()
        )),
        "{end}"
    );
    assert!(
        end.contains("id_token_hint=") && end.contains("post_logout_redirect_uri="),
        "{end}"
    );
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("pocketgate=;")));
    let r = b.get(end).send().await.unwrap();
    assert_eq!(r.status(), 302, "the provider returns to /logout/done");
    let done = location(&r);
    assert!(
        done.starts_with(&format!("{}/logout/done", app.base)),
        "{done}"
    );
    let r = b.get(done).send().await.unwrap();
    assert_eq!(location(&r), "https://app.example.test/bye");
    assert_eq!(
        whoami(&app, &b).await,
        None,
        "the browser has no session any more"
    );
    let r = b
        .get(app.url("/forward-auth"))
        .header("X-Forwarded-Host", "grafana.example.test")
        .header("X-Forwarded-Uri", "/")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn a_user_outside_the_policy_signs_in_and_is_denied() {
    let app = spawn_with_idp().await;
    let r = sign_in(&app, &browser(), "bob", RD).await;
    let cookie = session_cookie(&r).unwrap();
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn forged_id_tokens_are_rejected() {
    let app = spawn_with_idp().await;
    for fault in [
        Fault::WrongSignature,
        Fault::WrongIssuer,
        Fault::WrongAudience,
        Fault::Expired,
        Fault::NonceMismatch,
        Fault::AlgNone,
        Fault::Hs256WithPublicKey,
    ] {
        let b = browser();
        let cb = to_callback(&app, &b, "alice", RD).await;
        app.idp.as_ref().unwrap().set_fault(Some(fault));
        let r = b.get(cb).send().await.unwrap();
        app.idp.as_ref().unwrap().set_fault(None);
        assert_eq!(r.status(), 401, "{fault:?}");
        assert!(
            session_cookie(&r).is_none(),
            "{fault:?} must set no session"
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("Sign in again"), "{fault:?}: {body}");
        assert_eq!(whoami(&app, &b).await, None, "{fault:?}");
    }
}

#[actix_web::test]
async fn an_unknown_kid_refetches_the_keys_once() {
    let app = spawn_with_idp().await;
    let b = browser();
    let cb = to_callback(&app, &b, "alice", RD).await;
    app.idp.as_ref().unwrap().set_fault(Some(Fault::UnknownKid));
    let r = b.get(cb).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(whoami(&app, &b).await.as_deref(), Some("alice"));
}

#[actix_web::test]
async fn groups_and_email_missing_from_the_id_token_come_from_userinfo() {
    let app = spawn_with_idp().await;
    app.idp
        .as_ref()
        .unwrap()
        .set_fault(Some(Fault::GroupsOnlyInUserinfo));
    let r = sign_in(&app, &browser(), "alice", RD).await;
    assert_eq!(r.status(), 302);
    let cookie = session_cookie(&r).unwrap();
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-remote-groups"], "admins,users");
    assert_eq!(r.headers()["x-remote-email"], "alice@example.test");
}

/// Discovery is cached, so only asking tells that the provider is down: a
/// sign-in then gets pocketgate's 503 page (with `Retry-After`), not a
/// redirect to an address that refuses the browser; once the provider
/// answers again, sign-ins start again.
#[actix_web::test]
async fn a_sign_in_while_the_provider_is_down_gets_a_503_page_not_a_redirect() {
    let app = spawn_with_idp().await;
    let idp = app.idp.as_ref().unwrap();
    idp.set_fault(Some(Fault::Unavailable));
    let b = browser();
    let r = b
        .get(app.url(&format!("/login?rd={}", enc(RD))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers().get("retry-after").is_some());
    let body = r.text().await.unwrap();
    assert!(body.contains("cannot be reached"), "{body}");

    idp.set_fault(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 503;
    while status == 503 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = b
            .get(app.url(&format!("/login?rd={}", enc(RD))))
            .send()
            .await
            .unwrap();
        status = r.status().as_u16();
    }
    assert_eq!(
        status, 302,
        "the provider answers again: sign-ins start again"
    );
}

#[actix_web::test]
async fn a_provider_refusal_is_shown_plainly() {
    let app = spawn_with_idp().await;
    app.idp
        .as_ref()
        .unwrap()
        .set_fault(Some(Fault::DenyAuthorize));
    let b = browser();
    let r = b
        .get(app.url(&format!("/login?rd={}", enc(RD))))
        .send()
        .await
        .unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    // The registered error code and a plain sentence; the provider's own
    // free text (its error_description) stays in the log.
    assert!(body.contains("access_denied"), "{body}");
    assert!(!body.contains("not in an allowed group"), "{body}");
    assert!(body.contains("Sign in again"));
}

#[actix_web::test]
async fn state_mismatch_replay_and_missing_flow_cookie() {
    let app = spawn_with_idp().await;
    let b = browser();
    let cb = to_callback(&app, &b, "alice", RD).await;

    // Missing flow cookie: another browser presents the callback.
    let r = browser().get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());

    // State mismatch.
    let forged = regex_replace_state(&cb, "forged-state-value");
    let r = b.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // The genuine callback works once...
    let r = b.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 302);
    // ...and a replay finds no flow any more.
    let r = b.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());

    // iss mismatch (RFC 9207) on a fresh flow: refused, and the flow is spent.
    let b = browser();
    let cb = to_callback(&app, &b, "alice", RD).await;
    let wrong_iss = cb.replace("iss=http", "iss=https");
    let r = b.get(&wrong_iss).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());
    assert!(r.text().await.unwrap().contains("iss"));
    assert_eq!(
        b.get(&cb).send().await.unwrap().status(),
        400,
        "a failed callback ends its flow"
    );
    // Each of the five refusals above is counted as a bad flow.
    let metrics = app.state.metrics.render(true);
    assert!(
        metrics
            .lines()
            .any(|l| l
                == r#"pocketgate_bad_requests_total{endpoint="callback",reason="bad_flow"} 5"#),
        "{metrics}"
    );
}

fn regex_replace_state(url: &str, state: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                state.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[actix_web::test]
async fn a_reused_code_is_refused_by_the_provider() {
    let app = spawn_with_idp().await;
    // Drive the flow by hand so the flow cookie can be kept, as an attacker replaying the whole request would.
    let c = client();
    let r = c
        .get(app.url(&format!("/login?rd={}", enc(RD))))
        .send()
        .await
        .unwrap();
    let flow = flow_cookie(&r);
    let approve = app
        .idp
        .as_ref()
        .unwrap()
        .approve_url(&location(&r), "alice")
        .unwrap();
    let cb = location(&c.get(approve).send().await.unwrap());
    let r = c.get(&cb).header("Cookie", &flow).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let r = c.get(&cb).header("Cookie", &flow).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());
    assert!(r.text().await.unwrap().contains("invalid_grant"));
}

#[actix_web::test]
async fn parallel_logins_in_two_tabs_and_two_browsers() {
    let app = spawn_with_idp().await;
    // Two tabs of one browser: both flows complete, each to its own rd.
    let b = browser();
    let rd1 = "https://app.example.test/one";
    let rd2 = "https://grafana.example.test/two";
    let cb1 = to_callback(&app, &b, "alice", rd1).await;
    let cb2 = to_callback(&app, &b, "alice", rd2).await;
    let r2 = b.get(&cb2).send().await.unwrap();
    let r1 = b.get(&cb1).send().await.unwrap();
    assert_eq!(
        (r1.status().as_u16(), location(&r1)),
        (302, rd1.to_string())
    );
    assert_eq!(
        (r2.status().as_u16(), location(&r2)),
        (302, rd2.to_string())
    );

    // Two users in two browsers, interleaved: each ends with their own identity.
    let (ba, bb) = (browser(), browser());
    let (ca, cb) = tokio::join!(
        to_callback(&app, &ba, "alice", RD),
        to_callback(&app, &bb, "bob", RD)
    );
    let (ra, rb) = tokio::join!(bb.get(&cb).send(), ba.get(&ca).send());
    assert_eq!(ra.unwrap().status(), 302);
    assert_eq!(rb.unwrap().status(), 302);
    assert_eq!(whoami(&app, &ba).await.as_deref(), Some("alice"));
    assert_eq!(whoami(&app, &bb).await.as_deref(), Some("bob"));
}

#[actix_web::test]
async fn an_earlier_session_is_replaced_at_login() {
    let app = spawn_with_idp().await;
    // Mallory plants her session cookie in the victim's browser.
    let planted = app.cookie("mallory", &["admins"]);
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("{planted}; Path=/"), &app.base.parse().unwrap());
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .build()
        .unwrap();
    assert_eq!(whoami(&app, &b).await.as_deref(), Some("mallory"));
    let r = sign_in(&app, &b, "bob", RD).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        whoami(&app, &b).await.as_deref(),
        Some("bob"),
        "the login replaced the planted session"
    );
}

#[actix_web::test]
async fn open_redirect_corpus_is_refused_on_login_and_logout() {
    let app = spawn_with_idp().await;
    let corpus = [
        "//evil.test",
        "/\\evil.test",
        "\\/evil.test",
        "https:evil.test",
        "https:/evil.test",
        "https://evil.test/",
        "https://app.example.test.evil.test/",
        "https://app.example.test@evil.test/",
        "https://app.example.test:x@evil.test/",
        "https://a@b@evil.test/",
        "https://evil.test\\@app.example.test/",
        "https://app.example.test%2F@evil.test/",
        "https://evil.test%09.app.example.test/",
        " https://app.example.test/",
        "https://app.example.test/\r\nSet-Cookie: x=1",
        "https://app.example.test/\t",
        "javascript:alert(1)",
        "JavaScript://app.example.test/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://app.example.test/",
        "/relative/path",
        "app.example.test",
        "",
        "https://exampl.test/",
        "https://ex\u{e4}mple.test/",
    ];
    let c = client();
    for path in ["/login", "/logout"] {
        for rd in corpus {
            let r = c
                .get(app.url(&format!("{path}?rd={}", enc(rd))))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path} rd={rd:?}");
            assert!(r.headers().get("location").is_none(), "{path} rd={rd:?}");
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("<script>"),
                "the page escapes what it echoes"
            );
        }
    }
    let metrics = app.state.metrics.render(true);
    for endpoint in ["login", "logout"] {
        let line = format!(
            r#"pocketgate_bad_requests_total{{endpoint="{endpoint}",reason="bad_rd"}} {}"#,
            corpus.len()
        );
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    // Configured hosts, any case, with ports, are fine.
    for rd in [
        "https://APP.example.test:8443/x",
        "https://grafana.example.test/",
        "https://a.wild.example.test/",
    ] {
        let r = c
            .get(app.url(&format!("/login?rd={}", enc(rd))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{rd}");
    }
}

#[actix_web::test]
async fn provider_down_at_start_and_recovering() {
    let app = spawn(Options {
        idp: true,
        discover: false,
        ..Options::default()
    })
    .await;
    let idp = app.idp.as_ref().unwrap();
    idp.set_fault(Some(Fault::Unavailable));
    let discovery = app.provider.spawn_discovery();
    let c = client();
    let r = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = c
        .get(app.url(&format!("/login?rd={}", enc(RD))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("cannot be reached"));
    // Bypasses and existing sessions keep working without the provider.
    let r = ask(&app, Ask::ForwardAuth, "open.example.test", "/api/x", &[]).await;
    assert_eq!(r.status(), 200);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &app.cookie("alice", &["admins"]))],
    )
    .await;
    assert_eq!(r.status(), 200);

    idp.set_fault(None);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "provider never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = sign_in(&app, &browser(), "alice", RD).await;
    assert_eq!(r.status(), 302);
    discovery.abort();
}

#[actix_web::test]
async fn public_client_post_auth_es256_and_internal_endpoints() {
    // A public client (PKCE only).
    let app = spawn(Options {
        idp: true,
        oidc: "client_auth = \"none\"".into(),
        configure_idp: |c| c.client_secret = None,
        ..Options::default()
    })
    .await;
    assert_eq!(sign_in(&app, &browser(), "alice", RD).await.status(), 302);

    // client_secret_post, ES256 keys, and token/userinfo/JWKS on another host name (Pocket ID's INTERNAL_APP_URL).
    let app = spawn(Options {
        idp: true,
        oidc: "client_auth = \"client_secret_post\"".into(),
        configure_idp: |c| {
            c.alg = SigningAlg::Es256;
            c.internal_host = Some("localhost".into());
        },
        ..Options::default()
    })
    .await;
    let b = browser();
    let r = sign_in(&app, &b, "alice", RD).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(whoami(&app, &b).await.as_deref(), Some("alice"));
}

#[actix_web::test]
async fn a_missing_iss_is_refused_when_the_provider_promises_it() {
    let app = spawn_with_idp().await;
    let b = browser();
    let cb = to_callback(&app, &b, "alice", RD).await;
    let mut u = url::Url::parse(&cb).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let r = b.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());
}

#[actix_web::test]
async fn flow_cookies_are_capped_and_long_return_urls_shortened() {
    let app = spawn_with_idp().await;
    let c = client();
    // Six abandoned logins in other tabs.
    let mut flows = Vec::new();
    for _ in 0..6 {
        let r = c
            .get(app.url(&format!("/login?rd={}", enc(RD))))
            .send()
            .await
            .unwrap();
        let flow = flow_cookie(&r);
        flows.push(flow);
    }
    let r = c
        .get(app.url(&format!("/login?rd={}", enc(RD))))
        .header("Cookie", flows.join("; "))
        .send()
        .await
        .unwrap();
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|v| v.to_str().unwrap().contains("Max-Age=0"))
        .count();
    assert_eq!(
        cleared, 3,
        "six live flows: keep the newest three, start a fourth"
    );

    // A very long return URL still fits the flow cookie; the query is dropped.
    let long = format!("https://app.example.test/search?q={}", "x".repeat(3500));
    let b = browser();
    let r = b
        .get(app.url(&format!("/login?rd={}", enc(&long))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    for v in r.headers().get_all("set-cookie") {
        assert!(
            v.len() < 4000,
            "a cookie of {} bytes would be dropped by browsers",
            v.len()
        );
    }
    let approve = app
        .idp
        .as_ref()
        .unwrap()
        .approve_url(&location(&r), "alice")
        .unwrap();
    let cb = location(&b.get(approve).send().await.unwrap());
    let r = b.get(cb).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "https://app.example.test/search");
}

/// Logout CSRF: a `/logout` another site sends the browser to asks first.
/// The session lives on the server (embedded store), so "kept" means the
/// very cookie still opens it.
#[actix_web::test]
async fn a_logout_from_another_site_asks_first_and_keeps_the_session() {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\n".into(),
        ..Options::default()
    })
    .await;
    let b = browser();
    let r = sign_in(&app, &b, "alice", RD).await;
    let cookie = session_cookie(&r).expect("a session cookie");
    // Valid (a covered host), with characters the page must escape.
    let rd = "https://app.example.test/it's?a=1&b=2";
    let logout = app.url(&format!("/logout?rd={}", enc(rd)));
    let form = |req: reqwest::RequestBuilder| {
        req.header("content-type", "application/x-www-form-urlencoded")
            .body(format!("rd={}", enc(rd)))
    };
    #[rustfmt::skip]
    let cross_site: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("GET, Sec-Fetch-Site: cross-site", b.get(&logout).header("Sec-Fetch-Site", "cross-site")),
        ("GET, a foreign Origin",           b.get(&logout).header("Origin", "https://evil.example.net")),
        ("GET, Origin: null",               b.get(&logout).header("Origin", "null")),
        ("GET, same-site but foreign Origin", b.get(&logout).header("Sec-Fetch-Site", "same-site").header("Origin", "https://other.example.net")),
        ("POST, cross-site",                form(b.post(app.url("/logout"))).header("Sec-Fetch-Site", "cross-site")),
        ("POST, a foreign Origin",          form(b.post(app.url("/logout"))).header("Origin", "https://evil.example.net")),
    ];
    for (what, req) in cross_site {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{what}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{what}: no cookie cleared"
        );
        assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("<form method=\"post\" action=\"/logout\">"),
            "{what}: {page}"
        );
        // rd is carried, escaped
        assert!(
            page.contains("value=\"https://app.example.test/it&#39;s?a=1&amp;b=2\""),
            "{what}: {page}"
        );
        assert!(!page.contains("it's?a=1&b=2"), "{what}: {page}");
        assert_eq!(
            forward_auth_status(&app, "app.example.test", &cookie).await,
            200,
            "{what}: the session is kept"
        );
    }

    // The page's button: a same-origin POST carrying rd signs out.
    let r = form(b.post(app.url("/logout")))
        .header("Origin", &app.public_url)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let end = location(&r);
    assert!(end.contains("/api/oidc/end-session?"), "{end}");
    assert!(
        end.contains(&format!("state={}", enc(rd))),
        "rd goes on: {end}"
    );
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("pocketgate=;")));
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &cookie).await,
        401
    );
}

/// Same-origin, same-site and direct navigations sign out in one click, as
/// an app's own sign-out link under the cookie domain does.
#[actix_web::test]
async fn a_logout_from_this_site_or_typed_in_signs_out_at_once() {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\n".into(),
        ..Options::default()
    })
    .await;
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no Sec-Fetch-Site",        vec![]),
        ("Sec-Fetch-Site: none",     vec![("Sec-Fetch-Site", "none")]),
        ("same-origin",              vec![("Sec-Fetch-Site", "same-origin")]),
        ("same-site",                vec![("Sec-Fetch-Site", "same-site")]),
        ("a covered host's Origin",  vec![("Sec-Fetch-Site", "same-site"), ("Origin", "https://app.example.test")]),
    ];
    for (what, headers) in rows {
        let b = browser();
        let r = sign_in(&app, &b, "alice", RD).await;
        let cookie = session_cookie(&r).expect("a session cookie");
        let mut req = b.get(app.url("/logout"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 302, "{what}");
        assert_eq!(
            forward_auth_status(&app, "app.example.test", &cookie).await,
            401,
            "{what}: the session is ended"
        );
    }
}

/// A query string that does not fit the endpoint (`rd` twice) is refused
/// like every other bad request: a 400 page for a browser, JSON for a
/// script, never cached, and no redirect.
#[actix_web::test]
async fn a_bad_query_string_gets_the_400_page_or_json_of_other_rejections() {
    let app = spawn_with_idp().await;
    for path in ["/login", "/logout"] {
        let url = app.url(&format!("{path}?rd=%2Fa&rd=%2Fb"));
        let r = browser()
            .get(&url)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert!(header(&r, "location").is_none(), "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Bad request") && page.contains("duplicate field"),
            "{page}"
        );

        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("query string")),
            "{body}"
        );
    }
}
