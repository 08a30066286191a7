//! Sessions: sealing them, keeping them, finding them again.
//!
//! - `seal.rs`: AES-256-GCM under the session secret, one [`Purpose`] per
//!   kind of value, key rotation (the first configured secret seals, every
//!   secret opens).
//! - `cookies.rs`: cookie names, attributes, and splitting values too long
//!   for one cookie into numbered chunks and joining them again.
//! - `service/`: the session service ([`Sessions`]) the HTTP layer asks: the
//!   cookie codec, the store-backed lookup with its cache, last uses and
//!   the idle timeout, the lifecycle (start, end, revoke, refresh) and the
//!   events the metrics hear.
//! - `store/`: where sessions live on the server (embedded or Redis), keyed
//!   by a hash of the cookie's id ([`store::StoreKey`]).
//!
//! This file holds the sealed payloads: the stateless [`Session`] (identity,
//! issue and expiry times; the cookie itself with `store = "cookie"`), the
//! [`LogoutHint`] (the ID token, in a cookie of its own so that the cookie
//! every request opens stays small), and the login flow's [`FlowState`], one
//! short-lived cookie per flow ([`flow_cookie_name`]).
//!
//! It is not for HTTP types or policy decisions: it takes and returns plain
//! strings and [`cookie::Cookie`] values, and never decides who may pass.

mod cookies;
mod seal;
mod service;
pub mod store;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::Identity;
pub use cookies::{
    clear_cookies, cookie, is_family, parse_cookie_header, read_cookie_value, removal,
    request_pairs, write_cookies, CookieSettings, TooLarge, CHUNK_SIZE, MAX_CHUNKS,
};
pub use seal::{Purpose, Refused, SessionKeys};
pub use service::{
    flush_interval, CreateError, Current, EndReason, Ended, LoginContext, NoEvents, RefreshOutcome,
    SessionEvents, Sessions, SignedIn, Tokens, CACHE_TTL, MAX_TRACKED,
};

/// How far in the future a session's `issued` time may lie before it is refused,
/// in seconds; allows for clock differences between replicas.
pub const MAX_CLOCK_SKEW: u64 = 60;

/// The session cookie payload: who signed in and for how long. Nothing else,
/// because `/forward-auth` opens it on every request (the ID token, which only
/// `/logout` needs, lives in its own [`LogoutHint`] cookie).
///
/// Field names are abbreviated on the wire because every byte ends up in a cookie.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Session {
    /// Who signed in.
    #[serde(rename = "id")]
    pub identity: Identity,
    /// When the session was created, in unix seconds.
    #[serde(rename = "iat")]
    pub issued: u64,
    /// When the session ends, in unix seconds; enforced on open, not only by the cookie's Max-Age.
    #[serde(rename = "exp")]
    pub expires: u64,
}

impl Session {
    /// Serialize to compact JSON and seal for [`Purpose::Session`].
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(Purpose::Session, &to_json(self))
    }

    /// Open a sealed session, or say why not: it does not open (see
    /// [`Refused`]), does not parse, has expired (`now >= expires`), or was
    /// issued more than [`MAX_CLOCK_SKEW`] seconds in the future.
    pub fn open(keys: &SessionKeys, sealed: &str, now: u64) -> Result<Session, Refused> {
        let session: Session = open_json(keys, Purpose::Session, sealed)?;
        if now >= session.expires {
            return Err(Refused::Expired);
        }
        if session.issued > now.saturating_add(MAX_CLOCK_SKEW) {
            return Err(Refused::FromTheFuture);
        }
        Ok(session)
    }
}

/// The provider's ID token, kept in a cookie of its own (`{name}_idt`) as
/// `id_token_hint` for RP-initiated logout. Only `/logout` reads it.
/// `Debug` leaves the token out (logs never carry tokens).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct LogoutHint {
    /// The raw ID token.
    #[serde(rename = "idt")]
    pub id_token: String,
    /// The session's subject: the hint is used only with a session of the same user.
    #[serde(rename = "s")]
    pub subject: String,
    /// The session's expiry.
    #[serde(rename = "exp")]
    pub expires: u64,
}

impl LogoutHint {
    /// Serialize and seal for [`Purpose::IdToken`].
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(Purpose::IdToken, &to_json(self))
    }

    /// Open a sealed hint, or say why not.
    pub fn open(keys: &SessionKeys, sealed: &str, now: u64) -> Result<LogoutHint, Refused> {
        let hint: LogoutHint = open_json(keys, Purpose::IdToken, sealed)?;
        if now >= hint.expires {
            return Err(Refused::Expired);
        }
        Ok(hint)
    }
}

