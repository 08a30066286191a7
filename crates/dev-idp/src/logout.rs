//! OpenID Connect Back-Channel Logout 1.0 from the provider's side: building logout tokens
//! (valid, or broken in one chosen way for negative tests) and POSTing them to the client's
//! back-channel logout URI.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::keys::Forgery;
use super::protocol::{self, random_token, WRONG_AUDIENCE, WRONG_ISSUER};
use super::{
    subject_for, BackchannelLogoutError, LogoutTarget, LogoutTokenFlaw, LogoutTokenOptions, Shared,
};

/// The event a logout token must carry (section 2.4).
pub(super) const BACKCHANNEL_LOGOUT_EVENT: &str =
    "http://schemas.openid.net/event/backchannel-logout";
/// The explicit type the specification recommends for logout tokens.
pub(super) const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// Lifetime of a logout token, in seconds: it is used right away.
const LOGOUT_TOKEN_LIFETIME: u64 = 120;
/// How long a delivery may take, like Pocket ID's back-channel logout timeout.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The claims of a logout token as `options` ask, at time `now`.
fn claims(
    shared: &Shared,
    options: &LogoutTokenOptions,
    now: u64,
) -> Result<Value, BackchannelLogoutError> {
    let flaw = options.flaw;
    let random = || random_token(16).map_err(|e| BackchannelLogoutError::Token(e.to_string()));
    let (iat, exp) = if flaw == Some(LogoutTokenFlaw::Expired) {
        (now.saturating_sub(600), now.saturating_sub(480))
    } else {
        (now, now + LOGOUT_TOKEN_LIFETIME)
    };
    let issuer = if flaw == Some(LogoutTokenFlaw::WrongIssuer) {
        WRONG_ISSUER
    } else {
        shared.issuer.as_str()
    };
    let audience = if flaw == Some(LogoutTokenFlaw::WrongAudience) {
        WRONG_AUDIENCE
    } else {
        shared.client.id.as_str()
    };
    let jti = match &options.jti {
        Some(jti) => jti.clone(),
        None => random()?,
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("iat".into(), iat.into());
    claims.insert("exp".into(), exp.into());
    claims.insert("jti".into(), jti.into());
    if let Some(username) = &options.username {
        claims.insert("sub".into(), subject_for(username).into());
    }
    if let Some(sid) = &options.sid {
        claims.insert("sid".into(), sid.clone().into());
    }
    if flaw != Some(LogoutTokenFlaw::MissingEvents) {
        claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    }
    if flaw == Some(LogoutTokenFlaw::WithNonce) {
        claims.insert("nonce".into(), random()?.into());
    }
    Ok(Value::Object(claims))
}

/// Builds and signs (or forges) a logout token.
pub(super) async fn build(
    shared: &Shared,
    options: &LogoutTokenOptions,
) -> Result<String, BackchannelLogoutError> {
    let claims = claims(shared, options, protocol::now())?;
    let forgery = match options.flaw {
        Some(LogoutTokenFlaw::WrongSignature) => Some(Forgery::WrongSignature),
        Some(LogoutTokenFlaw::AlgNone) => Some(Forgery::AlgNone),
        Some(LogoutTokenFlaw::Hs256WithPublicKey) => Some(Forgery::Hs256WithPublicKey),
        _ => None,
    };
    shared
        .keys
        .sign(&claims, LOGOUT_TOKEN_TYPE, forgery)
        .await
        .map_err(BackchannelLogoutError::Token)
}

/// POSTs a logout token to the configured URI; the HTTP status answered.
pub(super) async fn send(
    shared: &Shared,
    logout_token: &str,
) -> Result<u16, BackchannelLogoutError> {
    let uri = shared
        .client
        .backchannel_logout_uri
        .as_deref()
        .ok_or(BackchannelLogoutError::NotConfigured)?;
    let delivery_error = |reason: String| BackchannelLogoutError::Delivery {
        uri: uri.to_owned(),
        reason,
    };
    // A redirect would turn the POST into a GET without the token: answer with it instead.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .build()
        .map_err(|e| delivery_error(e.to_string()))?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", logout_token)
        .finish();
    let response = client
        .post(uri)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| delivery_error(e.to_string()))?;
    let status = response.status().as_u16();
    tracing::debug!(%uri, status, "logout token delivered");
    Ok(status)
}

/// Ends the sessions of `target` and sends a valid logout token for each.
pub(super) async fn backchannel_logout(
    shared: &Shared,
    target: LogoutTarget<'_>,
) -> Result<Vec<u16>, BackchannelLogoutError> {
    if shared.client.backchannel_logout_uri.is_none() {
        return Err(BackchannelLogoutError::NotConfigured);
    }
    let sessions: Vec<(String, String)> = {
        let mut store = shared.store();
        let now = protocol::now();
        let sessions: Vec<(String, String)> = match target {
            LogoutTarget::Session(sid) => {
                let username = store
                    .session(sid, now)
                    .ok_or_else(|| BackchannelLogoutError::UnknownSession(sid.to_owned()))?;
                vec![(username, sid.to_owned())]
            }
            LogoutTarget::User(username) => {
                let sids = store.sessions_of(username, now);
                if sids.is_empty() {
                    return Err(BackchannelLogoutError::NoSession(username.to_owned()));
                }
                sids.into_iter()
                    .map(|sid| (username.to_owned(), sid))
                    .collect()
            }
        };
        for (_, sid) in &sessions {
            store.end_session(sid);
        }
        sessions
    };
    let mut statuses = Vec::with_capacity(sessions.len());
    for (username, sid) in sessions {
        let token = build(shared, &LogoutTokenOptions::new(&username, &sid)).await?;
        let status = send(shared, &token).await?;
        tracing::info!(user = %username, %sid, status, "back-channel logout sent");
        statuses.push(status);
    }
    Ok(statuses)
}
