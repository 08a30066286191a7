//! Sessions kept on the server (`session.store = "embedded"`): what a store
//! makes possible that a stateless cookie cannot.

use crate::common::*;
use crate::login::{session_cookie, sign_in};
use pocketgate::session::store::Filter;
use pocketgate::session::EndReason;

const RD: &str = "https://app.example.test/after";

async fn spawn_embedded() -> TestApp {
    spawn(Options {
        idp: true,
        session: "store = \"embedded\"\n".into(),
        ..Options::default()
    })
    .await
}

/// Ask /forward-auth about app.example.test (policy users) with this cookie.
async fn allowed(app: &TestApp, cookie: &str) -> u16 {
    forward_auth_status(app, "app.example.test", cookie).await
}

#[actix_web::test]
async fn the_cookie_holds_only_a_sealed_id_under_200_bytes() {
    let app = spawn_embedded().await;
    let b = browser();
    let r = sign_in(&app, &b, "alice", RD).await;
    assert_eq!(r.status(), 302);
    let cookie = session_cookie(&r).expect("a session cookie");
    assert!(
        !cookie.contains(';'),
        "one cookie, no chunks, no ID-token cookie: {cookie}"
    );
    assert!(cookie.len() < 200, "{} bytes: {cookie}", cookie.len());
    assert_eq!(allowed(&app, &cookie).await, 200);
    // The store holds the session, keyed by a hash of the id: the cookie's
    // value appears nowhere in it, and its tokens are sealed.
    let (list, _) = app.state.sessions.list(&Filter::All, now()).await.unwrap();
    assert_eq!(list.len(), 1);
    let (key, record) = &list[0];
    assert_eq!(record.identity.user, "alice");
    let value = cookie.split_once('=').unwrap().1;
    assert!(!key.as_str().contains(value));
    let id_token = record
        .id_token
        .as_deref()
        .expect("the ID token is kept for logout");
    assert!(!id_token.starts_with("eyJ"), "sealed, not a raw JWT");
}

#[actix_web::test]
async fn logout_ends_the_session_so_a_copied_cookie_stops_working() {
    let app = spawn_embedded().await;
    let b = browser();
    let r = sign_in(&app, &b, "alice", RD).await;
    let copied = session_cookie(&r).unwrap();
    assert_eq!(allowed(&app, &copied).await, 200);
    let r = b.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let end = location(&r);
    assert!(
        end.contains("id_token_hint="),
        "the ID token came back from the store: {end}"
    );
    // The copy still has the exact bytes of the cookie: the server refuses it.
    assert_eq!(
        allowed(&app, &copied).await,
        401,
        "a copied cookie after logout must be refused"
    );
    let r = client()
        .get(app.url("/whoami"))
        .header("Cookie", &copied)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn revoking_a_user_ends_every_session_of_theirs_and_no_other() {
    let app = spawn_embedded().await;
    let (a1, a2, c) = (browser(), browser(), browser());
    let alice1 = session_cookie(&sign_in(&app, &a1, "alice", RD).await).unwrap();
    let alice2 = session_cookie(&sign_in(&app, &a2, "alice", RD).await).unwrap();
    let bob = session_cookie(&sign_in(&app, &c, "bob", RD).await).unwrap();
    let ended = app
        .state
        .sessions
        .revoke(&Filter::User("alice".into()), EndReason::Revoke)
        .await
        .unwrap();
    assert_eq!(ended, 2);
    assert_eq!(allowed(&app, &alice1).await, 401);
    assert_eq!(allowed(&app, &alice2).await, 401);
    assert_eq!(allowed(&app, &bob).await, 200);
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_sessions_ended_total{reason=\"revoke\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pocketgate_sessions_created_total 3"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn sessions_survive_a_restart_of_pocketgate() {
    let dir = tempfile::tempdir().unwrap();
    let session = format!(
        "store = \"embedded\"\nstate_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let first = spawn(Options {
        idp: true,
        session: session.clone(),
        ..Options::default()
    })
    .await;
    let b = browser();
    let cookie = session_cookie(&sign_in(&first, &b, "alice", RD).await).unwrap();
    assert_eq!(allowed(&first, &cookie).await, 200);
    drop(first);
    // A new process on the same state_dir: same secret, same store file.
    let second = spawn(Options {
        session,
        ..Options::default()
    })
    .await;
    assert_eq!(allowed(&second, &cookie).await, 200);
    let r = client()
        .get(second.url("/whoami"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("\"user\":\"alice\""));
}

#[actix_web::test]
async fn a_broken_store_is_a_503_never_a_login_loop_nor_an_allow() {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\n".into(),
        top: "support_contact = \"Ask the ops team: ops@example.test\"\n".into(),
        ..Options::default()
    })
    .await;
    let b = browser();
    let cookie = session_cookie(&sign_in(&app, &b, "alice", RD).await).unwrap();
    // Break the database under the running service (as a full or damaged disk would).
    let file = app
        .state_dir
        .as_ref()
        .unwrap()
        .path()
        .join("sessions.sqlite3");
    assert!(drop_sessions_table(&file), "could not break the store");

    // Wait out the cache, then the signed-in request needs the store.
    tokio::time::sleep(pocketgate::session::CACHE_TTL + std::time::Duration::from_millis(300))
        .await;
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &cookie), ("Accept", "text/html")],
    )
    .await;
    assert_eq!(r.status(), 503, "{:?}", r.headers().get("location"));
    assert!(
        r.headers().get("location").is_none(),
        "never a redirect to login"
    );
    // The person is told whom to ask, as on every other page.
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Ask the ops team: ops@example.test"),
        "{page}"
    );
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("session store"));
    // Bypasses and trusted networks do not need the store.
    let r = ask(&app, Ask::ForwardAuth, "open.example.test", "/api/x", &[]).await;
    assert_eq!(r.status(), 200);
    let r = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("session store"));
}

