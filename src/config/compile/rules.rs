//! `[policies.*]`, `[[hosts]]`, `default_policy` → [`Rules`].

use std::sync::Arc;

use crate::domain::{HostPattern, Networks, PathPrefix};
use crate::policy::{
    anchored_literal, ClaimNames, ClaimRole, HostRule, PathRule, PathRules, Policy, Resources,
    RuleAction, Rules, RulesBuilder, StepUp,
};

use super::super::raw::{RawConfig, RawHost, RawRule};
use super::super::ConfigError;
use super::{invalid, step_up, Report};

pub(super) fn compile(raw: &RawConfig, report: &mut Report) -> Option<Rules> {
    let mut builder = RulesBuilder::new();
    let mut ok = true;
    for (name, p) in &raw.policies {
        let key = p.key(name);
        if !is_token(name) {
            report.error(invalid(
                &key,
                name,
                "is not a valid policy name (letters, digits, '-', '_')",
            ));
            ok = false;
        }
        let allowed_networks = networks(
            &format!("{key}.allowed_networks"),
            &p.allowed_networks,
            report,
        );
        let groups_ok = non_empty(&format!("{key}.allowed_groups"), &p.allowed_groups, report);
        let users_ok = non_empty(&format!("{key}.allowed_users"), &p.allowed_users, report);
        match allowed_networks {
            Some(allowed_networks) if groups_ok && users_ok => {
                builder.add_policy(Policy {
                    name: name.clone(),
                    allowed_groups: p.allowed_groups.clone(),
                    allowed_users: p.allowed_users.clone(),
                    allowed_networks,
                });
            }
            // Still defined, so hosts naming it are not reported as undefined too.
            _ => {
                builder.add_policy(Policy {
                    name: name.clone(),
                    allowed_groups: Vec::new(),
                    allowed_users: Vec::new(),
                    allowed_networks: Networks::default(),
                });
                ok = false;
            }
        }
    }
    if let Some(name) = &raw.default_policy {
        match resolve(&builder, "default_policy", name) {
            Ok(p) => builder.default_policy(p),
            Err(e) => {
                report.error(e);
                ok = false;
            }
        }
    }
    // The `raw.hosts` position of each entry added, by its index in the builder.
    let mut added: Vec<usize> = Vec::new();
    for (i, h) in raw.hosts.iter().enumerate() {
        let Some(rule) = host(i, h, &builder, report) else {
            ok = false;
            continue;
        };
        let pattern = rule.pattern.to_string();
        match builder.add_host(rule) {
            Ok(()) => added.push(i),
            Err(dup) => {
                let first = added.get(dup.first).copied().unwrap_or(dup.first);
                let (key, first) = duplicate_keys(raw, i, first);
                report.error(ConfigError::DuplicateHost {
                    key: format!("{key}.host"),
                    host: pattern,
                    first: format!("{first}.host"),
                });
                ok = false;
            }
        }
    }
    if !builder.covers_any_host() && raw.hosts.is_empty() {
        report.warn("no [[hosts]] and no default_policy: every request will be denied");
    }
    let claims = ClaimNames {
        username: raw
            .oidc
            .username_claim
            .clone()
            .unwrap_or_else(|| ClaimNames::default().username),
        groups: raw
            .oidc
            .groups_claim
            .clone()
            .unwrap_or_else(|| ClaimNames::default().groups),
    };
    ok.then(|| builder.build(claims))
}

/// How a duplicate host error names its two entries (`raw.hosts` positions):
/// with their files when either is in an include file.
fn duplicate_keys(raw: &RawConfig, second: usize, first: usize) -> (String, String) {
    let (Some(a), Some(b)) = (raw.hosts.get(second), raw.hosts.get(first)) else {
        return (format!("hosts[{second}]"), format!("hosts[{first}]"));
    };
    if a.origin.is_none() && b.origin.is_none() {
        return (a.key(second), b.key(first));
    }
    let main = raw.main_file.as_deref();
    (a.key_with_file(second, main), b.key_with_file(first, main))
}

fn resolve(builder: &RulesBuilder, key: &str, name: &str) -> Result<Arc<Policy>, ConfigError> {
    builder
        .policy(name)
        .ok_or_else(|| ConfigError::UndefinedPolicy {
            key: key.into(),
            name: name.into(),
            defined: match builder.policy_names() {
                names if names.is_empty() => "none".into(),
                names => names.join(", "),
            },
        })
}

