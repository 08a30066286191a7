//! `[bearer]` → [`BearerSettings`] (or `None` when bearer tokens are off).

use super::super::raw::RawConfig;
use super::super::{BearerSettings, OidcSettings};
use super::{invalid, Report};

/// Longest accepted audience value; real ones are client ids or URLs.
const MAX_AUDIENCE_LEN: usize = 512;

/// `Some(None)`: bearer tokens are off; `Some(Some(_))`: on, with these
/// audiences; `None`: an error was reported.
pub(super) fn compile(
    raw: &RawConfig,
    oidc: Option<&OidcSettings>,
    report: &mut Report,
) -> Option<Option<BearerSettings>> {
    let b = &raw.bearer;
    let mut ok = true;
    let audiences = match &b.audiences {
        None => None,
        Some(list) if list.is_empty() => {
            report.error(invalid(
                "bearer.audiences",
                "[]",
                "accepts no token (fix: remove the key to accept the client id, or list the aud values your tokens carry)",
            ));
            ok = false;
            None
        }
        Some(list) => {
            for a in list {
                if a.trim().is_empty() || a.trim() != a || a.len() > MAX_AUDIENCE_LEN {
                    report.error(invalid(
                        "bearer.audiences",
                        a.chars().take(64).collect::<String>(),
                        "is empty, has surrounding spaces or is longer than 512 bytes (fix: the exact aud value, e.g. the client id)",
                    ));
                    ok = false;
                }
            }
            Some(list.clone())
        }
    };
    if !ok {
        return None;
    }
    if b.enabled != Some(true) {
        if audiences.is_some() {
            report.warn("bearer.audiences: set, but bearer.enabled is not true: bearer tokens are refused (not looked at)");
        }
        return Some(None);
    }
    let audiences = match audiences {
        Some(a) => a,
        // Without [oidc] there is no runtime anyway; its error is reported.
        None => vec![oidc?.client_id.clone()],
    };
    Some(Some(BearerSettings { audiences }))
}
