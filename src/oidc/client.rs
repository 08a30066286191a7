//! The sign-in protocol through `openidconnect`: the authorization URL, the
//! code exchange, ID-token verification (after the shared JWS checks of
//! [`super::jws`]), refresh, and RP-initiated logout.

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};

use super::claims::{self, identity_from_claims};
use super::discovery::Discovered;
use super::error::InvalidGrant;
use super::flow::{OAuthError, OAuthErrorCode};
use super::{Endpoint, IdTokenError, OidcError, Provider, ProviderError, RefreshError, LEEWAY};
use crate::config::ClientAuth;
use crate::policy::Identity;
use crate::session::FlowStepUp;
use crate::telemetry::otel;

/// The client as built from discovery: authorization endpoint set, token and userinfo endpoints maybe.
type ConfiguredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A completed sign-in.
#[derive(Debug)]
pub struct SignIn {
    pub identity: Identity,
    /// The raw ID token, kept for `id_token_hint` at logout.
    pub id_token: String,
    /// The refresh token, when the provider issued one (`offline_access`).
    pub refresh_token: Option<String>,
    /// The provider's session id (`sid` claim), for back-channel logout.
    pub sid: Option<String>,
}

/// The outcome of a successful refresh.
#[derive(Debug)]
pub struct Refreshed {
    /// The identity as the provider sees it now.
    pub identity: Identity,
    /// The rotated refresh token, when the provider rotates.
    pub refresh_token: Option<String>,
    /// The new ID token, when the provider sent one.
    pub id_token: Option<String>,
}

