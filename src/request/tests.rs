use actix_web::test::TestRequest;
use actix_web::HttpRequest;

use super::*;

fn trusted() -> Networks {
    Networks::new(vec![
        "127.0.0.1/32".parse().unwrap(),
        "10.9.0.0/16".parse().unwrap(),
    ])
}

/// A reconstructed request with its strings owned, so it can outlive the test request.
#[derive(Debug, PartialEq)]
struct Owned {
    method: String,
    scheme: Scheme,
    host: String,
    authority: String,
    path: String,
    query: Option<String>,
    client: ClientAddr,
    url: String,
}

/// An auth request carrying `headers`, each appended in order.
fn request(headers: &[(&str, &str)]) -> HttpRequest {
    headers
        .iter()
        .fold(TestRequest::default(), |req, (k, v)| {
            req.append_header((*k, *v))
        })
        .to_http_request()
}

/// `reconstruct` as the auth endpoints call it, the connection from `peer`.
fn reconstruct_from<'h>(
    req: &'h HttpRequest,
    peer: &str,
) -> Result<OriginalRequest<'h>, RequestError> {
    reconstruct(
        req.headers(),
        peer.parse().unwrap(),
        &trusted(),
        "GET",
        Scheme::Https,
    )
}

fn run(headers: &[(&str, &str)], peer: &str) -> Result<Owned, RequestError> {
    reconstruct_from(&request(headers), peer).map(|o| Owned {
        method: o.method.to_string(),
        scheme: o.scheme,
        host: o.host.to_string(),
        authority: o.authority.to_string(),
        path: o.path.to_string(),
        query: o.query.map(str::to_string),
        client: o.client,
        url: o.url(),
    })
}

/// `X-Forwarded-Host` and `X-Forwarded-Uri` alone, from a trusted proxy.
fn forwarded(host: &str, uri: &str) -> Result<Owned, RequestError> {
    run(
        &[("X-Forwarded-Host", host), ("X-Forwarded-Uri", uri)],
        "127.0.0.1",
    )
}

const CADDY: &[(&str, &str)] = &[
    ("X-Forwarded-Method", "POST"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "Grafana.Example.com:8443"),
    ("X-Forwarded-Uri", "/d/abc?orgId=1&x=%2F"),
    ("X-Forwarded-For", "203.0.113.7"),
];

#[test]
fn caddy_and_traefik_style_headers() {
    let o = run(CADDY, "127.0.0.1").unwrap();
    assert_eq!(o.method, "POST");
    assert_eq!(o.scheme, Scheme::Https);
    assert_eq!(o.host, "grafana.example.com");
    assert_eq!(o.authority, "grafana.example.com:8443");
    assert_eq!(o.path, "/d/abc");
    assert_eq!(o.query.as_deref(), Some("orgId=1&x=%2F"));
    assert_eq!(o.client.to_string(), "203.0.113.7");
    assert_eq!(
        o.url,
        "https://grafana.example.com:8443/d/abc?orgId=1&x=%2F"
    );
}

