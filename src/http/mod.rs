//! The actix-web front: thin handlers that turn requests into the engine's
//! input and its decisions into responses, plus the application builder.
//!
//! Nothing here decides: `request` reconstructs the original request, `gate`
//! answers it (the session or bearer token, `policy`'s decision, the
//! assertion), `session` opens cookies, `oidc` talks to the provider. This
//! module maps their answers to status codes, headers and pages.

mod auth;
mod backchannel;
mod login;
pub mod metrics;
pub mod pages;
mod refresh;
pub(crate) mod respond;
mod scim;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Payload, Server, ServerHandle, Service};
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, App, FromRequest, HttpRequest, HttpResponse, HttpServer};
use arc_swap::ArcSwap;

use crate::assertion::{AssertionError, Assertions};
use crate::config::HeaderNames;
use crate::config::{BearerSettings, LoginDomain, Runtime, SessionShape};
use crate::oidc::bearer::BearerAuth;
pub use crate::oidc::flow::{validate_rd, BadRedirect};
use crate::oidc::Provider;
use crate::session::store::{Store, StoreError};
use crate::session::{self, CookieSettings, Current, SessionKeys, Sessions};
use metrics::Metrics;
pub use respond::identity_headers;
use respond::Readiness;

/// Everything a handler needs, built once.
pub struct AppState {
    pub runtime: Arc<Runtime>,
    /// Seal and open flow cookies (sessions have their own, in `sessions`).
    pub keys: SessionKeys,
    pub cookie: CookieSettings,
    pub headers: HeaderNames,
    pub provider: Arc<Provider>,
    pub sessions: Sessions,
    pub metrics: Arc<Metrics>,
    /// The decision counters of this configuration's hosts, in `metrics`.
    pub decisions: metrics::Decisions,
    /// The signed identity assertion, when `[assertion]` is set.
    pub assertion: Option<Arc<Assertions>>,
    /// `[bearer]`: bearer-token authentication and its caches, when enabled.
    pub bearer: Option<Arc<BearerAuth>>,
    /// `[scim]`: the directory SCIM clients push, when configured.
    pub directory: Option<crate::scim::Directory>,
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("metrics_listen: cannot listen on {addr}: {source}")]
    MetricsBind { addr: SocketAddr, source: io::Error },
    #[error("assertion: {0}")]
    Assertion(#[from] AssertionError),
}

impl AppState {
    /// Derive keys and cookie settings from the runtime configuration, which
    /// has already checked everything that could be wrong with them. `store`
    /// is the opened `session.store` (`None` for stateless cookies). Fails
    /// only when a generated assertion key cannot be kept in `state_dir`.
    pub fn new(
        runtime: Arc<Runtime>,
        provider: Arc<Provider>,
        store: Option<Store>,
    ) -> Result<AppState, BuildError> {
        let assertion = assertions(&runtime, None)?;
        let metrics = Arc::new(Metrics::default());
        Ok(AppState::assemble(
            runtime,
            provider,
            assertion,
            metrics.clone(),
            |runtime, keys, cookie| {
                Sessions::new(
                    keys,
                    cookie,
                    store,
                    runtime.session.refresh_interval,
                    metrics,
                )
                .with_idle_timeout(
                    runtime.session.idle_timeout,
                    runtime.session.shortest_idle(),
                )
            },
            |provider, b| Arc::new(BearerAuth::new(provider.clone(), b.clone())),
            crate::scim::Directory::new,
        ))
    }

    /// The state for a reloaded configuration: `runtime` and `provider` are
    /// the new ones; the store (a restart-only setting) and the metrics carry
    /// over, so counters and sessions survive the reload; so do the
    /// assertion keys (a generated one, and a replaced one stays published
    /// until its last assertion expired).
    pub fn rebuilt(
        &self,
        runtime: Arc<Runtime>,
        provider: Arc<Provider>,
    ) -> Result<AppState, BuildError> {
        let assertion = assertions(&runtime, self.assertion.as_deref())?;
        Ok(AppState::assemble(
            runtime,
            provider,
            assertion,
            self.metrics.clone(),
            |runtime, keys, cookie| {
                self.sessions
                    .reconfigured(keys, cookie, runtime.session.refresh_interval)
                    .with_idle_timeout(
                        runtime.session.idle_timeout,
                        runtime.session.shortest_idle(),
                    )
            },
            // The token caches carry over unless what they depend on changed.
            |provider, b| match &self.bearer {
                Some(old) if old.serves(provider, b) => old.clone(),
                _ => Arc::new(BearerAuth::new(provider.clone(), b.clone())),
            },
            // The directory's snapshot carries over; the secret is the new one.
            |keys| match &self.directory {
                Some(old) => old.reconfigured(keys),
                None => crate::scim::Directory::new(keys),
            },
        ))
    }

