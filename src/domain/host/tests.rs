use super::*;

#[test]
fn host_names_are_normalised_and_ports_refused() {
    assert_eq!(
        HostName::parse("Grafana.Example.COM.").unwrap().as_str(),
        "grafana.example.com"
    );
    assert_eq!(
        HostName::parse("bücher.example").unwrap().as_str(),
        "xn--bcher-kva.example"
    );
    assert!(HostName::parse("a.example.com:443")
        .unwrap_err()
        .reason()
        .contains("port"));
    assert!(HostName::parse("a b").is_err());
    assert!(HostName::parse("").is_err());
    assert!(HostName::parse("a..b").is_err());
    assert_eq!(HostName::parse("::1").unwrap().as_str(), "::1");
}

#[test]
fn wildcards_match_any_depth_but_never_the_apex() {
    let p = HostPattern::parse("*.Example.com").unwrap();
    assert_eq!(p.to_string(), "*.example.com");
    assert!(p.matches("a.example.com"));
    assert!(p.matches("a.b.example.com"));
    assert!(!p.matches("example.com"));
    assert!(!p.matches("badexample.com"));
    assert!(!p.matches(".example.com"));
    assert!(HostPattern::parse("*.").is_err());
    assert!(HostPattern::parse("x.example.com:80")
        .unwrap_err()
        .reason()
        .contains("port"));
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
