//! `[assertion]`: the signed identity assertion's header, lifetime and keys.

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

use crate::domain::SigningKey;

use super::super::raw::RawConfig;
use super::super::{ConfigError, HeaderNames, StoreSettings};
use super::{invalid, server::header_name, Report};

/// `[assertion]`, compiled: present only when `header` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionSettings {
    /// The header the assertion is returned in on allow.
    pub header: HeaderName,
    /// How long an assertion is valid (`exp - iat`).
    pub lifetime: Duration,
    /// The keys of `key_file`; `None`: a key pocketgate generates itself
    /// (kept in `state_dir` with the embedded store, in memory with cookies).
    pub key_file: Option<KeyFile>,
}

/// `assertion.key_file`, read: the first key signs, the others are only
/// published (rotation). Re-read on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The file, for messages and `check`.
    pub path: PathBuf,
    /// Never empty.
    pub keys: Vec<SigningKey>,
}

/// Shortest and longest `assertion.lifetime`: shorter than 2 s leaves the
/// cache nothing to hold; a day is far longer than a request needs.
const MIN_LIFETIME: Duration = Duration::from_secs(2);
const MAX_LIFETIME: Duration = Duration::from_secs(86400);

pub(super) fn compile(
    raw: &RawConfig,
    headers: Option<&HeaderNames>,
    store: Option<&StoreSettings>,
    report: &mut Report,
) -> Option<Option<AssertionSettings>> {
    let a = &raw.assertion;
    let Some(header_text) = a.header.as_deref() else {
        if a.lifetime.is_some() || a.key_file.is_some() {
            report.warn("[assertion] has no `header`, so no assertion is signed (set assertion.header, e.g. \"X-Pocketgate-Assertion\")");
        }
        return Some(None);
    };
    let header = report.take(header_name("assertion.header", header_text));
    if let (Some(h), Some(names)) = (&header, headers) {
        if [&names.user, &names.email, &names.name, &names.groups].contains(&h) {
            report.error(invalid(
                "assertion.header",
                header_text,
                "is already an identity header ([headers]); choose another name",
            ));
            return None;
        }
    }
    let lifetime = lifetime(a.lifetime.as_deref(), report);
    let key_file = match a.key_file.as_deref() {
        Some(path) => {
            let read = report
                .file_text("assertion.key_file", path, stand_in_key)
                .and_then(|text| {
                    SigningKey::parse_pem(&text)
                        .map_err(|e| invalid("assertion.key_file", path, e.reason()))
                });
            Some(Some(KeyFile {
                path: path.into(),
                keys: report.take(read)?,
            }))
        }
        None => match store {
            Some(StoreSettings::Redis { .. }) => {
                report.error(ConfigError::Missing {
                    key: "assertion.key_file".into(),
                    fix: "replicas sharing Redis must sign with one key: write one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out assertion.pem` and set assertion.key_file".into(),
                });
                None
            }
            Some(StoreSettings::Cookie) => {
                report.warn("assertion: no key_file and no state_dir (session.store = \"cookie\"): the signing key is generated in memory, so it changes on every restart and differs between replicas; set assertion.key_file");
                Some(None)
            }
            _ => Some(None),
        },
    };
    Some(Some(AssertionSettings {
        header: header?,
        lifetime: lifetime?,
        key_file: key_file?,
    }))
}

fn lifetime(raw: Option<&str>, report: &mut Report) -> Option<Duration> {
    let text = raw.unwrap_or("60s");
    let lifetime = report.duration("assertion.lifetime", text, "a duration", r#""60s", "5m""#)?;
    if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
        report.error(invalid(
            "assertion.lifetime",
            text,
            "must be between 2 seconds and 1 day",
        ));
        return None;
    }
    Some(lifetime)
}

/// `check --offline`: a fresh key in place of the unread `key_file`.
fn stand_in_key() -> String {
    let mut bytes = [0u8; 32];
    let key = getrandom::getrandom(&mut bytes)
        .ok()
        .and_then(|()| SigningKey::from_random(&bytes));
    key.and_then(|k| k.to_pem().ok()).unwrap_or_default()
}