/// Drop the sessions table through a second connection to the file.
fn drop_sessions_table(file: &std::path::Path) -> bool {
    std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE sessions'); c.commit()")
        .arg(file)
        .status()
        .is_ok_and(|s| s.success())
}

/// Signed in as `user` with `refresh_interval = "5s"`: the app and the cookie.
async fn signed_in_with_refresh(user: &str) -> (TestApp, String) {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\nrefresh_interval = \"5s\"\n".into(),
        ..Options::default()
    })
    .await;
    let b = browser();
    let cookie = session_cookie(&sign_in(&app, &b, user, RD).await).unwrap();
    (app, cookie)
}

/// Ask grafana.example.test (policy admins) every 250 ms until the answer is
/// `want` or `within` passes; the last status.
async fn grafana_until(app: &TestApp, cookie: &str, want: u16, within: std::time::Duration) -> u16 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let status = ask(
            app,
            Ask::ForwardAuth,
            "grafana.example.test",
            "/",
            &[("Cookie", cookie)],
        )
        .await
        .status()
        .as_u16();
        if status == want || std::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[actix_web::test]
async fn a_group_removed_at_the_provider_denies_after_the_next_refresh() {
    let (app, cookie) = signed_in_with_refresh("alice").await;
    assert_eq!(
        grafana_until(&app, &cookie, 200, std::time::Duration::ZERO).await,
        200
    );
    let record = &app
        .state
        .sessions
        .list(&Filter::All, now())
        .await
        .unwrap()
        .0[0]
        .1;
    let first_token = record
        .refresh_token
        .clone()
        .expect("offline_access gave a refresh token");
    app.idp
        .as_ref()
        .unwrap()
        .set_groups("alice", ["users"])
        .unwrap();
    // Within refresh_interval plus a request or two, admins access is gone.
    let status = grafana_until(&app, &cookie, 403, std::time::Duration::from_secs(12)).await;
    assert_eq!(status, 403, "the removed group still admits alice");
    // Still signed in (users may use app.example.test), with a rotated refresh token.
    assert_eq!(allowed(&app, &cookie).await, 200);
    let record = &app
        .state
        .sessions
        .list(&Filter::All, now())
        .await
        .unwrap()
        .0[0]
        .1;
    assert_eq!(record.identity.groups, vec!["users"]);
    assert_ne!(
        record.refresh_token.as_ref(),
        Some(&first_token),
        "the rotated token is kept"
    );
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_session_refreshes_total{outcome=\"changed\"} 1"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_disabled_user_is_signed_out_at_the_next_refresh() {
    let (app, cookie) = signed_in_with_refresh("alice").await;
    app.idp.as_ref().unwrap().disable_user("alice").unwrap();
    signed_out_at_the_next_refresh(&app, &cookie).await;
}

/// Pocket ID 2.9 refuses the refresh of a disabled user with
/// `400 {"error":"Refresh token is invalid or expired"}` (seen by the live
/// suite), not `invalid_grant`: the token endpoint's refusal still ends the
/// session, never leaves it alive as if the provider were down.
#[actix_web::test]
async fn a_refresh_refused_with_a_message_instead_of_invalid_grant_signs_out() {
    let (app, cookie) = signed_in_with_refresh("alice").await;
    let idp = app.idp.as_ref().unwrap();
    idp.set_fault(Some(dev_idp::Fault::RefreshRefusedWithMessage));
    idp.disable_user("alice").unwrap();
    signed_out_at_the_next_refresh(&app, &cookie).await;
}

async fn signed_out_at_the_next_refresh(app: &TestApp, cookie: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(12);
    let mut status = 200;
    while status == 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        status = allowed(app, cookie).await;
    }
    assert_eq!(
        status, 401,
        "the refused refresh ends the session: the next request must sign in"
    );
    assert!(app
        .state
        .sessions
        .list(&Filter::All, now())
        .await
        .unwrap()
        .0
        .is_empty());
    let metrics = metrics_text(app).await;
    assert!(
        metrics.contains("pocketgate_sessions_ended_total{reason=\"refresh_invalid\"} 1"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_provider_outage_logs_nobody_out() {
    let (app, cookie) = signed_in_with_refresh("alice").await;
    app.idp
        .as_ref()
        .unwrap()
        .set_fault(Some(dev_idp::Fault::Unavailable));
    // Two refresh intervals of requests against a provider that answers 503.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(11);
    while std::time::Instant::now() < deadline {
        assert_eq!(
            allowed(&app, &cookie).await,
            200,
            "an outage must not end the session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let metrics = metrics_text(&app).await;
    assert!(
        !metrics.contains("pocketgate_session_refreshes_total{outcome=\"unavailable\"} 0"),
        "{metrics}"
    );
    // The provider is back: the next due refresh succeeds and the session lives on.
    app.idp.as_ref().unwrap().set_fault(None);
    assert_eq!(allowed(&app, &cookie).await, 200);
}

#[actix_web::test]
async fn back_channel_logout_ends_that_provider_session_and_no_other() {
    let app = spawn_embedded().await;
    let idp = app.idp.as_ref().unwrap();
    let (a1, a2, b) = (browser(), browser(), browser());
    let alice1 = session_cookie(&sign_in(&app, &a1, "alice", RD).await).unwrap();
    let sid1 = idp
        .sessions("alice")
        .last()
        .cloned()
        .expect("a provider session");
    let alice2 = session_cookie(&sign_in(&app, &a2, "alice", RD).await).unwrap();
    let bob = session_cookie(&sign_in(&app, &b, "bob", RD).await).unwrap();
    let statuses = idp
        .backchannel_logout(dev_idp::LogoutTarget::Session(&sid1))
        .await
        .unwrap();
    assert_eq!(statuses, vec![200]);
    assert_eq!(
        allowed(&app, &alice1).await,
        401,
        "that provider session ended here too"
    );
    assert_eq!(
        allowed(&app, &alice2).await,
        200,
        "another browser's session lives"
    );
    assert_eq!(allowed(&app, &bob).await, 200);
    // By user: every remaining provider session of alice.
    let statuses = idp
        .backchannel_logout(dev_idp::LogoutTarget::User("alice"))
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(allowed(&app, &alice2).await, 401);
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_sessions_ended_total{reason=\"back_channel\"} 2"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn every_broken_logout_token_is_a_400_and_ends_nothing() {
    use dev_idp::{LogoutTokenFlaw as F, LogoutTokenOptions};
    let app = spawn_embedded().await;
    let idp = app.idp.as_ref().unwrap();
    let b = browser();
    let cookie = session_cookie(&sign_in(&app, &b, "alice", RD).await).unwrap();
    let sid = idp.sessions("alice").last().cloned().unwrap();
    for flaw in [
        F::WrongSignature,
        F::AlgNone,
        F::Hs256WithPublicKey,
        F::MissingEvents,
        F::WithNonce,
        F::Expired,
        F::WrongIssuer,
        F::WrongAudience,
    ] {
        let token = idp
            .logout_token(&LogoutTokenOptions {
                flaw: Some(flaw),
                ..LogoutTokenOptions::new("alice", &sid)
            })
            .await
            .unwrap();
        assert_eq!(
            idp.send_logout_token(&token).await.unwrap(),
            400,
            "{flaw:?}"
        );
        assert_eq!(
            allowed(&app, &cookie).await,
            200,
            "{flaw:?} ended the session"
        );
    }
    // Garbage, an empty form, an oversized body.
    let post = |body: String| {
        client()
            .post(app.url("/backchannel-logout"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    for body in [
        "logout_token=not.a.jwt".to_string(),
        String::new(),
        format!("logout_token={}", "A".repeat(40_000)),
    ] {
        let r = post(body).send().await.unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            (r.status() == 400).then_some("no-store")
        );
    }
    assert_eq!(allowed(&app, &cookie).await, 200);
    // A valid token works once; its replay is refused.
    let token = idp
        .logout_token(&LogoutTokenOptions {
            jti: Some("replayed-jti".into()),
            ..LogoutTokenOptions::new("alice", &sid)
        })
        .await
        .unwrap();
    assert_eq!(idp.send_logout_token(&token).await.unwrap(), 200);
    assert_eq!(allowed(&app, &cookie).await, 401);
    assert_eq!(
        idp.send_logout_token(&token).await.unwrap(),
        400,
        "a replayed jti"
    );
}

/// After pocketgate's own /logout the provider sends a logout token for the
/// sid just ended: that must not end the user's sessions in other browsers.
#[actix_web::test]
async fn a_logout_token_for_an_unknown_sid_ends_nothing_else() {
    let app = spawn_embedded().await;
    let idp = app.idp.as_ref().unwrap();
    let cookie = session_cookie(&sign_in(&app, &browser(), "alice", RD).await).unwrap();
    let token = idp
        .logout_token(&dev_idp::LogoutTokenOptions::new(
            "alice",
            "a-sid-that-ended-already",
        ))
        .await
        .unwrap();
    assert_eq!(idp.send_logout_token(&token).await.unwrap(), 200);
    assert_eq!(
        allowed(&app, &cookie).await,
        200,
        "another browser's session must live"
    );
}

#[actix_web::test]
async fn a_token_endpoint_that_hangs_logs_nobody_out() {
    let (app, cookie) = signed_in_with_refresh("alice").await;
    app.idp
        .as_ref()
        .unwrap()
        .set_fault(Some(dev_idp::Fault::TokenHangs));
    // The refresh waits for the provider in the background (its 10 s timeout);
    // requests keep their answer meanwhile and after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(17);
    while std::time::Instant::now() < deadline {
        assert_eq!(
            allowed(&app, &cookie).await,
            200,
            "a hanging provider must not end the session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_session_refreshes_total{outcome=\"unavailable\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pocketgate_session_refreshes_total{outcome=\"invalid\"} 0"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------
// Records in the store are sealed: nothing in it can be edited into access
// ---------------------------------------------------------------------------

/// Run one SQL statement (with text parameters) on the embedded store's file
/// through a second connection, as someone with write access to it would;
/// it must change something.
fn sql(app: &TestApp, statement: &str, params: &[&str]) {
    let file = app
        .state_dir
        .as_ref()
        .unwrap()
        .path()
        .join("sessions.sqlite3");
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); n=c.execute(sys.argv[2], sys.argv[3:]).rowcount; c.commit(); sys.exit(0 if n != 0 else 3)")
        .arg(file)
        .arg(statement)
        .args(params)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not run {statement} on the store");
}

#[actix_web::test]
async fn an_edited_record_grants_no_group() {
    let app = spawn_embedded().await;
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        403
    );
    // bob writes himself into admins in the store.
    sql(
        &app,
        "UPDATE sessions SET record = ?1 WHERE user = 'bob'",
        &[&forged_record("bob", &["admins", "users"])],
    );
    wait_out_the_cache().await;
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        401,
        "an edited record is no session: login again"
    );
    assert_eq!(allowed(&app, &bob).await, 401);
    assert_eq!(
        records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1"
    );
}

#[actix_web::test]
async fn a_record_copied_under_another_key_does_not_make_that_session_its_user() {
    let app = spawn_embedded().await;
    let alice = session_cookie(&sign_in(&app, &browser(), "alice", RD).await).unwrap();
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    sql(
        &app,
        "UPDATE sessions SET record = (SELECT record FROM sessions WHERE user = 'alice') WHERE user = 'bob'",
        &[],
    );
    wait_out_the_cache().await;
    let r = client()
        .get(app.url("/whoami"))
        .header("Cookie", &bob)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 401, "bob's cookie became: {body}");
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        401
    );
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &alice).await,
        200,
        "the original stays alice's"
    );
    assert_eq!(
        records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1"
    );
}

#[actix_web::test]
async fn a_garbage_record_is_a_login_never_a_5xx_and_counted_once() {
    let app = spawn_embedded().await;
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    sql(
        &app,
        "UPDATE sessions SET record = 'garbage{' WHERE user = 'bob'",
        &[],
    );
    wait_out_the_cache().await;
    let r = ask(
        &app,
        Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &bob), ("Accept", "text/html")],
    )
    .await;
    assert_eq!(r.status(), 302, "a browser goes to login");
    for _ in 0..3 {
        assert_eq!(allowed(&app, &bob).await, 401, "an API client gets 401");
    }
    assert_eq!(
        records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1",
        "counted (and logged) once, not per request"
    );
}

#[actix_web::test]
async fn a_back_channel_logout_the_store_failed_is_done_by_the_providers_retry() {
    use dev_idp::LogoutTokenOptions;
    let app = spawn_embedded().await;
    let idp = app.idp.as_ref().unwrap();
    let cookie = session_cookie(&sign_in(&app, &browser(), "alice", RD).await).unwrap();
    let sid = idp.sessions("alice").last().cloned().unwrap();
    let token = idp
        .logout_token(&LogoutTokenOptions {
            jti: Some("retried-jti".into()),
            ..LogoutTokenOptions::new("alice", &sid)
        })
        .await
        .unwrap();
    // The sessions cannot be ended now (their table is out of reach).
    sql(&app, "ALTER TABLE sessions RENAME TO sessions_away", &[]);
    assert_eq!(
        idp.send_logout_token(&token).await.unwrap(),
        503,
        "the provider is told to try again"
    );
    sql(&app, "ALTER TABLE sessions_away RENAME TO sessions", &[]);
    assert_eq!(
        idp.send_logout_token(&token).await.unwrap(),
        200,
        "the retry of the same token is no replay: its effect did not happen"
    );
    assert_eq!(allowed(&app, &cookie).await, 401, "the session ended");
    assert_eq!(
        idp.send_logout_token(&token).await.unwrap(),
        400,
        "once done, the token is spent"
    );
}

/// `pocketgate sessions list` shows the browser's address, not the proxy's.
#[actix_web::test]
async fn a_session_started_through_a_trusted_proxy_lists_the_forwarded_client() {
    let app = spawn_embedded().await;
    let b = browser();
    let cb = crate::login::to_callback(&app, &b, "alice", RD).await;
    // The test client's address, 127.0.0.1, is in trusted_proxies.
    let r = b
        .get(cb)
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let (list, _) = app.state.sessions.list(&Filter::All, now()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1.client.as_deref(), Some("203.0.113.7"));
    let shown = pocketgate::cli::sessions_text(&list, true);
    assert!(shown.contains("\"client\":\"203.0.113.7\""), "{shown}");
}
