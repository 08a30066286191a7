//! The Grafana dashboard (examples/grafana/) and the Prometheus rules
//! (examples/prometheus/) name only metrics and labels that `/metrics` exports: scrape
//! the running application and compare every `pocketgate_*` name the files use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dev_idp::Fault;
use pocketgate::reload::Reloader;

use crate::common::{
    ask, client, forward_auth_status, metrics_text, spawn_plain, spawn_with_idp, Ask, TestApp, JSON,
};

/// The files whose metric names must exist.
const FILES: [&str; 3] = [
    "examples/grafana/pocketgate.json",
    "examples/prometheus/pocketgate-rules.yml",
    "examples/prometheus/pocketgate-rules.test.yml",
];

/// Every series name a query can use: the names of the samples, and for
/// each `# TYPE` family the names its type gives its samples (a histogram
/// with no observation in a labelled series still has `_bucket`, `_sum`,
/// `_count`; a counter's samples end in `_total`). A family's bare name is
/// not a series for a counter or a histogram, so it is not in the set.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every `pocketgate_*` name written in `text` (a name's characters follow
/// `pocketgate_`, and none precedes it: `xpocketgate_a` is not one).
fn named(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.match_indices("pocketgate_")
        .filter(|(at, _)| !text[..*at].ends_with(is_name))
        .map(|(at, prefix)| {
            let rest = &text[at + prefix.len()..];
            let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
            &text[at..at + prefix.len() + len]
        })
        .filter(|name| name.len() > "pocketgate_".len())
        .map(str::to_string)
        .collect()
}

/// Labels Prometheus adds to every series, or a histogram's bucket bound.
const SCRAPE_LABELS: [&str; 3] = ["instance", "job", "le"];

/// The label names of each exported series name: `a{x="1",y="2"} 0` gives
/// `a` → {x, y}.
fn exported_labels(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut labels = BTreeMap::<String, BTreeSet<String>>::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((set, _)) = rest.split_once('}') else {
            continue;
        };
        let names = set
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, _)| k.to_string());
        labels.entry(name.to_string()).or_default().extend(names);
    }
    labels
}

/// Every label name a `pocketgate_*{...}` selector in `text` matches on, with
/// its metric's name; and every name in a `by (...)` clause (metric `""`).
fn used_labels(text: &str) -> BTreeSet<(String, String)> {
    let text = text.replace("\\\"", "\"");
    let mut used = BTreeSet::new();
    for name in named(&text) {
        let selector = format!("{name}{{");
        for (at, _) in text.match_indices(&selector) {
            let rest = &text[at + selector.len()..];
            let set = &rest[..rest.find('}').unwrap_or(rest.len())];
            for matcher in set.split(',') {
                let label = matcher.split(['=', '!']).next().unwrap_or("").trim();
                if !label.is_empty() {
                    used.insert((name.clone(), label.to_string()));
                }
            }
        }
    }
    for (at, _) in text.match_indices("by (") {
        let rest = &text[at + 4..];
        let list = &rest[..rest.find(')').unwrap_or(rest.len())];
        for label in list.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            used.insert((String::new(), label.to_string()));
        }
    }
    used
}

#[test]
fn used_labels_reads_selectors_and_groupings() {
    let used: Vec<(String, String)> = used_labels(
        r#"sum by (host, outcome) (rate(pocketgate_a_total{instance=~"$i", host!="x"}[5m]))"#,
    )
    .into_iter()
    .collect();
    let pair = |m: &str, l: &str| (m.to_string(), l.to_string());
    assert_eq!(
        used,
        [
            pair("", "host"),
            pair("", "outcome"),
            pair("pocketgate_a_total", "host"),
            pair("pocketgate_a_total", "instance"),
        ]
    );
}

#[test]
fn named_finds_whole_metric_names() {
    let names: Vec<String> = named(
        "rate(pocketgate_a_total[5m]) / pocketgate_b:c{x=\"y\"} `pocketgate_*` xpocketgate_d",
    )
    .into_iter()
    .collect();
    assert_eq!(names, ["pocketgate_a_total", "pocketgate_b:c"]);
}

#[test]
fn exported_understands_histogram_and_counter_suffixes() {
    let text = "# TYPE a_seconds histogram\na_seconds_sum 0.0\n# TYPE b counter\nb_total 0\n# TYPE c gauge\nc{x=\"y\"} 1\n";
    let names: Vec<String> = exported(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "a_seconds_bucket",
            "a_seconds_count",
            "a_seconds_sum",
            "b_total",
            "c"
        ]
    );
}

