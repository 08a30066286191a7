use super::*;

#[test]
fn wildcards_match_any_depth_but_never_the_apex() {
    let p = HostPattern::parse("*.Example.com").unwrap();
    for (host, matches) in [
        ("a.example.com", true),
        ("a.b.example.com", true),
        ("example.com", false),
        ("badexample.com", false),
        (".example.com", false),
    ] {
        assert_eq!(p.matches(host), matches, "{host}");
    }
}

#[test]
fn cookie_domains_cover_their_subdomains_only() {
    let d = CookieDomain::parse(".Example.com").unwrap();
    assert_eq!(d.as_str(), "example.com");
    for (host, covered) in [
        ("example.com", true),
        ("auth.example.com", true),
        ("badexample.com", false),
    ] {
        assert_eq!(d.covers(host), covered, "{host}");
    }
    assert!(CookieDomain::parse("10.0.0.1").is_err());
}
