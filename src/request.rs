//! Reconstruct the original request from the proxy's headers.
//!
//! Caddy and Traefik send `X-Forwarded-Method/-Proto/-Host/-Uri`; nginx sends
//! what its configuration sets, by convention `X-Original-URL` and
//! `X-Original-Method`. These, and `X-Forwarded-For`, are believed only when
//! the TCP peer is one of `trusted_proxies`. Whatever cannot be reconstructed
//! exactly is an error (a 400 upstream): this module never guesses a host.

use std::borrow::Cow;
use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, HeaderName};

use crate::domain::{is_hostname, ClientAddr, Networks};
use crate::policy::RequestFacts;

/// A request header read here: its name parsed once (looked up by a `&str`,
/// a name is parsed again on every lookup: a third of what reconstructing a
/// request cost) and its spelling for messages.
struct Header {
    name: HeaderName,
    label: &'static str,
}

impl Header {
    const fn new(name: &'static str, label: &'static str) -> Header {
        Header {
            name: HeaderName::from_static(name),
            label,
        }
    }
}

static X_FORWARDED_HOST: Header = Header::new("x-forwarded-host", "X-Forwarded-Host");
static X_FORWARDED_URI: Header = Header::new("x-forwarded-uri", "X-Forwarded-Uri");
static X_FORWARDED_PROTO: Header = Header::new("x-forwarded-proto", "X-Forwarded-Proto");
static X_FORWARDED_METHOD: Header = Header::new("x-forwarded-method", "X-Forwarded-Method");
static X_FORWARDED_FOR: Header = Header::new("x-forwarded-for", "X-Forwarded-For");
static X_ORIGINAL_URL: Header = Header::new("x-original-url", "X-Original-URL");
static X_ORIGINAL_METHOD: Header = Header::new("x-original-method", "X-Original-Method");
static HOST: Header = Header::new("host", "host");

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

/// The request the proxy is asking about, borrowing from the proxy's headers
/// (a string is copied only when it must change, e.g. an upper-case host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest<'h> {
    /// The proxy's method header, else the auth request's own method.
    pub method: &'h str,
    /// Whether the proxy named the method (`X-Forwarded-Method` /
    /// `X-Original-Method`); rules on methods need it.
    pub method_given: bool,
    pub scheme: Scheme,
    /// Host name: lower case, port and trailing dot stripped.
    pub host: Cow<'h, str>,
    /// `host[:port]` for rebuilding the URL.
    pub authority: Cow<'h, str>,
    /// Path as sent (not decoded), starting with `/`.
    pub path: &'h str,
    /// Query string without `?`, as sent.
    pub query: Option<&'h str>,
    /// The client address.
    pub client: ClientAddr,
}

impl OriginalRequest<'_> {
    /// The original URL, for `rd=` and error pages.
    pub fn url(&self) -> String {
        let mut u = format!("{}://{}{}", self.scheme.as_str(), self.authority, self.path);
        if let Some(q) = self.query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    /// The facts the decision engine reads.
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            host: &self.host,
            path: self.path,
            client: self.client,
            method: self.method_given.then_some(self.method),
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
    /// Both header sets are present and disagree: one of them came from the client.
    #[error("X-Original-URL: describes another request than X-Forwarded-Host/-Uri/-Method (fix: make the proxy send one set, and strip the other from client requests)")]
    Conflicting,
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
pub fn reconstruct<'h>(
    headers: &'h HeaderMap,
    peer: IpAddr,
    trusted_proxies: &Networks,
    own_method: &'h str,
    default_scheme: Scheme,
) -> Result<OriginalRequest<'h>, RequestError> {
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
                return Err(RequestError::Conflicting);
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
        method_given: target.method_given,
        scheme: target.scheme,
        host: target.host,
        authority: target.authority,
        path: target.path,
        query: target.query,
        client,
    })
}

/// The host a request to pocketgate's own pages (`/login`, `/callback`,
/// `/logout`) was sent to: `X-Forwarded-Host` when the peer is a trusted
/// proxy and the header names a host, else `Host`; `None` when neither does.
/// Whoever sends the request controls it, so it serves only to choose among
/// the configured login domains, never as a URL to send anyone to.
pub fn served_host<'h>(
    headers: &'h HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxies: &Networks,
) -> Option<Cow<'h, str>> {
    let host_of = |header: &'static Header| {
        let raw = single(headers, header).ok().flatten()?;
        parse_authority(raw, header.label).ok().map(|(h, _)| h)
    };
    let trusted = peer.is_some_and(|p| is_trusted(p.to_canonical(), trusted_proxies));
    trusted
        .then(|| host_of(&X_FORWARDED_HOST))
        .flatten()
        .or_else(|| host_of(&HOST))
}

/// The client address of a request to pocketgate's own pages (`/callback`,
/// which records it as the session's client): `X-Forwarded-For` read as for
/// `/forward-auth` when the peer is a trusted proxy, else the peer. It is
/// shown to operators, never decided on, so an `X-Forwarded-For` that does
/// not parse gives the peer rather than an error.
pub fn client_of(headers: &HeaderMap, peer: IpAddr, trusted_proxies: &Networks) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    client_ip(headers, peer, trusted_proxies).unwrap_or(peer)
}

