//! The whole `/forward-auth` and `/auth-request` handler, as the proxy calls
//! it: actix routing, reconstruction of the original request from Caddy's or
//! nginx's headers, cookie parsing of a real-sized `Cookie` header (the
//! session among other applications' cookies), opening the session, the
//! decision and the identity headers of the answer. No network: the service
//! is called in-process, so this is pocketgate's own cost per request.
//!
//! Run: `cargo bench --bench handler`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "bench code: a panic is a failed run"
)]

mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{test, web, App};
use criterion::{criterion_group, criterion_main, Criterion};
use pocketgate::config::load_str;
use pocketgate::http::{routes, AppState, LiveState};
use pocketgate::oidc::Provider;
use pocketgate::session::{Session, SessionKeys};
use support::{alice, now, SECRET};

/// A client on the internet, and one in the monitoring network the bypass admits.
const OUTSIDE: &str = "203.0.113.7";
const MONITORING: &str = "10.50.1.2";

const CONFIG: &str = r#"
public_url = "https://auth.example.com"
[oidc]
issuer = "https://id.example.com"
client_id = "pg"
client_auth = "none"
[session]
cookie_domain = "example.com"
store = "cookie"
[policies.admins]
allowed_groups = ["admins"]
[policies.users]
allowed_groups = ["admins", "users"]
[[hosts]]
host = "grafana.example.com"
policy = "admins"
bypass_paths = ["/api/health"]
bypass_resources = ["^/api/v[0-9]+/status$"]
allowed_networks = ["10.50.0.0/16"]
claim_roles = [{ claim = "groups", value = "grafana-admins", role = "admins" }]
"#;

/// A session as Pocket ID's claims make it: UUID subject, name, e-mail, a few groups.
fn sealed_session(keys: &SessionKeys) -> String {
    let now = now();
    Session {
        identity: alice(),
        issued: now,
        expires: now + 12 * 3600,
    }
    .seal(keys)
}

/// `CONFIG` with `n` `[[hosts.rules]]` on the Grafana host (`BENCH_RULES=20`),
/// to compare the signed-in handler with and without rules in force. One rule
/// shares the benchmarked path's first segment, so the index is exercised.
fn config_with_rules(n: usize) -> String {
    let mut config = CONFIG.to_string();
    for j in 0..n {
        let rule = match j % 4 {
            0 => format!("paths = [\"/d/admin{j}\"]\npolicy = \"admins\""),
            1 => format!("resources = [\"^/api/v[0-9]+/admin{j}\"]\naction = \"deny\""),
            2 => format!("paths = [\"/api{j}\"]\nmethods = [\"DELETE\"]\nnetworks = [\"10.0.0.0/8\"]\npolicy = \"admins\""),
            _ => format!("paths = [\"/public{j}\"]\naction = \"bypass\""),
        };
        config.push_str(&format!("[[hosts.rules]]\n{rule}\n"));
    }
    config
}

