//! The compiled rules the engine decides over: policies, host entries and the
//! host lookup. Built once by `config` through [`RulesBuilder`], then only read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use regex::{RegexSet, RegexSetBuilder};

use super::step_up::StepUp;
use crate::domain::{fold_case, HostName, HostPattern, Networks, PathPrefix};

/// A named policy (`[policies.NAME]`).
#[derive(Debug)]
pub struct Policy {
    /// The name, as configured.
    pub name: String,
    /// Roles admitted; empty = any signed-in user.
    pub allowed_groups: Vec<String>,
    /// User names or verified e-mail addresses admitted; empty = no restriction.
    pub allowed_users: Vec<String>,
    /// Clients from these networks pass without identity.
    pub allowed_networks: Networks,
}

/// One `claim_roles` entry: when `claim` holds `value`, the user has `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRole {
    pub claim: String,
    pub value: String,
    pub role: String,
}

/// Regexes on the path (`bypass_resources`, `rules.resources`): the sources
/// (for explanations) and the compiled form. A few regexes are run one by
/// one (each with its literal-prefix shortcut, which sets lack); many are run
/// as one set in a single pass.
#[derive(Debug)]
pub struct Resources {
    sources: Vec<String>,
    compiled: Compiled,
}

#[derive(Debug)]
enum Compiled {
    Each(Vec<regex::Regex>),
    Set(RegexSet),
}

/// Up to this many regexes are run one by one.
const EACH_MAX: usize = 8;

impl Resources {
    /// Compile the regexes, case-insensitively for a host with
    /// `case_insensitive_paths`; `None` for an empty list.
    pub fn new(
        sources: Vec<String>,
        case_insensitive: bool,
    ) -> Result<Option<Resources>, regex::Error> {
        if sources.is_empty() {
            return Ok(None);
        }
        let compiled = if sources.len() <= EACH_MAX {
            let each = sources
                .iter()
                .map(|s| {
                    regex::RegexBuilder::new(s)
                        .case_insensitive(case_insensitive)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            Compiled::Each(each)
        } else {
            Compiled::Set(
                RegexSetBuilder::new(&sources)
                    .case_insensitive(case_insensitive)
                    .build()?,
            )
        };
        Ok(Some(Resources { sources, compiled }))
    }

    /// The index of the first regex matching `path`.
    pub fn first_match(&self, path: &str) -> Option<usize> {
        match &self.compiled {
            Compiled::Each(each) => each.iter().position(|r| r.is_match(path)),
            Compiled::Set(set) => set.matches(path).iter().next(),
        }
    }

    /// The regex sources, in order.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }
}

/// What a matching `[[hosts.rules]]` entry does.
#[derive(Debug, Clone)]
pub enum RuleAction {
    /// This policy replaces the host's for the rest of the decision.
    Policy(Arc<Policy>),
    /// Allow without identity.
    Bypass,
    /// 403 for everyone.
    Deny,
}

impl RuleAction {
    /// `policy = "admins"`, `action = "bypass"`, `action = "deny"`.
    pub fn describe(&self) -> String {
        match self {
            RuleAction::Policy(p) => format!("policy = {:?}", p.name),
            RuleAction::Bypass => "action = \"bypass\"".into(),
            RuleAction::Deny => "action = \"deny\"".into(),
        }
    }
}

/// One compiled `[[hosts.rules]]` entry: it matches when every key it sets
/// matches (`paths` or `resources`: either one).
#[derive(Debug)]
pub struct PathRule {
    /// Prefixes on segment boundaries.
    pub paths: Vec<PathPrefix>,
    /// Regexes on the path.
    pub resources: Option<Resources>,
    /// Upper-case method names; empty = any method.
    pub methods: Vec<String>,
    /// Client networks; empty = any client.
    pub networks: Networks,
    pub action: RuleAction,
    /// The step-up this rule asks (its `max_age`/`amr`, else the host's,
    /// key by key); empty when neither asks.
    pub step_up: StepUp,
}

/// Which path key of a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKey {
    /// The rule sets neither `paths` nor `resources`.
    Any,
    /// `paths[i]`.
    Path(usize),
    /// `resources[i]`.
    Resource(usize),
}

impl PathRule {
    /// Whether `paths` or `resources` match this reading of the path:
    /// `paths` meet `folded` (the reading with its case folded, on a
    /// case-insensitive host; else the reading itself), `resources` the
    /// reading as read (their regexes fold case themselves there).
    pub fn path_key(&self, path: &str, folded: &str) -> Option<PathKey> {
        if self.paths.is_empty() && self.resources.is_none() {
            return Some(PathKey::Any);
        }
        if let Some(i) = self.paths.iter().position(|p| p.matches_reading(folded)) {
            return Some(PathKey::Path(i));
        }
        self.resources
            .as_ref()?
            .first_match(path)
            .map(PathKey::Resource)
    }

