//! The parts that need no store: filters, PATCH paths and operations,
//! reading resources, the snapshot.

use serde_json::json;

use super::filter::Filter;
use super::overlay::Snapshot;
use super::patch;
use super::resource::{Group, Member, Meta, User, UserInput};
use crate::policy::Identity;

fn user(id: &str, name: &str, external: Option<&str>, active: bool) -> User {
    User {
        id: id.into(),
        user_name: name.into(),
        external_id: external.map(String::from),
        active: Some(active),
        display_name: None,
        name: None,
        emails: Vec::new(),
        meta: Meta::new(1),
    }
}

fn group(name: &str, members: &[&str]) -> Group {
    Group {
        id: format!("g-{name}"),
        display_name: name.into(),
        external_id: None,
        members: members
            .iter()
            .map(|m| Member {
                value: (*m).into(),
                reference: None,
                display: None,
                kind: None,
            })
            .collect(),
        meta: Meta::new(1),
    }
}

#[rustfmt::skip]
#[test]
fn filters_are_one_eq_on_a_known_attribute() {
    let alice = user("u1", "Alice", Some("sub-a"), true);
    let cases: &[(&str, Option<bool>)] = &[
        (r#"userName eq "alice""#,                                          Some(true)),
        (r#"USERNAME EQ "ALICE""#,                                          Some(true)),
        (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice""#, Some(true)),
        (r#"externalId eq "sub-a""#,                                        Some(true)),
        (r#"externalId eq "SUB-A""#,                                        Some(false)),
        (r#"id eq "u1""#,                                                   Some(true)),
        (r#"displayName eq "x""#,                                           Some(false)),
        (r#"userName eq "with \"quote\"""#,                                 Some(false)),
        (r#"userName ne "alice""#,                                          None),
        (r#"userName co "a""#,                                              None),
        (r#"emails eq "a""#,                                                None),
        (r#"userName eq alice"#,                                            None),
        (r#"userName pr"#,                                                  None),
        ("",                                                                None),
    ];
    for (text, want) in cases {
        let got = Filter::parse(text).ok().map(|f| f.user(&alice));
        assert_eq!(got, *want, "{text}");
    }
}

#[test]
fn a_patch_result_is_read_like_a_put_body() {
    let mut u = user("u1", "alice", Some("sub-a"), true).editable();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "ACTIVE", "value": "false"},
            {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
            {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
            {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
            {"op": "add", "path": "name.givenName", "value": "Alice"},
        ]
    });
    patch::apply(&mut u, &body, &["id", "meta", "groups"]).unwrap();
    let input = UserInput::parse(&u).unwrap();
    assert_eq!(input.active, Some(false));
    assert_eq!(input.emails.len(), 1, "added twice, kept once");
    assert!(input.emails[0].primary);
    assert_eq!(input.name.unwrap().given_name.as_deref(), Some("Alice"));
    assert_eq!(input.user_name, "alice");
}

#[test]
fn the_snapshot_knows_users_by_subject_else_by_name() {
    let users = [
        user("u1", "alice", Some("sub-a"), true),
        user("u2", "Bob", None, false),
    ];
    let groups = [group("admins", &["u1"]), group("users", &["u1", "u2"])];
    let snap = Snapshot::of(&users, &groups, Some(3));
    let id = |sub: &str, name: &str, groups: &[&str]| Identity {
        subject: sub.into(),
        user: name.into(),
        groups: groups.iter().map(|g| (*g).into()).collect(),
        ..Identity::default()
    };
    let alice = snap.find(&id("sub-a", "whoever", &[])).unwrap();
    assert!(alice.active);
    assert_eq!(alice.groups, ["admins", "users"]);
    assert_eq!(
        alice.regroup(&id("sub-a", "alice", &["users", "admins"])),
        None,
        "same set: no copy"
    );
    let regrouped = alice.regroup(&id("sub-a", "alice", &["x"])).unwrap();
    assert_eq!(regrouped.groups, ["admins", "users"]);
    assert!(
        !snap.find(&id("sub-b", "bob", &[])).unwrap().active,
        "by name, without case"
    );
    assert!(
        snap.find(&id("sub-z", "alice", &[])).is_none(),
        "alice has an externalId: matched by it only"
    );
    assert!(Snapshot::default()
        .find(&id("sub-a", "alice", &[]))
        .is_none());
}
