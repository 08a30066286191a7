//! `pocketgate demo`: the sidecar and the embedded development identity
//! provider on loopback, with demo pages that stand in for protected apps.
//!
//! The demo pages go through the same code as `/forward-auth` — the gate
//! (session or bearer token, decision, the host's header names, the
//! assertion) and the answer's mapping — and show what a backend behind a
//! proxy would receive. Nothing here is for production: secrets are random per
//! run, everything binds 127.0.0.1 only.

use std::borrow::Cow;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config;
use crate::gate;
use crate::http::metrics::Endpoint;
use crate::http::pages::escape;
use crate::http::respond::{self, Answer, Client};
use crate::http::State;
use crate::http::{now, AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::policy::Outcome;
use crate::request::{OriginalRequest, Scheme};
use crate::session::store::Store;
use dev_idp::{default_users, DevIdp, DevIdpConfig};

/// `demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Port of the sidecar on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 4180)]
    pub port: u16,
    /// Port of the development identity provider on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 4181)]
    pub idp_port: u16,
    /// Where the demo keeps sessions: embedded (a temporary directory), redis, or cookie.
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "redis", "cookie"])]
    pub store: String,
    /// With `--store redis`: the Redis or Valkey URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Sign an identity assertion on every allow (`[assertion] header =
    /// "X-Pocketgate-Assertion"`, its key generated into the demo's state directory).
    #[arg(long)]
    pub assertion: bool,
}

/// The demo's session store settings, as `[session]` lines.
fn store_lines(store: &str, redis_url: &str, dir: &std::path::Path) -> String {
    match store {
        "cookie" => "store = \"cookie\"\n".into(),
        "redis" => format!("store = \"redis\"\nredis_url = {redis_url:?}\n"),
        _ => format!("state_dir = {:?}\n", dir.display().to_string()),
    }
}

/// The demo's state (its configuration, the embedded store): a directory of
/// its own under the system's temporary directory, per demo started,
/// removed when the demo stops.
fn state_dir() -> std::path::PathBuf {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("pocketgate-demo-{}-{n}", std::process::id()))
}

/// The demo's apps: (host, what it shows).
const APPS: &[(&str, &str)] = &[
    (
        "app.demo.test",
        "policy users (groups admins or users); /public bypasses",
    ),
    ("admin.demo.test", "policy admins (group admins)"),
    (
        "grafana.demo.test",
        "policy admins, and a backend that wants its own header name ([hosts.headers] user = \"X-WEBAUTH-USER\", as Grafana's auth proxy)",
    ),
];

/// A running demo.
pub struct Demo {
    /// The sidecar, bound and ready to run.
    pub app: Application,
    /// The development provider (already serving).
    pub idp: DevIdp,
    /// The page to open.
    pub url: String,
    /// The configuration the demo runs, written out so that `pocketgate
    /// sessions list -c` (and `check`, `explain`) can be pointed at it.
    pub config: std::path::PathBuf,
    /// The demo's own directory: its configuration, the embedded store.
    pub state_dir: std::path::PathBuf,
    /// What the person should know before starting: a busy port replaced.
    pub notes: Vec<String>,
    /// Removes `state_dir` when the demo is dropped, however it ends (a
    /// test that never runs it included).
    _cleanup: RemoveOnDrop,
}

/// A directory removed, with what it holds, when this is dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A listener on 127.0.0.1:`port`, else on a free port with a note naming
/// the busy one and `option`, the flag that picks another.
fn bind(port: u16, option: &str, notes: &mut Vec<String>) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).or_else(|e| {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        notes.push(format!(
            "port {port} on 127.0.0.1 is busy ({e}); using {} instead (choose one with {option} PORT)",
            listener.local_addr()?.port()
        ));
        Ok(listener)
    })
}

