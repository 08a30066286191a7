//! Properties of the parsers that face the network, for all inputs the
//! strategies build from the pieces attackers and proxies actually send. The
//! invariants themselves live in `tests/invariants/` and are shared with the
//! fuzz targets (`fuzz/`), which explore the same code without a shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

mod invariants;

use std::net::IpAddr;
use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pocketgate::config::Runtime;
use pocketgate::domain::is_normal_path;
use pocketgate::oidc::flow::validate_rd;
use pocketgate::policy::{Identity, Outcome, Rules};
use pocketgate::request::{reconstruct, Scheme};
use pocketgate::session::{Session, SessionKeys};
use proptest::prelude::*;
use proptest::sample::select;

use invariants::*;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(runtime);
static RULES_FIXTURE: LazyLock<Rules> = LazyLock::new(rules);
static KEYS: LazyLock<SessionKeys> = LazyLock::new(keys);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Concatenations of 0..max pieces.
fn joined(pieces: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(pieces), 0..max).prop_map(|v| v.concat())
}

// ------------------------------------------------------------- normal form

#[rustfmt::skip]
const PATH_PIECES: &[&str] = &[
    "/", "/", "/", "//", "\\", "a", "b", "api", "health", "~", "-", "_",
    ".", "..", "...", "%2e", "%2E", "%2e%2e", ".%2E", "%2f", "%2F", "%5c", "%5C",
    ";x", ";", "..;", "%3b", "%3B", "%25", "%23", "%3f", "%", "%g0", "%4", "%41", "%61",
    "%7e", "%7E", "%2d", "%20", "%40", "%3a", "%3A", "%00", "%7f", "%c3%a9", "?", "#", " ", "\t", "é",
];

fn tricky_path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => joined(PATH_PIECES.to_vec(), 10).prop_map(|p| format!("/{p}")),
        1 => joined(PATH_PIECES.to_vec(), 10),
        1 => any::<String>(),
    ]
}

/// A path of plain segments: letters, digits and `-_~`, one `/` between them.
fn plain_path(max_segments: usize) -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_~-]{1,8}", 1..=max_segments)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn a_normal_path_holds_no_spelling_trick(path in tricky_path()) {
        check_normal_path(&path);
    }

    #[test]
    fn plain_segments_are_in_normal_form(path in plain_path(5), slash in any::<bool>()) {
        let path = if slash { format!("{path}/") } else { path };
        prop_assert!(is_normal_path(&path), "{path:?}");
        check_normal_path(&path);
    }
}

// ------------------------------------------------------ spelling never helps

/// One way of spelling a path differently without changing where a backend
/// routes it (the `usize` picks the place, the `bool` the case of hex digits).
#[derive(Debug, Clone, Copy)]
enum Respelling {
    /// `/a/b` → `/a/./b`
    DotSegment(usize),
    /// `/a/b` → `/a/x/../b`
    UpAndBack(usize),
    /// `/a/b` → `/a//b`
    DoubleSlash(usize),
    /// `/a/b` → `/%61/b`, hex digits in either case (`%7e`, `%7E`)
    Encode(usize, bool),
    /// `/a%3A` → `/a%3a`
    LowerHex(usize),
}

fn respelling() -> impl Strategy<Value = Respelling> {
    prop_oneof![
        any::<usize>().prop_map(Respelling::DotSegment),
        any::<usize>().prop_map(Respelling::UpAndBack),
        any::<usize>().prop_map(Respelling::DoubleSlash),
        (any::<usize>(), any::<bool>()).prop_map(|(i, upper)| Respelling::Encode(i, upper)),
        any::<usize>().prop_map(Respelling::LowerHex),
    ]
}

/// Apply one respelling to `path` (a path of plain segments, maybe respelled already).
fn respell(path: &str, how: Respelling) -> String {
    let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    let at_slash = |i: usize| slashes[i % slashes.len()] + 1;
    match how {
        Respelling::DotSegment(i) => insert(path, at_slash(i), "./"),
        Respelling::UpAndBack(i) => insert(path, at_slash(i), "x/../"),
        Respelling::DoubleSlash(i) => insert(path, at_slash(i), "/"),
        Respelling::Encode(i, upper) => {
            // Unreserved characters, but not the hex digits of an escape.
            let bytes = path.as_bytes();
            let in_escape =
                |j: usize| (j >= 1 && bytes[j - 1] == b'%') || (j >= 2 && bytes[j - 2] == b'%');
            let candidates: Vec<usize> = (0..bytes.len())
                .filter(|&j| {
                    (bytes[j].is_ascii_alphanumeric() || b"-._~".contains(&bytes[j]))
                        && !in_escape(j)
                })
                .collect();
            let Some(&j) = candidates.get(i % candidates.len().max(1)) else {
                return path.to_string();
            };
            let byte = bytes[j];
            let escape = if upper {
                format!("%{byte:02X}")
            } else {
                format!("%{byte:02x}")
            };
            format!("{}{}{}", &path[..j], escape, &path[j + 1..])
        }
        Respelling::LowerHex(i) => {
            let escapes: Vec<usize> = path.match_indices('%').map(|(j, _)| j).collect();
            let Some(&j) = escapes.get(i % escapes.len().max(1)) else {
                return path.to_string();
            };
            let lower = path[j..j + 3].to_ascii_lowercase();
            format!("{}{}{}", &path[..j], lower, &path[j + 3..])
        }
    }
}

