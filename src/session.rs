//! Sealing and opening the cookies pocketgate keeps its state in.
//!
//! Sessions are stateless: the [`Session`] (identity, issue and expiry times, and
//! the ID token for logout) is serialized, sealed with AES-256-GCM and stored in a
//! cookie, so replicas share sessions through nothing but the configured secret.
//! The login flow's state is sealed the same way into one short-lived cookie per
//! flow ([`FlowState`], [`flow_cookie_name`]). This module also splits values that
//! are too long for one cookie into numbered chunks and joins them again, and it
//! supports key rotation: the first configured secret seals, every secret opens.
//!
//! It is not for HTTP types or policy decisions: it takes and returns plain
//! strings and [`cookie::Cookie`] values, and never decides who may pass.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

use crate::config::SessionSecrets;
use crate::policy::Identity;

/// How far in the future a session's `issued` time may lie before it is refused,
/// in seconds; allows for clock differences between replicas.
pub const MAX_CLOCK_SKEW: u64 = 60;

/// Largest value one cookie carries before the session is split into `name_0`, `name_1`, ...
pub const CHUNK_SIZE: usize = 3800;

/// At most this many chunks are read or written (bounds work on hostile input); a value
/// that needs more is an error on write.
pub const MAX_CHUNKS: usize = 8;

/// Longest sealed value [`SessionKeys::open`] looks at; anything longer could not have
/// been written by [`write_cookies`] and is refused before decoding.
const MAX_SEALED_LEN: usize = CHUNK_SIZE * MAX_CHUNKS;

/// Format version, the first byte of every sealed value.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HKDF_SALT: &[u8] = b"pocketgate/v1";
const HKDF_INFO: &[u8] = b"session-cookie";

/// What a sealed value is for; bound into the AEAD as associated data so a value
/// sealed for one purpose never opens as another (a login-flow cookie is never a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// A login-flow cookie.
    Flow,
}

impl Purpose {
    /// The associated data that binds a sealed value to its purpose.
    fn associated_data(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"pocketgate/v1/session",
            Purpose::Flow => b"pocketgate/v1/flow",
        }
    }
}

/// Keys derived from the configured secrets. The first secret seals; every secret opens (rotation).
#[derive(Clone)]
pub struct SessionKeys {
    /// Never empty; `ciphers[0]` seals.
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for SessionKeys {
    // Key material must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keys", &self.ciphers.len())
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derive one AES-256-GCM key per secret with HKDF-SHA256 (config
    /// guarantees at least one, each at least 32 bytes).
    pub fn new(secrets: &SessionSecrets) -> Self {
        Self {
            ciphers: secrets.iter().map(|s| derive_cipher(s.bytes())).collect(),
        }
    }

    /// Encrypt `plaintext` for `purpose` with the first key: version byte, random
    /// 96-bit nonce, then ciphertext and tag, all base64url without padding.
    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // Without an OS random source no value can be sealed safely; there is no
        // sensible way to continue, and this does not depend on any input.
        getrandom::getrandom(&mut nonce).expect("the operating system's random source failed");
        let payload = Payload {
            msg: plaintext,
            aad: purpose.associated_data(),
        };
        // AES-GCM only refuses plaintexts longer than 64 GiB, which cannot occur here.
        let ciphertext = self.ciphers[0]
            .encrypt(&Nonce::from(nonce), payload)
            .expect("AES-GCM plaintext within its length limit");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// Decrypt a value sealed for `purpose` by any of the keys; `None` for anything
    /// that does not open (bad encoding, wrong version, truncated, tampered, foreign key,
    /// wrong purpose).
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (&version, rest) = raw.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        self.ciphers.iter().find_map(|cipher| {
            let payload = Payload {
                msg: ciphertext,
                aad: purpose.associated_data(),
            };
            cipher.decrypt(&nonce, payload).ok()
        })
    }
}

/// HKDF-SHA256 from one secret to an AES-256-GCM cipher.
fn derive_cipher(secret: &[u8]) -> Aes256Gcm {
    let mut key = [0u8; 32];
    // HKDF-SHA256 can expand to 8160 bytes; 32 always succeeds.
    Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
        .expand(HKDF_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Aes256Gcm::new(&key.into())
}

/// The session cookie payload.
///
/// Field names are abbreviated on the wire because every byte ends up in a cookie.
/// `Debug` leaves the ID token out (logs never carry tokens).
#[derive(Serialize, Deserialize, Clone, PartialEq)]
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
    /// The provider's ID token, kept as `id_token_hint` for RP-initiated logout.
    #[serde(rename = "idt", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl Session {
    /// Serialize to compact JSON and seal for [`Purpose::Session`].
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(Purpose::Session, &to_json(self))
    }

