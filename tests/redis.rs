//! The Redis store (`session.store = "redis"`) against a real `redis-server`:
//! every store operation, expiry from `expires`, two replicas sharing one
//! Redis, the refresh lock, logout-token replay, and an outage (refused
//! quickly, working again without reopening the store).
//!
//! Each test starts its own `redis-server` on a free loopback port and kills
//! it at the end. When `redis-server` is missing and cannot be installed
//! (`apt-get`, as root only), each test prints a "skipped: ..." line and
//! passes; `.ci/run` installs it, so CI runs them all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pocketgate::config::{RedisUrl, StoreSettings};
use pocketgate::session::store::{Filter, Redis, Store, StoreError, StoreKey, Stored};
use server::{find, free_port, Server};

// ---------------------------------------------------------------------------
// A redis-server of our own
// ---------------------------------------------------------------------------

#[path = "redis/server.rs"]
mod server;

/// `redis-server`, found or (as root, once per run) installed; why not otherwise.
fn redis_server() -> Result<&'static Path, &'static str> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| match find("redis-server") {
            Some(p) => Ok(p),
            None => install().and_then(|()| {
                find("redis-server").ok_or_else(|| {
                    "apt-get installed redis-server, yet it is not on PATH".to_string()
                })
            }),
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

/// `apt-get install redis-server`, keeping the package from starting a
/// system instance (as `.ci/run` does for nginx).
fn install() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("redis-server is not installed, and installing it needs root".into());
    }
    if find("apt-get").is_none() {
        return Err("redis-server is not installed, and there is no apt-get".into());
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed = !policy.exists()
        && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok()
        && Command::new("chmod").arg("+x").arg(policy).status().is_ok();
    let apt = |args: &[&str]| {
        Command::new("timeout")
            .arg("600")
            .arg("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["install", "-y", "-q", "redis-server"])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "redis-server"]));
    if placed {
        let _ = std::fs::remove_file(policy);
    }
    if installed {
        Ok(())
    } else {
        Err("redis-server is not installed, and `apt-get install redis-server` failed".into())
    }
}

impl Server {
    /// A running server, or `None` (after printing why) when there is no
    /// redis-server to run.
    fn start() -> Option<Server> {
        Server::start_on(None)
    }

    fn start_on(port: Option<u16>) -> Option<Server> {
        match redis_server() {
            Ok(bin) => Some(Server::start_with(bin, port)),
            Err(why) => {
                println!("skipped: {why}");
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions to store
// ---------------------------------------------------------------------------

async fn open(url: &str) -> Store {
    let url = RedisUrl::parse(url).unwrap();
    Store::open(&StoreSettings::Redis { url })
        .await
        .unwrap()
        .expect("a store")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn key(name: &str) -> StoreKey {
    StoreKey::of(name.as_bytes())
}

/// A session of `user` (subject `sub-<user>`) issued `age` seconds ago,
/// ending `left` seconds from now, as a store keeps it (the store never
/// opens the sealed part).
fn record(user: &str, sid: Option<&str>, age: u64, left: u64) -> Stored {
    let now = now();
    Stored {
        user: user.into(),
        subject: format!("sub-{user}"),
        sid: sid.map(str::to_owned),
        issued: now - age,
        expires: now + left,
        sealed: "sealed-record".into(),
    }
}

fn keys_of(listed: &[(StoreKey, Stored)]) -> Vec<StoreKey> {
    listed.iter().map(|(k, _)| k.clone()).collect()
}

fn sorted(mut keys: Vec<StoreKey>) -> Vec<StoreKey> {
    keys.sort();
    keys
}

async fn pttl(conn: &mut redis::aio::MultiplexedConnection, name: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(name)
        .query_async(conn)
        .await
        .unwrap()
}

fn record_key(k: &StoreKey) -> String {
    format!("{}s:{}", Redis::PREFIX, k.as_str())
}

fn is_unavailable<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Unavailable { .. }))
}

// ---------------------------------------------------------------------------
// The store's operations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_operation_answers_as_the_store_contract_says() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    store.ping().await.unwrap();
    let (a, b, c) = (key("a"), key("b"), key("c"));
    assert!(store.get(&a).await.unwrap().is_none());

    let (ra, rb, rc) = (
        record("alice", Some("sid-1"), 30, 3600),
        record("alice", Some("sid-2"), 20, 3600),
        record("bob", None, 10, 3600),
    );
    store.put(&a, &ra).await.unwrap();
    store.put(&b, &rb).await.unwrap();
    store.put(&c, &rc).await.unwrap();
    assert_eq!(store.get(&a).await.unwrap().as_ref(), Some(&ra));

    let b_upper = b.short().to_ascii_uppercase();
    #[rustfmt::skip]
    let rows: Vec<(Filter, Vec<&StoreKey>)> = vec![
        (Filter::All,                               vec![&a, &b, &c]),
        (Filter::User("alice".into()),              vec![&a, &b]),
        (Filter::User("bob".into()),                vec![&c]),
        (Filter::User("nobody".into()),             vec![]),
        (Filter::Subject("sub-alice".into()),       vec![&a, &b]),
        (Filter::ProviderSession("sid-2".into()),   vec![&b]),
        (Filter::ProviderSession("sid-9".into()),   vec![]),
        (Filter::Id(a.short().into()),              vec![&a]),
        (Filter::Id(b_upper),                       vec![&b]),
        (Filter::Id("*".into()),                    vec![]),
    ];
    for (filter, want) in rows {
        let listed = store.list(&filter, now()).await.unwrap();
        let want: Vec<StoreKey> = want.into_iter().cloned().collect();
        assert_eq!(keys_of(&listed), want, "{filter:?}: oldest first");
    }

    assert_eq!(store.remove(&a).await.unwrap(), Some(ra));
    assert_eq!(store.remove(&a).await.unwrap(), None, "removed once");
    assert!(store.get(&a).await.unwrap().is_none());
    assert_eq!(
        store
            .remove_matching(&Filter::User("alice".into()))
            .await
            .unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        keys_of(&store.list(&Filter::All, now()).await.unwrap()),
        vec![c.clone()]
    );
    assert_eq!(
        store.remove_matching(&Filter::All).await.unwrap(),
        vec![c.clone()]
    );
    assert!(store.list(&Filter::All, now()).await.unwrap().is_empty());
    // Records and their memberships are gone: nothing of ours is left.
    let mut raw = server.raw().await;
    let left: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn list_leaves_out_sessions_that_ended_by_its_clock() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    store
        .put(&key("short"), &record("alice", None, 0, 60))
        .await
        .unwrap();
    store
        .put(&key("long"), &record("alice", None, 0, 3600))
        .await
        .unwrap();
    let later = now() + 120;
    assert_eq!(
        keys_of(
            &store
                .list(&Filter::User("alice".into()), later)
                .await
                .unwrap()
        ),
        vec![key("long")]
    );
}

#[tokio::test]
async fn remove_matching_ends_only_what_matches() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    for (name, user, sid) in [
        ("a1", "alice", Some("s1")),
        ("a2", "alice", Some("s2")),
        ("b1", "bob", Some("s1")),
        ("c1", "carol", None),
    ] {
        store
            .put(&key(name), &record(user, sid, 5, 600))
            .await
            .unwrap();
    }
    let ended = store
        .remove_matching(&Filter::ProviderSession("s1".into()))
        .await
        .unwrap();
    assert_eq!(sorted(ended), sorted(vec![key("a1"), key("b1")]));
    let ended = store
        .remove_matching(&Filter::Subject("sub-alice".into()))
        .await
        .unwrap();
    assert_eq!(ended, vec![key("a2")]);
    let ended = store
        .remove_matching(&Filter::Id(key("c1").short().into()))
        .await
        .unwrap();
    assert_eq!(ended, vec![key("c1")]);
    assert!(store
        .remove_matching(&Filter::User("alice".into()))
        .await
        .unwrap()
        .is_empty());
    let mut raw = server.raw().await;
    let left: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(left, 0, "every record and membership went with its session");
}

#[tokio::test]
async fn records_expire_with_their_session_and_indexes_outlive_their_newest_member() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let mut raw = server.raw().await;
    let p = Redis::PREFIX;

    store
        .put(&key("a"), &record("alice", Some("sid-a"), 0, 100))
        .await
        .unwrap();
    let ttl = pttl(&mut raw, &record_key(&key("a"))).await;
    assert!((95_000..=100_000).contains(&ttl), "record: {ttl} ms");
    for index in [
        format!("{p}u:alice"),
        format!("{p}sub:sub-alice"),
        format!("{p}sid:sid-a"),
    ] {
        let t = pttl(&mut raw, &index).await;
        assert!((95_000..=100_000).contains(&t), "{index}: {t} ms");
    }
    // A longer session lengthens the user's set; a shorter one never shortens it.
    store
        .put(&key("b"), &record("alice", None, 0, 1000))
        .await
        .unwrap();
    store
        .put(&key("c"), &record("alice", None, 0, 50))
        .await
        .unwrap();
    let t = pttl(&mut raw, &format!("{p}u:alice")).await;
    assert!((990_000..=1_000_000).contains(&t), "u:alice: {t} ms");

    // An ended session is not stored at all.
    store
        .put(&key("ended"), &record("alice", None, 100, 0))
        .await
        .unwrap();
    assert!(store.get(&key("ended")).await.unwrap().is_none());

    // The jti and the lock expire too.
    assert!(store.claim_jti("jti-1", now() + 300).await.unwrap());
    let t = pttl(&mut raw, &format!("{p}jti:jti-1")).await;
    assert!((295_000..=300_000).contains(&t), "jti: {t} ms");
    assert!(store
        .try_lock(&key("a"), Duration::from_millis(1500))
        .await
        .unwrap());
    let t = pttl(&mut raw, &format!("{p}lock:{}", key("a").as_str())).await;
    assert!((1..=1500).contains(&t), "lock: {t} ms");

    // Redis ends a session by itself: gone after its expiry, and its stale
    // membership goes at the next read.
    store
        .put(&key("brief"), &record("dave", None, 0, 1))
        .await
        .unwrap();
    let started = Instant::now();
    while store.get(&key("brief")).await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_secs(3), "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store
        .list(&Filter::User("dave".into()), now())
        .await
        .unwrap()
        .is_empty());
    let left: bool = redis::cmd("SISMEMBER")
        .arg(format!("{p}u:dave"))
        .arg(key("brief").as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!left, "the stale member was removed when read");
}

