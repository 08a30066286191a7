//! `[session]` → [`SessionSettings`], and reading secrets; the session's
//! shape (`idle_timeout`, and per `[[hosts]]` entry `idle_timeout` and
//! `lifetime`, which can only shorten `[session]`'s).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{CookieDomain, HostPattern};
use crate::policy::{HostMatch, Rules};

use super::super::raw::RawConfig;
use super::super::{
    ConfigError, LoginDomain, PublicUrl, RedisUrl, SessionSecret, SessionSecrets, SessionSettings,
    StoreSettings,
};
use super::rules::is_token;
use super::server::{parse_public_url, Server};
use super::{invalid, Report};

/// The session secret's variable, read directly like the client secret's.
const ENV_SESSION_SECRET: &str = "POCKETGATE_SESSION__SECRET";

pub(super) fn compile(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    public_url: &PublicUrl,
    report: &mut Report,
) -> Option<SessionSettings> {
    let s = &raw.session;
    let secrets = secrets(raw, env, report);
    let cookie_name = s.cookie_name.as_deref().unwrap_or("pocketgate");
    let cookie_name_ok = is_token(cookie_name);
    if !cookie_name_ok {
        report.error(invalid(
            "session.cookie_name",
            cookie_name,
            "may only hold letters, digits, '-' and '_'",
        ));
    }
    let cookie_domain = match s.cookie_domain.as_deref() {
        Some(d) => {
            cookie_domain("session.cookie_domain", d, "public_url", public_url, report).map(Some)
        }
        None => Some(None),
    };
    let domains = domains(raw, cookie_domain.as_ref(), report);
    let lifetime = lifetime(s.lifetime.as_deref(), report);
    let store = store(raw, env, report);
    let refresh_interval = refresh_interval(s.refresh_interval.as_deref(), report);
    let refresh_interval = match (&store, refresh_interval) {
        // Stateless cookies have nowhere to keep a refresh token.
        (Some(StoreSettings::Cookie), Some(Some(_))) if s.refresh_interval.is_some() => {
            report.warn("session.refresh_interval: ignored with store = \"cookie\" (stateless sessions keep no refresh token)");
            Some(None)
        }
        (Some(StoreSettings::Cookie), _) => Some(None),
        (_, r) => r,
    };
    let idle_timeout = idle_timeout(raw, store.as_ref(), report);
    let host_shapes = host_shapes(raw, lifetime, idle_timeout, store.as_ref(), report);
    Some(SessionSettings {
        secrets: secrets?,
        cookie_name: cookie_name_ok.then(|| cookie_name.to_string())?,
        cookie_domain: cookie_domain?,
        lifetime: lifetime?,
        store: store?,
        refresh_interval: refresh_interval?,
        domains: domains?,
        idle_timeout: idle_timeout?,
        host_shapes: host_shapes?,
    })
}

/// What a `[[hosts]]` entry asks of a session on top of `[session]`: it
/// ends for the host (the request goes to login) when unused for
/// `idle_timeout` or older than `lifetime`. Both only ever shorten.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionShape {
    /// Unused longer than this: login on this host.
    pub idle_timeout: Option<Duration>,
    /// Created longer ago than this: login on this host.
    pub lifetime: Option<Duration>,
}

impl SessionShape {
    /// Whether neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.idle_timeout.is_none() && self.lifetime.is_none()
    }
}

impl SessionSettings {
    /// The shape a request to `host` asks of its session: the entry's own
    /// limits, none for the default policy and unknown hosts.
    pub fn shape_for(&self, host: &HostMatch<'_>) -> SessionShape {
        match host {
            HostMatch::Entry(h) => self.host_shapes.get(&h.index).copied().unwrap_or_default(),
            HostMatch::Default(_) | HostMatch::Unknown => SessionShape::default(),
        }
    }