    /// Whether `methods` admits `method` (always, when the rule sets none).
    pub fn admits_method(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// The regex sources of `resources` (empty when there are none).
    pub fn resource_sources(&self) -> &[String] {
        self.resources
            .as_ref()
            .map(Resources::sources)
            .unwrap_or_default()
    }
}

/// A host's `[[hosts.rules]]`, in order, with an index by the path's first
/// segment: a request tries only the rules that could match its path (those
/// whose every path key names that first segment, and those that may match
/// any path), so the cost does not grow with rules for other parts of the host.
#[derive(Debug, Default)]
pub struct PathRules {
    rules: Vec<PathRule>,
    /// By first segment: the rules that could match a path with that first
    /// segment, in rule order (`any` merged in).
    by_first: foldhash::HashMap<Box<str>, Vec<usize>>,
    /// Which bytes begin an indexed segment: most paths miss at once.
    first_bytes: [u64; 4],
    /// The rules that could match any path.
    any: Vec<usize>,
}

impl PathRules {
    /// Index `rules`. With `fold` (a host with `case_insensitive_paths`,
    /// whose paths are looked up with their case folded) the index keys are
    /// folded too: a regex's literal start keeps the case it was written in.
    /// There a rule whose first segment is not ASCII is not indexed (tried
    /// for every path): its regex folds case by Unicode's simple folding
    /// (`ẞ` is `ß`), which [`fold_case`] need not map to one key, while an
    /// ASCII key meets every spelling such a regex equates with it (`ſ` and
    /// the Kelvin sign fold to `s` and `k`).
    pub fn new(rules: Vec<PathRule>, fold: bool) -> PathRules {
        let firsts: Vec<Option<Vec<String>>> = rules
            .iter()
            .map(|r| {
                let segs = first_segments(r)?;
                if !fold {
                    return Some(segs);
                }
                if !segs.iter().all(|s| s.is_ascii()) {
                    return None;
                }
                Some(segs.iter().map(|s| fold_case(s).into_owned()).collect())
            })
            .collect();
        let any: Vec<usize> = firsts
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_none())
            .map(|(i, _)| i)
            .collect();
        let mut segments: Vec<String> = firsts.iter().flatten().flatten().cloned().collect();
        segments.sort();
        segments.dedup();
        let mut first_bytes = [0u64; 4];
        for seg in &segments {
            if let Some(&b) = seg.as_bytes().first() {
                if let Some(word) = first_bytes.get_mut(usize::from(b / 64)) {
                    *word |= 1 << (b % 64);
                }
            }
        }
        let by_first = segments
            .into_iter()
            .map(|seg| {
                let ids = firsts
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.as_ref().is_none_or(|f| f.contains(&seg)))
                    .map(|(i, _)| i)
                    .collect();
                (seg.into_boxed_str(), ids)
            })
            .collect();
        PathRules {
            rules,
            by_first,
            first_bytes,
            any,
        }
    }

    /// The indices of the rules that could match `path` (one reading of it),
    /// in order.
    pub fn candidates(&self, path: &str) -> &[usize] {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let first = match rest.bytes().position(|b| b == b'/') {
            Some(end) => rest.get(..end).unwrap_or(rest),
            None => rest,
        };
        let indexed = first.as_bytes().first().is_some_and(|&b| {
            self.first_bytes
                .get(usize::from(b / 64))
                .is_some_and(|word| word & (1 << (b % 64)) != 0)
        });
        if !indexed {
            return &self.any;
        }
        self.by_first.get(first).unwrap_or(&self.any)
    }
}

impl std::ops::Deref for PathRules {
    type Target = [PathRule];
    fn deref(&self) -> &[PathRule] {
        &self.rules
    }
}

/// The first path segments a rule can match, or `None` when it may match a
/// path with any first segment (no path key, the prefix `/`, a regex without
/// a literal first segment).
fn first_segments(rule: &PathRule) -> Option<Vec<String>> {
    if rule.paths.is_empty() && rule.resources.is_none() {
        return None;
    }
    let mut out = Vec::new();
    for p in &rule.paths {
        out.push(first_segment(p.as_str())?.to_string());
    }
    for r in rule.resource_sources() {
        out.push(first_segment(anchored_literal(r)?)?.to_string());
    }
    Some(out)
}

