//! What `/login` makes of its return address under step-up: the address is
//! routed through the policy as a `GET` from the browser's address, with
//! the browser's session, exactly as `/forward-auth` would judge it. The
//! requirement of a step-up flow comes from there, never from a query
//! parameter.

use crate::config::Runtime;
use crate::domain::ClientAddr;
use crate::policy::{self, Identity, Missing, Outcome, RequestFacts, Route, Rule, StepUp};
use crate::request::parse_absolute_url;

/// What a sign-in started for a return address must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginNeed<'r> {
    /// An ordinary sign-in: the address asks nothing of the sign-in, or
    /// there is no session to step up.
    Plain,
    /// The session already meets what the address asks: go back there.
    Met,
    /// The session is admitted but its sign-in lacks `Missing`: a step-up.
    StepUp(&'r StepUp, Missing),
}

/// What the return address `rd` (already checked against the
/// configuration) asks of the sign-in of `identity`, at `now`.
pub fn login_need<'r>(
    runtime: &'r Runtime,
    rd: &str,
    client: ClientAddr,
    identity: Option<&Identity>,
    now: u64,
) -> LoginNeed<'r> {
    let Ok(url) = parse_absolute_url(rd) else {
        return LoginNeed::Plain;
    };
    let facts = RequestFacts {
        host: &url.host,
        path: url.path,
        client,
        method: Some("GET"),
    };
    let Route::NeedsIdentity(pending) = policy::route(&runtime.rules, &facts) else {
        return LoginNeed::Plain;
    };
    if pending.step_up().is_none() || identity.is_none() {
        return LoginNeed::Plain;
    }
    let decision = pending.judge(identity, now);
    match (decision.outcome, decision.rule, decision.step_up) {
        (Outcome::StepUp, Rule::StepUp { missing, .. }, Some(req)) => {
            LoginNeed::StepUp(req, missing)
        }
        (Outcome::Allow, ..) => LoginNeed::Met,
        // Denied whatever the sign-in: a fresh one would not help.
        _ => LoginNeed::Plain,
    }
}
