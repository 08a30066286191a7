//! PATCH (RFC 7644 §3.5.2) over a resource's JSON: `add`, `replace` and
//! `remove`, with or without `path`; paths `attr`, `attr.sub`,
//! `attr[sub eq value]` and `attr[sub eq value].sub`, optionally prefixed by
//! the core schema's URN. The result is read again like a PUT body, so a
//! PATCH can produce nothing a PUT could not.

use serde_json::{Map, Value};

use super::resource::{field, object_of, PATCH_SCHEMA};
use super::ScimError;

/// Most operations in one PATCH request.
const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// A parsed `path`.
#[derive(Debug, Clone, PartialEq)]
struct Path {
    attr: String,
    /// `[sub eq value]`.
    filter: Option<(String, Value)>,
    /// `.sub` (after the filter, if any).
    sub: Option<String>,
}

/// Apply the PatchOp `body` to `resource` (its editable JSON); `read_only`
/// names the attributes no operation may name in its `path`.
pub(crate) fn apply(
    resource: &mut Value,
    body: &Value,
    read_only: &[&str],
) -> Result<(), ScimError> {
    let obj = object_of(body, PATCH_SCHEMA)?;
    let ops = field(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::InvalidSyntax("\"Operations\" must be a list".into()))?;
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(ScimError::InvalidSyntax(format!(
            "\"Operations\" must hold 1 to {MAX_OPERATIONS} operations"
        )));
    }
    let target = resource
        .as_object_mut()
        .ok_or_else(|| ScimError::InvalidSyntax("the resource is not an object".into()))?;
    for op in ops {
        let op = op
            .as_object()
            .ok_or_else(|| ScimError::InvalidSyntax("each operation must be an object".into()))?;
        let kind = match field(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        {
            Some(k) if k == "add" => Op::Add,
            Some(k) if k == "replace" => Op::Replace,
            Some(k) if k == "remove" => Op::Remove,
            _ => {
                return Err(ScimError::InvalidSyntax(
                    "\"op\" must be \"add\", \"replace\" or \"remove\"".into(),
                ))
            }
        };
        let value = field(op, "value").cloned();
        let path = match field(op, "path") {
            None => None,
            Some(Value::String(p)) => Some(parse_path(p)?),
            Some(_) => return Err(ScimError::InvalidPath("\"path\" must be a string".into())),
        };
        match path {
            Some(path) => {
                if read_only.iter().any(|r| r.eq_ignore_ascii_case(&path.attr)) {
                    return Err(ScimError::Mutability(format!(
                        "\"{}\" is read-only",
                        path.attr
                    )));
                }
                if kind != Op::Remove && value.is_none() {
                    return Err(ScimError::InvalidValue(
                        "an add or replace operation needs a \"value\"".into(),
                    ));
                }
                at(target, kind, &path, value)?;
            }
            None => match (kind, value) {
                (Op::Remove, _) => {
                    return Err(ScimError::NoTarget(
                        "a remove operation needs a \"path\"".into(),
                    ))
                }
                (_, Some(Value::Object(values))) => {
                    for (k, v) in values {
                        // Read-only attributes in a value are ignored, as in a PUT body.
                        if read_only.iter().any(|r| r.eq_ignore_ascii_case(&k)) {
                            continue;
                        }
                        let path = parse_path(&k)?;
                        at(target, kind, &path, Some(v))?;
                    }
                }
                _ => {
                    return Err(ScimError::InvalidValue(
                        "without a \"path\", the \"value\" must be an object of attributes".into(),
                    ))
                }
            },
        }
    }
    Ok(())
}

fn parse_path(text: &str) -> Result<Path, ScimError> {
    let bad = || ScimError::InvalidPath(format!("cannot read the path {text:?}"));
    // `urn:...:User:name.givenName`: the attribute follows the last colon
    // before any filter.
    let head_end = text.find('[').unwrap_or(text.len());
    let start = if text.to_ascii_lowercase().starts_with("urn:") {
        text.get(..head_end)
            .and_then(|h| h.rfind(':'))
            .map_or(0, |i| i + 1)
    } else {
        0
    };
    let rest = text.get(start..).ok_or_else(bad)?;
    let attr_end = rest.find(['.', '[']).unwrap_or(rest.len());
    let attr = rest.get(..attr_end).ok_or_else(bad)?;
    if attr.is_empty()
        || !attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Err(bad());
    }
    let mut tail = rest.get(attr_end..).ok_or_else(bad)?;
    let mut filter = None;
    if let Some(inner) = tail.strip_prefix('[') {
        let close = inner.rfind(']').ok_or_else(bad)?;
        let cond = inner.get(..close).ok_or_else(bad)?.trim();
        tail = inner.get(close + 1..).ok_or_else(bad)?;
        let (sub, rest) = cond.split_once(char::is_whitespace).ok_or_else(bad)?;
        let (op, value) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(bad)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(ScimError::InvalidFilter(format!(
                "only `eq` is evaluated in a path filter: {text:?}"
            )));
        }
        let value: Value = serde_json::from_str(value.trim()).map_err(|_| bad())?;
        filter = Some((sub.to_string(), value));
    }
    let sub = match tail {
        "" => None,
        t => {
            let s = t.strip_prefix('.').ok_or_else(bad)?;
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            {
                return Err(bad());
            }
            Some(s.to_string())
        }
    };
    Ok(Path {
        attr: attr.to_string(),
        filter,
        sub,
    })
}

