//! Decision table tests. Each row reads like DESIGN.md's decision order:
//! host, path, client, who → outcome and the rule that decided.
//!
//! The helpers here (`user`, `facts`, `expect`) serve the tables in `tests/`
//! too.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;

mod rules;
mod step_up;
use crate::config::load_rules_str;
use crate::domain::is_normal_path;
use crate::domain::ClientAddr;

/// The seed setup (examples/pocketgate.toml) plus a few hosts for edge cases
/// (tests/seed_hosts.toml).
fn runtime() -> Rules {
    load_rules_str(&seed_text()).unwrap().value
}

/// The seed setup without its `default_policy`.
fn runtime_without_default() -> Rules {
    let text = seed_text().replace("default_policy = \"users\"", "");
    load_rules_str(&text).unwrap().value
}

fn seed_text() -> String {
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/pocketgate.toml"
    ))
    .unwrap();
    text.push_str(include_str!("tests/seed_hosts.toml"));
    text
}

/// A user with a verified `<name>@example.com` address and these groups.
fn user(name: &str, groups: &[&str]) -> Identity {
    Identity {
        subject: format!("sub-{name}"),
        user: name.into(),
        email: Some(format!("{name}@example.com")),
        email_verified: true,
        name: None,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        claims: BTreeMap::new(),
        sign_in: Default::default(),
    }
}

/// The facts of one request from the client at `ip`.
fn facts<'a>(host: &'a str, path: &'a str, ip: &str, method: Option<&'a str>) -> RequestFacts<'a> {
    let ip: IpAddr = ip.parse().unwrap();
    RequestFacts {
        host,
        path,
        client: ClientAddr::new(ip),
        method,
    }
}

/// Asserts that `rules` answer row `i` (`facts`, `who`) with `want`: the outcome and the rule name;
/// on failure the message carries the engine's own explanation.
fn expect(
    rules: &Rules,
    i: usize,
    facts: &RequestFacts<'_>,
    who: Option<&Identity>,
    want: (Outcome, &str),
) {
    let d = decide(rules, facts, who);
    assert_eq!(
        (d.outcome, d.rule_name().as_str()),
        want,
        "row {i}: {:?} {} {} from {} as {:?}: {}",
        facts.method,
        facts.host,
        facts.path,
        facts.client,
        who.map(|u| &u.user),
        d.reason(rules, facts, who)
    );
}

/// host, path, client → who → (outcome, rule name); the method is GET.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<Identity>,
    Outcome,
    &'static str,
);

/// Decides every row against the seed setup.
fn check(rows: &[Row]) {
    let rt = runtime();
    for (i, (host, path, ip, who, outcome, rule)) in rows.iter().enumerate() {
        expect(
            &rt,
            i,
            &facts(host, path, ip, Some("GET")),
            who.as_ref(),
            (*outcome, rule),
        );
    }
}

use Outcome::{Allow, Bypass, Deny, Login};

#[rustfmt::skip]
#[test]
fn seed_grafana_admins_with_health_bypass_from_monitoring_network() {
    let alice = || Some(user("alice", &["admins", "users"]));
    let bob = || Some(user("bob", &["users"]));
    let dave = || Some(user("dave", &["grafana-admins"]));
    check(&[
        ("grafana.example.com", "/api/health",      "10.50.1.2",   None,    Bypass, "hosts[0].bypass_paths[0]"),
        ("grafana.example.com", "/api/health/",     "10.50.1.2",   None,    Bypass, "hosts[0].bypass_paths[0]"),
        ("grafana.example.com", "/api/health/live", "10.50.1.2",   None,    Bypass, "hosts[0].bypass_paths[0]"),
        // Outside the host's allowed_networks the bypass does not apply.
        ("grafana.example.com", "/api/health",      "10.51.0.1",   None,    Login,  "no session"),
        ("grafana.example.com", "/api/health",      "203.0.113.9", None,    Login,  "no session"),
        // Segment boundary.
        ("grafana.example.com", "/api/healthz",     "10.50.1.2",   None,    Login,  "no session"),
        ("grafana.example.com", "/api/health.json", "10.50.1.2",   None,    Login,  "no session"),
        // Identity and groups.
        ("grafana.example.com", "/",                "203.0.113.9", None,    Login,  "no session"),
        ("grafana.example.com", "/",                "203.0.113.9", alice(), Allow,  "policies.admins.allowed_groups[0]"),
        ("grafana.example.com", "/",                "203.0.113.9", bob(),   Deny,   "policies.admins.allowed_groups"),
        // claim_roles: the grafana-admins group maps to the admins role on this host only.
        ("grafana.example.com", "/",                "203.0.113.9", dave(),  Allow,  "policies.admins.allowed_groups[0]"),
        ("roles.example.com",   "/",                "203.0.113.9", dave(),  Deny,   "policies.admins.allowed_groups"),
    ]);
}