#[test]
fn nginx_style_headers() {
    let o = run(
        &[
            (
                "X-Original-URL",
                "http://Sonarr.example.com./api/v3?apikey=1",
            ),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-For", "192.168.1.20"),
        ],
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(o.scheme, Scheme::Http);
    assert_eq!(o.host, "sonarr.example.com");
    assert_eq!(o.path, "/api/v3");
    assert_eq!(o.query.as_deref(), Some("apikey=1"));
    assert_eq!(o.client.to_string(), "192.168.1.20");
    // Dot segments are kept as sent, never resolved: the engine must see them.
    let o = run(
        &[(
            "X-Original-URL",
            "https://a.example.com/api/health/../../admin",
        )],
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(o.path, "/api/health/../../admin");
    let o = run(&[("X-Original-URL", "https://a.example.com")], "127.0.0.1").unwrap();
    assert_eq!(o.path, "/");
}

#[test]
fn untrusted_peer_headers_are_ignored() {
    let e = run(CADDY, "203.0.113.50").unwrap_err();
    assert_eq!(
        e,
        RequestError::UntrustedPeer {
            peer: "203.0.113.50".parse().unwrap()
        }
    );
    assert!(e.to_string().contains("trusted_proxies"));
    // IPv4-mapped IPv6 peers are compared as IPv4.
    assert!(run(CADDY, "::ffff:127.0.0.1").is_ok());
}

/// `X-Forwarded-For` lines from a trusted proxy → the client, or `None` when refused.
#[rustfmt::skip]
#[test]
fn client_address_is_read_right_to_left_skipping_trusted_hops() {
    let rows: &[(&[&str], Option<&str>)] = &[
        // The client prepended a spoofed address; the proxy appended the real one.
        (&["10.50.1.2, 203.0.113.7"],             Some("203.0.113.7")),
        // Trusted hops are skipped.
        (&["10.50.1.2, 203.0.113.7, 10.9.1.1"],   Some("203.0.113.7")),
        // All hops trusted: the leftmost.
        (&["10.9.3.3, 10.9.1.1"],                 Some("10.9.3.3")),
        (&["[2001:db8::1]:443"],                  Some("2001:db8::1")),
        (&["::ffff:192.168.1.4"],                 Some("192.168.1.4")),
        // Garbage on the walk fails closed.
        (&["10.50.1.2, not-an-ip"],               None),
        // Garbage beyond the first untrusted hop is never reached.
        (&["garbage, 203.0.113.7"],               Some("203.0.113.7")),
        // No X-Forwarded-For: the peer.
        (&[],                                     Some("127.0.0.1")),
        // Several header lines are one list.
        (&["10.50.1.2", "203.0.113.8"],           Some("203.0.113.8")),
    ];
    for (lines, want) in rows {
        let mut headers = CADDY[..4].to_vec();
        headers.extend(lines.iter().map(|v| ("X-Forwarded-For", *v)));
        match (run(&headers, "127.0.0.1"), want) {
            (Ok(o), Some(client)) => assert_eq!(o.client.to_string(), *client, "{lines:?}"),
            (Err(RequestError::Malformed { header: "X-Forwarded-For", .. }), None) => {}
            (got, _) => panic!("{lines:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn missing_headers_are_named() {
    let e = run(&[], "127.0.0.1").unwrap_err();
    assert!(
        e.to_string().contains("X-Forwarded-Host") && e.to_string().contains("X-Original-URL"),
        "{e}"
    );
    let e = run(&[("X-Forwarded-Uri", "/")], "127.0.0.1").unwrap_err();
    assert_eq!(
        e,
        RequestError::Missing {
            missing: "X-Forwarded-Host"
        }
    );
    let e = run(&[("X-Forwarded-Host", "a.example.com")], "127.0.0.1").unwrap_err();
    assert_eq!(
        e,
        RequestError::Missing {
            missing: "X-Forwarded-Uri"
        }
    );
}

#[rustfmt::skip]
#[test]
fn malformed_headers_are_refused() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // headers                                                                                                    the header named
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "http://evil/x")],                             "X-Forwarded-Uri"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "x")],                                         "X-Forwarded-Uri"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/a b")],                                      "X-Forwarded-Uri"),
        (&[("X-Forwarded-Host", "evil.test/x"), ("X-Forwarded-Uri", "/")],                                           "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "user@a.example.com"), ("X-Forwarded-Uri", "/")],                                    "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a.example.com, evil.test"), ("X-Forwarded-Uri", "/")],                              "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a.example.com:99999"), ("X-Forwarded-Uri", "/")],                                   "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a.example.com:"), ("X-Forwarded-Uri", "/")],                                        "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "[::1"), ("X-Forwarded-Uri", "/")],                                                  "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a..example.com"), ("X-Forwarded-Uri", "/")],                                        "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Host", "b.example.com"), ("X-Forwarded-Uri", "/")],  "X-Forwarded-Host"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/"), ("X-Forwarded-Proto", "evil_protocol")], "X-Forwarded-Proto"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/"), ("X-Forwarded-Proto", "javascript")],    "X-Forwarded-Proto"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/"), ("X-Forwarded-Method", "get")],          "X-Forwarded-Method"),
        (&[("X-Forwarded-Host", "a.example.com"), ("X-Forwarded-Uri", "/"), ("X-Forwarded-Method", "GET\tX")],       "X-Forwarded-Method"),
        (&[("X-Original-URL", "/relative")],                                                                         "X-Original-URL"),
        (&[("X-Original-URL", "ftp://a.example.com/")],                                                              "X-Original-URL"),
        (&[("X-Original-URL", "https://a.example.com?x=1")],                                                         "X-Original-URL"),
        (&[("X-Original-URL", "https:///x")],                                                                        "X-Original-URL"),
        (&[("X-Original-URL", "https://a.example.com/"), ("X-Original-Method", "G3T")],                              "X-Original-Method"),
    ];
    for (headers, header) in cases {
        match run(headers, "127.0.0.1") {
            Err(RequestError::Malformed { header: h, .. }) => assert_eq!(h, *header, "{headers:?}"),
            other => panic!("{headers:?}: expected Malformed({header}), got {other:?}"),
        }
    }
}