    /// Open a sealed session; `None` when it does not open, does not parse, has expired
    /// (`now >= expires`), or was issued more than [`MAX_CLOCK_SKEW`] seconds in the future.
    pub fn open(keys: &SessionKeys, sealed: &str, now: u64) -> Option<Session> {
        let plaintext = keys.open(Purpose::Session, sealed)?;
        let session: Session = serde_json::from_slice(&plaintext).ok()?;
        if now >= session.expires || session.issued > now.saturating_add(MAX_CLOCK_SKEW) {
            return None;
        }
        Some(session)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("identity", &self.identity)
            .field("issued", &self.issued)
            .field("expires", &self.expires)
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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
    /// When the flow lapses, in unix seconds.
    pub expires: u64,
}

impl FlowState {
    /// Serialize to compact JSON and seal for [`Purpose::Flow`].
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(Purpose::Flow, &to_json(self))
    }

    /// Open a sealed flow state; `None` when it does not open, does not parse or has
    /// expired (`now >= expires`).
    pub fn open(keys: &SessionKeys, sealed: &str, now: u64) -> Option<FlowState> {
        let plaintext = keys.open(Purpose::Flow, sealed)?;
        let flow: FlowState = serde_json::from_slice(&plaintext).ok()?;
        if now >= flow.expires {
            return None;
        }
        Some(flow)
    }
}

/// Compact JSON of a payload made only of strings, integers, maps and sequences.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these types to a Vec has no failure mode (no non-string map keys,
    // no I/O), so an error here would be a bug in this module.
    serde_json::to_vec(value).expect("session payloads always serialize")
}

impl fmt::Debug for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowState")
            .field("rd", &self.rd)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Cookie name of the flow whose state is `state`: `"{cookie_name}_flow_"` followed by
/// the first 16 hex digits of SHA-256(state). Deterministic.
pub fn flow_cookie_name(cookie_name: &str, state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let mut name = format!("{cookie_name}_flow_");
    for byte in &digest[..8] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Attributes shared by every cookie pocketgate sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The cookie name (or, for chunked values, the prefix of `name_0`, `name_1`, ...).
    pub name: String,
    /// The `Domain` attribute, if cookies are shared across subdomains.
    pub domain: Option<String>,
    /// Whether to set `Secure` (whenever `public_url` is https).
    pub secure: bool,
    /// The `Max-Age` of the cookie.
    pub lifetime: std::time::Duration,
}

/// A value too long to fit in [`MAX_CHUNKS`] cookies of [`CHUNK_SIZE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cookie value of {len} bytes does not fit in {MAX_CHUNKS} cookies of {CHUNK_SIZE} bytes \
     (at most {max} bytes); request fewer claims or groups from the provider"
)]
pub struct TooLarge {
    /// Length of the refused value in bytes.
    pub len: usize,
    /// The most that fits, in bytes.
    pub max: usize,
}

/// Set-Cookie values that store `value` under `settings.name`: one cookie when it fits in
/// [`CHUNK_SIZE`], else `name_0`, `name_1`, ...; every member of the family in `present`
/// that is not overwritten gets a removal cookie, so stale chunks are never joined.
pub fn write_cookies(
    settings: &CookieSettings,
    value: &str,
    present: &[&str],
) -> Result<Vec<Cookie<'static>>, TooLarge> {
    let chunks = split_chunks(value);
    if chunks.len() > MAX_CHUNKS {
        return Err(TooLarge {
            len: value.len(),
            max: MAX_SEALED_LEN,
        });
    }
    let written: Vec<(String, &str)> = if chunks.len() <= 1 {
        vec![(settings.name.clone(), value)]
    } else {
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| (chunk_name(&settings.name, i), chunk))
            .collect()
    };
    let removals: Vec<Cookie<'static>> = family(&settings.name)
        .filter(|member| present.contains(&member.as_str()))
        .filter(|member| !written.iter().any(|(name, _)| name == member))
        .map(|member| removal_cookie(settings, member))
        .collect();
    let mut cookies: Vec<Cookie<'static>> = written
        .into_iter()
        .map(|(name, chunk)| base_cookie(settings, name, chunk.to_owned()))
        .collect();
    cookies.extend(removals);
    Ok(cookies)
}

