//! Compiling: raw structures → typed values, one file per section. Every
//! section is compiled even when an earlier one failed, so that one `check`
//! run names every mistake of a file.

pub(super) mod assertion;
mod bearer;
mod oidc;
mod rules;
pub(super) mod scim;
mod server;
mod session;

use crate::policy::Rules;

use super::raw::RawConfig;
use super::{ConfigError, ConfigErrors, Loaded, LoginDomain, LoginDomains, Runtime, Sources};

/// What compiling found: the errors (any one makes the configuration
/// unusable) and the warnings `check` prints.
#[derive(Default)]
pub(super) struct Report {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    /// The secret files read, for [`Sources::files`].
    files: Vec<std::path::PathBuf>,
    /// `check --offline`: secret and key files are named but not opened.
    offline: bool,
}

impl Report {
    fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    fn warn(&mut self, w: impl Into<String>) {
        self.warnings.push(w.into());
    }

    /// The text of the secret or key file `key` names. Offline (`check
    /// --offline`, e.g. in a build sandbox that lacks the serving machine's
    /// secrets) the file is not opened and `stand_in` gives a value of the
    /// right form instead, so that everything else is still checked.
    fn file_text(
        &mut self,
        key: &str,
        path: &str,
        stand_in: impl FnOnce() -> String,
    ) -> Result<String, ConfigError> {
        if self.offline {
            return Ok(stand_in());
        }
        self.files.push(path.into());
        std::fs::read_to_string(path).map_err(|e| ConfigError::UnreadableSecretFile {
            key: key.into(),
            path: path.into(),
            reason: e.to_string(),
        })
    }

    fn take<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.error(e)).ok()
    }

    /// `text`, the value of `key`, as a duration; when it is not one, an
    /// error that says what was expected (`what`) with `examples` as the fix.
    fn duration(
        &mut self,
        key: &str,
        text: &str,
        what: &str,
        examples: &str,
    ) -> Option<std::time::Duration> {
        self.take(humantime::parse_duration(text).map_err(|e| {
            invalid(
                key,
                text,
                format!("is not {what} ({e}; fix: e.g. {examples})"),
            )
        }))
    }

    fn finish<T>(self, value: Option<T>) -> Result<Loaded<T>, ConfigErrors> {
        match (ConfigErrors::from_vec(self.errors), value) {
            (None, Some(value)) => Ok(Loaded {
                value,
                warnings: self.warnings,
                sources: Sources {
                    files: self.files,
                    ..Sources::default()
                },
            }),
            (Some(errors), _) => Err(errors),
            // A section returned nothing without saying why: a bug, but never a half-built config.
            (None, None) => {
                Err(ConfigError::Syntax("the configuration is incomplete".into()).into())
            }
        }
    }
}

fn invalid(
    key: impl Into<String>,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// Compile everything `serve` needs. `env` stands in for the process
/// environment for the two secret variables; `offline`: see
/// [`Report::file_text`].
pub(super) fn runtime(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    offline: bool,
) -> Result<Loaded<Runtime>, ConfigErrors> {
    let mut report = Report {
        offline,
        ..Report::default()
    };
    let server = server::compile(raw, &mut report);
    let rules = rules::compile(raw, &mut report);
    let oidc = oidc::compile(raw, env, rules.as_ref(), &mut report);
    let host_headers = server
        .as_ref()
        .and_then(|s| server::host_headers(raw, &s.headers, &mut report));
    let bearer = bearer::compile(raw, oidc.as_ref(), &mut report);
    let session = server
        .as_ref()
        .and_then(|s| session::compile(raw, env, &s.public_url, &mut report));
    let assertion = assertion::compile(
        raw,
        server.as_ref().map(|s| &s.headers),
        session.as_ref().map(|s| &s.store),
        &mut report,
    );
    let scim = scim::compile(raw, session.as_ref().map(|s| &s.store), &mut report);
    if let (Some(server), Some(session), Some(rules)) = (&server, &session, &rules) {
        session::warn_host_only_cookie(server, session, rules, &mut report);
        session::warn_uncovered_hosts(server, session, rules, &mut report);
        if let Some(oidc) = &oidc {
            warn_login_loop(server, session, &oidc.issuer, rules, &mut report);
        }
    }
    let runtime = match (
        server,
        rules,
        oidc,
        session,
        host_headers,
        assertion,
        bearer,
        scim,
    ) {
        (
            Some(server),
            Some(rules),
            Some(mut oidc),
            Some(session),
            Some(host_headers),
            Some(assertion),
            Some(bearer),
            Some(scim),
        ) => Some(Runtime {
            oidc: {
                oidc.offline_access = session.refresh_interval.is_some();
                oidc
            },
            listen: server.listen,
            metrics_listen: server.metrics_listen,
            login_domains: LoginDomains::new(
                LoginDomain {
                    public_url: server.public_url.clone(),
                    cookie_domain: session.cookie_domain.clone(),
                },
                session.domains.clone(),
            ),
            public_url: server.public_url,
            trusted_proxies: server.trusted_proxies,
            headers: server.headers,
            host_headers,
            bearer,
            log: server.log,
            rules,
            session,
            assertion,
            scim,
            support_contact: raw
                .support_contact
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        }),
        _ => None,
    };
    report.finish(runtime)
}

/// A `[[hosts]]` entry (exact or wildcard) covering the provider's host or
/// one of pocketgate's own public hosts: if the proxy asks about that site,
/// the sign-in pages themselves need a sign-in, and the browser loops.
fn warn_login_loop(
    server: &server::Server,
    session: &super::SessionSettings,
    issuer: &str,
    rules: &Rules,
    report: &mut Report,
) {
    let mut own: Vec<(String, &str)> = std::iter::once(&server.public_url)
        .chain(session.domains.iter().map(|d| &d.public_url))
        .map(|u| {
            (
                u.host.as_str().to_string(),
                "pocketgate's own public_url host",
            )
        })
        .collect();
    if let Some(host) = url::Url::parse(issuer).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    }) {
        own.push((host, "the identity provider's host (oidc.issuer)"));
    }
    for (host, what) in own {
        if let crate::policy::HostMatch::Entry(h) = rules.lookup_host(&host) {
            report.warn(format!(
                "hosts[{}]: {} covers {host}, {what}: if the proxy asks pocketgate about it, signing in itself needs a sign-in and the browser loops (fix: leave forward_auth / auth_request off that site{})",
                h.index,
                h.pattern,
                if h.pattern.to_string() == host { "" } else { ", or list the protected hosts instead of the wildcard" }
            ));
        }
    }
}

/// Compile only the rules (`explain`): no secrets are read or required.
pub(super) fn rules_only(raw: &RawConfig) -> Result<Loaded<Rules>, ConfigErrors> {
    let mut report = Report::default();
    let rules = rules::compile(raw, &mut report);
    report.finish(rules)
}