/// `/api/x` → `api`; `/` → `None`.
fn first_segment(literal: &str) -> Option<&str> {
    let rest = literal.strip_prefix('/')?;
    let seg = rest.split('/').next().unwrap_or(rest);
    (!seg.is_empty()).then_some(seg)
}

/// The literal path every match of a regex on paths starts with, in whole
/// segments: `^/api/v[0-9]+` gives `/api`, `^/api/system/status$` gives
/// itself, `^/api` gives nothing (it also matches `/apix`). `None` for a
/// regex that is not anchored with `^/`, or has `|` or inline flags anywhere
/// (whose literal start cannot be read off this simply).
pub fn anchored_literal(regex: &str) -> Option<&str> {
    let body = regex.strip_prefix("^/")?;
    if regex.contains('|') || regex.contains("(?") {
        return None;
    }
    let special = body
        .find(|c: char| "\\.+*?()[]{}^$".contains(c))
        .unwrap_or(body.len());
    let (lit, rest) = body.split_at(special);
    let whole = if rest == "$" {
        lit
    } else {
        // The text after the last '/' may go on: cut back to a segment boundary.
        lit.rfind('/').and_then(|cut| lit.get(..cut))?
    };
    // `whole` is the part after `^/`; give it back with its slash.
    regex.get(1..whole.len() + 2).filter(|l| l.len() > 1)
}

/// One compiled `[[hosts]]` entry.
#[derive(Debug)]
pub struct HostRule {
    /// Position among all `[[hosts]]`, the main file's first, then each
    /// include file's (names the entry: `hosts[3]`).
    pub index: usize,
    pub pattern: HostPattern,
    pub policy: Arc<Policy>,
    pub claim_roles: Vec<ClaimRole>,
    pub bypass_paths: Vec<PathPrefix>,
    pub bypass_resources: Option<Resources>,
    pub allowed_networks: Networks,
    /// `[[hosts.rules]]`, in order.
    pub rules: PathRules,
    /// `case_insensitive_paths`: paths are matched with their letter case
    /// folded (prefixes are stored folded, regexes compiled case-insensitively).
    pub case_insensitive_paths: bool,
    /// The host's `max_age`/`amr` (step-up); empty when it sets neither.
    pub step_up: StepUp,
    /// The include file that defined it, as written relative to the main
    /// file's directory (`conf.d/gitea.toml`); `None` for the main file.
    pub source: Option<Arc<str>>,
}

impl HostRule {
    /// The regex sources of `bypass_resources` (empty when there are none).
    pub fn bypass_resource_sources(&self) -> &[String] {
        self.bypass_resources
            .as_ref()
            .map(Resources::sources)
            .unwrap_or_default()
    }
}

/// The claims the engine reads besides the ones an identity always carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// `oidc.username_claim`.
    pub username: String,
    /// `oidc.groups_claim`.
    pub groups: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            username: "preferred_username".into(),
            groups: "groups".into(),
        }
    }
}

/// Where a host name matched.
#[derive(Debug, Clone, Copy)]
pub enum HostMatch<'r> {
    /// A `[[hosts]]` entry.
    Entry(&'r HostRule),
    /// No entry; `default_policy` applies.
    Default(&'r Arc<Policy>),
    /// No entry and no default.
    Unknown,
}

impl HostMatch<'_> {
    /// `hosts[3] (grafana.example.com)`, `default_policy` or `none`.
    pub fn describe(&self) -> String {
        match self {
            HostMatch::Entry(h) => format!("hosts[{}] ({})", h.index, h.pattern),
            HostMatch::Default(p) => format!("default_policy ({})", p.name),
            HostMatch::Unknown => "none".into(),
        }
    }
}

impl PartialEq for HostMatch<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HostMatch::Entry(a), HostMatch::Entry(b)) => std::ptr::eq(*a, *b),
            (HostMatch::Default(a), HostMatch::Default(b)) => Arc::ptr_eq(a, b),
            (HostMatch::Unknown, HostMatch::Unknown) => true,
            _ => false,
        }
    }
}