/// One `[[hosts]]` entry; every mistake in it is reported.
fn host(i: usize, h: &RawHost, builder: &RulesBuilder, report: &mut Report) -> Option<HostRule> {
    let prefix = h.key(i);
    let pattern = match h.host.as_deref() {
        Some(raw) => report.take(
            HostPattern::parse(raw).map_err(|e| invalid(format!("{prefix}.host"), raw, e.reason())),
        ),
        None => {
            report.error(ConfigError::Missing {
                key: format!("{prefix}.host"),
                fix: "name the host, e.g. host = \"grafana.example.com\" or \"*.example.com\""
                    .into(),
            });
            None
        }
    };
    let policy = match h.policy.as_deref() {
        Some(name) => report.take(resolve(builder, &format!("{prefix}.policy"), name)),
        None => {
            report.error(ConfigError::Missing {
                key: format!("{prefix}.policy"),
                fix: "name one of the [policies.*] tables".into(),
            });
            None
        }
    };
    let claim_roles = claim_roles(&prefix, h, report);
    let fold = h.case_insensitive_paths;
    let bypass_paths = prefixes(
        &format!("{prefix}.bypass_paths"),
        &h.bypass_paths,
        fold,
        report,
    );
    let bypass_resources = resources(
        &format!("{prefix}.bypass_resources"),
        &h.bypass_resources,
        fold,
        report,
    );
    let allowed_networks = networks(
        &format!("{prefix}.allowed_networks"),
        &h.allowed_networks,
        report,
    );
    let host_step_up = step_up::host(&prefix, h, report);
    let base = host_step_up.clone().unwrap_or_default();
    let rules: Vec<Option<PathRule>> = h
        .rules
        .iter()
        .enumerate()
        .map(|(j, r)| {
            path_rule(
                &format!("{prefix}.rules[{j}]"),
                r,
                fold,
                (builder, &base),
                report,
            )
        })
        .collect();
    let rules: Option<Vec<PathRule>> = rules.into_iter().collect();
    let host = HostRule {
        index: i,
        pattern: pattern?,
        policy: policy?,
        claim_roles: claim_roles?,
        bypass_paths: bypass_paths?,
        bypass_resources: bypass_resources?,
        allowed_networks: allowed_networks?,
        source: h.origin.as_ref().map(|o| o.file.clone()),
        rules: PathRules::new(rules?, fold),
        case_insensitive_paths: fold,
        step_up: host_step_up?,
    };
    for w in unreachable_rules(&prefix, &host) {
        report.warn(w);
    }
    Some(host)
}

/// One `[[hosts.rules]]` entry.
fn path_rule(
    key: &str,
    r: &RawRule,
    fold: bool,
    (builder, host_step_up): (&RulesBuilder, &StepUp),
    report: &mut Report,
) -> Option<PathRule> {
    let paths = prefixes(&format!("{key}.paths"), &r.paths, fold, report);
    let resources = resources(&format!("{key}.resources"), &r.resources, fold, report);
    let networks = networks(&format!("{key}.networks"), &r.networks, report);
    let methods = methods(&format!("{key}.methods"), &r.methods, report);
    let step_up = step_up::rule(key, r, host_step_up, report);
    let action = match (r.policy.as_deref(), r.action.as_deref()) {
        (Some(name), None) => report
            .take(resolve(builder, &format!("{key}.policy"), name))
            .map(RuleAction::Policy),
        (None, Some("bypass")) => Some(RuleAction::Bypass),
        (None, Some("deny")) => Some(RuleAction::Deny),
        (None, Some(other)) => {
            report.error(invalid(
                format!("{key}.action"),
                other,
                "is not an action (fix: \"bypass\" or \"deny\", or name a policy with policy = \"...\")",
            ));
            None
        }
        (Some(_), Some(_)) => {
            report.error(ConfigError::Conflict {
                key: key.into(),
                reason: "sets both policy and action; a rule does exactly one thing (fix: keep one of them)".into(),
            });
            None
        }
        (None, None) => {
            report.error(ConfigError::Missing {
                key: format!("{key}.policy"),
                fix: "say what the rule does: policy = \"admins\", action = \"bypass\" or action = \"deny\"".into(),
            });
            None
        }
    };
    Some(PathRule {
        paths: paths?,
        resources: resources?,
        methods: methods?,
        networks: networks?,
        action: action?,
        step_up: step_up?,
    })
}

