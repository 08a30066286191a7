//! Traces against a real OTLP receiver: the OpenTelemetry Collector (OTLP
//! receiver, debug exporter), started by this test. The test plays the
//! proxy: it asks `/forward-auth` with a W3C `traceparent` and an opaque
//! bearer token, so pocketgate's decision asks the development provider's
//! userinfo endpoint. The collector must then hold the decision span in the
//! proxy's trace (its parent the proxy's span) and the provider call inside
//! it; that the outgoing request carries the provider call's own
//! `traceparent` is checked in `telemetry::otel`'s unit tests.
//!
//! The collector is built by `tests/otel/build-collector.sh` (the Go
//! module proxy) into `~/.cache/pocketgate-otel/`, or named by
//! `POCKETGATE_OTELCOL`; without it the test says SKIPPED and passes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

#[path = "common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::POLICIES;
use dev_idp::{AccessTokenOptions, DevIdp, DevIdpConfig};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// A child process stopped when the test ends, whichever way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector() -> Option<PathBuf> {
    let path = match std::env::var_os("POCKETGATE_OTELCOL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/pocketgate-otel/src/otelcol-pocketgate"),
    };
    path.is_file().then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `check` every 100 ms for at most `limit`.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// A span as the debug exporter prints it at detailed verbosity.
#[derive(Debug, Default, Clone)]
struct Span {
    trace: String,
    parent: String,
    id: String,
    name: String,
}

fn spans(output: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for line in output.lines() {
        if line.trim_start().starts_with("Span #") {
            out.push(Span::default());
            continue;
        }
        let (Some(span), Some((key, value))) = (out.last_mut(), line.split_once(':')) else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "Trace ID" => span.trace = value,
            "Parent ID" => span.parent = value,
            "ID" => span.id = value,
            "Name" => span.name = value,
            _ => {}
        }
    }
    out
}

#[actix_web::test]
async fn a_proxys_trace_goes_through_the_decision_to_the_provider() {
    let Some(otelcol) = collector() else {
        eprintln!("SKIPPED: no OpenTelemetry Collector (run tests/otel/build-collector.sh, or set POCKETGATE_OTELCOL)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let otlp = free_port();
    let collector_config = dir.path().join("otelcol.yaml");
    std::fs::write(
        &collector_config,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{otlp}\n\
             exporters:\n  debug:\n    verbosity: detailed\n\
             service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"
        ),
    )
    .unwrap();
    let collector_log = dir.path().join("otelcol.log");
    let _collector = Running(
        Command::new(&otelcol)
            .arg("--config")
            .arg(&collector_config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&collector_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&collector_log).unwrap_or_default();
    assert!(
        within(Duration::from_secs(30), || std::net::TcpStream::connect((
            "127.0.0.1",
            otlp
        ))
        .is_ok())
        .await,
        "the collector did not listen:\n{}",
        read_log()
    );

    let listen = free_port();
    let base = format!("http://127.0.0.1:{listen}");
    let idp = DevIdp::start(DevIdpConfig {
        client_id: "pocketgate".into(),
        client_secret: Some("client-secret".into()),
        redirect_uris: vec![format!("{base}/callback")],
        ..DevIdpConfig::default()
    })
    .await
    .unwrap();
    let config = dir.path().join("pocketgate.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"{base}\"\nlisten = \"127.0.0.1:{listen}\"\n[oidc]\nissuer = \"{}\"\nclient_id = \"pocketgate\"\nclient_secret = \"client-secret\"\n\
             [session]\nsecret = \"{}\"\nstore = \"cookie\"\n[bearer]\nenabled = true\nopaque = \"userinfo\"\n{POLICIES}",
            idp.issuer(),
            common::SECRET
        ),
    )
    .unwrap();
    let _pocketgate = Running(
        Command::new(env!("CARGO_BIN_EXE_pocketgate"))
            .args(["--config", &config.display().to_string(), "serve"])
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp}"),
            )
            .env("OTEL_SERVICE_NAME", "pocketgate-test")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OTEL_TRACES_EXPORTER")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = common::client();
    let ready = Instant::now();
    loop {
        let answer = http.get(format!("{base}/readyz")).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "pocketgate did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut token = AccessTokenOptions::new("alice");
    token.opaque = true;
    let token = idp.access_token(&token).await.unwrap();
    let r = http
        .get(format!("{base}/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.example.test")
        .header("X-Forwarded-Uri", "/")
        .header("Authorization", format!("Bearer {token}"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(idp.userinfo_calls(), 1, "the decision asked the provider");

    let complete = |s: &[Span]| {
        s.iter().any(|s| s.name == "decision" && s.trace == TRACE)
            && s.iter()
                .any(|s| s.name == "provider userinfo" && s.trace == TRACE)
    };
    let arrived = within(Duration::from_secs(20), || complete(&spans(&read_log()))).await;
    let output = read_log();
    assert!(arrived, "the trace did not reach the collector:\n{output}");
    let all = spans(&output);
    let decision = all
        .iter()
        .find(|s| s.name == "decision" && s.trace == TRACE)
        .unwrap();
    assert_eq!(
        decision.parent, PARENT,
        "the proxy's span is the decision's parent"
    );
    let call = all
        .iter()
        .find(|s| s.name == "provider userinfo" && s.trace == TRACE)
        .unwrap();
    assert_eq!(
        call.parent, decision.id,
        "the provider call is inside the decision"
    );
    assert!(
        output.contains("pocketgate-test"),
        "OTEL_SERVICE_NAME names the service"
    );
    assert!(output.contains("-> outcome: Str(allow)"), "{output}");
    assert!(!output.contains(&token), "no token in a span");
}
