use std::time::Duration;

use actix_web::test::TestRequest;

use super::*;
use crate::config::load_rules_str;
use crate::policy::HostMatch;
use crate::request::{self, Scheme};

/// Whether `text` holds exactly this line.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(has_line(text, line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn a_fresh_registry_shows_every_series_at_zero() {
    let m = Metrics::default();
    // What starting the application does with its configuration.
    let _ = m.decisions(&Rules::default());
    let text = m.render(false);
    assert_lines(
        &text,
        &[
            "# TYPE pocketgate_decisions counter",
            r#"pocketgate_decisions_total{endpoint="forward-auth",host="(other)",outcome="allow"} 0"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",host="(other)",outcome="deny"} 0"#,
            "# TYPE pocketgate_server_errors counter",
            r#"pocketgate_server_errors_total{group="auth"} 0"#,
            r#"pocketgate_server_errors_total{group="other"} 0"#,
            "# TYPE pocketgate_bad_requests counter",
            r#"pocketgate_bad_requests_total{endpoint="forward-auth",reason="no_peer"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="auth-request",reason="conflicting_description"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="logout",reason="bad_rd"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="callback",reason="bad_flow"} 0"#,
            r#"pocketgate_login_events_total{event="started"} 0"#,
            "# TYPE pocketgate_decision_duration_seconds histogram",
            "# UNIT pocketgate_decision_duration_seconds seconds",
            r#"pocketgate_decision_duration_seconds_bucket{le="+Inf"} 0"#,
            "pocketgate_decision_duration_seconds_count 0",
            "# TYPE pocketgate_provider_ready gauge",
            "pocketgate_provider_ready 0",
            "# TYPE pocketgate_build_info gauge",
            &format!(
                r#"pocketgate_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        ],
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Only the combinations a handler can produce: 5 reasons on 2 auth
    // endpoints, bad_rd on login and logout, bad_flow on callback.
    let bad = text
        .lines()
        .filter(|l| l.starts_with("pocketgate_bad_requests_total{"))
        .count();
    assert_eq!(bad, 13, "{text}");
    assert!(!text.contains(r#"endpoint="login",reason="untrusted_peer""#));
}

#[test]
fn counts_show_up_as_exact_sample_lines() {
    let m = Metrics::default();
    let d = m.decisions(&Rules::default());
    let us = Duration::from_micros;
    let other = HostMatch::Unknown;
    d.count(Endpoint::ForwardAuth, other, Outcome::Allow, us(30));
    d.count(Endpoint::ForwardAuth, other, Outcome::Allow, us(200));
    d.count(Endpoint::AuthRequest, other, Outcome::Login, us(3_000));
    d.count(
        Endpoint::AuthRequest,
        other,
        Outcome::Deny,
        Duration::from_secs(1),
    );
    m.bad_request(Endpoint::AuthRequest, BadRequestReason::untrusted_peer);
    m.bad_request(Endpoint::AuthRequest, BadRequestReason::untrusted_peer);
    m.bad_request(BadRequestEndpoint::Login, BadRequestReason::bad_rd);
    m.bad_request(BadRequestEndpoint::Callback, BadRequestReason::bad_flow);
    m.login(LoginEvent::Started);
    m.login(LoginEvent::Completed);
    m.login(LoginEvent::Completed);
    let text = m.render(true);
    assert_lines(
        &text,
        &[
            r#"pocketgate_decisions_total{endpoint="forward-auth",host="(other)",outcome="allow"} 2"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",host="(other)",outcome="login"} 1"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",host="(other)",outcome="deny"} 1"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",host="(other)",outcome="allow"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="auth-request",reason="untrusted_peer"} 2"#,
            r#"pocketgate_bad_requests_total{endpoint="forward-auth",reason="untrusted_peer"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="login",reason="bad_rd"} 1"#,
            r#"pocketgate_bad_requests_total{endpoint="logout",reason="bad_rd"} 0"#,
            r#"pocketgate_bad_requests_total{endpoint="callback",reason="bad_flow"} 1"#,
            r#"pocketgate_login_events_total{event="started"} 1"#,
            r#"pocketgate_login_events_total{event="completed"} 2"#,
            r#"pocketgate_login_events_total{event="failed"} 0"#,
            // Cumulative buckets: 30 µs, 200 µs, 3 ms, then 1 s above every bound.
            r#"pocketgate_decision_duration_seconds_bucket{le="0.00005"} 1"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="0.0001"} 1"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="0.00025"} 2"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="0.0025"} 2"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="0.01"} 3"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="0.1"} 3"#,
            r#"pocketgate_decision_duration_seconds_bucket{le="+Inf"} 4"#,
            "pocketgate_decision_duration_seconds_count 4",
            "pocketgate_decision_duration_seconds_sum 1.00323",
            "pocketgate_provider_ready 1",
            &format!(
                r#"pocketgate_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        ],
    );
    // The gauge follows the provider at every scrape.
    assert!(has_line(&m.render(false), "pocketgate_provider_ready 0"));
}

#[test]
fn a_combination_no_handler_produces_is_still_counted() {
    let m = Metrics::default();
    m.bad_request(BadRequestEndpoint::Login, BadRequestReason::untrusted_peer);
    assert_lines(
        &m.render(true),
        &[r#"pocketgate_bad_requests_total{endpoint="login",reason="untrusted_peer"} 1"#],
    );
}

/// One refused request: peer, headers, and the reason it is counted under.
type Row = (
    &'static str,
    &'static [(&'static str, &'static str)],
    BadRequestReason,
);

/// The reason each way `request::reconstruct` refuses a request is counted under.
#[rustfmt::skip]
#[test]
fn request_errors_map_to_bounded_reasons() {
    use BadRequestReason as R;
    let rows: &[Row] = &[
        // peer           headers                                                              reason
        ("203.0.113.9", &[("X-Original-URL", "https://a.example.com/")],                       R::untrusted_peer),
        ("127.0.0.1",   &[],                                                                    R::missing_header),
        ("127.0.0.1",   &[("X-Forwarded-Uri", "/")],                                            R::missing_header),
        ("127.0.0.1",   &[("X-Forwarded-Host", "a.example.com")],                               R::missing_header),
        ("127.0.0.1",   &[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "x")],     R::bad_header),
        ("127.0.0.1",   &[("X-Original-URL", "a.example.com/")],                                R::bad_header),
        ("127.0.0.1",   &[("X-Original-URL", "https://a.example.com/"), ("X-Forwarded-For", "nope")], R::bad_header),
        ("127.0.0.1",   &[("X-Original-URL", "https://a.example.com/"), ("X-Original-Method", "g3t")], R::bad_header),
        ("127.0.0.1",   &[("X-Original-URL", "https://a.example.com/admin"),
                          ("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/public")], R::conflicting_description),
    ];
    let trusted = crate::domain::Networks::new(vec!["127.0.0.1/32".parse().unwrap()]);
    for (peer, headers, want) in rows {
        let mut req = TestRequest::default();
        for h in *headers {
            req = req.append_header(*h);
        }
        let req = req.to_http_request();
        let err = request::reconstruct(req.headers(), peer.parse().unwrap(), &trusted, "GET", Scheme::Https)
            .expect_err("a refused request");
        assert_eq!(BadRequestReason::from(&err), *want, "{headers:?}: {err}");
    }
}

/// Three hosts, no `default_policy`: the shape of a small configuration.
const HOSTS: &str = r#"
[policies.users]
allowed_groups = ["users"]
[[hosts]]
host = "app.example.test"
policy = "users"
[[hosts]]
host = "*.wild.example.test"
policy = "users"
[[hosts]]
host = "gone.example.test"
policy = "users"
"#;

fn rules(text: &str) -> Rules {
    load_rules_str(text).unwrap().value
}

/// The `pocketgate_decisions_total` sample lines of `text`.
fn decision_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("pocketgate_decisions_total{"))
        .collect()
}

/// Which `host` label a request's host is counted under.
#[rustfmt::skip]
#[test]
fn decisions_are_counted_under_the_host_entry_that_matched() {
    let rules = rules(HOSTS);
    let with_default = self::rules(&format!("default_policy = \"users\"\n{HOSTS}"));
    let rows: &[(&Rules, &str, &str)] = &[
        // rules          request host               host label
        (&rules,          "app.example.test",        "app.example.test"),
        (&rules,          "a.wild.example.test",     "*.wild.example.test"),
        (&rules,          "b.a.wild.example.test",   "*.wild.example.test"),
        (&rules,          "unknown.example.test",    "(other)"),
        (&rules,          "app.example.test.evil",   "(other)"),
        (&with_default,   "unknown.example.test",    "(other)"),
        (&with_default,   "app.example.test",        "app.example.test"),
    ];
    for (rules, host, label) in rows {
        let m = Metrics::default();
        let d = m.decisions(rules);
        d.count(Endpoint::AuthRequest, rules.lookup_host(host), Outcome::Deny, Duration::ZERO);
        let want = format!(r#"pocketgate_decisions_total{{endpoint="auth-request",host="{label}",outcome="deny"}} 1"#);
        let text = m.render(false);
        assert!(has_line(&text, &want), "{host}: missing {want}");
        let counted: Vec<_> = decision_lines(&text).into_iter().filter(|l| !l.ends_with(" 0")).collect();
        assert_eq!(counted.len(), 1, "{host}: {counted:?}");
    }
}

#[test]
fn every_host_has_its_series_from_the_start_and_each_outcome_its_own() {
    let m = Metrics::default();
    let rules = rules(HOSTS);
    let d = m.decisions(&rules);
    // 3 hosts and (other), 2 endpoints, 5 outcomes.
    assert_eq!(decision_lines(&m.render(false)).len(), 4 * 2 * 5);
    let app = rules.lookup_host("app.example.test");
    for (n, outcome) in OUTCOMES.into_iter().enumerate() {
        for _ in 0..=n {
            d.count(Endpoint::ForwardAuth, app, outcome, Duration::ZERO);
        }
    }
    let text = m.render(false);
    for (n, outcome) in OUTCOMES.into_iter().enumerate() {
        let want = format!(
            r#"pocketgate_decisions_total{{endpoint="forward-auth",host="app.example.test",outcome="{}"}} {}"#,
            outcome.as_str(),
            n + 1
        );
        assert!(has_line(&text, &want), "missing {want} in:\n{text}");
    }
    assert!(has_line(
        &text,
        "pocketgate_decision_duration_seconds_count 15"
    ));
}

/// Hostile input: whatever `Host` values clients send, the series stay the
/// configuration's.
#[test]
fn a_thousand_random_hosts_add_no_series() {
    let m = Metrics::default();
    let rules = rules(HOSTS);
    let d = m.decisions(&rules);
    let before = decision_lines(&m.render(false)).len();
    // A small xorshift: the same "random" hosts on every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..1_000 {
        let r = next();
        let host = match i % 4 {
            0 => format!("h{r:x}.example.test"),
            1 => format!("x{r:x}.wild.example.test"),
            2 => format!("{r:x}"),
            _ => format!("app.example.test.{r:x}"),
        };
        let outcome = OUTCOMES[(r % 5) as usize];
        d.count(
            Endpoint::ForwardAuth,
            rules.lookup_host(&host),
            outcome,
            Duration::ZERO,
        );
    }
    let text = m.render(false);
    let lines = decision_lines(&text);
    assert_eq!(lines.len(), before, "{lines:?}");
    let total: u64 = lines
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, 1_000);
    for l in &lines {
        assert!(
            [
                "app.example.test",
                "*.wild.example.test",
                "gone.example.test",
                "(other)"
            ]
            .iter()
            .any(|h| l.contains(&format!("host=\"{h}\""))),
            "{l}"
        );
    }
}

/// A reload resolves the new configuration's hosts: a host that stays keeps
/// counting where it was, a new one appears at 0, a removed one keeps its
/// last count.
#[test]
fn a_reload_adds_new_hosts_and_keeps_the_counts_of_the_others() {
    let m = Metrics::default();
    let first = rules(HOSTS);
    let d = m.decisions(&first);
    for host in ["app.example.test", "gone.example.test"] {
        d.count(
            Endpoint::ForwardAuth,
            first.lookup_host(host),
            Outcome::Allow,
            Duration::ZERO,
        );
    }
    let second = rules(&HOSTS.replace("gone.example.test", "new.example.test"));
    let d = m.decisions(&second);
    d.count(
        Endpoint::ForwardAuth,
        second.lookup_host("app.example.test"),
        Outcome::Allow,
        Duration::ZERO,
    );
    let line = |host: &str, n: u64| {
        format!(
            r#"pocketgate_decisions_total{{endpoint="forward-auth",host="{host}",outcome="allow"}} {n}"#
        )
    };
    assert_lines(
        &m.render(false),
        &[
            &line("app.example.test", 2),
            &line("new.example.test", 0),
            &line("gone.example.test", 1),
        ],
    );
}

/// Which group a 5xx answer to each path is counted under.
#[rustfmt::skip]
#[test]
fn server_errors_are_counted_by_group_of_endpoints() {
    use ServerErrorGroup as G;
    let rows: &[(&str, ServerErrorGroup)] = &[
        ("/forward-auth",        G::Auth),
        ("/auth-request",        G::Auth),
        ("/whoami",              G::Auth),
        ("/login",               G::Login),
        ("/callback",            G::Login),
        ("/logout",              G::Login),
        ("/logout/done",         G::Login),
        ("/",                    G::Login),
        ("/backchannel-logout",  G::Backchannel),
        ("/scim/v2/Users",       G::Scim),
        ("/scim/v2",             G::Scim),
        ("/scim/v2x",            G::Other),
        ("/readyz",              G::Readiness),
        ("/metrics",             G::Other),
        ("/forward-auth/x",      G::Other),
        ("/demo/app.example.test/", G::Other),
    ];
    let m = Metrics::default();
    for (path, group) in rows {
        assert_eq!(ServerErrorGroup::of(path), *group, "{path}");
        m.server_error(ServerErrorGroup::of(path));
    }
    assert_lines(
        &m.render(false),
        &[
            r#"pocketgate_server_errors_total{group="auth"} 3"#,
            r#"pocketgate_server_errors_total{group="login"} 5"#,
            r#"pocketgate_server_errors_total{group="backchannel"} 1"#,
            r#"pocketgate_server_errors_total{group="scim"} 2"#,
            r#"pocketgate_server_errors_total{group="readiness"} 1"#,
            r#"pocketgate_server_errors_total{group="other"} 4"#,
        ],
    );
}
