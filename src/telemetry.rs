//! Logging setup: text or JSON lines on stderr, filtered by `log_level` or `RUST_LOG`.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Install the global subscriber. `RUST_LOG`, when set, overrides `log_level`.
/// Calling it twice is harmless (the second call changes nothing).
pub fn init(settings: &LogSettings) {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| EnvFilter::try_new(s).is_ok())
        .unwrap_or_else(|| settings.filter.as_str().to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&spec))
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