/// Write the demo's configuration (it holds the demo's secrets: 0600, in a
/// 0700 directory).
fn write_config(toml: &str, dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = dir.join("pocketgate-demo.toml");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(toml.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Start the provider and prepare the sidecar. Ports that are taken fall back to free ones.
pub async fn start(port: u16, idp_port: u16, signals: bool) -> Result<Demo, String> {
    let dir = state_dir();
    start_with(
        port,
        idp_port,
        signals,
        (&store_lines("embedded", "", &dir), &dir),
        "",
    )
    .await
}

/// [`start`] as `pocketgate demo` with these options does: the store and
/// `--assertion` as given.
pub async fn start_from(args: &DemoArgs, signals: bool) -> Result<Demo, String> {
    let dir = state_dir();
    let lines = store_lines(&args.store, &args.redis_url, &dir);
    let more = if args.assertion { ASSERTION_TABLE } else { "" };
    start_with(args.port, args.idp_port, signals, (&lines, &dir), more).await
}

/// `[assertion]` for `demo --assertion`: the documented default header.
const ASSERTION_TABLE: &str = "[assertion]\nheader = \"X-Pocketgate-Assertion\"\n";

/// [`start`] with the `[session]` store lines, the state directory and
/// more tables given.
async fn start_with(
    port: u16,
    idp_port: u16,
    signals: bool,
    (store_lines, dir): (&str, &std::path::Path),
    more_tables: &str,
) -> Result<Demo, String> {
    let mut notes = Vec::new();
    let listener =
        bind(port, "--port", &mut notes).map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = format!("http://127.0.0.1:{}", addr.port());
    let random = |bytes| kit::random_token(bytes).map_err(|e| format!("no random source: {e}"));
    let client_secret = random(24)?;
    let idp_bind = match bind(idp_port, "--idp-port", &mut notes).and_then(|l| l.local_addr()) {
        Ok(a) => a,
        Err(e) => return Err(format!("cannot listen on 127.0.0.1: {e}")),
    };
    let idp = DevIdp::start(DevIdpConfig {
        bind: idp_bind,
        client_id: "pocketgate-demo".into(),
        client_secret: Some(client_secret.clone()),
        redirect_uris: vec![format!("{public_url}/callback")],
        post_logout_redirect_uris: vec![format!("{public_url}/logout/done")],
        ..DevIdpConfig::default()
    })
    .await
    .map_err(|e| format!("development identity provider: {e}"))?;

    let toml = format!(
        r#"
listen = "{addr}"
public_url = "{public_url}"
default_policy = "users"
[oidc]
issuer = "{issuer}"
client_id = "pocketgate-demo"
client_secret = "{client_secret}"
[session]
secret = "{session_secret}"
lifetime = "1h"
{store_lines}refresh_interval = "1m"
[policies.admins]
allowed_groups = ["admins"]
[policies.users]
allowed_groups = ["admins", "users"]
[[hosts]]
host = "app.demo.test"
policy = "users"
bypass_paths = ["/public"]
[[hosts]]
host = "admin.demo.test"
policy = "admins"
[[hosts]]
host = "grafana.demo.test"
policy = "admins"
[hosts.headers]
user = "X-WEBAUTH-USER"
{more_tables}"#,
        issuer = idp.issuer(),
        session_secret = random(32)?,
    );
    let loaded = config::load_str(&toml, &|_| None).map_err(|e| e.to_string())?;
    let config = write_config(&toml, dir)?;
    let runtime = Arc::new(loaded.value);
    let provider = Provider::new(runtime.oidc.clone(), runtime.rules.role_claims())
        .map_err(|e| e.to_string())?;
    provider
        .discover()
        .await
        .map_err(|e| format!("discovery against the development provider failed: {e}"))?;
    let store = Store::open(&runtime.session.store)
        .await
        .map_err(|e| e.to_string())?;
    let state = AppState::new(runtime, provider, store).map_err(|e| e.to_string())?;
    let app = Application::with_listener(
        state,
        listener,
        ServeOptions {
            workers: 2,
            signals,
            extra_routes: Some(routes),
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(Demo {
        url: format!("{public_url}/demo"),
        app,
        idp,
        config,
        state_dir: dir.to_path_buf(),
        notes,
        _cleanup: RemoveOnDrop(dir.to_path_buf()),
    })
}

/// `pocketgate demo`: start, print where to go, serve until Ctrl-C.
pub fn run(args: &DemoArgs) -> ExitCode {
    let _ = crate::telemetry::init(&config::LogSettings::default());
    actix_web::rt::System::new().block_on(async {
        let demo = match start_from(args, true).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("pocketgate demo: everything on loopback, nothing for production.\n");
        println!("  open      {}", demo.url);
        println!(
            "  sidecar   http://{}  (/forward-auth, /auth-request, /login, /whoami, /metrics)",
            demo.app.addr()
        );
        println!(
            "  provider  {}  (development identity provider)",
            demo.idp.issuer()
        );
        println!("  users     alice (admins, users), bob (users), carol (no groups)");
        println!("  config    {}", demo.config.display());
        let config = demo.config.display();
        match args.store.as_str() {
            "cookie" => println!(
                "  sessions  in the browsers' cookies (--store cookie): nothing to list or revoke"
            ),
            "redis" => println!(
                "  sessions  in redis (--redis-url); try: pocketgate sessions list -c {config}"
            ),
            _ => println!(
                "  sessions  in {}; try: pocketgate sessions list -c {config}",
                demo.state_dir.display()
            ),
        }
        println!();
        for note in &demo.notes {
            println!("note: {note}");
        }
        println!("Ctrl-C stops it.");
        let result = demo.app.run().await;
        demo.idp.stop().await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Routes of the demo pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo", web::get().to(index))
        .route("/demo/", web::get().to(index))
        .route("/demo/{host}/{tail:.*}", web::get().to(app));
}

async fn index(req: HttpRequest, state: State) -> HttpResponse {
    let who = match state.session(req.headers()).await.ok().flatten().map(|c| c.session) {
        Some(s) => format!(
            "<p>Signed in as <strong>{}</strong> (groups: {}). <a href=\"/logout?rd={}\">Sign out</a></p>",
            escape(&s.identity.user),
            escape(&if s.identity.groups.is_empty() { "none".to_string() } else { s.identity.groups.join(", ") }),
            escape(&url::form_urlencoded::byte_serialize(format!("{}/demo", state.runtime.public_url.origin).as_bytes()).collect::<String>())
        ),
        None => "<p>Not signed in. Opening an app below sends you to the development identity provider.</p>".into(),
    };
    let mut apps = String::from("<ul>");
    for (host, what) in APPS {
        apps.push_str(&format!(
            "<li><a href=\"/demo/{h}/\">{h}</a> — {w}</li>",
            h = escape(host),
            w = escape(what)
        ));
    }
    apps.push_str("<li><a href=\"/demo/app.demo.test/public/status\">app.demo.test/public/status</a> — a bypass path: no sign-in, no identity</li></ul>");
    let users: Vec<String> = default_users()
        .iter()
        .map(|u| {
            format!(
                "{} ({})",
                u.username,
                if u.groups.is_empty() {
                    "no groups".into()
                } else {
                    u.groups.join(", ")
                }
            )
        })
        .collect();
    respond::html(
        StatusCode::OK,
        "pocketgate demo",
        &format!(
            "{who}<p>Each link stands for a service behind your reverse proxy. pocketgate decides exactly as it would on <code>/forward-auth</code> and shows the headers the service would receive.</p>{apps}<p>Demo users: {}</p>",
            escape(&users.join("; "))
        ),
    )
}

async fn app(req: HttpRequest, state: State, path: web::Path<(String, String)>) -> HttpResponse {
    let (host, tail) = path.into_inner();
    let host = host.to_ascii_lowercase();
    let path = format!("/{tail}");
    let rt = &state.runtime;
    // The request a proxy would describe: https, this host and path, from here.
    let original = OriginalRequest {
        method: req.method().as_str(),
        method_given: true,
        scheme: Scheme::Https,
        host: Cow::Borrowed(&host),
        authority: Cow::Borrowed(&host),
        path: &path,
        query: None,
        client: crate::domain::ClientAddr::new(
            req.peer_addr()
                .map(|a| a.ip())
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        ),
    };
    let started = std::time::Instant::now();
    let cookies = state.session_cookies(req.headers());
    let credentials = state.credentials(req.headers(), &cookies);
    // The very gate /forward-auth asks: the host's header names, the assertion.
    let verdict = match gate::decide(&original, rt, state.services(), credentials, now()).await {
        Ok(v) => v,
        Err(e) => return respond::refused(e, Client::Browser, rt.support_contact.as_deref()),
    };
    // Counted as the /forward-auth it stands in for: the metrics show what
    // a person tried, demo or not (the gate already logged the decision).
    let (matched, outcome) = (verdict.decision.host, verdict.outcome());
    state
        .decisions
        .count(Endpoint::ForwardAuth, matched, outcome, started.elapsed());
    if verdict.outcome() == Outcome::Login {
        // The demo stands in for the proxy and follows the answer itself: back
        // to this page (on public_url) after signing in.
        let here = format!("{}/demo/{}{}", rt.public_url.origin, host, path);
        return respond::found(&format!(
            "/login?rd={}",
            url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ))
        .finish();
    }
    let (rule, reason) = (verdict.decision.rule_name(), verdict.reason());
    // The very answer /forward-auth would give the proxy, from the same mapping.
    let reply = respond::decision(&Answer {
        endpoint: Endpoint::ForwardAuth,
        client: Client::Api,
        verdict: &verdict,
    });
    let status = reply.status();
    let rows: String = reply
        .headers()
        .iter()
        // What the proxy passes on: every header but the answer's own framing.
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "cache-control" | "content-type" | "content-length"
            )
        })
        .map(|(n, v)| {
            format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(n.as_str()),
                escape(&String::from_utf8_lossy(v.as_bytes()))
            )
        })
        .collect();
    let what = match verdict.outcome() {
        Outcome::Allow => "A backend behind the proxy would receive these identity headers:".to_string(),
        Outcome::Bypass => "It passes without sign-in: the backend receives <em>no</em> identity headers (and the proxy strips any the client sent).".to_string(),
        _ => format!(
            "The proxy would show the refusal. <a href=\"/logout?rd={}\">Sign out</a> and try another user.",
            escape(&url::form_urlencoded::byte_serialize(format!("{}/demo/{}{}", rt.public_url.origin, host, path).as_bytes()).collect::<String>())
        ),
    };
    let table = if rows.is_empty() {
        String::new()
    } else {
        format!("<table><tr><th>header</th><th>value</th></tr>{rows}</table>")
    };
    respond::html(
        status,
        &format!("{}: {}", status.as_u16(), verdict.outcome()),
        &format!(
            "<p><strong>{}{}</strong>: {}</p><p>Rule: <code>{}</code>. pocketgate answers the proxy <code>{}</code>. {what}</p>{table}<p><a href=\"/demo\">Back to the demo</a></p>",
            escape(&host),
            escape(&path),
            escape(&reason),
            escape(&rule),
            status,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_named_with_the_option_to_change_it() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let mut notes = Vec::new();
        let got = bind(port, "--port", &mut notes).unwrap();
        assert_ne!(got.local_addr().unwrap().port(), port);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(&format!("port {port} on 127.0.0.1 is busy"))
                && notes[0].contains("--port PORT"),
            "{notes:?}"
        );
        let free = got.local_addr().unwrap().port();
        drop(got);
        let mut quiet = Vec::new();
        bind(free, "--port", &mut quiet).unwrap();
        assert!(quiet.is_empty(), "{quiet:?}");
    }
}
