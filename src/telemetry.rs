//! Logging setup: text or JSON lines on stderr, filtered by `log_level` or
//! `RUST_LOG`; beside them, the audit records (`crate::audit`) on their own
//! target, written by their own layer to stdout or to `[audit] file`
//! whatever the log level; and, when the `OTEL_*` variables ask, the
//! trace spans exported over OTLP ([`otel`]).

use std::io::IsTerminal;
use std::path::PathBuf;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSettings};

mod audit_sink;
pub mod otel;

pub use audit_sink::AuditSink;

/// The tracing target of audit records: one JSON object per security event.
pub const AUDIT_TARGET: &str = "pocketgate::audit";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("audit.file: cannot open {path:?} for appending: {source} (fix: create its directory and let pocketgate's user write there, or remove the key to write audit records to stdout)")]
    AuditFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Traces(#[from] otel::OtelError),
}

/// Install the global subscriber. `RUST_LOG`, when set, overrides `log_level`;
/// audit records are written whatever either says. Calling it twice is
/// harmless (the second call changes nothing).
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    let audit = audit_sink(settings)?;
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| EnvFilter::try_new(s).is_ok())
        .unwrap_or_else(|| settings.filter.as_str().to_string());
    let _ = tracing_subscriber::registry()
        .with(log_layer(settings.format).with_filter(without_ours(filter(&spec))))
        .with(audit.with_filter(audit_only()))
        .with(otel::layer()?)
        .try_init();
    Ok(())
}

/// Install the audit layer alone (the command line, whose own output is
/// not logging): records go where `serve` writes them.
pub fn init_audit(settings: &LogSettings) -> Result<(), TelemetryError> {
    let _ = tracing_subscriber::registry()
        .with(audit_sink(settings)?.with_filter(audit_only()))
        .try_init();
    Ok(())
}

fn audit_sink(settings: &LogSettings) -> Result<AuditSink, TelemetryError> {
    match &settings.audit_file {
        Some(path) => AuditSink::file(path).map_err(|source| TelemetryError::AuditFile {
            path: path.clone(),
            source,
        }),
        None => Ok(AuditSink::stdout()),
    }
}

/// The operator's log lines on stderr, as text or JSON.
fn log_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false);
    match format {
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
        LogFormat::Text => layer.boxed(),
    }
}

/// Audit records go to the audit layer only, never twice, and the spans
/// exported as traces only to the trace layer (the log is the same with
/// traces on or off).
fn without_ours(mut filter: EnvFilter) -> EnvFilter {
    for target in [AUDIT_TARGET, otel::TRACE_TARGET] {
        if let Ok(off) = format!("{target}=off").parse() {
            filter = filter.add_directive(off);
        }
    }
    filter
}

/// The audit layer sees its own target alone, at every log level.
pub fn audit_only() -> Targets {
    Targets::new().with_target(AUDIT_TARGET, LevelFilter::INFO)
}

/// The filter for `spec`. actix's own lifecycle lines ("starting 2 workers",
/// "SIGTERM received") are INFO in actix but debugging detail here: they
/// show only when the filter asks for debug, or names actix itself.
fn filter(spec: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let debugging = filter
        .max_level_hint()
        .is_none_or(|l| l >= LevelFilter::DEBUG);
    if debugging || spec.contains("actix") {
        return filter;
    }
    match "actix_server=warn".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    }
}

/// ANSI colour only on a terminal, and never with `NO_COLOR` set to
/// anything (<https://no-color.org>): files and journals get plain text.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a file or a journal");
        assert!(!colour(true, Some("1".as_ref())));
        assert!(
            colour(true, Some("".as_ref())),
            "no-color.org: empty means unset"
        );
    }

    #[test]
    fn audit_records_and_trace_spans_stay_out_of_the_operator_log() {
        let f = without_ours(filter("trace")).to_string();
        assert!(f.contains("pocketgate::audit=off"), "{f}");
        assert!(f.contains("pocketgate::trace=off"), "{f}");
    }

    #[test]
    fn actix_lifecycle_lines_show_only_when_debugging() {
        let quiet = |spec: &str| filter(spec).to_string().contains("actix_server=warn");
        assert!(quiet("info"));
        assert!(quiet("warn"));
        assert!(!quiet("debug"));
        assert!(
            !quiet("pocketgate=info,actix_server=info"),
            "asked for by name"
        );
    }
}
