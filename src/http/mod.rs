//! The actix-web front: thin handlers that turn requests into the engine's
//! input and its decisions into responses, plus the application builder.
//!
//! Nothing here decides: `request` reconstructs the original request, `policy`
//! decides, `session` opens cookies, `oidc` talks to the provider. This module
//! maps their answers to status codes, headers and pages.

mod auth;
mod login;
pub mod metrics;
pub mod pages;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::config::Runtime;
use crate::oidc::Provider;
use crate::session::{self, CookieSettings, Session, SessionKeys};
pub use auth::identity_headers;
pub use login::{validate_rd, BadRedirect};
use metrics::Metrics;

/// Everything a handler needs, built once.
pub struct AppState {
    pub runtime: Arc<Runtime>,
    pub keys: SessionKeys,
    pub cookie: CookieSettings,
    pub headers: IdentityHeaderNames,
    pub provider: Arc<Provider>,
    pub metrics: Metrics,
    /// Extra pages mounted by `pocketgate demo`.
    pub demo: bool,
}

/// The identity header names as ready-made header names.
#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub groups: HeaderName,
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("session.secret: {0}")]
    Keys(#[from] session::KeyError),
    #[error("headers: {0}")]
    Header(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

impl AppState {
    /// Derive keys and header names from the runtime configuration.
    pub fn new(runtime: Arc<Runtime>, provider: Arc<Provider>) -> Result<AppState, BuildError> {
        let keys = SessionKeys::new(&runtime.session.secrets)?;
        let name =
            |s: &str| HeaderName::try_from(s).map_err(|e| BuildError::Header(format!("{s}: {e}")));
        let headers = IdentityHeaderNames {
            user: name(&runtime.headers.user)?,
            email: name(&runtime.headers.email)?,
            name: name(&runtime.headers.name)?,
            groups: name(&runtime.headers.groups)?,
        };
        let cookie = CookieSettings {
            name: runtime.session.cookie_name.clone(),
            domain: runtime.session.cookie_domain.clone(),
            secure: runtime.public_url.https,
            lifetime: runtime.session.lifetime,
        };
        Ok(AppState {
            runtime,
            keys,
            cookie,
            headers,
            provider,
            metrics: Metrics::default(),
            demo: false,
        })
    }

    /// The session the request carries, if it opens and has not expired.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let pairs = request_cookies(headers, &self.cookie.name);
        let now = now();
        // Several cookies of that exact name can arrive (a stale host-only one
        // next to the cookie_domain one, or one set from a sibling host): the
        // first that opens is the session, not merely the first sent.
        for (n, v) in &pairs {
            if *n == self.cookie.name {
                if let Some(s) = Session::open(&self.keys, v, now) {
                    return Some(s);
                }
            }
        }
        let chunks: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(n, _)| *n != self.cookie.name)
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let value = session::read_cookie_value(&self.cookie.name, &chunks)?;
        Session::open(&self.keys, &value, now)
    }
}

/// The request's cookies whose name starts with `prefix` (the session family and flow cookies).
pub(crate) fn request_cookies(headers: &HeaderMap, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        if let Ok(s) = v.to_str() {
            if !s.contains(prefix) {
                continue;
            }
            out.extend(
                session::parse_cookie_header(s)
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(prefix)),
            );
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mount every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/forward-auth", web::to(auth::forward_auth))
        .route("/auth-request", web::to(auth::auth_request))
        .route("/whoami", web::get().to(auth::whoami))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_page))
        .route("/login", web::get().to(login::login))
        .route("/callback", web::get().to(login::callback))
        .route("/logout", web::get().to(login::logout))
        .route("/logout/done", web::get().to(login::logout_done))
        .route("/", web::get().to(login::index));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.provider.is_ready() {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!(
                "not ready: provider metadata from {} not loaded yet{}\n",
                state.runtime.oidc.issuer,
                state
                    .provider
                    .last_error()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ))
    }
}

async fn metrics_page(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(state.metrics.render(state.provider.is_ready()))
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    state: web::Data<AppState>,
}

/// Knobs for [`Application::build`].
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Stop gracefully on SIGTERM/SIGINT (off in tests, which run many servers in one process).
    pub signals: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            workers: 0,
            signals: true,
        }
    }
}

impl Application {
    /// Bind `runtime.listen` (port 0 picks a free port) and prepare the server.
    pub fn build(state: AppState, options: ServeOptions) -> Result<Application, BuildError> {
        let addr = state.runtime.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| BuildError::Bind { addr, source })?;
        Self::with_listener(state, listener, options)
    }

    /// Serve on an already bound listener.
    pub fn with_listener(
        state: AppState,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<Application, BuildError> {
        let addr = listener.local_addr().map_err(|source| BuildError::Bind {
            addr: state.runtime.listen,
            source,
        })?;
        let state = web::Data::new(state);
        let data = state.clone();
        let demo = state.demo;
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(data.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    actix_web::error::InternalError::from_response(
                        "",
                        HttpResponse::BadRequest()
                            .content_type("text/plain")
                            .body(format!("bad query string: {e}\n")),
                    )
                    .into()
                }))
                .configure(routes);
            if demo {
                app.configure(crate::demo::routes)
            } else {
                app.configure(|_| {})
            }
        })
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| BuildError::Bind { addr, source })?;
        if options.workers > 0 {
            server = server.workers(options.workers);
        }
        if !options.signals {
            server = server.disable_signals();
        }
        Ok(Application {
            server: server.run(),
            addr,
            state,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shared state (tests read metrics through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Run until stopped (signal or handle).
    pub async fn run(self) -> io::Result<()> {
        self.server.await
    }
}

/// How long a login flow may take.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// Helper for handlers: whether the caller is a person's browser navigating,
/// rather than a script or XHR. Navigation needs `Accept: text/html`; an
/// `X-Requested-With: XMLHttpRequest` or a `Sec-Fetch-Mode` other than
/// `navigate` marks a script.
pub fn is_browser(headers: &HeaderMap) -> bool {
    if headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
    {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        if !mode.as_bytes().eq_ignore_ascii_case(b"navigate") {
            return false;
        }
    }
    headers
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

pub(crate) fn text(status: actix_web::http::StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into())
}

pub(crate) fn html(
    status: actix_web::http::StatusCode,
    title: &str,
    body_html: &str,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(pages::page(title, body_html))
}

pub(crate) fn peer_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|a| a.ip())
}
