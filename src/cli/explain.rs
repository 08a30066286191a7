//! `pocketgate explain`: the decision for one request and the rule that made
//! it, from the rules alone; no network.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use crate::config;
use crate::domain::ClientAddr;
use crate::policy::{self, HostMatch, Identity, Outcome, RequestFacts, Rule, Rules, SignIn};

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
    let now = kit::unix_now();
    let identity = bearer.or_else(|| {
        args.user.as_ref().map(|u| Identity {
            sign_in: SignIn {
                auth_time: args
                    .signed_in_ago
                    .map(|ago| now.saturating_sub(ago.as_secs())),
                amr: args
                    .amr
                    .iter()
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect(),
            },
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
    let decision = policy::decide_at(rules, &facts, identity.as_ref(), now);
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
        let v = match step_up_json(&decision) {
            Some(step_up) => {
                let mut v = v;
                v["step_up"] = step_up;
                v
            }
            None => v,
        };
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
    let who = match &identity {
        Some(i) if args.bearer.is_some() || !i.sign_in.is_unknown() || needs_sign_in(&decision) => {
            format!(
                "{who}; {}",
                policy::signed_in(&i.sign_in).replacen("they ", "", 1)
            )
        }
        _ => who,
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

/// Whether the decision's rule (else host) asks anything of the sign-in.
fn needs_sign_in(decision: &policy::Decision<'_>) -> bool {
    decision.step_up.is_some()
}

/// `"step_up": {"max_age": 600, "amr": ["phr"], "missing": ["max_age"]}`
/// for a step-up; `None` for every other outcome.
fn step_up_json(decision: &policy::Decision<'_>) -> Option<serde_json::Value> {
    let (Outcome::StepUp, Rule::StepUp { missing, .. }, Some(s)) =
        (decision.outcome, decision.rule, decision.step_up)
    else {
        return None;
    };
    Some(serde_json::json!({
        "max_age": s.max_age,
        "amr": s.amr,
        "missing": missing.keys(),
    }))
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

    const WIKI: &str = "[policies.users]\nallowed_groups = [\"users\"]\n\
        [[hosts]]\nhost = \"wiki.example.com\"\npolicy = \"users\"\n\
        [[hosts.rules]]\npaths = [\"/admin\"]\npolicy = \"users\"\nmax_age = \"10m\"\namr = [\"phr\"]\n";

    fn explain_as(
        url: &str,
        ago: Option<&str>,
        amr: &[&str],
        bearer: Option<String>,
        json: bool,
    ) -> String {
        let rules = config::load_rules_str(WIKI).unwrap().value;
        let args = ExplainArgs {
            url: url.into(),
            method: "GET".into(),
            ip: None,
            user: bearer.is_none().then(|| "bob".to_string()),
            groups: if bearer.is_none() {
                vec!["users".into()]
            } else {
                Vec::new()
            },
            bearer,
            json,
            signed_in_ago: ago.map(|a| a.parse().unwrap()),
            amr: amr.iter().map(|m| m.to_string()).collect(),
        };
        explain_text(&rules, &args).unwrap()
    }

    /// An unsigned JWT with these claims (explain reads, never verifies).
    fn jwt(claims: serde_json::Value) -> String {
        use base64::Engine as _;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    #[test]
    fn a_simulated_sign_in_is_stepped_up_when_too_old_or_of_another_method() {
        let v: serde_json::Value = serde_json::from_str(&explain_as(
            "https://wiki.example.com/admin",
            Some("20m"),
            &["otp"],
            None,
            true,
        ))
        .unwrap();
        assert_eq!(v["outcome"], "step_up");
        assert_eq!(
            v["step_up"],
            serde_json::json!({"max_age": 600, "amr": ["phr"], "missing": ["max_age", "amr"]})
        );
        let text = explain_as(
            "https://wiki.example.com/admin",
            Some("20m"),
            &["otp"],
            None,
            false,
        );
        assert!(text.contains("outcome  step_up"), "{text}");
        assert!(text.contains("hosts[0].rules[0]"), "{text}");
        assert!(
            text.contains("signed in with a one-time code (otp)"),
            "{text}"
        );
        assert!(
            text.contains("needs a sign-in with a passkey (phr) and a sign-in within the last 10m"),
            "{text}"
        );
        // Fresh and with a passkey: allowed; without a simulated sign-in: unknown, stepped up.
        let ok = explain_as(
            "https://wiki.example.com/admin",
            Some("1m"),
            &["phr"],
            None,
            false,
        );
        assert!(ok.contains("outcome  allow"), "{ok}");
        let unknown = explain_as("https://wiki.example.com/admin", None, &[], None, true);
        let v: serde_json::Value = serde_json::from_str(&unknown).unwrap();
        assert_eq!(
            v["step_up"]["missing"],
            serde_json::json!(["max_age", "amr"])
        );
        // Only the rule asks: `/` is allowed whatever the sign-in.
        let home = explain_as("https://wiki.example.com/", None, &[], None, true);
        assert!(home.contains("\"outcome\":\"allow\""), "{home}");
        assert!(!home.contains("step_up"), "{home}");
    }

    #[test]
    fn a_bearer_tokens_own_claims_are_its_sign_in() {
        let now = kit::unix_now();
        let token = |claims| Some(jwt(claims));
        let fresh = explain_as(
            "https://wiki.example.com/admin",
            None,
            &[],
            token(
                serde_json::json!({"sub": "s", "preferred_username": "bob", "groups": ["users"], "amr": ["phr"], "auth_time": now - 30}),
            ),
            false,
        );
        assert!(fresh.contains("outcome  allow"), "{fresh}");
        assert!(fresh.contains("claims not verified"), "{fresh}");
        // iat is no sign-in time.
        let iat_only = explain_as(
            "https://wiki.example.com/admin",
            None,
            &[],
            token(
                serde_json::json!({"sub": "s", "preferred_username": "bob", "groups": ["users"], "amr": "phr", "iat": now}),
            ),
            true,
        );
        let v: serde_json::Value = serde_json::from_str(&iat_only).unwrap();
        assert_eq!(v["step_up"]["missing"], serde_json::json!(["max_age"]));
    }

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
            signed_in_ago: None,
            amr: Vec::new(),
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