fn insert(path: &str, at: usize, what: &str) -> String {
    format!("{}{}{}", &path[..at], what, &path[at..])
}

/// A path the fixture rules have something to say about, in plain form.
fn interesting_path() -> impl Strategy<Value = String> {
    prop_oneof![
        plain_path(3).prop_map(|p| format!("/api/health{p}")),
        Just("/api/health".to_string()),
        Just("/status".to_string()),
        "[a-z0-9]{5,11}".prop_map(|t| format!("/share/{t}")),
        "[a-z0-9]{3,7}".prop_map(|t| format!("/share/{t}%3A")),
        "[a-z0-9]{1,8}".prop_map(|t| format!("/files/{t}")),
        "[a-z0-9]{0,3}".prop_map(|t| format!("/files/%3A{t}%5B")),
        "[0-9]{1,3}".prop_map(|v| format!("/v{v}/ping")),
        Just("/a-b/c_d~e/f".to_string()),
        plain_path(4),
    ]
}

fn rules_with_prefix(prefix: &str) -> Rules {
    rules_from(&format!(
        r#"
default_policy = "users"
[policies.users]
allowed_groups = ["users"]
[[hosts]]
host = "{APP}"
policy = "users"
bypass_paths = ["{prefix}"]
"#
    ))
}

proptest! {
    #![proptest_config(config(400))]

    /// Spelling never helps (DESIGN.md, decision step 3): for a generated
    /// bypass prefix and a path, no spelling of the path gets a more
    /// permissive answer than the path itself.
    #[test]
    fn spelling_never_helps_with_generated_prefixes(
        prefix in plain_path(3),
        tail in prop_oneof![Just(String::new()), plain_path(2)],
        how in prop::collection::vec(respelling(), 1..5),
    ) {
        let rules = rules_with_prefix(&prefix);
        let plain = format!("{prefix}{tail}");
        let spelled = how.iter().fold(plain.clone(), |p, h| respell(&p, *h));
        prop_assert_eq!(plain_form(&spelled), plain.clone(), "{:?}", how);
        check_spelling(&rules, APP, &plain, &spelled);
    }

    #[test]
    fn spelling_never_helps_with_the_fixture_rules(
        plain in interesting_path(),
        how in prop::collection::vec(respelling(), 1..5),
    ) {
        let spelled = how.iter().fold(plain.clone(), |p, h| respell(&p, *h));
        prop_assert_eq!(plain_form(&spelled), plain.clone(), "{:?}", how);
        check_spelling(&RULES_FIXTURE, APP, &plain, &spelled);
    }

    /// The respellings are not idle: the plain forms do bypass.
    #[test]
    fn plain_paths_under_a_bypass_prefix_bypass(prefix in plain_path(3), tail in plain_path(2)) {
        let rules = rules_with_prefix(&prefix);
        let [anonymous, _] = outcomes(&rules, APP, &format!("{prefix}{tail}"));
        prop_assert_eq!(anonymous, Outcome::Bypass);
    }

    #[test]
    fn spelling_never_helps_for_tricky_paths(path in tricky_path()) {
        check_spelling_of(&RULES_FIXTURE, APP, &path);
    }
}

// ---------------------------------------------------------------------- rd

#[rustfmt::skip]
const RD_SCHEMES: &[&str] = &[
    "https://", "https://", "http://", "HTTPS://", "https:", "https:/", "https:///", "//", "javascript:", "data:", "",
];
#[rustfmt::skip]
const RD_USERINFO: &[&str] = &["", "", "", "user@", "user:pw@", "@", ":@", "a%40b@"];
#[rustfmt::skip]
const RD_HOSTS: &[&str] = &[
    "app.example.test", "APP.Example.Test.", "auth.example.test", "example.test", "x.example.test",
    "a.wild.other.test", "wild.other.test", "other.test", "evil.test", "example.test.evil.test",
    "evilexample.test", "10.1.2.3", "0x0a.1.2.3", "10.1.515", "[::1]", "[::ffff:10.1.2.3]", "%61pp.example.test",
    "b\u{fc}cher.example.test", "xn--bcher-kva.example.test", "app.example.test%2f.evil.test", "",
];
#[rustfmt::skip]
const RD_TAILS: &[&str] = &[
    "", ":443", ":8443", ":", ":99999", "/", "/x", "/x?y=1", "#frag", "?q", "/..//evil.test", "/%2f%2fevil.test",
    "\\evil.test", "@evil.test", "%00", " ", "\t", "/a b", "/\u{e9}",
];

