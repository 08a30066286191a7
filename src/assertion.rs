//! The signed identity assertion: a compact JWT (ES256) pocketgate returns
//! with every allow that carries an identity, so that a backend can verify
//! who the user is against `/.well-known/jwks.json` instead of trusting
//! plain headers.
//!
//! This module holds the keys (the signing one and those still published),
//! signs, and caches signed assertions per (identity, origin, key) until half
//! their lifetime is gone, so the hot path does not sign on every request.
//! It does not decide when an assertion is due (`gate` asks on allow) and
//! does not parse key files (`config` and `domain` do).

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{AssertionSettings, StoreSettings};
use crate::domain::SigningKey;
use crate::policy::Identity;

/// The generated key's file in `state_dir` (embedded store).
pub const KEY_FILE: &str = "assertion-key.pem";

/// Signed assertions kept at once; one per (identity, origin) in use.
const CACHE_CAPACITY: u64 = 20_000;

/// Why the assertion keys could not be set up, or an assertion not signed.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    /// The generated key could not be read or kept in `state_dir`.
    #[error("assertion key {path}: {reason}")]
    KeyStore { path: PathBuf, reason: String },
    /// The operating system's random source failed.
    #[error("cannot generate an assertion key: the random source failed: {0}")]
    NoRandomness(getrandom::Error),
    /// Signing failed (a broken key).
    #[error("cannot sign the assertion: {0}")]
    Sign(String),
}

/// The assertion service of one configuration: built on start and on every
/// reload from the previous one, so that keys stay stable and a retired key
/// stays published until the last assertion it signed has expired.
pub struct Assertions {
    header: HeaderName,
    lifetime: u64,
    issuer: String,
    signer: Signer,
    /// Every key in the JWKS: the configured ones, then retired ones.
    published: Vec<Published>,
    /// The generated key, when there is no `key_file` (carried over reloads).
    generated: Option<SigningKey>,
    cache: moka::sync::Cache<[u8; 32], Arc<Cached>>,
}

struct Signer {
    kid: String,
    key: EncodingKey,
    header: Header,
}

#[derive(Clone)]
struct Published {
    key: SigningKey,
    /// `None`: configured now; `Some(t)`: retired, published until unix time `t`.
    until: Option<u64>,
}

struct Cached {
    value: HeaderValue,
    /// Reused while `now < fresh_until` (half the lifetime after `iat`).
    fresh_until: u64,
}

/// The claims, standard OIDC names (`preferred_username`, `email`, `name`, `groups`).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    groups: &'a [String],
    iat: u64,
    exp: u64,
}