    /// The shortest idle timeout in force, `[session]`'s or a host's: how
    /// fresh the last uses other replicas read must be.
    pub fn shortest_idle(&self) -> Option<Duration> {
        self.host_shapes
            .values()
            .filter_map(|s| s.idle_timeout)
            .chain(self.idle_timeout)
            .min()
    }
}

/// What a cookie store cannot keep: when a session was last used.
const COOKIE_HAS_NO_IDLE: &str = "cannot be kept with session.store = \"cookie\": a stateless cookie records no use (fix: use session.store = \"embedded\" or \"redis\", or remove the key)";

/// A shape duration at `key`: at least a second. `None` when absent.
fn shape_duration(key: &str, text: &str, report: &mut Report) -> Result<Duration, ()> {
    let d = report
        .duration(key, text.trim(), "a duration", r#""30m", "8h""#)
        .ok_or(())?;
    if d < Duration::from_secs(1) {
        report.error(invalid(key, text, "must be at least 1 second"));
        return Err(());
    }
    Ok(d)
}

/// `session.idle_timeout`: unset is no idle limit; never with the cookie store.
fn idle_timeout(
    raw: &RawConfig,
    store: Option<&StoreSettings>,
    report: &mut Report,
) -> Option<Option<Duration>> {
    let Some(text) = raw.session.idle_timeout.as_deref() else {
        return Some(None);
    };
    let key = "session.idle_timeout";
    let d = shape_duration(key, text, report).ok()?;
    if store == Some(&StoreSettings::Cookie) {
        report.error(invalid(key, text, COOKIE_HAS_NO_IDLE));
        return None;
    }
    Some(Some(d))
}

/// Each `[[hosts]]` entry's `idle_timeout` and `lifetime`. A value that
/// does not shorten `[session]`'s is a warning and has no effect;
/// `idle_timeout` needs a store. `lifetime` and `idle` are the compiled
/// `[session]` values (`None`: they failed, and their error is reported).
fn host_shapes(
    raw: &RawConfig,
    lifetime: Option<Duration>,
    idle: Option<Option<Duration>>,
    store: Option<&StoreSettings>,
    report: &mut Report,
) -> Option<BTreeMap<usize, SessionShape>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (i, h) in raw.hosts.iter().enumerate() {
        let mut shape = SessionShape::default();
        if let Some(text) = h.idle_timeout.as_deref() {
            let key = format!("{}.idle_timeout", h.key(i));
            match shape_duration(&key, text, report) {
                Err(()) => ok = false,
                Ok(_) if store == Some(&StoreSettings::Cookie) => {
                    report.error(invalid(&key, text, COOKIE_HAS_NO_IDLE));
                    ok = false;
                }
                Ok(d) => {
                    shape.idle_timeout = shorter(
                        &key,
                        text,
                        d,
                        idle.flatten(),
                        "session.idle_timeout",
                        report,
                    )
                }
            }
        }
        if let Some(text) = h.lifetime.as_deref() {
            let key = format!("{}.lifetime", h.key(i));
            match shape_duration(&key, text, report) {
                Err(()) => ok = false,
                Ok(d) => {
                    shape.lifetime = shorter(&key, text, d, lifetime, "session.lifetime", report)
                }
            }
        }
        if !shape.is_empty() {
            out.insert(i, shape);
        }
    }
    ok.then_some(out)
}

/// `d` when it shortens `session` (or there is no session value); else a
/// warning that it has no effect, and `None`.
fn shorter(
    key: &str,
    text: &str,
    d: Duration,
    session: Option<Duration>,
    session_key: &str,
    report: &mut Report,
) -> Option<Duration> {
    match session {
        Some(s) if d > s => {
            report.warn(format!(
                "{key} = {text:?} is longer than {session_key} ({}): a host can only shorten a session, so it has no effect (fix: make it shorter, or remove it)",
                humantime::format_duration(s)
            ));
            None
        }
        // As long as the session's own: nothing to shorten.
        Some(s) if d == s => None,
        _ => Some(d),
    }
}