#[test]
fn non_ascii_header_bytes_are_refused() {
    let req = TestRequest::default()
        .append_header((
            "X-Forwarded-Host",
            actix_web::http::header::HeaderValue::from_bytes(b"a\xffb.example.com").unwrap(),
        ))
        .append_header(("X-Forwarded-Uri", "/"))
        .to_http_request();
    let e = reconstruct_from(&req, "127.0.0.1").unwrap_err();
    assert!(
        matches!(
            e,
            RequestError::Malformed {
                header: "X-Forwarded-Host",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn defaults_for_optional_headers() {
    let o = forwarded("a.example.com", "/").unwrap();
    assert_eq!(o.method, "GET");
    assert_eq!(
        o.scheme,
        Scheme::Https,
        "the public_url scheme when no X-Forwarded-Proto"
    );
    let o = forwarded("[2001:DB8::1]:8080", "/").unwrap();
    assert_eq!(o.host, "2001:db8::1");
    assert_eq!(o.authority, "[2001:db8::1]:8080");
}

#[test]
fn both_header_sets_must_describe_the_same_request() {
    // nginx sending both, consistently (Authelia-style snippets): fine.
    let o = run(
        &[
            ("X-Original-URL", "https://app.example.com/x?y=1"),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/x?y=1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Method", "GET"),
        ],
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(o.path, "/x");
    let spoofs: [&[(&str, &str)]; 3] = [
        // A client-sent X-Forwarded-* passed through by nginx: it picks another host and a bypass path.
        &[
            ("X-Original-URL", "https://grafana.example.com/admin"),
            ("X-Forwarded-Host", "sonarr.example.com"),
            ("X-Forwarded-Uri", "/api/health"),
        ],
        // A client-sent X-Original-URL passed through by Caddy/Traefik.
        &[
            ("X-Forwarded-Host", "grafana.example.com"),
            ("X-Forwarded-Uri", "/admin"),
            ("X-Original-URL", "https://grafana.example.com/api/health"),
        ],
        &[
            ("X-Original-URL", "https://grafana.example.com/admin"),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Host", "grafana.example.com"),
            ("X-Forwarded-Uri", "/admin"),
            ("X-Forwarded-Method", "POST"),
        ],
    ];
    for spoof in spoofs {
        assert_eq!(
            run(spoof, "127.0.0.1"),
            Err(RequestError::Conflicting),
            "{spoof:?}"
        );
    }
    // Half of the forwarded set next to X-Original-URL is still incomplete.
    let half = [
        ("X-Original-URL", "https://a.example.com/"),
        ("X-Forwarded-Uri", "/"),
    ];
    assert_eq!(
        run(&half, "127.0.0.1").unwrap_err(),
        RequestError::Missing {
            missing: "X-Forwarded-Host"
        }
    );
}

#[test]
fn a_request_in_normal_form_is_borrowed_not_copied() {
    let req = request(&[
        ("X-Forwarded-Host", "grafana.example.com"),
        ("X-Forwarded-Uri", "/d/abc?x=1"),
    ]);
    let o = reconstruct_from(&req, "127.0.0.1").unwrap();
    assert!(matches!(o.host, Cow::Borrowed("grafana.example.com")));
    assert!(matches!(o.authority, Cow::Borrowed("grafana.example.com")));
    assert_eq!((o.path, o.query), ("/d/abc", Some("x=1")));
    let req = request(&[
        ("X-Forwarded-Host", "Grafana.example.com:8443"),
        ("X-Forwarded-Uri", "/"),
    ]);
    let o = reconstruct_from(&req, "127.0.0.1").unwrap();
    assert_eq!(o.host, "grafana.example.com");
    assert_eq!(o.authority, "grafana.example.com:8443");
}

/// Found by the reconstruction property (tests/properties.rs): a raw '#' in
/// the target stayed in the path, and `url()` then named another request.
#[test]
fn a_fragment_in_the_target_is_refused() {
    for headers in [
        &[
            ("X-Forwarded-Host", "a.example.com"),
            ("X-Forwarded-Uri", "/#"),
        ][..],
        &[
            ("X-Forwarded-Host", "a.example.com"),
            ("X-Forwarded-Uri", "/a?b#c"),
        ],
        &[("X-Original-URL", "https://a.example.com/a#b")],
        &[("X-Original-URL", "https://a.example.com/a?b=1#c")],
    ] {
        match run(headers, "127.0.0.1") {
            Err(RequestError::Malformed { reason, .. }) => {
                assert!(reason.contains("'#'"), "{reason}")
            }
            other => panic!("{headers:?}: expected Malformed, got {other:?}"),
        }
    }
}

/// Found by the reconstruct fuzz target: `5.1]` was read as host `5.1` while
/// the URL rebuilt from it kept `5.1]`; only an IPv6 literal has brackets.
#[test]
fn a_stray_bracket_is_not_part_of_a_host_name() {
    for host in [
        "5.1]",
        "app.example.com]",
        "app.example.com]:443",
        "[app.example.com]",
    ] {
        let headers = [("X-Forwarded-Host", host), ("X-Forwarded-Uri", "/")];
        assert!(
            matches!(
                run(&headers, "127.0.0.1"),
                Err(RequestError::Malformed { .. })
            ),
            "{host}"
        );
    }
    let o = forwarded("[::1]:8443", "/").unwrap();
    assert_eq!(
        (o.host.as_str(), o.authority.as_str()),
        ("::1", "[::1]:8443")
    );
}

#[rustfmt::skip]
#[test]
fn served_host_believes_x_forwarded_host_only_from_trusted_proxies() {
    for (headers, peer, want) in [
        (&[("Host", "auth.example.org")][..],                                      "192.0.2.1", Some("auth.example.org")),
        (&[("Host", "Auth.Example.ORG.:8443")][..],                                 "192.0.2.1", Some("auth.example.org")),
        (&[("Host", "127.0.0.1:4180"), ("X-Forwarded-Host", "auth.example.org")][..], "127.0.0.1", Some("auth.example.org")),
        (&[("Host", "127.0.0.1:4180"), ("X-Forwarded-Host", "auth.example.org")][..], "192.0.2.1", Some("127.0.0.1")),
        (&[("Host", "auth.example.org"), ("X-Forwarded-Host", "a, b")][..],           "127.0.0.1", Some("auth.example.org")),
        (&[("Host", "a b")][..],                                                      "127.0.0.1", None),
        (&[][..],                                                                     "127.0.0.1", None),
    ] {
        let req = request(headers);
        let got = served_host(req.headers(), Some(peer.parse().unwrap()), &trusted());
        assert_eq!(got.as_deref(), want, "{headers:?} from {peer}");
    }
}

/// The client a session records at `/callback`: forwarded only through a trusted proxy.
#[rustfmt::skip]
#[test]
fn the_client_of_a_login_is_read_through_trusted_proxies_only() {
    let client = |xff: Option<&str>, peer: &str| {
        let mut req = TestRequest::default();
        if let Some(v) = xff {
            req = req.append_header(("X-Forwarded-For", v));
        }
        client_of(req.to_http_request().headers(), peer.parse().unwrap(), &trusted()).to_string()
    };
    assert_eq!(client(Some("203.0.113.7"), "127.0.0.1"), "203.0.113.7", "trusted proxy");
    assert_eq!(client(Some("203.0.113.7, 10.9.1.1"), "127.0.0.1"), "203.0.113.7", "trusted hops skipped");
    assert_eq!(client(Some("203.0.113.7"), "198.51.100.2"), "198.51.100.2", "untrusted peer: its own address");
    assert_eq!(client(None, "127.0.0.1"), "127.0.0.1", "no header: the peer");
    assert_eq!(client(Some("not-an-ip"), "127.0.0.1"), "127.0.0.1", "garbage: the peer");
}
