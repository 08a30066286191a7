//! `/forward-auth` and `/auth-request`: every outcome, every rejection path.

use crate::common::*;

#[actix_web::test]
async fn allowed_user_gets_identity_headers_on_both_endpoints() {
    let app = spawn_plain("").await;
    let cookie = app.cookie("alice", &["admins", "users"]);
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/d/1?x=y",
            &[("Cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status(), 200, "{how:?}");
        assert_eq!(header(&r, "x-remote-user"), Some("alice"));
        assert_eq!(header(&r, "x-remote-email"), Some("alice@example.test"));
        assert_eq!(header(&r, "x-remote-name"), Some("alice Example"));
        assert_eq!(header(&r, "x-remote-groups"), Some("admins,users"));
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
    }
}

/// The 403 page in the person's words: who is signed in, what they lack,
/// whom to ask, a sign-out link that works; the rule stays in the log.
async fn assert_speaks_to_the_person(app: &TestApp, body: &str, cookie: &str) {
    assert!(body.contains("Access denied"), "{body}");
    assert!(body.contains("signed in as <strong>bob</strong>"), "{body}");
    assert!(
        body.contains("open to members of admins, and your account is in none"),
        "what they lack, in one sentence: {body}"
    );
    assert!(
        !body.contains("polic") && !body.contains("allowed_groups"),
        "the rule stays in the log: {body}"
    );
    assert!(
        body.contains("Ask the ops team: ops@example.test"),
        "{body}"
    );
    assert!(body.contains("Sign out or switch user"), "{body}");
    // Nothing from elsewhere, and readable on a phone.
    assert!(!body.contains("<script") && !body.contains("<link") && !body.contains("src="));
    assert!(body.contains("initial-scale=1"), "{body}");
    let logout = format!("{}/logout?rd=", app.public_url);
    let start = body
        .find(&logout)
        .expect("a sign-out link on the public URL");
    let href = &body[start..start + body[start..].find('"').unwrap()];
    assert!(href.contains("grafana.example.test%2F"), "{href}");
    // The link signs out and goes back to the refused address.
    let r = client()
        .get(href.replace("&amp;", "&"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{href}");
    assert!(
        location(&r).contains("grafana.example.test/"),
        "{}",
        location(&r)
    );
}

#[actix_web::test]
async fn user_outside_the_groups_is_denied_with_a_page_naming_host_and_reason() {
    let app = spawn_plain("support_contact = \"Ask the ops team: ops@example.test\"\n").await;
    let cookie = app.cookie("bob", &["users"]);
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/",
            &[("Cookie", &cookie), HTML],
        )
        .await;
        assert_eq!(r.status(), 403, "{how:?}");
        assert!(header(&r, "x-remote-user").is_none());
        assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
        let body = r.text().await.unwrap();
        assert!(
            body.contains("grafana.example.test") && body.contains("bob"),
            "{body}"
        );
        assert_speaks_to_the_person(&app, &body, &cookie).await;
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/",
            &[("Cookie", &cookie), JSON],
        )
        .await;
        assert_eq!(r.status(), 403);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "forbidden");
    }
}

#[actix_web::test]
async fn claim_roles_admit_a_mapped_group() {
    let app = spawn_plain("").await;
    let cookie = app.cookie("dave", &["grafana-admins"]);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-remote-groups"),
        Some("grafana-admins"),
        "the header carries groups, not derived roles"
    );
}

#[actix_web::test]
async fn no_session_browser_is_sent_to_login_and_api_client_gets_401() {
    let app = spawn_plain("").await;
    let expected = format!(
        "{}/login?rd=https%3A%2F%2Fapp.example.test%2Fa%2Fb%3Fq%3D1%26r%3D2",
        app.base
    );
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/a/b?q=1&r=2",
        &[HTML],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), expected);
    let r = ask(
        &app,
        Ask::AuthRequest,
        "app.example.test",
        "/a/b?q=1&r=2",
        &[HTML],
    )
    .await;
    assert_eq!(
        r.status(),
        401,
        "nginx auth_request only understands 2xx/401/403"
    );
    assert_eq!(location(&r), expected);
    for how in BOTH {
        for api in [
            vec![JSON],
            vec![],
            vec![HTML, ("X-Requested-With", "XMLHttpRequest")],
            vec![HTML, ("Sec-Fetch-Mode", "cors")],
        ] {
            let r = ask(&app, how, "app.example.test", "/", &api).await;
            assert_eq!(r.status(), 401, "{how:?} {api:?}");
            assert!(
                r.headers().get("location").is_none(),
                "API clients get no redirect"
            );
            assert!(header(&r, "www-authenticate")
                .unwrap()
                .starts_with("Bearer"));
        }
        let r = ask(
            &app,
            how,
            "app.example.test",
            "/",
            &[HTML, ("Sec-Fetch-Mode", "navigate")],
        )
        .await;
        assert!(r.headers().get("location").is_some());
    }
}