fn rd() -> impl Strategy<Value = String> {
    (
        select(RD_SCHEMES.to_vec()),
        select(RD_USERINFO.to_vec()),
        select(RD_HOSTS.to_vec()),
        joined(RD_TAILS.to_vec(), 3),
    )
        .prop_map(|(s, u, h, t)| format!("{s}{u}{h}{t}"))
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn an_accepted_rd_is_a_covered_https_url(rd in prop_oneof![8 => rd(), 1 => any::<String>()]) {
        check_rd(&RUNTIME, &rd);
    }

    /// Not vacuous: plain URLs on covered hosts are accepted.
    #[test]
    fn urls_on_covered_hosts_are_accepted(
        host in select(vec!["app.example.test", "auth.example.test", "x.example.test", "a.wild.other.test", "10.1.2.3"]),
        path in plain_path(3),
    ) {
        let rd = format!("https://{host}{path}?q=1");
        prop_assert_eq!(validate_rd(&RUNTIME, &rd), Ok(rd.clone()));
        check_rd(&RUNTIME, &rd);
    }
}

// ------------------------------------------------------------ reconstruct

#[rustfmt::skip]
const HOSTS: &[&str] = &[
    "app.example.test", "APP.Example.Test.", "app.example.test:8443", "app.example.test:", "app.example.test:99999",
    "[::1]", "[::1]:8080", "[::FFFF:10.0.0.1]", "[0::1]", "::1", "10.1.2.3", "a b", "a/b", "a@b", "a,b", ".", "..",
    "app..test", "app.example.test]", "5.1]", "_x.test", "b\u{fc}cher.test", "xn--bcher-kva.test", "a%2eb", "",
];
#[rustfmt::skip]
const TARGETS: &[&str] = &[
    "/", "/a", "?b=1", "#b", "?b#c", "/%2e%2e/", "/a/..;/b", "a", " b", "\tb", "//x", "/?", "#", "%", "\\",
];
#[rustfmt::skip]
const SCHEMES: &[&str] = &["https://", "http://", "HTTPS://", "ftp://", "https:", "https:///", ""];
#[rustfmt::skip]
const METHODS: &[&str] = &["GET", "POST", "post", "PROPFIND", "G E T", "", "GET,POST"];
#[rustfmt::skip]
const PROTOS: &[&str] = &["https", "http", "HTTP", "ftp", "", "https,http"];
#[rustfmt::skip]
const HOPS: &[&str] = &[
    "203.0.113.7", "10.9.0.1", "127.0.0.1", "bad", "[::1]:80", "203.0.113.7:1234", "::ffff:203.0.113.8", "", ", ",
];
#[rustfmt::skip]
const PEERS: &[&str] = &["127.0.0.1", "10.9.3.4", "::1", "::ffff:127.0.0.1", "203.0.113.5", "10.10.0.1", "::2"];

/// A header as a proxy or a client might send it: mostly a value of its kind,
/// sometimes one of another kind, sometimes raw bytes.
fn header() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let target = || joined(TARGETS.to_vec(), 4).prop_map(|t| format!("/{t}"));
    let url = || {
        (
            select(SCHEMES.to_vec()),
            select(HOSTS.to_vec()),
            joined(TARGETS.to_vec(), 4),
        )
            .prop_map(|(s, h, t)| format!("{s}{h}{t}"))
    };
    let kind = prop_oneof![
        (
            Just("X-Forwarded-Host"),
            select(HOSTS.to_vec()).prop_map(String::from)
        ),
        (Just("X-Forwarded-Uri"), target()),
        (
            Just("X-Forwarded-Proto"),
            select(PROTOS.to_vec()).prop_map(String::from)
        ),
        (
            Just("X-Forwarded-Method"),
            select(METHODS.to_vec()).prop_map(String::from)
        ),
        (Just("X-Original-URL"), url()),
        (
            Just("X-Original-Method"),
            select(METHODS.to_vec()).prop_map(String::from)
        ),
        (
            Just("X-Forwarded-For"),
            prop::collection::vec(select(HOPS.to_vec()), 1..4).prop_map(|h| h.join(", "))
        ),
        (Just("Host"), select(HOSTS.to_vec()).prop_map(String::from)),
    ];
    prop_oneof![
        8 => kind.prop_map(|(n, v)| (n, v.into_bytes())),
        1 => (select(vec!["X-Forwarded-Host", "X-Forwarded-Uri", "X-Original-URL", "X-Forwarded-For"]), url().prop_map(String::into_bytes)),
        1 => (select(vec!["X-Forwarded-Host", "X-Forwarded-Uri", "X-Original-URL", "X-Forwarded-For"]), prop::collection::vec(any::<u8>(), 0..16)),
    ]
}

