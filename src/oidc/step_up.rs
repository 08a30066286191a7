//! The callback's side of step-up: when the new sign-in happened, and
//! whether it meets what the flow recorded when it started.
//!
//! Pocket ID 2.9.0 sends no `auth_time`, but honours `prompt=login` by
//! asking for a fresh passkey assertion. So the sign-in time is the ID
//! token's `auth_time` when present; else, only for a flow pocketgate
//! started with `prompt=login`, the time the callback verified the ID token
//! (the provider authenticated the user again within this flow); else
//! unknown. A provider that ignores `prompt=login` and omits `auth_time`
//! cannot be told apart from one that honours it.

use crate::policy::{Missing, SignIn, StepUp};
use crate::session::{FlowStepUp, MAX_CLOCK_SKEW};

/// The sign-in's time: `claimed` (the ID token's `auth_time`, already
/// refused when in the future), else `now` for a flow started with
/// `prompt=login` (`prompted`), else unknown.
pub fn sign_in_time(claimed: Option<u64>, prompted: bool, now: u64) -> Option<u64> {
    claimed.or(prompted.then_some(now))
}

/// What the step-up flow's sign-in lacks: a time at or after the flow's
/// start (less [`MAX_CLOCK_SKEW`]) when the rule sets `max_age` and, when the rule names methods, one of
/// them. An unknown time never passes.
pub fn missing(flow: &FlowStepUp, sign_in: &SignIn) -> Missing {
    let floor = flow.started.saturating_sub(MAX_CLOCK_SKEW);
    let age = flow.max_age.is_some() && sign_in.auth_time.is_none_or(|t| t < floor);
    let amr = !flow.amr.is_empty() && !sign_in.amr.iter().any(|m| flow.amr.contains(m));
    Missing { age, amr }
}

/// The flow's record as a requirement, for the words of the step-up page.
pub fn requirement(flow: &FlowStepUp) -> StepUp {
    StepUp {
        max_age: flow.max_age,
        amr: flow.amr.clone(),
        ..StepUp::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_700_000_000;

    fn flow(max_age: Option<u64>, amr: &[&str]) -> FlowStepUp {
        FlowStepUp {
            max_age,
            amr: amr.iter().map(|s| s.to_string()).collect(),
            started: START,
        }
    }

    fn signed(at: Option<u64>, amr: &[&str]) -> SignIn {
        SignIn {
            auth_time: at,
            amr: amr.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_sign_in_time_is_auth_time_else_the_prompted_flows_callback_else_unknown() {
        assert_eq!(sign_in_time(Some(5), true, 9), Some(5));
        assert_eq!(sign_in_time(None, true, 9), Some(9));
        assert_eq!(sign_in_time(None, false, 9), None);
    }

    #[rustfmt::skip]
    #[test]
    fn a_step_up_sign_in_must_be_as_fresh_as_the_flow_and_of_the_method_asked() {
        let m = |f: &FlowStepUp, s: &SignIn| missing(f, s).keys();
        let none: Vec<&str> = Vec::new();
        assert_eq!(m(&flow(Some(600), &[]),      &signed(Some(START + 5), &[])),       none);
        assert_eq!(m(&flow(Some(600), &[]),      &signed(Some(START - 60), &[])),      none);
        assert_eq!(m(&flow(Some(600), &[]),      &signed(Some(START - 61), &[])),      ["max_age"]);
        assert_eq!(m(&flow(Some(600), &[]),      &signed(None, &["phr"])),             ["max_age"]);
        assert_eq!(m(&flow(None, &["phr"]),      &signed(Some(START), &["otp"])),      ["amr"]);
        assert_eq!(m(&flow(None, &["phr"]),      &signed(None, &["phr"])),             none);
        assert_eq!(m(&flow(Some(60), &["phr"]),  &signed(Some(START - 3600), &["otp"])), ["max_age", "amr"]);
    }
}
