//! `[[hosts.rules]]` in the configuration: what is refused, and the rules
//! `check` warns can never match.

use super::*;

const POLICIES: &str = r#"
[policies.admins]
allowed_groups = ["admins"]
[policies.users]
allowed_groups = ["admins", "users"]
"#;

fn rules(hosts: &str) -> Result<Loaded<Rules>, ConfigErrors> {
    load_rules_str(&format!("{POLICIES}\n{hosts}"))
}

fn err(hosts: &str) -> String {
    match rules(hosts) {
        Ok(_) => panic!("expected an error for:\n{hosts}"),
        Err(e) => e.to_string(),
    }
}

fn warnings(hosts: &str) -> Vec<String> {
    rules(hosts).unwrap().warnings
}

const HOST: &str = "[[hosts]]\nhost = \"gitea.example.com\"\npolicy = \"users\"\n";

#[test]
fn a_rule_compiles_with_every_key() {
    let loaded = rules(&format!(
        "{HOST}[[hosts.rules]]\npaths = [\"/admin/\"]\nresources = ['^/api/v[0-9]+/admin']\nmethods = [\"post\", \"DELETE\", \"POST\"]\nnetworks = [\"10.0.0.0/8\"]\npolicy = \"admins\"\n"
    ))
    .unwrap();
    let host = &loaded.value.hosts()[0];
    let rule = &host.rules[0];
    assert_eq!(rule.paths[0].as_str(), "/admin");
    assert_eq!(rule.resource_sources(), ["^/api/v[0-9]+/admin"]);
    assert_eq!(rule.methods, ["POST", "DELETE"]);
    assert_eq!(rule.networks.to_string(), "10.0.0.0/8");
    assert!(matches!(&rule.action, crate::policy::RuleAction::Policy(p) if p.name == "admins"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_rule_does_exactly_one_thing() {
    let both = err(&format!(
        "{HOST}[[hosts.rules]]\npaths = [\"/a\"]\npolicy = \"admins\"\naction = \"deny\"\n"
    ));
    assert!(
        both.contains("hosts[0].rules[0]: sets both policy and action"),
        "{both}"
    );
    let neither = err(&format!("{HOST}[[hosts.rules]]\npaths = [\"/a\"]\n"));
    assert!(
        neither.contains("hosts[0].rules[0].policy: missing"),
        "{neither}"
    );
    let bad = err(&format!(
        "{HOST}[[hosts.rules]]\npaths = [\"/a\"]\naction = \"allow\"\n"
    ));
    assert!(
        bad.contains("hosts[0].rules[0].action: \"allow\" is not an action"),
        "{bad}"
    );
    let undefined = err(&format!(
        "{HOST}[[hosts.rules]]\npaths = [\"/a\"]\npolicy = \"ops\"\n"
    ));
    assert!(
        undefined.contains("hosts[0].rules[0].policy: policy \"ops\" is not defined"),
        "{undefined}"
    );
}

#[test]
fn every_mistake_in_a_rule_is_named() {
    let e = err(&format!(
        "{HOST}[[hosts.rules]]\npaths = [\"admin\", \"/a/../b\"]\nresources = [\"(\"]\nmethods = [\"GET /\"]\nnetworks = [\"10.0.0.0/33\"]\naction = \"deny\"\n"
    ));
    for key in [
        "hosts[0].rules[0].paths[0]",
        "hosts[0].rules[0].paths[1]",
        "hosts[0].rules[0].resources[0]",
        "hosts[0].rules[0].methods[0]",
        "hosts[0].rules[0].networks[0]",
    ] {
        assert!(e.contains(key), "{key} not in:\n{e}");
    }
    let unknown = err(&format!(
        "{HOST}[[hosts.rules]]\npath = [\"/a\"]\naction = \"deny\"\n"
    ));
    assert!(
        unknown.contains(
            "hosts[0].rules[0].path: unknown key (did you mean `hosts[0].rules[0].paths`?)"
        ),
        "{unknown}"
    );
}

/// The example configuration shipped in `examples/`.
pub(super) fn example_file() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/pocketgate.toml"
    ))
    .unwrap()
}

#[test]
fn the_seed_example_warns_about_its_shadowed_regex() {
    let text = example_file();
    let w = load_rules_str(&text).unwrap().warnings;
    assert!(
        w.iter().any(|w| w.contains("bypass_resources[0] (\"^/api/system/status$\") never decides: bypass_paths[0] (\"/api\")")),
        "{w:?}"
    );
}

#[test]
fn rules_no_request_can_reach_are_warned_about() {
    let w = warnings(
        "[[hosts]]\nhost = \"gitea.example.com\"\npolicy = \"users\"\nbypass_paths = [\"/api\"]\n\
         [[hosts.rules]]\npaths = [\"/api/admin\"]\naction = \"deny\"\n\
         [[hosts.rules]]\npaths = [\"/admin\"]\npolicy = \"admins\"\n\
         [[hosts.rules]]\npaths = [\"/admin/users\"]\nmethods = [\"DELETE\"]\naction = \"deny\"\n\
         [[hosts.rules]]\nresources = ['^/admin/x$']\naction = \"deny\"\n\
         [[hosts.rules]]\npaths = [\"/ops\"]\nmethods = [\"GET\"]\npolicy = \"admins\"\n\
         [[hosts.rules]]\npaths = [\"/ops\"]\naction = \"deny\"\n",
    );
    let has = |needle: &str| w.iter().any(|w| w.contains(needle));
    assert!(
        has("hosts[0].rules[0] can never match a path in normal form: bypass_paths[0] (\"/api\")"),
        "{w:?}"
    );
    assert!(
        has("hosts[0].rules[2] can never match: hosts[0].rules[1] comes first"),
        "{w:?}"
    );
    assert!(
        has("hosts[0].rules[3] can never match: hosts[0].rules[1] comes first"),
        "{w:?}"
    );
    // A narrower earlier rule (GET only) does not shadow a wider later one.
    assert!(!has("hosts[0].rules[5]"), "{w:?}");
    assert_eq!(w.len(), 3, "{w:?}");
}

#[test]
fn a_bypass_key_with_networks_does_not_shadow_rules() {
    let w = warnings(
        "[[hosts]]\nhost = \"gitea.example.com\"\npolicy = \"users\"\nbypass_paths = [\"/api\"]\nallowed_networks = [\"10.0.0.0/8\"]\n\
         [[hosts.rules]]\npaths = [\"/api/admin\"]\naction = \"deny\"\n",
    );
    assert!(w.is_empty(), "{w:?}");
}
