//! The metrics behind `/metrics`, encoded by `prometheus-client` as
//! OpenMetrics text.
//!
//! Every series a request can touch is created once, at construction: the
//! counter of each endpoint × outcome, of each bad-request endpoint × reason,
//! of each login event, and the latency histogram. Handlers hold on to those
//! handles, so recording is one or two relaxed atomic increments: no lock, no
//! hashing of a label set, no allocation (looking a series up in a `Family`
//! per request would take its read lock and hash the labels). The crate's
//! registry and encoder only run when Prometheus scrapes.
//!
//! Not for: deciding anything. Handlers say what happened; this module only
//! counts it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use prometheus_client::metrics::histogram::Histogram;

use crate::oidc::bearer::Throttle;
use crate::policy::Outcome;
use crate::request::RequestError;
use crate::session::{EndReason, RefreshOutcome, SessionEvents};

/// The `Content-Type` of [`Metrics::render`]'s text, as the crate's encoder documents it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const OUTCOMES: [Outcome; 4] = [
    Outcome::Allow,
    Outcome::Bypass,
    Outcome::Login,
    Outcome::Deny,
];

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 8] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.1,
];

/// Which auth endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ForwardAuth = 0,
    AuthRequest = 1,
}

impl Endpoint {
    const ALL: [Endpoint; 2] = [Endpoint::ForwardAuth, Endpoint::AuthRequest];

    /// The `endpoint` label value: the path without its slash.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ForwardAuth => "forward-auth",
            Endpoint::AuthRequest => "auth-request",
        }
    }
}

impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// Every endpoint that refuses bad input with a 400: the `endpoint` label of
/// `pocketgate_bad_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadRequestEndpoint {
    ForwardAuth = 0,
    AuthRequest = 1,
    Login = 2,
    Logout = 3,
    Callback = 4,
}

impl BadRequestEndpoint {
    const ALL: [BadRequestEndpoint; 5] = [
        BadRequestEndpoint::ForwardAuth,
        BadRequestEndpoint::AuthRequest,
        BadRequestEndpoint::Login,
        BadRequestEndpoint::Logout,
        BadRequestEndpoint::Callback,
    ];

    /// The `endpoint` label value: the path without its slash.
    pub fn as_str(self) -> &'static str {
        match self {
            BadRequestEndpoint::ForwardAuth => Endpoint::ForwardAuth.as_str(),
            BadRequestEndpoint::AuthRequest => Endpoint::AuthRequest.as_str(),
            BadRequestEndpoint::Login => "login",
            BadRequestEndpoint::Logout => "logout",
            BadRequestEndpoint::Callback => "callback",
        }
    }
}

impl From<Endpoint> for BadRequestEndpoint {
    fn from(e: Endpoint) -> Self {
        match e {
            Endpoint::ForwardAuth => BadRequestEndpoint::ForwardAuth,
            Endpoint::AuthRequest => BadRequestEndpoint::AuthRequest,
        }
    }
}

impl EncodeLabelValue for BadRequestEndpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// Why a request was refused as bad input (400): the `reason` label of
/// `pocketgate_bad_requests_total`. A closed set, so the series stay bounded
/// whatever clients send.
// The derive writes each variant's name as its label value, verbatim: the
// names are spelled as the values dashboards see.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum BadRequestReason {
    /// The connection has no peer address to check against `trusted_proxies`.
    no_peer = 0,
    /// The peer is not in `trusted_proxies`, so its headers are not believed.
    untrusted_peer = 1,
    /// Neither `X-Forwarded-Host` + `X-Forwarded-Uri` nor `X-Original-URL`
    /// (or only half of the forwarded pair): the proxy does not describe the request.
    missing_header = 2,
    /// A describing header is present but unusable: repeated, empty, not
    /// ASCII, not a host, path, URL, scheme or method, or a bad `X-Forwarded-For`.
    bad_header = 3,
    /// `X-Original-URL` and `X-Forwarded-*` describe different requests: one
    /// of them came from the client.
    conflicting_description = 4,
    /// `/login` or `/logout` refused the `rd` return address.
    bad_rd = 5,
    /// `/callback` refused the answer from the provider as a bad request
    /// (no or unknown state, expired flow, `iss` missing or wrong, no code,
    /// an error or a refused code exchange).
    bad_flow = 6,
}

