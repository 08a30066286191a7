//! `pocketgate_session*`: what the session service reports through
//! [`SessionEvents`], counted on series created once.
//!
//! Not for: deciding anything about sessions; `session` says what happened.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{OutcomeLabels, ReasonLabels, ResultLabels};
use super::{counter_series, registered, Metrics};
use crate::session::{EndReason, RefreshOutcome, SessionEvents};

/// Upper bounds of the session-store latency histogram, in seconds.
const STORE_BUCKETS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// Session counters, resolved once (no lock per event).
#[derive(Debug)]
pub(super) struct SessionMetrics {
    created: Counter,
    ended: [Counter; EndReason::ALL.len()],
    cache: [Counter; 2],
    store_errors: Counter,
    store_latency: Histogram,
    refreshes: [Counter; RefreshOutcome::ALL.len()],
    records_rejected: Counter,
}

impl SessionMetrics {
    pub(super) fn register(registry: &mut Registry) -> SessionMetrics {
        // Fields are registered in the order written: the order of the page.
        SessionMetrics {
            created: registered(
                registry,
                "pocketgate_sessions_created",
                "Sessions started at login",
            ),
            ended: counter_series(
                registry,
                "pocketgate_sessions_ended",
                "Sessions ended on the server, by reason",
                EndReason::ALL.map(|r| ReasonLabels { reason: r.as_str() }),
            ),
            cache: counter_series(
                registry,
                "pocketgate_session_cache_lookups",
                "Session lookups answered by the in-process cache (hit) or the store (miss)",
                ["hit", "miss"].map(|result| ResultLabels { result }),
            ),
            store_errors: registered(
                registry,
                "pocketgate_session_store_errors",
                "Session store calls that failed",
            ),
            store_latency: {
                let store_latency = Histogram::new(STORE_BUCKETS);
                registry.register_with_unit(
                    "pocketgate_session_store_duration",
                    "Time of one session lookup in the store",
                    Unit::Seconds,
                    store_latency.clone(),
                );
                store_latency
            },
            refreshes: counter_series(
                registry,
                "pocketgate_session_refreshes",
                "Identity refreshes with the provider, by outcome",
                RefreshOutcome::ALL.map(|o| OutcomeLabels {
                    outcome: o.as_str(),
                }),
            ),
            records_rejected: registered(
                registry,
                "pocketgate_session_records_rejected",
                "Stored session records that did not open (edited, copied, foreign key, garbage) and were removed",
            ),
        }
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

    fn store_call(&self, took: std::time::Duration, ok: bool) {
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
