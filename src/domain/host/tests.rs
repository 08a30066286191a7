use super::*;

#[test]
fn wildcards_match_any_depth_but_never_the_apex() {
    let p = HostPattern::parse("*.Example.com").unwrap();
    assert_eq!(p.to_string(), "*.example.com");
    assert!(p.matches("a.example.com"));
    assert!(p.matches("a.b.example.com"));
    assert!(!p.matches("example.com"));
    assert!(!p.matches("badexample.com"));
    assert!(!p.matches(".example.com"));
}

#[test]
fn cookie_domains_cover_their_subdomains_only() {
    let d = CookieDomain::parse(".Example.com").unwrap();
    assert_eq!(d.as_str(), "example.com");
    assert!(d.covers("example.com"));
    assert!(d.covers("auth.example.com"));
    assert!(!d.covers("badexample.com"));
    assert!(CookieDomain::parse("10.0.0.1").is_err());
}
