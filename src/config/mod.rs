//! Configuration: load (figment: TOML file, then `POCKETGATE_*` environment),
//! validate, and compile into an immutable [`Runtime`] whose decision part is
//! `policy`'s [`Rules`].
//!
//! `load` reads and checks keys; `compile` turns each section into typed
//! values and reports every mistake of a file in one run. Past this module
//! nothing re-checks configuration. It knows nothing of HTTP servers.

mod compile;
mod error;
mod include;
mod load;
mod locate;
mod raw;
mod secret_paths;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;

use crate::domain::{CookieDomain, HostName, Networks};
use crate::policy::{HostMatch, Rules};
pub use compile::assertion::{AssertionSettings, KeyFile};
pub use compile::scim::ScimSettings;
pub use compile::session::SessionShape;
pub use error::{ConfigError, ConfigErrors, Located, Location};
pub use http::HeaderName;
pub use secret_paths::{load_with_secret_paths, SecretPaths};

/// The compiled configuration `serve` runs on: built once, shared by `Arc`, only read.
#[derive(Debug)]
pub struct Runtime {
    /// Address the server binds.
    pub listen: SocketAddr,
    /// `metrics_listen`: a second address serving only `/metrics` and `/readyz`.
    pub metrics_listen: Option<SocketAddr>,
    /// Where browsers reach `/login`, `/callback`, `/logout` (the main login domain's).
    pub public_url: PublicUrl,
    /// Every login domain: the main one (`public_url`, `session.cookie_domain`)
    /// first, then each `[[session.domains]]` entry.
    pub login_domains: LoginDomains,
    /// Peers whose `X-Forwarded-*` / `X-Original-*` headers are believed.
    pub trusted_proxies: Networks,
    /// Policies, hosts and the host lookup: what the decision engine reads.
    pub rules: Rules,
    /// Provider settings.
    pub oidc: OidcSettings,
    /// Session cookie settings and keys.
    pub session: SessionSettings,
    /// Names of the identity headers (`[headers]`).
    pub headers: HeaderNames,
    /// `[hosts.headers]`, resolved key by key over `headers`: by the
    /// `index` of the host entry that has one. See [`Runtime::headers_for`].
    pub host_headers: BTreeMap<usize, HeaderNames>,
    /// `[bearer]`: `Some` when API clients may present provider-issued tokens.
    pub bearer: Option<BearerSettings>,
    /// Logging output.
    pub log: LogSettings,
    /// `[assertion]`: `None` unless `assertion.header` is set.
    pub assertion: Option<AssertionSettings>,
    /// `[scim]`: `Some` when SCIM clients may push users and groups to `/scim/v2`.
    pub scim: Option<ScimSettings>,
    /// `support_contact`: whom a refused person should ask, shown on the pages.
    pub support_contact: Option<String>,
}

impl Runtime {
    /// The identity header names for a request that matched `host`: the
    /// entry's `[hosts.headers]` when it has one, else `[headers]`.
    pub fn headers_for(&self, host: &HostMatch<'_>) -> &HeaderNames {
        match host {
            HostMatch::Entry(h) => self.host_headers.get(&h.index).unwrap_or(&self.headers),
            HostMatch::Default(_) | HostMatch::Unknown => &self.headers,
        }
    }

