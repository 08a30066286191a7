//! The metrics behind `/metrics`, encoded by `prometheus-client` as
//! OpenMetrics text.
//!
//! Every series a request can touch is created once, at construction: the
//! counter of each bad-request endpoint × reason, of each login event, of
//! each group of 5xx answers, and the latency histogram; the decision counters
//! of each host × endpoint × outcome when a configuration is loaded
//! ([`Metrics::decisions`]). Handlers hold on to those
//! handles, so recording is one or two relaxed atomic increments: no lock, no
//! hashing of a label set, no allocation (looking a series up in a `Family`
//! per request would take its read lock and hash the labels). The crate's
//! registry and encoder only run when Prometheus scrapes.
//!
//! Not for: deciding anything. Handlers say what happened; this module only
//! counts it.

use std::fmt::Debug;
use std::hash::Hash;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::oidc::bearer::Throttle;
use crate::policy::{Outcome, Rules};

mod decisions;
mod labels;
mod latency;
mod server_errors;
mod session;

pub use decisions::{Decisions, OTHER_HOST};
use labels::{
    can_happen, BadRequestLabels, BuildLabels, DecisionLabels, GroupLabels, LoginLabels,
    ReasonLabels, ResultLabels,
};
pub use labels::{
    BadRequestEndpoint, BadRequestReason, BearerResult, Endpoint, LoginEvent, ServerErrorGroup,
};
use latency::Latency;
pub use server_errors::count_server_errors;
use session::SessionMetrics;

/// The `Content-Type` of [`Metrics::render`]'s text, as the crate's encoder documents it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const OUTCOMES: [Outcome; 5] = [
    Outcome::Allow,
    Outcome::Bypass,
    Outcome::Login,
    Outcome::Deny,
    Outcome::StepUp,
];

/// Registers one unlabelled metric under `name` and returns its handle.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// Registers a counter family under `name` with a series for each of
/// `labels`, created now, and returns their handles in that order.
fn counter_series<L, const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    labels: [L; N],
) -> [Counter; N]
where
    L: EncodeLabelSet + Clone + Eq + Hash + Debug + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    let series = labels.map(|l| family.get_or_create_owned(&l));
    registry.register(name, help, family);
    series
}

/// Every metric of `/metrics`, and the handles the handlers count with.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `pocketgate_decisions_total{endpoint,host,outcome}`: each
    /// configuration's hosts resolve their series here ([`Metrics::decisions`]).
    decisions: Family<DecisionLabels, Counter>,
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
    /// `pocketgate_server_errors_total{group}`.
    server_errors: [Counter; ServerErrorGroup::ALL.len()],
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
        let total = counter_series(
            registry,
            "pocketgate_config_reloads",
            "Configuration reloads (SIGHUP or a changed file), by result",
            ["success", "error"].map(|result| ResultLabels { result }),
        );
        let last_success = registered(
            registry,
            "pocketgate_config_last_reload_success_timestamp_seconds",
            "When the configuration in force was loaded (Unix time; the start counts)",
        );
        let last_ok: Gauge = registered(
            registry,
            "pocketgate_config_last_reload_successful",
            "Whether the last reload attempt succeeded (1) or the previous configuration stayed (0)",
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

        let decisions = Family::<DecisionLabels, Counter>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "pocketgate_decisions",
            "Auth decisions by endpoint, [[hosts]] entry (\"(other)\": none matched) and outcome",
            decisions.clone(),
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

        let logins = counter_series(
            &mut registry,
            "pocketgate_login_events",
            "Login flow events",
            LoginEvent::ALL.map(|event| LoginLabels { event }),
        );

        let latency = Latency::default();
        registry.register_with_unit(
            "pocketgate_decision_duration",
            "Time to decide one auth request",
            Unit::Seconds,
            latency.clone(),
        );

        let provider_ready = registered(
            &mut registry,
            "pocketgate_provider_ready",
            "Whether provider metadata is loaded and the provider answers now (1) or not (0)",
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

        let bearer = counter_series(
            &mut registry,
            "pocketgate_bearer_tokens",
            "Bearer tokens on the auth endpoints, by result",
            BearerResult::ALL.map(|r| ResultLabels { result: r.as_str() }),
        );
        let bearer_throttled = counter_series(
            &mut registry,
            "pocketgate_bearer_throttled",
            "Bearer tokens not checked because provider lookups were at their bound, by reason",
            [Throttle::InFlight(0), Throttle::ClientBudget(0)]
                .map(|t| ReasonLabels { reason: t.as_str() }),
        );

        let server_errors = counter_series(
            &mut registry,
            "pocketgate_server_errors",
            "Answers pocketgate gave with a 5xx status, by group of endpoints",
            ServerErrorGroup::ALL.map(|group| GroupLabels { group }),
        );

        let sessions = SessionMetrics::register(&mut registry);
        let reloads = ReloadMetrics::register(&mut registry);
        reloads
            .last_success
            .set(i64::try_from(kit::unix_now()).unwrap_or(i64::MAX));

        Metrics {
            bearer,
            bearer_throttled,
            server_errors,
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
    /// The decision counters of a configuration with `rules`: resolve them
    /// once when it is loaded, and count its decisions with them. Series of
    /// hosts an earlier configuration had stay, at their last count.
    pub fn decisions(&self, rules: &Rules) -> Decisions {
        Decisions::resolve(&self.decisions, &self.latency, rules)
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

    /// Count one answer with a 5xx status.
    pub fn server_error(&self, group: ServerErrorGroup) {
        self.server_errors[group as usize].inc();
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

#[cfg(test)]
mod tests;
