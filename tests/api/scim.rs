//! The SCIM receiver (`[scim]`, `/scim/v2`) on the embedded store: every
//! endpoint, the filters and paging Pocket ID's sync uses, the PATCH forms
//! RFC 7644 allows, refusals as the RFC's error bodies, and the effects on
//! sessions: a user made inactive or deleted loses them at once and cannot
//! sign in again; a group change decides the next request.

use serde_json::{json, Value};

use crate::common::scim::*;
use crate::common::*;
use crate::login::{session_cookie, sign_in, to_callback};

const EMBEDDED: &str = "store = \"embedded\"\n";
const RD: &str = "https://app.example.test/after";

async fn app() -> TestApp {
    spawn_scim(EMBEDDED, None).await.0
}

/// The RFC 7644 §3.12 body: `status` as a string, and this `scimType`.
#[track_caller]
fn assert_scim_error(status: u16, body: &Value, want: u16, scim_type: Option<&str>) {
    assert_eq!(status, want, "{body}");
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{body}"
    );
    assert_eq!(body["status"], json!(want.to_string()), "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
}

#[actix_web::test]
async fn off_unless_configured() {
    let app = spawn(Options {
        session: EMBEDDED.into(),
        ..Options::default()
    })
    .await;
    let (s, _, _) = call(&app, "GET", "/Users", None).await;
    assert_eq!(s, 404);
    let (s, _, _) = call(&app, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(s, 404);
}

#[actix_web::test]
async fn only_the_configured_bearer_token_is_let_in() {
    let (app, _token) = spawn_scim(EMBEDDED, None).await;
    for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
        let (s, v, h) = call_as(&app, token, "GET", "/Users", None).await;
        assert_scim_error(s, &v, 401, None);
        assert!(
            h.get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{h:?}"
        );
        let (s, _, _) = call_as(
            &app,
            token,
            "POST",
            "/Users",
            Some(pocket_id_user("eve", None, true).to_string()),
        )
        .await;
        assert_eq!(s, 401);
    }
    let (s, _, _) = call_as(&app, None, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(s, 401);
    let (s, v, h) = call(&app, "GET", "/Users", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.get("content-type").unwrap(), "application/scim+json");
    assert_eq!(v["totalResults"], 0);
}

#[actix_web::test]
async fn users_are_created_found_replaced_and_deleted_as_pocket_id_syncs_them() {
    let app = app().await;
    // Pocket ID lists first, 1000 at a time.
    let (s, v, _) = call(&app, "GET", "/Users?startIndex=1&count=1000", None).await;
    assert_eq!((s, v["totalResults"].clone()), (200, json!(0)));
    let (s, v, h) = call(
        &app,
        "POST",
        "/Users",
        Some(pocket_id_user("alice", Some("sub-a"), true)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["userName"], "alice");
    assert_eq!(v["externalId"], "sub-a");
    assert_eq!(v["active"], true);
    assert_eq!(v["name"]["givenName"], "alice");
    assert_eq!(v["emails"][0]["value"], "alice@example.test");
    assert_eq!(v["meta"]["resourceType"], "User");
    let location = format!("{}/scim/v2/Users/{id}", app.public_url);
    assert_eq!(v["meta"]["location"], json!(location));
    assert_eq!(h.get("location").unwrap().to_str().unwrap(), location);
    assert_eq!(h.get("etag").unwrap().to_str().unwrap(), "W/\"1\"");
    // The client's own meta is not taken over: lastModified is ours, RFC 3339.
    let modified = v["meta"]["lastModified"].as_str().unwrap();
    assert!(
        modified.ends_with('Z') && !modified.starts_with("0001"),
        "{modified}"
    );
    // userName is unique without regard to case; externalId too.
    let (s, e, _) = call(
        &app,
        "POST",
        "/Users",
        Some(pocket_id_user("ALICE", Some("sub-x"), true)),
    )
    .await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    let (s, e, _) = call(
        &app,
        "POST",
        "/Users",
        Some(pocket_id_user("alicia", Some("sub-a"), true)),
    )
    .await;
    assert_scim_error(s, &e, 409, Some("uniqueness"));
    // Found by id and by the filters a client uses to find its own.
    let (s, got, _) = call(&app, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!((s, &got["id"]), (200, &json!(id)));
    for filter in [
        "userName eq \"Alice\"",
        "externalId eq \"sub-a\"",
        "id eq \"ID\"",
    ] {
        let q = url(&filter.replace("ID", &id));
        let (s, v, _) = call(&app, "GET", &format!("/Users?filter={q}"), None).await;
        assert_eq!(
            (s, v["totalResults"].clone()),
            (200, json!(1)),
            "{filter}: {v}"
        );
        assert_eq!(v["Resources"][0]["id"], json!(id));
    }
    let (_, v, _) = call(
        &app,
        "GET",
        &format!("/Users?filter={}", url("externalId eq \"SUB-A\"")),
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 0, "externalId is case-exact");
    // Pocket ID replaces the whole user (PUT) when it changed.
    let mut changed = pocket_id_user("alice", Some("sub-a"), true);
    changed["displayName"] = json!("Alice Renamed");
    let (s, v, h) = call(&app, "PUT", &format!("/Users/{id}"), Some(changed)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["displayName"], "Alice Renamed");
    assert_eq!(h.get("etag").unwrap().to_str().unwrap(), "W/\"2\"");
    // A stale If-Match is refused; the current one is taken.
    let (s, e, _) = call_with(&app, "DELETE", &format!("/Users/{id}"), "W/\"1\"").await;
    assert_scim_error(s, &e, 412, None);
    let (s, v, _) = call_with(&app, "DELETE", &format!("/Users/{id}"), "W/\"2\"").await;
    assert_eq!((s, v), (204, Value::Null));
    let (s, e, _) = call(&app, "GET", &format!("/Users/{id}"), None).await;
    assert_scim_error(s, &e, 404, None);
    let (s, e, _) = call(&app, "DELETE", &format!("/Users/{id}"), None).await;
    assert_scim_error(s, &e, 404, None);
}

async fn call_with(
    app: &TestApp,
    method: &str,
    path: &str,
    if_match: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = client()
        .request(method.parse().unwrap(), app.url(&format!("/scim/v2{path}")))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("If-Match", if_match)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null), h)
}

fn url(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn lists_page_by_start_index_and_count_in_a_stable_order() {
    let app = app().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(create_user(&app, &format!("user{n}"), Some(&format!("sub-{n}"))).await);
    }
    let (_, v, _) = call(&app, "GET", "/Users?startIndex=2&count=2", None).await;
    assert_eq!(v["totalResults"], 5);
    assert_eq!(v["startIndex"], 2);
    assert_eq!(v["itemsPerPage"], 2);
    let ids_of = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let page = ids_of(&v);
    let (_, everyone, _) = call(&app, "GET", "/Users", None).await;
    let all = ids_of(&everyone);
    let (mut sorted, mut created) = (all.clone(), ids.clone());
    sorted.sort();
    created.sort();
    assert_eq!(sorted, created, "every user, once");
    assert_eq!(page, all[1..3], "the page is a slice of the one order");
    // Past the end: nothing; a count of 0: only the total; below 1 is 1.
    let (_, v, _) = call(&app, "GET", "/Users?startIndex=9", None).await;
    assert_eq!(
        (v["totalResults"].clone(), v["itemsPerPage"].clone()),
        (json!(5), json!(0))
    );
    let (_, v, _) = call(&app, "GET", "/Users?count=0", None).await;
    assert_eq!(
        (v["totalResults"].clone(), v["itemsPerPage"].clone()),
        (json!(5), json!(0))
    );
    let (_, v, _) = call(&app, "GET", "/Users?startIndex=-3&count=1", None).await;
    assert_eq!(v["Resources"][0]["id"].as_str(), Some(all[0].as_str()));
    let (s, e, _) = call(&app, "GET", "/Users?count=many", None).await;
    assert_scim_error(s, &e, 400, Some("invalidValue"));
}

#[actix_web::test]
async fn filters_other_than_eq_on_the_known_attributes_are_refused() {
    let app = app().await;
    create_group(&app, "admins", &[]).await;
    let (_, v, _) = call(
        &app,
        "GET",
        &format!("/Groups?filter={}", url("displayName eq \"Admins\"")),
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 1, "{v}");
    for bad in [
        "userName co \"a\"",
        "emails.value eq \"a\"",
        "userName eq a",
        "userName eq \"a\" and active eq true",
        "garbage",
    ] {
        let (s, e, _) = call(&app, "GET", &format!("/Users?filter={}", url(bad)), None).await;
        assert_scim_error(s, &e, 400, Some("invalidFilter"));
    }
}

#[actix_web::test]
async fn groups_and_the_patch_forms_clients_send() {
    let app = app().await;
    let alice = create_user(&app, "alice", Some("sub-a")).await;
    let bob = create_user(&app, "bob", Some("sub-b")).await;
    let g = create_group(&app, "admins", &[&alice]).await;
    let (_, v, _) = call(&app, "GET", &format!("/Groups/{g}"), None).await;
    assert_eq!(v["members"][0]["value"], json!(alice));
    assert_eq!(v["members"][0]["type"], "User");
    // A user lists its groups (read-only).
    let (_, v, _) = call(&app, "GET", &format!("/Users/{alice}"), None).await;
    assert_eq!(v["groups"][0]["value"], json!(g));
    assert_eq!(v["groups"][0]["display"], "admins");
    let members = |v: &Value| -> Vec<String> {
        let mut m: Vec<String> = v["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        m.sort();
        m
    };
    let path = format!("/Groups/{g}");
    // add with a path: members appended, a member added twice stays one.
    let (s, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": bob}, {"value": alice}]}]),
        )),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(members(&v), both);
    // remove with a filter.
    let (_, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]),
        )),
    )
    .await;
    assert_eq!(members(&v), [bob.as_str()]);
    // remove with the members as the value (Azure's form), then add without a path.
    let (_, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "Remove", "path": "members", "value": [{"value": bob}]}]),
        )),
    )
    .await;
    assert_eq!(members(&v), Vec::<String>::new());
    let (_, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "add", "value": {"members": [{"value": alice}]}}]),
        )),
    )
    .await;
    assert_eq!(members(&v), [alice.as_str()]);
    // replace without a path, and with one.
    let (_, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "value": {"displayName": "ops"}}]),
        )),
    )
    .await;
    assert_eq!(v["displayName"], "ops");
    let (_, v, _) = call(
        &app,
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "replace", "path": "members", "value": [{"value": bob}]}]),
        )),
    )
    .await;
    assert_eq!(members(&v), [bob.as_str()]);
    // A user's attributes: with and without a path, sub-attributes, filtered values.
    let upath = format!("/Users/{alice}");
    let (_, v, _) = call(&app, "PATCH", &upath, Some(patch(json!([
        {"op": "replace", "path": "name.familyName", "value": "Andersen"},
        {"op": "replace", "path": "emails[primary eq true].value", "value": "a@example.test"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "Alice A."},
    ])))).await;
    assert_eq!(v["name"]["familyName"], "Andersen");
    assert_eq!(v["name"]["givenName"], "alice");
    assert_eq!(v["emails"][0]["value"], "a@example.test");
    assert_eq!(v["displayName"], "Alice A.");
    // Deleting a user takes it out of its groups.
    let (s, _, _) = call(&app, "DELETE", &format!("/Users/{bob}"), None).await;
    assert_eq!(s, 204);
    let (_, v, _) = call(&app, "GET", &path, None).await;
    assert_eq!(members(&v), Vec::<String>::new());
    let (s, _, _) = call(&app, "DELETE", &path, None).await;
    assert_eq!(s, 204);
    let (_, v, _) = call(&app, "GET", "/Groups", None).await;
    assert_eq!(v["totalResults"], 0);
}

