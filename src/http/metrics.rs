//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Plain atomics: incrementing one costs a few nanoseconds and takes no lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::policy::Outcome;

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
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    ForwardAuth = 0,
    AuthRequest = 1,
}

impl Endpoint {
    fn label(i: usize) -> &'static str {
        if i == 0 {
            "forward-auth"
        } else {
            "auth-request"
        }
    }
}

/// Login-flow events.
#[derive(Debug, Clone, Copy)]
pub enum LoginEvent {
    Started = 0,
    Completed = 1,
    Failed = 2,
    Logout = 3,
}

const LOGIN_LABELS: [&str; 4] = ["started", "completed", "failed", "logout"];

/// All counters.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: [[AtomicU64; 4]; 2],
    bad_requests: [AtomicU64; 2],
    logins: [AtomicU64; 4],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Count one decision and its latency.
    pub fn decision(&self, endpoint: Endpoint, outcome: Outcome, took: Duration) {
        let o = OUTCOMES.iter().position(|x| *x == outcome).unwrap_or(0);
        self.decisions[endpoint as usize][o].fetch_add(1, Relaxed);
        self.observe(took);
    }

    /// Count one request whose original request could not be reconstructed.
    pub fn bad_request(&self, endpoint: Endpoint) {
        self.bad_requests[endpoint as usize].fetch_add(1, Relaxed);
    }

    /// Count one login-flow event.
    pub fn login(&self, event: LoginEvent) {
        self.logins[event as usize].fetch_add(1, Relaxed);
    }

    fn observe(&self, took: Duration) {
        // One increment in the first bucket that holds it; render() accumulates.
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_nanos
            .fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, ready: bool) -> String {
        let mut s = String::with_capacity(2048);
        s.push_str("# HELP pocketgate_decisions_total Auth decisions by endpoint and outcome.\n# TYPE pocketgate_decisions_total counter\n");
        for (e, row) in self.decisions.iter().enumerate() {
            for (o, c) in row.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "pocketgate_decisions_total{{endpoint=\"{}\",outcome=\"{}\"}} {}",
                    Endpoint::label(e),
                    OUTCOMES[o].as_str(),
                    c.load(Relaxed)
                );
            }
        }
        s.push_str("# HELP pocketgate_bad_requests_total Auth requests whose original request could not be reconstructed (400).\n# TYPE pocketgate_bad_requests_total counter\n");
        for (e, c) in self.bad_requests.iter().enumerate() {
            let _ = writeln!(
                s,
                "pocketgate_bad_requests_total{{endpoint=\"{}\"}} {}",
                Endpoint::label(e),
                c.load(Relaxed)
            );
        }
        s.push_str("# HELP pocketgate_login_events_total Login flow events.\n# TYPE pocketgate_login_events_total counter\n");
        for (i, c) in self.logins.iter().enumerate() {
            let _ = writeln!(
                s,
                "pocketgate_login_events_total{{event=\"{}\"}} {}",
                LOGIN_LABELS[i],
                c.load(Relaxed)
            );
        }
        s.push_str("# HELP pocketgate_decision_duration_seconds Time to decide one auth request.\n# TYPE pocketgate_decision_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(
                s,
                "pocketgate_decision_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            s,
            "pocketgate_decision_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "pocketgate_decision_duration_seconds_sum {}",
            self.latency_sum_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "pocketgate_decision_duration_seconds_count {count}");
        s.push_str("# HELP pocketgate_provider_ready Whether provider metadata is loaded.\n# TYPE pocketgate_provider_ready gauge\n");
        let _ = writeln!(s, "pocketgate_provider_ready {}", u8::from(ready));
        s
    }
}
