//! From verified claims to an [`Identity`].
//!
//! The ID token's signature is verified by [`super::jws`] and its standard
//! claims by `openidconnect`; this module reads the application claims (user name,
//! e-mail, name, groups, and the claims `claim_roles` refers to) from the same,
//! already verified, payload.

use serde_json::{Map, Value};

use super::IdTokenError;
use crate::config::OidcSettings;
use crate::policy::{Identity, SignIn};

/// Most groups kept from one token; more is almost certainly a misconfiguration
/// and would not fit into a cookie anyway.
const MAX_GROUPS: usize = 256;

/// Fill claims missing from the ID token from the userinfo answer, whose `sub`
/// must be the ID token's (OIDC Core 5.3.2).
pub(crate) fn merge_userinfo(
    claims: &mut Map<String, Value>,
    info: Map<String, Value>,
) -> Result<(), IdTokenError> {
    if info.get("sub") != claims.get("sub") {
        return Err(IdTokenError::OtherSubject);
    }
    for (k, v) in info {
        claims.entry(k).or_insert(v);
    }
    Ok(())
}

/// Map claims to an identity: `username_claim` (falling back to `sub`), e-mail
/// and its verification, display name, `groups_claim` (an array of names, or
/// one string), and the values of `role_claims`. Refuses values that could not
/// be passed on in a header (control characters).
pub fn identity_from_claims(
    settings: &OidcSettings,
    role_claims: &[String],
    claims: &Map<String, Value>,
) -> Result<Identity, String> {
    identity_from_claim_names(
        &settings.username_claim,
        &settings.groups_claim,
        role_claims,
        claims,
    )
}

/// [`identity_from_claims`] with the two claim names given directly
/// (`explain`, which reads no `[oidc]` settings).
pub fn identity_from_claim_names(
    username_claim: &str,
    groups_claim: &str,
    role_claims: &[String],
    claims: &Map<String, Value>,
) -> Result<Identity, String> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the token has no sub claim")?
        .to_string();
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    // An unverified e-mail address never becomes the user name: anyone could
    // claim one. Fall back to `sub` instead.
    let user = claims
        .get(username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .filter(|_| username_claim != "email" || email_verified)
        .map(str::to_string)
        .unwrap_or_else(|| subject.clone());
    let name = claims
        .get("name")
        .or_else(|| claims.get("display_name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let given = claims
                .get("given_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let family = claims
                .get("family_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let full = format!("{given} {family}").trim().to_string();
            (!full.is_empty()).then_some(full)
        });
    let mut groups = claims.get(groups_claim).map(values_of).unwrap_or_default();
    groups.retain(|g| !g.is_empty());
    groups.truncate(MAX_GROUPS);
    let mut extra = std::collections::BTreeMap::new();
    for c in role_claims {
        if let Some(v) = claims.get(c) {
            extra.insert(c.clone(), values_of(v));
        }
    }
    let identity = Identity {
        subject,
        user,
        email,
        email_verified,
        name,
        groups,
        claims: extra,
        sign_in: sign_in_of(claims),
    };
    let fields = [
        ("sub", Some(identity.subject.as_str())),
        (username_claim, Some(identity.user.as_str())),
        ("email", identity.email.as_deref()),
        ("name", identity.name.as_deref()),
    ];
    for (claim, value) in fields {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(format!("the {claim} claim holds control characters"));
        }
    }
    if identity
        .groups
        .iter()
        .any(|g| g.chars().any(char::is_control))
    {
        return Err(format!(
            "the {} claim holds control characters",
            groups_claim
        ));
    }
    Ok(identity)
}

/// Most `amr` values kept from one token, and the longest one.
const MAX_AMR: usize = 16;
const MAX_AMR_LEN: usize = 64;

/// When and how the token's subject signed in: `auth_time` (a number of
/// seconds; anything else is unknown) and `amr` (an array of strings, or a
/// lone string; values that could not be shown or logged are dropped).
pub(crate) fn sign_in_of(claims: &Map<String, Value>) -> SignIn {
    let auth_time = claims.get("auth_time").and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                .map(|f| f.trunc() as u64)
        })
    });
    let amr = match claims.get("amr") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let mut amr: Vec<String> = amr
        .into_iter()
        .filter(|m| !m.is_empty() && m.len() <= MAX_AMR_LEN && !m.chars().any(char::is_control))
        .collect();
    amr.truncate(MAX_AMR);
    SignIn { auth_time, amr }
}