/// The key under which `obj` holds `name` (compared without case), or `name`.
fn key(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// Set `name` in `obj`; a complex value is merged into a complex one, and
/// `add` appends to a multi-valued attribute.
fn put(obj: &mut Map<String, Value>, kind: Op, name: &str, value: Value) {
    let k = key(obj, name);
    match (obj.get_mut(&k), value) {
        (Some(Value::Array(have)), Value::Array(more)) if kind == Op::Add => {
            for v in more {
                if !have.iter().any(|h| same_item(h, &v)) {
                    have.push(v);
                }
            }
        }
        (Some(Value::Array(have)), v @ Value::Object(_)) if kind == Op::Add => {
            if !have.iter().any(|h| same_item(h, &v)) {
                have.push(v);
            }
        }
        (Some(Value::Object(have)), Value::Object(more)) => {
            for (sk, sv) in more {
                let sk = key(have, &sk);
                have.insert(sk, sv);
            }
        }
        (_, v) => {
            obj.insert(k, v);
        }
    }
}

/// Two values of a multi-valued attribute are one when equal, or when both
/// carry the same `value` (a member added twice stays one member).
fn same_item(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (
        a.as_object().and_then(|o| field(o, "value")),
        b.as_object().and_then(|o| field(o, "value")),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn matches(item: &Value, (sub, want): &(String, Value)) -> bool {
    item.as_object()
        .and_then(|o| field(o, sub))
        .is_some_and(|have| match (have, want) {
            (Value::String(h), Value::String(w)) => h == w,
            (h, w) => h == w,
        })
}

fn at(
    obj: &mut Map<String, Value>,
    kind: Op,
    path: &Path,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let name = key(obj, &path.attr);
    match (&path.filter, &path.sub, kind) {
        (None, None, Op::Remove) => {
            match (obj.get_mut(&name), value) {
                // `remove` of `members` with the members to drop as its value.
                (Some(Value::Array(have)), Some(Value::Array(drop))) => {
                    have.retain(|h| !drop.iter().any(|d| same_item(h, d)));
                }
                (Some(Value::Array(have)), Some(d @ Value::Object(_))) => {
                    have.retain(|h| !same_item(h, &d));
                }
                _ => {
                    obj.remove(&name);
                }
            }
            Ok(())
        }
        (None, None, _) => {
            if let Some(v) = value {
                put(obj, kind, &path.attr, v);
            }
            Ok(())
        }
        (None, Some(sub), _) => {
            let slot = obj.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            let inner = slot.as_object_mut().ok_or_else(|| {
                ScimError::InvalidPath(format!(
                    "\"{}\" is multi-valued: name the value with a filter, e.g. {}[type eq \"work\"].{sub}",
                    path.attr, path.attr
                ))
            })?;
            match (kind, value) {
                (Op::Remove, _) => {
                    let k = key(inner, sub);
                    inner.remove(&k);
                }
                (_, Some(v)) => put(inner, Op::Replace, sub, v),
                (_, None) => {}
            }
            Ok(())
        }
        (Some(filter), sub, _) => {
            let Some(Value::Array(items)) = obj.get_mut(&name) else {
                return match kind {
                    Op::Remove => Ok(()),
                    _ => Err(ScimError::NoTarget(format!(
                        "\"{}\" has no values",
                        path.attr
                    ))),
                };
            };
            let hits = items.iter().filter(|i| matches(i, filter)).count();
            if hits == 0 {
                return match kind {
                    Op::Remove => Ok(()),
                    _ => Err(ScimError::NoTarget(format!(
                        "no value of \"{}\" matches the path's filter",
                        path.attr
                    ))),
                };
            }
            match (kind, sub) {
                (Op::Remove, None) => items.retain(|i| !matches(i, filter)),
                (_, sub) => {
                    for item in items.iter_mut().filter(|i| matches(i, filter)) {
                        let Some(o) = item.as_object_mut() else {
                            continue;
                        };
                        match (kind, sub, &value) {
                            (Op::Remove, Some(s), _) => {
                                let k = key(o, s);
                                o.remove(&k);
                            }
                            (_, Some(s), Some(v)) => put(o, Op::Replace, s, v.clone()),
                            (_, None, Some(Value::Object(more))) => {
                                for (sk, sv) in more {
                                    let sk = key(o, sk);
                                    o.insert(sk, sv.clone());
                                }
                            }
                            (_, None, Some(_)) => {
                                return Err(ScimError::InvalidValue(
                                    "a filtered value is replaced by an object".into(),
                                ))
                            }
                            _ => {}
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
