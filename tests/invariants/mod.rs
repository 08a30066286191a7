//! The invariants of the parsers that face the network, written once and
//! checked by two drivers: the property tests (`tests/properties.rs`, on
//! stable, inside `cargo test`) and the fuzz targets (`fuzz/fuzz_targets/`,
//! on nightly, which include this file by path).
//!
//! Every `check_*` function takes one input, runs the product code on it and
//! panics, naming the input and the broken promise, when the answer breaks
//! the contract (DESIGN.md). "It did not panic" is never the whole check.
//! The fixtures (configuration, keys, the clock) are fixed, so a failing
//! input reproduces anywhere.
#![allow(dead_code)]

use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use pocketgate::config::{load_rules_str, load_str, Runtime, SessionSecret, SessionSecrets};
use pocketgate::domain::{is_hostname, is_normal_path, NormalPath, PathPrefix};
use pocketgate::domain::{ClientAddr, Networks};
use pocketgate::oidc::flow::validate_rd;
use pocketgate::policy::{decide, Identity, Outcome, RequestFacts, Rules};
use pocketgate::request::{parse_absolute_url, reconstruct, RequestError, Scheme};
use pocketgate::session::{FlowState, LogoutHint, Refused, Session, SessionKeys, MAX_CLOCK_SKEW};

// ---------------------------------------------------------------- fixtures

/// The clock every check runs at.
pub const NOW: u64 = 1_700_000_000;

/// The session secret of [`keys`] and [`runtime`].
pub const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";

/// The host the decision fixtures protect, with bypass rules.
pub const APP: &str = "app.example.test";

/// The rules the spelling checks decide over: a host with bypass prefixes and
/// regexes (some of them of the kinds that see spelling: a negated class, a
/// length), everything else under a policy that needs a login.
pub const RULES: &str = r#"
default_policy = "users"
[policies.users]
allowed_groups = ["users"]

[[hosts]]
host = "app.example.test"
policy = "users"
bypass_paths = ["/api/health", "/public", "/a-b/c_d~e"]
bypass_resources = ["^/status$", "^/share/.{8}$", "^/files/[^a]", "^/v[0-9]+/ping$"]
"#;

/// A whole configuration for the checks that need a [`Runtime`] (`rd`).
pub const CONFIG: &str = r#"
public_url = "https://auth.example.test"
trusted_proxies = ["127.0.0.1/32", "10.9.0.0/16", "::1/128"]
default_policy = "users"

[oidc]
issuer = "https://id.example.test"
client_id = "pocketgate"
client_auth = "none"

[session]
cookie_domain = "example.test"

[policies.users]
allowed_groups = ["users"]

[[hosts]]
host = "app.example.test"
policy = "users"

[[hosts]]
host = "*.wild.other.test"
policy = "users"

[[hosts]]
host = "10.1.2.3"
policy = "users"
"#;

/// The secrets the configuration fixtures read from "the environment".
pub fn env(name: &str) -> Option<String> {
    match name {
        "POCKETGATE_SESSION__SECRET" => Some(SECRET.into()),
        "POCKETGATE_OIDC__CLIENT_SECRET" => Some("client-secret".into()),
        _ => None,
    }
}

/// The compiled [`CONFIG`].
pub fn runtime() -> Runtime {
    match load_str(CONFIG, &env) {
        Ok(loaded) => loaded.value,
        Err(e) => panic!("the fixture configuration does not load: {e}"),
    }
}

/// The compiled [`RULES`].
pub fn rules() -> Rules {
    rules_from(RULES)
}

/// Compile rules from TOML text that must be valid.
pub fn rules_from(toml: &str) -> Rules {
    match load_rules_str(toml) {
        Ok(loaded) => loaded.value,
        Err(e) => panic!("fixture rules do not load: {e}\n{toml}"),
    }
}

/// Keys from [`SECRET`] (sealing) plus one older secret (opening only).
pub fn keys() -> SessionKeys {
    let current = SessionSecret::new(SECRET).expect("the fixture secret is long enough");
    let older = SessionSecret::new(vec![7u8; 32]).expect("32 bytes are enough");
    SessionKeys::new(&SessionSecrets::new(current, vec![older]))
}

/// Keys that share nothing with [`keys`].
pub fn foreign_keys() -> SessionKeys {
    let current = SessionSecret::new(vec![9u8; 40]).expect("40 bytes are enough");
    SessionKeys::new(&SessionSecrets::new(current, Vec::new()))
}

