//! The Grafana dashboard (examples/grafana/) and the Prometheus rules
//! (examples/prometheus/) name only metrics that `/metrics` exports: scrape
//! the running application and compare every `pocketgate_*` name the files use.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{metrics_text, spawn_plain};

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
    let metrics = exported(&metrics_text(&app).await);
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
    ] {
        assert!(
            dashboard.contains(needed),
            "the dashboard shows no {needed}"
        );
    }
}
