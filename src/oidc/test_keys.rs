//! Signing keys for the JWS tests of `logout` and `bearer`: one RSA and one
//! P-256 key with their JWKs, generated at random.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA key: the signing key, its JWK, its public PEM.
pub(crate) fn rsa_key(kid: &str) -> (EncodingKey, Value, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;

    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be()),
    });
    let der = private.to_pkcs1_der().unwrap();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    (EncodingKey::from_rsa_der(der.as_bytes()), jwk, pem)
}

/// A P-256 key: the signing key and its JWK.
pub(crate) fn ec_key(kid: &str) -> (EncodingKey, Value) {
    use p256::elliptic_curve::sec1::ToSec1Point;
    use p256::pkcs8::EncodePrivateKey;

    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    let secret = p256::SecretKey::from_slice(&bytes).unwrap();
    let point = secret.public_key().to_sec1_point(false);
    let jwk = json!({
        "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    });
    let der = secret.to_pkcs8_der().unwrap();
    (EncodingKey::from_ec_der(der.as_bytes()), jwk)
}
