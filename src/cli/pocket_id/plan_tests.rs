//! The plan, case by case: a fresh Pocket ID, one that is up to date, and
//! each way it can have drifted. No network: `Current` is what Pocket ID
//! and the disk would have answered.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

const CB: &str = "https://auth.example.com/callback";
const CB2: &str = "https://auth.example.org/callback";
const LO: &str = "https://auth.example.com/logout/done";
const LO2: &str = "https://auth.example.org/logout/done";
const SCIM: &str = "https://auth.example.com/scim/v2";

fn want() -> Desired {
    Desired {
        client_id: "pocketgate".into(),
        client_name: "pocketgate".into(),
        callback_urls: vec![CB.into(), CB2.into()],
        logout_callback_urls: vec![LO.into(), LO2.into()],
        secret_file: Some(PathBuf::from("/run/secrets/client")),
        restriction: Restriction::Groups(vec![
            GroupWant {
                name: "admins".into(),
                required: true,
            },
            GroupWant {
                name: "users".into(),
                required: true,
            },
        ]),
        named_groups: vec!["admins".into(), "users".into()],
        scim: Some(ScimWant {
            endpoint: SCIM.into(),
            token_file: PathBuf::from("/run/secrets/scim"),
        }),
    }
}

fn groups() -> BTreeMap<String, String> {
    [("admins", "g1"), ("users", "g2")]
        .into_iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect()
}

/// Pocket ID and the disk after a complete run.
fn up_to_date() -> Current {
    Current {
        client: Some(ClientNow {
            callback_urls: vec![CB2.into(), CB.into()],
            logout_callback_urls: vec![LO.into(), LO2.into()],
            public: false,
            pkce: true,
            pushed_authorization: false,
            group_restricted: true,
            groups: vec!["users".into(), "admins".into()],
        }),
        groups: groups(),
        friendly_names: groups().into_keys().map(|n| (n.clone(), n)).collect(),
        secret_file: true,
        scim: Some(ScimNow {
            id: "sp1".into(),
            endpoint: SCIM.into(),
            token: "tok".into(),
        }),
        scim_token: Some("tok".into()),
    }
}

fn fresh() -> Current {
    Current {
        groups: groups(),
        ..Current::default()
    }
}

fn set_groups() -> Step {
    Step::SetGroups(vec![
        ("admins".into(), "g1".into()),
        ("users".into(), "g2".into()),
    ])
}

fn secret(stale: bool) -> Step {
    Step::CreateSecret {
        path: "/run/secrets/client".into(),
        stale,
    }
}

fn update(changes: &[&str]) -> Step {
    Step::UpdateClient(changes.iter().map(|s| s.to_string()).collect())
}

fn scim_update(changes: &[&str]) -> Step {
    Step::UpdateScim {
        id: "sp1".into(),
        changes: changes.iter().map(|s| s.to_string()).collect(),
    }
}

fn token() -> Step {
    Step::WriteScimToken("/run/secrets/scim".into())
}

#[rustfmt::skip]
#[test]
fn plans() {
    type Edit = fn(&mut Desired, &mut Current);
    let cases: Vec<(&str, Edit, Vec<Step>)> = vec![
        ("fresh Pocket ID, no files",       |_, n| *n = fresh(),
            vec![Step::CreateClient, set_groups(), secret(false), token(), Step::CreateScim]),
        ("fresh Pocket ID, files left over", |_, n| { *n = fresh(); n.secret_file = true; n.scim_token = Some("tok".into()); },
            vec![Step::CreateClient, set_groups(), secret(true), Step::CreateScim]),
        ("up to date",                      |_, _| {}, vec![]),
        ("drifted callback URLs",           |_, n| n.client.as_mut().unwrap().callback_urls = vec!["https://old.example.com/callback".into()],
            vec![update(&["callback URLs [https://old.example.com/callback] -> [https://auth.example.com/callback, https://auth.example.org/callback]"])]),
        ("drifted logout URLs",             |_, n| { n.client.as_mut().unwrap().logout_callback_urls.pop(); },
            vec![update(&["logout callback URLs [https://auth.example.com/logout/done] -> [https://auth.example.com/logout/done, https://auth.example.org/logout/done]"])]),
        ("PKCE off, PAR on, public",        |_, n| { let c = n.client.as_mut().unwrap(); c.pkce = false; c.pushed_authorization = true; c.public = true; },
            vec![update(&["public client true -> false", "PKCE off -> on", "pushed authorization requests on -> off (pocketgate sends none)"])]),
        ("a group dropped from the client", |_, n| n.client.as_mut().unwrap().groups = vec!["admins".into()],
            vec![set_groups()]),
        ("restriction switched off",        |_, n| { let c = n.client.as_mut().unwrap(); c.group_restricted = false; c.groups.clear(); },
            vec![update(&["group restriction off -> on"]), set_groups()]),
        ("--no-group-restriction",          |w, _| w.restriction = Restriction::Off("--no-group-restriction".into()),
            vec![update(&["group restriction on -> off"])]),
        ("secret file gone",                |_, n| n.secret_file = false, vec![secret(false)]),
        ("public client: no secret",        |w, n| { w.secret_file = None; n.secret_file = false; },
            vec![update(&["public client false -> true"])]),
        ("SCIM endpoint moved",             |_, n| n.scim.as_mut().unwrap().endpoint = "http://old/scim/v2".into(),
            vec![scim_update(&["endpoint http://old/scim/v2 -> https://auth.example.com/scim/v2"])]),
        ("SCIM token file gone",            |_, n| n.scim_token = None,
            vec![token(), scim_update(&["token -> a new one"])]),
        ("SCIM token differs",              |_, n| n.scim_token = Some("other".into()),
            vec![scim_update(&["token -> the one in /run/secrets/scim"])]),
        ("no SCIM provider yet",            |_, n| n.scim = None, vec![Step::CreateScim]),
        ("SCIM not wanted",                 |w, n| { w.scim = None; n.scim = None; }, vec![]),
    ];
    for (name, edit, steps) in cases {
        let (mut w, mut n) = (want(), up_to_date());
        edit(&mut w, &mut n);
        let p = plan(&w, &n);
        assert_eq!(p.steps, steps, "{name}");
        assert!(p.missing_groups.is_empty(), "{name}");
        assert_eq!(p.is_empty(), steps.is_empty(), "{name}");
    }
}