    /// What a first build and a reload share: keys and cookie settings
    /// derived from `runtime`, the sessions over them, and bearer
    /// authentication when `[bearer]` is on — how the sessions and the
    /// bearer caches are had is where the two differ.
    fn assemble(
        runtime: Arc<Runtime>,
        provider: Arc<Provider>,
        assertion: Option<Arc<Assertions>>,
        metrics: Arc<Metrics>,
        sessions: impl FnOnce(&Runtime, SessionKeys, CookieSettings) -> Sessions,
        bearer: impl FnOnce(&Arc<Provider>, &BearerSettings) -> Arc<BearerAuth>,
        directory: impl FnOnce(SessionKeys) -> crate::scim::Directory,
    ) -> AppState {
        let (keys, cookie) = keys_and_cookie(&runtime);
        let sessions = sessions(&runtime, keys.clone(), cookie.clone());
        let bearer = runtime.bearer.as_ref().map(|b| bearer(&provider, b));
        let directory = runtime.scim.as_ref().map(|_| directory(keys.clone()));
        AppState {
            decisions: metrics.decisions(&runtime.rules),
            headers: runtime.headers.clone(),
            runtime,
            keys,
            cookie,
            provider,
            sessions,
            metrics,
            assertion,
            bearer,
            directory,
        }
    }

    /// The session cookie's attributes on `domain`: its `Domain` and, when
    /// its public URL is https, `Secure`; name and lifetime as configured.
    pub(crate) fn cookie_for(&self, domain: &LoginDomain) -> CookieSettings {
        CookieSettings {
            domain: domain
                .cookie_domain
                .as_ref()
                .map(|d| d.as_str().to_string()),
            secure: domain.public_url.https,
            ..self.cookie.clone()
        }
    }

    /// The session the request carries, if it opens and lives. Only the
    /// session cookie's own family is looked at, and nothing is copied unless
    /// the value is chunked; why a cookie was refused is logged at debug.
    pub async fn session(&self, headers: &HeaderMap) -> Result<Option<Current>, StoreError> {
        self.session_on(headers, SessionShape::default()).await
    }

    /// The request's session as a request to a host with `shape` sees it
    /// (a host's `idle_timeout` and `lifetime`).
    pub async fn session_on(
        &self,
        headers: &HeaderMap,
        shape: SessionShape,
    ) -> Result<Option<Current>, StoreError> {
        let pairs = self.session_cookies(headers);
        if pairs.is_empty() {
            return Ok(None);
        }
        self.sessions.current_on(&pairs, now(), shape).await
    }

    /// The names of our session cookies the request carries.
    pub(crate) fn session_cookie_names<'h>(&self, headers: &'h HeaderMap) -> Vec<&'h str> {
        let name = self.cookie.name.as_str();
        let hint = session::logout_hint_cookie_name(name);
        cookie_values(headers, |n| session::is_family(name, n) || n == hint)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
}

fn assertions(
    runtime: &Runtime,
    previous: Option<&Assertions>,
) -> Result<Option<Arc<Assertions>>, AssertionError> {
    runtime
        .assertion
        .as_ref()
        .map(|settings| {
            Assertions::new(
                settings,
                &runtime.public_url.origin,
                &runtime.session.store,
                previous,
                now(),
            )
            .map(Arc::new)
        })
        .transpose()
}

fn keys_and_cookie(runtime: &Runtime) -> (SessionKeys, CookieSettings) {
    let keys = SessionKeys::new(&runtime.session.secrets);
    let cookie = CookieSettings {
        name: runtime.session.cookie_name.clone(),
        domain: runtime
            .session
            .cookie_domain
            .as_ref()
            .map(|d| d.as_str().to_string()),
        secure: runtime.public_url.https,
        lifetime: runtime.session.lifetime,
    };
    (keys, cookie)
}

/// The application state in force: replaced whole on a configuration reload,
/// read without a lock. A request loads it once ([`State`]) and keeps that
/// snapshot to the end, so no request sees half of one configuration and
/// half of another.
pub struct LiveState(ArcSwap<AppState>);

impl LiveState {
    /// Start with `state`.
    pub fn new(state: AppState) -> LiveState {
        LiveState(ArcSwap::from_pointee(state))
    }

    /// The state in force now.
    pub fn load(&self) -> Arc<AppState> {
        self.0.load_full()
    }

    /// Put `state` in force for every request that starts from now on.
    pub fn replace(&self, state: AppState) {
        self.0.store(Arc::new(state));
    }
}

/// A handler's view of the state in force when its request arrived.
#[derive(Clone)]
pub struct State(Arc<AppState>);

impl std::ops::Deref for State {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl FromRequest for State {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<State, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(match req.app_data::<web::Data<LiveState>>() {
            Some(live) => Ok(State(live.load())),
            None => Err(actix_web::error::ErrorInternalServerError(
                "application state is not configured",
            )),
        })
    }
}

/// The request's cookies whose name `keep` accepts, borrowed from its headers.
pub(crate) fn cookie_values(headers: &HeaderMap, keep: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
    session::request_pairs(
        headers
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok()),
        keep,
    )
}

pub(crate) use kit::unix_now as now;

