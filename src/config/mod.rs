//! Configuration: load (figment: TOML file, then `POCKETGATE_*` environment),
//! validate, and compile into an immutable [`Runtime`].
//!
//! Everything the request path needs is resolved here, once: host tables,
//! regex sets, CIDRs, policy references, header names, secrets. Past this
//! module nothing re-checks configuration. This module knows nothing of HTTP.

mod error;
mod raw;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use ipnet::IpNet;
use regex::{Regex, RegexSet};

pub use error::ConfigError;
use raw::{keys, RawConfig, RawHost};

/// Environment variables read directly (not through figment), so that a secret
/// that happens to look like a number or a list stays a string.
const ENV_SESSION_SECRET: &str = "POCKETGATE_SESSION__SECRET";
const ENV_CLIENT_SECRET: &str = "POCKETGATE_OIDC__CLIENT_SECRET";

/// The compiled configuration: built once, shared by `Arc`, only read.
#[derive(Debug)]
pub struct Runtime {
    /// Address the server binds.
    pub listen: SocketAddr,
    /// Where browsers reach `/login`, `/callback`, `/logout`.
    pub public_url: PublicUrl,
    /// Peers whose `X-Forwarded-*` / `X-Original-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Policy for hosts not listed; `None` denies them.
    pub default_policy: Option<PolicyId>,
    /// Policies, indexed by [`PolicyId`].
    pub policies: Vec<Policy>,
    /// Host entries in configuration order (index = position in `[[hosts]]`).
    pub hosts: Vec<HostRule>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    /// Provider settings.
    pub oidc: OidcSettings,
    /// Session cookie settings and keys.
    pub session: SessionSettings,
    /// Names of the identity headers.
    pub headers: HeaderNames,
    /// Logging output.
    pub log: LogSettings,
    /// Claims (other than the ones an [`crate::policy::Identity`] always carries)
    /// that some `claim_roles` entry reads; captured at login.
    pub role_claims: Vec<String>,
}

/// Index into [`Runtime::policies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyId(pub usize);

/// A named policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub allowed_groups: Vec<String>,
    pub allowed_users: Vec<String>,
    pub allowed_networks: Vec<IpNet>,
}

/// How a `[[hosts]]` entry names its host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `grafana.example.com`: that name only.
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (any depth), not `example.com` itself.
    Wildcard(String),
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// One compiled `[[hosts]]` entry.
#[derive(Debug)]
pub struct HostRule {
    pub pattern: HostPattern,
    pub policy: PolicyId,
    pub claim_roles: Vec<ClaimRole>,
    /// Normal-form prefixes, without trailing slash (except `/` itself).
    pub bypass_paths: Vec<String>,
    /// The regex sources, for explanations.
    pub bypass_resources: Vec<String>,
    /// All of `bypass_resources` compiled into one set (`None` when empty).
    pub bypass_set: Option<RegexSet>,
    pub allowed_networks: Vec<IpNet>,
}

/// One `claim_roles` entry: when `claim` holds `value`, the user has `role`.
#[derive(Debug, Clone)]
pub struct ClaimRole {
    pub claim: String,
    pub value: String,
    pub role: String,
}

/// `public_url`, parsed.
#[derive(Debug, Clone)]
pub struct PublicUrl {
    /// `scheme://host[:port]`, no trailing slash.
    pub origin: String,
    /// The host name, lower case, no port.
    pub host: String,
    /// Whether it is https (cookies get `Secure`).
    pub https: bool,
}

/// How pocketgate authenticates to the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (the default with a secret).
    Basic,
    /// Client id and secret in the form body.
    Post,
    /// Public client: PKCE only (the default without a secret).
    None,
}

impl ClientAuth {
    /// The configuration spelling (`client_auth = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::None => "none",
        }
    }
}

