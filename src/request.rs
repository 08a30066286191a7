//! Reconstruct the original request from the proxy's headers.
//!
//! Caddy and Traefik send `X-Forwarded-Method/-Proto/-Host/-Uri`; nginx sends
//! what its configuration sets, by convention `X-Original-URL` and
//! `X-Original-Method`. These, and `X-Forwarded-For`, are believed only when
//! the TCP peer is one of `trusted_proxies`. Whatever cannot be reconstructed
//! exactly is an error (a 400 upstream): this module never guesses a host.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

use crate::domain::{is_hostname, ClientAddr, Networks};
use crate::policy::RequestFacts;

/// `http` or `https`; nothing else is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The scheme as it appears in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }
}

/// The request the proxy is asking about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    pub method: String,
    pub scheme: Scheme,
    /// Host name: lower case, port and trailing dot stripped.
    pub host: String,
    /// `host[:port]` for rebuilding the URL.
    pub authority: String,
    /// Path as sent (not decoded), starting with `/`.
    pub path: String,
    /// Query string without `?`, as sent.
    pub query: Option<String>,
    /// The client address.
    pub client: ClientAddr,
}

impl OriginalRequest {
    /// The original URL, for `rd=` and error pages.
    pub fn url(&self) -> String {
        let mut u = format!("{}://{}{}", self.scheme.as_str(), self.authority, self.path);
        if let Some(q) = &self.query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    /// The facts the decision engine reads.
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            host: &self.host,
            path: &self.path,
            client: self.client,
        }
    }
}

/// Why the original request could not be reconstructed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the original request is unknown: {missing} missing (Caddy and Traefik send X-Forwarded-Host and X-Forwarded-Uri; nginx must set X-Original-URL)")]
    Missing { missing: &'static str },
    #[error("peer {peer} is not in trusted_proxies, so its X-Forwarded-* and X-Original-* headers are ignored and the original request is unknown (fix: add the proxy's address to trusted_proxies)")]
    UntrustedPeer { peer: IpAddr },
    #[error("{header}: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
}

fn malformed(header: &'static str, reason: impl Into<String>) -> RequestError {
    RequestError::Malformed {
        header,
        reason: reason.into(),
    }
}

/// Reconstruct the original request. `own_method` is the auth request's own
/// method, used when the proxy sends no method header; `default_scheme` is used
/// when it sends no `X-Forwarded-Proto`.
pub fn reconstruct(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted_proxies: &Networks,
    own_method: &str,
    default_scheme: Scheme,
) -> Result<OriginalRequest, RequestError> {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted_proxies) {
        return Err(RequestError::UntrustedPeer { peer });
    }
    let forwarded = from_forwarded(headers, own_method, default_scheme)?;
    let original = from_original(headers, own_method)?;
    let target = match (forwarded, original) {
        (Some(f), Some(o)) => {
            // Both descriptions present: a proxy may legitimately send both (some
            // nginx setups do), but then they must agree. If they differ, one of
            // them came from the client: refuse rather than pick one.
            if f.host != o.host || f.path != o.path || f.query != o.query || f.method != o.method {
                return Err(malformed(
                    "X-Original-URL",
                    "describes another request than X-Forwarded-Host/-Uri/-Method (fix: make the proxy send one set, and strip the other from client requests)",
                ));
            }
            f
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return Err(RequestError::Missing {
                missing: "X-Forwarded-Host/X-Forwarded-Uri or X-Original-URL",
            })
        }
    };
    let client = ClientAddr::new(client_ip(headers, peer, trusted_proxies)?);
    Ok(OriginalRequest {
        method: target.method,
        scheme: target.scheme,
        host: target.host,
        authority: target.authority,
        path: target.path,
        query: target.query,
        client,
    })
}

/// The original request as one header set describes it, without the client address.
struct Target {
    method: String,
    scheme: Scheme,
    host: String,
    authority: String,
    path: String,
    query: Option<String>,
}