#[actix_web::test]
async fn the_dashboard_and_the_rules_name_only_exported_metrics() {
    let app = spawn_plain("").await;
    let scrape = metrics_text(&app).await;
    let metrics = exported(&scrape);
    let labels = exported_labels(&scrape);
    let all_labels: BTreeSet<&String> = labels.values().flatten().collect();
    assert!(
        metrics.contains("pocketgate_decisions_total")
            && metrics.contains("pocketgate_decision_duration_seconds_bucket"),
        "unexpected scrape: {metrics:?}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dashboard = BTreeSet::new();
    for file in FILES {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let names = named(&text);
        assert!(!names.is_empty(), "{file} names no pocketgate metric");
        let unknown: Vec<&String> = names.difference(&metrics).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics /metrics does not export: {unknown:?}\nexported: {metrics:?}"
        );
        // The labels they match on and group by are ones the metric has.
        for (metric, label) in used_labels(&text) {
            if SCRAPE_LABELS.contains(&label.as_str()) {
                continue;
            }
            let known = match labels.get(&metric) {
                _ if metric.is_empty() => all_labels.contains(&label),
                Some(have) => have.contains(&label),
                None => false,
            };
            assert!(
                known,
                "{file}: {metric:?} has no label {label:?} in /metrics: {labels:?}"
            );
        }
        if file.ends_with(".json") {
            dashboard = names;
        }
    }
    // The dashboard covers decisions, latency, sessions, the provider and reloads.
    for needed in [
        "pocketgate_decisions_total",
        "pocketgate_decision_duration_seconds_bucket",
        "pocketgate_sessions_created_total",
        "pocketgate_session_refreshes_total",
        "pocketgate_provider_ready",
        "pocketgate_config_reloads_total",
        "pocketgate_config_last_reload_successful",
        "pocketgate_session_store_errors_total",
        "pocketgate_server_errors_total",
    ] {
        assert!(
            dashboard.contains(needed),
            "the dashboard shows no {needed}"
        );
    }
    // Decisions by host, with a host selector.
    let text = std::fs::read_to_string(root.join(FILES[0])).unwrap();
    assert!(text.contains("sum by (host, outcome) (rate(pocketgate_decisions_total{"));
    assert!(text
        .contains("label_values(pocketgate_decisions_total{instance=~\\\"$instance\\\"}, host)"));
}

/// The value of the sample `series` (name and labels, as exported) in `text`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `pocketgate_decisions_total` of this endpoint, host label and outcome.
fn decisions(text: &str, endpoint: &str, host: &str, outcome: &str) -> Option<u64> {
    sample(
        text,
        &format!(
            "pocketgate_decisions_total{{endpoint=\"{endpoint}\",host=\"{host}\",outcome=\"{outcome}\"}}"
        ),
    )
}

/// How many `pocketgate_decisions_total` series `/metrics` has.
fn decision_series(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("pocketgate_decisions_total{"))
        .count()
}

#[actix_web::test]
async fn decisions_are_counted_by_the_configured_host_that_matched() {
    let app = spawn_plain("").await;
    let before = metrics_text(&app).await;
    // tests/common/policies.toml: five [[hosts]] and (other), 2 endpoints, 5 outcomes.
    assert_eq!(decision_series(&before), 6 * 2 * 5, "{before}");
    let bob = app.cookie("bob", &["users"]);
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        200
    );
    // A wildcard entry counts under its pattern, an unknown host under (other).
    assert_eq!(
        forward_auth_status(&app, "a.wild.example.test", &bob).await,
        403
    );
    let r = ask(&app, Ask::AuthRequest, "unknown.example.test", "/", &[JSON]).await;
    assert_eq!(r.status(), 403);

    let text = metrics_text(&app).await;
    for (endpoint, host, outcome) in [
        ("forward-auth", "app.example.test", "allow"),
        ("forward-auth", "*.wild.example.test", "deny"),
        ("auth-request", "(other)", "deny"),
    ] {
        assert_eq!(
            decisions(&text, endpoint, host, outcome),
            Some(1),
            "{endpoint} {host} {outcome}:\n{text}"
        );
    }
    assert_eq!(decisions(&text, "forward-auth", "(other)", "deny"), Some(0));
}