    /// Every identity header name in use (`[headers]` and every
    /// `[hosts.headers]`), each once, in configuration order: the names a
    /// proxy must take from pocketgate's answer and strip from the client's
    /// request on every protected site.
    pub fn all_header_names(&self) -> Vec<&HeaderName> {
        let mut out: Vec<&HeaderName> = Vec::new();
        for names in std::iter::once(&self.headers).chain(self.host_headers.values()) {
            for n in [&names.user, &names.email, &names.name, &names.groups] {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Whether `host` (normalised) may be a post-login or post-logout target:
    /// a configured host entry, the public URL's host of any login domain, or
    /// a name under any configured cookie domain. `default_policy` does not
    /// make every host a valid target.
    pub fn is_redirect_host(&self, host: &str) -> bool {
        matches!(self.rules.lookup_host(host), HostMatch::Entry(_))
            || self.login_domains.iter().any(|d| {
                host == d.public_url.host.as_str()
                    || d.cookie_domain.as_ref().is_some_and(|c| c.covers(host))
            })
    }

    /// The login domain whose session cookie `host` (normalised) sees: the
    /// entry whose cookie domain covers it (the longest, should several),
    /// else the main one. Where a login for `host` starts.
    pub fn login_domain_for(&self, host: &str) -> &LoginDomain {
        self.login_domains.for_host(host)
    }

    /// The login domain whose public URL has this host (normalised), else
    /// the main one: which of pocketgate's own hosts a request to `/login`,
    /// `/callback` or `/logout` was sent to. Only ever chooses among
    /// configured domains, so a forged `Host` gains nothing.
    pub fn login_domain_served_at(&self, host: Option<&str>) -> &LoginDomain {
        host.and_then(|h| {
            self.login_domains
                .iter()
                .find(|d| d.public_url.host.as_str() == h)
        })
        .unwrap_or(self.login_domains.main())
    }
}

/// One registrable domain with its own login host: the main one
/// (`public_url`, `session.cookie_domain`) or a `[[session.domains]]` entry.
#[derive(Debug, Clone)]
pub struct LoginDomain {
    /// Where browsers of this domain reach `/login`, `/callback`, `/logout`.
    pub public_url: PublicUrl,
    /// The session cookie's `Domain`; `None` only for a main domain whose
    /// cookie belongs to `public_url`'s host alone.
    pub cookie_domain: Option<CookieDomain>,
}

impl LoginDomain {
    /// `{public_url}/callback`: the redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.public_url.origin)
    }

    /// `{public_url}/logout/done`: the post-logout redirect URI registered at the provider.
    pub fn logout_done_uri(&self) -> String {
        format!("{}/logout/done", self.public_url.origin)
    }
}

/// The login domains, main one first; never empty by construction, and no
/// cookie domain covers another's.
pub type LoginDomains = NonEmpty<LoginDomain>;

impl LoginDomains {
    /// The main domain and the `[[session.domains]]` entries, in file order.
    pub(crate) fn new(main: LoginDomain, more: Vec<LoginDomain>) -> LoginDomains {
        NonEmpty {
            first: main,
            rest: more,
        }
    }

    /// The main domain (`public_url`, `session.cookie_domain`).
    pub fn main(&self) -> &LoginDomain {
        &self.first
    }

    /// See [`Runtime::login_domain_for`].
    fn for_host(&self, host: &str) -> &LoginDomain {
        self.iter()
            .filter_map(|d| {
                let c = d.cookie_domain.as_ref()?;
                c.covers(host).then_some((c.as_str().len(), d))
            })
            .max_by_key(|(len, _)| *len)
            .map_or(&self.first, |(_, d)| d)
    }
}

/// `public_url`, parsed.
#[derive(Debug, Clone)]
pub struct PublicUrl {
    /// `scheme://host[:port]`, no trailing slash.
    pub origin: String,
    /// The host name, lower case, no port.
    pub host: HostName,
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

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One session secret: at least 32 bytes, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(Vec<u8>);

impl SessionSecret {
    /// Shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 32;

    /// `None` when shorter than [`Self::MIN_LEN`].
    pub fn new(s: impl Into<Vec<u8>>) -> Option<SessionSecret> {
        let bytes = s.into();
        (bytes.len() >= Self::MIN_LEN).then_some(SessionSecret(bytes))
    }

    /// The key material.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The session secrets: the current one, which seals, and older ones that
/// still open (rotation). Never empty by construction.
pub type SessionSecrets = NonEmpty<SessionSecret>;

impl SessionSecrets {
    /// The current secret and the older ones, newest first.
    pub fn new(current: SessionSecret, older: Vec<SessionSecret>) -> SessionSecrets {
        NonEmpty {
            first: current,
            rest: older,
        }
    }

    /// The secret that seals.
    pub fn current(&self) -> &SessionSecret {
        &self.first
    }
}

/// One or more of a kind, the first one apart: the main login domain and
/// the others, the current session secret and the older ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty<T> {
    first: T,
    rest: Vec<T>,
}

impl<T> NonEmpty<T> {
    /// Every one, the first one first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    /// How many there are (at least one).
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always false; for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// `[oidc]`, resolved: every field the provider client needs is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    /// Ask for `offline_access` (when the provider lists it): sessions are
    /// kept in a store and re-checked every `refresh_interval`.
    pub offline_access: bool,
}

/// `[bearer] enabled = true`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerSettings {
    /// A token's `aud` must share one of these (default: `[oidc.client_id]`).
    pub audiences: Vec<String>,
    /// How a token that is no JWT is checked.
    pub opaque: OpaqueTokens,
    /// Most provider lookups (introspection, userinfo) in flight at once; past it, 503.
    pub lookups_in_flight: u32,
    /// Most provider lookups for unknown tokens per client address and minute; past it, 503.
    pub lookups_per_minute: u32,
}

/// `[bearer] opaque`: who vouches for a token that is no JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaqueTokens {
    /// The provider's introspection endpoint (RFC 7662), audience checked (the default).
    Introspection,
    /// The provider's userinfo endpoint, which checks no audience: any token the provider
    /// issued to any client is accepted. An explicit opt-in.
    Userinfo,
}

impl OpaqueTokens {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OpaqueTokens::Introspection => "introspection",
            OpaqueTokens::Userinfo => "userinfo",
        }
    }
}

