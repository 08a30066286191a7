//! The decision engine: pure functions from the compiled [`Runtime`], the facts
//! of one request and an optional [`Identity`] to a [`Decision`].
//!
//! It implements DESIGN.md's order — host, bypass, trusted network, identity,
//! roles, policy — and nothing else: no HTTP types, no I/O, no clock. The
//! `http` module asks it and translates the answer; `explain` prints it.

mod identity;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::{HostMatch, PolicyId, Runtime};
pub use identity::Identity;

/// What the engine needs to know about the original request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Host name: lower case, port and trailing dot stripped.
    pub host: &'a str,
    /// The path as the proxy saw it (no query, no fragment), not decoded.
    pub path: &'a str,
    /// The client address (after `X-Forwarded-For` processing).
    pub client_ip: IpAddr,
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

/// A decision and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// How the host matched.
    pub host: HostMatch,
    /// The policy that applied (none for an unknown host).
    pub policy: Option<PolicyId>,
    pub rule: Rule,
    /// A bypass rule matched but the client was outside the host's `allowed_networks`
    /// (kept for explanations: the classic "API bypass ignored" question).
    pub bypass_refused: bool,
}

/// Decide one request. Pure: same inputs, same answer.
pub fn decide(rt: &Runtime, facts: &RequestFacts<'_>, identity: Option<&Identity>) -> Decision {
    decide_with(rt, facts, || identity)
}

/// [`decide`], asking for the identity only when step 4 is reached, so that
/// bypasses, trusted networks and unknown hosts never pay for opening a cookie.
pub fn decide_with<'i>(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    identity: impl FnOnce() -> Option<&'i Identity>,
) -> Decision {
    let host = rt.lookup_host(facts.host);
    let (policy_id, entry) = match host {
        HostMatch::Entry(i) => (rt.hosts[i].policy, Some(&rt.hosts[i])),
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
        policy: Some(policy_id),
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
                h.allowed_networks
                    .iter()
                    .position(|n| n.contains(&facts.client_ip))
                    .map(Some)
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
    let policy = rt.policy(policy_id);
    if let Some(index) = policy
        .allowed_networks
        .iter()
        .position(|n| n.contains(&facts.client_ip))
    {
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
            .position(|g| has_role(rt, user, claim_roles, g))
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

fn bypass_rule(h: &crate::config::HostRule, path: &str) -> Option<BypassMatch> {
    if h.bypass_paths.is_empty() && h.bypass_set.is_none() {
        return None;
    }
    if !is_normal_path(path) {
        return None;
    }
    if let Some(i) = h
        .bypass_paths
        .iter()
        .position(|prefix| prefix_on_segment(path, prefix))
    {
        return Some(BypassMatch::Path(i));
    }
    let set = h.bypass_set.as_ref()?;
    set.matches(path).iter().next().map(BypassMatch::Resource)
}

/// `/api` matches `/api` and `/api/...`, never `/apix`; `/` matches everything.
fn prefix_on_segment(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix == "/",
        None => false,
    }
}

/// Whether `path` is in the normal form bypass rules are matched against:
/// starts with `/`; no empty segment (`//`); no `.` or `..` segment, also not
/// with `;parameters`, no segment made only of dots (or dots and `%20`); no percent-encoded
/// `/`, `\`, `.`, `;`, `#`, `?`, `%`, control or non-ASCII byte, no
/// malformed `%` escape; no literal `\`, `#`, control character, space or
/// non-ASCII byte.
/// Anything else might be routed by proxy or backend to another path than the
/// one we matched, so it never bypasses.
pub fn is_normal_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b <= 0x20 || b >= 0x7f || b == b'\\' || b == b'#' {
            return false;
        }
        if b == b'%' {
            let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) => match (hex(h), hex(l)) {
                    (Some(h), Some(l)) => h * 16 + l,
                    _ => return false,
                },
                _ => return false,
            };
            if decoded < 0x20
                || matches!(decoded, b'/' | b'\\' | b'.' | b'#' | b'?' | b'%' | b';')
                || decoded >= 0x7f
            {
                return false;
            }
            i += 2;
        }
        i += 1;
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        let name = seg.split(';').next().unwrap_or(seg);
        // A trailing slash (empty last segment) is fine; any other empty segment is `//`.
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || is_dot_like(name) {
            return false;
        }
    }
    true
}