/// The proxies [`check_reconstruct`] trusts: loopback and 10.9.0.0/16.
pub fn trusted_proxies() -> Networks {
    Networks::new(vec![
        Networks::parse_one("127.0.0.1/32").expect("a CIDR"),
        Networks::parse_one("10.9.0.0/16").expect("a CIDR"),
        Networks::parse_one("::1/128").expect("a CIDR"),
    ])
}

/// A session that is valid at [`NOW`].
pub fn session() -> Session {
    Session {
        identity: Identity {
            subject: "0b5e3c2a".into(),
            user: "alice".into(),
            email: Some("alice@example.test".into()),
            email_verified: true,
            name: Some("Alice".into()),
            groups: vec!["users".into()],
            ..Identity::default()
        },
        issued: NOW - 10,
        expires: NOW + 3600,
    }
}

/// A login flow that is open at [`NOW`].
pub fn flow() -> FlowState {
    FlowState {
        state: "c3RhdGU".into(),
        nonce: "bm9uY2U".into(),
        pkce_verifier: "dmVyaWZpZXI".into(),
        rd: "https://app.example.test/dashboard?tab=1".into(),
        redirect_uri: None,
        expires: NOW + 600,
        step_up: None,
    }
}

/// A header map from raw name/value bytes, skipping pairs that are not valid
/// HTTP (what actix would have refused before pocketgate saw the request).
pub fn header_map<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    map
}

// ------------------------------------------------------------- normal form

/// What makes `path` unfit for bypass matching, read independently of the
/// product code (decode first, then look), or `None` when it is in normal
/// form: starts with `/`; no empty segment but a trailing one; no segment
/// whose name (before `;`) decodes to dots only (also with trailing spaces);
/// no literal `\`, `#`, space, control or non-ASCII byte; every `%` starts an
/// escape of two upper-case hex digits (RFC 3986 6.2.2.1) that encodes
/// neither a byte that changes the path's structure (`/ \ . ; # ? %`), a
/// control or non-ASCII byte, nor an unreserved character, which has only one
/// normal spelling: itself (RFC 3986 6.2.2.2).
pub fn spelling_problem(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Some("does not start with '/'".into());
    }
    if let Some(b) = bytes
        .iter()
        .find(|b| b.is_ascii_control() || **b == b' ' || !b.is_ascii() || b"\\#".contains(b))
    {
        return Some(format!("holds the byte {b:#04x} literally"));
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            i += 1;
            continue;
        }
        let Some(hex) = path.get(i + 1..i + 3) else {
            return Some(format!("malformed escape at {i}"));
        };
        let Ok(decoded) = u8::from_str_radix(hex, 16) else {
            return Some(format!("malformed escape %{hex}"));
        };
        if hex.starts_with(['+', '-']) {
            return Some(format!("malformed escape %{hex}"));
        }
        if hex.bytes().any(|h| h.is_ascii_lowercase()) {
            return Some(format!("lower-case escape %{hex}"));
        }
        if b"/\\.;#?%".contains(&decoded) || !(0x20..0x7f).contains(&decoded) {
            return Some(format!("escape %{hex} of a byte that changes the path"));
        }
        if decoded.is_ascii_alphanumeric() || b"-_~".contains(&decoded) {
            return Some(format!(
                "escape %{hex} of the unreserved {:?}",
                decoded as char
            ));
        }
        i += 3;
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (n, segment) in segments.iter().enumerate() {
        if segment.is_empty() && n + 1 < segments.len() {
            return Some("has an empty segment ('//')".into());
        }
        let name = segment.split(';').next().unwrap_or_default();
        let decoded = percent_decode(name);
        let core = decoded.trim_end_matches(' ');
        if !core.is_empty() && core.chars().all(|c| c == '.') {
            return Some(format!("has the dot segment {segment:?}"));
        }
    }
    None
}

/// Decode every well-formed `%XX` escape (others stay as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escape = (b == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escape {
            Some(d) => {
                out.push(d);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `is_normal_path` accepts a path only when the independent reading finds
/// nothing wrong with it, [`NormalPath`] agrees with it, and a path prefix
/// that parses is itself in normal form and matches itself.
pub fn check_normal_path(path: &str) {
    let normal = is_normal_path(path);
    if normal {
        if let Some(problem) = spelling_problem(path) {
            panic!("is_normal_path accepts {path:?}, which {problem}");
        }
    }
    assert_eq!(
        NormalPath::new(path).is_some(),
        normal,
        "NormalPath::new and is_normal_path disagree on {path:?}"
    );
    if let Ok(prefix) = PathPrefix::parse(path) {
        assert!(
            normal,
            "PathPrefix::parse accepts {path:?}, not in normal form"
        );
        let own = NormalPath::new(prefix.as_str())
            .unwrap_or_else(|| panic!("prefix {prefix} from {path:?} is not in normal form"));
        assert!(prefix.matches(own), "prefix {prefix} does not match itself");
        let as_path = NormalPath::new(path).expect("checked above");
        assert!(
            prefix.matches(as_path),
            "prefix {prefix} does not match {path:?}"
        );
    }
}

// ------------------------------------------------------ spelling never helps

/// How much an outcome lets through: bypass (no identity needed) above allow
/// above login and step-up (both ask for a sign-in first) above deny.
pub fn permissiveness(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Deny => 0,
        Outcome::Login | Outcome::StepUp => 1,
        Outcome::Allow => 2,
        Outcome::Bypass => 3,
    }
}

