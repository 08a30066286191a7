//! Access tokens on demand, for tests of relying parties that accept bearer tokens: JWTs as
//! Pocket ID issues them (or with the user's claims added, or broken in one chosen way) and
//! opaque ones, all answered by `/api/oidc/userinfo` like tokens from the code flow.

use serde_json::{Map, Value};

use super::keys::Forgery;
use super::protocol::{self, random_token, user_claims, WRONG_AUDIENCE, WRONG_ISSUER};
use super::store::{RefreshGrant, TokenGrant};
use super::{AccessTokenFlaw, AccessTokenOptions, Shared};

/// The `type` claim Pocket ID puts in its OAuth access tokens.
const ACCESS_TOKEN_TYPE: &str = "oauth-access-token";
/// Lifetime of an access token, in seconds (Pocket ID: one hour).
const LIFETIME: u64 = 3600;

/// Issues an access token for `options`; registered so that userinfo answers for it (broken
/// JWTs too: userinfo checks the token itself).
pub(super) async fn issue(shared: &Shared, options: &AccessTokenOptions) -> Result<String, String> {
    let user = shared
        .user(&options.username)
        .ok_or_else(|| format!("no user {:?}", options.username))?
        .user;
    let scopes: Vec<String> = ["openid", "profile", "email", "groups"]
        .map(String::from)
        .to_vec();
    let now = protocol::now();
    let jti = random_token(16).map_err(|e| e.to_string())?;
    let grant = TokenGrant {
        username: user.username.clone(),
        scopes: scopes.clone(),
        sid: random_token(16).map_err(|e| e.to_string())?,
        expires_at: now + LIFETIME,
        audience: options.audience.clone(),
    };
    if options.opaque {
        let token = random_token(32).map_err(|e| e.to_string())?;
        shared
            .store()
            .insert_access_token(token.clone(), grant, now);
        return Ok(token);
    }
    let flaw = options.flaw;
    let (iat, exp) = if flaw == Some(AccessTokenFlaw::Expired) {
        (
            now.saturating_sub(2 * LIFETIME),
            now.saturating_sub(LIFETIME),
        )
    } else {
        (now, now + LIFETIME)
    };
    let mut claims = if options.with_user_claims {
        user_claims(&user, &scopes)
    } else {
        Map::new()
    };
    let issuer = match flaw {
        Some(AccessTokenFlaw::WrongIssuer) => WRONG_ISSUER,
        _ => shared.issuer.as_str(),
    };
    let audience = match (flaw, &options.audience) {
        (Some(AccessTokenFlaw::WrongAudience), _) => WRONG_AUDIENCE.to_owned(),
        (_, Some(aud)) => aud.clone(),
        _ => shared.client.id.clone(),
    };
    for (name, value) in [
        ("iss", Value::from(issuer)),
        ("sub", user.subject().into()),
        ("aud", audience.into()),
        ("iat", iat.into()),
        ("exp", exp.into()),
        ("jti", jti.clone().into()),
        ("type", ACCESS_TOKEN_TYPE.into()),
        ("scope", scopes.join(" ").into()),
        (
            "amr",
            options
                .amr
                .clone()
                .unwrap_or_else(|| vec![protocol::AMR_PASSKEY.to_owned()])
                .into(),
        ),
    ] {
        claims.insert(name.into(), value);
    }
    if let Some(at) = options.auth_time {
        claims.insert("auth_time".into(), at.into());
    }
    let forgery = match flaw {
        Some(AccessTokenFlaw::WrongSignature) => Some(Forgery::WrongSignature),
        Some(AccessTokenFlaw::AlgNone) => Some(Forgery::AlgNone),
        Some(AccessTokenFlaw::Hs256WithPublicKey) => Some(Forgery::Hs256WithPublicKey),
        _ => None,
    };
    let token = shared
        .keys
        .sign(&Value::Object(claims), "JWT", forgery)
        .await?;
    shared.store().insert_access_token(jti, grant, now);
    Ok(token)
}

/// A refresh token for `username`, stored as the code grant with `offline_access` stores one.
pub(super) fn issue_refresh(shared: &Shared, username: &str) -> Result<String, String> {
    let user = shared
        .user(username)
        .ok_or_else(|| format!("no user {username:?}"))?
        .user;
    let now = protocol::now();
    let token = random_token(32).map_err(|e| e.to_string())?;
    let grant = RefreshGrant {
        username: user.username.clone(),
        scopes: [
            "openid",
            "profile",
            "email",
            "groups",
            protocol::OFFLINE_ACCESS,
        ]
        .map(String::from)
        .to_vec(),
        sid: random_token(16).map_err(|e| e.to_string())?,
        auth_time: now,
        amr: vec![protocol::AMR_PASSKEY.to_owned()],
        expires_at: now + protocol::REFRESH_LIFETIME,
    };
    shared
        .store()
        .insert_refresh_token(token.clone(), grant, now);
    Ok(token)
}