impl Provider {
    fn client(&self, d: &Discovered, redirect_uri: &str) -> Result<ConfiguredClient, OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|source| {
            ProviderError::RedirectUri {
                uri: redirect_uri.to_string(),
                source,
            }
        })?;
        Ok(self.bare_client(d).set_redirect_uri(redirect))
    }

    /// The client without a redirect URI (refresh needs none).
    fn bare_client(&self, d: &Discovered) -> ConfiguredClient {
        // Re-type the metadata as Core metadata for the client (the extra fields are not needed there).
        let core = openidconnect::core::CoreProviderMetadata::new(
            d.metadata.issuer().clone(),
            d.metadata.authorization_endpoint().clone(),
            d.metadata.jwks_uri().clone(),
            d.metadata.response_types_supported().clone(),
            d.metadata.subject_types_supported().clone(),
            d.metadata.id_token_signing_alg_values_supported().clone(),
            openidconnect::EmptyAdditionalProviderMetadata {},
        )
        .set_token_endpoint(d.metadata.token_endpoint().cloned())
        .set_userinfo_endpoint(d.metadata.userinfo_endpoint().cloned())
        .set_jwks(d.jwks.clone());
        let client = CoreClient::from_provider_metadata(
            core,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_auth_type(match self.settings.client_auth {
            ClientAuth::Post => AuthType::RequestBody,
            _ => AuthType::BasicAuth,
        });
        client
    }

    /// The authorization URL for one login flow (code flow, PKCE S256,
    /// configured scopes). A step-up flow (`step_up`) adds `prompt=login`,
    /// so the provider authenticates the user again, and the rule's
    /// `max_age`.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
        step_up: Option<&FlowStepUp>,
    ) -> Result<String, OidcError> {
        let d = self.current()?;
        let client = self.client(&d, redirect_uri)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_string(),
        ));
        let state = state.to_string();
        let nonce = nonce.to_string();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        // A refresh token for re-checking the identity: Pocket ID issues one
        // only for offline_access, so ask when the provider lists it.
        if self.settings.offline_access
            && !self.settings.scopes.iter().any(|s| s == "offline_access")
            && self.offers_offline_access()
        {
            request = request.add_scope(Scope::new("offline_access".into()));
        }
        if let Some(step_up) = step_up {
            request = request.add_prompt(CoreAuthPrompt::Login);
            if let Some(max_age) = step_up.max_age {
                request = request.set_max_age(std::time::Duration::from_secs(max_age));
            }
        }
        let (url, _, _) = request.url();
        Ok(url.to_string())
    }

    /// Re-check the identity with a refresh token: the new identity (from
    /// the new ID token, else userinfo with the new access token; its `sub`
    /// must be `subject`), the rotated refresh token and the new ID token.
    /// `invalid_grant` is [`RefreshError::Invalid`]; anything else (no
    /// answer, 5xx, a garbled answer) is [`RefreshError::Unavailable`], so an
    /// outage never ends a session.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        subject: &str,
    ) -> Result<Refreshed, RefreshError> {
        let d = self.current()?;
        let client = self.bare_client(&d);
        let token = openidconnect::RefreshToken::new(refresh_token.to_string());
        let request = client
            .exchange_refresh_token(&token)
            .map_err(ProviderError::NoTokenEndpoint)
            .map_err(OidcError::from)?;
        let response = request
            .request_async(&otel::Traced::new(&self.http, "refresh"))
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) if refresh_refused(r.error().as_ref()) => {
                    RefreshError::Invalid(InvalidGrant::Refused(
                        r.error_description()
                            .cloned()
                            .unwrap_or_else(|| r.error().as_ref().to_owned()),
                    ))
                }
                other => OidcError::from(ProviderError::failed(Endpoint::Token, other)).into(),
            })?;
        let id_token = response.id_token().map(|t| t.to_string());
        let mut claims = match response.id_token() {
            Some(token) => {
                let signed = self.verify_id_token_jws(&token.to_string()).await?;
                let verifier = self.verifier(&signed.keys, &signed.keys.algs);
                // A refreshed ID token carries no nonce (OIDC Core 12.2).
                token
                    .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                    .map_err(IdTokenError::Claims)
                    .map_err(OidcError::from)?;
                signed.claims
            }
            None => serde_json::Map::new(),
        };
        let needs_userinfo = !claims.contains_key(&self.settings.groups_claim)
            || !claims.contains_key("email")
            || !claims.contains_key("sub");
        if needs_userinfo {
            if let Some(endpoint) = d.metadata.userinfo_endpoint() {
                let info = self
                    .userinfo(endpoint.url(), response.access_token().secret(), None)
                    .await
                    .map_err(OidcError::from)?;
                if claims.is_empty() {
                    claims = info;
                } else {
                    claims::merge_userinfo(&mut claims, info).map_err(OidcError::from)?;
                }
            }
        }
        let identity = identity_from_claims(&self.settings, &self.role_claims, &claims)
            .map_err(OidcError::Claims)?;
        if identity.subject != subject {
            // Never swap one user for another on refresh.
            return Err(RefreshError::Invalid(InvalidGrant::OtherSubject(
                identity.subject,
            )));
        }
        Ok(Refreshed {
            identity,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token,
        })
    }

    /// Exchange the code, verify the ID token, read the claims (and userinfo
    /// when groups or e-mail are missing from the ID token).
    pub async fn complete(
        &self,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<SignIn, OidcError> {
        let d = self.current()?;
        let client = self.client(&d, redirect_uri)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(ProviderError::NoTokenEndpoint)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
        let response = request
            .request_async(&otel::Traced::new(&self.http, "token"))
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => OidcError::Refused {
                    code: OAuthErrorCode(OAuthError::parse(r.error().as_ref())),
                    detail: r.error_description().cloned(),
                },
                other => ProviderError::failed(Endpoint::Token, other).into(),
            })?;
        let id_token = response.id_token().ok_or(IdTokenError::Missing)?;
        let nonce = Nonce::new(nonce.to_string());
        let raw = id_token.to_string();
        // The JWS checks shared with logout and bearer tokens, with the
        // provider's keys (refetched on an unknown kid); then the ID token's
        // claims by openidconnect, with the keys that verified it.
        let signed = self.verify_id_token_jws(&raw).await?;
        let verifier = self.verifier(&signed.keys, &signed.keys.algs);
        id_token
            .claims(&verifier, &nonce)
            .map_err(IdTokenError::Claims)?;
        let mut claims = signed.claims;
        // When and how the user signed in: from the ID token alone, never from userinfo.
        let sign_in = claims::sign_in_of(&claims);

        let groups_missing = !claims.contains_key(&self.settings.groups_claim);
        let email_missing = !claims.contains_key("email");
        if groups_missing || email_missing {
            if let Some(endpoint) = d.metadata.userinfo_endpoint() {
                match self
                    .userinfo(endpoint.url(), response.access_token().secret(), None)
                    .await
                {
                    Ok(info) => claims::merge_userinfo(&mut claims, info)?,
                    Err(e) => {
                        tracing::warn!(error = %e, "userinfo request failed; using the ID token's claims alone")
                    }
                }
            }
        }
        let mut identity = identity_from_claims(&self.settings, &self.role_claims, &claims)
            .map_err(OidcError::Claims)?;
        identity.sign_in = sign_in;
        if let Some(at) = identity.sign_in.auth_time {
            if at > kit::unix_now().saturating_add(LEEWAY.as_secs()) {
                return Err(IdTokenError::AuthTimeInFuture(at).into());
            }
        }
        let sid = claims
            .get("sid")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_string);
        Ok(SignIn {
            identity,
            id_token: raw,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            sid,
        })
    }

    fn verifier<'a>(
        &self,
        d: &Discovered,
        algs: &[CoreJwsSigningAlgorithm],
    ) -> CoreIdTokenVerifier<'a> {
        let jwks = d.jwks.clone();
        let client_id = ClientId::new(self.settings.client_id.clone());
        let issuer = d.metadata.issuer().clone();
        let base = match &self.settings.client_secret {
            Some(s) => CoreIdTokenVerifier::new_confidential_client(
                client_id,
                ClientSecret::new(s.expose().to_string()),
                issuer,
                jwks,
            ),
            None => CoreIdTokenVerifier::new_public_client(client_id, issuer, jwks),
        };
        let leeway = chrono::Duration::from_std(LEEWAY).unwrap_or_default();
        base.set_allowed_algs(algs.to_vec())
            // `exp` is checked against a clock set back by the leeway.
            .set_time_fn(move || chrono::Utc::now() - leeway)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > chrono::Utc::now() + leeway {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            })
    }

    /// The provider's RP-initiated logout URL, if it offers one.
    pub fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect_uri: &str,
        state: Option<&str>,
    ) -> Option<String> {
        let d = self.current().ok()?;
        let endpoint = d
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.settings.client_id);
            q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        Some(url.to_string())
    }
}

/// Whether the token endpoint's `error` refuses the refresh grant itself: RFC
/// 6749's `invalid_grant`, or a code outside RFC 6749's list, which is a
/// provider's own refusal in words (Pocket ID 2.9 answers a disabled user's
/// refresh with `400 {"error":"Refresh token is invalid or expired"}`). The
/// other RFC codes say pocketgate's request or client is wrong, and
/// `server_error`/`temporarily_unavailable` that the provider is: those leave
/// the session as it is (an outage or a misconfiguration logs nobody out).
fn refresh_refused(error: &str) -> bool {
    !matches!(
        error,
        "invalid_request"
            | "invalid_client"
            | "unauthorized_client"
            | "unsupported_grant_type"
            | "invalid_scope"
            | "server_error"
            | "temporarily_unavailable"
    )
}