impl BadRequestReason {
    const ALL: [BadRequestReason; 7] = [
        BadRequestReason::no_peer,
        BadRequestReason::untrusted_peer,
        BadRequestReason::missing_header,
        BadRequestReason::bad_header,
        BadRequestReason::conflicting_description,
        BadRequestReason::bad_rd,
        BadRequestReason::bad_flow,
    ];
}

impl From<&RequestError> for BadRequestReason {
    fn from(e: &RequestError) -> Self {
        match e {
            RequestError::UntrustedPeer { .. } => BadRequestReason::untrusted_peer,
            RequestError::Missing { .. } => BadRequestReason::missing_header,
            RequestError::Malformed { .. } => BadRequestReason::bad_header,
            RequestError::Conflicting => BadRequestReason::conflicting_description,
        }
    }
}

/// Whether a handler can refuse a request on `endpoint` for `reason`. Those
/// series exist (at 0) from the start, so dashboards see them before the
/// first refusal, and counting them takes no lock.
fn can_happen(endpoint: BadRequestEndpoint, reason: BadRequestReason) -> bool {
    use BadRequestEndpoint as E;
    use BadRequestReason as R;
    match reason {
        R::no_peer
        | R::untrusted_peer
        | R::missing_header
        | R::bad_header
        | R::conflicting_description => matches!(endpoint, E::ForwardAuth | E::AuthRequest),
        R::bad_rd => matches!(endpoint, E::Login | E::Logout),
        R::bad_flow => endpoint == E::Callback,
    }
}

/// Login-flow events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginEvent {
    Started = 0,
    Completed = 1,
    Failed = 2,
    Logout = 3,
}

impl LoginEvent {
    const ALL: [LoginEvent; 4] = [
        LoginEvent::Started,
        LoginEvent::Completed,
        LoginEvent::Failed,
        LoginEvent::Logout,
    ];

    /// The `event` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginEvent::Started => "started",
            LoginEvent::Completed => "completed",
            LoginEvent::Failed => "failed",
            LoginEvent::Logout => "logout",
        }
    }
}

impl EncodeLabelValue for LoginEvent {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// How a bearer token was answered: the `result` label of
/// `pocketgate_bearer_tokens_total`. A closed set, whatever tokens arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BearerResult {
    /// Accepted from the in-memory cache.
    Cached = 0,
    /// Accepted: a JWT verified, identity from its claims.
    Jwt = 1,
    /// Accepted: the provider's userinfo endpoint answered for it.
    Userinfo = 2,
    /// Refused: 401 `invalid_token`.
    Invalid = 3,
    /// Not checked: the provider could not answer (503).
    Unavailable = 4,
    /// Accepted: the provider's introspection endpoint vouched for it.
    Introspection = 5,
    /// Not checked: the bounds on provider lookups were reached (503).
    Throttled = 6,
}

