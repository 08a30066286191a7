//! The decision engine: pure functions from the compiled [`Rules`], the facts
//! of one request and an optional [`Identity`] to a [`Decision`].
//!
//! It implements DESIGN.md's order — host, bypass, `[[hosts.rules]]`, trusted
//! network, identity, roles, policy — and nothing else: no HTTP types, no I/O,
//! no clock (`tests/layering.rs` keeps it so). `config` compiles into
//! [`Rules`] through a [`RulesBuilder`]; the `gate` asks [`route`] for the
//! steps before the identity, then [`Pending::judge`] once it has looked the
//! identity up (a store, a token); [`decide`] does both for callers that
//! hold the identity already. The [`Decision`]'s `reason` is what `explain`
//! prints and the decision log carries. The rules are in `rules.rs`, the
//! user in `identity.rs`, the first steps in `route.rs`; the decision tables
//! in `tests.rs` and `tests/`.
// Request-derived indices must never panic: only checked access here.
#![deny(clippy::indexing_slicing)]

mod identity;
mod route;
mod rules;
mod step_up;

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::domain::{fold_case, is_plain, ClientAddr, PathReadings};
pub use identity::{Identity, SignIn};
pub use route::{route, Pending, Route};
pub use rules::{
    anchored_literal, ClaimNames, ClaimRole, DuplicateHost, HostMatch, HostRule, PathKey, PathRule,
    PathRules, Policy, Resources, RuleAction, Rules, RulesBuilder,
};
pub use step_up::{method_name, methods, Missing, Seconds, StepUp};

/// What the engine needs to know about the original request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Host name: lower case, port and trailing dot stripped.
    pub host: &'a str,
    /// The path as the proxy saw it (no query, no fragment), not decoded.
    pub path: &'a str,
    /// The client address (after `X-Forwarded-For` processing).
    pub client: ClientAddr,
    /// The method, upper case; `None` when the proxy did not say
    /// (`X-Forwarded-Method` / `X-Original-Method` missing).
    pub method: Option<&'a str>,
}

/// The five answers, as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 200 with identity headers.
    Allow,
    /// 200 without identity (bypass rule or trusted network).
    Bypass,
    /// No identity: 302 to login (browsers) or 401 (API clients).
    Login,
    /// 403.
    Deny,
    /// Allowed, but the sign-in is too old or used another method than the
    /// rule asks: a fresh sign-in (browsers) or 401
    /// `insufficient_user_authentication` (API clients).
    StepUp,
}

impl Outcome {
    /// The lower-case name used in logs, metrics and `explain --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Bypass => "bypass",
            Outcome::Login => "login",
            Outcome::Deny => "deny",
            Outcome::StepUp => "step_up",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule that produced a decision, with the indices needed to name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No host entry and no `default_policy`.
    UnknownHost,
    /// `bypass_paths[index]` matched; `network` is the host's `allowed_networks` index that admitted the client, if the host has any.
    BypassPath {
        index: usize,
        network: Option<usize>,
    },
    /// `bypass_resources[index]` matched.
    BypassResource {
        index: usize,
        network: Option<usize>,
    },
    /// The client is in the policy's `allowed_networks[index]`.
    TrustedNetwork { index: usize },
    /// No valid session.
    NoIdentity,
    /// The policy admits the user; `role` is the first shared role, if groups were required.
    Admitted { role: Option<usize> },
    /// The user has none of `allowed_groups`.
    NotInGroups,
    /// `allowed_users` does not name the user.
    NotInUsers,
    /// `rules[index]` with `action = "bypass"` matched.
    RuleBypass { index: usize },
    /// `rules[index]` with `action = "deny"` matched.
    RuleDeny { index: usize },
    /// The readings of the path (as sent, normalised, decoded) reach
    /// different rules: whichever the backend uses, it must not be the
    /// client's pick. Denied.
    AmbiguousPath,
    /// `rules[index]` depends on the method, and the proxy sent none. Denied.
    MethodUnknown { index: usize },
    /// The policy admits the user (`role` as in [`Rule::Admitted`]) but the
    /// sign-in lacks what the step-up asks.
    StepUp {
        role: Option<usize>,
        missing: Missing,
    },
}