fn bench(c: &mut Criterion) {
    let env = |k: &str| (k == "POCKETGATE_SESSION__SECRET").then(|| SECRET.to_string());
    let rules: usize = std::env::var("BENCH_RULES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    println!("[[hosts.rules]] on the benchmarked host: {rules} (BENCH_RULES)");
    let runtime = Arc::new(load_str(&config_with_rules(rules), &env).unwrap().value);
    let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()).unwrap();
    let state = AppState::new(runtime.clone(), provider, None).unwrap();
    let session = sealed_session(&state.keys);
    // What a browser sends to grafana.example.com: the app's own cookies around ours.
    let cookie = format!(
        "grafana_session=4f2d1b0e8c7a6b5d4e3f2a1b0c9d8e7f; grafana_session_expiry=1732350000; \
         _ga=GA1.1.1234567890.1732300000; pocketgate={session}; theme=dark"
    );
    println!(
        "session cookie: {} bytes; Cookie header: {} bytes",
        session.len(),
        cookie.len()
    );

    let rt = actix_web::rt::System::new();
    let app = rt.block_on(test::init_service(
        App::new()
            .app_data(web::Data::new(LiveState::new(state)))
            .configure(routes),
    ));
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let caddy = |path: &str, cookie: Option<&str>, client: &str| {
        let mut r = test::TestRequest::get()
            .uri("/forward-auth")
            .peer_addr(peer)
            .insert_header(("X-Forwarded-Method", "GET"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .insert_header(("X-Forwarded-Host", "grafana.example.com"))
            .insert_header(("X-Forwarded-Uri", path))
            .insert_header(("X-Forwarded-For", client.to_string()))
            .insert_header(("Accept", "text/html,application/xhtml+xml"));
        if let Some(c) = cookie {
            r = r.insert_header(("Cookie", c));
        }
        r.to_request()
    };
    let nginx = |cookie: &str| {
        test::TestRequest::get()
            .uri("/auth-request")
            .peer_addr(peer)
            .insert_header((
                "X-Original-URL",
                "https://grafana.example.com/d/abc/dashboard?orgId=1",
            ))
            .insert_header(("X-Original-Method", "GET"))
            .insert_header(("X-Forwarded-For", "203.0.113.7"))
            .insert_header(("Cookie", cookie))
            .to_request()
    };

    // Sanity: each case really has the intended outcome.
    let status = |req| rt.block_on(test::call_service(&app, req)).status().as_u16();
    assert_eq!(
        status(caddy("/d/abc/dashboard", Some(&cookie), OUTSIDE)),
        200
    );
    assert_eq!(status(nginx(&cookie)), 200);
    assert_eq!(status(caddy("/d/abc/dashboard", None, OUTSIDE)), 302);
    // A bypass answers 200 without identity headers, the allow with them.
    let bypass = rt.block_on(test::call_service(
        &app,
        caddy("/api/health", None, MONITORING),
    ));
    assert_eq!(bypass.status(), 200);
    assert!(bypass.headers().get("x-remote-user").is_none());

    let mut group = c.benchmark_group("handler");
    group.bench_function("forward-auth signed in (Caddy headers)", |b| {
        b.iter(|| {
            let resp = rt.block_on(test::call_service(
                &app,
                caddy("/d/abc/dashboard", Some(&cookie), OUTSIDE),
            ));
            black_box(resp.status())
        })
    });
    group.bench_function("auth-request signed in (nginx headers)", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(test::call_service(&app, nginx(&cookie)))
                    .status(),
            )
        })
    });
    group.bench_function("forward-auth no session (redirect to login)", |b| {
        b.iter(|| {
            let resp = rt.block_on(test::call_service(
                &app,
                caddy("/d/abc/dashboard", None, OUTSIDE),
            ));
            black_box(resp.status())
        })
    });
    group.bench_function("forward-auth bypass path", |b| {
        b.iter(|| {
            let resp = rt.block_on(test::call_service(
                &app,
                caddy("/api/health", Some(&cookie), MONITORING),
            ));
            black_box(resp.status())
        })
    });
    // The same request with a bearer JWT instead of the cookie: the token is
    // verified once, then answered from the cache (keyed by its SHA-256).
    let (bearer_state, token, _idp) = rt.block_on(bearer_app());
    let bearer_app = rt.block_on(test::init_service(
        App::new()
            .app_data(web::Data::new(LiveState::new(bearer_state)))
            .configure(routes),
    ));
    let bearer = |token: &str| {
        test::TestRequest::get()
            .uri("/forward-auth")
            .peer_addr(peer)
            .insert_header(("X-Forwarded-Method", "GET"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .insert_header(("X-Forwarded-Host", "grafana.example.com"))
            .insert_header(("X-Forwarded-Uri", "/d/abc/dashboard"))
            .insert_header(("X-Forwarded-For", OUTSIDE))
            .insert_header(("Accept", "application/json"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request()
    };
    println!("bearer token: {} bytes", token.len());
    let first = rt.block_on(test::call_service(&bearer_app, bearer(&token)));
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers().get("x-remote-user").unwrap(), "alice");
    group.bench_function("forward-auth bearer JWT (cached)", |b| {
        b.iter(|| {
            let resp = rt.block_on(test::call_service(&bearer_app, bearer(&token)));
            black_box(resp.status())
        })
    });
    // The same request signed in with the embedded store: the sealed id in
    // the cookie, the record (sealed in the store) answered from the cache.
    let (store_state, store_cookie, _dir) = rt.block_on(embedded_app());
    let store_app = rt.block_on(test::init_service(
        App::new()
            .app_data(web::Data::new(LiveState::new(store_state)))
            .configure(routes),
    ));
    assert_eq!(
        rt.block_on(test::call_service(
            &store_app,
            caddy("/d/abc/dashboard", Some(&store_cookie), OUTSIDE)
        ))
        .status(),
        200
    );
    group.bench_function(
        "forward-auth signed in, embedded store (cached record)",
        |b| {
            b.iter(|| {
                let resp = rt.block_on(test::call_service(
                    &store_app,
                    caddy("/d/abc/dashboard", Some(&store_cookie), OUTSIDE),
                ));
                black_box(resp.status())
            })
        },
    );
    group.bench_function("building the bearer test request alone (subtract)", |b| {
        b.iter(|| black_box(bearer(&token)))
    });
    group.bench_function("building the test request alone (subtract)", |b| {
        b.iter(|| black_box(caddy("/d/abc/dashboard", Some(&cookie), OUTSIDE)))
    });
    group.finish();
}

/// The bench configuration with `[bearer]` on, against a running development
/// provider (discovered), and an access token for alice carrying her groups.
async fn bearer_app() -> (AppState, String, dev_idp::DevIdp) {
    let mut users = dev_idp::default_users();
    users[0].groups = ["admins", "users", "media", "grafana-admins", "family"]
        .map(String::from)
        .to_vec();
    let idp = dev_idp::DevIdp::start(dev_idp::DevIdpConfig {
        client_id: "pg".into(),
        client_secret: None,
        redirect_uris: vec!["https://auth.example.com/callback".into()],
        users,
        ..dev_idp::DevIdpConfig::default()
    })
    .await
    .unwrap();
    let config = format!(
        "{}\n[bearer]\nenabled = true\n",
        CONFIG.replace("https://id.example.com", idp.issuer())
    );
    let env = |k: &str| (k == "POCKETGATE_SESSION__SECRET").then(|| SECRET.to_string());
    let runtime = Arc::new(load_str(&config, &env).unwrap().value);
    let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()).unwrap();
    provider.discover().await.unwrap();
    let state = AppState::new(runtime, provider, None).unwrap();
    let token = idp
        .access_token(&dev_idp::AccessTokenOptions {
            with_user_claims: true,
            ..dev_idp::AccessTokenOptions::new("alice")
        })
        .await
        .unwrap();
    (state, token, idp)
}

/// The bench configuration with `store = "embedded"` in a temporary
/// directory, and the Cookie header of a session started in it for alice.
async fn embedded_app() -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = CONFIG.replace(
        "store = \"cookie\"",
        &format!("store = \"embedded\"\nstate_dir = {:?}", dir.path()),
    );
    let env = |k: &str| (k == "POCKETGATE_SESSION__SECRET").then(|| SECRET.to_string());
    let runtime = Arc::new(load_str(&config, &env).unwrap().value);
    let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()).unwrap();
    let settings = pocketgate::config::StoreSettings::Embedded {
        state_dir: dir.path().to_path_buf(),
    };
    let store = pocketgate::session::store::Store::open(&settings)
        .await
        .unwrap();
    let state = AppState::new(runtime, provider, store).unwrap();
    let now = now();
    let identity = Session::open(&state.keys, &sealed_session(&state.keys), now)
        .unwrap()
        .identity;
    let cookies = state
        .sessions
        .create(
            &state.cookie,
            identity,
            pocketgate::session::Tokens::default(),
            pocketgate::session::LoginContext::default(),
            std::time::Duration::from_secs(12 * 3600),
            now,
            &[],
        )
        .await
        .unwrap();
    let value = cookies[0].value().to_string();
    let cookie = format!(
        "grafana_session=4f2d1b0e8c7a6b5d4e3f2a1b0c9d8e7f; grafana_session_expiry=1732350000; \
         _ga=GA1.1.1234567890.1732300000; pocketgate={value}; theme=dark"
    );
    (state, cookie, dir)
}

criterion_group!(benches, bench);
criterion_main!(benches);