impl Assertions {
    /// The service for `settings`. `issuer` is `public_url`; `store` says
    /// where a generated key is kept; `previous` is the service in force
    /// before a reload (its generated key is reused, its keys that are no
    /// longer configured stay published for one of its lifetimes).
    pub fn new(
        settings: &AssertionSettings,
        issuer: &str,
        store: &StoreSettings,
        previous: Option<&Assertions>,
        now: u64,
    ) -> Result<Assertions, AssertionError> {
        let (configured, generated) = match &settings.key_file {
            Some(file) => (file.keys.clone(), None),
            None => {
                let key = match previous.and_then(|p| p.generated.clone()) {
                    Some(k) => k,
                    None => generated_key(store)?,
                };
                (vec![key.clone()], Some(key))
            }
        };
        let mut published: Vec<Published> = configured
            .iter()
            .map(|k| Published {
                key: k.clone(),
                until: None,
            })
            .collect();
        if let Some(prev) = previous {
            for p in &prev.published {
                if configured.contains(&p.key) {
                    continue;
                }
                let until = p.until.unwrap_or(now + prev.lifetime);
                if until > now && !published.iter().any(|q| q.key == p.key) {
                    published.push(Published {
                        key: p.key.clone(),
                        until: Some(until),
                    });
                }
            }
        }
        let signing = configured.first().ok_or_else(|| AssertionError::KeyStore {
            path: PathBuf::new(),
            reason: "no key".into(),
        })?;
        let der = signing
            .pkcs8_der()
            .map_err(|e| AssertionError::Sign(e.reason().into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(signing.kid().to_string());
        let lifetime = settings.lifetime.as_secs();
        Ok(Assertions {
            header: settings.header.clone(),
            lifetime,
            issuer: issuer.to_string(),
            signer: Signer {
                kid: signing.kid().to_string(),
                key: EncodingKey::from_ec_der(&der),
                header,
            },
            published,
            generated,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(Duration::from_secs((lifetime / 2).max(1)))
                .build(),
        })
    }

    /// The header the assertion goes in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The key id that signs now.
    pub fn kid(&self) -> &str {
        &self.signer.kid
    }

    /// The assertion of `user` for a request to `audience` (the original
    /// request's origin), from the cache while less than half its lifetime
    /// is gone, else freshly signed.
    pub fn assertion(
        &self,
        user: &Identity,
        audience: &str,
        now: u64,
    ) -> Result<HeaderValue, AssertionError> {
        let key = self.cache_key(user, audience);
        if let Some(c) = self.cache.get(&key) {
            if now < c.fresh_until {
                return Ok(c.value.clone());
            }
        }
        let claims = Claims {
            iss: &self.issuer,
            aud: audience,
            sub: &user.subject,
            preferred_username: &user.user,
            email: user.email.as_deref().filter(|_| user.email_verified),
            name: user.name.as_deref(),
            groups: &user.groups,
            iat: now,
            exp: now + self.lifetime,
        };
        let token = jsonwebtoken::encode(&self.signer.header, &claims, &self.signer.key)
            .map_err(|e| AssertionError::Sign(e.to_string()))?;
        let value =
            HeaderValue::try_from(token).map_err(|e| AssertionError::Sign(e.to_string()))?;
        self.cache.insert(
            key,
            Arc::new(Cached {
                value: value.clone(),
                fresh_until: now + self.lifetime / 2,
            }),
        );
        Ok(value)
    }

    /// `{"keys": [...]}`: the configured keys and retired ones whose last
    /// assertion may still be valid at `now`.
    pub fn jwks(&self, now: u64) -> serde_json::Value {
        let keys: Vec<_> = self
            .published
            .iter()
            .filter(|p| p.until.is_none_or(|u| u > now))
            .map(|p| p.key.public_jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// What identifies one assertion: the signing key, the audience and
    /// every identity field that goes into it, so a refreshed identity (new
    /// groups) never gets an assertion signed for the old one.
    fn cache_key(&self, user: &Identity, audience: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        field(&self.signer.kid);
        field(audience);
        field(&user.subject);
        field(&user.user);
        field(
            user.email
                .as_deref()
                .filter(|_| user.email_verified)
                .unwrap_or(""),
        );
        field(user.name.as_deref().unwrap_or("\0none"));
        for g in &user.groups {
            field(g);
        }
        h.finalize().into()
    }
}

/// The audience of an assertion: the origin of the original request,
/// lower case, without the scheme's default port (`https://grafana.example.com`).
pub fn audience(https: bool, authority: &str) -> String {
    let authority = authority.to_ascii_lowercase();
    let default_port = if https { ":443" } else { ":80" };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .trim_end_matches('.');
    format!("{}://{authority}", if https { "https" } else { "http" })
}

/// The key pocketgate generates when no `key_file` is set: kept in
/// `state_dir` with the embedded store (read back on restart), in memory
/// otherwise.
fn generated_key(store: &StoreSettings) -> Result<SigningKey, AssertionError> {
    match store {
        StoreSettings::Embedded { state_dir } => load_or_create(state_dir),
        _ => random_key(),
    }
}

fn random_key() -> Result<SigningKey, AssertionError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(AssertionError::NoRandomness)?;
        if let Some(k) = SigningKey::from_random(&bytes) {
            return Ok(k);
        }
    }
}

/// Read `dir/assertion-key.pem`, or create it (0600, in a 0700 directory)
/// with a new key. Two processes racing to create it both end up with the
/// one that was written first.
fn load_or_create(dir: &Path) -> Result<SigningKey, AssertionError> {
    let path = dir.join(KEY_FILE);
    let fail = |reason: String| AssertionError::KeyStore {
        path: path.clone(),
        reason,
    };
    let read = |path: &Path| -> Result<SigningKey, AssertionError> {
        let text = fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let keys = SigningKey::parse_pem(&text).map_err(|e| fail(e.reason().to_string()))?;
        keys.into_iter()
            .next()
            .ok_or_else(|| fail("holds no key".into()))
    };
    if path.exists() {
        return read(&path);
    }
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    }
    let key = random_key()?;
    let pem = key.to_pem().map_err(|e| fail(e.reason().to_string()))?;
    // Written aside and linked into place, so no reader sees half a key.
    let tmp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(format!("cannot write: {e}")))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(format!("cannot write: {e}")))?;
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), kid = key.kid(), "generated the assertion signing key");
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(fail(format!("cannot write: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn the_audience_is_the_origin_without_default_port() {
        assert_eq!(
            audience(true, "Grafana.Example.com:443"),
            "https://grafana.example.com"
        );
        assert_eq!(audience(false, "app:8080"), "http://app:8080");
        assert_eq!(audience(false, "app:80"), "http://app");
    }

    #[test]
    fn a_generated_key_is_kept_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let a = load_or_create(&sub).unwrap();
        let b = load_or_create(&sub).unwrap();
        assert_eq!(a.kid(), b.kid());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(sub.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