/// A decision and where it came from. Borrows the rules it was made from.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'r> {
    pub outcome: Outcome,
    /// How the host matched.
    pub host: HostMatch<'r>,
    /// The policy that applied (none for an unknown host).
    pub policy: Option<&'r Policy>,
    pub rule: Rule,
    /// A bypass rule matched but the client was outside the host's `allowed_networks`
    /// (kept for explanations: the classic "API bypass ignored" question).
    pub bypass_refused: bool,
    /// The `[[hosts.rules]]` entry that matched (its action decided, or its
    /// policy replaced the host's), with the path key that matched.
    pub path_rule: Option<(usize, PathKey)>,
    /// The step-up the matched rule (else host) asks of the sign-in, when
    /// the decision reached the identity and it asks anything.
    pub step_up: Option<&'r StepUp>,
}

/// Decide one request, without a clock: every `max_age` counts as lapsed
/// (fail closed). For callers with no step-up to judge; the others use
/// [`decide_at`].
pub fn decide<'r>(
    rules: &'r Rules,
    facts: &RequestFacts<'_>,
    identity: Option<&Identity>,
) -> Decision<'r> {
    decide_at(rules, facts, identity, u64::MAX)
}

/// Decide one request at `now` (unix seconds: the step-up's clock). Pure:
/// same inputs, same answer.
pub fn decide_at<'r>(
    rules: &'r Rules,
    facts: &RequestFacts<'_>,
    identity: Option<&Identity>,
    now: u64,
) -> Decision<'r> {
    match route(rules, facts) {
        Route::Decided(decision) => decision,
        Route::NeedsIdentity(pending) => pending.judge(identity, now),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BypassMatch {
    Path(usize),
    Resource(usize),
}

/// What steps 2 and 3 make of one reading of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `bypass_*` matched and the host's networks admit the client.
    Bypass(BypassMatch, Option<usize>),
    /// `rules[i]` matched.
    Rule(usize, PathKey),
    /// `rules[i]` would match but for the method, which is unknown.
    MethodUnknown(usize),
    /// Nothing matched: the host's policy decides.
    Host,
    /// The readings disagree.
    Ambiguous,
}

