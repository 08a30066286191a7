//! Who the user is, as far as the decision engine cares.
//!
//! An [`Identity`] is built from the provider's claims, at login or from a
//! bearer token, and kept with the session: sealed in the cookie, or in the
//! session store. `claims` keeps the other claims `claim_roles` refers to, so
//! roles are computed without the provider; `sign_in` keeps when and how
//! the user signed in, for step-up. The engine only reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The identity of a signed-in user.
///
/// Field names are abbreviated on the wire because every byte ends up in a cookie.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The provider's `sub` claim: stable, never reassigned.
    #[serde(rename = "s")]
    pub subject: String,
    /// The user name (from `username_claim`, falling back to `sub`).
    #[serde(rename = "u")]
    pub user: String,
    /// The e-mail address, if the provider sent one.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the provider vouched for the e-mail address. An unverified address
    /// is shown in headers but never matched against `allowed_users`.
    #[serde(rename = "ev", default)]
    pub email_verified: bool,
    /// The display name, if any.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Group names from `groups_claim`.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Values of every other claim some `claim_roles` entry refers to, captured at
    /// login so the role mapping can be evaluated without the provider.
    #[serde(rename = "c", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Vec<String>>,
    /// When and how this identity signed in (the ID token's or the bearer
    /// token's `auth_time` and `amr`); unknown for older sessions.
    #[serde(rename = "si", default, skip_serializing_if = "SignIn::is_unknown")]
    pub sign_in: SignIn,
}

/// How the user signed in, as the provider told it: when (`auth_time`) and
/// by which methods (`amr`). Step 8 of the decision (step-up) reads it.
/// Both default to unknown, so sessions and cookies made before this field
/// existed open as "unknown sign-in", which never meets a `max_age`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// When the user last authenticated at the provider, unix seconds.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The authentication methods used (`phr` passkey, `otp` one-time code).
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

impl SignIn {
    /// Nothing is known about the sign-in (kept out of cookies).
    pub fn is_unknown(&self) -> bool {
        self.auth_time.is_none() && self.amr.is_empty()
    }
}
