//! The list filters this service provider evaluates (RFC 7644 §3.4.2.2):
//! one `eq` comparison on `userName`, `externalId`, `displayName` or `id`,
//! which is what provisioning clients ask to find a resource they made.
//! Anything else is refused with `invalidFilter`, never guessed at.

use super::resource::{Group, User};
use super::ScimError;

/// The attributes a filter may compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    /// Case-insensitive (`caseExact: false`, RFC 7643 §4.1.1).
    UserName,
    /// Case-sensitive.
    ExternalId,
    /// Case-insensitive.
    DisplayName,
    /// Case-sensitive.
    Id,
}

/// `attr eq "value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    attr: Attr,
    value: String,
}

const CORE: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
];

impl Filter {
    /// Parse a `filter` query parameter.
    pub(crate) fn parse(text: &str) -> Result<Filter, ScimError> {
        let refuse = || {
            ScimError::InvalidFilter(format!(
                "unsupported filter {text:?}: only `userName`, `externalId`, `displayName` or `id` `eq \"value\"` is evaluated"
            ))
        };
        let text = text.trim();
        let (path, rest) = text.split_once(char::is_whitespace).ok_or_else(refuse)?;
        let (op, value) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(refuse)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(refuse());
        }
        let lower = path.to_ascii_lowercase();
        let bare = CORE
            .iter()
            .find_map(|urn| lower.strip_prefix(urn))
            .unwrap_or(&lower);
        let attr = match bare {
            "username" => Attr::UserName,
            "externalid" => Attr::ExternalId,
            "displayname" => Attr::DisplayName,
            "id" => Attr::Id,
            _ => return Err(refuse()),
        };
        // The value is a JSON string: quotes and escapes as JSON has them.
        let value: String = serde_json::from_str(value.trim()).map_err(|_| refuse())?;
        Ok(Filter { attr, value })
    }

    fn same(&self, candidate: Option<&str>) -> bool {
        let Some(c) = candidate else { return false };
        match self.attr {
            Attr::UserName | Attr::DisplayName => c.to_lowercase() == self.value.to_lowercase(),
            Attr::ExternalId | Attr::Id => c == self.value,
        }
    }

    /// Whether `user` matches.
    pub(crate) fn user(&self, user: &User) -> bool {
        self.same(match self.attr {
            Attr::UserName => Some(&user.user_name),
            Attr::ExternalId => user.external_id.as_deref(),
            Attr::DisplayName => user.display_name.as_deref(),
            Attr::Id => Some(&user.id),
        })
    }

    /// Whether `group` matches (a group has no `userName`).
    pub(crate) fn group(&self, group: &Group) -> bool {
        self.same(match self.attr {
            Attr::UserName => None,
            Attr::ExternalId => group.external_id.as_deref(),
            Attr::DisplayName => Some(&group.display_name),
            Attr::Id => Some(&group.id),
        })
    }
}
