//! Looking up a signed-in session in each of the three stores, as every
//! `/forward-auth` request with a session cookie does (no HTTP: the session
//! service is called directly, so this is the store's share of a request):
//!
//! - cookie: the sealed session is the cookie; opening it is the lookup.
//! - embedded, redis: the cookie holds a sealed id; the record comes from
//!   the service's cache (what nearly every request gets), and, measured
//!   apart, from the store itself and opened (what a cache miss costs, once
//!   per session per `CACHE_TTL`).
//!
//! Redis runs as a `redis-server` of our own on a free loopback port,
//! started here and stopped at the end; without one on `PATH` the Redis
//! cases are skipped with a printed line.
//!
//! Run: `cargo bench --bench store`; `cargo test --bench store` runs each case once.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "bench code: a panic is a failed run"
)]

#[path = "../tests/redis/server.rs"]
mod redis_server;
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pocketgate::config::{RedisUrl, SessionSecret, SessionSecrets, StoreSettings};
use pocketgate::session::store::{Store, StoreKey};
use pocketgate::session::{
    CookieSettings, LoginContext, NoEvents, Purpose, SessionKeys, Sessions, Tokens,
};
use support::{alice, now, SECRET};
use tokio::runtime::Runtime;

fn keys() -> SessionKeys {
    let secret = SessionSecret::new(SECRET).unwrap();
    SessionKeys::new(&SessionSecrets::new(secret, Vec::new()))
}

fn cookie() -> CookieSettings {
    CookieSettings {
        name: "pocketgate".into(),
        domain: Some("example.com".into()),
        secure: true,
        lifetime: Duration::from_secs(12 * 3600),
    }
}

/// The session service over `store`, with alice signed in: the service and
/// the session cookie's (name, value) as the browser sends it back.
fn signed_in(rt: &Runtime, store: Option<Store>) -> (Sessions, Vec<(String, String)>) {
    let sessions = Sessions::new(keys(), cookie(), store, None, Arc::new(NoEvents));
    let tokens = Tokens {
        id_token: Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
        refresh_token: Some("refresh-token-0123456789".into()),
        sid: Some("3c7b6d2e-sid".into()),
    };
    let cookies = rt
        .block_on(sessions.create(
            &cookie(),
            alice(),
            tokens,
            LoginContext::default(),
            Duration::from_secs(12 * 3600),
            now(),
            &[],
        ))
        .unwrap();
    let pairs = cookies
        .iter()
        .filter(|c| c.name() == "pocketgate")
        .map(|c| (c.name().to_string(), c.value().to_string()))
        .collect();
    (sessions, pairs)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("store");

    let (sessions, pairs) = signed_in(&rt, None);
    lookups(&mut group, &rt, "cookie", &sessions, &pairs);

    let dir = tempfile::tempdir().unwrap();
    let embedded = StoreSettings::Embedded {
        state_dir: dir.path().to_path_buf(),
    };
    let store = rt.block_on(Store::open(&embedded)).unwrap();
    let (sessions, pairs) = signed_in(&rt, store);
    lookups(&mut group, &rt, "embedded", &sessions, &pairs);

    match redis_server::find("redis-server") {
        None => println!("skipped: redis (no redis-server on PATH)"),
        Some(bin) => {
            let server = redis_server::Server::start_with(&bin, None);
            let url = RedisUrl::parse(&server.url()).unwrap();
            let store = rt.block_on(Store::open(&StoreSettings::Redis { url }));
            let (sessions, pairs) = signed_in(&rt, store.unwrap());
            lookups(&mut group, &rt, "redis", &sessions, &pairs);
            // The connection goes before the server does.
            drop(sessions);
            drop(server);
        }
    }
    group.finish();
}

/// The cases of one store: the service's lookup, and with a store the
/// record read and opened as on a cache miss.
fn lookups(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    sessions: &Sessions,
    pairs: &[(String, String)],
) {
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let now = now();
    // Sanity: the cookie really is alice's live session.
    let current = rt.block_on(sessions.current(&pairs, now)).unwrap().unwrap();
    assert_eq!(current.session.identity.user, "alice");
    group.bench_function(format!("{name}: lookup of a signed-in session"), |b| {
        b.iter(|| black_box(rt.block_on(sessions.current(&pairs, now)).unwrap()))
    });
    let Some(store) = sessions.store() else {
        return;
    };
    let keys = keys();
    let id = keys.open(Purpose::SessionId, pairs[0].1).unwrap();
    let key = StoreKey::of(&id);
    group.bench_function(
        format!("{name}: record read from the store and opened (cache miss)"),
        |b| {
            b.iter(|| {
                let stored = rt.block_on(store.get(&key)).unwrap().unwrap();
                black_box(stored.open(&keys, &key).unwrap())
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