/// `[[session.domains]]`: each entry a public URL and the cookie domain that
/// covers it, overlapping neither the main `session.cookie_domain` nor another
/// entry (one covering the other would leave a host under both without a
/// single login to go to). `main` is the compiled `session.cookie_domain`:
/// `None` when it failed, `Some(None)` when it is unset.
fn domains(
    raw: &RawConfig,
    main: Option<&Option<CookieDomain>>,
    report: &mut Report,
) -> Option<Vec<LoginDomain>> {
    let entries = &raw.session.domains;
    if entries.is_empty() {
        return Some(Vec::new());
    }
    if let Some(None) = main {
        report.error(ConfigError::Missing {
            key: "session.cookie_domain".into(),
            fix: "set it (e.g. \"example.com\") when [[session.domains]] is used: each domain's login serves the hosts under its cookie domain, and without one the main login would serve no host but public_url's own".into(),
        });
    }
    // The domains seen so far, with their keys, for the overlap check.
    let mut seen: Vec<(String, CookieDomain)> = Vec::new();
    if let Some(Some(d)) = main {
        seen.push(("session.cookie_domain".into(), d.clone()));
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (i, e) in entries.iter().enumerate() {
        let prefix = format!("session.domains[{i}]");
        let url_key = format!("{prefix}.public_url");
        let domain_key = format!("{prefix}.cookie_domain");
        let public_url = match e.public_url.as_deref() {
            Some(u) => report.take(parse_public_url(&url_key, u)),
            None => {
                report.error(ConfigError::Missing {
                    key: url_key.clone(),
                    fix: "set it to where browsers of this domain reach pocketgate, e.g. \"https://auth.example.org\"".into(),
                });
                None
            }
        };
        let entry = match (public_url, e.cookie_domain.as_deref()) {
            (Some(url), Some(d)) => {
                cookie_domain(&domain_key, d, &url_key, &url, report).map(|d| (url, d))
            }
            (_, None) => {
                report.error(ConfigError::Missing {
                    key: domain_key.clone(),
                    fix: "set it to the registrable domain this login serves, e.g. \"example.org\""
                        .into(),
                });
                None
            }
            (None, Some(_)) => None,
        };
        let Some((public_url, domain)) = entry else {
            ok = false;
            continue;
        };
        if let Some((other_key, other)) = seen
            .iter()
            .find(|(_, o)| o.covers(domain.as_str()) || domain.covers(o.as_str()))
        {
            report.error(invalid(
                &domain_key,
                domain.as_str(),
                format!(
                    "overlaps {other_key} = {:?} (one covers the other, so a host under both would have two logins; fix: give each registrable domain one entry)",
                    other.as_str()
                ),
            ));
            ok = false;
            continue;
        }
        seen.push((domain_key, domain.clone()));
        out.push(LoginDomain {
            public_url,
            cookie_domain: Some(domain),
        });
    }
    ok.then_some(out)
}

/// The Redis URL's variable: read directly like the secrets, since it may hold a password.
const ENV_REDIS_URL: &str = "POCKETGATE_SESSION__REDIS_URL";

fn store(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<StoreSettings> {
    let s = &raw.session;
    let redis_url = env(ENV_REDIS_URL).or_else(|| s.redis_url.clone());
    match s.store.as_deref().unwrap_or("embedded") {
        "embedded" => {
            let state_dir = match s.state_dir.as_deref() {
                Some(d) if !d.trim().is_empty() => std::path::PathBuf::from(d.trim()),
                Some(d) => {
                    report.error(invalid("session.state_dir", d, "is empty"));
                    return None;
                }
                // systemd's StateDirectory=; several directories are ':'-separated.
                None => match env("STATE_DIRECTORY").as_deref().and_then(|v| v.split(':').next()) {
                    Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
                    _ => std::path::PathBuf::from("pocketgate-state"),
                },
            };
            if redis_url.is_some() {
                report.warn("session.redis_url: ignored with store = \"embedded\"");
            }
            Some(StoreSettings::Embedded { state_dir })
        }
        "redis" => match redis_url.as_deref() {
            Some(u) => report
                .take(RedisUrl::parse(u).map_err(|why| {
                    invalid(
                        "session.redis_url",
                        RedisUrl::parse(u).map(|r| r.to_string()).unwrap_or_else(|_| "<redacted>".into()),
                        format!("{why} (fix: e.g. \"redis://127.0.0.1:6379/0\" or \"rediss://:password@redis.example.com:6380/0\")"),
                    )
                }))
                .map(|url| StoreSettings::Redis { url }),
            None => {
                report.error(ConfigError::Missing {
                    key: "session.redis_url".into(),
                    fix: "set it (or POCKETGATE_SESSION__REDIS_URL) with store = \"redis\", e.g. \"redis://127.0.0.1:6379/0\"".into(),
                });
                None
            }
        },
        "cookie" => {
            report.warn("session.store = \"cookie\": sessions are stateless sealed cookies and cannot be revoked before their lifetime ends (logout clears only the browser's copy; group changes wait for the next login); use \"embedded\" or \"redis\" to end sessions on the server");
            Some(StoreSettings::Cookie)
        }
        other => {
            report.error(invalid(
                "session.store",
                other,
                "is not one of embedded, redis, cookie",
            ));
            None
        }
    }
}

/// `refresh_interval`: a duration of at least 5 s, or `"off"`. `Some(None)` is off.
fn refresh_interval(raw: Option<&str>, report: &mut Report) -> Option<Option<Duration>> {
    let text = raw.unwrap_or("5m").trim();
    if text.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let d = report.duration(
        "session.refresh_interval",
        text,
        r#"a duration or "off""#,
        r#""5m""#,
    )?;
    if d < Duration::from_secs(5) {
        report.error(invalid(
            "session.refresh_interval",
            text,
            "must be at least 5 seconds (or \"off\")",
        ));
        return None;
    }
    Some(Some(d))
}

fn secrets(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<SessionSecrets> {
    let s = &raw.session;
    let lines = resolve_secret(
        "session.secret",
        s.secret.as_deref(),
        s.secret_file.as_deref(),
        env(ENV_SESSION_SECRET),
        random_secret,
        report,
    );
    let lines = match lines {
        Ok(Some(lines)) => lines,
        Ok(None) => {
            report.error(ConfigError::Missing {
                key: "session.secret".into(),
                fix: "set session.secret_file or POCKETGATE_SESSION__SECRET; `pocketgate gen-secret` makes one".into(),
            });
            return None;
        }
        Err(e) => {
            report.error(e);
            return None;
        }
    };
    let count = lines.len();
    let parsed: Vec<Option<SessionSecret>> = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let len = line.len();
            let key = if count > 1 {
                format!("session.secret (line {})", i + 1)
            } else {
                "session.secret".into()
            };
            report.take(SessionSecret::new(line).ok_or(ConfigError::ShortSecret { key, len }))
        })
        .collect();
    let mut all = parsed.into_iter().collect::<Option<Vec<_>>>()?.into_iter();
    let current = all.next()?;
    Some(SessionSecrets::new(current, all.collect()))
}

/// A cookie domain (at `key`) that covers the host of the public URL at `url_key`.
fn cookie_domain(
    key: &str,
    raw: &str,
    url_key: &str,
    public_url: &PublicUrl,
    report: &mut Report,
) -> Option<CookieDomain> {
    let d =
        report.take(CookieDomain::parse(raw).map_err(|e| invalid(key, raw.trim(), e.reason())))?;
    let host = public_url.host.as_str();
    if !d.covers(host) {
        report.error(ConfigError::CookieDomainMismatch {
            key: key.into(),
            url_key: url_key.into(),
            domain: d.to_string(),
            host: host.to_string(),
            suggestion: host
                .split_once('.')
                .map(|(_, p)| p)
                .unwrap_or(host)
                .to_string(),
        });
        return None;
    }
    Some(d)
}

fn lifetime(raw: Option<&str>, report: &mut Report) -> Option<Duration> {
    let text = raw.unwrap_or("12h");
    let lifetime = report.duration(
        "session.lifetime",
        text,
        "a duration",
        r#""12h", "7d", "90m""#,
    )?;
    if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(400 * 86400) {
        report.error(invalid(
            "session.lifetime",
            text,
            "must be between 1 minute and 400 days",
        ));
        return None;
    }
    Some(lifetime)
}

/// Without `cookie_domain` the cookie belongs to `public_url`'s host alone:
/// say so when other hosts are protected, since they would never see it.
pub(super) fn warn_host_only_cookie(
    server: &Server,
    session: &SessionSettings,
    rules: &Rules,
    report: &mut Report,
) {
    if session.cookie_domain.is_some() {
        return;
    }
    let host = &server.public_url.host;
    let elsewhere = rules.hosts().iter().any(|h| match &h.pattern {
        HostPattern::Exact(n) => n != host,
        HostPattern::Wildcard(_) => true,
    }) || rules.default_policy().is_some();
    if elsewhere {
        report.warn(format!(
            "session.cookie_domain is not set: the session cookie belongs to {host} alone, so hosts other than it never see it (fix: set cookie_domain to their common parent domain)"
        ));
    }
}

/// A `[[hosts]]` entry under none of the cookie domains (`cookie_domain` and
/// the `[[session.domains]]` ones) never sees a session cookie (unless it is a login host itself):
/// its users would sign in and be sent back to sign in again.
pub(super) fn warn_uncovered_hosts(
    server: &Server,
    session: &SessionSettings,
    rules: &Rules,
    report: &mut Report,
) {
    if session.domains.is_empty() && session.cookie_domain.is_none() {
        return;
    }
    let domains: Vec<&CookieDomain> = session
        .cookie_domain
        .iter()
        .chain(
            session
                .domains
                .iter()
                .filter_map(|d| d.cookie_domain.as_ref()),
        )
        .collect();
    let public_hosts: Vec<&str> = std::iter::once(&server.public_url)
        .chain(session.domains.iter().map(|d| &d.public_url))
        .map(|u| u.host.as_str())
        .collect();
    let covered = |name: &str| domains.iter().any(|d| d.covers(name));
    for h in rules.hosts() {
        let ok = match &h.pattern {
            HostPattern::Exact(n) => public_hosts.contains(&n.as_str()) || covered(n.as_str()),
            HostPattern::Wildcard(s) => covered(s.as_str()),
        };
        if !ok {
            let listed: Vec<&str> = domains.iter().map(|d| d.as_str()).collect();
            report.warn(format!(
                "hosts[{}].host: {} is under none of the cookie domains ({}), so it never sees a session cookie and its users are sent to sign in again and again, a \"portal loop\" (fix: serve it under the cookie domain, or add a [[session.domains]] entry for its domain)",
                h.index,
                h.pattern,
                listed.join(", ")
            ));
        }
    }
}

/// A secret from (in order of precedence) the environment, the file, or inline
/// TOML. Several non-empty lines are several secrets (rotation). `stand_in`
/// replaces the file's text offline ([`Report::file_text`]).
pub(super) fn resolve_secret(
    key: &str,
    inline: Option<&str>,
    file: Option<&str>,
    env_value: Option<String>,
    stand_in: fn() -> String,
    report: &mut Report,
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
        report.file_text(&format!("{key}_file"), path, stand_in)?
    } else if let Some(v) = inline {
        report.warn(format!(
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
    Ok((!lines.is_empty()).then_some(lines))
}

/// `check --offline`: a fresh secret of the right form in place of the unread
/// `secret_file`.
fn random_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // With no OS random source the stand-in stays zero: it is never used to seal.
    let _ = getrandom::getrandom(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
