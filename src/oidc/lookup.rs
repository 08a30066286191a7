//! Questions to the provider's userinfo and introspection endpoints, with
//! bounded answers: for the sign-in and refresh (claims missing from the ID
//! token) and for bearer tokens. What an answer means for a token is the
//! caller's call ([`super::bearer`]); here every answer but a JSON object
//! with a success status is a [`ProviderError`] that says which endpoint
//! failed and how.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Endpoint, OidcError, Provider, ProviderError};
use crate::config::ClientAuth;
use crate::telemetry::otel;

/// Largest userinfo or introspection answer read.
const MAX_ANSWER: usize = 64 * 1024;

impl Provider {
    /// The userinfo endpoint, when discovery lists one.
    pub(super) fn userinfo_endpoint(&self) -> Result<Option<url::Url>, OidcError> {
        Ok(self
            .current()?
            .metadata
            .userinfo_endpoint()
            .map(|e| e.url().clone()))
    }

    /// The provider's introspection endpoint, when discovery lists one.
    pub(super) fn introspection_endpoint(&self) -> Result<Option<url::Url>, OidcError> {
        Ok(self
            .current()?
            .metadata
            .additional_metadata()
            .introspection_endpoint
            .clone())
    }

    /// The userinfo endpoint's claims for `access_token`. A refusal is
    /// [`ProviderError::Status`] with the status (what it means for a token
    /// is the caller's call).
    pub(super) async fn userinfo(
        &self,
        endpoint: &url::Url,
        access_token: &str,
        timeout: Option<Duration>,
    ) -> Result<Map<String, Value>, ProviderError> {
        let mut request = self
            .http
            .get(endpoint.as_str())
            .bearer_auth(access_token)
            .header("accept", "application/json");
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let answer = otel::send("userinfo", request)
            .await
            .map_err(|e| ProviderError::failed(Endpoint::Userinfo, e))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(ProviderError::Status {
                endpoint: Endpoint::Userinfo,
                status,
            });
        }
        json_object(Endpoint::Userinfo, answer).await
    }

    /// RFC 7662: what the introspection `endpoint` says of `token`, asked
    /// with the client's credentials (`oidc.client_auth`). Any answer but a
    /// JSON object with status 200 is a failure: an invalid token is
    /// `{"active": false}`, never an error status.
    pub(super) async fn introspect(
        &self,
        endpoint: &url::Url,
        token: &str,
        timeout: Duration,
    ) -> Result<Map<String, Value>, ProviderError> {
        let form_encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let id = self.settings.client_id.as_str();
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let secret = self.settings.client_secret.as_ref().map(|s| s.expose());
        let mut request = self
            .http
            .post(endpoint.as_str())
            .header("accept", "application/json")
            .timeout(timeout);
        match (self.settings.client_auth, secret) {
            // RFC 6749 section 2.3.1: both form-encoded before Basic.
            (ClientAuth::Basic, Some(secret)) => {
                request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
            }
            (ClientAuth::Post, Some(secret)) => {
                form.push(("client_id", id));
                form.push(("client_secret", secret));
            }
            _ => form.push(("client_id", id)),
        }
        let answer = otel::send("introspection", request.form(&form))
            .await
            .map_err(|e| ProviderError::failed(Endpoint::Introspection, e))?;
        let status = answer.status();
        match status.as_u16() {
            _ if status.is_success() => json_object(Endpoint::Introspection, answer).await,
            401 | 403 => Err(ProviderError::CredentialsRefused { status }),
            _ => Err(ProviderError::Status {
                endpoint: Endpoint::Introspection,
                status,
            }),
        }
    }
}

/// The body of `endpoint`'s `answer` as a JSON object, at most [`MAX_ANSWER`] bytes.
async fn json_object(
    endpoint: Endpoint,
    answer: reqwest::Response,
) -> Result<Map<String, Value>, ProviderError> {
    let body = answer
        .bytes()
        .await
        .map_err(|e| ProviderError::failed(endpoint, e))?;
    if body.len() > MAX_ANSWER {
        return Err(ProviderError::TooLarge { endpoint });
    }
    serde_json::from_slice(&body).map_err(|source| ProviderError::NotJson { endpoint, source })
}
