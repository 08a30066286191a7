//! Signing keys and signed tokens for the JWS tests of `jws`, `logout` and
//! `bearer`: one RSA and one P-256 key with their JWKs, generated at random.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use openidconnect::core::CoreJsonWebKeySet;
use serde_json::{json, Value};

use crate::config::{ClientAuth, OidcSettings};

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

/// The provider's RSA and P-256 keys (published as [`Keys::jwks`]), and an
/// impostor RSA key that claims the RSA key's `kid` (not published).
pub(crate) struct Keys {
    pub(crate) rsa: EncodingKey,
    pub(crate) rsa_jwk: Value,
    pub(crate) rsa_pem: String,
    pub(crate) ec: EncodingKey,
    pub(crate) ec_jwk: Value,
    pub(crate) impostor: EncodingKey,
    pub(crate) impostor_jwk: Value,
    pub(crate) jwks: CoreJsonWebKeySet,
}

/// A JWKS of `keys`.
pub(crate) fn jwks(keys: &[&Value]) -> CoreJsonWebKeySet {
    serde_json::from_value(json!({ "keys": keys })).unwrap()
}

/// Generated once per test run (RSA key generation takes a moment): kids
/// `rsa-1` (RSA and the impostor) and `ec-1`.
pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (rsa, rsa_jwk, rsa_pem) = rsa_key("rsa-1");
        let (ec, ec_jwk) = ec_key("ec-1");
        let (impostor, impostor_jwk, _) = rsa_key("rsa-1");
        let jwks = jwks(&[&rsa_jwk, &ec_jwk]);
        Keys {
            rsa,
            rsa_jwk,
            rsa_pem,
            ec,
            ec_jwk,
            impostor,
            impostor_jwk,
            jwks,
        }
    })
}

/// A compact JWS of `header` and `payload`, signed as `alg` with `key`
/// whatever the header says.
pub(crate) fn sign(header: &Value, payload: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{signature}")
}

/// `object` with member `name` set to `value` (or removed, for `null`).
pub(crate) fn set(mut object: Value, name: &str, value: Value) -> Value {
    let members = object.as_object_mut().unwrap();
    match value {
        Value::Null => members.remove(name),
        value => members.insert(name.to_string(), value),
    };
    object
}

/// The algorithm-confusion forgery: HS256 under `header` (its `alg` made
/// HS256), keyed with the RSA public key's PEM text.
pub(crate) fn hs256_with_rsa_pem(header: Value, claims: &Value) -> String {
    let header = set(header, "alg", json!("HS256"));
    let secret = EncodingKey::from_secret(keys().rsa_pem.as_bytes());
    sign(&header, &claims.to_string(), Algorithm::HS256, &secret)
}

/// Signed with the provider's RSA key (`rsa-1`) under `header`.
pub(crate) fn rs(header: Value, claims: Value) -> String {
    sign(&header, &claims.to_string(), Algorithm::RS256, &keys().rsa)
}

/// Signed with the provider's P-256 key (`ec-1`) under `header`.
pub(crate) fn es(header: Value, claims: Value) -> String {
    sign(&header, &claims.to_string(), Algorithm::ES256, &keys().ec)
}

/// Signed with another RSA key that claims the provider's `kid` (`rsa-1`).
pub(crate) fn impostor(header: Value, claims: Value) -> String {
    sign(
        &header,
        &claims.to_string(),
        Algorithm::RS256,
        &keys().impostor,
    )
}

/// `[oidc]` settings of a public client `pocketgate` of `issuer`, Pocket
/// ID's claim names.
pub(crate) fn oidc_settings(issuer: &str) -> OidcSettings {
    OidcSettings {
        issuer: issuer.into(),
        client_id: "pocketgate".into(),
        client_secret: None,
        client_auth: ClientAuth::None,
        scopes: vec!["openid".into()],
        username_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
        offline_access: false,
    }
}

/// One test per row: the token, and the error `check` (of the module that
/// uses the macro) gives for it.
macro_rules! refused_rows {
    ($($name:ident: $token:expr => $error:expr;)*) => {$(
        #[test]
        fn $name() {
            let token: String = $token;
            assert_eq!(check(&token), Err($error));
        }
    )*};
}
pub(crate) use refused_rows;