/// `[session]`, resolved.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The first seals, all open.
    pub secrets: SessionSecrets,
    pub cookie_name: String,
    pub cookie_domain: Option<CookieDomain>,
    pub lifetime: Duration,
    /// Where sessions live (`session.store`).
    pub store: StoreSettings,
    /// How often a session's identity is re-checked with the refresh token;
    /// `None` when `refresh_interval = "off"` (or with the cookie store).
    pub refresh_interval: Option<Duration>,
    /// The `[[session.domains]]` entries, checked: each has a cookie domain
    /// that covers its public URL's host and overlaps no other.
    pub domains: Vec<LoginDomain>,
    /// `session.idle_timeout`: a session unused this long ends (never with
    /// the cookie store). See [`SessionSettings::shape_for`].
    pub idle_timeout: Option<Duration>,
    /// `idle_timeout` and `lifetime` of `[[hosts]]` entries, by entry
    /// index; only values that shorten `[session]`'s are kept.
    pub host_shapes: BTreeMap<usize, SessionShape>,
}

/// `session.store`, with what each kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// A persistent database in `state_dir` on this machine (the default).
    Embedded { state_dir: std::path::PathBuf },
    /// Redis or Valkey, shared by replicas.
    Redis { url: RedisUrl },
    /// Stateless sealed cookies: nothing on the server, nothing revocable.
    Cookie,
}

impl StoreSettings {
    /// The configuration spelling (`store = "..."`).
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreSettings::Embedded { .. } => "embedded",
            StoreSettings::Redis { .. } => "redis",
            StoreSettings::Cookie => "cookie",
        }
    }
}

/// A `redis://` or `rediss://` URL, possibly with a password: shown without it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(url::Url);

impl RedisUrl {
    /// Parse and check the scheme and host.
    pub fn parse(raw: &str) -> Result<RedisUrl, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(format!(
                "scheme {:?} is neither redis nor rediss",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("names no host".into());
        }
        Ok(RedisUrl(url))
    }

    /// The URL itself, password included, for the one place that connects.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())
    }
}