#[actix_web::test]
async fn bypass_paths_and_regex_respect_the_hosts_networks() {
    let app = spawn_plain("").await;
    for how in BOTH {
        for uri in ["/api/health", "/api/health/live", "/status"] {
            let r = ask(
                &app,
                how,
                "grafana.example.test",
                uri,
                &[("X-Forwarded-For", "10.50.3.4"), JSON],
            )
            .await;
            assert_eq!(r.status(), 200, "{how:?} {uri}");
            assert!(
                header(&r, "x-remote-user").is_none(),
                "a bypass carries no identity"
            );
            let r = ask(
                &app,
                how,
                "grafana.example.test",
                uri,
                &[("X-Forwarded-For", "203.0.113.5"), JSON],
            )
            .await;
            assert_eq!(r.status(), 401, "{how:?} {uri}: outside allowed_networks");
        }
        // Hosts without allowed_networks bypass for everyone.
        let r = ask(
            &app,
            how,
            "open.example.test",
            "/api/x",
            &[("X-Forwarded-For", "203.0.113.5")],
        )
        .await;
        assert_eq!(r.status(), 200);
        // A session does not add identity to a bypass.
        let cookie = app.cookie("alice", &["admins"]);
        let r = ask(
            &app,
            how,
            "open.example.test",
            "/api/x",
            &[("Cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert!(header(&r, "x-remote-user").is_none());
        // The query never takes part in matching.
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/private?p=/status",
            &[("X-Forwarded-For", "10.50.3.4"), JSON],
        )
        .await;
        assert_eq!(r.status(), 401, "{how:?}");
    }
}

#[actix_web::test]
async fn path_tricks_never_bypass() {
    let app = spawn_plain("").await;
    let tricks = [
        "/api/health/../../admin",
        "/api/health/%2e%2e/admin",
        "/api/health%2F..%2Fadmin",
        "/api/health/..;/admin",
        "//api/health",
        "/api/health%23",
        "/api/health%00",
        "/api/healthz",
        "/API/health",
        "/status/",
        "/status/..",
    ];
    for how in BOTH {
        for uri in tricks {
            let r = ask(
                &app,
                how,
                "grafana.example.test",
                uri,
                &[("X-Forwarded-For", "10.50.3.4"), JSON],
            )
            .await;
            assert_eq!(r.status(), 401, "{how:?} {uri} must not bypass");
        }
    }
}

#[actix_web::test]
async fn trusted_network_policy_allows_without_identity() {
    let app = spawn_plain("").await;
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "lan.example.test",
            "/",
            &[("X-Forwarded-For", "10.1.2.3")],
        )
        .await;
        assert_eq!(r.status(), 200, "{how:?}");
        assert!(header(&r, "x-remote-user").is_none());
        let r = ask(
            &app,
            how,
            "lan.example.test",
            "/",
            &[("X-Forwarded-For", "203.0.113.5"), JSON],
        )
        .await;
        assert_eq!(r.status(), 401);
    }
}