impl fmt::Debug for LogoutHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutHint")
            .field("subject", &self.subject)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The name of the cookie that holds the [`LogoutHint`].
pub fn logout_hint_cookie_name(cookie_name: &str) -> String {
    format!("{cookie_name}_idt")
}

/// The login-flow state, sealed into one short-lived cookie per flow.
/// `Debug` shows only the return URL and expiry.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
pub struct FlowState {
    /// The OAuth `state` parameter, which also names the flow's cookie.
    pub state: String,
    /// The OpenID Connect `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Where to send the user after login (already checked against the configuration).
    pub rd: String,
    /// The `redirect_uri` of the authorization request, which the code
    /// exchange must repeat: the callback of the login domain the flow
    /// started on. `None` in flows started before several domains existed
    /// (the main domain's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// When the flow lapses, in unix seconds.
    pub expires: u64,
    /// Set when the flow is a step-up (started with `prompt=login` for a
    /// session that did not meet a rule's `max_age`/`amr`): what the new
    /// sign-in must meet, and when the flow started.
    #[serde(rename = "su", default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<FlowStepUp>,
}

/// What a step-up flow's sign-in must meet, recorded when the flow starts
/// (from the policy, never from a query parameter).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct FlowStepUp {
    /// The rule's `max_age`, in seconds.
    #[serde(rename = "ma", default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The rule's `amr`; empty = any method.
    #[serde(rename = "amr", default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the flow started, unix seconds: the sign-in must not be older
    /// (less [`MAX_CLOCK_SKEW`]).
    #[serde(rename = "at")]
    pub started: u64,
}

impl FlowState {
    /// Serialize to compact JSON and seal for [`Purpose::Flow`].
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(Purpose::Flow, &to_json(self))
    }

    /// Open a sealed flow state, or say why not (it does not open or parse,
    /// or has expired: `now >= expires`).
    pub fn open(keys: &SessionKeys, sealed: &str, now: u64) -> Result<FlowState, Refused> {
        let plaintext = keys.open(Purpose::Flow, sealed)?;
        let flow: FlowState =
            serde_json::from_slice(&plaintext).map_err(|_| Refused::NotThisKind)?;
        if now >= flow.expires {
            return Err(Refused::Expired);
        }
        Ok(flow)
    }
}

/// Compact JSON of a payload made only of strings, integers, maps and sequences.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these types to a Vec has no failure mode (no non-string map keys,
    // no I/O), so an error here would be a bug in this module.
    #[allow(
        clippy::expect_used,
        reason = "serializing these types has no failure mode"
    )]
    serde_json::to_vec(value).expect("session payloads always serialize")
}

/// Open what [`to_json`] sealed for `purpose`: it does not open, or it is not
/// a `T` ([`Refused::NotThisKind`]).
fn open_json<T: DeserializeOwned>(
    keys: &SessionKeys,
    purpose: Purpose,
    sealed: &str,
) -> Result<T, Refused> {
    let plaintext = keys.open(purpose, sealed)?;
    serde_json::from_slice(&plaintext).map_err(|_| Refused::NotThisKind)
}

impl fmt::Debug for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowState")
            .field("rd", &self.rd)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// What every flow cookie's name starts with: `"{cookie_name}_flow_"`, and
/// over https (`host_prefix`) `"__Host-{cookie_name}_flow_"`. The `__Host-`
/// prefix makes browsers take the cookie only when it is `Secure`,
/// `Path=/` and without `Domain`, so a sibling host under the cookie domain
/// cannot plant (toss) a flow cookie on the login host.
pub fn flow_cookie_prefix(cookie_name: &str, host_prefix: bool) -> String {
    if host_prefix {
        format!("__Host-{cookie_name}_flow_")
    } else {
        format!("{cookie_name}_flow_")
    }
}

/// Cookie name of the flow whose state is `state`: [`flow_cookie_prefix`]
/// followed by the first 16 hex digits of SHA-256(state). Deterministic.
pub fn flow_cookie_name(cookie_name: &str, host_prefix: bool, state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let mut name = flow_cookie_prefix(cookie_name, host_prefix);
    for byte in &digest[..8] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

#[cfg(test)]
mod tests;
