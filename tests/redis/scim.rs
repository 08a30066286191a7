//! SCIM with two pocketgates on one Redis: the directory is shared, a user
//! made inactive on one replica loses every session on the other within
//! 5 s, and a group change there decides within 5 s too.

use std::time::{Duration, Instant};

use serde_json::json;

use super::common::scim::*;
use super::{common, sign_in, status, Server};

/// Ask `app` about `host` with `cookie` until it answers `want`, at most 5 s.
async fn within_5s(app: &common::TestApp, host: &str, cookie: &str, want: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(app, host, cookie).await;
        if s == want || Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn two_replicas_share_the_directory_and_its_effects() {
    let Some(redis) = Server::start() else {
        return;
    };
    let session = format!("store = \"redis\"\nredis_url = {:?}\n", redis.url());
    let (one, _t1) = spawn_scim(&session, None).await;
    let issuer = one.idp.as_ref().unwrap().issuer().to_string();
    let (two, _t2) = spawn_scim(&session, Some(issuer)).await;
    let alice = sign_in(&one, "alice").await;
    let bob = sign_in(&one, "bob").await;
    assert_eq!(status(&two, "app.example.test", &alice).await, 200);
    assert_eq!(status(&two, "grafana.example.test", &bob).await, 403);

    // Created on one, found on the other.
    let alice_id = create_user(&one, "alice", Some(&subject_of("alice"))).await;
    let (s, v, _) = call(&two, "GET", &format!("/Users/{alice_id}"), None).await;
    assert_eq!((s, v["userName"].clone()), (200, json!("alice")));
    let bob_id = create_user(&two, "bob", Some(&subject_of("bob"))).await;

    // bob added to admins on two: one decides with it within 5 s.
    create_group(&two, "admins", &[&bob_id]).await;
    assert_eq!(
        status(&two, "grafana.example.test", &bob).await,
        200,
        "at once where the call landed"
    );
    assert_eq!(
        within_5s(&one, "grafana.example.test", &bob, 200).await,
        200,
        "the other replica within 5 s"
    );

    // alice disabled on two: her session ends on one within 5 s.
    let started = Instant::now();
    let (s, _, _) = call(
        &two,
        "PUT",
        &format!("/Users/{alice_id}"),
        Some(pocket_id_user("alice", Some(&subject_of("alice")), false)),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        status(&two, "app.example.test", &alice).await,
        401,
        "at once where the call landed"
    );
    assert_eq!(
        within_5s(&one, "app.example.test", &alice, 401).await,
        401,
        "the other replica within 5 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        status(&one, "app.example.test", &bob).await,
        200,
        "bob keeps his"
    );
}