/// `.`, `..`, and anything some servers collapse like them: only dots (`...`),
/// or dots followed by encoded spaces (`..%20`, trimmed by Windows-style servers).
fn is_dot_like(name: &str) -> bool {
    let mut core = name;
    while let Some(rest) = core.strip_suffix("%20") {
        core = rest;
    }
    !core.is_empty() && core.bytes().all(|b| b == b'.')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether the user holds `role`: a group of that name, or a `claim_roles` entry
/// granting it whose claim holds its value.
fn has_role(
    rt: &Runtime,
    user: &Identity,
    claim_roles: &[crate::config::ClaimRole],
    role: &str,
) -> bool {
    user.groups.iter().any(|g| g == role)
        || claim_roles
            .iter()
            .any(|cr| cr.role == role && claim_holds(rt, user, &cr.claim, &cr.value))
}

/// Whether the identity's `claim` holds `value`.
fn claim_holds(rt: &Runtime, user: &Identity, claim: &str, value: &str) -> bool {
    if let Some(values) = user.claims.get(claim) {
        return values.iter().any(|v| v == value);
    }
    if claim == rt.oidc.groups_claim || claim == "groups" {
        return user.groups.iter().any(|g| g == value);
    }
    if claim == rt.oidc.username_claim {
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
pub fn roles(rt: &Runtime, user: &Identity, host: HostMatch) -> Vec<String> {
    let mut out = user.groups.clone();
    if let HostMatch::Entry(i) = host {
        for cr in &rt.hosts[i].claim_roles {
            if claim_holds(rt, user, &cr.claim, &cr.value) && !out.contains(&cr.role) {
                out.push(cr.role.clone());
            }
        }
    }
    out
}

impl Decision {
    /// The rule's name as a configuration key path, e.g. `hosts[0].bypass_paths[0]`.
    pub fn rule_name(&self, rt: &Runtime) -> String {
        let host_key = match self.host {
            HostMatch::Entry(i) => format!("hosts[{i}]"),
            _ => "default_policy".into(),
        };
        let policy_key = self
            .policy
            .map(|p| format!("policies.{}", rt.policy(p).name))
            .unwrap_or_default();
        match self.rule {
            Rule::UnknownHost => "unknown host".into(),
            Rule::BypassPath { index, .. } => format!("{host_key}.bypass_paths[{index}]"),
            Rule::BypassResource { index, .. } => format!("{host_key}.bypass_resources[{index}]"),
            Rule::TrustedNetwork { index } => format!("{policy_key}.allowed_networks[{index}]"),
            Rule::NoIdentity => "no session".into(),
            Rule::Admitted { role: Some(i) } => format!("{policy_key}.allowed_groups[{i}]"),
            Rule::Admitted { role: None } => {
                if self
                    .policy
                    .is_some_and(|p| !rt.policy(p).allowed_users.is_empty())
                {
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
        rt: &Runtime,
        facts: &RequestFacts<'_>,
        identity: Option<&Identity>,
    ) -> String {
        let entry = match self.host {
            HostMatch::Entry(i) => Some(&rt.hosts[i]),
            _ => None,
        };
        let policy = self.policy.map(|p| rt.policy(p));
        let policy_name = policy.map(|p| p.name.as_str()).unwrap_or("");
        let mut s = match self.rule {
            Rule::UnknownHost => format!(
                "host {} matches no [[hosts]] entry and there is no default_policy",
                facts.host
            ),
            Rule::BypassPath { index, network } => {
                let h = entry.expect("bypass implies a host entry");
                format!(
                    "bypass: {} matches bypass_paths[{index}] ({}){}",
                    facts.path,
                    h.bypass_paths[index],
                    network_clause(facts, network, h)
                )
            }
            Rule::BypassResource { index, network } => {
                let h = entry.expect("bypass implies a host entry");
                format!(
                    "bypass: {} matches bypass_resources[{index}] ({}){}",
                    facts.path,
                    h.bypass_resources[index],
                    network_clause(facts, network, h)
                )
            }
            Rule::TrustedNetwork { index } => format!(
                "trusted network: client {} in policies.{policy_name}.allowed_networks[{index}] ({})",
                facts.client_ip,
                policy.map(|p| p.allowed_networks[index].to_string()).unwrap_or_default()
            ),
            Rule::NoIdentity => "no valid session: the user must sign in".into(),
            Rule::Admitted { role } => {
                let who = identity.map(|u| u.user.as_str()).unwrap_or("?");
                match (role, policy) {
                    (Some(i), Some(p)) => format!(
                        "user {who} holds role {:?} required by policy {policy_name}",
                        p.allowed_groups[i]
                    ),
                    _ => format!("user {who} is signed in and policy {policy_name} admits them"),
                }
            }
            Rule::NotInGroups => {
                let who = identity.map(|u| u.user.as_str()).unwrap_or("?");
                let held = identity
                    .map(|u| roles(rt, u, self.host).join(", "))
                    .unwrap_or_default();
                format!(
                    "user {who} (roles: {}) has none of policy {policy_name}'s allowed_groups: {}",
                    if held.is_empty() { "none" } else { &held },
                    policy.map(|p| p.allowed_groups.join(", ")).unwrap_or_default()
                )
            }
            Rule::NotInUsers => {
                let who = identity.map(|u| u.user.as_str()).unwrap_or("?");
                format!("user {who} is not in policy {policy_name}'s allowed_users")
            }
        };
        if self.bypass_refused {
            s.push_str(&format!(
                " (a bypass rule matched {} but client {} is not in the host's allowed_networks)",
                facts.path, facts.client_ip
            ));
        }
        s
    }
}

fn network_clause(
    facts: &RequestFacts<'_>,
    network: Option<usize>,
    h: &crate::config::HostRule,
) -> String {
    match network {
        Some(n) => format!(
            "; client {} in allowed_networks[{n}] ({})",
            facts.client_ip, h.allowed_networks[n]
        ),
        None => "; the host has no allowed_networks".into(),
    }
}

#[cfg(test)]
mod tests;
