//! Test helpers: spawn the real application on a random loopback port, with or
//! without the development identity provider, and talk to it like a proxy or a
//! browser would.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dev_idp::{DevIdp, DevIdpConfig};
use pocketgate::config::{load_str, Runtime};
use pocketgate::http::{AppState, Application, ServeOptions};
use pocketgate::oidc::Provider;
use pocketgate::policy::Identity;
use pocketgate::session::{Session, SessionKeys};

pub mod scim;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const OLD_SECRET: &str = "old-secret-0123456789abcdef01234567890";

/// The policy part of every test configuration.
pub const POLICIES: &str = include_str!("policies.toml");

/// A running pocketgate (and maybe a development provider).
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, where the app listens (and its `public_url`
    /// unless `Options::public_host` names another).
    pub base: String,
    /// The configured `public_url`: `base`, or `http://{public_host}:PORT`.
    pub public_url: String,
    pub idp: Option<DevIdp>,
    pub runtime: Arc<Runtime>,
    pub keys: SessionKeys,
    pub provider: Arc<Provider>,
    /// The state in force at start (metrics and store carry over reloads).
    pub state: Arc<AppState>,
    /// The holder of the state in force, for reload tests.
    pub live: actix_web::web::Data<pocketgate::http::LiveState>,
    /// The embedded store's directory, removed with the app.
    pub state_dir: Option<tempfile::TempDir>,
    /// The configuration text the app runs on (reload tests write it to a file).
    pub toml: String,
}

/// Knobs for [`spawn`].
pub struct Options {
    /// Extra top-level keys (placed before any table).
    pub top: String,
    /// Extra keys in `[session]`.
    pub session: String,
    /// Extra keys in `[oidc]`.
    pub oidc: String,
    /// Start the development provider; `configure` adjusts it.
    pub idp: bool,
    pub configure_idp: fn(&mut DevIdpConfig),
    /// Discover before returning (tests of "provider down" set this false).
    pub discover: bool,
    /// Replace `POLICIES`.
    pub policies: Option<String>,
    /// Use this provider (another app's development provider) instead of starting one.
    pub issuer: Option<String>,
    /// `public_url = "http://{public_host}:PORT"` instead of the loopback
    /// address, so that `session.cookie_domain` can cover it; requests still
    /// go to `base` (a request naming no login host is served as the main domain).
    pub public_host: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top: String::new(),
            session: String::new(),
            oidc: String::new(),
            idp: false,
            configure_idp: |_| {},
            discover: true,
            policies: None,
            issuer: None,
            public_host: None,
        }
    }
}

/// Spawn without a provider (its issuer is unreachable): forward-auth only.
pub async fn spawn_plain(top: &str) -> TestApp {
    spawn(Options {
        top: top.into(),
        discover: false,
        ..Options::default()
    })
    .await
}

/// Spawn with the development provider, discovered and ready.
pub async fn spawn_with_idp() -> TestApp {
    spawn(Options {
        idp: true,
        ..Options::default()
    })
    .await
}

