//! The provider's signing keys: the primary key generated at start, and the two extra keys some
//! faults need (an impostor that reuses the primary `kid`, and a rotated key that is published
//! only once a token signed by it exists). Extra keys are generated on first use, off the
//! request thread.

use std::sync::atomic::{AtomicBool, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::OsRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{DevIdpError, SigningAlg};

/// One asymmetric signing key with everything derived from it once.
pub(super) struct SigningKey {
    alg: SigningAlg,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
    public_pem: String,
}

fn key_error(e: impl std::fmt::Display) -> DevIdpError {
    DevIdpError::Key(e.to_string())
}

/// A `kid` derived from the public key, so distinct keys get distinct ids without randomness.
fn derived_kid(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(spki_der)[..12])
}

impl SigningKey {
    /// Generates a fresh key; `kid` overrides the derived key id (for the impostor key).
    pub(super) fn generate(alg: SigningAlg, kid: Option<String>) -> Result<Self, DevIdpError> {
        match alg {
            SigningAlg::Rs256 => Self::generate_rsa(kid),
            SigningAlg::Es256 => Self::generate_p256(kid),
        }
    }

    fn generate_rsa(kid: Option<String>) -> Result<Self, DevIdpError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;

        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(key_error)?;
        let public = private.to_public_key();
        let pkcs1 = private.to_pkcs1_der().map_err(key_error)?;
        let spki = public.to_public_key_der().map_err(key_error)?;
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(key_error)?;
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let kid = kid.unwrap_or_else(|| derived_kid(spki.as_bytes()));
        Ok(SigningKey {
            alg: SigningAlg::Rs256,
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding: DecodingKey::from_rsa_components(&n, &e).map_err(key_error)?,
            jwk: json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": n,
                "e": e,
            }),
            kid,
            public_pem,
        })
    }

    fn generate_p256(kid: Option<String>) -> Result<Self, DevIdpError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

        let secret = p256::SecretKey::random(&mut OsRng);
        let public = secret.public_key();
        let pkcs8 = secret.to_pkcs8_der().map_err(key_error)?;
        let spki = public.to_public_key_der().map_err(key_error)?;
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(key_error)?;
        let point = public.to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(DevIdpError::Key(
                "P-256 public key has no coordinates".into(),
            ));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = kid.unwrap_or_else(|| derived_kid(spki.as_bytes()));
        Ok(SigningKey {
            alg: SigningAlg::Es256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_bytes()),
            decoding: DecodingKey::from_ec_components(&x, &y).map_err(key_error)?,
            jwk: json!({
                "kty": "EC",
                "use": "sig",
                "alg": "ES256",
                "kid": kid,
                "crv": "P-256",
                "x": x,
                "y": y,
            }),
            kid,
            public_pem,
        })
    }

    /// The key id put in the JWS header and the JWK.
    #[cfg(test)]
    pub(super) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as SPKI PEM text.
    pub(super) fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Signs `claims` with header `{alg, kid, typ: "JWT"}`.
    pub(super) fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_typed(claims, JWT)
    }

    /// Signs `claims` with header `{alg, kid, typ}`.
    pub(super) fn sign_typed(
        &self,
        claims: &Value,
        typ: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg.jwt_alg());
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The algorithm-confusion forgery: HS256 keyed with this key's public PEM, same `kid`.
    fn sign_hs256_with_public_key(
        &self,
        claims: &Value,
        typ: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        let key = EncodingKey::from_secret(self.public_pem.as_bytes());
        jsonwebtoken::encode(&header, claims, &key)
    }

    /// A validation that accepts only this key's algorithm (checks `exp` by default).
    pub(super) fn validation(&self) -> Validation {
        Validation::new(self.alg.jwt_alg())
    }

    /// Verifies a token signed by this key; `validation` decides which claims are checked.
    pub(super) fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Value, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Value>(token, &self.decoding, validation).map(|data| data.claims)
    }
}

/// The `typ` of ID and access tokens.
pub(super) const JWT: &str = "JWT";

