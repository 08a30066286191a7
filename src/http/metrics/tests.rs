use actix_web::test::TestRequest;

use super::*;
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
    let text = Metrics::default().render(false);
    assert_lines(
        &text,
        &[
            "# TYPE pocketgate_decisions counter",
            r#"pocketgate_decisions_total{endpoint="forward-auth",outcome="allow"} 0"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",outcome="deny"} 0"#,
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
    let us = Duration::from_micros;
    m.decision(Endpoint::ForwardAuth, Outcome::Allow, us(30));
    m.decision(Endpoint::ForwardAuth, Outcome::Allow, us(200));
    m.decision(Endpoint::AuthRequest, Outcome::Login, us(3_000));
    m.decision(Endpoint::AuthRequest, Outcome::Deny, Duration::from_secs(1));
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
            r#"pocketgate_decisions_total{endpoint="forward-auth",outcome="allow"} 2"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",outcome="login"} 1"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",outcome="deny"} 1"#,
            r#"pocketgate_decisions_total{endpoint="auth-request",outcome="allow"} 0"#,
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
