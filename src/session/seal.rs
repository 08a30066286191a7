//! Sealing: AES-256-GCM with keys derived by HKDF-SHA256 from the session
//! secrets, bound to a [`Purpose`], with key rotation (the first secret seals,
//! every secret opens). [`SessionKeys::open`] says why a value does not open.
//!
//! Layout of a sealed value (then base64url without padding):
//! `version (1) | key id (4) | nonce (12) | ciphertext | tag (16)`.
//! The key id is derived from the key by HKDF too, so it reveals nothing of
//! it, and lets `open` try only the key that sealed and tell "sealed by a key
//! we do not have" from "tampered with".

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::sync::Arc;

use hkdf::Hkdf;
use sha2::Sha256;

use super::cookies::MAX_SEALED_LEN;
use crate::config::SessionSecrets;

/// Format version, the first byte of every sealed value (1 had no key id).
pub(super) const VERSION: u8 = 2;
pub(super) const KEY_ID_LEN: usize = 4;
pub(super) const NONCE_LEN: usize = 12;
pub(super) const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const HKDF_SALT: &[u8] = b"pocketgate/v1";
const HKDF_INFO: &[u8] = b"session-cookie";
const HKDF_INFO_KEY_ID: &[u8] = b"session-cookie/key-id";

/// What a sealed value is for; bound into the AEAD as associated data so a value
/// sealed for one purpose never opens as another (a login-flow cookie is never a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// A login-flow cookie.
    Flow,
    /// The cookie that keeps the ID token for logout.
    IdToken,
    /// The session cookie with a store: a random session id.
    SessionId,
    /// A provider token (refresh or ID token) kept in a store record.
    StoredToken,
    /// A whole session record in a store, bound to its store key
    /// ([`SessionKeys::seal_bound`]).
    StoredRecord,
    /// A SCIM user or group in the store's directory, bound to its kind and id.
    Directory,
}

impl Purpose {
    const ALL: [Purpose; 7] = [
        Purpose::Session,
        Purpose::Flow,
        Purpose::IdToken,
        Purpose::SessionId,
        Purpose::StoredToken,
        Purpose::StoredRecord,
        Purpose::Directory,
    ];

    /// The associated data that binds a sealed value to its purpose.
    fn associated_data(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"pocketgate/v1/session",
            Purpose::Flow => b"pocketgate/v1/flow",
            Purpose::IdToken => b"pocketgate/v1/id-token",
            Purpose::SessionId => b"pocketgate/v1/session-id",
            Purpose::StoredToken => b"pocketgate/v1/stored-token",
            Purpose::StoredRecord => b"pocketgate/v1/stored-record",
            Purpose::Directory => b"pocketgate/v1/scim-directory",
        }
    }

    /// The associated data with `context` bound in as well (empty: the
    /// purpose's alone, as every value sealed before contexts existed).
    fn associated_data_with(self, context: &[u8]) -> Vec<u8> {
        let base = self.associated_data();
        let mut aad = Vec::with_capacity(base.len() + 1 + context.len());
        aad.extend_from_slice(base);
        if !context.is_empty() {
            aad.push(0);
            aad.extend_from_slice(context);
        }
        aad
    }

    /// The longest sealed value of this purpose `open` looks at: a cookie's
    /// worth, except store records, which hold sealed tokens of their own
    /// and never travel in a cookie.
    fn max_sealed_len(self) -> usize {
        match self {
            Purpose::StoredRecord => MAX_RECORD_LEN,
            Purpose::Directory => MAX_DIRECTORY_LEN,
            _ => MAX_SEALED_LEN,
        }
    }
}

/// Longest sealed store record `open` looks at (a record holds two sealed
/// tokens of a few KiB each).
const MAX_RECORD_LEN: usize = 256 * 1024;

/// Longest sealed SCIM resource `open` looks at (a group of 10,000 members).
const MAX_DIRECTORY_LEN: usize = 2 * 1024 * 1024;

/// Why a sealed value did not open. Only ever logged (at debug level): the
/// request simply has no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("longer than any value pocketgate writes")]
    TooLong,
    #[error("not base64url, or too short to hold a sealed value")]
    Malformed,
    #[error("unknown format version (sealed by another pocketgate release)")]
    Version,
    #[error("sealed with a key that is not configured (foreign, or rotated out)")]
    ForeignKey,
    #[error("sealed for another purpose")]
    WrongPurpose,
    #[error("does not authenticate: tampered with or truncated")]
    Tampered,
    #[error("opened, but is not a value of this kind")]
    NotThisKind,
    #[error("expired")]
    Expired,
    #[error("issued in the future (clock skew beyond the allowance)")]
    FromTheFuture,
    #[error("the fields beside a sealed record disagree with it (edited in the store)")]
    Disagrees,
}