#[tokio::test]
async fn stale_index_members_are_skipped_and_removed_when_read() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let mut raw = server.raw().await;
    let index = format!("{}u:alice", Redis::PREFIX);
    store
        .put(&key("live"), &record("alice", None, 0, 600))
        .await
        .unwrap();
    let _: u64 = redis::cmd("SADD")
        .arg(&index)
        .arg(key("gone").as_str())
        .query_async(&mut raw)
        .await
        .unwrap();
    // A refresh that renamed the user leaves the old name's membership behind.
    store
        .put(&key("renamed"), &record("alice", None, 0, 600))
        .await
        .unwrap();
    store
        .put(&key("renamed"), &record("alicia", None, 0, 600))
        .await
        .unwrap();

    let listed = store
        .list(&Filter::User("alice".into()), now())
        .await
        .unwrap();
    assert_eq!(keys_of(&listed), vec![key("live")]);
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&index)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(members, vec![key("live").as_str().to_string()]);
    // Revoking alice must not end alicia's session through the stale entry.
    store
        .put(&key("renamed2"), &record("alice", None, 0, 600))
        .await
        .unwrap();
    store
        .put(&key("renamed2"), &record("alicia", None, 0, 600))
        .await
        .unwrap();
    let ended = store
        .remove_matching(&Filter::User("alice".into()))
        .await
        .unwrap();
    assert_eq!(ended, vec![key("live")]);
    assert_eq!(
        sorted(keys_of(
            &store
                .list(&Filter::User("alicia".into()), now())
                .await
                .unwrap()
        )),
        sorted(vec![key("renamed"), key("renamed2")])
    );
}

