//! `[[hosts.rules]]` as a decision table: each row is one request, read in
//! DESIGN.md's order (host, bypass, rules, trusted network, identity, policy).
#![allow(
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test"
)]

use super::*;

/// A Gitea host with six `[[hosts.rules]]`, numbered in the file's comments
/// as the rows name them (`hosts[0].rules[N]`).
const GITEA: &str = include_str!("gitea.toml");

/// method, path, client, who → (outcome, rule name); the host is gitea.example.com.
type Row = (
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<Identity>,
    Outcome,
    &'static str,
);

/// Decides every row against `config`.
fn check(config: &str, rows: Vec<Row>) {
    let rules = load_rules_str(config).unwrap().value;
    for (i, (method, path, ip, who, outcome, rule)) in rows.into_iter().enumerate() {
        let facts = facts("gitea.example.com", path, ip, method);
        expect(&rules, i, &facts, who.as_ref(), (outcome, rule));
    }
}

use Outcome::{Allow, Bypass, Deny, Login};

const OUT: &str = "203.0.113.9";
const LAN: &str = "192.168.1.5";
const GET: Option<&str> = Some("GET");
const DELETE: Option<&str> = Some("DELETE");

fn alice() -> Option<Identity> {
    Some(user("alice", &["admins"]))
}
fn bob() -> Option<Identity> {
    Some(user("bob", &["users"]))
}

