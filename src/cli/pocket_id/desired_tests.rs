//! The desired state read off real configurations: URLs of every login
//! domain, the group restriction the policies in use imply, the secret files.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use super::*;
use crate::config::load_with_secret_paths;

const BASE: &str = r#"
public_url = "https://auth.example.com"
[oidc]
issuer = "https://id.example.com"
client_id = "pocketgate"
client_secret_file = "/nonexistent/pocketgate/client-secret"
[session]
secret_file = "/nonexistent/pocketgate/session"
cookie_domain = "example.com"
[[session.domains]]
cookie_domain = "example.org"
public_url = "https://auth.example.org"
[policies.admins]
allowed_groups = ["admins"]
[policies.users]
allowed_groups = ["admins", "users"]
[policies.open]
[[hosts]]
host = "grafana.example.com"
policy = "admins"
claim_roles = [{ claim = "groups", value = "grafana-admins", role = "admins" }]
[[hosts]]
host = "sonarr.example.com"
policy = "users"
"#;

/// `BASE` plus `extra`, loaded as setup loads it (the secret files need not exist).
fn desired_of(extra: &str, choices: &Choices) -> Result<Desired, SetupError> {
    desired_of_text(&format!("{BASE}{extra}"), choices)
}

/// The configuration `text`, loaded as setup loads it.
fn desired_of_text(text: &str, choices: &Choices) -> Result<Desired, SetupError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    std::fs::write(&path, text).unwrap();
    let (rt, paths) = load_with_secret_paths(&path).unwrap().value;
    desired(&rt, &paths, choices)
}

fn groups(r: &Restriction) -> Vec<(&str, bool)> {
    match r {
        Restriction::Groups(g) => g.iter().map(|g| (g.name.as_str(), g.required)).collect(),
        Restriction::Off(why) => panic!("no restriction: {why}"),
    }
}

#[test]
fn every_login_domain_gets_its_callback_and_logout_urls() {
    let d = desired_of("", &Choices::default()).unwrap();
    assert_eq!(d.client_id, "pocketgate");
    assert_eq!(d.client_name, "pocketgate");
    assert_eq!(
        d.callback_urls,
        [
            "https://auth.example.com/callback",
            "https://auth.example.org/callback"
        ]
    );
    assert_eq!(
        d.logout_callback_urls,
        [
            "https://auth.example.com/logout/done",
            "https://auth.example.org/logout/done"
        ]
    );
    assert_eq!(
        d.secret_file.as_deref(),
        Some(std::path::Path::new(
            "/nonexistent/pocketgate/client-secret"
        ))
    );
    assert!(d.scim.is_none());
}

#[test]
fn the_groups_of_the_policies_in_use_and_of_claim_roles() {
    let d = desired_of("", &Choices::default()).unwrap();
    // "admins" is also a role claim_roles grants: not required to be a group
    assert_eq!(
        groups(&d.restriction),
        [("admins", false), ("users", true), ("grafana-admins", true)]
    );
}

#[test]
fn a_rule_s_policy_counts_and_an_unused_open_policy_does_not() {
    let d = desired_of(
        "[[hosts.rules]]\npaths = [\"/x\"]\npolicy = \"users\"\n",
        &Choices::default(),
    )
    .unwrap();
    assert!(matches!(d.restriction, Restriction::Groups(_)));
}

#[test]
fn a_policy_in_use_that_admits_anyone_turns_the_restriction_off() {
    for text in [
        format!("{BASE}[[hosts]]\nhost = \"lan.example.com\"\npolicy = \"open\"\n"),
        format!("{BASE}[[hosts.rules]]\npaths = [\"/pub\"]\npolicy = \"open\"\n"),
        format!("default_policy = \"open\"\n{BASE}"),
    ] {
        let d = desired_of_text(&text, &Choices::default()).unwrap();
        match d.restriction {
            Restriction::Off(why) => assert!(why.contains("\"open\""), "{why}"),
            r => panic!("{text}: {r:?}"),
        }
        // still named, for the check of their friendly names
        assert_eq!(d.named_groups, ["admins", "users", "grafana-admins"]);
    }
}

#[test]
fn claim_roles_from_another_claim_turn_the_restriction_off() {
    let d = desired_of(
        "[[hosts]]\nhost = \"wiki.example.com\"\npolicy = \"admins\"\nclaim_roles = [{ claim = \"email\", value = \"boss@example.com\", role = \"admins\" }]\n",
        &Choices::default(),
    )
    .unwrap();
    assert!(matches!(d.restriction, Restriction::Off(ref why) if why.contains("\"email\"")));
}

#[test]
fn choices_override_the_configuration() {
    let d = desired_of(
        "",
        &Choices {
            client_name: Some("Gate".into()),
            client_secret_file: Some("/tmp/x/secret".into()),
            no_group_restriction: true,
            scim_token_file: Some("/tmp/x/scim".into()),
            scim_endpoint: None,
            no_scim: false,
        },
    )
    .unwrap();
    assert_eq!(d.client_name, "Gate");
    assert_eq!(
        d.secret_file.as_deref(),
        Some(std::path::Path::new("/tmp/x/secret"))
    );
    assert!(matches!(d.restriction, Restriction::Off(_)));
    let scim = d.scim.unwrap();
    assert_eq!(scim.endpoint, "https://auth.example.com/scim/v2");
    assert_eq!(scim.token_file, std::path::Path::new("/tmp/x/scim"));
}

#[test]
fn no_secret_file_anywhere_is_an_error_unless_the_client_is_public() {
    let without = BASE.replace(
        "client_secret_file = \"/nonexistent/pocketgate/client-secret\"\n",
        "",
    );
    assert!(matches!(
        desired_of_text(&without, &Choices::default()),
        Err(SetupError::NoSecretFile)
    ));
    let public = without.replace(
        "client_id = \"pocketgate\"",
        "client_id = \"pocketgate\"\nclient_auth = \"none\"",
    );
    assert_eq!(
        desired_of_text(&public, &Choices::default())
            .unwrap()
            .secret_file,
        None
    );
}

#[test]
fn scim_follows_the_configuration_s_token_file_unless_told_otherwise() {
    let extra = "[scim]\ntoken_file = \"/nonexistent/pocketgate/scim\"\n";
    let d = desired_of(extra, &Choices::default()).unwrap();
    let scim = d.scim.unwrap();
    assert_eq!(
        scim.token_file,
        std::path::Path::new("/nonexistent/pocketgate/scim")
    );
    assert_eq!(scim.endpoint, "https://auth.example.com/scim/v2");
    let off = Choices {
        no_scim: true,
        ..Choices::default()
    };
    assert!(desired_of(extra, &off).unwrap().scim.is_none());
}
