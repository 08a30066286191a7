//! An assertion signing key: a P-256 private key, parsed from PEM (PKCS#8
//! `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) or drawn from random bytes, with
//! its key id. Only parsing and encoding live here; signing is
//! `crate::assertion`'s, reading and writing files the caller's.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};

use super::Invalid;

/// A P-256 key that signs assertions. Its `kid` is the RFC 7638 thumbprint of
/// the public key, so every replica given the same key names it alike.
#[derive(Clone)]
pub struct SigningKey {
    secret: p256::SecretKey,
    kid: String,
    x: String,
    y: String,
}

impl SigningKey {
    /// Every key of a PEM text, in order (the first signs, the others are
    /// only published). Blocks of other types are refused, not skipped.
    pub fn parse_pem(text: &str) -> Result<Vec<SigningKey>, Invalid> {
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some((_, after)) = rest.split_once("-----BEGIN ") {
            let (label, _) = after
                .split_once("-----")
                .ok_or_else(|| Invalid::new("holds a broken PEM header"))?;
            let end_marker = format!("-----END {label}-----");
            let (body, tail) = after
                .split_once(end_marker.as_str())
                .ok_or_else(|| Invalid::new(format!("has no \"{end_marker}\" line")))?;
            let pem = format!("-----BEGIN {body}{end_marker}");
            let pem = pem.as_str();
            let secret = match label {
                "PRIVATE KEY" => p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| {
                    Invalid::new(format!(
                        "holds a PRIVATE KEY that is not a P-256 key ({e})"
                    ))
                })?,
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(pem).map_err(|e| {
                    Invalid::new(format!(
                        "holds an EC PRIVATE KEY that is not a P-256 key ({e})"
                    ))
                })?,
                other => {
                    return Err(Invalid::new(format!(
                        "holds a \"{other}\" block; only P-256 private keys (PRIVATE KEY or EC PRIVATE KEY) belong here"
                    )))
                }
            };
            keys.push(SigningKey::from_secret(secret));
            rest = tail;
        }
        if keys.is_empty() {
            return Err(Invalid::new(
                "holds no PEM private key (fix: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)",
            ));
        }
        Ok(keys)
    }

    /// A key from 32 random bytes; `None` in the negligible case that they
    /// are not a valid scalar (draw again).
    pub fn from_random(bytes: &[u8; 32]) -> Option<SigningKey> {
        p256::SecretKey::from_slice(bytes)
            .ok()
            .map(SigningKey::from_secret)
    }

    fn from_secret(secret: p256::SecretKey) -> SigningKey {
        let point = secret.public_key().to_sec1_point(false);
        let b64 = |c: Option<&[u8]>| URL_SAFE_NO_PAD.encode(c.unwrap_or_default());
        let x = b64(point.x().map(|a| a.as_slice()));
        let y = b64(point.y().map(|a| a.as_slice()));
        // RFC 7638: the required members, lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        SigningKey { secret, kid, x, y }
    }

    /// The key id: the public key's JWK thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK for `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// The private key as PKCS#8 DER (what the signer takes).
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, Invalid> {
        self.secret
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| Invalid::new(format!("cannot be encoded ({e})")))
    }

    /// The private key as PKCS#8 PEM (what a generated key file holds).
    pub fn to_pem(&self) -> Result<String, Invalid> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(|e| Invalid::new(format!("cannot be encoded ({e})")))
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.kid == other.kid
    }
}

impl Eq for SigningKey {}

impl fmt::Debug for SigningKey {
    // The private half never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

#[cfg(test)]
mod tests;