pub async fn spawn(opts: Options) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://127.0.0.1:{}", addr.port());
    let public_url = match opts.public_host {
        Some(host) => format!("http://{host}:{}", addr.port()),
        None => base.clone(),
    };
    let (issuer, idp) = if opts.idp {
        let mut cfg = DevIdpConfig {
            client_id: "pocketgate".into(),
            client_secret: Some("client-secret".into()),
            redirect_uris: vec![format!("{public_url}/callback")],
            post_logout_redirect_uris: vec![format!("{public_url}/logout/done")],
            backchannel_logout_uri: Some(format!("{base}/backchannel-logout")),
            ..DevIdpConfig::default()
        };
        (opts.configure_idp)(&mut cfg);
        let idp = DevIdp::start(cfg).await.unwrap();
        (idp.issuer().to_string(), Some(idp))
    } else if let Some(issuer) = opts.issuer.clone() {
        (issuer, None)
    } else {
        // Nothing listens on port 9 (discard) on loopback in the test sandbox.
        ("http://127.0.0.1:9".to_string(), None)
    };
    let mut secret_line = if opts.session.contains("secret") {
        String::new()
    } else {
        format!("secret = \"{SECRET}\"\n")
    };
    // Stateless cookies unless a test asks for a store (most tests forge
    // cookies); an embedded store gets a directory of its own.
    let mut state_dir = None;
    if !opts.session.contains("store =") {
        secret_line.push_str("store = \"cookie\"\n");
    } else if opts.session.contains("\"embedded\"") && !opts.session.contains("state_dir") {
        let dir = tempfile::tempdir().unwrap();
        secret_line.push_str(&format!(
            "state_dir = {:?}\n",
            dir.path().display().to_string()
        ));
        state_dir = Some(dir);
    }
    let public_client = opts.oidc.contains("client_auth = \"none\"");
    let client_secret = if public_client {
        ""
    } else {
        "client_secret = \"client-secret\"\n"
    };
    let toml = format!(
        "{top}\npublic_url = \"{public_url}\"\nlisten = \"{addr}\"\n[oidc]\nissuer = \"{issuer}\"\nclient_id = \"pocketgate\"\n{client_secret}{oidc}\n[session]\n{secret_line}{session}\n{policies}",
        top = opts.top,
        session = opts.session,
        oidc = opts.oidc,
        policies = opts.policies.as_deref().unwrap_or(POLICIES),
    );
    let loaded = load_str(&toml, &|_| None).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let runtime = Arc::new(loaded.value);
    let keys = SessionKeys::new(&runtime.session.secrets);
    let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims()).unwrap();
    if (opts.idp || opts.issuer.is_some()) && opts.discover {
        provider.discover().await.unwrap();
    }
    let store = pocketgate::session::store::Store::open(&runtime.session.store)
        .await
        .unwrap();
    let state = AppState::new(Arc::clone(&runtime), Arc::clone(&provider), store).unwrap();
    let app = Application::with_listener(
        state,
        listener,
        ServeOptions {
            workers: 1,
            signals: false,
            extra_routes: None,
        },
    )
    .unwrap();
    let state = app.state();
    let live = app.live();
    actix_web::rt::spawn(app.run());
    TestApp {
        addr,
        base,
        public_url,
        idp,
        runtime,
        keys,
        provider,
        state,
        live,
        state_dir,
        toml,
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn identity(user: &str, groups: &[&str]) -> Identity {
    Identity {
        subject: format!("sub-{user}"),
        user: user.into(),
        email: Some(format!("{user}@example.test")),
        email_verified: true,
        name: Some(format!("{user} Example")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        claims: Default::default(),
    }
}

impl TestApp {
    /// A `Cookie:` header value holding a session for `who`, sealed with `keys`.
    pub fn cookie_with(&self, keys: &SessionKeys, who: Identity, expires_in: i64) -> String {
        let now = now();
        let s = Session {
            identity: who,
            issued: now,
            expires: (now as i64 + expires_in) as u64,
        };
        format!("pocketgate={}", s.seal(keys))
    }

    /// A `Cookie:` header value for a valid one-hour session.
    pub fn cookie(&self, user: &str, groups: &[&str]) -> String {
        self.cookie_with(&self.keys, identity(user, groups), 3600)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A client that never follows redirects (tests look at every hop).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser-like client with a cookie jar, not following redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A response header's value, if present and text.
pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `Location` of a redirect.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// How a proxy asks: which endpoint, and which header style.
#[derive(Clone, Copy, Debug)]
pub enum Ask {
    /// Caddy / Traefik: /forward-auth with X-Forwarded-*.
    ForwardAuth,
    /// nginx: /auth-request with X-Original-URL.
    AuthRequest,
}

pub const BOTH: [Ask; 2] = [Ask::ForwardAuth, Ask::AuthRequest];

/// Ask pocketgate about `scheme://host{uri}` as a proxy would, with extra headers.
pub async fn ask(
    app: &TestApp,
    how: Ask,
    host: &str,
    uri: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let c = client();
    let mut req = match how {
        Ask::ForwardAuth => c
            .get(app.url("/forward-auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", uri),
        Ask::AuthRequest => c
            .get(app.url("/auth-request"))
            .header("X-Original-URL", format!("https://{host}{uri}"))
            .header("X-Original-Method", "GET"),
    };
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

pub const HTML: (&str, &str) = ("Accept", "text/html,application/xhtml+xml");
pub const JSON: (&str, &str) = ("Accept", "application/json");

/// Session keys from one secret (at least 32 bytes).
pub fn keys_for(secret: &str) -> SessionKeys {
    let secret =
        pocketgate::config::SessionSecret::new(secret).expect("test secrets are long enough");
    SessionKeys::new(&pocketgate::config::SessionSecrets::new(secret, Vec::new()))
}

/// The status /forward-auth gives an API client for `host` `/` with this Cookie header.
pub async fn forward_auth_status(app: &TestApp, host: &str, cookie: &str) -> u16 {
    ask(app, Ask::ForwardAuth, host, "/", &[("Cookie", cookie)])
        .await
        .status()
        .as_u16()
}

/// A record granting `groups` to `user`, as whoever writes to the store
/// would forge it: every field a session needs, in the record's own format.
pub fn forged_record(user: &str, groups: &[&str]) -> String {
    let now = now();
    let record = pocketgate::session::store::Record {
        identity: identity(user, groups),
        issued: now,
        expires: now + 3600,
        refreshed: now,
        refresh_token: None,
        id_token: None,
        sid: None,
        client: None,
        user_agent: None,
        refresh_failures: 0,
        retry_at: 0,
    };
    serde_json::to_string(&record).unwrap()
}

/// Wait until no process cache holds the record any more.
pub async fn wait_out_the_cache() {
    tokio::time::sleep(pocketgate::session::CACHE_TTL + std::time::Duration::from_millis(300))
        .await;
}

/// The `/metrics` page as text.
pub async fn metrics_text(app: &TestApp) -> String {
    client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn records_rejected(app: &TestApp) -> String {
    let metrics = metrics_text(app).await;
    metrics
        .lines()
        .find(|l| l.starts_with("pocketgate_session_records_rejected_total"))
        .unwrap_or("no pocketgate_session_records_rejected_total")
        .to_string()
}