fn header_set() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    prop::collection::vec(header(), 0..6)
}

fn map_of(headers: &[(&str, Vec<u8>)]) -> actix_web::http::header::HeaderMap {
    header_map(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice())))
}

fn peer(s: &str) -> IpAddr {
    s.parse().expect("fixture peers are addresses")
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn a_reconstructed_request_is_well_formed(headers in header_set(), p in select(PEERS.to_vec())) {
        check_reconstruct(&map_of(&headers), peer(p), "GET", Scheme::Https);
    }

    /// Not vacuous: a well-formed Caddy header set from the proxy reconstructs.
    #[test]
    fn caddy_header_sets_from_the_proxy_reconstruct(
        host in select(vec!["app.example.test", "App.Example.Test:8443", "[::1]:8080", "10.1.2.3."]),
        path in plain_path(3),
        query in prop_oneof![Just(String::new()), "[a-z=&%0-9]{0,12}".prop_map(|q| format!("?{q}"))],
        p in select(vec!["127.0.0.1", "10.9.3.4", "::1"]),
    ) {
        let uri = format!("{path}{query}");
        let headers = [
            ("X-Forwarded-Proto", b"https".to_vec()),
            ("X-Forwarded-Host", host.as_bytes().to_vec()),
            ("X-Forwarded-Uri", uri.into_bytes()),
            ("X-Forwarded-For", b"203.0.113.7".to_vec()),
        ];
        let map = map_of(&headers);
        let o = reconstruct(&map, peer(p), &trusted_proxies(), "GET", Scheme::Http);
        prop_assert!(o.is_ok(), "{o:?}");
        check_reconstruct(&map, peer(p), "GET", Scheme::Http);
    }
}

// ---------------------------------------------------------------- sessions

fn identity() -> impl Strategy<Value = Identity> {
    (
        "\\PC{0,12}",
        "\\PC{0,12}",
        prop::option::of("\\PC{0,16}"),
        any::<bool>(),
        prop::collection::vec("\\PC{0,8}", 0..4),
    )
        .prop_map(|(subject, user, email, email_verified, groups)| Identity {
            subject,
            user,
            email,
            email_verified,
            name: None,
            groups,
            ..Identity::default()
        })
}

/// A real sealed session with one base64url character replaced, one cut off,
/// or one added.
fn mutated(sealed: &str, at: usize, with: u8, how: u8) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = sealed.as_bytes().to_vec();
    let at = at % bytes.len();
    let c = ALPHABET[usize::from(with) % ALPHABET.len()];
    match how % 3 {
        0 => bytes[at] = c,
        1 => bytes.truncate(at),
        _ => bytes.insert(at, c),
    }
    String::from_utf8(bytes).expect("base64url is ASCII")
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn random_strings_never_open(
        value in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,300}", "A[A-Za-z0-9_-]{40,200}"],
    ) {
        check_never_opens(&KEYS, &value, NOW);
        check_cookie_value(&KEYS, &value, NOW);
    }

    /// The right version and key id in front of random bytes: the AEAD refuses.
    #[test]
    fn random_ciphertexts_behind_a_real_header_never_open(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let real = URL_SAFE_NO_PAD.decode(session().seal(&KEYS)).expect("sealed values are base64url");
        let mut forged = real[..17].to_vec();
        forged.extend(body);
        check_never_opens(&KEYS, &URL_SAFE_NO_PAD.encode(forged), NOW);
    }

    #[test]
    fn sealed_sessions_round_trip(
        identity in identity(),
        issued in NOW - 100_000..NOW + 200,
        lifetime in 0u64..100_000,
        now in NOW - 10..NOW + 10,
    ) {
        let session = Session { identity, issued, expires: issued.saturating_add(lifetime) };
        check_session_round_trip(&KEYS, &session, now);
        check_cookie_value(&KEYS, &session.seal(&KEYS), now);
    }

    #[test]
    fn a_mutated_sealed_session_never_opens(at in any::<usize>(), with in any::<u8>(), how in any::<u8>()) {
        let sealed = session().seal(&KEYS);
        check_mutation(&KEYS, &sealed, &mutated(&sealed, at, with, how), NOW);
        let flow = flow().seal(&KEYS);
        check_mutation(&KEYS, &flow, &mutated(&flow, at, with, how), NOW);
    }
}

