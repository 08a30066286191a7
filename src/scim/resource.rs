//! The SCIM resources pocketgate keeps (RFC 7643 §4): users and groups with
//! the attributes its published schemas list, read from a client's JSON
//! (attribute names case-insensitive, unknown attributes ignored, read-only
//! ones ignored) and written back with `schemas` and `meta`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::ScimError;

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Longest string value kept (a name, an address, an id).
const MAX_STRING: usize = 1024;
/// Most e-mail addresses of one user.
const MAX_EMAILS: usize = 20;
/// Most members of one group.
pub(super) const MAX_MEMBERS: usize = 10_000;

/// When a resource was made and changed (unix seconds), and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) created: u64,
    pub(crate) modified: u64,
    pub(crate) version: u64,
}

impl Meta {
    pub(super) fn new(now: u64) -> Meta {
        Meta {
            created: now,
            modified: now,
            version: 1,
        }
    }

    pub(super) fn changed(&self, now: u64) -> Meta {
        Meta {
            created: self.created,
            modified: now,
            version: self.version.saturating_add(1),
        }
    }

    /// The ETag (`meta.version`), weak as RFC 7644 §3.14 shows it.
    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    fn render(&self, resource_type: &str, location: String) -> Value {
        json!({
            "resourceType": resource_type,
            "created": rfc3339(self.created),
            "lastModified": rfc3339(self.modified),
            "location": location,
            "version": self.etag(),
        })
    }
}

/// A user's name (RFC 7643 §4.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Name {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) honorific_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) honorific_suffix: Option<String>,
}

/// One e-mail address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Email {
    pub(crate) value: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display: Option<String>,
    #[serde(default)]
    pub(crate) primary: bool,
}

/// A user as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_id: Option<String>,
    /// Unassigned (`None`) is active: only `false` deprovisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<Name>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) emails: Vec<Email>,
    pub(crate) meta: Meta,
}

/// One member of a group: the SCIM id of a user (or of a group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) value: String,
    /// `$ref` as the client sent it; absent, the member's URL here is shown.
    #[serde(rename = "$ref", default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
}

/// A group as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    pub(crate) id: String,
    pub(crate) display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<Member>,
    pub(crate) meta: Meta,
}

/// What users and groups share: an id and a `meta`.
pub(crate) trait Resource: Clone {
    fn id(&self) -> &str;
    fn meta(&self) -> &Meta;
}

impl Resource for User {
    fn id(&self) -> &str {
        &self.id
    }
    fn meta(&self) -> &Meta {
        &self.meta
    }
}

impl Resource for Group {
    fn id(&self) -> &str {
        &self.id
    }
    fn meta(&self) -> &Meta {
        &self.meta
    }
}

/// What a client may set on a user (everything but `id` and `meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInput {
    pub(crate) user_name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) active: Option<bool>,
    pub(crate) display_name: Option<String>,
    pub(crate) name: Option<Name>,
    pub(crate) emails: Vec<Email>,
}

/// What a client may set on a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupInput {
    pub(crate) display_name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) members: Vec<Member>,
}

/// The attribute `name` of `obj`, compared without case (RFC 7643 §2.1);
/// `null` is no value.
pub(super) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The body as a JSON object whose `schemas` names `schema`.
pub(super) fn object_of<'a>(
    body: &'a Value,
    schema: &str,
) -> Result<&'a Map<String, Value>, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::InvalidSyntax("the body is not a JSON object".into()))?;
    let schemas = field(obj, "schemas")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::InvalidSyntax(format!("\"schemas\" is missing; it must list {schema}"))
        })?;
    if !schemas
        .iter()
        .filter_map(Value::as_str)
        .any(|s| s.eq_ignore_ascii_case(schema))
    {
        return Err(ScimError::InvalidSyntax(format!(
            "\"schemas\" does not list {schema}"
        )));
    }
    Ok(obj)
}

fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_STRING => Err(ScimError::InvalidValue(format!(
            "\"{name}\" is longer than {MAX_STRING} bytes"
        ))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::InvalidValue(format!(
            "\"{name}\" must be a string"
        ))),
    }
}

fn required(obj: &Map<String, Value>, name: &str) -> Result<String, ScimError> {
    string(obj, name)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::InvalidValue(format!("\"{name}\" is required")))
}

/// A boolean; the strings "true" and "false" too, as some clients send them.
fn boolean(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, ScimError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::InvalidValue(format!(
            "\"{name}\" must be a boolean"
        ))),
    }
}

/// A multi-valued attribute: a list of objects (a lone object is a list of one).
fn objects<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Vec<&'a Map<String, Value>>, ScimError> {
    let items: Vec<&Value> = match field(obj, name) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => {
            return Err(ScimError::InvalidValue(format!(
                "\"{name}\" must be a list of objects"
            )))
        }
    };
    if items.len() > max {
        return Err(ScimError::InvalidValue(format!(
            "\"{name}\" has more than {max} values"
        )));
    }
    items
        .into_iter()
        .map(|v| {
            v.as_object().ok_or_else(|| {
                ScimError::InvalidValue(format!("each value of \"{name}\" must be an object"))
            })
        })
        .collect()
}

