//! The decision engine: pure functions from the compiled [`Rules`], the facts
//! of one request and an optional [`Identity`] to a [`Decision`].
//!
//! It implements DESIGN.md's order — host, bypass, trusted network, identity,
//! roles, policy — and nothing else: no HTTP types, no I/O, no clock (a test
//! in `tests/layering.rs` keeps it so). `config` compiles into [`Rules`]; the
//! `http` module asks [`decide_with`] and translates the answer; `explain`
//! prints it.
// Request-derived indices must never panic: only checked access here.
#![deny(clippy::indexing_slicing)]

mod identity;
mod rules;

use std::fmt;

use serde::Serialize;

use crate::domain::{ClientAddr, NormalPath};
pub use identity::Identity;
pub use rules::{
    ClaimNames, ClaimRole, DuplicateHost, HostMatch, HostRule, Policy, Resources, Rules,
    RulesBuilder,
};

/// What the engine needs to know about the original request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Host name: lower case, port and trailing dot stripped.
    pub host: &'a str,
    /// The path as the proxy saw it (no query, no fragment), not decoded.
    pub path: &'a str,
    /// The client address (after `X-Forwarded-For` processing).
    pub client: ClientAddr,
}

/// The four answers, as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// 200 with identity headers.
    Allow,
    /// 200 without identity (bypass rule or trusted network).
    Bypass,
    /// No identity: 302 to login (browsers) or 401 (API clients).
    Login,
    /// 403.
    Deny,
}

impl Outcome {
    /// The lower-case name used in logs, metrics and `explain --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Bypass => "bypass",
            Outcome::Login => "login",
            Outcome::Deny => "deny",
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
}

/// Decide one request. Pure: same inputs, same answer.
pub fn decide<'r>(
    rules: &'r Rules,
    facts: &RequestFacts<'_>,
    identity: Option<&Identity>,
) -> Decision<'r> {
    decide_with(rules, facts, || identity)
}

/// [`decide`], asking for the identity only when step 4 is reached, so that
/// bypasses, trusted networks and unknown hosts never pay for opening a cookie.
pub fn decide_with<'r, 'i>(
    rules: &'r Rules,
    facts: &RequestFacts<'_>,
    identity: impl FnOnce() -> Option<&'i Identity>,
) -> Decision<'r> {
    let host = rules.lookup_host(facts.host);
    let (policy, entry): (&'r Policy, Option<&'r HostRule>) = match host {
        HostMatch::Entry(h) => (&h.policy, Some(h)),
        HostMatch::Default(p) => (p, None),
        HostMatch::Unknown => {
            return Decision {
                outcome: Outcome::Deny,
                host,
                policy: None,
                rule: Rule::UnknownHost,
                bypass_refused: false,
            }
        }
    };
    let decision = |outcome, rule, bypass_refused| Decision {
        outcome,
        host,
        policy: Some(policy),
        rule,
        bypass_refused,
    };

    // 2. Bypass: normal-form path, prefix on a segment boundary or regex, and the host's networks.
    let mut bypass_refused = false;
    if let Some(h) = entry {
        if let Some(rule) = bypass_rule(h, facts.path) {
            let network = if h.allowed_networks.is_empty() {
                Some(None)
            } else {
                h.allowed_networks.position(facts.client).map(Some)
            };
            match (rule, network) {
                (BypassMatch::Path(index), Some(network)) => {
                    return decision(Outcome::Bypass, Rule::BypassPath { index, network }, false)
                }
                (BypassMatch::Resource(index), Some(network)) => {
                    return decision(
                        Outcome::Bypass,
                        Rule::BypassResource { index, network },
                        false,
                    )
                }
                (_, None) => bypass_refused = true,
            }
        }
    }

    // 3. Trusted network.
    if let Some(index) = policy.allowed_networks.position(facts.client) {
        return decision(
            Outcome::Bypass,
            Rule::TrustedNetwork { index },
            bypass_refused,
        );
    }

    // 4. Identity.
    let Some(user) = identity() else {
        return decision(Outcome::Login, Rule::NoIdentity, bypass_refused);
    };

    // 5 + 6. Roles and policy.
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
            None => return decision(Outcome::Deny, Rule::NotInGroups, bypass_refused),
        }
    };
    if !policy.allowed_users.is_empty() && !names_user(&policy.allowed_users, user) {
        return decision(Outcome::Deny, Rule::NotInUsers, bypass_refused);
    }
    decision(Outcome::Allow, Rule::Admitted { role }, bypass_refused)
}

enum BypassMatch {
    Path(usize),
    Resource(usize),
}

fn bypass_rule(h: &HostRule, path: &str) -> Option<BypassMatch> {
    if h.bypass_paths.is_empty() && h.bypass_resources.is_none() {
        return None;
    }
    let path = NormalPath::new(path)?;
    if let Some(i) = h.bypass_paths.iter().position(|p| p.matches(path)) {
        return Some(BypassMatch::Path(i));
    }
    h.bypass_resources
        .as_ref()?
        .first_match(path.as_str())
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
    /// The rule's name as a configuration key path, e.g. `hosts[0].bypass_paths[0]`.
    pub fn rule_name(&self) -> String {
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
        };
        if self.bypass_refused {
            s.push_str(&format!(
                " (a bypass rule matched {} but client {} is not in the host's allowed_networks)",
                facts.path, facts.client
            ));
        }
        s
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
