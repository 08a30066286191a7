//! The session's shape, told against any store: the same scenarios run on
//! the embedded store (tests/session_shape.rs) and on Redis
//! (tests/redis.rs). The clock is given per call, so nothing here waits:
//! "an hour later" is `t + 3600`.
//!
//! Each scenario builds its session services outside the runtime it then
//! runs on, so that no background flush starts: only the flushes a
//! scenario asks for happen, whatever the machine's speed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pocketgate::config::{self, SessionSecret, SessionSecrets, SessionShape};
use pocketgate::policy::Identity;
use pocketgate::session::store::{Filter, Store};
use pocketgate::session::{
    CookieSettings, EndReason, LoginContext, RefreshOutcome, SessionEvents, SessionKeys, Sessions,
    Tokens,
};
use tokio::runtime::Runtime;

/// Opens a store of the kind under test on the runtime given.
pub type Open<'a> = &'a dyn Fn(&Runtime) -> Store;

/// One named test per scenario that needs only stores: `$run` is called
/// with the scenario (a `fn(Open)`) and runs it on its kind of store.
macro_rules! store_scenarios {
    ($run:expr) => {
        store_scenarios!($run;
            an_idle_session_ends,
            a_use_on_another_replica_keeps_the_session,
            a_host_shortens_the_session_for_itself_only,
            a_longer_host_value_has_no_effect);
    };
    ($run:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let run: &dyn Fn(fn(scenarios::Open<'_>)) = &$run;
                run(scenarios::$name);
            }
        )*
    };
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-shape";
const NAME: &str = "pocketgate";

/// Counts sessions ended for being idle.
#[derive(Default)]
pub struct Ended(AtomicUsize);

impl Ended {
    pub fn idle(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl SessionEvents for Ended {
    fn created(&self) {}
    fn ended(&self, reason: EndReason, count: usize) {
        if reason == EndReason::Idle {
            self.0.fetch_add(count, Ordering::Relaxed);
        }
    }
    fn cache(&self, _: bool) {}
    fn store_call(&self, _: Duration, _: bool) {}
    fn refresh(&self, _: RefreshOutcome) {}
    fn record_rejected(&self) {}
}

fn keys() -> SessionKeys {
    SessionKeys::new(&SessionSecrets::new(
        SessionSecret::new(SECRET).unwrap(),
        Vec::new(),
    ))
}

fn cookie() -> CookieSettings {
    CookieSettings {
        name: NAME.into(),
        domain: None,
        secure: true,
        lifetime: Duration::from_secs(12 * 3600),
    }
}

/// One pocketgate's session service over `store`, ending sessions unused
/// for `idle` seconds.
pub fn replica(store: Store, idle: Option<u64>) -> (Sessions, Arc<Ended>) {
    let events = Arc::new(Ended::default());
    let idle = idle.map(Duration::from_secs);
    let sessions = Sessions::new(keys(), cookie(), Some(store), None, events.clone())
        .with_idle_timeout(idle, idle);
    (sessions, events)
}

/// A session of alice started at `t`: its cookie's value.
pub async fn sign_in(sessions: &Sessions, t: u64) -> String {
    let identity = Identity {
        user: "alice".into(),
        subject: "sub-alice".into(),
        groups: vec!["users".into()],
        ..Identity::default()
    };
    let cookies = sessions
        .create(
            &cookie(),
            identity,
            Tokens::default(),
            LoginContext::default(),
            Duration::from_secs(12 * 3600),
            t,
            &[],
        )
        .await
        .unwrap();
    cookies
        .iter()
        .find(|c| c.name() == NAME)
        .unwrap()
        .value()
        .to_string()
}

/// Whether the session of `cookie` serves a request at `t` on a host
/// asking `shape` of it.
pub async fn serves(sessions: &Sessions, cookie: &str, t: u64, shape: SessionShape) -> bool {
    sessions
        .current_on(&[(NAME, cookie)], t, shape)
        .await
        .unwrap()
        .is_some()
}

async fn live(sessions: &Sessions, t: u64) -> usize {
    sessions.list(&Filter::All, t).await.unwrap().0.len()
}

const ANY: SessionShape = SessionShape {
    idle_timeout: None,
    lifetime: None,
};

/// A session used within the idle timeout lives on; once unused for
/// longer, it ends: removed from the store and counted.
pub fn an_idle_session_ends(open: Open<'_>) {
    let (rt, t) = (runtime(), unix_now());
    let (sessions, ended) = replica(open(&rt), Some(60));
    rt.block_on(async {
        let cookie = sign_in(&sessions, t).await;
        for used in [t + 50, t + 100, t + 150, t + 210] {
            assert!(
                serves(&sessions, &cookie, used, ANY).await,
                "used at +{}",
                used - t
            );
        }
        assert!(
            !serves(&sessions, &cookie, t + 271, ANY).await,
            "61 s unused"
        );
        assert_eq!(ended.idle(), 1);
        assert_eq!(live(&sessions, t + 271).await, 0, "removed from the store");
        assert!(
            !serves(&sessions, &cookie, t + 272, ANY).await,
            "ended for good"
        );
        assert_eq!(ended.idle(), 1, "counted once");
    });
}

/// Two replicas on one store: a use on the second, flushed, keeps the
/// session alive for the first, whose own last use is older.
pub fn a_use_on_another_replica_keeps_the_session(open: Open<'_>) {
    let (rt, t) = (runtime(), unix_now());
    let (first, ended) = replica(open(&rt), Some(60));
    let (second, _) = replica(open(&rt), Some(60));
    rt.block_on(async {
        let cookie = sign_in(&first, t).await;
        assert!(serves(&first, &cookie, t + 10, ANY).await);
        assert!(serves(&second, &cookie, t + 50, ANY).await);
        assert_eq!(second.flush_activity(t + 50).await.unwrap(), 1);
        assert_eq!(
            second.flush_activity(t + 51).await.unwrap(),
            0,
            "only what moved"
        );
        // 70 s after its own last use, 30 s after the second's.
        assert!(
            serves(&first, &cookie, t + 80, ANY).await,
            "the second replica's use counts"
        );
        assert_eq!(ended.idle(), 0);
        // Unused anywhere for 61 s: over.
        assert!(!serves(&first, &cookie, t + 141, ANY).await);
        assert!(!serves(&second, &cookie, t + 141, ANY).await);
        assert_eq!(ended.idle(), 1);
    });
}

/// A host's lifetime and idle timeout send the browser to sign in on that
/// host only: the session serves every other host, a refused request does
/// not count as a use, and nothing is ended.
pub fn a_host_shortens_the_session_for_itself_only(open: Open<'_>) {
    let (rt, t) = (runtime(), unix_now());
    let (sessions, ended) = replica(open(&rt), None);
    rt.block_on(async {
        let cookie = sign_in(&sessions, t).await;
        let young = SessionShape {
            lifetime: Some(Duration::from_secs(100)),
            ..ANY
        };
        assert!(serves(&sessions, &cookie, t + 100, young).await);
        assert!(
            !serves(&sessions, &cookie, t + 101, young).await,
            "too old here"
        );
        assert!(
            serves(&sessions, &cookie, t + 101, ANY).await,
            "elsewhere it serves"
        );
        let busy = SessionShape {
            idle_timeout: Some(Duration::from_secs(30)),
            ..ANY
        };
        assert!(
            serves(&sessions, &cookie, t + 131, busy).await,
            "used 30 s ago"
        );
        assert!(
            !serves(&sessions, &cookie, t + 162, busy).await,
            "unused for 31 s"
        );
        assert!(
            !serves(&sessions, &cookie, t + 163, busy).await,
            "a refusal is no use"
        );
        assert!(
            serves(&sessions, &cookie, t + 164, ANY).await,
            "elsewhere it serves"
        );
        assert!(
            serves(&sessions, &cookie, t + 170, busy).await,
            "used 6 s ago"
        );
        assert_eq!(ended.idle(), 0);
        assert_eq!(live(&sessions, t + 170).await, 1);
    });
}

/// A host that asks for more than the session has gets what the session
/// has: the configuration keeps only shortening values.
pub fn a_longer_host_value_has_no_effect(open: Open<'_>) {
    let (rt, t) = (runtime(), unix_now());
    let toml = r#"
public_url = "https://auth.example.com"
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
[session]
secret = "0123456789abcdef0123456789abcdef-shape"
idle_timeout = "1m"
lifetime = "1h"
[policies.users]
allowed_groups = ["users"]
[[hosts]]
host = "app.example.com"
policy = "users"
idle_timeout = "2h"
lifetime = "1d"
"#;
    let loaded = config::load_str(toml, &|_| None).unwrap();
    assert_eq!(
        loaded
            .warnings
            .iter()
            .filter(|w| w.contains("no effect"))
            .count(),
        2
    );
    let config = loaded.value;
    let shape = config
        .session
        .shape_for(&config.rules.lookup_host("app.example.com"));
    let events = Arc::new(Ended::default());
    let sessions = Sessions::new(keys(), cookie(), Some(open(&rt)), None, events.clone())
        .with_idle_timeout(config.session.idle_timeout, config.session.shortest_idle());
    rt.block_on(async {
        let cookie = sign_in(&sessions, t).await;
        assert!(serves(&sessions, &cookie, t + 60, shape).await);
        assert!(
            !serves(&sessions, &cookie, t + 121, shape).await,
            "the session's 1m holds"
        );
        assert_eq!(events.idle(), 1);
    });
}

/// Requests that use a session write nothing to the store; one flush
/// writes their last use once. `writes` says whether the store changed
/// since it was last asked.
pub fn uses_are_not_store_writes<F, Fut>(open: Open<'_>, mut writes: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (rt, t) = (runtime(), unix_now());
    let (sessions, _) = replica(open(&rt), Some(60));
    rt.block_on(async {
        let cookie = sign_in(&sessions, t).await;
        assert!(serves(&sessions, &cookie, t, ANY).await);
        writes().await;
        for i in 1..=50 {
            assert!(serves(&sessions, &cookie, t + i, ANY).await);
        }
        assert!(!writes().await, "50 requests wrote to the store");
        assert_eq!(sessions.flush_activity(t + 50).await.unwrap(), 1);
        assert!(writes().await, "the flush wrote the last use");
        let (listed, _) = sessions.list(&Filter::All, t + 50).await.unwrap();
        assert_eq!(
            listed[0].1.last_used,
            Some(t + 50),
            "as `sessions list` shows it"
        );
    });
}