#[actix_web::test]
async fn bad_input_gets_the_rfc_error_body_and_changes_nothing() {
    let app = app().await;
    let alice = create_user(&app, "alice", Some("sub-a")).await;
    let g = create_group(&app, "admins", &[&alice]).await;
    let raw = |body: &str| Some(body.to_string());
    // method, path, body, status, scimType
    type Case<'a> = (&'a str, String, Option<String>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("POST", "/Users".into(), raw("{not json"), 400, Some("invalidSyntax")),
        ("POST", "/Users".into(), raw("[1,2]"), 400, Some("invalidSyntax")),
        ("POST", "/Users".into(), raw(r#"{"userName":"x"}"#), 400, Some("invalidSyntax")),
        ("POST", "/Users".into(), raw(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"x"}"#), 400, Some("invalidSyntax")),
        ("POST", "/Users".into(), raw(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}"#), 400, Some("invalidValue")),
        ("POST", "/Users".into(), raw(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":7}"#), 400, Some("invalidValue")),
        ("POST", "/Users".into(), raw(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","active":"maybe"}"#), 400, Some("invalidValue")),
        ("PUT", format!("/Users/{alice}"), raw(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}"#), 400, Some("invalidValue")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "replace", "path": "id", "value": "x"}])).to_string()), 400, Some("mutability")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "add", "path": "groups", "value": [{"value": g}]}])).to_string()), 400, Some("mutability")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x"}])).to_string()), 400, Some("noTarget")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "remove"}])).to_string()), 400, Some("noTarget")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "replace", "path": "name..x", "value": 1}])).to_string()), 400, Some("invalidPath")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "move", "path": "userName", "value": "x"}])).to_string()), 400, Some("invalidSyntax")),
        ("PATCH", format!("/Users/{alice}"), raw(r#"{"Operations":[]}"#), 400, Some("invalidSyntax")),
        ("PATCH", format!("/Users/{alice}"), Some(patch(json!([{"op": "replace", "path": "userName", "value": ""}])).to_string()), 400, Some("invalidValue")),
        ("GET", "/Unknown".into(), None, 404, None),
        ("GET", "/Users/nope".into(), None, 404, None),
        ("PUT", "/Users/nope".into(), Some(pocket_id_user("x", None, true).to_string()), 404, None),
    ];
    for (method, path, body, want, scim_type) in cases {
        let (s, e, h) = call_as(&app, Some(TOKEN), method, &path, body.clone()).await;
        assert_scim_error(s, &e, want, scim_type);
        assert_eq!(
            h.get("content-type").unwrap(),
            "application/scim+json",
            "{method} {path}"
        );
    }
    // Too large: 413 with the error body.
    let big = format!(
        r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","displayName":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let (s, e, _) = call_as(&app, Some(TOKEN), "POST", "/Users", Some(big)).await;
    assert_scim_error(s, &e, 413, None);
    // Nothing changed.
    let (_, v, _) = call(&app, "GET", &format!("/Users/{alice}"), None).await;
    assert_eq!(
        (v["userName"].clone(), v["meta"]["version"].clone()),
        (json!("alice"), json!("W/\"1\""))
    );
    let (_, v, _) = call(&app, "GET", "/Users", None).await;
    assert_eq!(v["totalResults"], 1);
}

#[actix_web::test]
async fn the_provider_describes_itself() {
    let app = app().await;
    let (s, v, _) = call(&app, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["patch"]["supported"], true);
    assert_eq!(v["bulk"]["supported"], false);
    assert_eq!(v["filter"]["supported"], true);
    let (_, v, _) = call(&app, "GET", "/ResourceTypes", None).await;
    assert_eq!(v["totalResults"], 2);
    let (s, v, _) = call(&app, "GET", "/ResourceTypes/Group", None).await;
    assert_eq!((s, v["endpoint"].clone()), (200, json!("/Groups")));
    let (_, v, _) = call(&app, "GET", "/Schemas", None).await;
    assert_eq!(v["totalResults"], 2);
    let (s, v, _) = call(
        &app,
        "GET",
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        None,
    )
    .await;
    assert_eq!((s, v["name"].clone()), (200, json!("User")));
    let (s, _, _) = call(&app, "GET", "/Schemas/urn:nope", None).await;
    assert_eq!(s, 404);
}

/// Whether the account-disabled page answers a fresh sign-in of `user`.
async fn sign_in_refused(app: &TestApp, user: &str) -> bool {
    let b = browser();
    let cb = to_callback(app, &b, user, RD).await;
    let r = b.get(cb).send().await.unwrap();
    match r.status().as_u16() {
        302 => false,
        403 => {
            assert_eq!(session_cookie(&r), None, "no session for a refused sign-in");
            let page = r.text().await.unwrap();
            assert!(page.contains("This account is disabled"), "{page}");
            true
        }
        other => panic!("callback answered {other}"),
    }
}

#[actix_web::test]
async fn an_inactive_user_loses_every_session_and_cannot_sign_in_until_active() {
    let app = app().await;
    let b = browser();
    let alice = session_cookie(&sign_in(&app, &b, "alice", RD).await).unwrap();
    let alice_again = session_cookie(&sign_in(&app, &browser(), "alice", RD).await).unwrap();
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &alice).await,
        200
    );
    let sub = subject_of("alice");
    let id = create_user(&app, "alice", Some(&sub)).await;
    create_group(&app, "users", &[&id]).await;
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &alice).await,
        200,
        "active, in `users`: allowed"
    );
    // Pocket ID disables alice: a PUT with active false.
    let (s, v, _) = call(
        &app,
        "PUT",
        &format!("/Users/{id}"),
        Some(pocket_id_user("alice", Some(&sub), false)),
    )
    .await;
    assert_eq!((s, v["active"].clone()), (200, json!(false)));
    for cookie in [&alice, &alice_again] {
        assert_eq!(
            forward_auth_status(&app, "app.example.test", cookie).await,
            401,
            "the next request"
        );
    }
    let (listed, _) = app
        .state
        .sessions
        .list(
            &pocketgate::session::store::Filter::Subject(sub.clone()),
            now(),
        )
        .await
        .unwrap();
    assert!(listed.is_empty(), "ended in the store, not only refused");
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        200,
        "others keep theirs"
    );
    assert!(
        sign_in_refused(&app, "alice").await,
        "a new sign-in is refused"
    );
    assert!(!sign_in_refused(&app, "bob").await);
    // Active again (a PATCH without a path, as some clients send): signing in works.
    let (s, _, _) = call(
        &app,
        "PATCH",
        &format!("/Users/{id}"),
        Some(patch(json!([{"op": "replace", "value": {"active": true}}]))),
    )
    .await;
    assert_eq!(s, 200);
    assert!(!sign_in_refused(&app, "alice").await);
    // A PATCH of `active` with a path, as a string some clients send.
    let (s, _, _) = call(
        &app,
        "PATCH",
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )),
    )
    .await;
    assert_eq!(s, 200);
    assert!(sign_in_refused(&app, "alice").await);
}

