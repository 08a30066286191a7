//! `[scim]` → [`ScimSettings`]: the bearer token Pocket ID (or any SCIM
//! client) presents at `/scim/v2`, read from `token_file` like the other
//! secret files (and reloaded with them). Off unless configured.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::super::raw::RawConfig;
use super::super::{Secret, StoreSettings};
use super::{invalid, Report};

/// Below this many characters `check` warns that the token is guessable.
pub(crate) const SHORT_TOKEN: usize = 32;

/// `[scim]`: the SCIM service provider at `/scim/v2` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimSettings {
    /// The bearer token SCIM clients must present (the file's first line).
    pub token: Secret,
    /// Where it was read from, for `check`.
    pub token_file: PathBuf,
}

/// `Some(None)`: SCIM is off; `Some(Some(_))`: on; `None`: an error was reported.
pub(super) fn compile(
    raw: &RawConfig,
    store: Option<&StoreSettings>,
    report: &mut Report,
) -> Option<Option<ScimSettings>> {
    let Some(path) = raw.scim.token_file.as_deref() else {
        return Some(None);
    };
    if store == Some(&StoreSettings::Cookie) {
        report.error(invalid(
            "scim.token_file",
            path,
            "needs a session store: with session.store = \"cookie\" nothing is kept on the server, so SCIM could neither keep its users nor end their sessions (fix: set session.store = \"embedded\" or \"redis\", or remove [scim])",
        ));
        return None;
    }
    // Offline (`check --offline`) the file is not opened: a stand-in of the right length.
    let read = report.file_text("scim.token_file", path, || "x".repeat(SHORT_TOKEN));
    let text = report.take(read)?;
    let Some(token) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        report.error(invalid(
            "scim.token_file",
            path,
            "holds no token (fix: write a random token into it, e.g. `pocketgate gen-secret > FILE`, and give the same token to the SCIM client)",
        ));
        return None;
    };
    if token.len() < SHORT_TOKEN {
        report.warn(format!(
            "scim.token_file: the token in {path} has {} characters; a SCIM token shorter than {SHORT_TOKEN} can be guessed (fix: `pocketgate gen-secret > {path}`)",
            token.len()
        ));
    }
    if !report.offline {
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                report.warn(format!(
                    "scim.token_file: {path} is readable by others (mode {:o}); whoever reads it can change users and groups (fix: chmod 600 {path})",
                    mode & 0o777
                ));
            }
        }
    }
    Some(Some(ScimSettings {
        token: Secret::new(token),
        token_file: PathBuf::from(path),
    }))
}