/// Caddy / Traefik: `X-Forwarded-Host` + `X-Forwarded-Uri` (+ `-Proto`, `-Method`).
fn from_forwarded(
    headers: &HeaderMap,
    own_method: &str,
    default_scheme: Scheme,
) -> Result<Option<Target>, RequestError> {
    let host = single(headers, "x-forwarded-host")?;
    let uri = single(headers, "x-forwarded-uri")?;
    let (host, uri) = match (host, uri) {
        (None, None) => return Ok(None),
        (Some(h), Some(u)) => (h, u),
        (None, Some(_)) => {
            return Err(RequestError::Missing {
                missing: "X-Forwarded-Host",
            })
        }
        (Some(_), None) => {
            return Err(RequestError::Missing {
                missing: "X-Forwarded-Uri",
            })
        }
    };
    let scheme = match single(headers, "x-forwarded-proto")? {
        Some(p) => Scheme::parse(p).ok_or_else(|| {
            malformed(
                "X-Forwarded-Proto",
                format!("{p:?} is neither http nor https"),
            )
        })?,
        None => default_scheme,
    };
    let method = match single(headers, "x-forwarded-method")? {
        Some(m) => parse_method(m, "X-Forwarded-Method")?,
        None => own_method.to_string(),
    };
    let (host, authority) = parse_authority(host, "X-Forwarded-Host")?;
    let (path, query) = parse_target(uri, "X-Forwarded-Uri")?;
    Ok(Some(Target {
        method,
        scheme,
        host,
        authority,
        path,
        query,
    }))
}

/// nginx: `X-Original-URL` (+ `X-Original-Method`).
fn from_original(headers: &HeaderMap, own_method: &str) -> Result<Option<Target>, RequestError> {
    let Some(url) = single(headers, "x-original-url")? else {
        return Ok(None);
    };
    let u = parse_absolute_url(url)?;
    let method = match single(headers, "x-original-method")? {
        Some(m) => parse_method(m, "X-Original-Method")?,
        None => own_method.to_string(),
    };
    Ok(Some(Target {
        method,
        scheme: u.scheme,
        host: u.host,
        authority: u.authority,
        path: u.path,
        query: u.query,
    }))
}

fn parse_method(m: &str, label: &'static str) -> Result<String, RequestError> {
    if m.len() > 32 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(malformed(label, format!("{m:?} is not an HTTP method")));
    }
    Ok(m.to_string())
}

/// An absolute URL split the way the decision needs it, without resolving dot
/// segments or decoding anything (a URL library would normalise the very tricks
/// the engine must see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUrl {
    pub scheme: Scheme,
    pub host: String,
    pub authority: String,
    pub path: String,
    pub query: Option<String>,
}

/// Parse `scheme://host[:port]/path?query` (`X-Original-URL`, `explain --url`).
pub fn parse_absolute_url(url: &str) -> Result<AbsoluteUrl, RequestError> {
    const L: &str = "X-Original-URL";
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        malformed(
            L,
            "is not an absolute URL (fix: set it to $scheme://$http_host$request_uri)",
        )
    })?;
    let scheme = Scheme::parse(scheme)
        .ok_or_else(|| malformed(L, format!("scheme {scheme:?} is neither http nor https")))?;
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    if !target.is_empty() && !target.starts_with('/') {
        return Err(malformed(L, "has a query or fragment but no path"));
    }
    let target = if target.is_empty() { "/" } else { target };
    let (host, authority) = parse_authority(authority, L)?;
    let (path, query) = parse_target(target, L)?;
    Ok(AbsoluteUrl {
        scheme,
        host,
        authority,
        path,
        query,
    })
}

fn is_trusted(ip: IpAddr, trusted: &Networks) -> bool {
    trusted.contains(ClientAddr::new(ip))
}

