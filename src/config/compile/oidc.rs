//! `[oidc]` → [`OidcSettings`].

use std::net::IpAddr;

use crate::policy::Rules;

use super::super::raw::RawConfig;
use super::super::{ClientAuth, ConfigError, OidcSettings, Secret};
use super::session::resolve_secret;
use super::{invalid, Report};

/// The client secret's variable, read directly (not through figment) so that a
/// secret that happens to look like a number or a list stays a string.
const ENV_CLIENT_SECRET: &str = "POCKETGATE_OIDC__CLIENT_SECRET";

pub(super) fn compile(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    rules: Option<&Rules>,
    report: &mut Report,
) -> Option<OidcSettings> {
    let o = &raw.oidc;
    let issuer = issuer(o.issuer.as_deref(), report);
    let client_id = match &o.client_id {
        Some(s) if !s.is_empty() => Some(s.clone()),
        _ => {
            report.error(ConfigError::Missing {
                key: "oidc.client_id".into(),
                fix: "copy the client ID of the OIDC client created in Pocket ID".into(),
            });
            None
        }
    };
    let secret = resolve_secret(
        "oidc.client_secret",
        o.client_secret.as_deref(),
        o.client_secret_file.as_deref(),
        env(ENV_CLIENT_SECRET),
        || "not read (--offline)".into(),
        report,
    );
    let client_secret = match secret {
        Ok(lines) => lines
            .and_then(|l| l.into_iter().next())
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        Err(e) => {
            report.error(e);
            return None;
        }
    };
    let client_auth = match o.client_auth.as_deref() {
        None if client_secret.is_some() => ClientAuth::Basic,
        None => ClientAuth::None,
        Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some("none") => ClientAuth::None,
        Some(other) => {
            report.error(invalid(
                "oidc.client_auth",
                other,
                "is not one of client_secret_basic, client_secret_post, none",
            ));
            return None;
        }
    };
    if o.client_auth.is_none() && client_secret.is_none() {
        report.warn(
            "oidc.client_secret: none is set, so pocketgate signs in as a public client (PKCE only) and Pocket ID refuses the code exchange unless the client is public (fix: in Pocket ID, edit the OIDC client and turn on \"Public Client\", then set oidc.client_auth = \"none\" to say so; or give pocketgate the client secret Pocket ID showed, by oidc.client_secret_file or POCKETGATE_OIDC__CLIENT_SECRET)",
        );
    }
    if client_auth != ClientAuth::None && client_secret.is_none() {
        report.error(ConfigError::Missing {
            key: "oidc.client_secret".into(),
            fix: "set oidc.client_secret_file or POCKETGATE_OIDC__CLIENT_SECRET, or client_auth = \"none\" for a public client".into(),
        });
        return None;
    }
    let scopes = o.scopes.clone().unwrap_or_else(|| {
        ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec()
    });
    if !scopes.iter().any(|s| s == "openid") {
        report.error(invalid(
            "oidc.scopes",
            scopes.join(" "),
            "lacks \"openid\" (fix: add it; without it there is no ID token)",
        ));
        return None;
    }
    let claims = rules.map(|r| r.claim_names().clone()).unwrap_or_default();
    let uses_groups =
        rules.is_some_and(|r| r.policies().iter().any(|p| !p.allowed_groups.is_empty()));
    if uses_groups && claims.groups == "groups" && !scopes.iter().any(|s| s == "groups") {
        report.warn(
            "oidc.scopes: lacks \"groups\" although policies use allowed_groups; Pocket ID sends the groups claim only for that scope",
        );
    }
    Some(OidcSettings {
        issuer: issuer?,
        client_id: client_id?,
        client_secret,
        client_auth,
        scopes,
        username_claim: claims.username,
        groups_claim: claims.groups,
        // Set once [session] is known (see compile::runtime).
        offline_access: false,
    })
}

/// Kept verbatim: discovery and RFC 9207 compare the issuer exactly, trailing slash included.
fn issuer(raw: Option<&str>, report: &mut Report) -> Option<String> {
    let Some(s) = raw.map(str::trim) else {
        report.error(ConfigError::Missing {
            key: "oidc.issuer".into(),
            fix: "set it to Pocket ID's APP_URL, e.g. \"https://id.example.com\"".into(),
        });
        return None;
    };
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.scheme() == "http" && !is_loopback_host(u.host_str().unwrap_or_default()) {
                report.warn(format!(
                    "oidc.issuer: {s:?} is plain http: tokens travel unencrypted"
                ));
            }
            Some(s.to_string())
        }
        _ => {
            report.error(invalid(
                "oidc.issuer",
                s,
                "is not an absolute http(s) URL (fix: Pocket ID's APP_URL, e.g. \"https://id.example.com\")",
            ));
            None
        }
    }
}

fn is_loopback_host(h: &str) -> bool {
    h == "localhost"
        || h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
