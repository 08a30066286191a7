//! `[[session.domains]]`: more registrable domains, each with its own login host.

use super::*;

/// `base` (main domain example.com) plus one `[[session.domains]]` entry per
/// `(cookie_domain, public_url)`, a `None` leaving the key out.
fn with_domains(entries: &[(Option<&str>, Option<&str>)], extra: &str) -> String {
    let mut toml = base(extra);
    for (domain, url) in entries {
        toml.push_str("\n[[session.domains]]\n");
        if let Some(d) = domain {
            toml.push_str(&format!("cookie_domain = {d:?}\n"));
        }
        if let Some(u) = url {
            toml.push_str(&format!("public_url = {u:?}\n"));
        }
    }
    toml
}

const ORG: (Option<&str>, Option<&str>) = (Some("example.org"), Some("https://auth.example.org"));

#[test]
fn an_entry_adds_a_login_domain_after_the_main_one() {
    let loaded = load(&with_domains(&[ORG], "")).unwrap();
    let rt = loaded.value;
    let domains: Vec<(&str, Option<&str>)> = rt
        .login_domains
        .iter()
        .map(|d| {
            (
                d.public_url.origin.as_str(),
                d.cookie_domain.as_ref().map(|c| c.as_str()),
            )
        })
        .collect();
    assert_eq!(
        domains,
        [
            ("https://auth.example.com", Some("example.com")),
            ("https://auth.example.org", Some("example.org")),
        ]
    );
    assert_eq!(
        rt.login_domains.iter().nth(1).unwrap().redirect_uri(),
        "https://auth.example.org/callback"
    );
    assert_eq!(rt.session.domains.len(), 1);
}

#[rustfmt::skip]
#[test]
fn a_host_logs_in_on_the_domain_whose_cookie_it_sees() {
    let rt = load(&with_domains(&[ORG, (Some("shop.example.net"), Some("http://login.shop.example.net:8080"))], "")).unwrap().value;
    for (host, origin) in [
        ("app.example.org",        "https://auth.example.org"),
        ("example.org",            "https://auth.example.org"),
        ("auth.example.org",       "https://auth.example.org"),
        ("grafana.example.com",    "https://auth.example.com"),
        ("a.shop.example.net",     "http://login.shop.example.net:8080"),
        ("example.net",            "https://auth.example.com"), // under no cookie domain: the main one
        ("notexample.org",         "https://auth.example.com"),
        ("evil.example.net",       "https://auth.example.com"),
    ] {
        assert_eq!(rt.login_domain_for(host).public_url.origin, origin, "{host}");
    }
    for (served, origin) in [
        (Some("auth.example.org"), "https://auth.example.org"),
        (Some("login.shop.example.net"), "http://login.shop.example.net:8080"),
        (Some("auth.example.com"), "https://auth.example.com"),
        (Some("app.example.org"),  "https://auth.example.com"), // not a login host
        (None,                     "https://auth.example.com"),
    ] {
        assert_eq!(rt.login_domain_served_at(served).public_url.origin, origin, "{served:?}");
    }
}

#[rustfmt::skip]
#[test]
fn redirect_hosts_include_every_domain() {
    let rt = load(&with_domains(&[ORG], "")).unwrap().value;
    for (host, ok) in [
        ("app.example.org",   true),
        ("auth.example.org",  true),
        ("example.org",       true),
        ("a.b.example.org",   true),
        ("app.example.com",   true),
        ("evil.example.net",  false),
        ("example.org.evil",  false),
        ("badexample.org",    false),
    ] {
        assert_eq!(rt.is_redirect_host(host), ok, "{host}");
    }
}

#[test]
fn missing_keys_are_named_with_the_entry_index() {
    let e = err(&with_domains(
        &[
            ORG,
            (None, Some("https://auth.example.net")),
            (Some("example.io"), None),
        ],
        "",
    ));
    assert_mentions(&e, &["session.domains[1].cookie_domain: missing"]);
    assert_mentions(&e, &["session.domains[2].public_url: missing"]);
    assert!(!e.contains("session.domains[0]"), "{e}");
}