#[rustfmt::skip]
#[test]
fn step_2_bypass_keys_come_before_every_rule() {
    check(GITEA, vec![
        (GET,    "/api/health", OUT,        None, Bypass, "hosts[0].bypass_paths[0]"),
        // The DELETE deny rule would match; the bypass key decides first.
        (DELETE, "/api/health", OUT,        None, Bypass, "hosts[0].bypass_paths[0]"),
        // The blocked network too.
        (GET,    "/api/health", "10.9.0.1", None, Bypass, "hosts[0].bypass_paths[0]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn step_3_a_policy_rule_replaces_the_hosts_policy() {
    check(GITEA, vec![
        (GET, "/admin",       OUT, alice(), Allow, "hosts[0].rules[0]"),
        (GET, "/admin/users", OUT, alice(), Allow, "hosts[0].rules[0]"),
        (GET, "/admin",       OUT, bob(),   Deny,  "hosts[0].rules[0]"),
        (GET, "/admin",       OUT, None,    Login, "hosts[0].rules[0]"),
        // Prefixes end on segment boundaries: /adminx is the host's policy.
        (GET, "/adminx",      OUT, bob(),   Allow, "policies.users.allowed_groups[0]"),
        (GET, "/",            OUT, bob(),   Allow, "policies.users.allowed_groups[0]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn step_3_methods_and_networks_must_all_match() {
    check(GITEA, vec![
        (DELETE,       "/api/repos/1", LAN,        bob(),   Allow, "hosts[0].rules[1]"),
        (DELETE,       "/api/repos/1", OUT,        alice(), Deny,  "hosts[0].rules[2]"),
        (DELETE,       "/api/repos/1", OUT,        None,    Deny,  "hosts[0].rules[2]"),
        (GET,          "/api/repos/1", OUT,        bob(),   Allow, "policies.users.allowed_groups[0]"),
        (Some("POST"), "/api/repos",   OUT,        bob(),   Allow, "policies.users.allowed_groups[0]"),
        // A network-only rule applies to every path not taken earlier.
        (GET,          "/explore",     "10.9.3.4", alice(), Deny,  "hosts[0].rules[5]"),
        (GET,          "/admin",       "10.9.3.4", alice(), Allow, "hosts[0].rules[0]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn step_3_bypass_and_deny_actions() {
    check(GITEA, vec![
        (GET, "/public/logo.png",   OUT, None, Bypass, "hosts[0].rules[3]"),
        (GET, "/public/Logo.png",   OUT, None, Login,  "no session"),
        (GET, "/public/logo.png/x", OUT, None, Login,  "no session"),
    ]);
}

#[rustfmt::skip]
#[test]
fn step_4_a_rules_policy_brings_its_trusted_networks() {
    check(GITEA, vec![
        (GET, "/ops", "192.168.7.7", None,    Bypass, "hosts[0].rules[4]"),
        (GET, "/ops", OUT,           None,    Login,  "hosts[0].rules[4]"),
        (GET, "/ops", OUT,           bob(),   Deny,   "hosts[0].rules[4]"),
        (GET, "/ops", OUT,           alice(), Allow,  "hosts[0].rules[4]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn a_method_rule_without_a_method_from_the_proxy_is_denied() {
    check(GITEA, vec![
        (None, "/api/repos/1", OUT, alice(), Deny,  "hosts[0].rules[2].methods"),
        (None, "/api/repos/1", LAN, alice(), Deny,  "hosts[0].rules[1].methods"),
        // Rules without methods do not care.
        (None, "/admin",       OUT, alice(), Allow, "hosts[0].rules[0]"),
    ]);
}

#[rustfmt::skip]
#[test]
fn spelling_never_reaches_a_laxer_rule() {
    let ambiguous = "hosts[0].rules (ambiguous path)";
    check(GITEA, vec![
        // Spellings of /admin: never the host's laxer policy.
        (GET, "/public/../admin",   OUT, bob(),   Deny,  ambiguous),
        (GET, "/./admin",           OUT, bob(),   Deny,  ambiguous),
        (GET, "//admin",            OUT, bob(),   Deny,  ambiguous),
        (GET, "/%61dmin",           OUT, bob(),   Deny,  ambiguous),
        (GET, "/adm%69n",           OUT, bob(),   Deny,  ambiguous),
        (GET, "/x%2F..%2Fadmin",    OUT, bob(),   Deny,  ambiguous),
        (GET, "/x/..;/admin",       OUT, bob(),   Deny,  ambiguous),
        (GET, "/admin;x=1",         OUT, bob(),   Deny,  ambiguous),
        // Spellings of a bypassed image never bypass.
        (GET, "/public/%6Cogo.png", OUT, None,    Login, "no session"),
        (GET, "/public/./logo.png", OUT, None,    Login, "no session"),
        // A spelling that means the same rule in every reading is decided as usual.
        (GET, "/admin/./x",         OUT, alice(), Allow, "hosts[0].rules[0]"),
        (GET, "/admin/%78",         OUT, bob(),   Deny,  "hosts[0].rules[0]"),
        (GET, "/repo/%7Euser",      OUT, bob(),   Allow, "policies.users.allowed_groups[0]"),
    ]);
}

#[test]
fn explanations_name_the_rule_and_why_it_matched() {
    let rules = load_rules_str(GITEA).unwrap().value;
    let facts = facts("gitea.example.com", "/api/repos/1", LAN, DELETE);
    let bob = bob();
    let d = decide(&rules, &facts, bob.as_ref());
    let reason = d.reason(&rules, &facts, bob.as_ref());
    assert_eq!(d.rule_name(), "hosts[0].rules[1]");
    assert_eq!(d.policy_clause(), "policies.users.allowed_groups[0]");
    for part in [
        "hosts[0].rules[1] matched",
        "paths[0] \"/api\"",
        "method DELETE",
        "networks[0] (192.168.0.0/16)",
        "policy = \"users\"",
        "holds role \"users\"",
    ] {
        assert!(reason.contains(part), "{part:?} not in {reason:?}");
    }
}

#[test]
fn hosts_without_rules_decide_as_before() {
    let rules = load_rules_str(
        "[policies.users]\nallowed_groups=[\"users\"]\n[[hosts]]\nhost=\"gitea.example.com\"\npolicy=\"users\"\n",
    )
    .unwrap()
    .value;
    for path in ["/admin", "/public/../admin", "/%61dmin"] {
        let facts = facts("gitea.example.com", path, OUT, None);
        let d = decide(&rules, &facts, bob().as_ref());
        assert_eq!(d.outcome, Allow, "{path}");
        assert_eq!(d.path_rule, None);
    }
}

#[test]
fn a_regex_names_its_literal_start_only_in_whole_segments() {
    for (regex, literal) in [
        ("^/api/system/status$", Some("/api/system/status")),
        ("^/api/v[0-9]+/admin", Some("/api")),
        ("^/api/.*", Some("/api")),
        ("^/api", None),
        ("^/api$|^/other", None),
        ("^/(?i)admin", None),
        ("/api/x", None),
        ("^/[a-z]+/x", None),
        ("^/a\\.b/c", None),
    ] {
        assert_eq!(anchored_literal(regex), literal, "{regex}");
    }
}

#[test]
fn only_rules_that_could_match_are_tried() {
    let rules = load_rules_str(GITEA).unwrap().value;
    let h = &rules.hosts()[0];
    // rules[3]'s regex starts with `/public/`; rules[5] has no path key.
    assert_eq!(h.rules.candidates("/admin/x"), [0, 5]);
    assert_eq!(h.rules.candidates("/api"), [1, 2, 5]);
    assert_eq!(h.rules.candidates("/public/logo.png"), [3, 5]);
    assert_eq!(h.rules.candidates("/elsewhere"), [5]);
    assert_eq!(h.rules.candidates("/"), [5]);
    assert_eq!(h.rules.candidates("/admin;x/y"), [5]);
}

/// An ASP.NET Core backend (Sonarr, Jellyfin) routes `/ADMIN` like `/admin`.
const CASELESS: &str = include_str!("caseless.toml");

#[rustfmt::skip]
#[test]
fn case_insensitive_paths_match_rules_and_bypasses_in_any_letter_case() {
    check(CASELESS, vec![
        (GET, "/admin",       OUT, bob(),   Deny,   "hosts[0].rules[0]"),
        (GET, "/ADMIN",       OUT, bob(),   Deny,   "hosts[0].rules[0]"),
        (GET, "/Admin/users", OUT, bob(),   Deny,   "hosts[0].rules[0]"),
        (GET, "/ADMIN",       OUT, alice(), Allow,  "hosts[0].rules[0]"),
        // An escaped letter decodes to `/Admin`: the readings disagree.
        (GET, "/%41dmin",     OUT, bob(),   Deny,   "hosts[0].rules (ambiguous path)"),
        (GET, "/%61DMIN",     OUT, bob(),   Deny,   "hosts[0].rules (ambiguous path)"),
        (GET, "/api/secret",  OUT, bob(),   Deny,   "hosts[0].rules[1]"),
        (GET, "/API/SECRET",  OUT, bob(),   Deny,   "hosts[0].rules[1]"),
        (GET, "/Api/Secret",  OUT, alice(), Deny,   "hosts[0].rules[1]"),
        // `ſ` (U+017F), which .NET upper-cases to `S`.
        (GET, "/%C5%BFecret", OUT, bob(),   Deny,   "hosts[0].rules (ambiguous path)"),
        (GET, "/public/x",    OUT, None,    Bypass, "hosts[0].bypass_paths[0]"),
        (GET, "/PUBLIC/x",    OUT, None,    Bypass, "hosts[0].bypass_paths[0]"),
        (GET, "/publicx",     OUT, None,    Login,  "no session"),
        (GET, "/other",       OUT, bob(),   Allow,  "policies.users.allowed_groups[0]"),
    ]);
    // Without the switch letter case is a different path, as most backends read it.
    check(&CASELESS.replace("case_insensitive_paths = true", ""), vec![
        (GET, "/ADMIN",      OUT, bob(), Allow,  "policies.users.allowed_groups[0]"),
        (GET, "/api/secret", OUT, bob(), Allow,  "policies.users.allowed_groups[0]"),
        (GET, "/Public/x",   OUT, None,  Bypass, "hosts[0].bypass_paths[0]"),
        (GET, "/public/x",   OUT, None,  Login,  "no session"),
    ]);
}

/// Rules written with letters beyond ASCII, on a case-insensitive host.
const CASELESS_UNICODE: &str = include_str!("caseless_unicode.toml");

#[rustfmt::skip]
#[test]
fn case_insensitive_hosts_keep_regexes_with_letters_beyond_ascii() {
    let rows = || vec![
        (GET, "/Stra%C3%9Fe", OUT, bob(), Deny,  "hosts[0].rules (ambiguous path)"),
        (GET, "/Straße",      OUT, bob(), Deny,  "hosts[0].rules[0]"),
        (GET, "/Maße/x",      OUT, bob(), Deny,  "hosts[0].rules[1]"),
        (GET, "/Ma%C3%9Fe/x", OUT, bob(), Deny,  "hosts[0].rules (ambiguous path)"),
        (GET, "/other",       OUT, bob(), Allow, "policies.users.allowed_groups[0]"),
    ];
    check(&CASELESS_UNICODE.replace("case_insensitive_paths = true", ""), rows());
    let mut caseless = rows();
    caseless.extend([
        // Letter case, and `ẞ`, which Unicode's simple folding reads as `ß`.
        (GET, "/STRASSE",        OUT, bob(), Allow, "policies.users.allowed_groups[0]"),
        (GET, "/STRAßE",         OUT, bob(), Deny,  "hosts[0].rules[0]"),
        (GET, "/MAẞE/X",         OUT, bob(), Deny,  "hosts[0].rules[1]"),
        (GET, "/MA%E1%BA%9EE/X", OUT, bob(), Deny,  "hosts[0].rules (ambiguous path)"),
    ]);
    check(CASELESS_UNICODE, caseless);
}

#[test]
fn the_rules_index_folds_case_on_a_case_insensitive_host() {
    let rules = load_rules_str(CASELESS).unwrap().value;
    let h = &rules.hosts()[0];
    assert!(h.case_insensitive_paths);
    assert_eq!(h.bypass_paths[0].as_str(), "/public");
    assert_eq!(h.rules.candidates("/api/secret"), [1]);
    assert_eq!(h.rules.candidates("/secret"), [2]);
}