/// A header that must appear at most once, as visible ASCII.
fn single<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, RequestError> {
    let mut values = headers.get_all(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let label = canonical_name(name);
    if values.next().is_some() {
        return Err(malformed(label, "sent more than once"));
    }
    let s = first
        .to_str()
        .map_err(|_| malformed(label, "holds bytes that are not visible ASCII"))?;
    let s = s.trim();
    if s.is_empty() {
        return Err(malformed(label, "is empty"));
    }
    Ok(Some(s))
}

fn canonical_name(name: &'static str) -> &'static str {
    match name {
        "x-forwarded-host" => "X-Forwarded-Host",
        "x-forwarded-uri" => "X-Forwarded-Uri",
        "x-forwarded-proto" => "X-Forwarded-Proto",
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-original-url" => "X-Original-URL",
        "x-original-method" => "X-Original-Method",
        other => other,
    }
}

/// `host[:port]` → (normalised host, authority for URLs).
fn parse_authority(a: &str, label: &'static str) -> Result<(String, String), RequestError> {
    if a.is_empty() {
        return Err(malformed(label, "is empty"));
    }
    if a.bytes()
        .any(|b| b <= 0x20 || b >= 0x7f || b"/\\@?#,%".contains(&b))
    {
        return Err(malformed(label, format!("{a:?} is not a host name")));
    }
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| malformed(label, format!("{a:?}: unclosed IPv6 literal")))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(malformed(label, format!("{a:?}: bad IPv6 literal")));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| malformed(label, format!("{a:?} is not a host name")))?,
            ),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        match a.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (a.to_string(), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n > 65535)
        {
            return Err(malformed(label, format!("{a:?} has a bad port")));
        }
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    // Brackets belong to an IPv6 literal only: `example.com]` is not `example.com`.
    let bare = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
        Some(_) => return Err(malformed(label, format!("{a:?} is not a host name"))),
        None => name.as_str(),
    };
    if !is_hostname(bare) {
        return Err(malformed(label, format!("{a:?} is not a host name")));
    }
    let authority = match port {
        Some(p) => format!("{name}:{p}"),
        None => name.clone(),
    };
    Ok((bare.to_string(), authority))
}

/// Origin-form request target → (path, query).
fn parse_target(t: &str, label: &'static str) -> Result<(String, Option<String>), RequestError> {
    if !t.starts_with('/') {
        return Err(malformed(
            label,
            format!("{t:?} is not a path starting with '/'"),
        ));
    }
    if t.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(malformed(label, "holds spaces or control characters"));
    }
    // No request target carries a fragment (RFC 9112 3.2): a '#' here came
    // raw from the client, and the URL rebuilt from it would end elsewhere.
    if t.contains('#') {
        return Err(malformed(
            label,
            "holds a '#', which no request target carries",
        ));
    }
    Ok(match t.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (t.to_string(), None),
    })
}

/// Most hops an `X-Forwarded-For` walk considers before giving up.
const MAX_HOPS: usize = 32;

/// The client address: `X-Forwarded-For` read right to left, skipping trusted
/// hops; the peer itself when there is none. Called only for trusted peers.
fn client_ip(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: &Networks,
) -> Result<IpAddr, RequestError> {
    let mut entries: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let s = v
            .to_str()
            .map_err(|_| malformed("X-Forwarded-For", "holds bytes that are not visible ASCII"))?;
        entries.extend(s.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    if entries.is_empty() {
        return Ok(peer);
    }
    let mut last = peer;
    for (n, entry) in entries.iter().rev().enumerate() {
        if n >= MAX_HOPS {
            return Err(malformed(
                "X-Forwarded-For",
                format!("more than {MAX_HOPS} trusted hops"),
            ));
        }
        let ip = parse_hop(entry)
            .ok_or_else(|| {
                malformed(
                    "X-Forwarded-For",
                    format!("entry {entry:?} is not an IP address"),
                )
            })?
            .to_canonical();
        if !is_trusted(ip, trusted) {
            return Ok(ip);
        }
        last = ip;
    }
    Ok(last)
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests;