#[actix_web::test]
async fn a_deleted_user_loses_every_session_matched_by_user_name_without_external_id() {
    let app = app().await;
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    let id = create_user(&app, "bob", None).await;
    create_group(&app, "users", &[&id]).await;
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        200
    );
    let (s, _, _) = call(&app, "DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        401
    );
    // Deleted is not disabled: SCIM no longer knows bob, so bob may sign in.
    assert!(!sign_in_refused(&app, "bob").await);
}

#[actix_web::test]
async fn a_group_change_decides_the_next_request() {
    let app = app().await;
    // bob's sign-in says `users`: not an admin.
    let bob = session_cookie(&sign_in(&app, &browser(), "bob", RD).await).unwrap();
    let alice = session_cookie(&sign_in(&app, &browser(), "alice", RD).await).unwrap();
    let carol = session_cookie(&sign_in(&app, &browser(), "carol", RD).await).unwrap();
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        403
    );
    let bob_id = create_user(&app, "bob", Some(&subject_of("bob"))).await;
    let alice_id = create_user(&app, "alice", Some(&subject_of("alice"))).await;
    // SCIM knows bob now, in no group: its groups are SCIM's (none).
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &bob).await,
        403
    );
    let admins = create_group(&app, "admins", &[&bob_id, &alice_id]).await;
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        200,
        "added to admins"
    );
    let r = client()
        .get(app.url("/whoami"))
        .header("Cookie", &bob)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user"], "bob");
    // alice removed from admins: denied at once.
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &alice).await,
        200
    );
    let (s, _, _) = call(
        &app,
        "PATCH",
        &format!("/Groups/{admins}"),
        Some(patch(
            json!([{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}]),
        )),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &alice).await,
        403
    );
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &alice).await,
        403,
        "no group left"
    );
    // carol, whom SCIM does not know, keeps her sign-in's groups (none).
    assert_eq!(
        forward_auth_status(&app, "app.example.test", &carol).await,
        403
    );
    // The group deleted: bob has no group.
    let (s, _, _) = call(&app, "DELETE", &format!("/Groups/{admins}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(
        forward_auth_status(&app, "grafana.example.test", &bob).await,
        403
    );
}

#[actix_web::test]
async fn the_directory_survives_a_restart_of_the_service() {
    let (app, token) = spawn_scim(EMBEDDED, None).await;
    let id = create_user(&app, "alice", Some("sub-a")).await;
    // A second service on the same state directory (a restart) sees it.
    let dir = app.runtime.session.store.clone();
    let pocketgate::config::StoreSettings::Embedded { state_dir } = dir else {
        panic!()
    };
    let again = spawn(Options {
        session: format!(
            "store = \"embedded\"\nstate_dir = {:?}\n",
            state_dir.display().to_string()
        ),
        policies: Some(format!(
            "{POLICIES}\n[scim]\ntoken_file = {:?}\n",
            token.path().display().to_string()
        )),
        ..Options::default()
    })
    .await;
    let (s, v, _) = call(&again, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!((s, v["userName"].clone()), (200, json!("alice")));
}