/// Hostile input: `Host` values a client makes up are counted under
/// (other) or the wildcard they fall under, never as series of their own.
#[actix_web::test]
async fn a_thousand_invented_hosts_add_no_series() {
    let app = spawn_plain("").await;
    let before = decision_series(&metrics_text(&app).await);
    // One client, one connection: a thousand requests in a few seconds.
    let c = client();
    for i in 0..1_000u32 {
        let host = if i % 2 == 0 {
            format!("h{i}-{:x}.example.test", i.wrapping_mul(2_654_435_761))
        } else {
            format!("x{i}.wild.example.test")
        };
        let r = c
            .get(app.url("/forward-auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", &host)
            .header("X-Forwarded-Uri", "/")
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 401 | 403),
            "{host}: {}",
            r.status()
        );
    }
    let text = metrics_text(&app).await;
    assert_eq!(decision_series(&text), before);
    let counted = |host| {
        ["allow", "bypass", "login", "deny", "step_up"]
            .iter()
            .filter_map(|o| decisions(&text, "forward-auth", host, o))
            .sum::<u64>()
    };
    assert_eq!(counted("(other)"), 500, "{text}");
    assert_eq!(counted("*.wild.example.test"), 500, "{text}");
}

/// A reload that adds a host: its series appear at once, and the hosts
/// that stayed keep their counts.
#[actix_web::test]
async fn a_reload_shows_a_new_host_and_keeps_the_counts() {
    let app = spawn_plain("").await;
    let bob = app.cookie("bob", &["users"]);
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        200
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    let host = "\n[[hosts]]\nhost = \"new.example.test\"\npolicy = \"users\"\n";
    std::fs::write(&path, format!("{}{host}", app.toml)).unwrap();
    Reloader::new(&path, app.live.clone(), None)
        .reload()
        .await
        .unwrap();
    assert_eq!(
        forward_auth_status(&app, "new.example.test", &bob).await,
        200
    );
    let text = metrics_text(&app).await;
    assert_eq!(
        decisions(&text, "forward-auth", "new.example.test", "allow"),
        Some(1)
    );
    assert_eq!(
        decisions(&text, "forward-auth", "app.example.test", "allow"),
        Some(1)
    );
    assert_eq!(
        decisions(&text, "auth-request", "new.example.test", "deny"),
        Some(0)
    );
}

/// `pocketgate_server_errors_total{group}`: answers with a 5xx status, by
/// group of endpoints; answers below 500 are not counted.
#[actix_web::test]
async fn answers_with_a_5xx_status_are_counted_by_group() {
    // No provider: a sign-in cannot start (503), and pocketgate is not ready (503).
    let app = spawn_plain("").await;
    let c = client();
    let r = c.get(app.url("/login?rd=/")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(forward_auth_status(&app, "app.example.test", "").await, 401);
    let r = c.get(app.url("/no-such-page")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let text = metrics_text(&app).await;
    for (group, n) in [
        ("login", 1),
        ("readiness", 1),
        ("auth", 0),
        ("other", 0),
        ("scim", 0),
        ("backchannel", 0),
    ] {
        let series = format!("pocketgate_server_errors_total{{group=\"{group}\"}}");
        assert_eq!(sample(&text, &series), Some(n), "{series}:\n{text}");
    }
}

/// Reads `pocketgate_provider_ready` until it is `want`, for at most 10 s
/// (a provider's answer is believed for up to 5 s).
async fn provider_ready_becomes(app: &TestApp, want: u64) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = sample(&metrics_text(app).await, "pocketgate_provider_ready");
        if got == Some(want) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gauge is not "metadata was loaded once": a provider that stops
/// answering after discovery reads 0, and 1 again when it is back.
#[actix_web::test]
async fn provider_ready_falls_to_0_when_the_provider_stops_answering() {
    let app = spawn_with_idp().await;
    let idp = app.idp.as_ref().unwrap();
    assert_eq!(provider_ready_becomes(&app, 1).await, Some(1));
    idp.set_fault(Some(Fault::Unavailable));
    assert_eq!(provider_ready_becomes(&app, 0).await, Some(0));
    // Metadata stays loaded: bypasses and sessions keep working, /readyz stays 200.
    let r = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    idp.set_fault(None);
    assert_eq!(provider_ready_becomes(&app, 1).await, Some(1));
}