// ------------------------------------------------------------------ config

const EXAMPLE: &str = include_str!("../examples/pocketgate.toml");

#[rustfmt::skip]
const ISSUERS: &[&str] = &[
    "https://id.example.test", "http://localhost:1411/", "", " ", "id.example.test", "https://", "ftp://id",
    "https://id.example.test/realms/x", "http://[::1]:1411",
];
#[rustfmt::skip]
const SECRETS: &[&str] = &[
    "", "short", "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcde",
    "0123456789abcdef0123456789abcdef\\nshort", "0123456789abcdef0123456789abcdef\\n\\nfedcba9876543210fedcba9876543210",
    "   \\n  ",
];
#[rustfmt::skip]
const PUBLIC_URLS: &[&str] = &[
    "https://auth.example.test", "http://127.0.0.1:4180", "auth.example.test", "https://auth.example.test/x",
    "https://auth.example.test:8443", "", "https://user@auth.example.test",
];

fn generated_config() -> impl Strategy<Value = String> {
    (
        select(ISSUERS.to_vec()),
        select(SECRETS.to_vec()),
        select(PUBLIC_URLS.to_vec()),
        select(vec!["", "example.test", ".example.test", "other.test", "10.0.0.1"]),
        select(vec!["12h", "30s", "0", "401d", "x"]),
    )
        .prop_map(|(issuer, secret, public_url, domain, lifetime)| {
            let domain = if domain.is_empty() {
                String::new()
            } else {
                format!("cookie_domain = \"{domain}\"\n")
            };
            format!(
                "public_url = \"{public_url}\"\n\n[oidc]\nissuer = \"{issuer}\"\nclient_id = \"pg\"\nclient_auth = \"none\"\n\n[session]\nsecret = \"{secret}\"\nlifetime = \"{lifetime}\"\n{domain}\n[policies.users]\n[[hosts]]\nhost = \"app.example.test\"\npolicy = \"users\"\n"
            )
        })
}

/// The example configuration with some of its lines left out.
fn example_with_lines_dropped() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = EXAMPLE.lines().collect();
    prop::collection::vec(any::<bool>(), lines.len()).prop_map(move |keep| {
        lines
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(l, _)| *l)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn no_env(_: &str) -> Option<String> {
    None
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn a_loaded_configuration_has_an_issuer_and_a_secret(toml in generated_config()) {
        check_config(&toml, &no_env);
        check_config(&toml, &env);
    }

    #[test]
    fn the_example_never_loads_into_something_broken(toml in example_with_lines_dropped()) {
        check_config(&toml, &env);
    }
}

#[test]
fn the_example_configuration_loads_with_secrets_from_the_environment() {
    assert!(pocketgate::config::load_str(EXAMPLE, &env).is_ok());
    check_config(EXAMPLE, &env);
}

// ------------------------------------------- spelling never helps: [[hosts.rules]]

/// Path segments drawn from a small pool, so that generated rules and paths meet.
const SEGMENTS: &[&str] = &["admin", "api", "a", "b", "x1", "u@me", "v:2", "~t", "p-q"];

fn pool_path(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(SEGMENTS.to_vec()), 1..=max)
        .prop_map(|s| format!("/{}", s.join("/")))
}

/// Segments with letters beyond ASCII that case-insensitive matching must
/// get right (`ß`, `ſ`, `İ`, the Kelvin sign, `ﬁ`, `é`): in regexes as
/// written, in request paths percent-encoded as clients send them.
const UNICODE_SEGMENTS: &[&str] = &["straße", "ſt", "İd", "\u{212a}b", "ﬁle", "é"];

