//! `pocketgate demo`: a demo page shows what a backend behind the proxy
//! really receives, from the same gate as `/forward-auth`: the host's own
//! header names, and the signed assertion when `--assertion` is on.
#![cfg(feature = "demo")]

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use pocketgate::demo::{self, DemoArgs};
use serde_json::Value;

use crate::common::{browser, location};

/// A demo on free ports with stateless cookies (nothing shared between tests).
fn args(assertion: bool) -> DemoArgs {
    DemoArgs {
        port: 0,
        idp_port: 0,
        store: "cookie".into(),
        redis_url: String::new(),
        assertion,
    }
}

/// Start a demo, sign `user` in on the way to `page` (`/demo/host/path`),
/// and return the demo's origin and the page.
async fn signed_in_page(args: &DemoArgs, user: &str, page: &str) -> (String, String) {
    let demo = demo::start_from(args, false).await.unwrap();
    let base = format!("http://{}", demo.app.addr());
    actix_web::rt::spawn(demo.app.run());
    let b = browser();
    let r = b.get(format!("{base}{page}")).send().await.unwrap();
    assert_eq!(r.status(), 302, "not signed in yet: to /login");
    let r = b
        .get(format!("{base}{}", location(&r)))
        .send()
        .await
        .unwrap();
    let approve = demo.idp.approve_url(&location(&r), user).unwrap();
    let r = b.get(approve).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(location(&r), format!("{base}{page}"));
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    (base, r.text().await.unwrap())
}

/// The value the page shows for header `name`.
fn shown(page: &str, name: &str) -> Option<String> {
    let cell = format!("<code>{name}</code></td><td><code>");
    let start = page.find(&cell)? + cell.len();
    let len = page[start..].find("</code>")?;
    Some(page[start..start + len].to_string())
}

#[actix_web::test]
async fn a_host_with_its_own_header_names_shows_those_names() {
    let (_, page) = signed_in_page(&args(false), "alice", "/demo/grafana.demo.test/").await;
    assert_eq!(
        shown(&page, "x-webauth-user").as_deref(),
        Some("alice"),
        "{page}"
    );
    assert_eq!(shown(&page, "x-remote-user"), None, "{page}");
    // The rest of the names stay `[headers]`'s.
    assert_eq!(
        shown(&page, "x-remote-groups").as_deref(),
        Some("admins,users")
    );
    assert_eq!(
        shown(&page, "x-pocketgate-assertion"),
        None,
        "off by default"
    );
}

#[actix_web::test]
async fn with_assertion_the_page_shows_an_assertion_that_verifies() {
    let (base, page) = signed_in_page(&args(true), "alice", "/demo/app.demo.test/").await;
    let token = shown(&page, "x-pocketgate-assertion").unwrap_or_else(|| panic!("{page}"));
    let set: JwkSet = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = decode_header(&token).unwrap().kid.unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    // The demo stands in for a proxy serving the app over https.
    v.set_audience(&["https://app.demo.test"]);
    v.set_issuer(&[base.as_str()]);
    let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
    let claims = decode::<Value>(&token, &key, &v).unwrap().claims;
    assert_eq!(claims["preferred_username"], "alice");
}

#[actix_web::test]
async fn the_demo_pages_are_counted_like_forward_auth() {
    let (base, _) = signed_in_page(&args(false), "alice", "/demo/app.demo.test/").await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["login", "allow"] {
        let line = format!(
            "pocketgate_decisions_total{{endpoint=\"forward-auth\",host=\"app.demo.test\",outcome=\"{outcome}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

#[actix_web::test]
async fn sessions_list_works_against_a_running_demo_with_its_printed_config() {
    let args = DemoArgs {
        store: "embedded".into(),
        ..args(false)
    };
    let demo = demo::start_from(&args, false).await.unwrap();
    let base = format!("http://{}", demo.app.addr());
    let config = demo.config.clone();
    assert!(config.starts_with(&demo.state_dir), "{}", config.display());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "it holds the demo's secrets");
    let idp = demo.idp;
    actix_web::rt::spawn(demo.app.run());
    let b = browser();
    let r = b
        .get(format!("{base}/demo/app.demo.test/"))
        .send()
        .await
        .unwrap();
    let r = b
        .get(format!("{base}{}", location(&r)))
        .send()
        .await
        .unwrap();
    let r = b
        .get(idp.approve_url(&location(&r), "bob").unwrap())
        .send()
        .await
        .unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 302, "signed in");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["sessions", "list", "-c"])
        .arg(&config)
        .env_remove("POCKETGATE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("bob"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_with_a_configuration_file_is_refused_with_the_command_to_use() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["demo", "-c", "mine.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not read -c") && stderr.contains("pocketgate serve -c FILE"),
        "{stderr}"
    );
}

/// The demo's state directory (its configuration, the embedded store)
/// goes when the demo does, even when it never ran.
#[actix_web::test]
async fn the_demo_removes_its_state_directory_when_dropped() {
    let demo = demo::start_from(&args(false), false).await.unwrap();
    let dir = demo.state_dir.clone();
    assert!(
        dir.join("pocketgate-demo.toml").is_file(),
        "{}",
        dir.display()
    );
    drop(demo);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}