#[actix_web::test]
async fn unknown_host_is_denied_without_default_policy_and_follows_it_with_one() {
    let app = spawn_plain("").await;
    let cookie = app.cookie("alice", &["admins"]);
    for how in BOTH {
        let r = ask(&app, how, "other.example.test", "/", &[("Cookie", &cookie)]).await;
        assert_eq!(r.status(), 403, "{how:?}");
    }
    let app = spawn_plain("default_policy = \"users\"").await;
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "other.example.test",
        "/",
        &[("Cookie", &app.cookie("bob", &["users"]))],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "other.example.test",
        "/",
        &[("Cookie", &app.cookie("carol", &[]))],
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn host_case_port_and_trailing_dot_variants_hit_the_same_entry() {
    let app = spawn_plain("").await;
    let cookie = app.cookie("bob", &["users"]);
    for host in [
        "GRAFANA.example.test",
        "grafana.example.test.",
        "Grafana.Example.Test:8443",
        "grafana.example.test.:443",
    ] {
        for how in BOTH {
            let r = ask(&app, how, host, "/", &[("Cookie", &cookie)]).await;
            assert_eq!(
                r.status(),
                403,
                "{how:?} {host}: the admins policy must apply"
            );
        }
    }
    // Wildcards match any depth, case-insensitively.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "A.B.Wild.Example.Test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "a.wild.example.test",
        "/",
        &[("Cookie", &app.cookie("alice", &["admins"]))],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn spoofed_forwarded_headers_from_an_untrusted_peer_are_ignored() {
    // Loopback is not trusted here: every forwarded header is ignored, so nothing can be decided.
    let app = spawn_plain("trusted_proxies = [\"192.0.2.1/32\"]").await;
    for how in BOTH {
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/api/health",
            &[("X-Forwarded-For", "10.50.3.4")],
        )
        .await;
        assert_eq!(r.status(), 400, "{how:?}");
        let body = r.text().await.unwrap();
        assert!(body.contains("trusted_proxies"), "{body}");
        let r = ask(
            &app,
            how,
            "lan.example.test",
            "/",
            &[
                ("X-Forwarded-For", "10.1.1.1"),
                ("Cookie", &app.cookie("alice", &["admins"])),
            ],
        )
        .await;
        assert_eq!(r.status(), 400);
    }
}

#[actix_web::test]
async fn spoofed_leftmost_x_forwarded_for_does_not_satisfy_networks() {
    let app = spawn_plain("").await;
    for how in BOTH {
        // The client claimed 10.50.3.4; the proxy appended the real address.
        let r = ask(
            &app,
            how,
            "grafana.example.test",
            "/api/health",
            &[("X-Forwarded-For", "10.50.3.4, 203.0.113.5"), JSON],
        )
        .await;
        assert_eq!(r.status(), 401, "{how:?}");
        let r = ask(
            &app,
            how,
            "lan.example.test",
            "/",
            &[("X-Forwarded-For", "10.1.1.1, 203.0.113.5"), JSON],
        )
        .await;
        assert_eq!(r.status(), 401, "{how:?}");
    }
}

#[actix_web::test]
async fn tampered_expired_foreign_and_rotated_cookies() {
    let rotated = format!("secret = \"{SECRET}\\n{OLD_SECRET}\"");
    let app = spawn(Options {
        session: rotated,
        ..Options::default()
    })
    .await;
    let good = app.cookie("alice", &["admins"]);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &good)],
    )
    .await;
    assert_eq!(r.status(), 200);

    // A session sealed with the second (older) secret still opens.
    let old_keys = keys_for(OLD_SECRET);
    let old = app.cookie_with(&old_keys, identity("alice", &["admins"]), 3600);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &old)],
    )
    .await;
    assert_eq!(r.status(), 200, "rotation: old secret still opens");

    let foreign_keys = keys_for("another-secret-0123456789abcdef0123");
    let mut bad = vec![
        (
            "expired",
            app.cookie_with(&app.keys, identity("alice", &["admins"]), -1),
        ),
        (
            "foreign",
            app.cookie_with(&foreign_keys, identity("alice", &["admins"]), 3600),
        ),
        ("truncated", good[..good.len() - 5].to_string()),
        ("empty", "pocketgate=".into()),
        ("garbage", "pocketgate=not-a-session".into()),
        (
            "quoted",
            format!("pocketgate=\"{}\"", &good["pocketgate=".len()..]),
        ),
    ];
    for i in ["pocketgate=".len() + 3, good.len() / 2, good.len() - 2] {
        let mut t = good.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        bad.push(("tampered", String::from_utf8(t).unwrap()));
    }
    for (what, cookie) in bad {
        for how in BOTH {
            let r = ask(
                &app,
                how,
                "grafana.example.test",
                "/",
                &[("Cookie", &cookie), JSON],
            )
            .await;
            assert_eq!(r.status(), 401, "{what} cookie on {how:?} means no session");
        }
    }
}

#[actix_web::test]
async fn missing_and_malformed_headers_are_400_never_2xx() {
    let app = spawn_plain("").await;
    let c = client();
    let cookie = app.cookie("alice", &["admins"]);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/forward-auth", vec![]),
        ("/forward-auth", vec![("X-Forwarded-Uri", "/")]),
        (
            "/forward-auth",
            vec![("X-Forwarded-Host", "app.example.test")],
        ),
        (
            "/forward-auth",
            vec![
                ("X-Forwarded-Host", "app.example.test"),
                ("X-Forwarded-Uri", "https://evil.test/"),
            ],
        ),
        (
            "/forward-auth",
            vec![
                ("X-Forwarded-Host", "app.example.test"),
                ("X-Forwarded-Uri", "/"),
                ("X-Forwarded-Proto", "evil_protocol"),
            ],
        ),
        (
            "/forward-auth",
            vec![
                ("X-Forwarded-Host", "app.example.test/evil"),
                ("X-Forwarded-Uri", "/"),
            ],
        ),
        (
            "/forward-auth",
            vec![
                ("X-Forwarded-Host", "app.example.test"),
                ("X-Forwarded-Uri", "/"),
                ("X-Forwarded-For", "not-an-ip"),
            ],
        ),
        ("/auth-request", vec![]),
        ("/auth-request", vec![("X-Original-URL", "/relative/only")]),
        (
            "/auth-request",
            vec![("X-Original-URL", "javascript:alert(1)")],
        ),
        (
            "/auth-request",
            vec![
                ("X-Original-URL", "https://app.example.test/"),
                ("X-Original-Method", "get me"),
            ],
        ),
    ];
    for (path, headers) in cases {
        let mut req = c.get(app.url(path)).header("Cookie", &cookie);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{path} {headers:?}");
        let body = r.text().await.unwrap();
        assert!(body.contains("X-"), "the body names the header: {body}");
    }
    // Duplicate host headers are ambiguous.
    let r = c
        .get(app.url("/forward-auth"))
        .header("X-Forwarded-Host", "app.example.test")
        .header("X-Forwarded-Host", "grafana.example.test")
        .header("X-Forwarded-Uri", "/")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Non-UTF-8 bytes in a header.
    let r = c
        .get(app.url("/forward-auth"))
        .header(
            "X-Forwarded-Host",
            reqwest::header::HeaderValue::from_bytes(b"app.ex\xffample.test").unwrap(),
        )
        .header("X-Forwarded-Uri", "/")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[actix_web::test]
