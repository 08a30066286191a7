//! `listen`, `public_url`, `trusted_proxies`, `[headers]` (and each host's
//! `[hosts.headers]`), `log_*`, `[audit]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::HeaderName;

use crate::domain::{HostName, Networks};

use super::super::raw::{RawConfig, RawHeaders};
use super::super::{ConfigError, HeaderNames, LogFilter, LogFormat, LogSettings, PublicUrl};
use super::{invalid, rules::networks, Report};

/// The serving part of the top level.
pub(super) struct Server {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub public_url: PublicUrl,
    pub trusted_proxies: Networks,
    pub headers: HeaderNames,
    pub log: LogSettings,
}

pub(super) fn compile(raw: &RawConfig, report: &mut Report) -> Option<Server> {
    let listen_s = raw.listen.as_deref().unwrap_or("127.0.0.1:4180");
    let listen = report.take(listen_s.parse::<SocketAddr>().map_err(|_| {
        invalid(
            "listen",
            listen_s,
            "is not an IP:port address (fix: e.g. \"127.0.0.1:4180\" or \"0.0.0.0:4180\")",
        )
    }));
    let metrics_listen = match raw.metrics_listen.as_deref() {
        None => Some(None),
        Some(m) => report.take(metrics_listen(m, listen)).map(Some),
    };
    let public_url = match raw.public_url.as_deref() {
        Some(u) => report.take(parse_public_url("public_url", u)),
        None => {
            report.error(ConfigError::Missing {
                key: "public_url".into(),
                fix: "set it to where browsers reach pocketgate, e.g. \"https://auth.example.com\""
                    .into(),
            });
            None
        }
    };
    let trusted_proxies = match &raw.trusted_proxies {
        Some(list) => networks("trusted_proxies", list, report),
        None => Some(Networks::loopback()),
    };
    let headers = headers(raw, report);
    let log = log(raw, report);
    Some(Server {
        listen: listen?,
        metrics_listen: metrics_listen?,
        public_url: public_url?,
        trusted_proxies: trusted_proxies?,
        headers: headers?,
        log: log?,
    })
}

/// `metrics_listen`: an IP:port other than `listen`'s.
fn metrics_listen(s: &str, listen: Option<SocketAddr>) -> Result<SocketAddr, ConfigError> {
    let addr = s.parse::<SocketAddr>().map_err(|_| {
        invalid(
            "metrics_listen",
            s,
            "is not an IP:port address (fix: e.g. \"127.0.0.1:9180\")",
        )
    })?;
    if addr.port() != 0 && Some(addr) == listen {
        return Err(invalid(
            "metrics_listen",
            s,
            "is `listen`'s address (fix: another port, e.g. \"127.0.0.1:9180\", or remove the key)",
        ));
    }
    Ok(addr)
}

/// An absolute http(s) origin: `public_url`, or a `[[session.domains]]` entry's (`key` names it).
pub(super) fn parse_public_url(key: &str, s: &str) -> Result<PublicUrl, ConfigError> {
    let relative = || ConfigError::RelativePublicUrl {
        key: key.into(),
        value: s.into(),
    };
    let u = url::Url::parse(s).map_err(|_| relative())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(relative());
    }
    let host = u.host_str().ok_or_else(relative)?;
    let host = HostName::parse(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| invalid(key, s, e.reason()))?;
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() || !u.username().is_empty()
    {
        return Err(invalid(
            key,
            s,
            "must be an origin without path, query or credentials (fix: e.g. \"https://auth.example.com\"; serve pocketgate on its own host name)",
        ));
    }
    Ok(PublicUrl {
        origin: u.origin().ascii_serialization(),
        https: u.scheme() == "https",
        host,
    })
}

