//! The edge as a table: what each raw string becomes, or why it is refused.
//! The tests of each type's behaviour live beside it (`host/tests.rs`, ...).

use std::fmt::Display;

use super::*;

/// What one raw string becomes: `Ok` with the parsed value's spelling, or
/// `Err` with words the refusal's reason must contain (`""`: any refusal).
type Parsed = Result<&'static str, &'static str>;

/// A parser whose value is compared by its spelling.
type Parser = fn(&str) -> Result<String, Invalid>;

fn spelled<T: Display>(parsed: Result<T, Invalid>) -> Result<String, Invalid> {
    parsed.map(|value| value.to_string())
}

fn host(raw: &str) -> Result<String, Invalid> {
    spelled(HostName::parse(raw))
}
fn pattern(raw: &str) -> Result<String, Invalid> {
    spelled(HostPattern::parse(raw))
}
fn network(raw: &str) -> Result<String, Invalid> {
    spelled(Networks::parse_one(raw))
}
fn prefix(raw: &str) -> Result<String, Invalid> {
    spelled(PathPrefix::parse(raw))
}

#[rustfmt::skip]
#[test]
fn raw_strings_are_normalised_or_refused_with_a_reason() {
    let rows: &[(Parser, &str, Parsed)] = &[
        // Host names: lower case, no trailing dot, IDNA; never a port.
        (host,    "Grafana.Example.COM.", Ok("grafana.example.com")),
        (host,    "bücher.example",       Ok("xn--bcher-kva.example")),
        (host,    "::1",                  Ok("::1")),
        (host,    "a.example.com:443",    Err("port")),
        (host,    "a b",                  Err("")),
        (host,    "",                     Err("")),
        (host,    "a..b",                 Err("")),
        (pattern, "*.Example.com",        Ok("*.example.com")),
        (pattern, "*.",                   Err("")),
        (pattern, "x.example.com:80",     Err("port")),
        // Networks: a CIDR (host bits cleared) or a single address.
        (network, "10.1.2.3/8",           Ok("10.0.0.0/8")),
        (network, " 192.168.1.10 ",       Ok("192.168.1.10/32")),
        (network, "10.0.0.0/33",          Err("prefix length")),
        (network, "ten/8",                Err("not an IP")),
        (network, "",                     Err("")),
        // Path prefixes: plain paths in normal form, no trailing slash.
        (prefix,  "/api/",                Ok("/api")),
        (prefix,  "api",                  Err("\"/api\"")),
        (prefix,  "/a/../b",              Err("")),
        (prefix,  "/a//b",                Err("")),
        (prefix,  "/a?b",                 Err("")),
        (prefix,  "/a%2e",                Err("")),
        (prefix,  "/a\\b",                Err("")),
        (prefix,  "/a#b",                 Err("")),
    ];
    for (parse, input, want) in rows {
        match (parse(input), want) {
            (Ok(value), Ok(spelling)) => assert_eq!(value, *spelling, "{input:?}"),
            (Err(e), Err(words)) => assert!(e.reason().contains(words), "{input:?}: {e} does not say {words:?}"),
            (Ok(value), Err(_)) => panic!("{input:?} parsed as {value}, want {want:?}"),
            (Err(e), Ok(_)) => panic!("{input:?} refused ({e}), want {want:?}"),
        }
    }
}
