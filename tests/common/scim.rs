//! SCIM helpers shared by the in-process tests on both stores: an app with
//! `[scim]` on, and requests shaped the way Pocket ID's sync sends them.

use std::io::Write;

use serde_json::{json, Value};

use super::{spawn, Options, TestApp, POLICIES};

/// The bearer token of every SCIM test app.
pub const TOKEN: &str = "scim-test-token-0123456789abcdef0123456789";

/// Spawn with `[scim]` on and `session` (a store) in `[session]`; `issuer`:
/// another app's development provider, else one of its own.
pub async fn spawn_scim(
    session: &str,
    issuer: Option<String>,
) -> (TestApp, tempfile::NamedTempFile) {
    let mut token = tempfile::NamedTempFile::new().unwrap();
    writeln!(token, "{TOKEN}").unwrap();
    let app = spawn(Options {
        idp: issuer.is_none(),
        issuer,
        session: session.into(),
        policies: Some(format!(
            "{POLICIES}\n[scim]\ntoken_file = {:?}\n",
            token.path().display().to_string()
        )),
        ..Options::default()
    })
    .await;
    (app, token)
}

/// The subject the development provider gives `user`.
pub fn subject_of(user: &str) -> String {
    dev_idp::default_users()
        .into_iter()
        .find(|u| u.username == user)
        .map(|u| u.subject())
        .unwrap()
}

/// One SCIM call with the right token: status, body (`Null` when empty), headers.
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    call_as(app, Some(TOKEN), method, path, body.map(|b| b.to_string())).await
}

/// One SCIM call with `token` and a raw body.
pub async fn call_as(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = super::client()
        .request(method.parse().unwrap(), app.url(&format!("/scim/v2{path}")))
        .header("Accept", "application/scim+json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/scim+json").body(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, body, headers)
}

/// A user as Pocket ID's sync sends it.
pub fn pocket_id_user(user: &str, subject: Option<&str>, active: bool) -> Value {
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user,
        "name": { "givenName": user, "familyName": "Example" },
        "displayName": format!("{user} Example"),
        "active": active,
        "emails": [{ "value": format!("{user}@example.test"), "primary": true }],
        "meta": { "created": "0001-01-01T00:00:00Z", "lastModified": "0001-01-01T00:00:00Z" },
    });
    if let (Some(s), Value::Object(o)) = (subject, &mut v) {
        o.insert("externalId".into(), json!(s));
    }
    v
}

/// A group as Pocket ID's sync sends it: members are the SCIM ids of users.
pub fn pocket_id_group(name: &str, external_id: &str, members: &[&str]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": external_id,
        "displayName": name,
        "members": members.iter().map(|m| json!({ "value": m })).collect::<Vec<_>>(),
        "meta": { "created": "0001-01-01T00:00:00Z", "lastModified": "0001-01-01T00:00:00Z" },
    })
}

/// Create a user; its SCIM id.
pub async fn create_user(app: &TestApp, user: &str, subject: Option<&str>) -> String {
    let (s, v, _) = call(
        app,
        "POST",
        "/Users",
        Some(pocket_id_user(user, subject, true)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Create a group; its SCIM id.
pub async fn create_group(app: &TestApp, name: &str, members: &[&str]) -> String {
    let (s, v, _) = call(
        app,
        "POST",
        "/Groups",
        Some(pocket_id_group(name, &format!("ext-{name}"), members)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A PatchOp body of `ops`.
pub fn patch(ops: Value) -> Value {
    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops })
}
