//! The audit trail of a scripted session, read back from the audit file:
//! a sign-in, a deny, a step-up, a failed sign-in, a logout, a SCIM
//! deprovisioning, a second sign-in ended by `pocketgate sessions revoke`,
//! and a reload of a broken file. The events
//! come in that order with exactly their fields, and no token, cookie or
//! secret appears anywhere in the trail.
//!
//! Its own test binary: the audit layer is part of the process's one
//! global subscriber, which this test installs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use pocketgate::config::{LogFilter, LogFormat, LogSettings};
use pocketgate::reload::Reloader;
use serde_json::Value;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every `Set-Cookie` value a response carries (names and values).
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect()
}

/// /login → the provider's approval as `user` → /callback: the callback
/// URL (which holds the code) and the callback's answer.
async fn sign_in(app: &TestApp, b: &reqwest::Client, user: &str) -> (String, reqwest::Response) {
    let r = b
        .get(app.url(&format!("/login?rd={}", enc("https://app.example.test/"))))
        .send()
        .await
        .unwrap();
    let idp = app.idp.as_ref().unwrap();
    let approve = idp.approve_url(&location(&r), user).unwrap();
    let r = b.get(approve).send().await.unwrap();
    let callback = location(&r);
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 302, "signed in as {user}");
    (callback, r)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[actix_web::test]
