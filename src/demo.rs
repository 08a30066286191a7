//! `pocketgate demo`: the sidecar and the embedded development identity
//! provider on loopback, with demo pages that stand in for protected apps.
//!
//! The demo pages go through the same code as `/forward-auth` — the decision
//! engine and the identity-header mapping — and show what a backend behind a
//! proxy would receive. Nothing here is for production: secrets are random per
//! run, everything binds 127.0.0.1 only.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config;
use crate::http::pages::escape;
use crate::http::{identity_headers, AppState, Application, ServeOptions};
use crate::oidc::Provider;
use crate::policy::{self, Outcome, RequestFacts};
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
"#,
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
    let state = AppState::new(runtime, provider);
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
        let demo = match start(args.port, args.idp_port, true).await {
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

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(crate::http::pages::page(title, body))
}

async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let who = match state.session(req.headers()) {
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
    page(
        StatusCode::OK,
        "pocketgate demo",
        &format!(
            "{who}<p>Each link stands for a service behind your reverse proxy. pocketgate decides exactly as it would on <code>/forward-auth</code> and shows the headers the service would receive.</p>{apps}<p>Demo users: {}</p>",
            escape(&users.join("; "))
        ),
    )
}

async fn app(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (host, tail) = path.into_inner();
    let host = host.to_ascii_lowercase();
    let path = format!("/{tail}");
    let rt = &state.runtime;
    let client = crate::domain::ClientAddr::new(
        req.peer_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
    );
    let session = state.session(req.headers());
    let identity = session.as_ref().map(|s| &s.identity);
    let facts = RequestFacts {
        host: &host,
        path: &path,
        client,
    };
    let decision = policy::decide(&rt.rules, &facts, identity);
    let rule = decision.rule_name();
    let reason = decision.reason(&rt.rules, &facts, identity);
    let here = format!("{}/demo/{}{}", rt.public_url.origin, host, path);
    let back = "<p><a href=\"/demo\">Back to the demo</a></p>";
    match decision.outcome {
        Outcome::Login => HttpResponse::Found()
            .insert_header((
                header::LOCATION,
                format!(
                    "/login?rd={}",
                    url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
                ),
            ))
            .finish(),
        Outcome::Deny => page(
            StatusCode::FORBIDDEN,
            "403: denied",
            &format!(
                "<p><strong>{}</strong> refused: {}</p><p>Rule: <code>{}</code></p><p><a href=\"/logout?rd={}\">Sign out</a> and try another user.</p>{back}",
                escape(&host),
                escape(&reason),
                escape(&rule),
                escape(&url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>())
            ),
        ),
        Outcome::Bypass => page(
            StatusCode::OK,
            "200: bypass",
            &format!(
                "<p><strong>{}{}</strong> passes without sign-in: {}</p><p>The backend receives <em>no</em> identity headers (and the proxy strips any the client sent).</p>{back}",
                escape(&host),
                escape(&path),
                escape(&reason)
            ),
        ),
        Outcome::Allow => {
            let rows = match identity.map(|i| identity_headers(&state.headers, i)) {
                Some(Ok(h)) => h
                    .iter()
                    .map(|(n, v)| {
                        format!(
                            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                            escape(n.as_str()),
                            escape(&String::from_utf8_lossy(v.as_bytes()))
                        )
                    })
                    .collect::<String>(),
                _ => String::new(),
            };
            page(
                StatusCode::OK,
                "200: allowed",
                &format!(
                    "<p><strong>{}{}</strong>: {}</p><p>Rule: <code>{}</code>. A backend behind the proxy would receive:</p><table><tr><th>header</th><th>value</th></tr>{rows}</table>{back}",
                    escape(&host),
                    escape(&path),
                    escape(&reason),
                    escape(&rule)
                ),
            )
        }
    }
}