async fn identity_header_injection_is_refused() {
    let app = spawn_plain("").await;
    let mut evil = identity("alice", &["admins"]);
    evil.name = Some("Alice\r\nX-Remote-User: root".into());
    let cookie = app.cookie_with(&app.keys, evil, 3600);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("x-remote-user").is_none());

    // A group name holding a comma is left out of the comma-joined header (it would read as two groups).
    let mut sneaky = identity("bob", &["admins"]);
    sneaky.groups.push("users,admins".into());
    let cookie = app.cookie_with(&app.keys, sneaky, 3600);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-remote-groups"), Some("admins"));

    // UTF-8 names pass unharmed.
    let mut zoe = identity("zoe", &["admins"]);
    zoe.name = Some("Zoë Ångström".into());
    let cookie = app.cookie_with(&app.keys, zoe, 3600);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-remote-name").unwrap().as_bytes(),
        "Zoë Ångström".as_bytes()
    );
}

#[actix_web::test]
async fn chunked_session_cookies_are_joined() {
    let app = spawn_plain("").await;
    let mut big = identity("alice", &["admins"]);
    big.groups
        .extend((0..200).map(|i| format!("group-with-a-long-name-{i:04}")));
    let now = now();
    let sealed = pocketgate::session::Session {
        identity: big,
        issued: now,
        expires: now + 3600,
    }
    .seal(&app.keys);
    assert!(sealed.len() > pocketgate::session::CHUNK_SIZE);
    let chunks: Vec<String> = sealed
        .as_bytes()
        .chunks(pocketgate::session::CHUNK_SIZE)
        .enumerate()
        .map(|(i, c)| format!("pocketgate_{i}={}", std::str::from_utf8(c).unwrap()))
        .collect();
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &chunks.join("; "))],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-remote-user"), Some("alice"));
}

#[actix_web::test]
async fn metrics_count_decisions() {
    let app = spawn_plain("").await;
    let _ = ask(
        &app,
        Ask::ForwardAuth,
        "lan.example.test",
        "/",
        &[("X-Forwarded-For", "10.1.1.1")],
    )
    .await;
    let _ = ask(&app, Ask::AuthRequest, "app.example.test", "/", &[JSON]).await;
    // nginx passing a client's X-Forwarded-* through: refused, and counted by reason.
    let spoofed = [
        ("X-Forwarded-Host", "lan.example.test"),
        ("X-Forwarded-Uri", "/"),
    ];
    let r = ask(&app, Ask::AuthRequest, "app.example.test", "/", &spoofed).await;
    assert_eq!(r.status(), 400);
    let r = client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        header(&r, "content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("pocketgate_decisions_total{endpoint=\"forward-auth\",host=\"lan.example.test\",outcome=\"bypass\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("pocketgate_decisions_total{endpoint=\"auth-request\",host=\"app.example.test\",outcome=\"login\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("pocketgate_decision_duration_seconds_count 2"),
        "{body}"
    );
    assert!(
        body.contains("pocketgate_bad_requests_total{endpoint=\"auth-request\",reason=\"conflicting_description\"} 1"),
        "{body}"
    );
    // OpenMetrics: the exposition ends with an EOF marker.
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[actix_web::test]
async fn a_stale_cookie_of_the_same_name_does_not_shadow_the_session() {
    let app = spawn_plain("").await;
    let good = app.cookie("alice", &["admins"]);
    let expired = app.cookie_with(&app.keys, identity("alice", &["admins"]), -10);
    let cookie = format!("{expired}; pocketgate=garbage; {good}");
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-remote-user"), Some("alice"));
}

#[actix_web::test]
async fn bypasses_never_open_the_cookie() {
    // A cookie that would deny is irrelevant on a bypass: the session is only opened at step 4.
    let app = spawn_plain("").await;
    let cookie = app.cookie("carol", &[]);
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "open.example.test",
        "/api/x",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "x-remote-user").is_none());
}