/// HTTP method names (`rules.methods`), upper-cased; a method is a token.
fn methods(key: &str, raw: &[String], report: &mut Report) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (j, m) in raw.iter().enumerate() {
        let upper = m.trim().to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 32 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            report.error(invalid(
                format!("{key}[{j}]"),
                m,
                "is not an HTTP method (fix: e.g. \"GET\", \"POST\", \"DELETE\")",
            ));
            ok = false;
        } else if !out.contains(&upper) {
            out.push(upper);
        }
    }
    ok.then_some(out)
}

/// Warnings for rules no request in normal form can reach: a rule is
/// unreachable when a `bypass_*` key or an earlier rule already takes every
/// request it could match. Prefixes are compared exactly; a regex counts by
/// its literal start (`^/api/system/status$` starts with `/api/system/status`,
/// which `bypass_paths = ["/api"]` takes first).
fn unreachable_rules(prefix: &str, h: &HostRule) -> Vec<String> {
    let mut out = Vec::new();
    // The host's bypass keys shadow only when no network condition can let a request past them.
    let bypass_always = h.allowed_networks.is_empty();
    for (j, rule) in h.bypass_resource_sources().iter().enumerate() {
        if let Some(p) = anchored_literal(rule).and_then(|l| covering(&h.bypass_paths, l)) {
            out.push(format!(
                "{prefix}.bypass_resources[{j}] ({rule:?}) never decides: bypass_paths[{p}] ({:?}) already takes every path it matches",
                h.bypass_paths.get(p).map(PathPrefix::as_str).unwrap_or_default()
            ));
        }
    }
    for (j, rule) in h.rules.iter().enumerate() {
        let key = format!("{prefix}.rules[{j}]");
        if bypass_always {
            if let Some((what, p)) = rule_paths_covered(rule, |l| covering(&h.bypass_paths, l)) {
                out.push(format!(
                    "{key} can never match a path in normal form: bypass_paths[{p}] ({:?}) takes {what} first",
                    h.bypass_paths.get(p).map(PathPrefix::as_str).unwrap_or_default()
                ));
                continue;
            }
        }
        for (k, earlier) in h.rules.iter().enumerate().take(j) {
            if covers(earlier, rule) {
                out.push(format!(
                    "{key} can never match: {prefix}.rules[{k}] comes first and matches every request it would"
                ));
                break;
            }
        }
    }
    out
}

/// When every path `rule` can match starts with a prefix `cover` finds, the
/// description of the paths and that prefix's index.
fn rule_paths_covered(
    rule: &PathRule,
    cover: impl Fn(&str) -> Option<usize>,
) -> Option<(String, usize)> {
    if rule.paths.is_empty() && rule.resources.is_none() {
        return None;
    }
    let mut first = None;
    for p in &rule.paths {
        let i = cover(p.as_str())?;
        first.get_or_insert(i);
    }
    for r in rule.resource_sources() {
        let i = anchored_literal(r).and_then(&cover)?;
        first.get_or_insert(i);
    }
    first.map(|i| ("every path it names".to_string(), i))
}

/// Whether `earlier` matches every request `later` matches (as far as can be
/// told without running regexes: `later`'s paths and literal regex starts lie
/// under `earlier`'s prefixes, and its methods and networks are narrower).
fn covers(earlier: &PathRule, later: &PathRule) -> bool {
    let paths = if earlier.paths.is_empty() && earlier.resources.is_none() {
        true
    } else if earlier.paths.is_empty() {
        false
    } else {
        rule_paths_covered(later, |l| covering(&earlier.paths, l)).is_some()
    };
    let methods = earlier.methods.is_empty()
        || (!later.methods.is_empty() && later.methods.iter().all(|m| earlier.methods.contains(m)));
    let networks = earlier.networks.is_empty()
        || (!later.networks.is_empty()
            && later
                .networks
                .iter()
                .all(|n| earlier.networks.iter().any(|e| e.contains(n))));
    // A bypass rule does not take non-normal paths: a later rule still sees them.
    let all_paths = !matches!(earlier.action, RuleAction::Bypass);
    paths && methods && networks && all_paths
}

/// The index of the first prefix that covers `path` (itself a prefix or a literal regex start).
fn covering(prefixes: &[PathPrefix], path: &str) -> Option<usize> {
    prefixes.iter().position(|p| p.matches_reading(path))
}

