//! `pocketgate check`: load and compile the configuration, print every error
//! or the summary of what would run (and, unless `--offline`, whether the
//! provider answers).

use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, Runtime, StoreSettings};
use crate::oidc::Provider;

use super::fail;

/// `check`'s line about `[assertion]`: header, lifetime, where the key comes from.
fn assertion_line(rt: &config::Runtime) -> String {
    let Some(a) = &rt.assertion else {
        return "assertion: off (set [assertion] header to sign one)".into();
    };
    let keys = match (&a.key_file, &rt.session.store) {
        (Some(f), _) => {
            let kids: Vec<&str> = f.keys.iter().map(|k| k.kid()).collect();
            format!(
                "keys from {} (signs with {}; {} published)",
                f.path.display(),
                kids.first().copied().unwrap_or_default(),
                kids.len()
            )
        }
        (None, StoreSettings::Embedded { state_dir }) => format!(
            "key generated once and kept in {}",
            state_dir.join(crate::assertion::KEY_FILE).display()
        ),
        (None, _) => "key generated in memory at start (changes on restart)".into(),
    };
    format!(
        "assertion: header {}, ES256, lifetime {}, {keys}; public keys at {}/.well-known/jwks.json",
        a.header,
        humantime::format_duration(a.lifetime),
        rt.public_url.origin
    )
}

pub(super) fn check(path: &Path, offline: bool) -> ExitCode {
    let loaded = if offline {
        config::load_offline(path)
    } else {
        config::load(path)
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    print!("{}", summary(path, &loaded.value, &loaded.sources.includes));
    if offline {
        println!(
            "offline: secret and key files were not opened and the provider was not asked; \
             the secret counts and key ids above stand in for theirs (run check without --offline where the service runs)"
        );
    }
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if !offline && loaded.value.session.refresh_interval.is_some() {
        provider_check(&loaded.value);
    }
    ExitCode::SUCCESS
}

/// What `check` can only learn from the provider: whether it issues refresh
/// tokens (`offline_access` in `scopes_supported`). Best effort, bounded to
/// a few seconds; an unreachable provider is a note, not an error (`check`
/// also runs where the provider cannot be reached, e.g. at build time).
fn provider_check(rt: &Runtime) {
    let Ok(provider) = Provider::new(rt.oidc.clone(), Vec::new()) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let discovered = runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(4), provider.discover()).await
    });
    match discovered {
        Ok(Ok(())) if provider.offers_offline_access() => {}
        Ok(Ok(())) => eprintln!(
            "warning: session.refresh_interval: the provider does not list offline_access in scopes_supported, \
             so it issues no refresh token: sessions keep the identity of their login until lifetime ends \
             (fix: enable refresh tokens at the provider, or set refresh_interval = \"off\" to say so)"
        ),
        Ok(Err(e)) => eprintln!("note: provider not checked ({e}); whether it issues refresh tokens is logged at start"),
        Err(_) => eprintln!("note: provider not checked (no answer within 4 s); whether it issues refresh tokens is logged at start"),
    }
}

/// `label value` for each part that is there (`(label, there, value)`),
/// joined by "; ", or `otherwise` when none is.
fn clauses(parts: &[(&str, bool, String)], otherwise: &str) -> String {
    let said: Vec<String> = parts
        .iter()
        .filter(|(_, there, _)| *there)
        .map(|(label, _, value)| format!("{label} {value}"))
        .collect();
    if said.is_empty() {
        otherwise.to_string()
    } else {
        said.join("; ")
    }
}

