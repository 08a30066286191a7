//! Step 8, step-up, as a decision table: an allow whose sign-in is too old
//! or of another method than the matched rule (else the host) asks becomes
//! `step_up`; denies, bypasses and trusted networks are never asked.
#![allow(
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test"
)]

use super::*;

const NOW: u64 = 1_700_000_000;

/// A wiki whose pages need any fresh-enough sign-in (the host: 1h), whose
/// `/admin` needs a passkey within 10 minutes (the rule), whose `/api`
/// bypasses, and whose `/open` uses a policy for the office network.
const WIKI: &str = r#"
[policies.users]
allowed_groups = ["users"]
[policies.admins]
allowed_groups = ["admins"]
[policies.office]
allowed_groups = ["users"]
allowed_networks = ["192.168.0.0/16"]
[[hosts]]
host = "wiki.example.com"
policy = "users"
max_age = "1h"
[[hosts.rules]]
paths = ["/admin"]
policy = "admins"
max_age = "10m"
amr = ["phr"]
[[hosts.rules]]
paths = ["/api"]
action = "bypass"
[[hosts.rules]]
paths = ["/open"]
policy = "office"
[[hosts.rules]]
paths = ["/closed"]
action = "deny"
[[hosts]]
host = "plain.example.com"
policy = "users"
"#;

/// A user in `groups` who signed in `ago` seconds before NOW (`None`:
/// unknown) with `amr`.
fn signed(groups: &[&str], ago: Option<u64>, amr: &[&str]) -> Option<Identity> {
    let mut u = user("ann", groups);
    u.sign_in = SignIn {
        auth_time: ago.map(|a| NOW - a),
        amr: amr.iter().map(|m| m.to_string()).collect(),
    };
    Some(u)
}

use Outcome::{Allow, Bypass, Deny, Login, StepUp};

const OUT: &str = "203.0.113.9";
const LAN: &str = "192.168.1.5";

#[rustfmt::skip]
#[test]
fn the_matched_rule_else_the_host_asks_and_an_allow_steps_up_when_unmet() {
    let rules = load_rules_str(WIKI).unwrap().value;
    let both = &["users", "admins"][..];
    let rows: Vec<Row> = vec![
        // host: max_age 1h
        ("wiki.example.com",  "/",      OUT, signed(both, Some(60), &["otp"]),    Allow,  "policies.users.allowed_groups[0]"),
        ("wiki.example.com",  "/",      OUT, signed(both, Some(3600), &["otp"]),  Allow,  "policies.users.allowed_groups[0]"),
        ("wiki.example.com",  "/",      OUT, signed(both, Some(3601), &["otp"]),  StepUp, "hosts[0].max_age (1h)"),
        // unknown sign-in time never meets a max_age
        ("wiki.example.com",  "/",      OUT, signed(both, None, &["phr"]),        StepUp, "hosts[0].max_age (1h)"),
        // rule: a passkey within 10m (amr from the rule, max_age from the rule)
        ("wiki.example.com",  "/admin", OUT, signed(both, Some(60), &["phr"]),    Allow,  "hosts[0].rules[0]"),
        ("wiki.example.com",  "/admin", OUT, signed(both, Some(60), &["otp"]),    StepUp, "hosts[0].rules[0]"),
        ("wiki.example.com",  "/admin", OUT, signed(both, Some(601), &["phr"]),   StepUp, "hosts[0].rules[0]"),
        ("wiki.example.com",  "/admin", OUT, signed(both, Some(60), &[]),         StepUp, "hosts[0].rules[0]"),
        // a sign-in in the future (skew) counts as now
        ("wiki.example.com",  "/admin", OUT, {let mut u = signed(both, Some(0), &["phr"]); if let Some(u) = u.as_mut() { u.sign_in.auth_time = Some(NOW + 30) }; u}, Allow, "hosts[0].rules[0]"),
        // a deny stays a deny: a fresh sign-in would not help
        ("wiki.example.com",  "/admin", OUT, signed(&["users"], None, &[]),       Deny,   "hosts[0].rules[0]"),
        // no session: login, not step-up
        ("wiki.example.com",  "/admin", OUT, None,                                Login,  "hosts[0].rules[0]"),
        // bypass rules and trusted networks never look at the sign-in
        ("wiki.example.com",  "/api/x", OUT, signed(both, None, &[]),             Bypass, "hosts[0].rules[1]"),
        ("wiki.example.com",  "/open",  LAN, signed(both, None, &[]),             Bypass, "hosts[0].rules[2]"),
        ("wiki.example.com",  "/closed",OUT, signed(both, Some(1), &["phr"]),     Deny,   "hosts[0].rules[3]"),
        // the office rule's policy inherits the host's max_age
        ("wiki.example.com",  "/open",  OUT, signed(both, Some(7200), &["phr"]),  StepUp, "hosts[0].rules[2]"),
        // a host without the keys asks nothing
        ("plain.example.com", "/",      OUT, signed(both, None, &[]),             Allow,  "policies.users.allowed_groups[0]"),
    ];
    for (i, (host, path, ip, who, outcome, rule)) in rows.into_iter().enumerate() {
        let f = facts(host, path, ip, Some("GET"));
        let d = decide_at(&rules, &f, who.as_ref(), NOW);
        assert_eq!((d.outcome, d.rule_name().as_str()), (outcome, rule), "row {i}: {}", d.reason(&rules, &f, who.as_ref()));
    }
}

#[test]
fn the_step_up_says_what_is_missing() {
    let rules = load_rules_str(WIKI).unwrap().value;
    let f = facts("wiki.example.com", "/admin", OUT, Some("GET"));
    let who = signed(&["admins"], Some(900), &["otp"]);
    let d = decide_at(&rules, &f, who.as_ref(), NOW);
    assert_eq!(d.outcome, StepUp);
    assert_eq!(d.outcome.as_str(), "step_up");
    let Rule::StepUp { missing, .. } = d.rule else {
        panic!("{:?}", d.rule)
    };
    assert_eq!(missing.keys(), ["max_age", "amr"]);
    assert_eq!(
        d.policy_clause(),
        "hosts[0].rules[0].max_age (10m), hosts[0].rules[0].amr (phr)"
    );
    let reason = d.reason(&rules, &f, who.as_ref());
    assert!(
        reason.contains("needs a sign-in with a passkey (phr) and a sign-in within the last 10m"),
        "{reason}"
    );
    assert!(reason.contains("with a one-time code (otp)"), "{reason}");
    // Without a clock every max_age counts as lapsed.
    assert_eq!(
        decide(&rules, &f, signed(&["admins"], Some(0), &["phr"]).as_ref()).outcome,
        StepUp
    );
}

#[test]
fn an_old_session_without_sign_in_facts_opens_as_unknown() {
    let old = r#"{"s":"sub-ann","u":"ann","g":["users"]}"#;
    let id: Identity = serde_json::from_str(old).unwrap();
    assert!(id.sign_in.is_unknown());
    // and nothing is written for an unknown sign-in
    assert!(!serde_json::to_string(&id).unwrap().contains("si"));
}