struct Key {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

/// Keys derived from the configured secrets. The first secret seals; every secret opens (rotation).
#[derive(Clone)]
pub struct SessionKeys {
    /// The key that seals.
    current: Arc<Key>,
    /// Every key, the current one first, for opening.
    all: Vec<Arc<Key>>,
}

impl std::fmt::Debug for SessionKeys {
    // Key material must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keys", &self.all.len())
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derive one AES-256-GCM key per secret with HKDF-SHA256 (config
    /// guarantees at least one, each at least 32 bytes).
    pub fn new(secrets: &SessionSecrets) -> Self {
        let current = Arc::new(derive(secrets.current().bytes()));
        let mut all = vec![current.clone()];
        all.extend(secrets.iter().skip(1).map(|s| Arc::new(derive(s.bytes()))));
        Self { current, all }
    }

    /// Encrypt `plaintext` for `purpose` with the current key.
    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> String {
        self.seal_bound(purpose, &[], plaintext)
    }

    /// Encrypt `plaintext` for `purpose` and `context` (e.g. the store key a
    /// record lives under): it opens only with the same purpose and context,
    /// so a sealed value copied elsewhere does not open there.
    pub fn seal_bound(&self, purpose: Purpose, context: &[u8], plaintext: &[u8]) -> String {
        let aad = purpose.associated_data_with(context);
        let mut nonce = [0u8; NONCE_LEN];
        // Without an OS random source no value can be sealed safely; there is no
        // sensible way to continue, and this does not depend on any input.
        #[allow(
            clippy::expect_used,
            reason = "no safe way on without an OS random source"
        )]
        getrandom::getrandom(&mut nonce).expect("the operating system's random source failed");
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        // AES-GCM only refuses plaintexts longer than 64 GiB, which cannot occur here.
        #[allow(
            clippy::expect_used,
            reason = "plaintexts are kilobytes, far below AES-GCM's limit"
        )]
        let ciphertext = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .expect("AES-GCM plaintext within its length limit");
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&self.current.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// Decrypt a value sealed for `purpose` by one of the keys, or say why not.
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Result<Vec<u8>, Refused> {
        self.open_bound(purpose, &[], sealed)
    }

    /// Decrypt a value sealed by [`SessionKeys::seal_bound`] for `purpose`
    /// and `context`, or say why not (another context is `Tampered`).
    pub fn open_bound(
        &self,
        purpose: Purpose,
        context: &[u8],
        sealed: &str,
    ) -> Result<Vec<u8>, Refused> {
        if sealed.len() > purpose.max_sealed_len() {
            return Err(Refused::TooLong);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| Refused::Malformed)?;
        let (header, ciphertext) = raw.split_at_checked(HEADER_LEN).ok_or(Refused::Malformed)?;
        let (&version, rest) = header.split_first().ok_or(Refused::Malformed)?;
        if version != VERSION {
            return Err(Refused::Version);
        }
        if ciphertext.len() < TAG_LEN {
            return Err(Refused::Malformed);
        }
        let (key_id, nonce) = rest.split_at(KEY_ID_LEN);
        let key = self
            .all
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(Refused::ForeignKey)?;
        let nonce =
            Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| Refused::Malformed)?);
        let nonce = &nonce;
        let decrypt = |purpose: Purpose| {
            key.cipher.decrypt(
                nonce,
                Payload {
                    msg: ciphertext,
                    aad: &purpose.associated_data_with(context),
                },
            )
        };
        match decrypt(purpose) {
            Ok(plaintext) => Ok(plaintext),
            // Only on the failure path: is it another purpose's value?
            Err(_)
                if Purpose::ALL
                    .iter()
                    .any(|p| *p != purpose && decrypt(*p).is_ok()) =>
            {
                Err(Refused::WrongPurpose)
            }
            Err(_) => Err(Refused::Tampered),
        }
    }
}

/// HKDF-SHA256 from one secret to an AES-256-GCM key and its id.
fn derive(secret: &[u8]) -> Key {
    let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret);
    let mut key = [0u8; 32];
    let mut id = [0u8; KEY_ID_LEN];
    // HKDF-SHA256 can expand to 8160 bytes; 32 and 4 always succeed, so the
    // results are ignored rather than unwrapped.
    let _ = hkdf.expand(HKDF_INFO, &mut key);
    let _ = hkdf.expand(HKDF_INFO_KEY_ID, &mut id);
    Key {
        id,
        cipher: Aes256Gcm::new(&key.into()),
    }
}