/// The RFC 3986 normal spelling of what a backend makes of `path`: escapes of
/// unreserved characters decoded, the other escapes upper-cased, `//`
/// collapsed, `.` and `..` segments (also percent-encoded) resolved. Segment
/// parameters (`;x`) are left alone: they are part of the path.
pub fn plain_form(path: &str) -> String {
    let mut unescaped = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = (b == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(d) if d.is_ascii_alphanumeric() || b"-._~".contains(&d) => {
                unescaped.push(d as char);
                i += 3;
            }
            Some(_) => {
                unescaped.push('%');
                unescaped.push_str(&hex.unwrap_or_default().to_ascii_uppercase());
                i += 3;
            }
            None => {
                unescaped.push(b as char);
                i += 1;
            }
        }
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = unescaped.split('/').skip(1).collect();
    for (n, segment) in segments.iter().enumerate() {
        let last = n + 1 == segments.len();
        match *segment {
            "" | "." if !last => {}
            "." => out.push(""),
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Decide `path` on `host` for a client outside every network, without and
/// with a signed-in user.
pub fn outcomes(rules: &Rules, host: &str, path: &str) -> [Outcome; 2] {
    let facts = RequestFacts {
        host,
        path,
        client: ClientAddr::new(IpAddr::from([203, 0, 113, 9])),
        method: Some("GET"),
    };
    let user = session().identity;
    [
        decide(rules, &facts, None).outcome,
        decide(rules, &facts, Some(&user)).outcome,
    ]
}

/// Spelling never helps: the answer for `spelled` is never more permissive
/// than the answer for `plain`, the path it is a spelling of.
pub fn check_spelling(rules: &Rules, host: &str, plain: &str, spelled: &str) {
    let p = outcomes(rules, host, plain);
    let s = outcomes(rules, host, spelled);
    for (plain_outcome, spelled_outcome) in p.into_iter().zip(s) {
        assert!(
            permissiveness(spelled_outcome) <= permissiveness(plain_outcome),
            "spelling helps on {host}: {spelled:?} gets {spelled_outcome}, its plain form {plain:?} only {plain_outcome}"
        );
    }
}

/// [`check_spelling`] with the plain form worked out by [`plain_form`].
pub fn check_spelling_of(rules: &Rules, host: &str, path: &str) {
    check_spelling(rules, host, &plain_form(path), path);
}

// ------------------------------------------------------------ reconstruct

/// What `reconstruct` promises for one header set and peer: an untrusted peer
/// is always refused; an answer is the same every time, names a lower-case
/// host without port that is a DNS name or an IP literal, an origin-form path
/// without query, fragment or whitespace, an upper-case method, a client that
/// is the peer or an `X-Forwarded-For` entry, and a URL that parses back to
/// the same request.
pub fn check_reconstruct(headers: &HeaderMap, peer: IpAddr, method: &str, scheme: Scheme) {
    let trusted = trusted_proxies();
    let result = reconstruct(headers, peer, &trusted, method, scheme);
    let again = reconstruct(headers, peer, &trusted, method, scheme);
    assert_eq!(result, again, "reconstruct is not deterministic");
    let peer_is_trusted = trusted.contains(ClientAddr::new(peer));
    let o = match result {
        Err(RequestError::UntrustedPeer { .. }) if !peer_is_trusted => return,
        Err(e) if !peer_is_trusted => {
            panic!("untrusted peer {peer} refused for another reason: {e}")
        }
        Ok(o) if !peer_is_trusted => panic!("headers from untrusted peer {peer} believed: {o:?}"),
        Err(RequestError::UntrustedPeer { .. }) => panic!("trusted peer {peer} called untrusted"),
        Err(_) => return,
        Ok(o) => o,
    };
    let host: &str = &o.host;
    let ip_literal = host.parse::<IpAddr>().is_ok();
    assert!(
        ip_literal || is_hostname(host),
        "host {host:?} is neither a host name nor an IP literal"
    );
    assert!(
        ip_literal || !host.contains(':'),
        "host {host:?} keeps a port"
    );
    assert!(
        !host.bytes().any(|b| b.is_ascii_uppercase()),
        "host {host:?} is not lower case"
    );
    assert!(!host.ends_with('.'), "host {host:?} keeps its trailing dot");
    let bracketed = format!("[{host}]");
    let authority_host = if host.contains(':') {
        bracketed.as_str()
    } else {
        host
    };
    let port = o.authority.strip_prefix(authority_host).unwrap_or_else(|| {
        panic!(
            "authority {:?} does not start with host {host:?}",
            o.authority
        )
    });
    assert!(
        port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()),
        "authority {:?} has a bad port",
        o.authority
    );
    let path: &str = o.path;
    assert!(
        path.starts_with('/'),
        "path {path:?} does not start with '/'"
    );
    assert!(
        !path
            .bytes()
            .any(|b| b == b'?' || b == b'#' || b.is_ascii_whitespace() || b.is_ascii_control()),
        "path {path:?} holds '?', '#', whitespace or a control byte"
    );
    if let Some(q) = &o.query {
        assert!(
            !q.bytes()
                .any(|b| b == b'#' || b.is_ascii_whitespace() || b.is_ascii_control()),
            "query {q:?} holds '#', whitespace or a control byte"
        );
    }
    let upper_case = !o.method.is_empty() && o.method.bytes().all(|b| b.is_ascii_uppercase());
    assert!(
        upper_case || o.method == method,
        "method {:?} is neither upper-case letters nor the auth request's own",
        o.method
    );
    let client = o.client.ip();
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|e| {
            let e = e.trim();
            e.parse::<IpAddr>()
                .ok()
                .or_else(|| e.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        })
        .map(|ip| ip.to_canonical())
        .collect();
    assert!(
        client == peer.to_canonical() || hops.contains(&client),
        "client {client} is neither the peer {peer} nor an X-Forwarded-For entry"
    );
    let url = o.url();
    let back = parse_absolute_url(&url)
        .unwrap_or_else(|e| panic!("the request's own URL {url:?} does not parse: {e}"));
    assert_eq!(
        (
            back.scheme,
            &*back.host,
            &*back.authority,
            back.path,
            back.query
        ),
        (o.scheme, host, &*o.authority, path, o.query),
        "the request's own URL {url:?} parses as another request"
    );
}

// ---------------------------------------------------------------------- rd

/// An accepted `rd` is an absolute http(s) URL without credentials, on a host
/// the configuration covers, not http when `public_url` is https, and
/// accepting it again gives it back unchanged (what is followed is what was
/// checked).
pub fn check_rd(rt: &Runtime, rd: &str) {
    let Ok(accepted) = validate_rd(rt, rd) else {
        return;
    };
    assert!(
        !rd.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\'),
        "rd {rd:?} with whitespace, control characters or '\\' accepted"
    );
    let url = url::Url::parse(&accepted)
        .unwrap_or_else(|e| panic!("accepted rd {accepted:?} (from {rd:?}) does not parse: {e}"));
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "accepted rd {accepted:?} is not http(s)"
    );
    assert!(
        !(rt.public_url.https && url.scheme() == "http"),
        "accepted rd {accepted:?} downgrades to http"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "accepted rd {accepted:?} holds credentials"
    );
    let host = url
        .host_str()
        .unwrap_or_else(|| panic!("accepted rd {accepted:?} has no host"));
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    assert!(
        rt.is_redirect_host(&host),
        "accepted rd {accepted:?} (from {rd:?}) leads to {host:?}, which the configuration does not cover"
    );
    assert_eq!(
        validate_rd(rt, &accepted).as_deref(),
        Ok(accepted.as_str()),
        "accepted rd {accepted:?} is not accepted unchanged a second time"
    );
}

// ---------------------------------------------------------------- sessions

/// A value that opens as a session, a flow or a logout hint round-trips: it
/// is valid at `now`, and sealing what it holds again opens to the same.
/// (Nothing but values sealed by [`keys`] can open; the mutation check below
/// says so for values close to real ones.)
pub fn check_cookie_value(keys: &SessionKeys, value: &str, now: u64) {
    if let Ok(s) = Session::open(keys, value, now) {
        assert!(now < s.expires, "expired session opened: {s:?}");
        assert!(
            s.issued <= now.saturating_add(MAX_CLOCK_SKEW),
            "session from the future opened: {s:?}"
        );
        assert_eq!(
            Session::open(keys, &s.seal(keys), now),
            Ok(s.clone()),
            "session does not round-trip"
        );
    }
    if let Ok(f) = FlowState::open(keys, value, now) {
        assert!(now < f.expires, "expired flow opened: {f:?}");
        let again = FlowState::open(keys, &f.seal(keys), now);
        assert!(again.as_ref() == Ok(&f), "flow does not round-trip: {f:?}");
    }
    if let Ok(h) = LogoutHint::open(keys, value, now) {
        assert!(now < h.expires, "expired logout hint opened: {h:?}");
        let again = LogoutHint::open(keys, &h.seal(keys), now);
        assert!(
            again.as_ref() == Ok(&h),
            "logout hint does not round-trip: {h:?}"
        );
    }
}

/// Nothing opens a value that was not sealed by these keys.
pub fn check_never_opens(keys: &SessionKeys, value: &str, now: u64) {
    if let Ok(s) = Session::open(keys, value, now) {
        panic!("{value:?} opens as a session: {s:?}");
    }
    if let Ok(f) = FlowState::open(keys, value, now) {
        panic!("{value:?} opens as a flow: {f:?}");
    }
    if let Ok(h) = LogoutHint::open(keys, value, now) {
        panic!("{value:?} opens as a logout hint: {h:?}");
    }
}

/// A sealed session opens to itself (when valid at `now`, else with the
/// right reason), never as a flow or a logout hint, and never with foreign keys.
pub fn check_session_round_trip(keys: &SessionKeys, session: &Session, now: u64) {
    let sealed = session.seal(keys);
    let expected = if now >= session.expires {
        Err(Refused::Expired)
    } else if session.issued > now.saturating_add(MAX_CLOCK_SKEW) {
        Err(Refused::FromTheFuture)
    } else {
        Ok(session.clone())
    };
    assert_eq!(
        Session::open(keys, &sealed, now),
        expected,
        "session {session:?}"
    );
    assert_eq!(
        FlowState::open(keys, &sealed, now).map(|_| ()),
        Err(Refused::WrongPurpose),
        "a session opens as a flow"
    );
    assert_eq!(
        LogoutHint::open(keys, &sealed, now).map(|_| ()),
        Err(Refused::WrongPurpose),
        "a session opens as a logout hint"
    );
    assert_eq!(
        Session::open(&foreign_keys(), &sealed, now),
        Err(Refused::ForeignKey),
        "a session opens with keys that did not seal it"
    );
}

/// A value that differs from a sealed one in any way opens as nothing.
pub fn check_mutation(keys: &SessionKeys, sealed: &str, mutated: &str, now: u64) {
    if mutated != sealed {
        check_never_opens(keys, mutated, now);
    }
}

// ------------------------------------------------------------------ config

/// Loading never panics; a configuration that loads has an issuer that is an
/// absolute http(s) URL, at least one session secret of at least 32 bytes, a
/// cookie domain that covers `public_url`'s host, and rules that load alone.
pub fn check_config(toml: &str, env: &dyn Fn(&str) -> Option<String>) {
    let Ok(loaded) = load_str(toml, env) else {
        return;
    };
    let rt = loaded.value;
    let issuer = rt.oidc.issuer.as_str();
    assert!(!issuer.is_empty(), "loaded with an empty issuer");
    let parsed = url::Url::parse(issuer)
        .unwrap_or_else(|e| panic!("loaded with issuer {issuer:?} that does not parse: {e}"));
    assert!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some(),
        "loaded with issuer {issuer:?} that is not an absolute http(s) URL"
    );
    assert!(
        rt.session.secrets.iter().count() >= 1,
        "loaded without a session secret"
    );
    for secret in rt.session.secrets.iter() {
        assert!(
            secret.bytes().len() >= SessionSecret::MIN_LEN,
            "loaded with a session secret of {} bytes",
            secret.bytes().len()
        );
    }
    assert!(
        !rt.oidc.client_id.is_empty(),
        "loaded with an empty client_id"
    );
    assert!(
        !rt.session.cookie_name.is_empty(),
        "loaded with an empty cookie name"
    );
    let public_host = rt.public_url.host.as_str();
    assert!(is_hostname(public_host), "public_url host {public_host:?}");
    if let Some(d) = &rt.session.cookie_domain {
        assert!(
            d.covers(public_host),
            "cookie_domain {d} does not cover {public_host}"
        );
    }
    if let Err(e) = load_rules_str(toml) {
        panic!("the whole configuration loads but its rules alone do not: {e}");
    }
}
