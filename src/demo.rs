//! `pocketgate demo`: the sidecar and the embedded development identity
//! provider on loopback, with demo pages that stand in for protected apps.
//!
//! The demo pages go through the same code as `/forward-auth` — the decision
//! engine and the identity-header mapping — and show what a backend behind a
//! proxy would receive. Nothing here is for production: secrets are random per
//! run, everything binds 127.0.0.1 only.

use std::borrow::Cow;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config;
use crate::http::metrics::Endpoint;
use crate::http::pages::escape;
use crate::http::respond::{self, Answer, Client, Rejection};
use crate::http::State;
use crate::http::{AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::policy::{self, Outcome, RequestFacts};
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
fn store_lines(store: &str, redis_url: &str) -> String {
    match store {
        "cookie" => "store = \"cookie\"\n".into(),
        "redis" => format!("store = \"redis\"\nredis_url = {redis_url:?}\n"),
        _ => format!("state_dir = {:?}\n", state_dir().display().to_string()),
    }
}

/// The demo's session store: a directory of its own under the system's
/// temporary directory, per process, removed when the demo stops.
fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pocketgate-demo-{}", std::process::id()))
}

/// The demo's apps: (host, what it shows).
const APPS: &[(&str, &str)] = &[
    (
        "app.demo.test",
        "policy users (groups admins or users); /public bypasses",
    ),
    ("admin.demo.test", "policy admins (group admins)"),
];

/// A running demo.
pub struct Demo {
    /// The sidecar, bound and ready to run.
    pub app: Application,
    /// The development provider (already serving).
    pub idp: DevIdp,
    /// The page to open.
    pub url: String,
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .or_else(|_| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
}

/// Start the provider and prepare the sidecar. Ports that are taken fall back to free ones.
pub async fn start(port: u16, idp_port: u16, signals: bool) -> Result<Demo, String> {
    start_with(port, idp_port, signals, &store_lines("embedded", ""), "").await
}

/// `[assertion]` for `demo --assertion`: the documented default header.
const ASSERTION_TABLE: &str = "[assertion]\nheader = \"X-Pocketgate-Assertion\"\n";

/// [`start`] with the `[session]` store lines and more tables given.
async fn start_with(
    port: u16,
    idp_port: u16,
    signals: bool,
    store_lines: &str,
    more_tables: &str,
) -> Result<Demo, String> {
    let listener = bind(port).map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = format!("http://127.0.0.1:{}", addr.port());
    let random = |bytes| kit::random_token(bytes).map_err(|e| format!("no random source: {e}"));
    let client_secret = random(24)?;
    let idp_bind = match bind(idp_port).and_then(|l| l.local_addr()) {
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
{more_tables}"#,
        issuer = idp.issuer(),
        session_secret = random(32)?,
    );
    let loaded = config::load_str(&toml, &|_| None).map_err(|e| e.to_string())?;
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
    })
}

/// `pocketgate demo`: start, print where to go, serve until Ctrl-C.
pub fn run(args: &DemoArgs) -> ExitCode {
    crate::telemetry::init(&config::LogSettings::default());
    actix_web::rt::System::new().block_on(async {
        let lines = store_lines(&args.store, &args.redis_url);
        let more = if args.assertion { ASSERTION_TABLE } else { "" };
        let demo = match start_with(args.port, args.idp_port, true, &lines, more).await {
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
        println!("  users     alice (admins, users), bob (users), carol (no groups)\n");
        println!("Ctrl-C stops it.");
        let result = demo.app.run().await;
        demo.idp.stop().await;
        let _ = std::fs::remove_dir_all(state_dir());
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
    let client = crate::domain::ClientAddr::new(
        req.peer_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
    );
    let current = match state.session(req.headers()).await {
        Ok(c) => c,
        Err(e) => return respond::reject(&Rejection::StoreUnavailable(e), Client::Browser),
    };
    let identity = current.as_ref().map(|c| &*c.session.identity);
    let facts = RequestFacts {
        host: &host,
        path: &path,
        client,
        method: Some(req.method().as_str()),
    };
    let decision = policy::decide(&rt.rules, &facts, identity);
    let rule = decision.rule_name();
    let reason = decision.reason(&rt.rules, &facts, identity);
    if decision.outcome == Outcome::Login {
        // The demo stands in for the proxy and follows the answer itself: back
        // to this page (on public_url) after signing in.
        let here = format!("{}/demo/{}{}", rt.public_url.origin, host, path);
        return respond::found(&format!(
            "/login?rd={}",
            url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ))
        .finish();
    }
    // The very answer /forward-auth would give the proxy, from the same mapping.
    let original = OriginalRequest {
        method: req.method().as_str(),
        method_given: true,
        scheme: Scheme::Https,
        host: Cow::Borrowed(&host),
        authority: Cow::Borrowed(&host),
        path: &path,
        query: None,
        client,
    };
    let answer = Answer {
        endpoint: Endpoint::ForwardAuth,
        client: Client::Api,
        public_url: &rt.public_url,
        original: &original,
        names: &state.headers,
        identity,
        assertion: None,
    };
    let reply = respond::decision(decision.outcome, &answer, || reason.clone());
    let status = reply.status();
    let rows: String = reply
        .headers()
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-"))
        .map(|(n, v)| {
            format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(n.as_str()),
                escape(&String::from_utf8_lossy(v.as_bytes()))
            )
        })
        .collect();
    let what = match decision.outcome {
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
        &format!("{}: {}", status.as_u16(), decision.outcome),
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