/// Header names proxies and browsers rely on; an identity header must not be one.
const RESERVED_HEADERS: &[&str] = &[
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

/// The built-in names, for the keys `[headers]` leaves out.
const DEFAULT_HEADERS: [&str; 4] = [
    "X-Remote-User",
    "X-Remote-Email",
    "X-Remote-Name",
    "X-Remote-Groups",
];

fn headers(raw: &RawConfig, report: &mut Report) -> Option<HeaderNames> {
    let [user, email, name, groups] = DEFAULT_HEADERS;
    let defaults = [user, email, name, groups].map(String::from);
    header_names("headers", &raw.headers, &defaults, report)
}

/// `[hosts.headers]` of every host entry that has one, by its position in
/// `raw.hosts` (the `index` of its compiled `HostRule`): each key it leaves
/// out is the `[headers]` one. `None` when any entry is wrong (each mistake
/// reported).
pub(super) fn host_headers(
    raw: &RawConfig,
    global: &HeaderNames,
    report: &mut Report,
) -> Option<BTreeMap<usize, HeaderNames>> {
    let fallback =
        [&global.user, &global.email, &global.name, &global.groups].map(|n| n.as_str().to_string());
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (i, h) in raw.hosts.iter().enumerate() {
        let Some(table) = &h.headers else { continue };
        match header_names(&format!("{}.headers", h.key(i)), table, &fallback, report) {
            Some(names) => {
                out.insert(i, names);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One table of identity header names (`key` names it in messages), each
/// key left out taken from `fallback` (user, email, name, groups); no name
/// may serve two fields.
fn header_names(
    key: &str,
    table: &RawHeaders,
    fallback: &[String; 4],
    report: &mut Report,
) -> Option<HeaderNames> {
    let [d_user, d_email, d_name, d_groups] = fallback;
    let mut pick = |field: &str, v: &Option<String>, default: &str| {
        let name = v.as_deref().unwrap_or(default);
        report.take(header_name(&format!("{key}.{field}"), name))
    };
    let user = pick("user", &table.user, d_user);
    let email = pick("email", &table.email, d_email);
    let name = pick("name", &table.name, d_name);
    let groups = pick("groups", &table.groups, d_groups);
    let names = HeaderNames {
        user: user?,
        email: email?,
        name: name?,
        groups: groups?,
    };
    let all = [&names.user, &names.email, &names.name, &names.groups];
    for (i, a) in all.iter().enumerate() {
        if all.iter().take(i).any(|b| b == a) {
            report.error(invalid(key, a.as_str(), "is used for two identity fields"));
            return None;
        }
    }
    Some(names)
}

pub(super) fn header_name(key: &str, name: &str) -> Result<HeaderName, ConfigError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid(
            key,
            name,
            "is not a header name (letters, digits and '-' only)",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str())
        || lower.starts_with("x-forwarded-")
        || lower.starts_with("x-original-")
    {
        return Err(invalid(
            key,
            name,
            "is a header proxies and browsers rely on; choose another name",
        ));
    }
    HeaderName::from_bytes(lower.as_bytes())
        .map_err(|e| invalid(key, name, format!("is not a header name ({e})")))
}

fn log(raw: &RawConfig, report: &mut Report) -> Option<LogSettings> {
    let format = match raw.log_format.as_deref() {
        None | Some("text") => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            report.error(invalid("log_format", other, "is not \"text\" or \"json\""));
            None
        }
    };
    let level = raw.log_level.as_deref().unwrap_or("info");
    let filter = report.take(LogFilter::parse(level).map_err(|_| {
        invalid(
            "log_level",
            level,
            "is not a log filter (fix: \"info\", \"debug\", or e.g. \"pocketgate=debug,info\")",
        )
    }));
    let audit_file = match raw.audit.file.as_deref() {
        None => Some(None),
        Some(f) if std::path::Path::new(f).is_absolute() => Some(Some(f.into())),
        Some(f) => {
            report.error(invalid(
                "audit.file",
                f,
                "is not an absolute path (fix: e.g. \"/var/log/pocketgate/audit.jsonl\", or remove the key to write audit records to stdout)",
            ));
            None
        }
    };
    Some(LogSettings {
        format: format?,
        filter: filter?,
        audit_file: audit_file?,
    })
}