/// The `check` summary: a header, the include files loaded, and one line per host.
pub fn summary(path: &Path, rt: &Runtime, includes: &[std::path::PathBuf]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "configuration OK: {}", path.display());
    for file in includes {
        let _ = writeln!(s, "include {}", file.display());
    }
    let _ = writeln!(
        s,
        "listen {}  public_url {}  issuer {}  client {} ({})",
        rt.listen,
        rt.public_url.origin,
        rt.oidc.issuer,
        rt.oidc.client_id,
        rt.oidc.client_auth.as_str()
    );
    if let Some(m) = rt.metrics_listen {
        let _ = writeln!(s, "metrics_listen {m}: /metrics and /readyz");
    }
    let _ = writeln!(
        s,
        "session: cookie {} on {}, lifetime {}, {} secret(s)",
        rt.session.cookie_name,
        rt.session
            .cookie_domain
            .as_ref()
            .map_or(rt.public_url.host.as_str(), |d| d.as_str()),
        humantime::format_duration(rt.session.lifetime),
        rt.session.secrets.len()
    );
    // Always: these two URLs go into Pocket ID's client before anything works.
    for d in rt.login_domains.iter() {
        let _ = writeln!(
            s,
            "login domain {} -> {}  (register at the provider: callback {}, logout {})",
            d.cookie_domain
                .as_ref()
                .map_or(d.public_url.host.as_str(), |c| c.as_str()),
            d.public_url.origin,
            d.redirect_uri(),
            d.logout_done_uri()
        );
    }
    let store = match &rt.session.store {
        StoreSettings::Embedded { state_dir } => format!("embedded in {}", state_dir.display()),
        StoreSettings::Redis { url } => format!("redis at {url}"),
        StoreSettings::Cookie => "cookie (stateless: sessions cannot be revoked)".into(),
    };
    let refresh = match rt.session.refresh_interval {
        Some(i) => format!("identity refreshed every {}", humantime::format_duration(i)),
        None => "no identity refresh".into(),
    };
    let _ = writeln!(s, "sessions: store {store}, {refresh}");
    let _ = writeln!(s, "{}", assertion_line(rt));
    match &rt.bearer {
        Some(b) => {
            let _ = writeln!(
                s,
                "bearer: on (Authorization: Bearer on /forward-auth and /auth-request), audiences {}; {}; at most {} provider lookups in flight, {} per client and minute",
                b.audiences.join(","),
                match b.opaque {
                    crate::config::OpaqueTokens::Introspection => "opaque tokens by the provider's introspection endpoint (refused when discovery lists none)",
                    crate::config::OpaqueTokens::Userinfo => "opaque tokens by userinfo (NO audience check)",
                },
                b.lookups_in_flight,
                b.lookups_per_minute,
            );
        }
        None => {
            let _ = writeln!(s, "bearer: off");
        }
    }
    let _ = writeln!(s, "{}", crate::scim::summary(rt));
    for p in rt.rules.policies() {
        let admits = clauses(
            &[
                (
                    "groups",
                    !p.allowed_groups.is_empty(),
                    p.allowed_groups.join(","),
                ),
                (
                    "users",
                    !p.allowed_users.is_empty(),
                    p.allowed_users.join(","),
                ),
                (
                    "networks",
                    !p.allowed_networks.is_empty(),
                    p.allowed_networks.to_string(),
                ),
            ],
            "any signed-in user",
        );
        let _ = writeln!(s, "policy {}: {admits}", p.name);
    }
    for h in rt.rules.hosts() {
        let _ = writeln!(
            s,
            "host[{}] {:<28} policy {:<10} bypass_paths {} bypass_resources {} allowed_networks {} claim_roles {}{}",
            h.index,
            h.pattern.to_string(),
            h.policy.name,
            h.bypass_paths.len(),
            h.bypass_resource_sources().len(),
            h.allowed_networks.len(),
            h.claim_roles.len(),
            h.source.as_deref().map(|f| format!("  (from {f})")).unwrap_or_default()
        );
        if h.case_insensitive_paths {
            let _ = writeln!(
                s,
                "  case_insensitive_paths: bypass paths, resources and rules match in any letter case"
            );
        }
        if let Some(names) = rt.host_headers.get(&h.index) {
            let _ = writeln!(
                s,
                "  headers user {} email {} name {} groups {}",
                names.user, names.email, names.name, names.groups
            );
        }
        for (j, r) in h.rules.iter().enumerate() {
            let paths: Vec<&str> = r.paths.iter().map(|p| p.as_str()).collect();
            let resources = r.resource_sources();
            let when = clauses(
                &[
                    ("paths", !paths.is_empty(), paths.join(",")),
                    ("resources", !resources.is_empty(), resources.join(" | ")),
                    ("methods", !r.methods.is_empty(), r.methods.join(",")),
                    ("networks", !r.networks.is_empty(), r.networks.to_string()),
                ],
                "every request",
            );
            let _ = writeln!(s, "  rules[{j}] {when} -> {}", r.action.describe());
        }
    }
    let mut all: Vec<&str> = rt.all_header_names().iter().map(|n| n.as_str()).collect();
    if let Some(a) = &rt.assertion {
        all.push(a.header.as_str());
    }
    let _ = writeln!(
        s,
        "identity headers (every protected site's proxy takes these from the answer and strips the client's): {}",
        all.join(", ")
    );
    match rt.rules.default_policy() {
        Some(p) => {
            let issuer = url::Url::parse(&rt.oidc.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "other hosts: policy {} (keep forward_auth / auth_request off {issuer} and {}: a sign-in page behind a sign-in loops)",
                p.name, rt.public_url.host
            );
        }
        None => {
            let _ = writeln!(s, "other hosts: denied (no default_policy)");
        }
    }
    s
}