async fn a_scripted_session_leaves_exactly_its_events_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.jsonl");
    pocketgate::telemetry::init(&LogSettings {
        format: LogFormat::Text,
        filter: LogFilter::parse("warn").unwrap(),
        audit_file: Some(trail.clone()),
    })
    .unwrap();
    let token = dir.path().join("scim-token");
    std::fs::write(&token, format!("{}\n", scim::TOKEN)).unwrap();
    // wiki.example.test asks for a sign-in method nobody has: a step-up.
    let policies = format!(
        "{POLICIES}\n[[hosts]]\nhost = \"wiki.example.test\"\npolicy = \"users\"\namr = [\"hwk\"]\n\n[scim]\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\n".into(),
        policies: Some(policies),
        ..Options::default()
    })
    .await;
    let mut secrets: Vec<String> = vec![SECRET.into(), "client-secret".into(), scim::TOKEN.into()];

    // bob signs in, and is denied Grafana (admins only).
    let b = browser();
    let (callback, r) = sign_in(&app, &b, "bob").await;
    secrets.push(callback);
    let bob_cookies = set_cookies(&r);
    secrets.extend(bob_cookies.iter().cloned());
    let bob_cookie = bob_cookies
        .iter()
        .find(|c| c.starts_with("pocketgate="))
        .unwrap()
        .clone();
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "grafana.example.test",
        "/d/home?orgId=1",
        &[("Cookie", &bob_cookie), ("X-Request-Id", "proxy-req-7")],
    )
    .await;
    assert_eq!(r.status(), 403);
    // An allow leaves nothing.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &bob_cookie)],
    )
    .await;
    assert_eq!(r.status(), 200);
    // The wiki asks bob for a sign-in he cannot have made.
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "wiki.example.test",
        "/",
        &[("Cookie", &bob_cookie), ("Accept", "text/html")],
    )
    .await;
    assert_eq!(r.status(), 302);

    // A callback this browser never started.
    let r = browser()
        .get(app.url("/callback?code=stolen-code&state=forged-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    secrets.push("stolen-code".into());

    // bob signs out.
    let r = b.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    secrets.push(location(&r));

    // Pocket ID's SCIM sync makes bob inactive.
    let bob_subject = scim::subject_of("bob");
    let id = scim::create_user(&app, "bob", Some(&bob_subject)).await;
    let (s, _, _) = scim::call(
        &app,
        "PUT",
        &format!("/Users/{id}"),
        Some(scim::pocket_id_user("bob", Some(&bob_subject), false)),
    )
    .await;
    assert_eq!(s, 200);

    // alice signs in; the command line ends her session.
    let a = browser();
    let (callback, r) = sign_in(&app, &a, "alice").await;
    secrets.push(callback);
    secrets.extend(set_cookies(&r));
    let config = dir.path().join("pocketgate.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[audit]\nfile = {:?}\n",
            app.toml,
            trail.display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["--config", &config.display().to_string()])
        .args(["sessions", "revoke", "--user", "alice"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A reload of a broken file leaves the running configuration.
    std::fs::write(
        &config,
        format!(
            "{}\n[[hosts]]\nhost = \"x.test\"\npolicy = \"nobody\"\n",
            app.toml
        ),
    )
    .unwrap();
    let mut reloader = Reloader::new(&config, app.live.clone(), None);
    assert!(reloader.reload().await.is_err());

    let trail_text = std::fs::read_to_string(&trail).unwrap();
    let got = records(&trail);
    let events: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|r| (r["event"].as_str().unwrap(), r["user"].as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("login", Some("bob")),
            ("deny", Some("bob")),
            ("step_up", Some("bob")),
            ("login_failed", None),
            ("logout", Some("bob")),
            ("scim_deprovision", Some("bob")),
            ("login", Some("alice")),
            ("revoke", Some("alice")),
            ("config_reload", None),
        ],
        "{trail_text}"
    );
    for r in &got {
        assert_eq!(r["audit"], "pocketgate/1");
        assert_eq!(r["schema"], 1);
        let time = r["time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
            "{time}"
        );
    }
    let (login, deny, step_up, failed, logout, scim_off) =
        (&got[0], &got[1], &got[2], &got[3], &got[4], &got[5]);
    let (alice, revoke, reload) = (&got[6], &got[7], &got[8]);
    let bob_session = login["session"].as_str().unwrap();
    assert_eq!(bob_session.len(), 16);
    let bob = dev_idp::default_users()
        .into_iter()
        .find(|u| u.username == "bob")
        .unwrap();
    assert_eq!(login["subject"], bob.subject());
    assert_eq!(deny["subject"], bob.subject());
    assert_eq!(logout["subject"], bob.subject());
    assert_eq!(login["client"], "127.0.0.1");
    // The fields in the documented order, as written.
    let deny_line = trail_text
        .lines()
        .find(|l| l.contains(r#""event":"deny""#))
        .unwrap();
    let order: Vec<usize> = [
        "audit",
        "schema",
        "time",
        "event",
        "host",
        "path",
        "rule",
        "reason",
        "request_id",
        "client",
        "user",
        "subject",
        "session",
    ]
    .iter()
    .map(|k| deny_line.find(&format!("\"{k}\":")).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{deny_line}");
    assert_eq!(deny.as_object().unwrap().len(), order.len(), "{deny_line}");
    assert_eq!(deny["host"], "grafana.example.test");
    assert_eq!(deny["path"], "/d/home");
    assert_eq!(deny["rule"], "policies.admins.allowed_groups");
    assert!(
        deny["reason"].as_str().unwrap().contains("admins"),
        "{deny}"
    );
    assert_eq!(deny["request_id"], "proxy-req-7", "the trusted proxy's id");
    assert_eq!(deny["session"], bob_session);
    assert_eq!(step_up["host"], "wiki.example.test");
    assert_eq!(step_up["session"], bob_session);
    assert!(
        step_up["reason"].as_str().unwrap().contains("hwk"),
        "{step_up}"
    );
    assert_eq!(scim_off["subject"], bob.subject());
    assert_eq!(scim_off["sessions"], 0, "bob had signed out");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("sign-in failed"),
        "{failed}"
    );
    assert!(failed["session"].is_null());
    assert_eq!(logout["session"], bob_session);
    assert_ne!(
        login["request_id"], logout["request_id"],
        "a request without X-Request-Id gets its own"
    );
    let alice_session = alice["session"].as_str().unwrap();
    assert_ne!(alice_session, bob_session);
    assert_eq!(revoke["by"], "cli");
    assert_eq!(revoke["sessions"], 1);
    assert_eq!(revoke["session"], alice_session);
    assert!(revoke["request_id"].is_null() && revoke["client"].is_null());
    assert_eq!(reload["result"], "error");
    assert!(
        reload["error"].as_str().unwrap().contains("nobody"),
        "{reload}"
    );

    // No cookie value, code, token or secret: each would be at least 20 characters.
    for secret in &secrets {
        for part in secret.split(['=', '&', '?', ';']).filter(|p| p.len() >= 20) {
            assert!(
                !trail_text.contains(part),
                "{part:?} is in the audit trail:\n{trail_text}"
            );
        }
    }
}