#[rustfmt::skip]
#[test]
fn seed_sonarr_api_bypass_for_the_lan() {
    let bob = || Some(user("bob", &["users"]));
    check(&[
        ("sonarr.example.com", "/api",               "192.168.1.20", None,  Bypass, "hosts[1].bypass_paths[0]"),
        ("sonarr.example.com", "/api/v3/series",     "192.168.1.20", None,  Bypass, "hosts[1].bypass_paths[0]"),
        ("sonarr.example.com", "/feed/calendar.ics", "192.168.1.20", None,  Bypass, "hosts[1].bypass_paths[1]"),
        ("sonarr.example.com", "/apix",              "192.168.1.20", None,  Login,  "no session"),
        ("sonarr.example.com", "/api/v3/series",     "203.0.113.9",  None,  Login,  "no session"),
        ("sonarr.example.com", "/",                  "192.168.1.20", None,  Login,  "no session"),
        ("sonarr.example.com", "/",                  "192.168.1.20", bob(), Allow,  "policies.users.allowed_groups[1]"),
    ]);
}

#[test]
fn bypass_regex_sees_the_path_only() {
    // sonarr's regex is ^/api/system/status$, also covered by /api; use a host where only the regex applies.
    let text = seed_text();
    let sonarr_paths = "bypass_paths = [\"/api\", \"/feed\"]";
    assert!(
        text.contains(sonarr_paths),
        "the seed's Sonarr entry changed"
    );
    let rt = load_rules_str(&text.replace(sonarr_paths, ""))
        .unwrap()
        .value;
    let facts = |path: &'static str| facts("sonarr.example.com", path, "192.168.1.20", Some("GET"));
    let d = decide(&rt, &facts("/api/system/status"), None);
    assert_eq!(
        (d.outcome, d.rule_name().as_str()),
        (Bypass, "hosts[1].bypass_resources[0]")
    );
    for path in [
        "/api/system/status/x",
        "/api/system/statusx",
        "/x/api/system/status",
        "/api/system/status/../../admin",
    ] {
        assert_eq!(decide(&rt, &facts(path), None).outcome, Login, "{path}");
    }
}