/// `[oidc]`, resolved.
#[derive(Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// `[session]`, resolved.
#[derive(Clone)]
pub struct SessionSettings {
    /// Each at least 32 bytes; the first seals, all open.
    pub secrets: Vec<Vec<u8>>,
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    pub lifetime: Duration,
}

impl fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSettings")
            .field("secrets", &format!("<{} redacted>", self.secrets.len()))
            .field("cookie_name", &self.cookie_name)
            .field("cookie_domain", &self.cookie_domain)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// `[headers]`: lower-case header names.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub user: String,
    pub email: String,
    pub name: String,
    pub groups: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

/// What the caller needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving: provider settings and secrets are required and read.
    Full,
    /// `explain`: only what decisions need; secrets are neither required nor read.
    PolicyOnly,
}

/// A loaded configuration plus the warnings `check` prints.
#[derive(Debug)]
pub struct Loaded {
    pub runtime: Runtime,
    pub warnings: Vec<String>,
}

/// Where a host name matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch {
    /// A `[[hosts]]` entry, by index.
    Entry(usize),
    /// No entry; `default_policy` applies.
    Default(PolicyId),
    /// No entry and no default.
    Unknown,
}

impl Runtime {
    /// Look a normalised host name (lower case, no port, no trailing dot) up:
    /// exact entry, else the longest matching wildcard, else the default.
    /// Cost grows with the number of labels in `host`, not with the number of hosts.
    pub fn lookup_host(&self, host: &str) -> HostMatch {
        if let Some(&i) = self.exact.get(host) {
            return HostMatch::Entry(i);
        }
        let mut rest = host;
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if let Some(&i) = self.wildcard.get(rest) {
                return HostMatch::Entry(i);
            }
        }
        match self.default_policy {
            Some(p) => HostMatch::Default(p),
            None => HostMatch::Unknown,
        }
    }

    /// The policy with this id.
    pub fn policy(&self, id: PolicyId) -> &Policy {
        &self.policies[id.0]
    }

    /// Whether `host` (normalised) may be a post-login or post-logout target:
    /// a configured host entry, the public URL's host, or a name under `cookie_domain`.
    /// `default_policy` does not make every host a valid target.
    pub fn is_redirect_host(&self, host: &str) -> bool {
        if host == self.public_url.host || matches!(self.lookup_host(host), HostMatch::Entry(_)) {
            return true;
        }
        match &self.session.cookie_domain {
            Some(d) => {
                host == d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            }
            None => false,
        }
    }
}

/// The figment for a config file plus the `POCKETGATE_` environment.
pub fn figment_for(path: &Path) -> Figment {
    Figment::new().merge(Toml::file_exact(path)).merge(
        Env::prefixed("POCKETGATE_")
            .filter(|k| {
                let k = k.as_str();
                !(k.eq_ignore_ascii_case("config")
                    || k.eq_ignore_ascii_case("session__secret")
                    || k.eq_ignore_ascii_case("oidc__client_secret"))
            })
            .split("__"),
    )
}

/// Load, validate and compile the configuration at `path` (plus environment).
pub fn load(path: &Path, mode: Mode) -> Result<Loaded, ConfigError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(ConfigError::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
    }
    load_figment(figment_for(path), mode, &|name| std::env::var(name).ok())
}

/// Load from TOML text alone (tests, `demo`), with `env` standing in for the
/// process environment for the two secret variables.
pub fn load_str(
    toml: &str,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    load_figment(Figment::from(Toml::string(toml)), mode, env)
}

fn load_figment(
    figment: Figment,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let tree: Dict = figment
        .extract()
        .map_err(|e| ConfigError::Syntax(e.to_string()))?;
    check_unknown_keys(&tree)?;
    let raw: RawConfig = figment
        .extract()
        .map_err(|e| ConfigError::Syntax(describe_figment_error(&e)))?;
    compile(raw, mode, env)
}