/// Mount every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/forward-auth", web::to(auth::forward_auth))
        .route("/auth-request", web::to(auth::auth_request))
        .route("/whoami", web::get().to(auth::whoami))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_page))
        .route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/login", web::get().to(login::login))
        .route("/callback", web::get().to(login::callback))
        .service(
            web::resource("/logout")
                .route(web::get().to(login::logout))
                .route(web::post().to(login::logout_post)),
        )
        .route("/logout/done", web::get().to(login::logout_done))
        .service(
            web::resource("/backchannel-logout")
                .app_data(web::FormConfig::default().limit(backchannel::MAX_BODY))
                .route(web::post().to(backchannel::backchannel_logout)),
        )
        .route("/", web::get().to(login::index))
        .configure(scim::routes);
}

async fn healthz() -> HttpResponse {
    respond::alive()
}

async fn readyz(state: State) -> HttpResponse {
    respond::readiness(readiness(&state).await)
}

/// Ready when the session store answers and the provider's metadata is loaded.
async fn readiness(state: &State) -> Readiness {
    if let Some(store) = state.sessions.store() {
        if let Err(e) = store.ping().await {
            return Readiness::NotReady(e.to_string());
        }
    }
    if state.provider.is_ready() {
        return Readiness::Ready;
    }
    Readiness::NotReady(format!(
        "provider metadata from {} not loaded yet{}",
        state.runtime.oidc.issuer,
        state
            .provider
            .last_error()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    ))
}

/// The public keys of the identity assertion; an empty set when it is off.
async fn jwks(state: State) -> HttpResponse {
    let body = match &state.assertion {
        Some(a) => a.jwks(now()),
        None => serde_json::json!({ "keys": [] }),
    };
    respond::jwks(body)
}

async fn metrics_page(state: State) -> HttpResponse {
    // Loaded metadata is not enough for `pocketgate_provider_ready`: a
    // provider that stopped answering after discovery reads 0. Asked as a
    // sign-in asks (its answer kept a few seconds, 2 s at most).
    let ready = state.provider.is_ready() && state.provider.reachable().await.is_ok();
    respond::metrics(metrics::CONTENT_TYPE, state.metrics.render(ready))
}

/// The routes of `metrics_listen`: what a scraper or an orchestrator asks.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_page))
        .route("/readyz", web::get().to(readyz));
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// The `metrics_listen` server, stopped when the main one stops.
    metrics: Option<(Server, SocketAddr)>,
    live: web::Data<LiveState>,
}

/// Knobs for [`Application::build`].
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Stop gracefully on SIGTERM/SIGINT (off in tests, which run many servers in one process).
    pub signals: bool,
    /// More routes mounted beside pocketgate's own: how a layer above (the
    /// demo) plugs pages in without this module knowing it.
    pub extra_routes: Option<fn(&mut web::ServiceConfig)>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            workers: 0,
            signals: true,
            extra_routes: None,
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
        let metrics_listen = state.runtime.metrics_listen;
        let live = web::Data::new(LiveState::new(state));
        let metrics = metrics_listen
            .map(|addr| metrics_server(addr, live.clone()))
            .transpose()?;
        let data = live.clone();
        let extra_routes = options.extra_routes;
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(data.clone())
                .app_data(web::QueryConfig::default().error_handler(respond::bad_query))
                .wrap_fn(|req, srv| {
                    let answer = srv.call(req);
                    async move { metrics::count_server_errors(answer.await) }
                })
                .configure(routes);
            match extra_routes {
                Some(extra) => app.configure(extra),
                None => app.configure(|_| {}),
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
            metrics,
            live,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound `metrics_listen` address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The state in force now (tests read metrics through it).
    pub fn state(&self) -> Arc<AppState> {
        self.live.load()
    }

    /// The holder of the state in force, for reloading it.
    pub fn live(&self) -> web::Data<LiveState> {
        self.live.clone()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Run until stopped (signal or handle); the `metrics_listen` server
    /// stops with the main one.
    pub async fn run(self) -> io::Result<()> {
        let Some((metrics, _)) = self.metrics else {
            return self.server.await;
        };
        let metrics_handle = metrics.handle();
        let metrics_task = actix_web::rt::spawn(metrics);
        let result = self.server.await;
        metrics_handle.stop(true).await;
        // The metrics server's own outcome matters no more once the main one ended.
        let _ = metrics_task.await;
        result
    }
}

/// Bind `addr` and prepare the server of [`metrics_routes`] on it: one
/// worker, no signal handling of its own (it stops with the main server).
fn metrics_server(
    addr: SocketAddr,
    live: web::Data<LiveState>,
) -> Result<(Server, SocketAddr), BuildError> {
    let bind = |source| BuildError::MetricsBind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let server =
        HttpServer::new(move || App::new().app_data(live.clone()).configure(metrics_routes))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .map_err(bind)?
            .run();
    Ok((server, bound))
}

/// How long a login flow may take.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

pub(crate) fn peer_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|a| a.ip())
}