fn claim_roles(prefix: &str, h: &RawHost, report: &mut Report) -> Option<Vec<ClaimRole>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (j, cr) in h.claim_roles.iter().enumerate() {
        let key = format!("{prefix}.claim_roles[{j}]");
        let mut field = |v: &Option<String>, name: &str| {
            let value = v.clone().filter(|s| !s.is_empty());
            if value.is_none() {
                report.error(ConfigError::Missing {
                    key: format!("{key}.{name}"),
                    fix: "write { claim = \"groups\", value = \"grafana-admins\", role = \"admins\" }".into(),
                });
            }
            value
        };
        match (
            field(&cr.claim, "claim"),
            field(&cr.value, "value"),
            field(&cr.role, "role"),
        ) {
            (Some(claim), Some(value), Some(role)) => out.push(ClaimRole { claim, value, role }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// Path prefixes (`bypass_paths`), lower-cased when the host folds case.
pub(super) fn prefixes(
    key: &str,
    raw: &[String],
    fold: bool,
    report: &mut Report,
) -> Option<Vec<PathPrefix>> {
    let parsed: Vec<Option<PathPrefix>> = raw
        .iter()
        .enumerate()
        .map(|(j, p)| {
            report
                .take(
                    PathPrefix::parse(p).map_err(|e| invalid(format!("{key}[{j}]"), p, e.reason())),
                )
                .map(|p| if fold { p.folded() } else { p })
        })
        .collect();
    parsed.into_iter().collect()
}

/// Regexes on the path (`bypass_resources`), compiled into one set;
/// case-insensitively when the host folds case, where a regex that turns
/// case sensitivity back on (`(?-i)`) is refused: on folded paths it would
/// silently stop matching the spellings it names.
pub(super) fn resources(
    key: &str,
    raw: &[String],
    fold: bool,
    report: &mut Report,
) -> Option<Option<Resources>> {
    let mut ok = true;
    for (j, r) in raw.iter().enumerate() {
        // Each regex alone, once at load, so that an error names its index.
        #[allow(
            clippy::disallowed_methods,
            reason = "configuration is compiled once, not per request"
        )]
        if let Err(e) = regex::Regex::new(r) {
            report.error(ConfigError::BadRegex {
                key: format!("{key}[{j}]"),
                value: r.clone(),
                reason: e.to_string(),
            });
            ok = false;
        } else if fold && clears_case_insensitivity(r) {
            report.error(invalid(
                format!("{key}[{j}]"),
                r,
                "turns case sensitivity back on ((?-i)) on a host with case_insensitive_paths, where paths are matched with their case folded (fix: drop the flag)",
            ));
            ok = false;
        } else if !r.starts_with("^/") {
            report.warn(format!(
                "{key}[{j}]: {r:?} is not anchored with \"^/\": it matches anywhere in the path (e.g. in /x{})",
                r.trim_start_matches('^')
            ));
        }
    }
    if !ok {
        return None;
    }
    report.take(
        Resources::new(raw.to_vec(), fold).map_err(|e| ConfigError::BadRegex {
            key: key.into(),
            value: raw.join(" | "),
            reason: e.to_string(),
        }),
    )
}

/// Whether a regex has an inline flag group that clears `i` (`(?-i)`,
/// `(?s-i:...)`). Errs towards yes (an escaped `\(?-i` counts too).
fn clears_case_insensitivity(regex: &str) -> bool {
    regex.match_indices("(?").any(|(at, _)| {
        let flags = regex.get(at + 2..).unwrap_or_default();
        let flags = flags.split([':', ')']).next().unwrap_or_default();
        flags
            .split_once('-')
            .is_some_and(|(_, off)| off.contains('i'))
    })
}

/// CIDR lists (`allowed_networks`, `trusted_proxies`).
pub(super) fn networks(key: &str, raw: &[String], report: &mut Report) -> Option<Networks> {
    let parsed: Vec<Option<ipnet::IpNet>> = raw
        .iter()
        .enumerate()
        .map(|(j, s)| {
            report.take(Networks::parse_one(s).map_err(|e| ConfigError::BadCidr {
                key: format!("{key}[{j}]"),
                value: s.clone(),
                reason: e.reason().to_string(),
            }))
        })
        .collect();
    parsed
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(Networks::new)
}

fn non_empty(key: &str, values: &[String], report: &mut Report) -> bool {
    let mut ok = true;
    for (i, v) in values.iter().enumerate() {
        if v.trim().is_empty() {
            report.error(invalid(format!("{key}[{i}]"), v, "is empty"));
            ok = false;
        }
    }
    ok
}

/// Letters, digits, '-' and '_' (policy and cookie names).
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
