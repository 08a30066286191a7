//! What the service provider says about itself (RFC 7644 §4):
//! `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, naming exactly
//! what it implements — PATCH yes; bulk, sorting and password changes no;
//! filters: the `eq` comparisons of [`super::filter`].

use serde_json::{json, Value};

use super::resource::{GROUP_SCHEMA, LIST_SCHEMA, USER_SCHEMA};

/// Most resources one list answer holds (`filter.maxResults`).
pub(crate) const MAX_RESULTS: usize = 1000;

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RT_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn meta(base: &str, kind: &str, path: &str) -> Value {
    json!({ "resourceType": kind, "location": format!("{base}/{path}") })
}

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/pocketgate/pocketgate/blob/main/docs/src/scim.md",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The token in scim.token_file, as `Authorization: Bearer <token>`",
            "primary": true,
        }],
        "meta": meta(base, "ServiceProviderConfig", "ServiceProviderConfig"),
    })
}

/// Every resource type, by id.
pub fn resource_types(base: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "User",
            json!({
                "schemas": [RT_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "A person who signs in through pocketgate",
                "schema": USER_SCHEMA,
                "schemaExtensions": [],
                "meta": meta(base, "ResourceType", "ResourceTypes/User"),
            }),
        ),
        (
            "Group",
            json!({
                "schemas": [RT_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "A group whose display name is a role in pocketgate's policies",
                "schema": GROUP_SCHEMA,
                "schemaExtensions": [],
                "meta": meta(base, "ResourceType", "ResourceTypes/Group"),
            }),
        ),
    ]
}

fn attr(
    name: &str,
    kind: &str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": name,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn complex(name: &str, multi: bool, mutability: &str, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, false, mutability, "none");
    if let Value::Object(o) = &mut a {
        o.insert("subAttributes".into(), Value::Array(subs));
    }
    a
}

fn string(name: &str) -> Value {
    attr(name, "string", false, false, false, "readWrite", "none")
}

/// Every schema, by id.
pub fn schemas(base: &str) -> Vec<(&'static str, Value)> {
    let user = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            attr("userName", "string", false, true, false, "readWrite", "server"),
            complex("name", false, "readWrite", vec![
                string("formatted"), string("familyName"), string("givenName"),
                string("middleName"), string("honorificPrefix"), string("honorificSuffix"),
            ]),
            string("displayName"),
            attr("active", "boolean", false, false, false, "readWrite", "none"),
            complex("emails", true, "readWrite", vec![
                string("value"), string("display"), string("type"),
                attr("primary", "boolean", false, false, false, "readWrite", "none"),
            ]),
            complex("groups", true, "readOnly", vec![
                attr("value", "string", false, false, true, "readOnly", "none"),
                attr("$ref", "reference", false, false, true, "readOnly", "none"),
                attr("display", "string", false, false, false, "readOnly", "none"),
                attr("type", "string", false, false, false, "readOnly", "none"),
            ]),
        ],
        "meta": meta(base, "Schema", &format!("Schemas/{USER_SCHEMA}")),
    });
    let group = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": [
            attr("displayName", "string", false, true, false, "readWrite", "none"),
            complex("members", true, "readWrite", vec![
                attr("value", "string", false, false, true, "immutable", "none"),
                attr("$ref", "reference", false, false, true, "immutable", "none"),
                attr("display", "string", false, false, false, "readOnly", "none"),
                attr("type", "string", false, false, false, "immutable", "none"),
            ]),
        ],
        "meta": meta(base, "Schema", &format!("Schemas/{GROUP_SCHEMA}")),
    });
    vec![(USER_SCHEMA, user), (GROUP_SCHEMA, group)]
}

/// A list answer of `resources` (all there are).
pub fn all(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) applied to a
/// resource, or to each resource of a list answer: top-level attributes
/// named (a sub-attribute path keeps or drops its whole attribute), `id`
/// and `schemas` always kept.
pub fn project(body: &mut Value, attributes: Option<&str>, excluded: Option<&str>) {
    if attributes.is_none() && excluded.is_none() {
        return;
    }
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|a| {
                let a = a.trim();
                let a = match a.to_ascii_lowercase().starts_with("urn:") {
                    true => a.rsplit(':').next().unwrap_or(a),
                    false => a,
                };
                a.split('.').next().unwrap_or(a).to_ascii_lowercase()
            })
            .filter(|a| !a.is_empty())
            .collect()
    };
    let keep = attributes.map(names);
    let drop = excluded.map(names).unwrap_or_default();
    let apply = |resource: &mut Value| {
        if let Value::Object(o) = resource {
            o.retain(|k, _| {
                let k = k.to_ascii_lowercase();
                if k == "id" || k == "schemas" {
                    return true;
                }
                keep.as_ref().is_none_or(|keep| keep.contains(&k)) && !drop.contains(&k)
            });
        }
    };
    match body.get_mut("Resources") {
        Some(Value::Array(items)) => items.iter_mut().for_each(apply),
        _ => apply(body),
    }
}