/// Steps 2 and 3 over every reading of the path: the step they all agree on,
/// else [`Step::Ambiguous`]; whether a bypass was refused for the network.
/// Only a path in normal form may bypass (a `bypass_*` key or a bypass rule),
/// and only when every reading bypasses: when the readings disagree about a
/// bypass, they are read again as if nothing bypassed.
fn path_step(h: &HostRule, facts: &RequestFacts<'_>) -> (Step, bool) {
    if h.rules.is_empty() && h.bypass_paths.is_empty() && h.bypass_resources.is_none() {
        return (Step::Host, false);
    }
    let fold = h.case_insensitive_paths;
    if is_plain(facts.path) {
        // One reading only, in normal form: the common case, without the loop.
        if fold {
            return read(h, facts.path, &fold_case(facts.path), true, facts);
        }
        return read(h, facts.path, facts.path, true, facts);
    }
    let readings = PathReadings::of(facts.path);
    // Folded after the readings are made: `/%41dmin` decodes to `/Admin`,
    // which must meet the rules for `/admin`. Each reading goes with its
    // folded form: prefixes and the rules' index meet the folded one,
    // regexes (compiled case-insensitively) the one as read.
    let paths: Vec<(&str, Cow<'_, str>)> = readings
        .iter()
        .map(|r| {
            let folded = if fold { fold_case(r) } else { Cow::Borrowed(r) };
            (r, folded)
        })
        .collect();
    if readings.is_normal() {
        if let Some(agreed) = agree(h, &paths, true, facts) {
            return agreed;
        }
    }
    agree(h, &paths, false, facts).unwrap_or((Step::Ambiguous, false))
}

/// The step every reading reaches, if they agree.
fn agree(
    h: &HostRule,
    readings: &[(&str, Cow<'_, str>)],
    may_bypass: bool,
    facts: &RequestFacts<'_>,
) -> Option<(Step, bool)> {
    let mut agreed: Option<Step> = None;
    let mut refused = false;
    for (path, folded) in readings {
        let (step, r) = read(h, path, folded, may_bypass, facts);
        refused |= r;
        match agreed {
            Some(s) if !same_step(s, step) => return None,
            _ => agreed = agreed.or(Some(step)),
        }
    }
    Some((agreed.unwrap_or(Step::Host), refused))
}

/// Two readings agree when they reach the same bypass key or the same rule
/// (which path key of the rule matched does not matter).
fn same_step(a: Step, b: Step) -> bool {
    match (a, b) {
        (Step::Rule(i, _), Step::Rule(j, _)) => i == j,
        _ => a == b,
    }
}

fn read(
    h: &HostRule,
    path: &str,
    folded: &str,
    may_bypass: bool,
    facts: &RequestFacts<'_>,
) -> (Step, bool) {
    let mut refused = false;
    if may_bypass {
        if let Some(m) = bypass_match(h, path, folded) {
            if h.allowed_networks.is_empty() {
                return (Step::Bypass(m, None), false);
            }
            match h.allowed_networks.position(facts.client) {
                Some(n) => return (Step::Bypass(m, Some(n)), false),
                None => refused = true,
            }
        }
    }
    for &i in h.rules.candidates(folded) {
        let Some(rule) = h.rules.get(i) else {
            continue;
        };
        if !may_bypass && matches!(rule.action, RuleAction::Bypass) {
            continue;
        }
        let Some(key) = rule.path_key(path, folded) else {
            continue;
        };
        if !rule.networks.is_empty() && rule.networks.position(facts.client).is_none() {
            continue;
        }
        if !rule.methods.is_empty() {
            match facts.method {
                None => return (Step::MethodUnknown(i), refused),
                Some(m) if !rule.admits_method(m) => continue,
                Some(_) => {}
            }
        }
        return (Step::Rule(i, key), refused);
    }
    (Step::Host, refused)
}

/// `path` is one reading as read, `folded` the same with its case folded on
/// a case-insensitive host: prefixes meet the folded text, regexes (compiled
/// case-insensitively there) the text as read, since their simple case
/// folding does not equate `ß` with `ss` as [`fold_case`] does.
fn bypass_match(h: &HostRule, path: &str, folded: &str) -> Option<BypassMatch> {
    if let Some(i) = h
        .bypass_paths
        .iter()
        .position(|p| p.matches_reading(folded))
    {
        return Some(BypassMatch::Path(i));
    }
    h.bypass_resources
        .as_ref()?
        .first_match(path)
        .map(BypassMatch::Resource)
}

/// Whether the user holds `role`: a group of that name, or a `claim_roles` entry
/// granting it whose claim holds its value.
fn has_role(claims: &ClaimNames, user: &Identity, claim_roles: &[ClaimRole], role: &str) -> bool {
    user.groups.iter().any(|g| g == role)
        || claim_roles
            .iter()
            .any(|cr| cr.role == role && claim_holds(claims, user, &cr.claim, &cr.value))
}

/// Whether the identity's `claim` holds `value`.
fn claim_holds(claims: &ClaimNames, user: &Identity, claim: &str, value: &str) -> bool {
    if let Some(values) = user.claims.get(claim) {
        return values.iter().any(|v| v == value);
    }
    if claim == claims.groups || claim == "groups" {
        return user.groups.iter().any(|g| g == value);
    }
    if claim == claims.username {
        return user.user == value;
    }
    match claim {
        "sub" => user.subject == value,
        "email" => user.email_verified && user.email.as_deref() == Some(value),
        "name" => user.name.as_deref() == Some(value),
        _ => false,
    }
}

/// `allowed_users` names the user name exactly, or the e-mail address
/// (ASCII case-insensitive) when the provider verified it.
fn names_user(allowed: &[String], user: &Identity) -> bool {
    allowed.iter().any(|a| {
        *a == user.user
            || (user.email_verified
                && user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(a)))
    })
}

/// The roles a user holds for a host (groups plus `claim_roles`), for `explain` and `/whoami`.
pub fn roles(rules: &Rules, user: &Identity, host: HostMatch<'_>) -> Vec<String> {
    let mut out = user.groups.clone();
    if let HostMatch::Entry(h) = host {
        for cr in &h.claim_roles {
            if claim_holds(rules.claim_names(), user, &cr.claim, &cr.value)
                && !out.contains(&cr.role)
            {
                out.push(cr.role.clone());
            }
        }
    }
    out
}

impl Decision<'_> {
    /// The rule's name as a configuration key path, e.g. `hosts[0].bypass_paths[0]`
    /// or `hosts[1].rules[0]`: when a `[[hosts.rules]]` entry matched, it is
    /// the rule that made the decision (its policy's clause is in
    /// [`Self::policy_clause`]).
    pub fn rule_name(&self) -> String {
        match (self.host, self.path_rule) {
            (HostMatch::Entry(h), Some((i, _))) => format!("hosts[{}].rules[{i}]", h.index),
            _ => self.policy_clause(),
        }
    }

    /// The clause of the policy (or bypass key) that decided, ignoring any
    /// `[[hosts.rules]]` entry that chose the policy: `policies.admins.allowed_groups[0]`.
    pub fn policy_clause(&self) -> String {
        let host_key = match self.host {
            HostMatch::Entry(h) => format!("hosts[{}]", h.index),
            _ => "default_policy".into(),
        };
        let policy_key = self
            .policy
            .map(|p| format!("policies.{}", p.name))
            .unwrap_or_default();
        match self.rule {
            Rule::UnknownHost => "unknown host".into(),
            Rule::BypassPath { index, .. } => format!("{host_key}.bypass_paths[{index}]"),
            Rule::BypassResource { index, .. } => format!("{host_key}.bypass_resources[{index}]"),
            Rule::TrustedNetwork { index } => format!("{policy_key}.allowed_networks[{index}]"),
            Rule::NoIdentity => "no session".into(),
            Rule::Admitted { role: Some(i) } => format!("{policy_key}.allowed_groups[{i}]"),
            Rule::Admitted { role: None } => {
                if self.policy.is_some_and(|p| !p.allowed_users.is_empty()) {
                    format!("{policy_key}.allowed_users")
                } else {
                    format!("{policy_key} (any signed-in user)")
                }
            }
            Rule::NotInGroups => format!("{policy_key}.allowed_groups"),
            Rule::NotInUsers => format!("{policy_key}.allowed_users"),
            Rule::RuleBypass { index } | Rule::RuleDeny { index } => {
                format!("{host_key}.rules[{index}]")
            }
            Rule::AmbiguousPath => format!("{host_key}.rules (ambiguous path)"),
            Rule::MethodUnknown { index } => format!("{host_key}.rules[{index}].methods"),
            Rule::StepUp { missing, .. } => self
                .step_up
                .map(|s| s.clause(missing))
                .unwrap_or_else(|| "step-up".into()),
        }
    }

    /// One sentence an operator can act on.
    pub fn reason(
        &self,
        rules: &Rules,
        facts: &RequestFacts<'_>,
        identity: Option<&Identity>,
    ) -> String {
        let entry = match self.host {
            HostMatch::Entry(h) => Some(h),
            _ => None,
        };
        let policy_name = self.policy.map(|p| p.name.as_str()).unwrap_or("");
        let who = identity.map(|u| u.user.as_str()).unwrap_or("?");
        let mut s = match self.rule {
            Rule::UnknownHost => format!(
                "host {} matches no [[hosts]] entry and there is no default_policy",
                facts.host
            ),
            Rule::BypassPath { index, network } => format!(
                "bypass: {} matches bypass_paths[{index}] ({}){}",
                facts.path,
                entry
                    .and_then(|h| h.bypass_paths.get(index))
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                network_clause(facts, network, entry)
            ),
            Rule::BypassResource { index, network } => format!(
                "bypass: {} matches bypass_resources[{index}] ({}){}",
                facts.path,
                entry
                    .and_then(|h| h.bypass_resource_sources().get(index))
                    .map(String::as_str)
                    .unwrap_or_default(),
                network_clause(facts, network, entry)
            ),
            Rule::TrustedNetwork { index } => format!(
                "trusted network: client {} in policies.{policy_name}.allowed_networks[{index}] ({})",
                facts.client,
                self.policy
                    .and_then(|p| p.allowed_networks.get(index))
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ),
            Rule::NoIdentity => "no valid session: the user must sign in".into(),
            Rule::Admitted { role } => {
                match role.and_then(|i| self.policy?.allowed_groups.get(i)) {
                    Some(group) => format!(
                        "user {who} holds role {group:?} required by policy {policy_name}"
                    ),
                    None => format!("user {who} is signed in and policy {policy_name} admits them"),
                }
            }
            Rule::NotInGroups => {
                let held = identity
                    .map(|u| roles(rules, u, self.host).join(", "))
                    .unwrap_or_default();
                format!(
                    "user {who} (roles: {}) has none of policy {policy_name}'s allowed_groups: {}",
                    if held.is_empty() { "none" } else { &held },
                    self.policy
                        .map(|p| p.allowed_groups.join(", "))
                        .unwrap_or_default()
                )
            }
            Rule::NotInUsers => format!("user {who} is not in policy {policy_name}'s allowed_users"),
            Rule::RuleBypass { .. } => "bypass: passes without identity".into(),
            Rule::RuleDeny { .. } => "denied for everyone".into(),
            Rule::AmbiguousPath => format!(
                "denied: the readings of {} (as sent, normalised, decoded) reach different rules, so the answer would depend on how the backend reads it (fix: send the path in normal form)",
                facts.path
            ),
            Rule::MethodUnknown { index } => format!(
                "denied: rules[{index}] depends on the method but the proxy sent none (fix: pass X-Forwarded-Method or X-Original-Method)"
            ),
            Rule::StepUp { missing, .. } => {
                let lacks = self
                    .step_up
                    .map(|s| s.describe(missing).join(" and "))
                    .unwrap_or_default();
                let had = identity.map(|u| signed_in(&u.sign_in)).unwrap_or_default();
                format!("step-up: user {who} is admitted by policy {policy_name} but this page needs {lacks}; {had}")
            }
        };
        if let (Some((i, key)), Some(h)) = (self.path_rule, entry) {
            s = format!("{}: {s}", rule_clause(h, i, key, facts));
        }
        if self.bypass_refused {
            let networks = entry.map_or_else(
                || "the host's allowed_networks".to_owned(),
                |h| {
                    format!(
                        "hosts[{}].allowed_networks ({})",
                        h.index, h.allowed_networks
                    )
                },
            );
            s.push_str(&format!(
                " (a bypass rule matched {} but client {} is not in the host's allowed_networks: {networks}; fix: add the client's network there, or check trusted_proxies if {} is a proxy's address)",
                facts.path, facts.client, facts.client
            ));
        }
        s
    }
}

/// Why `rules[i]` matched: `hosts[1].rules[0] (paths[0] "/admin", methods DELETE) matched, policy = "admins"`.
fn rule_clause(h: &HostRule, i: usize, key: PathKey, facts: &RequestFacts<'_>) -> String {
    let Some(rule) = h.rules.get(i) else {
        return format!("hosts[{}].rules[{i}]", h.index);
    };
    let mut why = Vec::new();
    match key {
        PathKey::Any => {}
        PathKey::Path(j) => why.push(format!(
            "paths[{j}] {:?}",
            rule.paths.get(j).map(|p| p.as_str()).unwrap_or_default()
        )),
        PathKey::Resource(j) => why.push(format!(
            "resources[{j}] {:?}",
            rule.resource_sources()
                .get(j)
                .map(String::as_str)
                .unwrap_or_default()
        )),
    }
    if !rule.methods.is_empty() {
        why.push(format!("method {}", facts.method.unwrap_or("?")));
    }
    if let Some(n) = rule.networks.position(facts.client) {
        why.push(format!(
            "client {} in networks[{n}] ({})",
            facts.client,
            rule.networks
                .get(n)
                .map(|n| n.to_string())
                .unwrap_or_default()
        ));
    }
    let why = if why.is_empty() {
        "sets no condition".to_string()
    } else {
        why.join(", ")
    };
    format!(
        "hosts[{}].rules[{i}] matched ({why}; {})",
        h.index,
        rule.action.describe()
    )
}

/// How an identity signed in, in words: "signed in with a one-time code (otp)
/// at 1700000000", "the sign-in's time and method are unknown".
pub fn signed_in(sign_in: &SignIn) -> String {
    let how = if sign_in.amr.is_empty() {
        "by an unknown method".to_string()
    } else {
        format!("with {}", methods(&sign_in.amr))
    };
    match sign_in.auth_time {
        Some(t) => format!("they signed in {how} at {t} (unix time)"),
        None => format!("they signed in {how}, at an unknown time"),
    }
}

fn network_clause(
    facts: &RequestFacts<'_>,
    network: Option<usize>,
    h: Option<&HostRule>,
) -> String {
    match network {
        Some(n) => format!(
            "; client {} in allowed_networks[{n}] ({})",
            facts.client,
            h.and_then(|h| h.allowed_networks.get(n))
                .map(|n| n.to_string())
                .unwrap_or_default()
        ),
        None => "; the host has no allowed_networks".into(),
    }
}

#[cfg(test)]
mod tests;