#[rustfmt::skip]
#[test]
fn trusted_network_policy_allows_without_identity() {
    check(&[
        ("lan.example.com", "/",         "10.1.2.3",        None,                   Bypass, "policies.bypass.allowed_networks[0]"),
        ("lan.example.com", "/anything", "192.168.7.7",     None,                   Bypass, "policies.bypass.allowed_networks[1]"),
        ("lan.example.com", "/",         "203.0.113.9",     None,                   Login,  "no session"),
        // The bypass policy has no allowed_groups: any signed-in user passes from elsewhere.
        ("lan.example.com", "/",         "203.0.113.9",     Some(user("eve", &[])), Allow,  "policies.bypass (any signed-in user)"),
        // An IPv4-mapped IPv6 address is the same client: ClientAddr stores it as IPv4.
        ("lan.example.com", "/",         "::ffff:10.0.0.1", None,                   Bypass, "policies.bypass.allowed_networks[0]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn host_matching_rules() {
    let bob = || Some(user("bob", &["users"]));
    check(&[
        // Unknown host falls to default_policy "users".
        ("unknown.example.org",  "/", "203.0.113.9", None,  Login, "no session"),
        ("unknown.example.org",  "/", "203.0.113.9", bob(), Allow, "policies.users.allowed_groups[1]"),
        // Wildcards match any depth below the suffix, not the apex.
        ("a.apps.example.com",   "/", "203.0.113.9", bob(), Allow, "policies.users.allowed_groups[1]"),
        ("a.b.apps.example.com", "/", "203.0.113.9", bob(), Allow, "policies.users.allowed_groups[1]"),
    ]);
    let rt = runtime_without_default();
    let facts = facts("unknown.example.org", "/", "10.1.1.1", Some("GET"));
    let d = decide(&rt, &facts, Some(&user("alice", &["admins"])));
    assert_eq!((d.outcome, d.rule), (Deny, Rule::UnknownHost));
}

#[rustfmt::skip]
#[test]
fn allowed_users_and_verified_email() {
    let mut carol = user("carol", &["staff"]);
    let mut dave = user("dave", &["staff"]);
    let mut mallory = user("mallory", &["staff"]);
    mallory.email = Some("dave@example.com".into());
    mallory.email_verified = false;
    let mut erin_not_staff = user("carol", &[]);
    erin_not_staff.subject = "other".into();
    check(&[
        ("wiki.example.com", "/", "203.0.113.9", Some(carol.clone()),             Allow, "policies.staff.allowed_groups[0]"),
        ("wiki.example.com", "/", "203.0.113.9", Some(dave.clone()),              Allow, "policies.staff.allowed_groups[0]"),
        // An unverified e-mail never matches allowed_users.
        ("wiki.example.com", "/", "203.0.113.9", Some(mallory),                   Deny,  "policies.staff.allowed_users"),
        // allowed_users and allowed_groups must both hold.
        ("wiki.example.com", "/", "203.0.113.9", Some(erin_not_staff),            Deny,  "policies.staff.allowed_groups"),
        ("wiki.example.com", "/", "203.0.113.9", Some(user("frank", &["staff"])), Deny,  "policies.staff.allowed_users"),
    ]);
    // E-mail comparison ignores ASCII case.
    carol.email = None;
    dave.email = Some("DAVE@Example.com".into());
    check(&[("wiki.example.com", "/", "203.0.113.9", Some(dave), Allow, "policies.staff.allowed_groups[0]")]);
}

#[rustfmt::skip]
#[test]
fn claim_roles_read_arbitrary_claims_and_verified_email() {
    let mut ops = user("olga", &[]);
    ops.claims
        .insert("department".into(), vec!["sales".into(), "ops".into()]);
    let mut boss = user("boss", &[]);
    boss.email = Some("boss@example.com".into());
    let mut fake_boss = boss.clone();
    fake_boss.email_verified = false;
    check(&[
        ("roles.example.com", "/", "203.0.113.9", Some(ops),                         Allow, "policies.admins.allowed_groups[0]"),
        ("roles.example.com", "/", "203.0.113.9", Some(boss),                        Allow, "policies.admins.allowed_groups[0]"),
        ("roles.example.com", "/", "203.0.113.9", Some(fake_boss),                   Deny,  "policies.admins.allowed_groups"),
        ("roles.example.com", "/", "203.0.113.9", Some(user("nobody", &["Admins"])), Deny,  "policies.admins.allowed_groups"),
    ]);
}

#[test]
fn paths_not_in_normal_form_never_bypass() {
    let tricks = [
        "/api/health/../../admin",
        "/api/health/./x",
        "/api/health/%2e%2e/admin",
        "/api/health/%2E%2E/admin",
        "/api/health%2F..%2Fadmin",
        "/api/health%2fx",
        "/api/health/..;/admin",
        "/api/health/.;x/admin",
        "//api/health",
        "/api//health",
        "/api/health\\..\\admin",
        "/api/health%5c..%5cadmin",
        "/api/health#/x",
        "/api/health%23",
        "/api/health%00",
        "/api/health\u{0}",
        "/api/health%",
        "/api/health%zz",
        "/api/health%252e%252e/admin",
        "/api/health/\u{e9}",
        "/api/health/..%3B/admin",
        "/api/health/..%3b/admin",
        "/api/health/..%20/admin",
        "/api/health/.../admin",
        "/api/health/...;x/admin",
        "/%61pi/health",
        "/api/healt%68",
        "/api/health/%3a",
        "api/health",
        "",
    ];
    let rt = runtime();
    for path in tricks {
        let facts = facts("grafana.example.com", path, "10.50.1.2", Some("GET"));
        let d = decide(&rt, &facts, None);
        assert_eq!(
            d.outcome,
            Login,
            "{path:?} must not bypass: {}",
            d.reason(&rt, &facts, None)
        );
        assert!(!is_normal_path(path), "{path:?}");
    }
    // Even a bypass of "/" (everything) refuses them.
    for path in tricks {
        let facts = facts("open.example.com", path, "203.0.113.9", Some("GET"));
        assert_eq!(decide(&rt, &facts, None).outcome, Login, "{path:?}");
    }
    for ok in [
        "/",
        "/api/health",
        "/api/health/",
        "/a;b/c",
        "/x%20y",
        "/%3A",
        "/a.b/.well-known/x",
        "/.x",
    ] {
        assert!(is_normal_path(ok), "{ok:?}");
    }
}

/// Found by the spelling property (tests/properties.rs): a regex that counts
/// characters bypassed an encoded spelling of a path that does not bypass.
#[test]
fn no_spelling_of_a_path_reaches_a_regex_its_plain_form_misses() {
    let rules = load_rules_str(include_str!("tests/share.toml"))
        .unwrap()
        .value;
    let outcome = |path| {
        let facts = facts("share.example.com", path, "203.0.113.9", Some("GET"));
        decide(&rules, &facts, None).outcome
    };
    assert_eq!(outcome("/share/abcdefgh"), Outcome::Bypass);
    // `%3A` is `:` to a backend that decodes: the 6-character `/share/abcde:`,
    // which does not bypass. The readings disagree about the bypass, so it
    // does not bypass.
    assert_eq!(outcome("/share/abcde%3A"), Outcome::Login);
    assert_eq!(outcome("/share/abcdef"), Outcome::Login);
    assert_eq!(outcome("/share/%61bcdef"), Outcome::Login);
    assert_eq!(outcome("/share/abcde%3a"), Outcome::Login);
}

#[test]
fn case_of_the_path_matters_for_bypass() {
    check(&[(
        "grafana.example.com",
        "/API/health",
        "10.50.1.2",
        None,
        Login,
        "no session",
    )]);
}

#[test]
fn explanations_name_the_rule_and_the_network() {
    let rt = runtime();
    let facts = facts(
        "grafana.example.com",
        "/api/health",
        "10.50.1.2",
        Some("GET"),
    );
    let d = decide(&rt, &facts, None);
    assert_eq!(
        d.reason(&rt, &facts, None),
        "bypass: /api/health matches bypass_paths[0] (/api/health); client 10.50.1.2 in allowed_networks[0] (10.50.0.0/16)"
    );
    let facts = RequestFacts {
        client: ClientAddr::new("203.0.113.9".parse().unwrap()),
        method: Some("GET"),
        ..facts
    };
    let d = decide(&rt, &facts, None);
    assert!(d.bypass_refused);
    assert!(d
        .reason(&rt, &facts, None)
        .contains("not in the host's allowed_networks"));
    let bob = user("bob", &["users"]);
    let facts = RequestFacts { path: "/", ..facts };
    let d = decide(&rt, &facts, Some(&bob));
    assert_eq!(
        d.reason(&rt, &facts, Some(&bob)),
        "user bob (roles: users) has none of policy admins's allowed_groups: admins"
    );
}

#[test]
fn roles_lists_groups_and_mapped_roles() {
    let rt = runtime();
    let dave = user("dave", &["grafana-admins"]);
    let grafana = rt.lookup_host("grafana.example.com");
    assert_eq!(roles(&rt, &dave, grafana), vec!["grafana-admins", "admins"]);
}
