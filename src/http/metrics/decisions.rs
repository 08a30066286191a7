//! `pocketgate_decisions_total{endpoint,host,outcome}` and the decision
//! latency: the counters one configuration's hosts count with.
//!
//! The `host` label is the `[[hosts]]` entry that matched, spelled as its
//! pattern (`app.example.com`, `*.example.com`), or [`OTHER_HOST`] when none
//! did (`default_policy` or an unknown host). Never a value from the
//! request: the series are the configuration's hosts × endpoints × outcomes
//! whatever `Host` clients send. Each configuration (the first, and every
//! reload) resolves its hosts' series once, into a table indexed by the
//! entry's position, so counting a decision is an index and a relaxed atomic
//! increment: no lock, no hashing of a label set.
//!
//! Not for: deciding which host matched (`policy::Rules::lookup_host` did).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::time::Duration;

use super::labels::DecisionLabels;
use super::latency::Latency;
use super::{Endpoint, OUTCOMES};
use crate::policy::{HostMatch, Outcome, Rules};

/// The `host` label of decisions no `[[hosts]]` entry matched. The
/// parentheses keep it apart from every host pattern, which cannot hold them.
pub const OTHER_HOST: &str = "(other)";

/// One host's counters: by endpoint, then outcome (in `OUTCOMES` order).
type Table = [[Counter; OUTCOMES.len()]; Endpoint::ALL.len()];

/// The decision counters of one configuration, resolved when it was loaded
/// (see [`super::Metrics::decisions`]); held by the application state next to
/// the configuration they were resolved from.
#[derive(Debug, Clone)]
pub struct Decisions {
    /// By `HostRule::index`, the position of the entry among `[[hosts]]`.
    hosts: Box<[Table]>,
    other: Table,
    latency: Latency,
}

impl Decisions {
    /// The series of `rules`' hosts and of [`OTHER_HOST`] in `family`, made
    /// now when new (a host a reload added) and shared when they exist (a
    /// host that stayed keeps counting where it was).
    pub(super) fn resolve(
        family: &Family<DecisionLabels, Counter>,
        latency: &Latency,
        rules: &Rules,
    ) -> Decisions {
        let table = |host: &str| {
            Endpoint::ALL.map(|endpoint| {
                OUTCOMES.map(|outcome| {
                    family.get_or_create_owned(&DecisionLabels {
                        endpoint,
                        host: host.to_owned(),
                        outcome: outcome.as_str(),
                    })
                })
            })
        };
        Decisions {
            hosts: rules
                .hosts()
                .iter()
                .map(|h| table(&h.pattern.to_string()))
                .collect(),
            other: table(OTHER_HOST),
            latency: latency.clone(),
        }
    }

    /// Count one decision on `endpoint` for the request whose host matched
    /// `host`, and its latency.
    pub fn count(&self, endpoint: Endpoint, host: HostMatch<'_>, outcome: Outcome, took: Duration) {
        let table = match host {
            // A match from this configuration always has its row; `other`
            // only if a caller mixed up configurations.
            HostMatch::Entry(h) => self.hosts.get(h.index).unwrap_or(&self.other),
            HostMatch::Default(_) | HostMatch::Unknown => &self.other,
        };
        let o = match outcome {
            Outcome::Allow => 0,
            Outcome::Bypass => 1,
            Outcome::Login => 2,
            Outcome::Deny => 3,
            Outcome::StepUp => 4,
        };
        table[endpoint as usize][o].inc();
        self.latency.observe(took);
    }
}
