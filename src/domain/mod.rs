//! Parsed values: the types raw strings become at the edge (configuration,
//! proxy headers) so that nothing past the edge re-checks them.
//!
//! This is the leaf of the module graph: it imports nothing of ours, and
//! nothing of actix, reqwest, tokio or the clock (a test in `tests/layering.rs`
//! says so). `config`, `request` and `policy` build on it.
// Request-derived indices must never panic: only checked access here.
#![deny(clippy::indexing_slicing)]

mod host;
mod key;
mod net;
mod path;
mod readings;

pub use host::{is_hostname, CookieDomain, HostName, HostPattern};
pub use key::SigningKey;
pub use net::{ClientAddr, Networks};
pub use path::{is_normal_path, NormalPath, PathPrefix};
pub use readings::{fold_case, is_plain, PathReadings};

/// Why a raw string is not a valid value of a domain type. The text completes
/// a sentence starting with the value (`"foo bar" is not a host name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub(crate) String);

impl Invalid {
    pub(crate) fn new(reason: impl Into<String>) -> Invalid {
        Invalid(reason.into())
    }

    /// The reason, for messages that add their own context.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