#[test]
fn a_missing_group_is_reported_and_blocks_nothing_else_silently() {
    let mut now = fresh();
    now.groups.remove("users");
    let p = plan(&want(), &now);
    assert_eq!(p.missing_groups, vec!["users".to_string()]);
    // the command stops on missing groups before applying anything
    assert!(p.restricted);
}

#[test]
fn a_role_only_claim_roles_grants_need_not_be_a_group() {
    let mut w = want();
    w.restriction = Restriction::Groups(vec![
        GroupWant {
            name: "admins".into(),
            required: false,
        },
        GroupWant {
            name: "users".into(),
            required: true,
        },
    ]);
    let mut now = up_to_date();
    now.groups.remove("admins");
    now.client.as_mut().unwrap().groups = vec!["users".into()];
    let p = plan(&w, &now);
    assert!(p.missing_groups.is_empty());
    assert!(p.steps.is_empty(), "{:?}", p.steps);
}

#[test]
fn no_group_found_means_no_restriction_rather_than_nobody() {
    let mut w = want();
    w.restriction = Restriction::Groups(vec![GroupWant {
        name: "admins".into(),
        required: false,
    }]);
    let p = plan(&w, &fresh_without_groups());
    assert!(!p.restricted);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::SetGroups(_))));
    assert!(
        p.notes.iter().any(|n| n.contains("no group restriction")),
        "{:?}",
        p.notes
    );
}

fn fresh_without_groups() -> Current {
    Current::default()
}

#[test]
fn the_plan_reads_as_pocket_id_s_admin_pages() {
    let w = want();
    let p = plan(&w, &fresh());
    let lines: Vec<String> = p
        .steps
        .iter()
        .map(|s| Described(s, &w).to_string())
        .collect();
    assert_eq!(lines[0], "create OIDC client \"pocketgate\" named \"pocketgate\": callback URLs [https://auth.example.com/callback, https://auth.example.org/callback], logout callback URLs [https://auth.example.com/logout/done, https://auth.example.org/logout/done], PKCE on, confidential (a secret)");
    assert_eq!(
        lines[1],
        "allow only the groups admins, users to sign in to \"pocketgate\""
    );
    assert!(
        lines[2].contains("/run/secrets/client (mode 0600)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].contains("endpoint https://auth.example.com/scim/v2"),
        "{}",
        lines[4]
    );
}

#[test]
fn with_scim_a_friendly_name_scim_cannot_match_to_the_name_is_flagged() {
    let mut now = up_to_date();
    // Pocket ID's default: the name derived from the friendly name.
    now.friendly_names.insert("admins".into(), "Admins".into());
    assert!(plan(&want(), &now).friendly_mismatch.is_empty());
    // Edited by hand into something SCIM cannot tell is this group.
    now.friendly_names
        .insert("admins".into(), "Operators".into());
    let p = plan(&want(), &now);
    assert_eq!(
        p.friendly_mismatch,
        vec![("admins".to_string(), "Operators".to_string())]
    );
    assert!(p.steps.is_empty(), "a warning, not a change: {:?}", p.steps);
    let mut w = want();
    w.scim = None;
    assert!(
        plan(&w, &now).friendly_mismatch.is_empty(),
        "without SCIM the friendly name plays no part"
    );
}