/// An unsigned JWT: header `{"alg":"none","typ":typ}` and an empty signature.
fn unsigned_token(claims: &Value, typ: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": typ }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A way of signing a token wrongly, shared by the ID-token faults and the broken logout
/// tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Forgery {
    /// Signed by the impostor key, which carries the primary key's `kid`.
    WrongSignature,
    /// Unsigned: `alg: none`, empty signature.
    AlgNone,
    /// HS256 keyed with the primary key's public PEM, primary `kid`.
    Hs256WithPublicKey,
}

/// The primary key plus the lazily created keys of the signature faults.
pub(super) struct KeyRing {
    alg: SigningAlg,
    primary: SigningKey,
    impostor: OnceCell<SigningKey>,
    rotated: OnceCell<SigningKey>,
    rotated_published: AtomicBool,
}

impl KeyRing {
    /// Generates the primary key (blocking: RSA key generation takes a moment).
    pub(super) fn generate(alg: SigningAlg) -> Result<Self, DevIdpError> {
        Ok(KeyRing {
            alg,
            primary: SigningKey::generate(alg, None)?,
            impostor: OnceCell::new(),
            rotated: OnceCell::new(),
            rotated_published: AtomicBool::new(false),
        })
    }

    /// The key that signs everything when no signature fault is set.
    pub(super) fn primary(&self) -> &SigningKey {
        &self.primary
    }

    /// A different key carrying the primary key's `kid` ([`super::Fault::WrongSignature`]).
    pub(super) async fn impostor(&self) -> Result<&SigningKey, DevIdpError> {
        let (alg, kid) = (self.alg, self.primary.kid.clone());
        self.impostor
            .get_or_try_init(|| generate_off_thread(alg, Some(kid)))
            .await
    }

    /// A second key with its own `kid`, not published until [`Self::publish_rotated`]
    /// ([`super::Fault::UnknownKid`]).
    pub(super) async fn rotated(&self) -> Result<&SigningKey, DevIdpError> {
        let alg = self.alg;
        self.rotated
            .get_or_try_init(|| generate_off_thread(alg, None))
            .await
    }

    /// Signs `claims` with header type `typ`: with the primary key, or forged.
    pub(super) async fn sign(
        &self,
        claims: &Value,
        typ: &str,
        forgery: Option<Forgery>,
    ) -> Result<String, String> {
        let signed = match forgery {
            None => self.primary.sign_typed(claims, typ),
            Some(Forgery::WrongSignature) => self
                .impostor()
                .await
                .map_err(|e| e.to_string())?
                .sign_typed(claims, typ),
            Some(Forgery::AlgNone) => return Ok(unsigned_token(claims, typ)),
            Some(Forgery::Hs256WithPublicKey) => {
                self.primary.sign_hs256_with_public_key(claims, typ)
            }
        };
        signed.map_err(|e| e.to_string())
    }

    /// Adds the rotated key to the JWKS from now on.
    pub(super) fn publish_rotated(&self) {
        self.rotated_published.store(true, Ordering::SeqCst);
    }

    fn published_rotated(&self) -> Option<&SigningKey> {
        if self.rotated_published.load(Ordering::SeqCst) {
            self.rotated.get()
        } else {
            None
        }
    }

    /// The JWKS document: the primary key, and the rotated key once published.
    pub(super) fn jwks(&self) -> Value {
        let keys: Vec<&Value> = std::iter::once(&self.primary)
            .chain(self.published_rotated())
            .map(|key| &key.jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// The published key a relying party would pick for this `kid`.
    pub(super) fn published_key(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.primary)
            .chain(self.published_rotated())
            .find(|key| key.kid == kid)
    }
}

async fn generate_off_thread(
    alg: SigningAlg,
    kid: Option<String>,
) -> Result<SigningKey, DevIdpError> {
    tokio::task::spawn_blocking(move || SigningKey::generate(alg, kid))
        .await
        .map_err(key_error)?
}