/// A claim's values as strings: a string is one value, an array gives each
/// scalar member, numbers and booleans are written out.
fn values_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::test_keys::oidc_settings;
    use serde_json::json;

    fn settings() -> OidcSettings {
        oidc_settings("https://id.example.com")
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn maps_pocket_id_claims() {
        let c = map(
            json!({"sub": "u-1", "preferred_username": "alice", "email": "a@x.test",
            "email_verified": true, "name": "Alice A", "groups": ["admins", "users"], "dept": "ops"}),
        );
        let id = identity_from_claims(&settings(), &["dept".into()], &c).unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.email.as_deref(), Some("a@x.test"));
        assert!(id.email_verified);
        assert_eq!(id.name.as_deref(), Some("Alice A"));
        assert_eq!(id.groups, vec!["admins", "users"]);
        assert_eq!(id.claims.get("dept"), Some(&vec!["ops".to_string()]));
    }

    #[test]
    fn username_falls_back_to_sub_and_single_group_string_is_one_group() {
        let c = map(json!({"sub": "u-2", "groups": "admins"}));
        let id = identity_from_claims(&settings(), &[], &c).unwrap();
        assert_eq!(id.user, "u-2");
        assert_eq!(id.groups, vec!["admins"]);
        assert!(!id.email_verified);
    }

    #[test]
    fn an_unverified_email_never_becomes_the_user_name() {
        let mut s = settings();
        s.username_claim = "email".into();
        let c = map(json!({"sub": "u-9", "email": "boss@example.com", "email_verified": false}));
        assert_eq!(identity_from_claims(&s, &[], &c).unwrap().user, "u-9");
        let c = map(json!({"sub": "u-9", "email": "boss@example.com", "email_verified": true}));
        assert_eq!(
            identity_from_claims(&s, &[], &c).unwrap().user,
            "boss@example.com"
        );
    }

    #[test]
    fn unverified_email_is_marked() {
        let c = map(json!({"sub": "u", "email": "a@x.test", "email_verified": false}));
        assert!(
            !identity_from_claims(&settings(), &[], &c)
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn missing_sub_and_control_characters_are_refused() {
        assert!(
            identity_from_claims(&settings(), &[], &map(json!({"preferred_username": "a"})))
                .is_err()
        );
        let c = map(json!({"sub": "u", "preferred_username": "eve\r\nX-Remote-User: admin"}));
        assert!(identity_from_claims(&settings(), &[], &c).is_err());
        let c = map(json!({"sub": "u", "groups": ["ok", "bad\n"]}));
        assert!(identity_from_claims(&settings(), &[], &c).is_err());
    }

    #[test]
    fn sign_in_comes_from_auth_time_and_amr() {
        let c = map(json!({"sub": "u", "auth_time": 1_700_000_000, "amr": ["phr"]}));
        let id = identity_from_claims(&settings(), &[], &c).unwrap();
        assert_eq!(id.sign_in.auth_time, Some(1_700_000_000));
        assert_eq!(id.sign_in.amr, vec!["phr"]);
        // A lone string is one method; iat is never a sign-in time.
        let c = map(json!({"sub": "u", "iat": 1_700_000_000, "amr": "otp"}));
        let s = sign_in_of(&c);
        assert_eq!((s.auth_time, s.amr), (None, vec!["otp".to_string()]));
        // Garbage is unknown, not an error.
        let c = map(json!({"auth_time": "yesterday", "amr": [1, "", "a\nb", "pwd"]}));
        let s = sign_in_of(&c);
        assert_eq!((s.auth_time, s.amr), (None, vec!["pwd".to_string()]));
        let c = map(json!({"auth_time": -5, "amr": {"x": 1}}));
        assert!(sign_in_of(&c).is_unknown());
    }

    #[test]
    fn userinfo_fills_gaps_only_for_the_same_subject() {
        let mut c = map(json!({"sub": "u", "preferred_username": "alice"}));
        merge_userinfo(
            &mut c,
            map(json!({"sub": "u", "groups": ["g"], "preferred_username": "mallory"})),
        )
        .unwrap();
        assert_eq!(c["groups"], json!(["g"]));
        assert_eq!(c["preferred_username"], json!("alice"));
        assert!(merge_userinfo(&mut c, map(json!({"sub": "other"}))).is_err());
    }
}
