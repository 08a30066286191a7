//! The layer that writes audit records: every event of the
//! [`AUDIT_TARGET`](super::AUDIT_TARGET) target carries one finished JSON
//! object in its `record` field, and this layer writes it as one line, to
//! stdout or to the `[audit] file`. It builds nothing and filters nothing
//! else: what a record holds is `crate::audit`'s job.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Where audit lines go.
pub struct AuditSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AuditSink {
    /// Lines to stdout, where the marker field tells them from the rest.
    pub(super) fn stdout() -> AuditSink {
        AuditSink::to(Box::new(io::stdout()))
    }

    /// Lines appended to `path` (created with mode 0600 when missing).
    pub(super) fn file(path: &Path) -> io::Result<AuditSink> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file: File = options.open(path)?;
        Ok(AuditSink::to(Box::new(file)))
    }

    /// Lines to any writer (tests keep them in memory).
    pub fn to(out: Box<dyn Write + Send>) -> AuditSink {
        AuditSink {
            out: Mutex::new(out),
        }
    }

    fn write_line(&self, line: &str) {
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        // One write per line, so that lines from several threads never interleave.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            // Not through tracing: this layer would see its own complaint.
            eprintln!("pocketgate: an audit record could not be written: {e}");
        }
    }
}

impl<S: Subscriber> Layer<S> for AuditSink {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != super::AUDIT_TARGET {
            return;
        }
        let mut record = RecordField(None);
        event.record(&mut record);
        if let Some(line) = record.0 {
            self.write_line(&line);
        }
    }
}

/// Picks the `record` field out of an audit event.
struct RecordField(Option<String>);

impl Visit for RecordField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "record" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "record" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