/// Removal cookies for every member of the `settings.name` family found in `present`
/// (used by logout and after a session fails to open).
pub fn clear_cookies(settings: &CookieSettings, present: &[&str]) -> Vec<Cookie<'static>> {
    family(&settings.name)
        .filter(|member| present.contains(&member.as_str()))
        .map(|member| removal_cookie(settings, member))
        .collect()
}

/// Reassemble a value from request cookies: `name` if present, else `name_0`, `name_1`, ...
/// up to the first gap and at most [`MAX_CHUNKS`]; `None` if neither `name` nor `name_0` exists.
pub fn read_cookie_value(name: &str, cookies: &[(&str, &str)]) -> Option<String> {
    let find = |wanted: &str| {
        cookies
            .iter()
            .find(|(candidate, _)| *candidate == wanted)
            .map(|(_, value)| *value)
    };
    if let Some(value) = find(name) {
        return Some(value.to_owned());
    }
    let mut joined = String::new();
    let mut found = false;
    for i in 0..MAX_CHUNKS {
        match find(&chunk_name(name, i)) {
            Some(chunk) => {
                joined.push_str(chunk);
                found = true;
            }
            None => break,
        }
    }
    found.then_some(joined)
}

/// Parse a raw `Cookie:` request header (several headers may be joined by `"; "`) into
/// `(name, value)` pairs, skipping malformed pieces.
pub fn parse_cookie_header(header: &str) -> Vec<(String, String)> {
    Cookie::split_parse(header)
        .filter_map(Result::ok)
        .map(|cookie| (cookie.name().to_owned(), cookie.value().to_owned()))
        .collect()
}

/// Split `value` into pieces of at most [`CHUNK_SIZE`] bytes on character boundaries;
/// an empty value is one empty piece.
fn split_chunks(value: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut rest = value;
    loop {
        if rest.len() <= CHUNK_SIZE {
            chunks.push(rest);
            return chunks;
        }
        // A UTF-8 character is at most 4 bytes, so a boundary exists in the last 4.
        let mut end = CHUNK_SIZE;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
        // Stop early on hostile sizes: one chunk past the limit already means TooLarge.
        if chunks.len() > MAX_CHUNKS {
            return chunks;
        }
    }
}

/// `name_i`.
fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}_{i}")
}

/// Every cookie name that can hold (part of) a value stored under `name`.
fn family(name: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(name.to_owned()).chain((0..MAX_CHUNKS).map(move |i| chunk_name(name, i)))
}

/// A cookie with the attributes every pocketgate cookie carries.
fn base_cookie(settings: &CookieSettings, name: String, value: String) -> Cookie<'static> {
    let max_age = i64::try_from(settings.lifetime.as_secs()).unwrap_or(i64::MAX);
    let mut builder = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure)
        .max_age(cookie::time::Duration::seconds(max_age));
    if let Some(domain) = &settings.domain {
        builder = builder.domain(domain.clone());
    }
    builder.build()
}

