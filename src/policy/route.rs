//! Steps 1–4 of the decision (host, bypass, rules, trusted network) apart
//! from steps 5–8 (identity, roles, policy, step-up), so that a caller looks up the
//! identity — a cookie, a store, a token — only when the decision needs it,
//! and still asks the engine once.
// Request-derived indices must never panic: only checked access here.
#![deny(clippy::indexing_slicing)]

use super::{
    has_role, names_user, path_step, BypassMatch, Decision, HostMatch, HostRule, Identity, Outcome,
    PathKey, Policy, RequestFacts, Rule, RuleAction, Rules, Step, StepUp,
};

/// Steps 1–4 of the decision: final, or waiting for the identity.
#[derive(Debug, Clone, Copy)]
pub enum Route<'r> {
    /// Host, bypass, rules or trusted network decided: no identity is looked at.
    Decided(Decision<'r>),
    /// Step 5 is reached: [`Pending::judge`] finishes with the identity.
    NeedsIdentity(Pending<'r>),
}

/// A decision that steps 1–4 left to the identity (steps 5–8).
#[derive(Debug, Clone, Copy)]
pub struct Pending<'r> {
    rules: &'r Rules,
    host: HostMatch<'r>,
    entry: Option<&'r HostRule>,
    policy: &'r Policy,
    bypass_refused: bool,
    path_rule: Option<(usize, PathKey)>,
    /// The matched rule's step-up, else the host's; `None` when it asks nothing.
    step_up: Option<&'r StepUp>,
}

/// Steps 1–4, so that a caller looks up the identity (a cookie, a store, a
/// token) only when step 5 needs it: bypasses, trusted networks and unknown
/// hosts never pay for it.
pub fn route<'r>(rules: &'r Rules, facts: &RequestFacts<'_>) -> Route<'r> {
    let host = rules.lookup_host(facts.host);
    let (policy, entry): (&'r Policy, Option<&'r HostRule>) = match host {
        HostMatch::Entry(h) => (&h.policy, Some(h)),
        HostMatch::Default(p) => (p, None),
        HostMatch::Unknown => {
            return Route::Decided(Decision {
                outcome: Outcome::Deny,
                host,
                policy: None,
                rule: Rule::UnknownHost,
                bypass_refused: false,
                path_rule: None,
                step_up: None,
            })
        }
    };
    let decision = move |outcome, rule, bypass_refused| Decision {
        outcome,
        host,
        policy: Some(policy),
        rule,
        bypass_refused,
        path_rule: None,
        step_up: None,
    };

    // 2 + 3. Bypass and path rules, in every reading of the path.
    let mut bypass_refused = false;
    let mut path_rule = None;
    let mut policy = policy;
    let mut step_up = entry.map(|h| &h.step_up);
    if let Some(h) = entry {
        let (step, refused) = path_step(h, facts);
        bypass_refused = refused;
        match step {
            Step::Host => {}
            Step::Bypass(BypassMatch::Path(index), network) => {
                return Route::Decided(decision(
                    Outcome::Bypass,
                    Rule::BypassPath { index, network },
                    false,
                ))
            }
            Step::Bypass(BypassMatch::Resource(index), network) => {
                return Route::Decided(decision(
                    Outcome::Bypass,
                    Rule::BypassResource { index, network },
                    false,
                ))
            }
            Step::Ambiguous => {
                return Route::Decided(decision(Outcome::Deny, Rule::AmbiguousPath, refused))
            }
            Step::MethodUnknown(index) => {
                return Route::Decided(decision(
                    Outcome::Deny,
                    Rule::MethodUnknown { index },
                    refused,
                ))
            }
            Step::Rule(index, key) => {
                let with_rule = |outcome, rule| Decision {
                    path_rule: Some((index, key)),
                    ..decision(outcome, rule, refused)
                };
                match h.rules.get(index).map(|r| &r.action) {
                    Some(RuleAction::Bypass) => {
                        return Route::Decided(with_rule(
                            Outcome::Bypass,
                            Rule::RuleBypass { index },
                        ))
                    }
                    Some(RuleAction::Policy(p)) => {
                        policy = p;
                        path_rule = Some((index, key));
                        step_up = h.rules.get(index).map(|r| &r.step_up);
                    }
                    // A rule that is not there cannot have matched; never allow on a bug.
                    Some(RuleAction::Deny) | None => {
                        return Route::Decided(with_rule(Outcome::Deny, Rule::RuleDeny { index }))
                    }
                }
            }
        }
    }

    // 4. Trusted network.
    let pending = Pending {
        rules,
        host,
        entry,
        policy,
        bypass_refused,
        path_rule,
        step_up: step_up.filter(|s| !s.is_empty()),
    };
    match policy.allowed_networks.position(facts.client) {
        Some(index) => {
            Route::Decided(pending.decided(Outcome::Bypass, Rule::TrustedNetwork { index }))
        }
        None => Route::NeedsIdentity(pending),
    }
}

impl<'r> Pending<'r> {
    /// The host the request matched (for what it asks of a session).
    pub fn host(&self) -> HostMatch<'r> {
        self.host
    }

    /// The step-up the matched rule (else the host) asks, if any.
    pub fn step_up(&self) -> Option<&'r StepUp> {
        self.step_up
    }

    /// The decision `rule` makes, with what steps 1–4 found.
    fn decided(&self, outcome: Outcome, rule: Rule) -> Decision<'r> {
        Decision {
            outcome,
            host: self.host,
            policy: Some(self.policy),
            rule,
            bypass_refused: self.bypass_refused,
            path_rule: self.path_rule,
            step_up: self.step_up,
        }
    }

    /// Steps 5–8 with the request's identity, if it has one, at `now`
    /// (unix seconds: the step-up's clock).
    pub fn judge(self, identity: Option<&Identity>, now: u64) -> Decision<'r> {
        let (rules, entry, policy) = (self.rules, self.entry, self.policy);
        let decision = |outcome, rule| self.decided(outcome, rule);

        // 5. Identity.
        let Some(user) = identity else {
            return decision(Outcome::Login, Rule::NoIdentity);
        };

        // 6 + 7. Roles and policy.
        let role = if policy.allowed_groups.is_empty() {
            None
        } else {
            let claim_roles = entry.map(|h| h.claim_roles.as_slice()).unwrap_or_default();
            match policy
                .allowed_groups
                .iter()
                .position(|g| has_role(rules.claim_names(), user, claim_roles, g))
            {
                Some(i) => Some(i),
                None => return decision(Outcome::Deny, Rule::NotInGroups),
            }
        };
        if !policy.allowed_users.is_empty() && !names_user(&policy.allowed_users, user) {
            return decision(Outcome::Deny, Rule::NotInUsers);
        }

        // 8. Step-up: an allow whose sign-in is too old or of another method.
        if let Some(step_up) = self.step_up {
            let missing = step_up.check(&user.sign_in, now);
            if !missing.is_met() {
                return decision(Outcome::StepUp, Rule::StepUp { role, missing });
            }
        }
        decision(Outcome::Allow, Rule::Admitted { role })
    }
}