/// All compiled rules. Policies are shared by reference, so nothing indexes
/// into a list with a number that could be out of range. The default is the
/// empty set, where every host is unknown.
#[derive(Default)]
pub struct Rules {
    policies: Vec<Arc<Policy>>,
    hosts: Vec<HostRule>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    default_policy: Option<Arc<Policy>>,
    claims: ClaimNames,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("policies", &self.policies.len())
            .field("hosts", &self.hosts.len())
            .field(
                "default_policy",
                &self.default_policy.as_ref().map(|p| &p.name),
            )
            .finish_non_exhaustive()
    }
}

impl Rules {
    /// Look a normalised host name (lower case, no port, no trailing dot) up:
    /// exact entry, else the longest matching wildcard, else the default.
    /// Cost grows with the number of labels in `host`, not with the number of hosts.
    pub fn lookup_host(&self, host: &str) -> HostMatch<'_> {
        let entry = |i: &usize| self.hosts.get(*i).map(HostMatch::Entry);
        if let Some(m) = self.exact.get(host).and_then(entry) {
            return m;
        }
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            rest = parent;
            if let Some(m) = self.wildcard.get(rest).and_then(entry) {
                return m;
            }
        }
        match &self.default_policy {
            Some(p) => HostMatch::Default(p),
            None => HostMatch::Unknown,
        }
    }

    /// The `[[hosts]]` entries, in configuration order.
    pub fn hosts(&self) -> &[HostRule] {
        &self.hosts
    }

    /// The policies, by name.
    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    /// `default_policy`, if set.
    pub fn default_policy(&self) -> Option<&Arc<Policy>> {
        self.default_policy.as_ref()
    }

    /// The claim names the engine reads.
    pub fn claim_names(&self) -> &ClaimNames {
        &self.claims
    }

    /// Claims (other than `sub`, `email`, `name`, the user name and groups
    /// claims, which an identity always carries) that some `claim_roles` entry
    /// reads; captured at login.
    pub fn role_claims(&self) -> Vec<String> {
        let fixed = [
            "sub",
            "email",
            "name",
            self.claims.username.as_str(),
            self.claims.groups.as_str(),
        ];
        let mut out: Vec<String> = self
            .hosts
            .iter()
            .flat_map(|h| h.claim_roles.iter().map(|cr| cr.claim.clone()))
            .filter(|c| !fixed.contains(&c.as_str()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A host defined twice (case- and trailing-dot-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateHost {
    /// The index of the entry that defined it first.
    pub first: usize,
}

/// Builds [`Rules`]: policies first, then hosts referring to them.
#[derive(Default)]
pub struct RulesBuilder {
    /// The rules so far; [`RulesBuilder::build`] sets their claim names.
    rules: Rules,
}

impl RulesBuilder {
    /// An empty builder.
    pub fn new() -> RulesBuilder {
        RulesBuilder::default()
    }

    /// Add a policy; the handle hosts refer to it by.
    pub fn add_policy(&mut self, policy: Policy) -> Arc<Policy> {
        let p = Arc::new(policy);
        self.rules.policies.push(p.clone());
        p
    }

    /// The policy of that name, if added.
    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.rules.policies.iter().find(|p| p.name == name).cloned()
    }

    /// The names of the policies added so far (for "defined: ..." messages).
    pub fn policy_names(&self) -> Vec<&str> {
        self.rules
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Set `default_policy`.
    pub fn default_policy(&mut self, policy: Arc<Policy>) {
        self.rules.default_policy = Some(policy);
    }

    /// Add a host entry; its `index` is set to its position. A pattern already
    /// present is refused, naming the first entry.
    pub fn add_host(&mut self, mut host: HostRule) -> Result<(), DuplicateHost> {
        let index = self.rules.hosts.len();
        let (table, key): (&mut HashMap<String, usize>, &HostName) = match &host.pattern {
            HostPattern::Exact(n) => (&mut self.rules.exact, n),
            HostPattern::Wildcard(s) => (&mut self.rules.wildcard, s),
        };
        if let Some(&first) = table.get(key.as_str()) {
            return Err(DuplicateHost { first });
        }
        table.insert(key.as_str().to_string(), index);
        host.index = index;
        self.rules.hosts.push(host);
        Ok(())
    }

    /// Whether any host entry or a default policy exists.
    pub fn covers_any_host(&self) -> bool {
        !self.rules.hosts.is_empty() || self.rules.default_policy.is_some()
    }

    /// The hosts added so far.
    pub fn hosts(&self) -> &[HostRule] {
        &self.rules.hosts
    }

    /// Finish.
    pub fn build(self, claims: ClaimNames) -> Rules {
        Rules {
            claims,
            ..self.rules
        }
    }
}
