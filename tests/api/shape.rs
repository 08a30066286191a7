//! The session's shape through `/forward-auth`: the configuration's
//! `[session] idle_timeout` and a host's `lifetime` reach every request.
//! The store-level scenarios (with a clock given per call) are in
//! tests/shape/; this one test proves the wiring, so it waits for real
//! seconds (bounded: about 7 s).

use std::time::Duration;

use crate::common::*;
use crate::login::{session_cookie, sign_in};

#[actix_web::test]
async fn an_idle_session_ends_and_a_host_lifetime_holds_for_that_host_only() {
    let app = spawn(Options {
        idp: true,
        session: "store = \"embedded\"\nidle_timeout = \"4s\"\n".into(),
        policies: Some(format!(
            "{POLICIES}\n[[hosts]]\nhost = \"short.example.test\"\npolicy = \"users\"\nlifetime = \"1s\"\n"
        )),
        ..Options::default()
    })
    .await;
    let b = browser();
    let r = sign_in(&app, &b, "alice", "https://app.example.test/").await;
    let cookie = session_cookie(&r).expect("a session cookie");
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &cookie).await,
        200
    );
    assert_eq!(
        forward_auth_status(&app, "short.example.test", &cookie).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        forward_auth_status(&app, "short.example.test", &cookie).await,
        401,
        "older than short.example.test's lifetime"
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &cookie).await,
        200,
        "within the session's own limits"
    );
    tokio::time::sleep(Duration::from_millis(5200)).await;
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &cookie).await,
        401,
        "unused for longer than idle_timeout"
    );
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("pocketgate_sessions_ended_total{reason=\"idle\"} 1"),
        "{metrics}"
    );
}
