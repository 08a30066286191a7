//! `[bearer]` → [`BearerSettings`] (or `None` when bearer tokens are off).

use super::super::raw::RawConfig;
use super::super::{BearerSettings, OidcSettings, OpaqueTokens};
use super::{invalid, Report};

/// Longest accepted audience value; real ones are client ids or URLs.
const MAX_AUDIENCE_LEN: usize = 512;
/// Default of `bearer.lookups_in_flight`.
pub(crate) const DEFAULT_LOOKUPS_IN_FLIGHT: u32 = 16;
/// Default of `bearer.lookups_per_minute`.
pub(crate) const DEFAULT_LOOKUPS_PER_MINUTE: u32 = 60;
/// Upper bound of both limits: beyond it they bound nothing.
const MAX_LOOKUP_LIMIT: u32 = 100_000;

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
    let opaque = match b.opaque.as_deref() {
        None | Some("introspection") => OpaqueTokens::Introspection,
        Some("userinfo") => OpaqueTokens::Userinfo,
        Some(other) => {
            report.error(invalid(
                "bearer.opaque",
                other.chars().take(64).collect::<String>(),
                "is neither \"introspection\" nor \"userinfo\" (fix: \"introspection\", the default, checks the audience; \"userinfo\" checks none)",
            ));
            ok = false;
            OpaqueTokens::Introspection
        }
    };
    let mut limit = |key: &str, value: &Option<String>, default: u32| match value.as_deref() {
        None => default,
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_LOOKUP_LIMIT).contains(&n) => n,
            _ => {
                report.error(invalid(
                    key,
                    text.chars().take(64).collect::<String>(),
                    format!("is not a whole number from 1 to {MAX_LOOKUP_LIMIT} (fix: remove the key for the default, {default})"),
                ));
                ok = false;
                default
            }
        },
    };
    let lookups_in_flight = limit(
        "bearer.lookups_in_flight",
        &b.lookups_in_flight,
        DEFAULT_LOOKUPS_IN_FLIGHT,
    );
    let lookups_per_minute = limit(
        "bearer.lookups_per_minute",
        &b.lookups_per_minute,
        DEFAULT_LOOKUPS_PER_MINUTE,
    );
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
    if opaque == OpaqueTokens::Userinfo {
        report.warn("bearer.opaque = \"userinfo\": opaque bearer tokens are checked by the provider's userinfo endpoint, which checks no audience: a token the provider issued to any other client is accepted here");
    }
    Some(Some(BearerSettings {
        audiences,
        opaque,
        lookups_in_flight,
        lookups_per_minute,
    }))
}