/// The original request as one header set describes it, without the client address.
struct Target<'h> {
    method: &'h str,
    method_given: bool,
    scheme: Scheme,
    host: Cow<'h, str>,
    authority: Cow<'h, str>,
    path: &'h str,
    query: Option<&'h str>,
}

/// Caddy / Traefik: `X-Forwarded-Host` + `X-Forwarded-Uri` (+ `-Proto`, `-Method`).
fn from_forwarded<'h>(
    headers: &'h HeaderMap,
    own_method: &'h str,
    default_scheme: Scheme,
) -> Result<Option<Target<'h>>, RequestError> {
    let host = single(headers, &X_FORWARDED_HOST)?;
    let uri = single(headers, &X_FORWARDED_URI)?;
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
    let scheme = match single(headers, &X_FORWARDED_PROTO)? {
        Some(p) => Scheme::parse(p).ok_or_else(|| {
            malformed(
                "X-Forwarded-Proto",
                format!("{p:?} is neither http nor https"),
            )
        })?,
        None => default_scheme,
    };
    let given = single(headers, &X_FORWARDED_METHOD)?;
    let method = match given {
        Some(m) => parse_method(m, "X-Forwarded-Method")?,
        None => own_method,
    };
    let (host, authority) = parse_authority(host, "X-Forwarded-Host")?;
    let (path, query) = parse_target(uri, "X-Forwarded-Uri")?;
    Ok(Some(Target {
        method,
        method_given: given.is_some(),
        scheme,
        host,
        authority,
        path,
        query,
    }))
}

/// nginx: `X-Original-URL` (+ `X-Original-Method`).
fn from_original<'h>(
    headers: &'h HeaderMap,
    own_method: &'h str,
) -> Result<Option<Target<'h>>, RequestError> {
    let Some(url) = single(headers, &X_ORIGINAL_URL)? else {
        return Ok(None);
    };
    let u = parse_absolute_url(url)?;
    let given = single(headers, &X_ORIGINAL_METHOD)?;
    let method = match given {
        Some(m) => parse_method(m, "X-Original-Method")?,
        None => own_method,
    };
    Ok(Some(Target {
        method,
        method_given: given.is_some(),
        scheme: u.scheme,
        host: u.host,
        authority: u.authority,
        path: u.path,
        query: u.query,
    }))
}

fn parse_method<'h>(m: &'h str, label: &'static str) -> Result<&'h str, RequestError> {
    if m.len() > 32 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(malformed(label, format!("{m:?} is not an HTTP method")));
    }
    Ok(m)
}

/// An absolute URL split the way the decision needs it, without resolving dot
/// segments or decoding anything (a URL library would normalise the very tricks
/// the engine must see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUrl<'u> {
    pub scheme: Scheme,
    pub host: Cow<'u, str>,
    pub authority: Cow<'u, str>,
    pub path: &'u str,
    pub query: Option<&'u str>,
}

/// Parse `scheme://host[:port]/path?query` (`X-Original-URL`, `explain --url`).
pub fn parse_absolute_url(url: &str) -> Result<AbsoluteUrl<'_>, RequestError> {
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
fn single<'h>(
    headers: &'h HeaderMap,
    header: &'static Header,
) -> Result<Option<&'h str>, RequestError> {
    let mut values = headers.get_all(&header.name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let label = header.label;
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

/// `host[:port]` → (normalised host, authority for URLs), borrowed when the
/// proxy already sent them in normal form.
fn parse_authority<'a>(
    a: &'a str,
    label: &'static str,
) -> Result<(Cow<'a, str>, Cow<'a, str>), RequestError> {
    if a.is_empty() {
        return Err(malformed(label, "is empty"));
    }
    if a.bytes()
        .any(|b| b <= 0x20 || b >= 0x7f || b"/\\@?#,%".contains(&b))
    {
        return Err(malformed(label, format!("{a:?} is not a host name")));
    }
    let (host, port, bracketed) = if let Some(rest) = a.strip_prefix('[') {
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
        (v6, port, true)
    } else {
        match a.split_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (a, None, false),
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
    let trimmed = if bracketed {
        host
    } else {
        host.trim_end_matches('.')
    };
    let name: Cow<'a, str> = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    };
    if !(is_hostname(&name) || (bracketed && name.parse::<std::net::Ipv6Addr>().is_ok())) {
        return Err(malformed(label, format!("{a:?} is not a host name")));
    }
    let unchanged = matches!(name, Cow::Borrowed(_)) && trimmed.len() == host.len();
    let authority = match (bracketed, port) {
        (false, _) if unchanged => Cow::Borrowed(a),
        (true, Some(p)) => Cow::Owned(format!("[{name}]:{p}")),
        (true, None) => Cow::Owned(format!("[{name}]")),
        (false, Some(p)) => Cow::Owned(format!("{name}:{p}")),
        (false, None) => name.clone(),
    };
    Ok((name, authority))
}

/// Origin-form request target → (path, query).
fn parse_target<'t>(
    t: &'t str,
    label: &'static str,
) -> Result<(&'t str, Option<&'t str>), RequestError> {
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
        Some((p, q)) => (p, Some(q)),
        None => (t, None),
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
    for v in headers.get_all(&X_FORWARDED_FOR.name) {
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
