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