impl UserInput {
    /// A user from a client's JSON (POST, PUT, or the result of a PATCH).
    pub(crate) fn parse(body: &Value) -> Result<UserInput, ScimError> {
        let obj = object_of(body, USER_SCHEMA)?;
        let name = match field(obj, "name") {
            None => None,
            Some(Value::Object(n)) => Some(Name {
                formatted: string(n, "formatted")?,
                family_name: string(n, "familyName")?,
                given_name: string(n, "givenName")?,
                middle_name: string(n, "middleName")?,
                honorific_prefix: string(n, "honorificPrefix")?,
                honorific_suffix: string(n, "honorificSuffix")?,
            })
            .filter(|n| *n != Name::default()),
            Some(_) => return Err(ScimError::InvalidValue("\"name\" must be an object".into())),
        };
        let emails = objects(obj, "emails", MAX_EMAILS)?
            .into_iter()
            .map(|e| {
                Ok(Email {
                    value: required(e, "value")?,
                    kind: string(e, "type")?,
                    display: string(e, "display")?,
                    primary: boolean(e, "primary")?.unwrap_or(false),
                })
            })
            .collect::<Result<Vec<_>, ScimError>>()?;
        Ok(UserInput {
            user_name: required(obj, "userName")?,
            external_id: string(obj, "externalId")?,
            active: boolean(obj, "active")?,
            display_name: string(obj, "displayName")?,
            name,
            emails,
        })
    }

    pub(super) fn into_user(self, id: String, meta: Meta) -> User {
        User {
            id,
            user_name: self.user_name,
            external_id: self.external_id,
            active: self.active,
            display_name: self.display_name,
            name: self.name,
            emails: self.emails,
            meta,
        }
    }
}

impl GroupInput {
    /// A group from a client's JSON.
    pub(crate) fn parse(body: &Value) -> Result<GroupInput, ScimError> {
        let obj = object_of(body, GROUP_SCHEMA)?;
        let mut members: Vec<Member> = Vec::new();
        for m in objects(obj, "members", MAX_MEMBERS)? {
            let member = Member {
                value: required(m, "value")?,
                reference: string(m, "$ref")?,
                display: string(m, "display")?,
                kind: string(m, "type")?,
            };
            if !members.iter().any(|x| x.value == member.value) {
                members.push(member);
            }
        }
        Ok(GroupInput {
            display_name: required(obj, "displayName")?,
            external_id: string(obj, "externalId")?,
            members,
        })
    }

    pub(super) fn into_group(self, id: String, meta: Meta) -> Group {
        Group {
            id,
            display_name: self.display_name,
            external_id: self.external_id,
            members: self.members,
            meta,
        }
    }
}

impl User {
    /// Whether the user may have sessions: not set inactive.
    pub(crate) fn is_active(&self) -> bool {
        self.active != Some(false)
    }

    /// What a client may change, as JSON (what a PATCH applies to).
    pub(super) fn editable(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(obj) = &mut v {
            obj.remove("id");
            obj.remove("meta");
            obj.insert("schemas".into(), json!([USER_SCHEMA]));
        }
        v
    }

    /// The representation a client gets: `groups` are the groups the user
    /// is a member of (id, display name), `base` the `/scim/v2` URL.
    pub(crate) fn render(&self, base: &str, groups: &[(&str, &str)]) -> Value {
        let mut v = self.editable();
        if let Value::Object(obj) = &mut v {
            obj.insert("id".into(), json!(self.id));
            if !groups.is_empty() {
                let list: Vec<Value> = groups
                    .iter()
                    .map(|(id, name)| {
                        json!({"value": id, "$ref": format!("{base}/Groups/{id}"), "display": name, "type": "direct"})
                    })
                    .collect();
                obj.insert("groups".into(), Value::Array(list));
            }
            obj.insert(
                "meta".into(),
                self.meta
                    .render("User", format!("{base}/Users/{}", self.id)),
            );
        }
        v
    }
}

impl Group {
    /// What a client may change, as JSON.
    pub(super) fn editable(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(obj) = &mut v {
            obj.remove("id");
            obj.remove("meta");
            obj.insert("schemas".into(), json!([GROUP_SCHEMA]));
        }
        v
    }

    /// The representation a client gets; `kinds` tells a member user from a
    /// member group (for `type` and `$ref`).
    pub(crate) fn render(&self, base: &str, is_group: impl Fn(&str) -> bool) -> Value {
        let mut v = self.editable();
        if let Value::Object(obj) = &mut v {
            obj.insert("id".into(), json!(self.id));
            let members: Vec<Value> = self
                .members
                .iter()
                .map(|m| {
                    // What the client said wins; else what this directory knows.
                    let kind = m.kind.clone().unwrap_or_else(|| {
                        if is_group(&m.value) { "Group" } else { "User" }.to_string()
                    });
                    let reference = m.reference.clone().unwrap_or_else(|| {
                        let endpoint = if is_group(&m.value) {
                            "Groups"
                        } else {
                            "Users"
                        };
                        format!("{base}/{endpoint}/{}", m.value)
                    });
                    let mut out = json!({ "value": m.value, "$ref": reference, "type": kind });
                    if let (Some(d), Value::Object(o)) = (&m.display, &mut out) {
                        o.insert("display".into(), json!(d));
                    }
                    out
                })
                .collect();
            if !members.is_empty() {
                obj.insert("members".into(), Value::Array(members));
            }
            obj.insert(
                "meta".into(),
                self.meta
                    .render("Group", format!("{base}/Groups/{}", self.id)),
            );
        }
        v
    }
}

/// Unix seconds as RFC 3339 (`2026-12-06T07:30:00Z`), whole seconds: a
/// client comparing its own change time with `lastModified` (Pocket ID
/// does) then sends a change made in the same second again, never skips it.
pub(super) fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A fresh resource id: 128 random bits in the UUID layout.
pub(super) fn new_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    ))
}