#[rustfmt::skip]
#[test]
fn overlapping_domains_are_refused() {
    for (entries, key, other) in [
        (vec![(Some("example.com"), Some("https://login.example.com"))],            "session.domains[0].cookie_domain", "session.cookie_domain"),
        (vec![(Some("sub.example.com"), Some("https://auth.sub.example.com"))],     "session.domains[0].cookie_domain", "session.cookie_domain"),
        (vec![(Some("com"), Some("https://login.example.com"))],                    "session.domains[0].cookie_domain", "session.cookie_domain"),
        (vec![ORG, (Some("EXAMPLE.org"), Some("https://login.example.org"))],       "session.domains[1].cookie_domain", "session.domains[0].cookie_domain"),
        (vec![ORG, (Some("a.example.org"), Some("https://auth.a.example.org"))],    "session.domains[1].cookie_domain", "session.domains[0].cookie_domain"),
    ] {
        let e = err(&with_domains(&entries, ""));
        assert!(e.contains(&format!("{key}: ")) && e.contains(&format!("overlaps {other}")), "{e}");
    }
}

#[test]
fn public_url_must_be_under_its_cookie_domain() {
    assert_refused(&with_domains(
        &[(Some("example.org"), Some("https://auth.example.net"))],
        "",
    ), &["session.domains[0].cookie_domain: \"example.org\" does not cover session.domains[0].public_url's host \"auth.example.net\""]);
}

#[rustfmt::skip]
#[test]
fn public_url_is_checked_like_the_main_one() {
    for (url, says) in [
        ("auth.example.org",               "session.domains[0].public_url: \"auth.example.org\" is not an absolute http(s) URL"),
        ("ftp://auth.example.org",         "is not an absolute http(s) URL"),
        ("https://auth.example.org/pg",    "session.domains[0].public_url: \"https://auth.example.org/pg\" must be an origin"),
        ("https://u:p@auth.example.org",   "must be an origin"),
    ] {
        let e = err(&with_domains(&[(Some("example.org"), Some(url))], ""));
        assert!(e.contains(says), "{url}: {e}");
    }
    assert_refused(&with_domains(&[(Some("10.0.0.1"), Some("https://10.0.0.1"))], ""), &["session.domains[0].cookie_domain: \"10.0.0.1\" is not a domain name"]);
}

#[test]
fn an_entry_needs_the_main_cookie_domain() {
    let toml = with_domains(&[ORG], "").replace("cookie_domain = \"example.com\"\n", "");
    let e = err(&toml);
    assert_mentions(
        &e,
        &["session.cookie_domain: missing", "[[session.domains]]"],
    );
}

#[test]
fn an_unknown_key_in_an_entry_is_named() {
    let toml = with_domains(&[ORG], "").replace(
        "public_url = \"https://auth.example.org\"",
        "public_url = \"https://auth.example.org\"\ncookieDomain = \"x\"\ncallback = \"y\"",
    );
    let e = err(&toml);
    assert_mentions(&e, &["session.domains[0].cookieDomain: unknown key (did you mean `session.domains[0].cookie_domain`?)"]);
    assert_mentions(&e, &["session.domains[0].callback: unknown key"]);
}

#[test]
fn a_host_under_no_cookie_domain_is_warned_about() {
    let loaded = load(&with_domains(
        &[ORG],
        "[[hosts]]\nhost = \"app.example.org\"\npolicy = \"users\"\n[[hosts]]\nhost = \"*.example.net\"\npolicy = \"users\"\n[[hosts]]\nhost = \"auth.example.com\"\npolicy = \"users\"\n",
    ))
    .unwrap();
    let warned = outside_cookie_domains(&loaded.warnings);
    assert_eq!(warned.len(), 1, "{:?}", loaded.warnings);
    assert!(
        warned[0].starts_with("hosts[1].host: *.example.net")
            && warned[0].contains("example.com, example.org"),
        "{warned:?}"
    );
    // Without [[session.domains]] too: cookie_domain alone does not reach
    // app.example.org, whose users would loop through the sign-in.
    let loaded = load(&base(
        "[[hosts]]\nhost = \"app.example.org\"\npolicy = \"users\"\n",
    ))
    .unwrap();
    let warned = outside_cookie_domains(&loaded.warnings);
    assert_eq!(warned.len(), 1, "{:?}", loaded.warnings);
    assert!(
        warned[0].contains("app.example.org") && warned[0].contains("portal loop"),
        "{warned:?}"
    );
}

/// The warnings about a host that no cookie domain covers.
fn outside_cookie_domains(warnings: &[String]) -> Vec<&String> {
    warnings
        .iter()
        .filter(|w| w.contains("under none of the cookie domains"))
        .collect()
}