#[tokio::test]
async fn a_record_that_does_not_parse_is_corrupt_never_absent() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let mut raw = server.raw().await;
    let k = key("garbled");
    let _: () = redis::cmd("SET")
        .arg(record_key(&k))
        .arg("{not json")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(matches!(store.get(&k).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(
        store.list(&Filter::All, now()).await,
        Err(StoreError::Corrupt(_))
    ));
    // Ending it is always allowed.
    assert_eq!(
        store
            .remove_matching(&Filter::Id(k.short().into()))
            .await
            .unwrap(),
        vec![k.clone()]
    );
    assert!(store.get(&k).await.unwrap().is_none());
}

#[tokio::test]
async fn list_all_walks_every_scan_page() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = Arc::new(open(&server.url()).await);
    const N: usize = 1_200; // more than two SCAN pages
    let mut tasks = Vec::new();
    for part in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (part..N).step_by(4) {
                let r = record(&format!("user{}", i % 7), None, 0, 600);
                store.put(&key(&format!("s{i}")), &r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let listed = store.list(&Filter::All, now()).await.unwrap();
    assert_eq!(listed.len(), N);
    let ended = store.remove_matching(&Filter::All).await.unwrap();
    assert_eq!(ended.len(), N);
    assert!(store.list(&Filter::All, now()).await.unwrap().is_empty());
    let mut raw = server.raw().await;
    let left: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn claim_jti_is_true_once_then_false() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let until = now() + 120;
    assert!(store.claim_jti("logout-1", until).await.unwrap());
    assert!(!store.claim_jti("logout-1", until).await.unwrap(), "replay");
    assert!(store.claim_jti("logout-2", until).await.unwrap());
    // A token already past its end is still recorded.
    assert!(store.claim_jti("logout-3", now() - 5).await.unwrap());
    assert!(!store.claim_jti("logout-3", now() - 5).await.unwrap());
}

// ---------------------------------------------------------------------------
// Replicas
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_replicas_see_each_others_sessions_and_removals() {
    let Some(server) = Server::start() else {
        return;
    };
    let (one, two) = (open(&server.url()).await, open(&server.url()).await);
    let r = record("alice", Some("sid-1"), 0, 600);
    one.put(&key("x"), &r).await.unwrap();
    assert_eq!(two.get(&key("x")).await.unwrap().as_ref(), Some(&r));
    assert_eq!(two.remove(&key("x")).await.unwrap(), Some(r));
    assert!(one.get(&key("x")).await.unwrap().is_none());

    two.put(&key("y"), &record("alice", None, 0, 600))
        .await
        .unwrap();
    two.put(&key("z"), &record("alice", None, 0, 600))
        .await
        .unwrap();
    let ended = one
        .remove_matching(&Filter::User("alice".into()))
        .await
        .unwrap();
    assert_eq!(sorted(ended), sorted(vec![key("y"), key("z")]));
    assert!(two.list(&Filter::All, now()).await.unwrap().is_empty());
    // Two replicas racing to revoke the same session count it once.
    two.put(&key("w"), &record("bob", None, 0, 600))
        .await
        .unwrap();
    let filter = Filter::User("bob".into());
    let (a, b) = tokio::join!(one.remove_matching(&filter), two.remove_matching(&filter));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1);

    assert!(one.claim_jti("jti", now() + 60).await.unwrap());
    assert!(!two.claim_jti("jti", now() + 60).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_lock_has_one_winner_and_only_its_owner_releases_it() {
    let Some(server) = Server::start() else {
        return;
    };
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(open(&server.url()).await));
    }
    let k = key("session");
    let minute = Duration::from_secs(60);

    // Twelve tasks, four per replica, released at once.
    let start = Arc::new(tokio::sync::Barrier::new(12));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (store, start, k) = (Arc::clone(&replicas[i % 3]), Arc::clone(&start), k.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            (i % 3, store.try_lock(&k, minute).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (replica, won) = t.await.unwrap();
        if won {
            winners.push(replica);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let owner = winners[0];
    let others: Vec<usize> = (0..3).filter(|r| *r != owner).collect();

    // Another replica's unlock leaves the lock where it is.
    for &o in &others {
        replicas[o].unlock(&k).await.unwrap();
    }
    for r in &replicas {
        assert!(!r.try_lock(&k, minute).await.unwrap(), "still held");
    }
    // The owner's unlock releases it.
    replicas[owner].unlock(&k).await.unwrap();
    let next = others[0];
    assert!(replicas[next].try_lock(&k, minute).await.unwrap());
    replicas[next].unlock(&k).await.unwrap();

    // A lock that ran out is free; its late owner cannot release the new one.
    let (late, taker, third) = (others[0], others[1], owner);
    assert!(replicas[late]
        .try_lock(&k, Duration::from_millis(200))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(replicas[taker].try_lock(&k, minute).await.unwrap());
    replicas[late].unlock(&k).await.unwrap();
    assert!(
        !replicas[third].try_lock(&k, minute).await.unwrap(),
        "the late owner released someone else's lock"
    );
    replicas[taker].unlock(&k).await.unwrap();
    assert!(replicas[third].try_lock(&k, minute).await.unwrap());
}

// ---------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------

/// Longest a call may take while Redis is down (the store's own bound plus
/// scheduling slack).
fn outage_bound() -> Duration {
    Redis::CALL_TIMEOUT + Duration::from_millis(500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_quickly_and_the_store_heals_without_reopening() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let k = key("k");
    store.put(&k, &record("alice", None, 0, 600)).await.unwrap();
    assert!(store.get(&k).await.unwrap().is_some());

    server.stop();
    let r = record("alice", None, 0, 600);
    let mut slowest = Duration::ZERO;
    for op in 0..9 {
        let started = Instant::now();
        let unavailable = match op {
            0 => is_unavailable(&store.get(&k).await),
            1 => is_unavailable(&store.put(&k, &r).await),
            2 => is_unavailable(&store.remove(&k).await),
            3 => is_unavailable(&store.remove_matching(&Filter::All).await),
            4 => is_unavailable(&store.list(&Filter::User("alice".into()), now()).await),
            5 => is_unavailable(&store.claim_jti("j", now() + 60).await),
            6 => is_unavailable(&store.try_lock(&k, Duration::from_secs(5)).await),
            7 => is_unavailable(&store.unlock(&k).await),
            _ => is_unavailable(&store.ping().await),
        };
        let took = started.elapsed();
        assert!(
            unavailable,
            "operation {op}: Unavailable while Redis is down"
        );
        assert!(took < outage_bound(), "operation {op} took {took:?}");
        slowest = slowest.max(took);
    }
    println!("slowest call while Redis was down: {slowest:?}");

    server.restart();
    let started = Instant::now();
    let mut failed_after_restart = 0;
    while store.ping().await.is_err() {
        failed_after_restart += 1;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the store did not reconnect by itself"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "working again {:?} after the restart ({failed_after_restart} failed pings)",
        started.elapsed()
    );
    assert_eq!(
        failed_after_restart, 0,
        "the first call after Redis is back must work"
    );
    // The restarted server is empty (nothing persists): the same store writes and reads.
    assert!(store.get(&k).await.unwrap().is_none());
    store.put(&k, &r).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_right_after_a_quiet_restart_works() {
    // Redis restarts between two requests: the store's connection is dead,
    // and the next read must not be the one that finds out.
    let Some(mut server) = Server::start() else {
        return;
    };
    let store = open(&server.url()).await;
    let k = key("k");
    store.put(&k, &record("alice", None, 0, 600)).await.unwrap();
    server.stop();
    server.restart();
    let started = Instant::now();
    let got = store.get(&k).await;
    println!(
        "first read after a quiet restart: {:?} in {:?}",
        got.as_ref().map(Option::is_some),
        started.elapsed()
    );
    assert!(got.unwrap().is_none(), "the restarted server is empty");
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_opens_while_redis_is_down_and_connects_when_it_comes() {
    if let Err(why) = redis_server() {
        println!("skipped: {why}");
        return;
    }
    let port = free_port();
    let started = Instant::now();
    let store = open(&format!("redis://127.0.0.1:{port}/0")).await;
    assert!(
        started.elapsed() < outage_bound(),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(is_unavailable(&store.ping().await));
    assert!(
        started.elapsed() < outage_bound(),
        "{:?}",
        started.elapsed()
    );

    let Some(_server) = Server::start_on(Some(port)) else {
        return;
    };
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store
        .put(&key("k"), &record("alice", None, 0, 60))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unresponsive_redis_is_unavailable_within_the_bound() {
    // A listener that accepts and never answers: neither a refusal nor a reply.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let store = open(&format!("redis://127.0.0.1:{port}/0")).await;
    for _ in 0..2 {
        let started = Instant::now();
        assert!(is_unavailable(&store.get(&key("k")).await));
        let took = started.elapsed();
        assert!(took < outage_bound(), "{took:?}");
        println!("a call to a Redis that never answers failed after {took:?}");
    }
    drop(silent);
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_rediss_url_opens_and_never_shows_its_password() {
    let port = free_port();
    let store = open(&format!("rediss://:s3cret-pw@127.0.0.1:{port}/0")).await;
    let shown = format!("{} {store:?}", store.place());
    assert!(shown.contains("rediss://"), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }));
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
}

/// Run `openssl` with these (space-separated) arguments in `dir`; whether it succeeded.
fn openssl(dir: &Path, args: &str) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A private CA and a server certificate for 127.0.0.1 in `dir`.
fn make_certificates(dir: &Path) -> bool {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(
        dir,
        &format!(
            "req -x509 {ec} -keyout ca.key -out ca.crt -days 1 -subj /CN=pocketgate-test-ca \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        ),
    ) && openssl(
        dir,
        &format!("req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
    ) && openssl(
        dir,
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -out server.crt -days 1 -extfile server.ext",
    )
}

/// `rediss://` end to end: a TLS-only redis-server with a certificate from a
/// private CA. The store trusts the system store, where an operator adds
/// such a CA (or names it by `SSL_CERT_FILE`): without it the connection is
/// refused; with it (in a child test process, as the variable is read at
/// connection time) every call works.
#[tokio::test]
async fn rediss_works_end_to_end_with_a_private_ca_and_refuses_without_it() {
    let bin = match redis_server() {
        Ok(bin) => bin,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    if find("openssl").is_none() {
        println!("skipped: no openssl command to make test certificates");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(make_certificates(dir.path()), "openssl failed");
    let port = free_port();
    let mut child = Command::new(bin)
        .current_dir(dir.path())
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(5) || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
            println!("skipped: this redis-server does not serve TLS");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("rediss://127.0.0.1:{port}/0");

    // This process trusts only the system store: the private CA is not in it.
    let store = open(&url).await;
    assert!(
        is_unavailable(&store.ping().await),
        "an unknown CA is refused"
    );

    let tested = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rediss_child", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", dir.path().join("ca.crt"))
        .env("POCKETGATE_TEST_REDISS_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(tested, Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && out.contains("rediss child: ok"),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_bounded(mut child: Child, bound: Duration) -> std::process::Output {
    let started = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if started.elapsed() > bound {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The half of the TLS test that runs with `SSL_CERT_FILE` naming the test CA.
#[tokio::test]
#[ignore = "run by rediss_works_end_to_end_with_a_private_ca_and_refuses_without_it"]
async fn rediss_child() {
    let Ok(url) = std::env::var("POCKETGATE_TEST_REDISS_URL") else {
        return;
    };
    let store = open(&url).await;
    store.ping().await.unwrap();
    let r = record("alice", Some("sid"), 0, 60);
    store.put(&key("tls"), &r).await.unwrap();
    assert_eq!(store.get(&key("tls")).await.unwrap(), Some(r));
    assert!(store
        .try_lock(&key("tls"), Duration::from_secs(5))
        .await
        .unwrap());
    store.unlock(&key("tls")).await.unwrap();
    println!("rediss child: ok");
}

// --- two pocketgates sharing one Redis ------------------------------------------

#[path = "common/mod.rs"]
mod common;

#[path = "redis/scim.rs"]
mod scim;

/// Sign in as `user` on `app` through its development provider; the session cookie.
async fn sign_in(app: &common::TestApp, user: &str) -> String {
    let b = common::browser();
    let rd = "https://app.example.test/";
    let r = b
        .get(app.url(&format!("/login?rd={}", url_encode(rd))))
        .send()
        .await
        .unwrap();
    let authz = common::location(&r);
    let approve = app.idp.as_ref().unwrap().approve_url(&authz, user).unwrap();
    let r = b.get(approve).send().await.unwrap();
    let r = b.get(common::location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with("pocketgate=") && !kv.ends_with('='))
        .expect("a session cookie")
        .to_string()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn status(app: &common::TestApp, host: &str, cookie: &str) -> u16 {
    common::forward_auth_status(app, host, cookie).await
}

#[actix_web::test]
async fn two_replicas_share_sessions_logouts_and_one_refresh() {
    let Some(redis) = Server::start() else {
        return;
    };
    let session = format!(
        "store = \"redis\"\nredis_url = {:?}\nrefresh_interval = \"5s\"\n",
        redis.url()
    );
    let one = common::spawn(common::Options {
        idp: true,
        session: session.clone(),
        ..common::Options::default()
    })
    .await;
    let two = common::spawn(common::Options {
        session,
        issuer: Some(one.idp.as_ref().unwrap().issuer().to_string()),
        ..common::Options::default()
    })
    .await;
    // A login on one is a session on the other.
    let alice = sign_in(&one, "alice").await;
    assert_eq!(status(&two, "grafana.example.test", &alice).await, 200);
    // A logout on one is in force on the other within the 5 s cache.
    let bob = sign_in(&one, "bob").await;
    assert_eq!(status(&two, "app.example.test", &bob).await, 200);
    let r = common::client()
        .get(one.url("/logout"))
        .header("Cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut s = 200;
    while s == 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        s = status(&two, "app.example.test", &bob).await;
    }
    assert_eq!(
        s, 401,
        "a logout on one replica must hold on the other within 5 s"
    );
    // Both replicas see alice's session due and race to refresh it: exactly
    // one redeems the refresh token (a second redemption of a rotated token
    // would end the session at this provider, which revokes the family).
    one.idp
        .as_ref()
        .unwrap()
        .set_groups("alice", ["users"])
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    let (mut a, mut b) = (200, 200);
    while (a == 200 || b == 200) && Instant::now() < deadline {
        let (x, y) = tokio::join!(
            status(&one, "grafana.example.test", &alice),
            status(&two, "grafana.example.test", &alice)
        );
        (a, b) = (x, y);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((a, b), (403, 403), "the group change reached both replicas");
    assert_eq!(
        status(&one, "app.example.test", &alice).await,
        200,
        "still signed in: no token was redeemed twice"
    );
    assert_eq!(status(&two, "app.example.test", &alice).await, 200);
    let changed =
        |text: &str| text.contains("pocketgate_session_refreshes_total{outcome=\"changed\"} 1");
    let m1 = common::client()
        .get(one.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m2 = common::client()
        .get(two.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        changed(&m1) ^ changed(&m2),
        "exactly one replica refreshed:\n{m1}\n{m2}"
    );
}

// ---------------------------------------------------------------------------
// Records in Redis are sealed: nothing in it can be edited into access
// ---------------------------------------------------------------------------

/// A replica on `redis` with its development provider.
async fn replica(redis: &Server) -> common::TestApp {
    common::spawn(common::Options {
        idp: true,
        session: format!("store = \"redis\"\nredis_url = {:?}\n", redis.url()),
        ..common::Options::default()
    })
    .await
}

/// The Redis key of `user`'s one session record.
async fn record_key_of(raw: &mut redis::aio::MultiplexedConnection, user: &str) -> String {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{}u:{user}", Redis::PREFIX))
        .query_async(raw)
        .await
        .unwrap();
    assert_eq!(members.len(), 1, "one session of {user}: {members:?}");
    format!("{}s:{}", Redis::PREFIX, members[0])
}

/// Overwrite a record in place (keeping its expiry), as whoever can write to Redis would.
async fn overwrite(raw: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(name)
        .arg(value)
        .arg("KEEPTTL")
        .query_async(raw)
        .await
        .unwrap();
}

#[actix_web::test]
async fn an_edited_redis_record_grants_no_group() {
    let Some(redis) = Server::start() else {
        return;
    };
    let app = replica(&redis).await;
    let bob = sign_in(&app, "bob").await;
    assert_eq!(status(&app, "grafana.example.test", &bob).await, 403);
    let mut raw = redis.raw().await;
    let name = record_key_of(&mut raw, "bob").await;
    overwrite(
        &mut raw,
        &name,
        &common::forged_record("bob", &["admins", "users"]),
    )
    .await;
    common::wait_out_the_cache().await;
    assert_eq!(
        status(&app, "grafana.example.test", &bob).await,
        401,
        "an edited record is no session: login again"
    );
    assert_eq!(
        common::records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1"
    );
}

#[actix_web::test]
async fn a_redis_record_copied_under_another_key_does_not_make_that_session_its_user() {
    let Some(redis) = Server::start() else {
        return;
    };
    let app = replica(&redis).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let mut raw = redis.raw().await;
    let (of_alice, of_bob) = (
        record_key_of(&mut raw, "alice").await,
        record_key_of(&mut raw, "bob").await,
    );
    let copied: String = redis::cmd("GET")
        .arg(&of_alice)
        .query_async(&mut raw)
        .await
        .unwrap();
    overwrite(&mut raw, &of_bob, &copied).await;
    common::wait_out_the_cache().await;
    let r = common::client()
        .get(app.url("/whoami"))
        .header("Cookie", &bob)
        .send()
        .await
        .unwrap();
    let code = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(code, 401, "bob's cookie became: {body}");
    assert_eq!(status(&app, "grafana.example.test", &alice).await, 200);
    assert_eq!(
        common::records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1"
    );
}

#[actix_web::test]
async fn a_garbage_redis_record_is_a_login_never_a_5xx_and_counted_once() {
    let Some(redis) = Server::start() else {
        return;
    };
    let app = replica(&redis).await;
    let bob = sign_in(&app, "bob").await;
    let mut raw = redis.raw().await;
    let name = record_key_of(&mut raw, "bob").await;
    overwrite(&mut raw, &name, "garbage{").await;
    common::wait_out_the_cache().await;
    let r = common::ask(
        &app,
        common::Ask::ForwardAuth,
        "app.example.test",
        "/",
        &[("Cookie", &bob), ("Accept", "text/html")],
    )
    .await;
    assert_eq!(r.status(), 302, "a browser goes to login");
    for _ in 0..3 {
        assert_eq!(status(&app, "app.example.test", &bob).await, 401);
    }
    assert_eq!(
        common::records_rejected(&app).await,
        "pocketgate_session_records_rejected_total 1",
        "counted (and logged) once, not per request"
    );
}
