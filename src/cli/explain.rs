//! `pocketgate explain`: the decision for one request and the rule that made
//! it, from the rules alone; no network.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use crate::config;
use crate::domain::ClientAddr;
use crate::policy::{self, HostMatch, Identity, RequestFacts, Rules};

use super::{fail, ExplainArgs};

pub(super) fn explain(path: &Path, args: &ExplainArgs) -> ExitCode {
    let loaded = match config::load_rules(path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    match explain_text(&loaded.value, args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The identity a bearer token's claims would make (`-`: the token from
/// standard input). The signature and the standard claims are not checked
/// here: pocketgate does that when serving.
fn bearer_identity(rules: &Rules, token: &str) -> Result<Identity, String> {
    let token = if token == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), 64 * 1024),
            &mut t,
        )
        .map_err(|e| format!("--bearer -: {e}"))?;
        t
    } else {
        token.to_string()
    };
    let claims = crate::oidc::bearer::unverified_claims(token.trim()).map_err(|e| {
        format!("--bearer: {e} (an opaque token has no claims: only the provider (introspection, userinfo) can say who it is)")
    })?;
    let names = rules.claim_names();
    crate::oidc::identity_from_claim_names(
        &names.username,
        &names.groups,
        &rules.role_claims(),
        &claims,
    )
    .map_err(|e| format!("--bearer: {e}"))
}

/// The `explain` output for one simulated request.
pub fn explain_text(rules: &Rules, args: &ExplainArgs) -> Result<String, String> {
    let (target, assumed) = with_scheme(&args.url);
    let url = crate::request::parse_absolute_url(&target).map_err(|e| format!("--url: {e}"))?;
    let client = ClientAddr::new(args.ip.unwrap_or(IpAddr::from([192, 0, 2, 1])));
    let bearer = match args.bearer.as_deref() {
        Some(token) => Some(bearer_identity(rules, token)?),
        None => None,
    };
    let identity = bearer.or_else(|| {
        args.user.as_ref().map(|u| Identity {
            subject: u.clone(),
            user: u.clone(),
            groups: args
                .groups
                .iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
            ..Identity::default()
        })
    });
    let method = args.method.to_ascii_uppercase();
    let facts = RequestFacts {
        host: &url.host,
        path: url.path,
        client,
        method: Some(&method),
    };
    let decision = policy::decide(rules, &facts, identity.as_ref());
    let host_entry = match decision.host {
        HostMatch::Entry(h) => Some(match &h.source {
            Some(file) => format!("hosts[{}] ({}, from {file})", h.index, h.pattern),
            None => format!("hosts[{}] ({})", h.index, h.pattern),
        }),
        HostMatch::Default(_) => Some("default_policy".to_string()),
        HostMatch::Unknown => None,
    };
    let policy_name = decision.policy.map(|p| p.name.clone());
    let rule = decision.rule_name();
    let reason = decision.reason(rules, &facts, identity.as_ref());
    if args.json {
        let v = serde_json::json!({
            "outcome": decision.outcome,
            "host": url.host,
            "host_entry": host_entry,
            "policy": policy_name,
            "rule": rule,
            "policy_rule": decision.policy_clause(),
            "reason": reason,
            "url": target,
            "scheme_assumed": assumed,
        });
        return Ok(format!("{v}\n"));
    }
    let who = match &identity {
        Some(i) if args.bearer.is_some() => format!(
            "bearer token (claims not verified) of user {} (groups {})",
            i.user,
            if i.groups.is_empty() {
                "none".into()
            } else {
                i.groups.join(",")
            }
        ),
        Some(i) if i.groups.is_empty() => format!("user {} (no groups)", i.user),
        Some(i) => format!("user {} (groups {})", i.user, i.groups.join(",")),
        None => "no session".into(),
    };
    let ip_note = if args.ip.is_none() {
        " (default; pass --ip)"
    } else {
        ""
    };
    let scheme_note = if assumed {
        " (no scheme given: https assumed)"
    } else {
        ""
    };
    Ok(format!(
        "request  {} {target}{scheme_note}\nclient   {client}{ip_note}, {who}\nhost     {} -> {}\npolicy   {}\nrule     {rule}\nreason   {reason}\noutcome  {}\n",
        args.method.to_ascii_uppercase(),
        url.host,
        host_entry.as_deref().unwrap_or("no entry, no default_policy"),
        policy_name.as_deref().unwrap_or("-"),
        decision.outcome,
    ))
}

/// `--url` as given, or with `https://` in front when it names no scheme
/// (`grafana.example.com/x`): what a person means, since pocketgate sits
/// behind a TLS proxy. The flag says the scheme was assumed.
fn with_scheme(url: &str) -> (std::borrow::Cow<'_, str>, bool) {
    let url = url.trim();
    if url.contains("://") || url.starts_with('/') {
        (url.into(), false)
    } else {
        (format!("https://{url}").into(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_url(url: &str, json: bool) -> String {
        let rules = config::load_rules_str(
            "[policies.admins]\nallowed_groups = [\"admins\"]\n\
             [[hosts]]\nhost = \"grafana.example.com\"\npolicy = \"admins\"\n",
        )
        .unwrap()
        .value;
        let args = ExplainArgs {
            url: url.into(),
            method: "GET".into(),
            ip: None,
            user: None,
            groups: Vec::new(),
            bearer: None,
            json,
        };
        explain_text(&rules, &args).unwrap()
    }

    #[test]
    fn a_url_without_a_scheme_is_https_and_the_answer_says_so() {
        let out = explain_url("grafana.example.com/x", false);
        assert!(
            out.contains(
                "request  GET https://grafana.example.com/x (no scheme given: https assumed)"
            ),
            "{out}"
        );
        assert!(out.contains("hosts[0] (grafana.example.com)"), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&explain_url("grafana.example.com/x", true)).unwrap();
        assert_eq!(v["url"], "https://grafana.example.com/x");
        assert_eq!(v["scheme_assumed"], true);
        let given = explain_url("http://grafana.example.com/x", false);
        assert!(!given.contains("assumed"), "{given}");
    }
}