/// `s` with every byte beyond ASCII percent-encoded.
fn encode_non_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                let mut buf = [0; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// A request path from the pool and the segments beyond ASCII (encoded).
fn request_path(max: usize) -> impl Strategy<Value = String> {
    let mut pool: Vec<String> = SEGMENTS.iter().map(|s| s.to_string()).collect();
    pool.extend(UNICODE_SEGMENTS.iter().map(|s| encode_non_ascii(s)));
    prop::collection::vec(select(pool), 1..=max).prop_map(|s| format!("/{}", s.join("/")))
}

/// `path` with one letter respelled as Unicode's simple case folding (what
/// a case-insensitive regex equates) reads it: `ß` and `ẞ`, `é` and `É`,
/// `s` as `ſ`, `k` as the Kelvin sign. Never from beyond ASCII to ASCII:
/// that makes a path plainer than its plain form, which may then bypass.
fn flip_unicode(path: &str, at: usize) -> String {
    const PAIRS: &[(&str, &str)] = &[
        ("%C3%9F", "%E1%BA%9E"),
        ("%E1%BA%9E", "%C3%9F"),
        ("%C3%A9", "%C3%89"),
        ("%C3%89", "%C3%A9"),
        ("s", "%C5%BF"),
        ("k", "%E2%84%AA"),
    ];
    let spots: Vec<(usize, &str, &str)> = PAIRS
        .iter()
        .flat_map(|&(from, to)| path.match_indices(from).map(move |(j, _)| (j, from, to)))
        .collect();
    let Some(&(j, from, to)) = spots.get(at % spots.len().max(1)) else {
        return path.to_string();
    };
    format!("{}{to}{}", &path[..j], &path[j + from.len()..])
}

/// `s` with each letter lower-cased where Unicode gives it one lower-case
/// letter (simple case mapping, what a case-insensitive regex equates):
/// `İ` stays, since its lower case is two characters.
fn simple_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

/// A pool path, written with capitals now and then (`/Admin/Api`): rules
/// spelled so must still meet lower-case paths on a case-insensitive host.
fn written_path(max: usize, caps: f64) -> impl Strategy<Value = String> {
    written(pool_path(max), caps)
}

/// A path for a regex: the pool and the segments beyond ASCII, with
/// capitals now and then (`/Straße`, `/É`).
fn written_regex_path(max: usize, caps: f64) -> impl Strategy<Value = String> {
    let mut pool: Vec<&str> = SEGMENTS.to_vec();
    pool.extend(UNICODE_SEGMENTS);
    let path =
        prop::collection::vec(select(pool), 1..=max).prop_map(|s| format!("/{}", s.join("/")));
    written(path, caps)
}

/// `path`, with the first letter of each segment upper-cased (where it has
/// one upper-case letter) if `caps` says so.
fn written(path: impl Strategy<Value = String>, caps: f64) -> impl Strategy<Value = String> {
    (path, prop::bool::weighted(caps)).prop_map(|(p, caps)| {
        if !caps {
            return p;
        }
        p.split('/')
            .map(|seg| {
                let mut c = seg.chars();
                match c.next() {
                    Some(first) => {
                        let mut upper = first.to_uppercase();
                        let first = match (upper.next(), upper.next()) {
                            (Some(u), None) => u,
                            _ => first,
                        };
                        first.to_string() + c.as_str()
                    }
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    })
}

/// One generated `[[hosts.rules]]` entry, as TOML.
fn rule_toml(caps: f64) -> impl Strategy<Value = String> {
    let paths = prop::collection::vec(written_path(2, caps), 0..3);
    let resources = prop::option::of((written_regex_path(2, caps), any::<bool>()).prop_map(
        |(p, exact)| {
            let p = p.replace('.', "\\.");
            if exact {
                format!("^{p}$")
            } else {
                format!("^{p}(/|$)")
            }
        },
    ));
    let methods = prop::option::of(select(vec!["GET", "DELETE"]));
    let networks = any::<bool>();
    let action = select(vec![
        "policy = \"admins\"",
        "policy = \"anyone\"",
        "policy = \"lan\"",
        "action = \"bypass\"",
        "action = \"deny\"",
    ]);
    (paths, resources, methods, networks, action).prop_map(|(paths, res, method, nets, action)| {
        let mut t = String::from("[[hosts.rules]]\n");
        if !paths.is_empty() {
            let quoted: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
            t.push_str(&format!("paths = [{}]\n", quoted.join(", ")));
        }
        if let Some(r) = res {
            t.push_str(&format!("resources = ['{r}']\n"));
        }
        if let Some(m) = method {
            t.push_str(&format!("methods = [\"{m}\"]\n"));
        }
        if nets {
            t.push_str("networks = [\"192.168.0.0/16\"]\n");
        }
        t.push_str(action);
        t.push('\n');
        t
    })
}

/// A generated host with rules, as TOML, and whether it sets
/// `case_insensitive_paths`; `caps`: how often a path is written with capitals.
fn rule_set(
    caseless: impl Strategy<Value = bool>,
    caps: f64,
) -> impl Strategy<Value = (String, bool)> {
    (
        prop::collection::vec(rule_toml(caps), 1..5),
        prop::option::of(written_path(2, caps)),
        caseless,
    )
        .prop_map(|(rules, bypass, caseless)| {
            let bypass = bypass
                .map(|b| format!("bypass_paths = [{b:?}]\n"))
                .unwrap_or_default();
            let caseless_line = if caseless {
                "case_insensitive_paths = true\n"
            } else {
                ""
            };
            let toml = format!(
                r#"
[policies.users]
allowed_groups = ["users", "admins"]
[policies.admins]
allowed_groups = ["admins"]
[policies.anyone]
[policies.lan]
allowed_networks = ["192.168.0.0/16"]
allowed_groups = ["admins"]
[[hosts]]
host = "{APP}"
policy = "users"
{caseless_line}{bypass}
{}"#,
                rules.concat()
            );
            (toml, caseless)
        })
}

/// `path` with the letter case of its `at`-th letter flipped (hex digits of
/// escapes included: `%3a` and `%3A` are one byte).
fn flip_case(path: &str, at: usize) -> String {
    let letters: Vec<usize> = path
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(j, _)| j)
        .collect();
    let Some(&j) = letters.get(at % letters.len().max(1)) else {
        return path.to_string();
    };
    let c = path.as_bytes()[j];
    let flipped = if c.is_ascii_uppercase() {
        c.to_ascii_lowercase()
    } else {
        c.to_ascii_uppercase()
    };
    format!("{}{}{}", &path[..j], char::from(flipped), &path[j + 1..])
}

/// Ways to spell a path that some server reads back as the path itself.
#[derive(Debug, Clone, Copy)]
enum Trick {
    Plain(Respelling),
    /// `/a/b` → `/a/x%2F..%2Fb`: a `..` that only a decoding server sees.
    EncodedUp(usize),
    /// `/a/b` → `/a/x/..;/b`: Tomcat's path parameters.
    ParamUp(usize),
    /// `/a/b` → `/a/x\..\b`: Windows-style separators.
    BackslashUp(usize),
    /// `@`, `:` → `%40`, `%3A` (reserved characters; a decoding server sees them plain).
    EncodeReserved(usize),
    /// `/a/b` → `/a;v=1/b`: a parameter Tomcat drops.
    Param(usize),
}

fn trick() -> impl Strategy<Value = Trick> {
    prop_oneof![
        3 => respelling().prop_map(Trick::Plain),
        1 => any::<usize>().prop_map(Trick::EncodedUp),
        1 => any::<usize>().prop_map(Trick::ParamUp),
        1 => any::<usize>().prop_map(Trick::BackslashUp),
        1 => any::<usize>().prop_map(Trick::EncodeReserved),
        1 => any::<usize>().prop_map(Trick::Param),
    ]
}

fn apply(path: &str, how: Trick) -> String {
    let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    let at_slash = |i: usize| slashes[i % slashes.len()] + 1;
    match how {
        Trick::Plain(r) => respell(path, r),
        Trick::EncodedUp(i) => insert(path, at_slash(i), "x%2F..%2F"),
        Trick::ParamUp(i) => insert(path, at_slash(i), "x/..;/"),
        Trick::BackslashUp(i) => insert(path, at_slash(i), "x\\..\\"),
        Trick::EncodeReserved(i) => {
            let spots: Vec<usize> = path.match_indices(['@', ':']).map(|(j, _)| j).collect();
            let Some(&j) = spots.get(i % spots.len().max(1)) else {
                return path.to_string();
            };
            let esc = if &path[j..=j] == "@" { "%40" } else { "%3A" };
            format!("{}{esc}{}", &path[..j], &path[j + 1..])
        }
        Trick::Param(i) => {
            // Before a '/' that ends a segment (never right after another '/').
            let ends: Vec<usize> = slashes.iter().copied().filter(|&s| s > 0).collect();
            match ends.get(i % ends.len().max(1)) {
                Some(&j) if path.as_bytes()[j - 1] != b'/' => insert(path, j, ";v=1"),
                _ => path.to_string(),
            }
        }
    }
}

/// Every answer `spelled` gets is at most as permissive as the answer its
/// plain form gets, for every identity, client and method.
fn check_rules_spelling(rules: &Rules, plain: &str, spelled: &str) {
    use pocketgate::domain::ClientAddr;
    use pocketgate::policy::{decide, RequestFacts};
    let who = [
        None,
        Some(user_in("bob", &["users"])),
        Some(user_in("alice", &["admins"])),
    ];
    for client in [[203, 0, 113, 9], [192, 168, 1, 5]] {
        for method in ["GET", "DELETE"] {
            for user in &who {
                let facts = |path| RequestFacts {
                    host: APP,
                    path,
                    client: ClientAddr::new(IpAddr::from(client)),
                    method: Some(method),
                };
                let p = decide(rules, &facts(plain), user.as_ref());
                let s = decide(rules, &facts(spelled), user.as_ref());
                assert!(
                    permissiveness(s.outcome) <= permissiveness(p.outcome),
                    "spelling helps: {method} {spelled:?} from {client:?} as {:?} gets {} ({}), its plain form {plain:?} only {} ({})",
                    user.as_ref().map(|u| &u.user),
                    s.outcome,
                    s.rule_name(),
                    p.outcome,
                    p.rule_name(),
                );
            }
        }
    }
}

/// `a` and `b` decide `path` alike, for every identity, client and method.
fn check_same_decisions(a: &Rules, b: &Rules, path: &str) {
    use pocketgate::domain::ClientAddr;
    use pocketgate::policy::{decide, RequestFacts};
    let who = [
        None,
        Some(user_in("bob", &["users"])),
        Some(user_in("alice", &["admins"])),
    ];
    for client in [[203, 0, 113, 9], [192, 168, 1, 5]] {
        for method in ["GET", "DELETE"] {
            for user in &who {
                let facts = RequestFacts {
                    host: APP,
                    path,
                    client: ClientAddr::new(IpAddr::from(client)),
                    method: Some(method),
                };
                let (x, y) = (
                    decide(a, &facts, user.as_ref()),
                    decide(b, &facts, user.as_ref()),
                );
                assert_eq!(
                    (x.outcome, x.rule_name()),
                    (y.outcome, y.rule_name()),
                    "{method} {path:?} from {client:?} as {:?}: the rules as written and in lower case disagree",
                    user.as_ref().map(|u| &u.user),
                );
            }
        }
    }
}

fn user_in(name: &str, groups: &[&str]) -> Identity {
    Identity {
        subject: name.into(),
        user: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Identity::default()
    }
}

proptest! {
    #![proptest_config(config(600))]

    /// Spelling never helps (DESIGN.md, decision step 3) over generated rule
    /// sets: path, resource, method and network rules with every action. On
    /// a host with `case_insensitive_paths`, letter case is a spelling too:
    /// `/ADMIN` and `/%41dmin` never get more than `/admin`.
    #[test]
    fn spelling_never_helps_with_generated_rules(
        (config, caseless) in rule_set(any::<bool>(), 0.3),
        plain in request_path(4),
        trailing in any::<bool>(),
        how in prop::collection::vec(trick(), 1..4),
        flips in prop::collection::vec(any::<usize>(), 1..6),
    ) {
        let rules = rules_from(&config);
        let plain = if trailing { format!("{plain}/") } else { plain };
        let spelled = how.iter().fold(plain.clone(), |p, h| apply(&p, *h));
        check_rules_spelling(&rules, &plain, &spelled);
        if caseless {
            let shouted = flips.iter().fold(plain.clone(), |p, &at| flip_case(&p, at));
            check_rules_spelling(&rules, &plain, &shouted);
            let folded = flips.iter().fold(plain.clone(), |p, &at| flip_unicode(&p, at));
            check_rules_spelling(&rules, &plain, &folded);
            let both = flips
                .iter()
                .fold(spelled, |p, &at| flip_unicode(&flip_case(&p, at), at));
            check_rules_spelling(&rules, &plain, &both);
        }
    }

    /// On a host with `case_insensitive_paths` the letter case a rule is
    /// written in does not matter: `^/Admin$` decides like `^/admin$`, for
    /// every spelling of every path.
    #[test]
    fn the_case_of_a_rule_never_matters_on_a_case_insensitive_host(
        (config, _) in rule_set(Just(true), 0.8),
        plain in request_path(3),
        how in prop::collection::vec(trick(), 0..3),
        flips in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let rules = rules_from(&config);
        let lower = rules_from(&simple_lowercase(&config));
        let spelled = how.iter().fold(plain.clone(), |p, h| apply(&p, *h));
        let spelled = flips
            .iter()
            .fold(spelled, |p, &at| flip_unicode(&flip_case(&p, at), at));
        for path in [&plain, &spelled] {
            check_same_decisions(&rules, &lower, path);
        }
    }

    /// The generated rules are not idle: plain paths reach them.
    #[test]
    fn generated_rules_decide_plain_paths((config, _) in rule_set(any::<bool>(), 0.3), plain in pool_path(3)) {
        let rules = rules_from(&config);
        let facts = pocketgate::policy::RequestFacts {
            host: APP,
            path: &plain,
            client: pocketgate::domain::ClientAddr::new(IpAddr::from([192, 168, 1, 5])),
            method: Some("DELETE"),
        };
        let d = pocketgate::policy::decide(&rules, &facts, None);
        prop_assert!(d.rule != pocketgate::policy::Rule::AmbiguousPath, "{plain}");
    }
}