impl BearerResult {
    const ALL: [BearerResult; 7] = [
        BearerResult::Cached,
        BearerResult::Jwt,
        BearerResult::Userinfo,
        BearerResult::Invalid,
        BearerResult::Unavailable,
        BearerResult::Introspection,
        BearerResult::Throttled,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BearerResult::Cached => "cached",
            BearerResult::Jwt => "jwt",
            BearerResult::Userinfo => "userinfo",
            BearerResult::Invalid => "invalid",
            BearerResult::Unavailable => "unavailable",
            BearerResult::Introspection => "introspection",
            BearerResult::Throttled => "throttled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    endpoint: Endpoint,
    /// `Outcome::as_str`: the one spelling logs, `explain` and metrics share.
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BadRequestLabels {
    endpoint: BadRequestEndpoint,
    reason: BadRequestReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    event: LoginEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Upper bounds of the session-store latency histogram, in seconds.
const STORE_BUCKETS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// Session counters, resolved once (no lock per event).
#[derive(Debug)]
struct SessionMetrics {
    created: Counter,
    ended: [Counter; EndReason::ALL.len()],
    cache: [Counter; 2],
    store_errors: Counter,
    store_latency: Histogram,
    refreshes: [Counter; RefreshOutcome::ALL.len()],
    records_rejected: Counter,
}

impl SessionMetrics {
    fn register(registry: &mut Registry) -> SessionMetrics {
        let created = Counter::default();
        registry.register(
            "pocketgate_sessions_created",
            "Sessions started at login",
            created.clone(),
        );
        let ended_family = Family::<ReasonLabels, Counter>::default();
        let ended = EndReason::ALL
            .map(|r| ended_family.get_or_create_owned(&ReasonLabels { reason: r.as_str() }));
        registry.register(
            "pocketgate_sessions_ended",
            "Sessions ended on the server, by reason",
            ended_family,
        );
        let cache_family = Family::<ResultLabels, Counter>::default();
        let cache = ["hit", "miss"]
            .map(|result| cache_family.get_or_create_owned(&ResultLabels { result }));
        registry.register(
            "pocketgate_session_cache_lookups",
            "Session lookups answered by the in-process cache (hit) or the store (miss)",
            cache_family,
        );
        let store_errors = Counter::default();
        registry.register(
            "pocketgate_session_store_errors",
            "Session store calls that failed",
            store_errors.clone(),
        );
        let store_latency = Histogram::new(STORE_BUCKETS);
        registry.register_with_unit(
            "pocketgate_session_store_duration",
            "Time of one session lookup in the store",
            Unit::Seconds,
            store_latency.clone(),
        );
        let refresh_family = Family::<OutcomeLabels, Counter>::default();
        let refreshes = RefreshOutcome::ALL.map(|o| {
            refresh_family.get_or_create_owned(&OutcomeLabels {
                outcome: o.as_str(),
            })
        });
        registry.register(
            "pocketgate_session_refreshes",
            "Identity refreshes with the provider, by outcome",
            refresh_family,
        );
        let records_rejected = Counter::default();
        registry.register(
            "pocketgate_session_records_rejected",
            "Stored session records that did not open (edited, copied, foreign key, garbage) and were removed",
            records_rejected.clone(),
        );
        SessionMetrics {
            created,
            ended,
            cache,
            store_errors,
            store_latency,
            refreshes,
            records_rejected,
        }
    }
}

/// A classic histogram over [`BUCKETS`] in plain atomics, encoded by the
/// crate. `prometheus_client`'s own `Histogram` takes a mutex per
/// observation, which the request path must not.
#[derive(Debug, Clone, Default)]
struct Latency(Arc<LatencyCounts>);

#[derive(Debug, Default)]
struct LatencyCounts {
    /// Observations per bucket, not cumulative (the encoder accumulates); the
    /// last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Latency {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.0.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let mut buckets = [(f64::INFINITY, 0); BUCKETS.len() + 1];
        for (i, (le, n)) in buckets.iter_mut().enumerate() {
            *le = BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *n = self.0.buckets[i].load(Relaxed);
        }
        // The count is the sum of the buckets read here, so `_count` always
        // equals the `+Inf` bucket, even while requests are being counted.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Every metric of `/metrics`, and the handles the handlers count with.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: [[Counter; OUTCOMES.len()]; Endpoint::ALL.len()],
    bad_requests: Family<BadRequestLabels, Counter>,
    /// The series of [`can_happen`] combinations, by endpoint and reason.
    bad_request_counters:
        [[Option<Counter>; BadRequestReason::ALL.len()]; BadRequestEndpoint::ALL.len()],
    logins: [Counter; LoginEvent::ALL.len()],
    latency: Latency,
    provider_ready: Gauge,
    sessions: SessionMetrics,
    reloads: ReloadMetrics,
    bearer: [Counter; BearerResult::ALL.len()],
    /// `pocketgate_bearer_throttled_total{reason="in_flight"|"client_budget"}`.
    bearer_throttled: [Counter; 2],
}

/// `pocketgate_config_*`: how configuration reloads went.
#[derive(Debug)]
struct ReloadMetrics {
    /// `result="success"`, `result="error"`.
    total: [Counter; 2],
    last_success: Gauge,
    last_ok: Gauge,
}

impl ReloadMetrics {
    fn register(registry: &mut Registry) -> ReloadMetrics {
        let family = Family::<ResultLabels, Counter>::default();
        let total =
            ["success", "error"].map(|result| family.get_or_create_owned(&ResultLabels { result }));
        registry.register(
            "pocketgate_config_reloads",
            "Configuration reloads (SIGHUP or a changed file), by result",
            family,
        );
        let last_success = Gauge::default();
        registry.register(
            "pocketgate_config_last_reload_success_timestamp_seconds",
            "When the configuration in force was loaded (Unix time; the start counts)",
            last_success.clone(),
        );
        let last_ok = Gauge::default();
        registry.register(
            "pocketgate_config_last_reload_successful",
            "Whether the last reload attempt succeeded (1) or the previous configuration stayed (0)",
            last_ok.clone(),
        );
        last_ok.set(1);
        ReloadMetrics {
            total,
            last_success,
            last_ok,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();

        let decision_family = Family::<DecisionLabels, Counter>::default();
        let decisions = Endpoint::ALL.map(|endpoint| {
            OUTCOMES.map(|outcome| {
                decision_family.get_or_create_owned(&DecisionLabels {
                    endpoint,
                    outcome: outcome.as_str(),
                })
            })
        });
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "pocketgate_decisions",
            "Auth decisions by endpoint and outcome",
            decision_family,
        );

        let bad_requests = Family::<BadRequestLabels, Counter>::default();
        let bad_request_counters = BadRequestEndpoint::ALL.map(|endpoint| {
            BadRequestReason::ALL.map(|reason| {
                can_happen(endpoint, reason).then(|| {
                    bad_requests.get_or_create_owned(&BadRequestLabels { endpoint, reason })
                })
            })
        });
        registry.register(
            "pocketgate_bad_requests",
            "Requests refused as bad input (400), by endpoint and reason",
            bad_requests.clone(),
        );

        let login_family = Family::<LoginLabels, Counter>::default();
        let logins =
            LoginEvent::ALL.map(|event| login_family.get_or_create_owned(&LoginLabels { event }));
        registry.register("pocketgate_login_events", "Login flow events", login_family);

        let latency = Latency::default();
        registry.register_with_unit(
            "pocketgate_decision_duration",
            "Time to decide one auth request",
            Unit::Seconds,
            latency.clone(),
        );

        let provider_ready = Gauge::default();
        registry.register(
            "pocketgate_provider_ready",
            "Whether provider metadata is loaded (1) or not (0)",
            provider_ready.clone(),
        );

        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "pocketgate_build_info",
            "The running pocketgate's version; always 1",
            build_info,
        );

        let bearer_family = Family::<ResultLabels, Counter>::default();
        let bearer = BearerResult::ALL
            .map(|r| bearer_family.get_or_create_owned(&ResultLabels { result: r.as_str() }));
        registry.register(
            "pocketgate_bearer_tokens",
            "Bearer tokens on the auth endpoints, by result",
            bearer_family,
        );
        let throttled_family = Family::<ReasonLabels, Counter>::default();
        let bearer_throttled = [Throttle::InFlight(0), Throttle::ClientBudget(0)]
            .map(|t| throttled_family.get_or_create_owned(&ReasonLabels { reason: t.as_str() }));
        registry.register(
            "pocketgate_bearer_throttled",
            "Bearer tokens not checked because provider lookups were at their bound, by reason",
            throttled_family,
        );

        let sessions = SessionMetrics::register(&mut registry);
        let reloads = ReloadMetrics::register(&mut registry);
        reloads
            .last_success
            .set(i64::try_from(kit::unix_now()).unwrap_or(i64::MAX));

        Metrics {
            bearer,
            bearer_throttled,
            reloads,
            sessions,
            registry,
            decisions,
            bad_requests,
            bad_request_counters,
            logins,
            latency,
            provider_ready,
        }
    }
}

impl Metrics {
    /// Count one decision and its latency.
    pub fn decision(&self, endpoint: Endpoint, outcome: Outcome, took: Duration) {
        let o = match outcome {
            Outcome::Allow => 0,
            Outcome::Bypass => 1,
            Outcome::Login => 2,
            Outcome::Deny => 3,
        };
        self.decisions[endpoint as usize][o].inc();
        self.latency.observe(took);
    }

    /// Count one request refused as bad input.
    pub fn bad_request(&self, endpoint: impl Into<BadRequestEndpoint>, reason: BadRequestReason) {
        let endpoint = endpoint.into();
        match &self.bad_request_counters[endpoint as usize][reason as usize] {
            Some(counter) => {
                counter.inc();
            }
            // A combination no handler produces today: still counted, at the
            // price of the family's lock.
            None => {
                self.bad_requests
                    .get_or_create(&BadRequestLabels { endpoint, reason })
                    .inc();
            }
        }
    }

    /// Count one bearer token's answer.
    pub fn bearer(&self, result: BearerResult) {
        self.bearer[result as usize].inc();
    }

    /// Count one bearer token not checked for `reason`.
    pub fn bearer_throttled(&self, reason: Throttle) {
        self.bearer[BearerResult::Throttled as usize].inc();
        let i = match reason {
            Throttle::InFlight(_) => 0,
            Throttle::ClientBudget(_) => 1,
        };
        self.bearer_throttled[i].inc();
    }

    /// Count one login-flow event.
    pub fn login(&self, event: LoginEvent) {
        self.logins[event as usize].inc();
    }

    /// Count one configuration reload; `at` is its Unix time.
    pub fn config_reload(&self, ok: bool, at: u64) {
        self.reloads.total[usize::from(!ok)].inc();
        self.reloads.last_ok.set(i64::from(ok));
        if ok {
            self.reloads
                .last_success
                .set(i64::try_from(at).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text, ending in `# EOF` (serve it as [`CONTENT_TYPE`]).
    pub fn render(&self, provider_ready: bool) -> String {
        self.provider_ready.set(i64::from(provider_ready));
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl SessionEvents for Metrics {
    fn created(&self) {
        self.sessions.created.inc();
    }

    fn ended(&self, reason: EndReason, count: usize) {
        if let Some(c) = EndReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.sessions.ended.get(i))
        {
            c.inc_by(count as u64);
        }
    }

    fn cache(&self, hit: bool) {
        self.sessions.cache[usize::from(!hit)].inc();
    }

    fn store_call(&self, took: Duration, ok: bool) {
        self.sessions.store_latency.observe(took.as_secs_f64());
        if !ok {
            self.sessions.store_errors.inc();
        }
    }

    fn refresh(&self, outcome: RefreshOutcome) {
        if let Some(c) = RefreshOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .and_then(|i| self.sessions.refreshes.get(i))
        {
            c.inc();
        }
    }

    fn record_rejected(&self) {
        self.sessions.records_rejected.inc();
    }
}

#[cfg(test)]
mod tests;
