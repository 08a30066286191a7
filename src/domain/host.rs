//! Host names, host patterns (`*.example.com`) and cookie domains.

use std::fmt;
use std::net::IpAddr;

use super::Invalid;

/// A host name as the decision compares it: lower case, no port, no trailing
/// dot, internationalised names in their ASCII (punycode) form, which is what
/// proxies send. IP literals are allowed (without brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

impl HostName {
    /// Parse a configured host name. A port is refused rather than ignored, so
    /// that `grafana.example.com:3000` never silently matches every port.
    pub fn parse(raw: &str) -> Result<HostName, Invalid> {
        let h = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if h.contains(':') && h.parse::<IpAddr>().is_err() {
            return Err(Invalid::new(
                "must not include a port (fix: remove it; ports are ignored when matching)",
            ));
        }
        if h.is_ascii() {
            if is_hostname(&h) {
                return Ok(HostName(h));
            }
        } else if let Ok(url::Host::Domain(d)) = url::Host::parse(&h) {
            if is_hostname(&d) {
                return Ok(HostName(d));
            }
        }
        Err(Invalid::new("is not a host name"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` is this name or a name below it (`a.example.com` under `example.com`).
    pub fn covers(&self, host: &str) -> bool {
        host == self.0
            || host
                .strip_suffix(self.0.as_str())
                .is_some_and(|p| p.ends_with('.'))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a `[[hosts]]` entry names its host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `grafana.example.com`: that name only.
    Exact(HostName),
    /// `*.example.com`: any name ending in `.example.com` (any depth), not `example.com` itself.
    Wildcard(HostName),
}

impl HostPattern {
    /// Parse `name` or `*.suffix`.
    pub fn parse(raw: &str) -> Result<HostPattern, Invalid> {
        let trimmed = raw.trim();
        let fix = "is not a host name or a \"*.suffix\" wildcard (fix: e.g. \"grafana.example.com\" or \"*.example.com\")";
        let keep_port_reason = |e: Invalid| {
            if e.reason().contains("port") {
                e
            } else {
                Invalid::new(fix)
            }
        };
        match trimmed.strip_prefix("*.") {
            Some(rest) => HostName::parse(rest)
                .map(HostPattern::Wildcard)
                .map_err(keep_port_reason),
            None => HostName::parse(trimmed)
                .map(HostPattern::Exact)
                .map_err(keep_port_reason),
        }
    }

    /// Whether a normalised host name matches this pattern.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(n) => n.as_str() == host,
            HostPattern::Wildcard(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|p| p.len() > 1 && p.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => write!(f, "{h}"),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// The `Domain` attribute of the session cookie: a host name that must cover
/// `public_url`'s host. A leading dot is accepted and dropped (RFC 6265 ignores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieDomain(HostName);

impl CookieDomain {
    /// Parse `example.com` or `.example.com`.
    pub fn parse(raw: &str) -> Result<CookieDomain, Invalid> {
        let d = raw.trim().trim_start_matches('.');
        match HostName::parse(d) {
            Ok(h) if h.as_str().parse::<IpAddr>().is_err() => Ok(CookieDomain(h)),
            _ => Err(Invalid::new("is not a domain name")),
        }
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether a cookie for this domain is sent to `host` (normalised).
    pub fn covers(&self, host: &str) -> bool {
        self.0.covers(host)
    }
}

impl fmt::Display for CookieDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A DNS name: dot-separated labels of letters, digits, '-' and '_' (at most
/// 63 bytes each, 253 in all), or an IP literal.
pub fn is_hostname(h: &str) -> bool {
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

#[cfg(test)]
mod tests;
