//! What the session service reports as it works (sessions started and
//! ended, cache hits, store calls, refreshes), through [`SessionEvents`],
//! which the HTTP layer implements with its metrics. This module only names
//! the events; it counts nothing itself.

use std::time::Duration;

/// Why sessions ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    Logout,
    RefreshInvalid,
    BackChannel,
    Revoke,
    Expired,
    /// Unused for longer than `session.idle_timeout`.
    Idle,
}

impl EndReason {
    /// Every reason, in label order.
    pub const ALL: [EndReason; 6] = [
        EndReason::Logout,
        EndReason::RefreshInvalid,
        EndReason::BackChannel,
        EndReason::Revoke,
        EndReason::Expired,
        EndReason::Idle,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::RefreshInvalid => "refresh_invalid",
            EndReason::BackChannel => "back_channel",
            EndReason::Revoke => "revoke",
            EndReason::Expired => "expired",
            EndReason::Idle => "idle",
        }
    }
}

/// What happened to one refresh attempt, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshOutcome {
    /// The provider confirmed the identity unchanged.
    Unchanged,
    /// Groups, e-mail or name changed and were taken over.
    Changed,
    /// `invalid_grant`: the session ended.
    Invalid,
    /// The provider could not be reached or failed: tried again later.
    Unavailable,
}

impl RefreshOutcome {
    /// Every outcome, in label order.
    pub const ALL: [RefreshOutcome; 4] = [
        RefreshOutcome::Unchanged,
        RefreshOutcome::Changed,
        RefreshOutcome::Invalid,
        RefreshOutcome::Unavailable,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Unchanged => "unchanged",
            RefreshOutcome::Changed => "changed",
            RefreshOutcome::Invalid => "invalid",
            RefreshOutcome::Unavailable => "unavailable",
        }
    }
}

/// Who wants to know what sessions do (the metrics). Implemented above this
/// module, so that it stays free of any metrics library.
pub trait SessionEvents: Send + Sync {
    /// A session started.
    fn created(&self);
    /// `count` sessions ended.
    fn ended(&self, reason: EndReason, count: usize);
    /// A lookup was answered from the cache (`hit`) or had to ask the store.
    fn cache(&self, hit: bool);
    /// One store call took `took`; `ok` unless it failed.
    fn store_call(&self, took: Duration, ok: bool);
    /// One refresh attempt ended so.
    fn refresh(&self, outcome: RefreshOutcome);
    /// A stored record did not open and was removed.
    fn record_rejected(&self);
}

/// Events nobody listens to.
#[derive(Debug, Default)]
pub struct NoEvents;

impl SessionEvents for NoEvents {
    fn created(&self) {}
    fn ended(&self, _: EndReason, _: usize) {}
    fn cache(&self, _: bool) {}
    fn store_call(&self, _: Duration, _: bool) {}
    fn refresh(&self, _: RefreshOutcome) {}
    fn record_rejected(&self) {}
}