/// `[headers]` (or a host's `[hosts.headers]`): the identity header names, parsed (lower case).
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub groups: HeaderName,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A `tracing` filter directive that parses (`info`, `pocketgate=debug,info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// Check a directive.
    pub fn parse(s: &str) -> Result<LogFilter, String> {
        tracing_subscriber::EnvFilter::try_new(s)
            .map(|_| LogFilter(s.to_string()))
            .map_err(|e| e.to_string())
    }

    /// The directive.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `RUST_LOG` overrides it.
    pub filter: LogFilter,
    /// `[audit] file`: audit records go there instead of stdout.
    pub audit_file: Option<PathBuf>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: LogFilter("info".into()),
            audit_file: None,
        }
    }
}

/// A compiled value plus the warnings `check` prints and what it was read from.
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub warnings: Vec<String>,
    /// The files and directories it was read from (empty for `load_str`).
    pub sources: Sources,
}

/// What a configuration was read from: the watch list of a reload on change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Every file read, as opened: the main file, then each include file in
    /// the order merged, then each secret file read (`session.secret_file`,
    /// `oidc.client_secret_file`; not when the environment supplied the secret).
    pub files: Vec<PathBuf>,
    /// The include files alone (also in `files`), in the order merged.
    pub includes: Vec<PathBuf>,
    /// The existing directories the `include` patterns search (the part of each
    /// pattern before its first wildcard: `conf.d` for `conf.d/**/*.toml`): a
    /// new include file appears there, or below it when the pattern has `**`.
    pub dirs: Vec<PathBuf>,
}

/// Load, validate and compile the configuration at `path` (plus environment
/// and include files).
pub fn load(path: &Path) -> Result<Loaded<Runtime>, ConfigErrors> {
    from_file(path, |raw| {
        compile::runtime(raw, &|name| std::env::var(name).ok(), false)
    })
}

/// [`load`] without opening the secret and key files (`session.secret_file`,
/// `oidc.client_secret_file`, `assertion.key_file`): `check --offline`, for
/// build sandboxes (Nix) that cannot see the serving machine's secrets. Every
/// other key, include file and cross-reference is checked as by [`load`];
/// the result must never serve, as it holds stand-ins for those files.
pub fn load_offline(path: &Path) -> Result<Loaded<Runtime>, ConfigErrors> {
    from_file(path, |raw| {
        compile::runtime(raw, &|name| std::env::var(name).ok(), true)
    })
}

/// Only the rules at `path` (plus environment and include files), for
/// `explain`: nothing about the provider or secrets is required or read.
pub fn load_rules(path: &Path) -> Result<Loaded<Rules>, ConfigErrors> {
    from_file(path, compile::rules_only)
}

/// The main file (plus environment) with its include files merged in,
/// compiled by `compile`. Every error of the run is reported, each with
/// its file and line: unknown keys, include files' and compiling's. Any
/// one of them refuses the configuration.
fn from_file<T>(
    path: &Path,
    compile: impl FnOnce(&raw::RawConfig) -> Result<Loaded<T>, ConfigErrors>,
) -> Result<Loaded<T>, ConfigErrors> {
    readable(path)?;
    let figment = load::figment_for(path);
    let mut found = Vec::new();
    let compiled = match load::extract(&figment) {
        Ok(mut extracted) => {
            found.append(&mut extracted.unknown);
            let included = include::merge(path, &mut extracted.raw, &mut found);
            Some(compile(&extracted.raw).map(|loaded| included.attach(loaded)))
        }
        Err(mut errors) => {
            found.append(&mut errors);
            None
        }
    };
    refuse_if_any(found, compiled).map_err(|e| {
        let errors = e.into_vec().into_iter().map(|l| l.error).collect();
        locate::locate(errors, path, &include::main_label(path), &figment)
            .unwrap_or_else(incomplete)
    })
}

/// Load from TOML text alone (tests, `demo`), with `env` standing in for the
/// process environment for the two secret variables.
pub fn load_str(
    toml: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded<Runtime>, ConfigErrors> {
    load_figment(&load::figment_from_str(toml), env)
}

/// Only the rules, from TOML text.
pub fn load_rules_str(toml: &str) -> Result<Loaded<Rules>, ConfigErrors> {
    from_text(&load::figment_from_str(toml), compile::rules_only)
}

fn load_figment(
    figment: &Figment,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded<Runtime>, ConfigErrors> {
    from_text(figment, |raw| compile::runtime(raw, env, false))
}

/// Text that is no file (a figment of TOML text) compiled by `compile`,
/// every error reported, without places.
fn from_text<T>(
    figment: &Figment,
    compile: impl FnOnce(&raw::RawConfig) -> Result<Loaded<T>, ConfigErrors>,
) -> Result<Loaded<T>, ConfigErrors> {
    let extracted = load::extract(figment).map_err(errors)?;
    no_include(&extracted.raw)?;
    refuse_if_any(extracted.unknown, Some(compile(&extracted.raw)))
}

/// The compiled configuration, unless anything was `found` before compiling
/// (fail closed: an unknown key refuses a configuration that compiled);
/// else every error, those found first.
fn refuse_if_any<T>(
    found: Vec<ConfigError>,
    compiled: Option<Result<Loaded<T>, ConfigErrors>>,
) -> Result<Loaded<T>, ConfigErrors> {
    match (ConfigErrors::from_vec(found), compiled) {
        (None, Some(compiled)) => compiled,
        (Some(found), Some(Err(more))) => {
            let mut all = found.into_vec();
            all.extend(more.into_vec());
            Err(ConfigErrors::from_located(all).unwrap_or_else(incomplete))
        }
        (Some(found), _) => Err(found),
        (None, None) => Err(incomplete()),
    }
}

/// Text that is not a file has no directory for `include` to be relative
/// to; dropping its hosts silently would be worse than saying so.
fn no_include(raw: &raw::RawConfig) -> Result<(), ConfigErrors> {
    match raw.include.first() {
        None => Ok(()),
        Some(pattern) => Err(ConfigError::Invalid {
            key: "include[0]".into(),
            value: pattern.clone(),
            reason: "needs a configuration file to be relative to (fix: load the configuration from a file)".into(),
        }
        .into()),
    }
}

fn readable(path: &Path) -> Result<(), ConfigErrors> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| {
        ConfigError::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
        .into()
    })
}

fn errors(list: Vec<ConfigError>) -> ConfigErrors {
    ConfigErrors::from_vec(list).unwrap_or_else(incomplete)
}

/// Nothing to report where something should be: a bug, but never a
/// half-built configuration.
fn incomplete() -> ConfigErrors {
    ConfigError::Syntax("the configuration could not be read".into()).into()
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;