fn describe_figment_error(e: &figment::Error) -> String {
    let mut out = String::new();
    for (i, err) in e.clone().into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let key = err.path.join(".");
        if key.is_empty() {
            out.push_str(&err.kind.to_string());
        } else {
            out.push_str(&format!("{key}: {}", err.kind));
        }
    }
    out
}

// ---------------------------------------------------------------- unknown keys

fn check_unknown_keys(tree: &Dict) -> Result<(), ConfigError> {
    check_table(tree, "", keys::TOP)?;
    for (table, allowed) in [
        ("oidc", keys::OIDC),
        ("session", keys::SESSION),
        ("headers", keys::HEADERS),
    ] {
        if let Some(Value::Dict(_, d)) = tree.get(table) {
            check_table(d, table, allowed)?;
        }
    }
    if let Some(Value::Dict(_, policies)) = tree.get("policies") {
        for (name, p) in policies {
            if let Value::Dict(_, d) = p {
                check_table(d, &format!("policies.{name}"), keys::POLICY)?;
            }
        }
    }
    if let Some(Value::Array(_, hosts)) = tree.get("hosts") {
        for (i, h) in hosts.iter().enumerate() {
            if let Value::Dict(_, d) = h {
                let prefix = format!("hosts[{i}]");
                check_table(d, &prefix, keys::HOST)?;
                if let Some(Value::Array(_, roles)) = d.get("claim_roles") {
                    for (j, r) in roles.iter().enumerate() {
                        if let Value::Dict(_, rd) = r {
                            check_table(
                                rd,
                                &format!("{prefix}.claim_roles[{j}]"),
                                keys::CLAIM_ROLE,
                            )?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_table(table: &Dict, prefix: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    for key in table.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        // camelCase spellings from caddy-security translate to our snake_case.
        let snake = to_snake_case(key);
        let suggestion = if allowed.contains(&snake.as_str()) {
            Some(snake)
        } else {
            allowed
                .iter()
                .map(|k| (strsim::damerau_levenshtein(key, k), *k))
                .filter(|(d, k)| {
                    *d <= (k.len() / 2).max(2) || key.starts_with(*k) || k.starts_with(key.as_str())
                })
                .min_by_key(|(d, _)| *d)
                .map(|(_, k)| k.to_string())
        };
        let suggestion = suggestion.map(|s| {
            if prefix.is_empty() {
                s
            } else {
                format!("{prefix}.{s}")
            }
        });
        return Err(ConfigError::UnknownKey {
            key: full,
            suggestion,
        });
    }
    Ok(())
}

fn to_snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------- compile

fn invalid(
    key: impl Into<String>,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn compile(
    raw: RawConfig,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();

    let listen_s = raw
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:4180".into());
    let listen: SocketAddr = listen_s.parse().map_err(|_| {
        invalid(
            "listen",
            &listen_s,
            "is not an IP:port address (fix: e.g. \"127.0.0.1:4180\" or \"0.0.0.0:4180\")",
        )
    })?;

    let public_url =
        match raw.public_url.clone() {
            Some(u) => parse_public_url(&u)?,
            None => return Err(ConfigError::Missing {
                key: "public_url".into(),
                fix: "set it to where browsers reach pocketgate, e.g. \"https://auth.example.com\""
                    .into(),
            }),
        };

    let trusted_proxies = match raw.trusted_proxies.clone() {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, s)| parse_cidr(&format!("trusted_proxies[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![
            "127.0.0.1/32".parse().expect("literal"),
            "::1/128".parse().expect("literal"),
        ],
    };

    // Policies.
    let mut policies = Vec::new();
    let mut policy_ids = HashMap::new();
    for (name, p) in &raw.policies {
        let key = format!("policies.{name}");
        if !is_token(name) {
            return Err(invalid(
                &key,
                name,
                "is not a valid policy name (letters, digits, '-', '_')",
            ));
        }
        let allowed_networks = p
            .allowed_networks
            .iter()
            .enumerate()
            .map(|(i, s)| parse_cidr(&format!("{key}.allowed_networks[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, g) in p.allowed_groups.iter().enumerate() {
            if g.trim().is_empty() {
                return Err(invalid(format!("{key}.allowed_groups[{i}]"), g, "is empty"));
            }
        }
        for (i, u) in p.allowed_users.iter().enumerate() {
            if u.trim().is_empty() {
                return Err(invalid(format!("{key}.allowed_users[{i}]"), u, "is empty"));
            }
        }
        policy_ids.insert(name.clone(), PolicyId(policies.len()));
        policies.push(Policy {
            name: name.clone(),
            allowed_groups: p.allowed_groups.clone(),
            allowed_users: p.allowed_users.clone(),
            allowed_networks,
        });
    }
    let defined = || {
        if policies.is_empty() {
            "none".to_string()
        } else {
            policies
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let resolve = |key: &str, name: &str| -> Result<PolicyId, ConfigError> {
        policy_ids
            .get(name)
            .copied()
            .ok_or_else(|| ConfigError::UndefinedPolicy {
                key: key.into(),
                name: name.into(),
                defined: defined(),
            })
    };
    let default_policy = match &raw.default_policy {
        Some(name) => Some(resolve("default_policy", name)?),
        None => None,
    };

    // Hosts.
    let mut hosts = Vec::new();
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    let mut seen: HashMap<HostPattern, String> = HashMap::new();
    let mut role_claims = BTreeSet::new();
    for (i, h) in raw.hosts.iter().enumerate() {
        let rule = compile_host(i, h, &resolve, &mut warnings)?;
        let key = format!("hosts[{i}].host");
        if let Some(first) = seen.get(&rule.pattern) {
            return Err(ConfigError::DuplicateHost {
                key,
                host: rule.pattern.to_string(),
                first: first.clone(),
            });
        }
        seen.insert(rule.pattern.clone(), key);
        match &rule.pattern {
            HostPattern::Exact(n) => exact.insert(n.clone(), i),
            HostPattern::Wildcard(s) => wildcard.insert(s.clone(), i),
        };
        for cr in &rule.claim_roles {
            role_claims.insert(cr.claim.clone());
        }
        hosts.push(rule);
    }
    if default_policy.is_none() && hosts.is_empty() {
        warnings.push("no [[hosts]] and no default_policy: every request will be denied".into());
    }

    let oidc = compile_oidc(&raw, mode, env, &mut warnings, &policies)?;
    let session = compile_session(&raw, mode, env, &public_url, &mut warnings)?;
    if session.cookie_domain.is_none() {
        let elsewhere = hosts.iter().any(|h| match &h.pattern {
            HostPattern::Exact(n) => *n != public_url.host,
            HostPattern::Wildcard(_) => true,
        }) || default_policy.is_some();
        if elsewhere {
            warnings.push(format!(
                "session.cookie_domain is not set: the session cookie belongs to {} alone, so hosts other than it never see it (fix: set cookie_domain to their common parent domain)",
                public_url.host
            ));
        }
    }
    let headers = compile_headers(&raw)?;
    let log = compile_log(&raw)?;

    let fixed = [
        "sub",
        "email",
        "name",
        oidc.username_claim.as_str(),
        oidc.groups_claim.as_str(),
    ];
    let role_claims = role_claims
        .into_iter()
        .filter(|c| !fixed.contains(&c.as_str()))
        .collect();

    Ok(Loaded {
        runtime: Runtime {
            listen,
            public_url,
            trusted_proxies,
            default_policy,
            policies,
            hosts,
            exact,
            wildcard,
            oidc,
            session,
            headers,
            log,
            role_claims,
        },
        warnings,
    })
}

fn compile_host(
    i: usize,
    h: &RawHost,
    resolve: &dyn Fn(&str, &str) -> Result<PolicyId, ConfigError>,
    warnings: &mut Vec<String>,
) -> Result<HostRule, ConfigError> {
    let prefix = format!("hosts[{i}]");
    let host = h.host.as_deref().ok_or_else(|| ConfigError::Missing {
        key: format!("{prefix}.host"),
        fix: "name the host, e.g. host = \"grafana.example.com\" or \"*.example.com\"".into(),
    })?;
    let pattern = parse_host_pattern(&format!("{prefix}.host"), host)?;
    let policy_name = h.policy.as_deref().ok_or_else(|| ConfigError::Missing {
        key: format!("{prefix}.policy"),
        fix: "name one of the [policies.*] tables".into(),
    })?;
    let policy = resolve(&format!("{prefix}.policy"), policy_name)?;

    let mut claim_roles = Vec::new();
    for (j, cr) in h.claim_roles.iter().enumerate() {
        let key = format!("{prefix}.claim_roles[{j}]");
        let field = |v: &Option<String>, name: &str| {
            v.clone().filter(|s| !s.is_empty()).ok_or_else(|| ConfigError::Missing {
                key: format!("{key}.{name}"),
                fix: "write { claim = \"groups\", value = \"grafana-admins\", role = \"admins\" }".into(),
            })
        };
        claim_roles.push(ClaimRole {
            claim: field(&cr.claim, "claim")?,
            value: field(&cr.value, "value")?,
            role: field(&cr.role, "role")?,
        });
    }

    let mut bypass_paths = Vec::new();
    for (j, p) in h.bypass_paths.iter().enumerate() {
        let key = format!("{prefix}.bypass_paths[{j}]");
        if !p.starts_with('/') {
            return Err(invalid(
                &key,
                p,
                format!("must start with '/' (fix: \"/{p}\")"),
            ));
        }
        if p.contains(['?', '#', '%', '\\']) || !crate::policy::is_normal_path(p) {
            return Err(invalid(
                &key,
                p,
                "must be a plain path in normal form (no '.'/'..' segments, no '//', no '?', '#', '%' or '\\')",
            ));
        }
        let trimmed = if p.len() > 1 {
            p.trim_end_matches('/')
        } else {
            p
        };
        bypass_paths.push(trimmed.to_string());
    }

    for (j, r) in h.bypass_resources.iter().enumerate() {
        let key = format!("{prefix}.bypass_resources[{j}]");
        if let Err(e) = Regex::new(r) {
            return Err(ConfigError::BadRegex {
                key,
                value: r.clone(),
                reason: e.to_string(),
            });
        }
        if !r.starts_with("^/") {
            warnings.push(format!(
                "{key}: {r:?} is not anchored with \"^/\": it matches anywhere in the path (e.g. in /x{})",
                r.trim_start_matches('^')
            ));
        }
    }
    let bypass_set = if h.bypass_resources.is_empty() {
        None
    } else {
        Some(
            RegexSet::new(&h.bypass_resources).map_err(|e| ConfigError::BadRegex {
                key: format!("{prefix}.bypass_resources"),
                value: h.bypass_resources.join(" | "),
                reason: e.to_string(),
            })?,
        )
    };

    let allowed_networks = h
        .allowed_networks
        .iter()
        .enumerate()
        .map(|(j, s)| parse_cidr(&format!("{prefix}.allowed_networks[{j}]"), s))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(HostRule {
        pattern,
        policy,
        claim_roles,
        bypass_paths,
        bypass_resources: h.bypass_resources.clone(),
        bypass_set,
        allowed_networks,
    })
}

fn compile_oidc(
    raw: &RawConfig,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    policies: &[Policy],
) -> Result<OidcSettings, ConfigError> {
    let o = &raw.oidc;
    let full = mode == Mode::Full;
    let issuer = match &o.issuer {
        Some(s) => {
            // Kept verbatim: discovery and RFC 9207 compare the issuer exactly,
            // trailing slash included.
            let s = s.trim().to_string();
            match url::Url::parse(&s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    if u.scheme() == "http" && !is_loopback_host(u.host_str().unwrap_or_default()) {
                        warnings.push(format!(
                            "oidc.issuer: {s:?} is plain http: tokens travel unencrypted"
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        "oidc.issuer",
                        &s,
                        "is not an absolute http(s) URL (fix: Pocket ID's APP_URL, e.g. \"https://id.example.com\")",
                    ))
                }
            }
            s
        }
        None if full => {
            return Err(ConfigError::Missing {
                key: "oidc.issuer".into(),
                fix: "set it to Pocket ID's APP_URL, e.g. \"https://id.example.com\"".into(),
            })
        }
        None => String::new(),
    };
    let client_id = match &o.client_id {
        Some(s) if !s.is_empty() => s.clone(),
        _ if full => {
            return Err(ConfigError::Missing {
                key: "oidc.client_id".into(),
                fix: "copy the client ID of the OIDC client created in Pocket ID".into(),
            })
        }
        _ => String::new(),
    };
    let client_secret = if full {
        resolve_secret(
            "oidc.client_secret",
            o.client_secret.as_deref(),
            o.client_secret_file.as_deref(),
            env(ENV_CLIENT_SECRET),
            warnings,
        )?
        .map(|lines| lines.into_iter().next().unwrap_or_default())
        .filter(|s| !s.is_empty())
    } else {
        None
    };
    let client_auth = match o.client_auth.as_deref() {
        None if client_secret.is_some() || !full => ClientAuth::Basic,
        None => ClientAuth::None,
        Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some("none") => ClientAuth::None,
        Some(other) => {
            return Err(invalid(
                "oidc.client_auth",
                other,
                "is not one of client_secret_basic, client_secret_post, none",
            ))
        }
    };
    if full && client_auth != ClientAuth::None && client_secret.is_none() {
        return Err(ConfigError::Missing {
            key: "oidc.client_secret".into(),
            fix: "set oidc.client_secret_file or POCKETGATE_OIDC__CLIENT_SECRET, or client_auth = \"none\" for a public client".into(),
        });
    }
    let scopes = o.scopes.clone().unwrap_or_else(|| {
        ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec()
    });
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid(
            "oidc.scopes",
            scopes.join(" "),
            "lacks \"openid\" (fix: add it; without it there is no ID token)",
        ));
    }
    let groups_claim = o.groups_claim.clone().unwrap_or_else(|| "groups".into());
    let uses_groups = policies.iter().any(|p| !p.allowed_groups.is_empty());
    if uses_groups && groups_claim == "groups" && !scopes.iter().any(|s| s == "groups") {
        warnings.push(
            "oidc.scopes: lacks \"groups\" although policies use allowed_groups; Pocket ID sends the groups claim only for that scope".into(),
        );
    }
    Ok(OidcSettings {
        issuer,
        client_id,
        client_secret,
        client_auth,
        scopes,
        username_claim: o
            .username_claim
            .clone()
            .unwrap_or_else(|| "preferred_username".into()),
        groups_claim,
    })
}

fn compile_session(
    raw: &RawConfig,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    public_url: &PublicUrl,
    warnings: &mut Vec<String>,
) -> Result<SessionSettings, ConfigError> {
    let s = &raw.session;
    let secrets = if mode == Mode::Full {
        let lines = resolve_secret(
            "session.secret",
            s.secret.as_deref(),
            s.secret_file.as_deref(),
            env(ENV_SESSION_SECRET),
            warnings,
        )?
        .ok_or_else(|| ConfigError::Missing {
            key: "session.secret".into(),
            fix: "set session.secret_file or POCKETGATE_SESSION__SECRET; `pocketgate gen-secret` makes one".into(),
        })?;
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.len() < 32 {
                let key = if lines.len() > 1 {
                    format!("session.secret (line {})", i + 1)
                } else {
                    "session.secret".into()
                };
                return Err(ConfigError::ShortSecret {
                    key,
                    len: line.len(),
                });
            }
            out.push(line.as_bytes().to_vec());
        }
        out
    } else {
        Vec::new()
    };

    let cookie_name = s.cookie_name.clone().unwrap_or_else(|| "pocketgate".into());
    if cookie_name.is_empty() || !is_token(&cookie_name) {
        return Err(invalid(
            "session.cookie_name",
            &cookie_name,
            "may only hold letters, digits, '-' and '_'",
        ));
    }
    let cookie_domain = match &s.cookie_domain {
        Some(d) => {
            let d = d
                .trim()
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !is_hostname(&d) {
                return Err(invalid("session.cookie_domain", &d, "is not a domain name"));
            }
            let host = &public_url.host;
            let covers = *host == d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|p| p.ends_with('.'));
            if !covers {
                let suggestion = host
                    .split_once('.')
                    .map(|(_, p)| p)
                    .unwrap_or(host)
                    .to_string();
                return Err(ConfigError::CookieDomainMismatch {
                    domain: d,
                    host: host.clone(),
                    suggestion,
                });
            }
            Some(d)
        }
        None => None,
    };
    let lifetime_s = s.lifetime.clone().unwrap_or_else(|| "12h".into());
    let lifetime = humantime::parse_duration(&lifetime_s).map_err(|e| {
        invalid(
            "session.lifetime",
            &lifetime_s,
            format!("is not a duration ({e}; fix: e.g. \"12h\", \"7d\", \"90m\")"),
        )
    })?;
    if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(400 * 86400) {
        return Err(invalid(
            "session.lifetime",
            &lifetime_s,
            "must be between 1 minute and 400 days",
        ));
    }
    Ok(SessionSettings {
        secrets,
        cookie_name,
        cookie_domain,
        lifetime,
    })
}

/// A secret from (in order of precedence) the environment, the file, or inline
/// TOML. Several non-empty lines are several secrets (rotation).
fn resolve_secret(
    key: &str,
    inline: Option<&str>,
    file: Option<&str>,
    env_value: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let text = if let Some(v) = env_value {
        v
    } else if let Some(path) = file {
        if inline.is_some() {
            return Err(invalid(
                key,
                "<redacted>",
                format!("is set together with {key}_file (fix: keep only one)"),
            ));
        }
        std::fs::read_to_string(path).map_err(|e| ConfigError::UnreadableSecretFile {
            key: format!("{key}_file"),
            path: path.into(),
            reason: e.to_string(),
        })?
    } else if let Some(v) = inline {
        warnings.push(format!(
            "{key} is written inline in the configuration file; prefer {key}_file or the environment"
        ));
        v.to_string()
    } else {
        return Ok(None);
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(lines))
}

fn compile_headers(raw: &RawConfig) -> Result<HeaderNames, ConfigError> {
    let h = &raw.headers;
    let pick = |key: &str, v: &Option<String>, default: &str| -> Result<String, ConfigError> {
        let name = v.clone().unwrap_or_else(|| default.into());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid(
                format!("headers.{key}"),
                &name,
                "is not a header name (letters, digits and '-' only)",
            ));
        }
        let lower = name.to_ascii_lowercase();
        const RESERVED: &[&str] = &[
            "host",
            "cookie",
            "set-cookie",
            "authorization",
            "content-length",
            "content-type",
            "transfer-encoding",
            "connection",
            "location",
            "www-authenticate",
            "upgrade",
        ];
        if RESERVED.contains(&lower.as_str())
            || lower.starts_with("x-forwarded-")
            || lower.starts_with("x-original-")
        {
            return Err(invalid(
                format!("headers.{key}"),
                &name,
                "is a header proxies and browsers rely on; choose another name",
            ));
        }
        Ok(lower)
    };
    let names = HeaderNames {
        user: pick("user", &h.user, "X-Remote-User")?,
        email: pick("email", &h.email, "X-Remote-Email")?,
        name: pick("name", &h.name, "X-Remote-Name")?,
        groups: pick("groups", &h.groups, "X-Remote-Groups")?,
    };
    let all = [&names.user, &names.email, &names.name, &names.groups];
    for (i, a) in all.iter().enumerate() {
        if all[..i].contains(a) {
            return Err(invalid(
                "headers",
                a.as_str(),
                "is used for two identity fields",
            ));
        }
    }
    Ok(names)
}

fn compile_log(raw: &RawConfig) -> Result<LogSettings, ConfigError> {
    let format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => return Err(invalid("log_format", other, "is not \"text\" or \"json\"")),
    };
    let level = raw.log_level.clone().unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        return Err(invalid(
            "log_level",
            &level,
            "is not a log filter (fix: \"info\", \"debug\", or e.g. \"pocketgate=debug,info\")",
        ));
    }
    Ok(LogSettings { format, level })
}

fn parse_public_url(s: &str) -> Result<PublicUrl, ConfigError> {
    let u = url::Url::parse(s).map_err(|_| ConfigError::RelativePublicUrl { value: s.into() })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ConfigError::RelativePublicUrl { value: s.into() });
    }
    let host = match u.host_str() {
        Some(h) => h.trim_end_matches('.').to_ascii_lowercase(),
        None => return Err(ConfigError::RelativePublicUrl { value: s.into() }),
    };
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() || !u.username().is_empty()
    {
        return Err(invalid(
            "public_url",
            s,
            "must be an origin without path, query or credentials (fix: e.g. \"https://auth.example.com\"; serve pocketgate on its own host name)",
        ));
    }
    let origin = u.origin().ascii_serialization();
    Ok(PublicUrl {
        origin,
        https: u.scheme() == "https",
        host,
    })
}

fn parse_host_pattern(key: &str, s: &str) -> Result<HostPattern, ConfigError> {
    let h = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if h.contains(':') && !h.starts_with('[') {
        return Err(invalid(
            key,
            s,
            "must not include a port (fix: remove it; ports are ignored when matching)",
        ));
    }
    // Internationalised names are matched in their ASCII (punycode) form, which is what proxies send.
    let ascii = |name: &str| -> Option<String> {
        if name.is_ascii() {
            return is_hostname(name).then(|| name.to_string());
        }
        match url::Host::parse(name) {
            Ok(url::Host::Domain(d)) if is_hostname(&d) => Some(d),
            _ => None,
        }
    };
    if let Some(rest) = h.strip_prefix("*.") {
        if let Some(rest) = ascii(rest) {
            return Ok(HostPattern::Wildcard(rest));
        }
    } else if let Some(name) = ascii(&h) {
        return Ok(HostPattern::Exact(name));
    }
    Err(invalid(
        key,
        s,
        "is not a host name or a \"*.suffix\" wildcard (fix: e.g. \"grafana.example.com\" or \"*.example.com\")",
    ))
}

/// A CIDR, or a bare address (taken as a single-host network). Host bits are cleared.
fn parse_cidr(key: &str, s: &str) -> Result<IpNet, ConfigError> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let reason = match t.split_once('/') {
        Some((addr, _)) if addr.parse::<IpAddr>().is_err() => {
            format!("{addr:?} is not an IP address")
        }
        Some((_, len2)) => format!("prefix length {len2:?} is out of range"),
        None => "not an IP address".to_string(),
    };
    Err(ConfigError::BadCidr {
        key: key.into(),
        value: s.into(),
        reason,
    })
}

/// A DNS name: dot-separated labels of letters, digits, '-' and '_', or an IP literal.
pub(crate) fn is_hostname(h: &str) -> bool {
    if h.parse::<IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_loopback_host(h: &str) -> bool {
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
