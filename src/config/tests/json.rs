//! A JSON configuration (by the `.json` extension): the same keys as TOML,
//! for generators without a TOML writer (Nix's `builtins.toJSON`, Ansible).

use crate::config::{load, load_rules};
use crate::policy::{self, HostMatch, Outcome};

const SECRET: &str = "0123456789abcdef0123456789abcdef-json";

fn main_json(include: &str) -> String {
    format!(
        r#"{{
  "public_url": "https://auth.example.com",
  {include}
  "oidc": {{ "issuer": "https://id.example.com", "client_id": "pocketgate", "client_auth": "none" }},
  "session": {{ "secret": "{SECRET}", "cookie_domain": "example.com", "store": "cookie" }},
  "policies": {{ "admins": {{ "allowed_groups": ["admins"] }}, "users": {{ "allowed_groups": ["admins", "users"] }} }},
  "hosts": [
    {{
      "host": "gitea.example.com",
      "policy": "users",
      "bypass_paths": ["/api/healthz"],
      "rules": [ {{ "paths": ["/admin"], "policy": "admins" }} ]
    }}
  ]
}}"#
    )
}

/// Assert the decision for each row: a user in `groups` asks for `path` on `host`.
#[track_caller]
fn assert_decisions(rules: &policy::Rules, rows: &[(&str, &str, &[&str], Outcome)]) {
    for (host, path, groups, want) in rows {
        assert_eq!(
            &super::decide_for(rules, host, path, Some(groups)),
            want,
            "{host}{path} as {groups:?}"
        );
    }
}

#[test]
fn a_json_file_is_read_with_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.json");
    std::fs::write(&path, main_json("")).unwrap();
    let rt = load(&path).unwrap().value;
    assert_eq!(rt.public_url.origin, "https://auth.example.com");
    assert!(matches!(
        rt.rules.lookup_host("gitea.example.com"),
        HostMatch::Entry(_)
    ));
    #[rustfmt::skip]
    assert_decisions(&rt.rules, &[
        ("gitea.example.com", "/",      &["users"], Outcome::Allow),
        ("gitea.example.com", "/admin", &["users"], Outcome::Deny),
    ]);
    // explain reads the rules alone, from JSON too.
    let rules = load_rules(&path).unwrap().value;
    assert_decisions(
        &rules,
        &[("gitea.example.com", "/admin", &["admins"], Outcome::Allow)],
    );
}

#[test]
fn json_include_files_and_json_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/wiki.json"),
        r#"{ "hosts": [ { "host": "wiki.example.com", "policy": "admins" } ] }"#,
    )
    .unwrap();
    let path = dir.path().join("pocketgate.json");
    std::fs::write(&path, main_json(r#""include": ["conf.d/*.json"],"#)).unwrap();
    let rt = load(&path).unwrap().value;
    #[rustfmt::skip]
    assert_decisions(&rt.rules, &[
        ("wiki.example.com", "/", &["users"],  Outcome::Deny),
        ("wiki.example.com", "/", &["admins"], Outcome::Allow),
    ]);

    // An unknown key and an undefined policy, in JSON, are named like in TOML.
    std::fs::write(
        dir.path().join("conf.d/wiki.json"),
        r#"{ "hosts": [ { "host": "wiki.example.com", "policy": "ops", "bypass_path": ["/x"] } ] }"#,
    )
    .unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("conf.d/wiki.json"), "{err}");
    assert!(err.contains("hosts[0].bypass_path: unknown key"), "{err}");
    // A syntax error names the file.
    std::fs::write(dir.path().join("conf.d/wiki.json"), "{ \"hosts\": [ ").unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("conf.d/wiki.json"), "{err}");
    std::fs::write(&path, "{ not json").unwrap();
    assert!(load(&path).is_err());
}
