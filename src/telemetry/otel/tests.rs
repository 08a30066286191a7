#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use actix_web::http::header::HeaderMap as ActixHeaders;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[rustfmt::skip]
#[test]
fn traces_are_on_only_when_the_environment_asks() {
    let rows: &[(&[(&str, &str)], bool)] = &[
        (&[], false),
        (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")], true),
        (&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")], true),
        (&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")], false),
        (&[("OTEL_TRACES_EXPORTER", "otlp")], true),
        (&[("OTEL_TRACES_EXPORTER", "console, otlp")], true),
        (&[("OTEL_TRACES_EXPORTER", "none"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], false),
        (&[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], false),
        (&[("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "otlp")], false),
        (&[("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], false),
        (&[("OTEL_SDK_DISABLED", "false"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], true),
        (&[("OTEL_SERVICE_NAME", "gate")], false),
    ];
    for (vars, on) in rows {
        assert_eq!(wanted(env(vars)), *on, "{vars:?}");
    }
}

/// One subscriber test at a time: `tracing` caches whether a span's call
/// site is wanted across every live subscriber, so a trace layer in a
/// parallel test would make the spans of the "off" test look wanted.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `f` under a trace layer (no exporter: the spans get ids, nothing is sent).
fn traced(f: impl FnOnce()) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    super::set_on(true);
    tracing::subscriber::with_default(subscriber, f);
    super::set_on(false);
}

fn incoming(traceparent: &str) -> ActixHeaders {
    let mut h = ActixHeaders::new();
    h.insert(
        actix_web::http::header::HeaderName::from_static("traceparent"),
        actix_web::http::header::HeaderValue::from_str(traceparent).unwrap(),
    );
    h
}

#[test]
fn a_decision_continues_the_proxys_trace_and_a_provider_call_carries_it_on() {
    traced(|| {
        let decision = decision_span(&incoming(&format!("00-{TRACE}-{PARENT}-01")), "a.test");
        assert!(!decision.is_disabled());
        let _in = decision.enter();
        let call = provider_span("userinfo", "GET");
        let mut out = HeaderMap::new();
        inject(&call, &mut out);
        let sent = out.get("traceparent").unwrap().to_str().unwrap();
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], TRACE, "the proxy's trace goes on to the provider");
        assert_ne!(
            parts[2], PARENT,
            "the provider call's own span is the parent"
        );
        assert_eq!(parts[3], "01", "sampled, as the proxy asked");
    });
}

#[test]
fn a_malformed_traceparent_starts_a_new_trace() {
    traced(|| {
        let decision = decision_span(&incoming("00-not-a-trace-01"), "a.test");
        let _in = decision.enter();
        let mut out = HeaderMap::new();
        inject(&provider_span("token", "POST"), &mut out);
        let sent = out.get("traceparent").unwrap().to_str().unwrap();
        assert!(!sent.contains("not-a-trace"), "{sent}");
        assert_eq!(sent.len(), 55, "{sent}");
    });
}

#[test]
fn with_traces_off_the_spans_are_disabled_and_no_header_is_sent() {
    // The log and audit layers as `serve` installs them without OTEL_*:
    // the log at its most verbose still ignores the trace target.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(super::super::without_ours(
            tracing_subscriber::EnvFilter::new("trace"),
        ));
    let audit = super::super::AuditSink::to(Box::new(std::io::sink()))
        .with_filter(super::super::audit_only());
    let subscriber = tracing_subscriber::registry().with(log).with(audit);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tracing::subscriber::with_default(subscriber, || {
        let decision = decision_span(&incoming(&format!("00-{TRACE}-{PARENT}-01")), "a.test");
        assert!(decision.is_disabled());
        assert!(store_span().is_disabled());
        let mut out = HeaderMap::new();
        inject(&provider_span("token", "POST"), &mut out);
        assert!(out.is_empty());
    });
}

/// The trace context headers a decision span carries on to the provider,
/// for an auth request with `fields` (name, value; repeated names kept).
fn carried_on(fields: &[(&str, &str)]) -> HeaderMap {
    let mut h = ActixHeaders::new();
    for (name, value) in fields {
        h.append(
            actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            actix_web::http::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    let mut out = HeaderMap::new();
    traced(|| {
        let decision = decision_span(&h, "a.test");
        let _in = decision.enter();
        inject(&provider_span("userinfo", "GET"), &mut out);
    });
    out
}

fn sent<'h>(out: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    out.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn no_empty_tracestate_goes_to_the_provider() {
    let out = carried_on(&[("traceparent", &format!("00-{TRACE}-{PARENT}-01"))]);
    assert_eq!(sent(&out, "traceparent").len(), 1);
    assert!(sent(&out, "tracestate").is_empty(), "{out:?}");
    let out = carried_on(&[]);
    assert_eq!(sent(&out, "traceparent").len(), 1, "a trace of its own");
    assert!(sent(&out, "tracestate").is_empty(), "{out:?}");
}

#[test]
fn the_proxys_tracestate_goes_on_to_the_provider_and_several_fields_are_one_list() {
    let parent = format!("00-{TRACE}-{PARENT}-01");
    let out = carried_on(&[("traceparent", &parent), ("tracestate", "edge=1")]);
    assert_eq!(sent(&out, "tracestate"), ["edge=1"]);
    let out = carried_on(&[
        ("traceparent", &parent),
        ("tracestate", "edge=1,cdn=2"),
        ("tracestate", "lb=3"),
    ]);
    assert_eq!(sent(&out, "tracestate"), ["edge=1,cdn=2,lb=3"]);
}

#[test]
fn a_repeated_traceparent_starts_a_new_trace() {
    let other = "12345678901234567890123456789012";
    let out = carried_on(&[
        ("traceparent", &format!("00-{TRACE}-{PARENT}-01")),
        ("traceparent", &format!("00-{other}-{PARENT}-01")),
    ]);
    let carried = sent(&out, "traceparent");
    assert_eq!(carried.len(), 1);
    assert!(
        !carried[0].contains(TRACE) && !carried[0].contains(other),
        "neither of the two: {carried:?}"
    );
    assert_eq!(carried[0].len(), 55, "{carried:?}");
}

/// Keeps what the provider exports, for a look at the spans' attributes.
#[derive(Debug, Clone, Default)]
struct Kept(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Kept {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

#[test]
fn exported_spans_carry_the_documented_attributes_and_nothing_of_the_bridges() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kept = Kept::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(kept.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(bridge(provider.tracer("test")));
    super::set_on(true);
    tracing::subscriber::with_default(subscriber, || {
        let decision = decision_span(&ActixHeaders::new(), "a.test");
        decided(&decision, "allow", || "host a.test".into(), Some("alice"));
        drop(decision);
    });
    super::set_on(false);
    let spans = kept.0.lock().unwrap();
    let decision = spans.iter().find(|s| s.name == "decision").unwrap();
    let mut keys: Vec<&str> = decision
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["host", "outcome", "rule", "user"]);
}