/// A cookie that deletes `name` (same Path and Domain as when it was set).
fn removal_cookie(settings: &CookieSettings, name: String) -> Cookie<'static> {
    let mut cookie = base_cookie(settings, name, String::new());
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000;

    fn secret(byte: u8) -> Vec<u8> {
        vec![byte; 32]
    }

    fn keys(secrets: &[Vec<u8>]) -> SessionKeys {
        let mut all = secrets.iter().map(|s| {
            crate::config::SessionSecret::new(s.clone()).expect("test secrets are long enough")
        });
        let current = all.next().expect("at least one test secret");
        SessionKeys::new(&SessionSecrets::new(current, all.collect()))
    }

    fn identity() -> Identity {
        Identity {
            subject: "0b5e3c2a".into(),
            user: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            name: Some("Alice".into()),
            groups: vec!["admins".into(), "staff".into()],
            ..Identity::default()
        }
    }

    fn session(id_token: Option<String>) -> Session {
        Session {
            identity: identity(),
            issued: NOW - 10,
            expires: NOW + 3600,
            id_token,
        }
    }

    fn flow() -> FlowState {
        FlowState {
            state: "st4te".into(),
            nonce: "n0nce".into(),
            pkce_verifier: "verifier".into(),
            rd: "https://app.example.com/x".into(),
            expires: NOW + 600,
        }
    }

    fn settings(secure: bool, domain: Option<&str>) -> CookieSettings {
        CookieSettings {
            name: "pg".into(),
            domain: domain.map(str::to_owned),
            secure,
            lifetime: Duration::from_secs(3600),
        }
    }

    fn names(cookies: &[Cookie<'static>]) -> Vec<String> {
        cookies.iter().map(|c| c.name().to_owned()).collect()
    }

    fn is_removal(cookie: &Cookie<'_>) -> bool {
        cookie.value().is_empty() && cookie.max_age() == Some(cookie::time::Duration::ZERO)
    }

    /// The (name, value) pairs a browser would send back after storing `cookies`.
    fn as_request(cookies: &[Cookie<'static>]) -> Vec<(String, String)> {
        cookies
            .iter()
            .filter(|c| !is_removal(c))
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect()
    }

    fn borrow(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    // --- keys and sealing ---

    #[test]
    fn seal_then_open_round_trips() {
        let keys = keys(&[secret(1)]);
        for plaintext in [&b""[..], b"x", b"hello, world", &[0u8; 5000][..]] {
            let sealed = keys.seal(Purpose::Session, plaintext);
            assert_eq!(
                keys.open(Purpose::Session, &sealed).as_deref(),
                Some(plaintext)
            );
        }
    }

    #[test]
    fn sealed_value_is_url_safe_and_versioned() {
        let sealed = keys(&[secret(1)]).seal(Purpose::Session, b"abc");
        assert!(sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        assert_eq!(raw[0], VERSION);
        assert_eq!(raw.len(), 1 + NONCE_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let keys = keys(&[secret(1)]);
        let a = keys.seal(Purpose::Session, b"same");
        let b = keys.seal(Purpose::Session, b"same");
        assert_ne!(a, b);
        let nonce = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap()[1..1 + NONCE_LEN].to_vec();
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn rotation_old_values_open_and_new_values_use_the_first_key() {
        let old = keys(&[secret(1)]);
        let rotated = keys(&[secret(2), secret(1)]);
        let new_only = keys(&[secret(2)]);

        let from_old = old.seal(Purpose::Session, b"old session");
        assert_eq!(
            rotated.open(Purpose::Session, &from_old).as_deref(),
            Some(&b"old session"[..])
        );
        assert_eq!(new_only.open(Purpose::Session, &from_old), None);

        let from_rotated = rotated.seal(Purpose::Session, b"new session");
        assert_eq!(
            new_only.open(Purpose::Session, &from_rotated).as_deref(),
            Some(&b"new session"[..])
        );
        assert_eq!(old.open(Purpose::Session, &from_rotated), None);
    }

    #[test]
    fn debug_does_not_show_key_material() {
        let shown = format!("{:?}", keys(&[secret(0xab), secret(0xcd)]));
        assert_eq!(shown, "SessionKeys { keys: 2, .. }");
    }

    #[test]
    fn flipped_byte_anywhere_does_not_open() {
        let keys = keys(&[secret(1)]);
        let sealed = keys.seal(Purpose::Session, b"some session payload");
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        for position in [
            0,
            1,
            6,
            NONCE_LEN,
            NONCE_LEN + 1,
            NONCE_LEN + 5,
            last - TAG_LEN,
            last - 3,
            last,
        ] {
            for bit in [0x01u8, 0x80] {
                let mut tampered = raw.clone();
                tampered[position] ^= bit;
                let tampered = URL_SAFE_NO_PAD.encode(&tampered);
                assert_eq!(
                    keys.open(Purpose::Session, &tampered),
                    None,
                    "byte {position} bit {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn changed_character_anywhere_does_not_open() {
        let keys = keys(&[secret(1)]);
        let sealed = keys.seal(Purpose::Session, b"some session payload");
        for position in 0..sealed.len() {
            let mut chars: Vec<char> = sealed.chars().collect();
            chars[position] = if chars[position] == 'A' { 'B' } else { 'A' };
            let tampered: String = chars.into_iter().collect();
            assert_eq!(
                keys.open(Purpose::Session, &tampered),
                None,
                "char {position}"
            );
        }
    }

    #[test]
    fn truncated_or_extended_does_not_open() {
        let keys = keys(&[secret(1)]);
        let sealed = keys.seal(Purpose::Session, b"payload");
        for len in 0..sealed.len() {
            assert_eq!(
                keys.open(Purpose::Session, &sealed[..len]),
                None,
                "len {len}"
            );
        }
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for len in 0..raw.len() {
            let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
            assert_eq!(keys.open(Purpose::Session, &cut), None, "raw len {len}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(
            keys.open(Purpose::Session, &URL_SAFE_NO_PAD.encode(&longer)),
            None
        );
    }

    #[test]
    fn empty_and_malformed_input_does_not_open() {
        let keys = keys(&[secret(1)]);
        let sealed = keys.seal(Purpose::Session, b"payload");
        let padded = URL_SAFE_NO_PAD
            .decode(&sealed)
            .map(|raw| base64::engine::general_purpose::URL_SAFE.encode(raw) + "=");
        let standard = URL_SAFE_NO_PAD
            .decode(&sealed)
            .map(|raw| base64::engine::general_purpose::STANDARD.encode(raw))
            .unwrap();
        let huge = "A".repeat(MAX_SEALED_LEN + 4);
        for input in [
            "",
            "!",
            "not base64 at all",
            "%%%%",
            "é",
            "\0\0\0",
            " ",
            &format!(" {sealed}"),
            &format!("{sealed}="),
            &padded.unwrap(),
            &huge,
        ] {
            assert_eq!(keys.open(Purpose::Session, input), None, "{input:?}");
        }
        // The standard alphabet only differs when '+' or '/' occur; either way it must not
        // open unless it is byte-for-byte the url-safe form.
        if standard != sealed {
            assert_eq!(keys.open(Purpose::Session, &standard), None);
        }
    }

    #[test]
    fn wrong_version_does_not_open() {
        let keys = keys(&[secret(1)]);
        let raw = URL_SAFE_NO_PAD
            .decode(keys.seal(Purpose::Session, b"payload"))
            .unwrap();
        for version in [0u8, 2, 255] {
            let mut other = raw.clone();
            other[0] = version;
            assert_eq!(
                keys.open(Purpose::Session, &URL_SAFE_NO_PAD.encode(&other)),
                None
            );
        }
    }

    #[test]
    fn value_sealed_by_a_foreign_secret_does_not_open() {
        let ours = keys(&[secret(1), secret(2)]);
        let theirs = keys(&[secret(3)]);
        let sealed = theirs.seal(Purpose::Session, b"payload");
        assert_eq!(ours.open(Purpose::Session, &sealed), None);
    }

    #[test]
    fn purposes_do_not_open_as_each_other() {
        let keys = keys(&[secret(1)]);
        let as_session = keys.seal(Purpose::Session, b"x");
        let as_flow = keys.seal(Purpose::Flow, b"x");
        assert_eq!(keys.open(Purpose::Flow, &as_session), None);
        assert_eq!(keys.open(Purpose::Session, &as_flow), None);

        let sealed_session = session(None).seal(&keys);
        let sealed_flow = flow().seal(&keys);
        assert_eq!(FlowState::open(&keys, &sealed_session, NOW), None);
        assert_eq!(Session::open(&keys, &sealed_flow, NOW), None);
        assert_eq!(FlowState::open(&keys, &sealed_flow, NOW), Some(flow()));
        assert_eq!(
            Session::open(&keys, &sealed_session, NOW),
            Some(session(None))
        );
    }

    // --- payloads ---

    #[test]
    fn session_round_trips_with_and_without_id_token() {
        let keys = keys(&[secret(1)]);
        for s in [session(None), session(Some("eyJ.header.sig".into()))] {
            assert_eq!(Session::open(&keys, &s.seal(&keys), NOW), Some(s));
        }
    }

    #[test]
    fn session_is_compact_json_inside() {
        let keys = keys(&[secret(1)]);
        let plain = keys
            .open(Purpose::Session, &session(None).seal(&keys))
            .unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert!(text.starts_with('{') && !text.contains(' '), "{text}");
        assert!(!text.contains("idt"), "{text}");
    }

    #[test]
    fn expired_session_does_not_open() {
        let keys = keys(&[secret(1)]);
        let s = session(None);
        let sealed = s.seal(&keys);
        assert_eq!(
            Session::open(&keys, &sealed, s.expires - 1),
            Some(s.clone())
        );
        assert_eq!(Session::open(&keys, &sealed, s.expires), None);
        assert_eq!(Session::open(&keys, &sealed, s.expires + 1), None);
        assert_eq!(Session::open(&keys, &sealed, u64::MAX), None);
    }

    #[test]
    fn session_issued_in_the_future_does_not_open() {
        let keys = keys(&[secret(1)]);
        let at = |issued: u64| Session {
            issued,
            expires: NOW + 7200,
            ..session(None)
        };
        assert!(Session::open(&keys, &at(NOW + MAX_CLOCK_SKEW).seal(&keys), NOW).is_some());
        assert_eq!(
            Session::open(&keys, &at(NOW + MAX_CLOCK_SKEW + 1).seal(&keys), NOW),
            None
        );
        assert_eq!(Session::open(&keys, &at(NOW + 3600).seal(&keys), NOW), None);
        // No overflow when `now` is near the end of time.
        let late = Session {
            issued: u64::MAX - 1,
            expires: u64::MAX,
            ..session(None)
        };
        assert!(Session::open(&keys, &late.seal(&keys), u64::MAX - 1).is_some());
    }

    #[test]
    fn sealed_non_session_json_does_not_open_as_session() {
        let keys = keys(&[secret(1)]);
        for body in [&b"{}"[..], b"null", b"not json", b"{\"iat\":1}"] {
            let sealed = keys.seal(Purpose::Session, body);
            assert_eq!(Session::open(&keys, &sealed, NOW), None);
            let sealed = keys.seal(Purpose::Flow, body);
            assert_eq!(FlowState::open(&keys, &sealed, NOW), None);
        }
    }

    #[test]
    fn expired_flow_does_not_open() {
        let keys = keys(&[secret(1)]);
        let f = flow();
        let sealed = f.seal(&keys);
        assert_eq!(
            FlowState::open(&keys, &sealed, f.expires - 1),
            Some(f.clone())
        );
        assert_eq!(FlowState::open(&keys, &sealed, f.expires), None);
        assert_eq!(FlowState::open(&keys, &sealed, f.expires + 60), None);
    }

    #[test]
    fn flow_cookie_name_is_deterministic_and_per_state() {
        let a = flow_cookie_name("pg", "state-a");
        assert_eq!(a, flow_cookie_name("pg", "state-a"));
        assert_ne!(a, flow_cookie_name("pg", "state-b"));
        let suffix = a.strip_prefix("pg_flow_").unwrap();
        assert_eq!(suffix.len(), 16);
        assert!(suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // SHA-256("") starts with e3b0c44298fc1c14.
        assert_eq!(flow_cookie_name("pg", ""), "pg_flow_e3b0c44298fc1c14");
    }

    // --- cookies ---

    #[test]
    fn cookie_attributes() {
        let value = "v".repeat(10);
        let secure = write_cookies(&settings(true, Some("example.com")), &value, &[]).unwrap();
        assert_eq!(secure.len(), 1);
        let c = &secure[0];
        assert_eq!(c.name(), "pg");
        assert_eq!(c.value(), value);
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.domain(), Some("example.com"));
        assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(3600)));
        let header = c.to_string();
        for part in [
            "pg=vvvvvvvvvv",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Domain=example.com",
            "Max-Age=3600",
        ] {
            assert!(header.contains(part), "{header} lacks {part}");
        }

        let plain = write_cookies(&settings(false, None), &value, &[]).unwrap();
        let c = &plain[0];
        assert_ne!(c.secure(), Some(true));
        assert_eq!(c.domain(), None);
        let header = c.to_string();
        assert!(!header.contains("Secure"), "{header}");
        assert!(!header.contains("Domain"), "{header}");
        assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));
    }

    #[test]
    fn removal_cookies_keep_path_and_domain() {
        let cleared = clear_cookies(&settings(true, Some("example.com")), &["pg"]);
        assert_eq!(cleared.len(), 1);
        let c = &cleared[0];
        assert!(is_removal(c));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.domain(), Some("example.com"));
        assert!(c.to_string().contains("Max-Age=0"));
    }

    #[test]
    fn small_value_is_one_cookie() {
        let value = "x".repeat(CHUNK_SIZE);
        let cookies = write_cookies(&settings(false, None), &value, &[]).unwrap();
        assert_eq!(names(&cookies), ["pg"]);
        let request = as_request(&cookies);
        assert_eq!(read_cookie_value("pg", &borrow(&request)), Some(value));
    }

    #[test]
    fn large_session_is_chunked_and_rejoined() {
        let keys = keys(&[secret(1)]);
        let s = session(Some("t".repeat(10 * 1024)));
        let sealed = s.seal(&keys);
        // Sealing adds 29 bytes and base64 a third, so 10 KiB of token needs four chunks.
        assert!(sealed.len() > 3 * CHUNK_SIZE && sealed.len() <= 4 * CHUNK_SIZE);
        let cookies = write_cookies(&settings(true, None), &sealed, &[]).unwrap();
        assert_eq!(names(&cookies), ["pg_0", "pg_1", "pg_2", "pg_3"]);
        assert!(cookies.iter().all(|c| c.value().len() <= CHUNK_SIZE));
        assert!(cookies.iter().all(|c| c.http_only() == Some(true)));

        // The browser may send the chunks in any order, among other cookies.
        let mut request = as_request(&cookies);
        request.reverse();
        request.insert(1, ("other".into(), "x".into()));
        let joined = read_cookie_value("pg", &borrow(&request)).unwrap();
        assert_eq!(joined, sealed);
        assert_eq!(Session::open(&keys, &joined, NOW), Some(s));
    }

    #[test]
    fn chunk_boundaries_are_exact() {
        let at_two = "y".repeat(2 * CHUNK_SIZE);
        let cookies = write_cookies(&settings(false, None), &at_two, &[]).unwrap();
        assert_eq!(names(&cookies), ["pg_0", "pg_1"]);
        let one_more = "y".repeat(CHUNK_SIZE + 1);
        let cookies = write_cookies(&settings(false, None), &one_more, &[]).unwrap();
        assert_eq!(names(&cookies), ["pg_0", "pg_1"]);
        assert_eq!(cookies[1].value(), "y");
    }

    #[test]
    fn multibyte_values_split_on_character_boundaries() {
        let value = format!("a{}", "é".repeat(CHUNK_SIZE));
        let cookies = write_cookies(&settings(false, None), &value, &[]).unwrap();
        assert!(cookies.iter().all(|c| c.value().len() <= CHUNK_SIZE));
        let request = as_request(&cookies);
        assert_eq!(read_cookie_value("pg", &borrow(&request)), Some(value));
    }

    #[test]
    fn stale_chunks_get_removal_cookies() {
        let value = "z".repeat(CHUNK_SIZE + 10);
        let present = [
            "pg", "pg_0", "pg_1", "pg_2", "pg_3", "pg_7", "pg_8", "other", "pg_x",
        ];
        let cookies = write_cookies(&settings(false, None), &value, &present).unwrap();
        assert_eq!(
            names(&cookies),
            ["pg_0", "pg_1", "pg", "pg_2", "pg_3", "pg_7"]
        );
        assert!(!is_removal(&cookies[0]) && !is_removal(&cookies[1]));
        assert!(cookies[2..].iter().all(is_removal));
    }

    #[test]
    fn single_cookie_write_clears_old_chunks() {
        let present = ["pg_0", "pg_1", "pg_2", "pg"];
        let cookies = write_cookies(&settings(false, None), "short", &present).unwrap();
        assert_eq!(names(&cookies), ["pg", "pg_0", "pg_1", "pg_2"]);
        assert_eq!(cookies[0].value(), "short");
        assert!(cookies[1..].iter().all(is_removal));
    }

    #[test]
    fn duplicate_present_names_get_one_removal() {
        let cookies = write_cookies(&settings(false, None), "short", &["pg_0", "pg_0"]).unwrap();
        assert_eq!(names(&cookies), ["pg", "pg_0"]);
    }

    #[test]
    fn value_needing_more_than_max_chunks_is_too_large() {
        let fits = "q".repeat(CHUNK_SIZE * MAX_CHUNKS);
        let cookies = write_cookies(&settings(false, None), &fits, &[]).unwrap();
        assert_eq!(cookies.len(), MAX_CHUNKS);

        let too_long = "q".repeat(CHUNK_SIZE * MAX_CHUNKS + 1);
        let err = write_cookies(&settings(false, None), &too_long, &["pg"]).unwrap_err();
        assert_eq!(
            err,
            TooLarge {
                len: too_long.len(),
                max: CHUNK_SIZE * MAX_CHUNKS
            }
        );
        let huge = "q".repeat(CHUNK_SIZE * MAX_CHUNKS * 10);
        assert!(write_cookies(&settings(false, None), &huge, &[]).is_err());
    }

    #[test]
    fn clear_cookies_removes_the_whole_family_present() {
        let present = ["pg", "pg_0", "pg_5", "pg_flow_0123", "pgx", "pg_", "other"];
        let cleared = clear_cookies(&settings(false, None), &present);
        assert_eq!(names(&cleared), ["pg", "pg_0", "pg_5"]);
        assert!(cleared.iter().all(is_removal));
        assert!(clear_cookies(&settings(false, None), &[]).is_empty());
    }

    #[test]
    fn read_prefers_the_unchunked_cookie() {
        let cookies = [("pg_0", "chunk"), ("pg", "whole"), ("pg_1", "more")];
        assert_eq!(read_cookie_value("pg", &cookies).as_deref(), Some("whole"));
    }

    #[test]
    fn read_stops_at_the_first_gap() {
        let keys = keys(&[secret(1)]);
        let sealed = session(Some("t".repeat(10 * 1024))).seal(&keys);
        let cookies = write_cookies(&settings(false, None), &sealed, &[]).unwrap();
        let request: Vec<_> = as_request(&cookies)
            .into_iter()
            .filter(|(name, _)| name != "pg_1")
            .collect();
        let read = read_cookie_value("pg", &borrow(&request)).unwrap();
        assert_eq!(read, cookies[0].value());
        assert_eq!(Session::open(&keys, &read, NOW), None);
    }

    #[test]
    fn read_at_most_max_chunks() {
        let request: Vec<(String, String)> = (0..MAX_CHUNKS + 3)
            .map(|i| (format!("pg_{i}"), "c".into()))
            .collect();
        let read = read_cookie_value("pg", &borrow(&request)).unwrap();
        assert_eq!(read.len(), MAX_CHUNKS);
    }

    #[test]
    fn read_without_the_family_is_none() {
        assert_eq!(read_cookie_value("pg", &[]), None);
        assert_eq!(
            read_cookie_value("pg", &[("pg_1", "a"), ("pgx", "b"), ("pg_flow_ab", "c")]),
            None
        );
    }

    #[test]
    fn parse_cookie_header_splits_pairs() {
        let parsed = parse_cookie_header("pg_0=abc; pg_1=def;other=x=y;  empty=");
        assert_eq!(
            parsed,
            [
                ("pg_0".to_owned(), "abc".to_owned()),
                ("pg_1".to_owned(), "def".to_owned()),
                ("other".to_owned(), "x=y".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn parse_cookie_header_skips_garbage_without_panicking() {
        let long = "=".repeat(100_000);
        for header in [
            "",
            ";",
            ";;;; ;",
            "=",
            "=value",
            "novalue",
            "\u{0}\u{1}\u{7f}",
            "é=ü; ✓",
            "a=\"quoted\"",
            long.as_str(),
        ] {
            let _ = parse_cookie_header(header);
        }
        assert_eq!(
            parse_cookie_header("junk; =nameless; pg=ok; ;"),
            [("pg".to_owned(), "ok".to_owned())]
        );
    }

    #[test]
    fn header_round_trip_through_parse_and_read() {
        let keys = keys(&[secret(1)]);
        let s = session(Some("t".repeat(5000)));
        let cookies = write_cookies(&settings(true, None), &s.seal(&keys), &[]).unwrap();
        let header = cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let parsed = parse_cookie_header(&header);
        let read = read_cookie_value("pg", &borrow(&parsed)).unwrap();
        assert_eq!(Session::open(&keys, &read, NOW), Some(s));
    }
}
