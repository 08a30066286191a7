//! The provider client: discovery, the authorization URL, the code exchange,
//! ID-token verification, userinfo and RP-initiated logout.
//!
//! Protocol work is done by the `openidconnect` crate; this module adds what a
//! forward-auth sidecar needs around it: background discovery with backoff (so
//! bypasses and existing sessions keep working while the provider is down),
//! signature algorithms pinned to what the provider advertises (never `none`,
//! never HMAC), a JWKS refetch on an unknown `kid` (rate-limited), and the
//! mapping of claims to an [`Identity`]. It knows nothing of HTTP requests.

pub mod bearer;
mod claims;
pub mod flow;
pub mod logout;
mod reach;
#[cfg(test)]
mod test_keys;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::{ClientAuth, OidcSettings};
use crate::policy::Identity;
pub use claims::{identity_from_claim_names, identity_from_claims};

/// Provider metadata fields `openidconnect` does not model by default.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_session_endpoint: Option<EndSessionUrl>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    /// RFC 8414 / RFC 7662: where opaque bearer tokens are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<url::Url>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as built from discovery: authorization endpoint set, token and userinfo endpoints maybe.
type ConfiguredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY: Duration = Duration::from_secs(60);
/// At most one JWKS refetch per this interval, however many unknown `kid`s arrive.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How often loaded metadata and keys are refreshed.
const METADATA_REFRESH: Duration = Duration::from_secs(3600);

/// What went wrong talking to the provider, by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Metadata not loaded yet (provider down at start).
    #[error("the identity provider is not reachable yet: {0}")]
    NotReady(String),
    /// The provider could not be reached or answered garbage.
    #[error("the identity provider failed: {0}")]
    Provider(String),
    /// The provider refused the code (expired, reused, wrong verifier...).
    #[error("the identity provider refused the sign-in: {code}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        code: flow::OAuthErrorCode,
        detail: Option<String>,
    },
    /// The ID token failed verification.
    #[error("the ID token was rejected: {0}")]
    IdToken(String),
    /// The claims cannot make an identity.
    #[error("the identity is unusable: {0}")]
    Claims(String),
}

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

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: user disabled
    /// or deleted, token revoked or already used): the session ends.
    #[error("the provider refused the refresh token: {0}")]
    Invalid(String),
    /// The provider could not answer: the session stays, retried later.
    #[error("the provider could not refresh: {0}")]
    Unavailable(String),
}

struct Discovered {
    metadata: Metadata,
    jwks: CoreJsonWebKeySet,
    algs: Vec<CoreJwsSigningAlgorithm>,
}

/// The provider client. One per process; shared by `Arc`.
pub struct Provider {
    settings: OidcSettings,
    role_claims: Vec<String>,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    ready: AtomicBool,
    last_error: RwLock<Option<String>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
    reach: reach::Reachability,
}

impl Provider {
    /// A client for `settings`; nothing is fetched until [`Provider::discover`].
    pub fn new(
        settings: OidcSettings,
        role_claims: Vec<String>,
    ) -> Result<Arc<Provider>, OidcError> {
        let http = reqwest::Client::builder()
            // The provider's answers are never followed elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("pocketgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::Provider(format!("cannot build the HTTP client: {e}")))?;
        Ok(Arc::new(Provider {
            settings,
            role_claims,
            http,
            discovered: RwLock::new(None),
            ready: AtomicBool::new(false),
            last_error: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
            reach: reach::Reachability::default(),
        }))
    }

    /// Whether the provider promises `iss` on the authorization response
    /// (RFC 9207); the callback then requires it.
    pub fn iss_required(&self) -> bool {
        self.current()
            .map(|d| {
                d.metadata
                    .additional_metadata()
                    .authorization_response_iss_parameter_supported
            })
            .unwrap_or(false)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Whether metadata and keys are loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The last discovery failure, for `/readyz` and logs.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().ok().and_then(|e| e.clone())
    }

    /// Fetch `{issuer}/.well-known/openid-configuration` and the JWKS once.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Provider(format!("issuer {:?}: {e}", self.settings.issuer)))?;
        let result = Metadata::discover_async(issuer, &self.http).await;
        let metadata = match result {
            Ok(m) => m,
            Err(e) => {
                let msg = describe_chain(&e);
                self.set_error(Some(msg.clone()));
                return Err(OidcError::Provider(msg));
            }
        };
        let algs: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| is_asymmetric(a))
            .cloned()
            .collect();
        if algs.is_empty() {
            let msg = "the provider advertises no asymmetric ID-token signing algorithm (id_token_signing_alg_values_supported)".to_string();
            self.set_error(Some(msg.clone()));
            return Err(OidcError::Provider(msg));
        }
        let jwks = metadata.jwks().clone();
        self.store(Discovered {
            metadata,
            jwks,
            algs,
        });
        self.set_error(None);
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Discover in the background: retry with backoff until it succeeds, then
    /// refresh hourly. Never gives up; the server runs meanwhile.
    pub fn spawn_discovery(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                match me.discover().await {
                    Ok(()) => {
                        tracing::info!(issuer = %me.settings.issuer, "provider metadata loaded");
                        if me.settings.offline_access && !me.offers_offline_access() {
                            tracing::info!(issuer = %me.settings.issuer, "the provider does not list offline_access, so pocketgate does not ask for it: sessions are refreshed only if the provider issues refresh tokens anyway (Pocket ID before 2.10 does); a sign-in without one says so");
                        }
                        backoff = Duration::from_millis(250);
                        tokio::time::sleep(METADATA_REFRESH).await;
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %me.settings.issuer, error = %e, retry_in = ?backoff, "provider discovery failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
    }

    fn current(&self) -> Result<Arc<Discovered>, OidcError> {
        self.discovered
            .read()
            .ok()
            .and_then(|d| d.clone())
            .ok_or_else(|| {
                OidcError::NotReady(
                    self.last_error()
                        .unwrap_or_else(|| "discovery has not completed".into()),
                )
            })
    }

    fn store(&self, d: Discovered) {
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(Arc::new(d));
        }
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut slot) = self.last_error.write() {
            *slot = e;
        }
    }

    fn client(&self, d: &Discovered, redirect_uri: &str) -> Result<ConfiguredClient, OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OidcError::Provider(format!("redirect URI {redirect_uri:?}: {e}")))?;
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

    /// The authorization URL for one login flow (code flow, PKCE S256, configured scopes).
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
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
        let (url, _, _) = request.url();
        Ok(url.to_string())
    }

    /// Whether the provider lists `offline_access` in `scopes_supported`.
    pub fn offers_offline_access(&self) -> bool {
        self.current().is_ok_and(|d| {
            d.metadata
                .scopes_supported()
                .is_some_and(|s| s.iter().any(|s| s.as_str() == "offline_access"))
        })
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
        let unavailable = |e: String| RefreshError::Unavailable(e);
        let d = self.current().map_err(|e| unavailable(e.to_string()))?;
        let client = self.bare_client(&d);
        let token = openidconnect::RefreshToken::new(refresh_token.to_string());
        let request = client
            .exchange_refresh_token(&token)
            .map_err(|e| unavailable(format!("no token endpoint: {e}")))?;
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) if refresh_refused(r.error().as_ref()) => {
                    RefreshError::Invalid(
                        r.error_description()
                            .cloned()
                            .unwrap_or_else(|| r.error().as_ref().to_owned()),
                    )
                }
                other => unavailable(format!("token endpoint: {}", describe_chain(&other))),
            })?;
        let id_token = response.id_token().map(|t| t.to_string());
        let mut claims = match response.id_token() {
            Some(token) => {
                let verifier = self.verifier(&d, d.jwks.clone(), &d.algs);
                // A refreshed ID token carries no nonce (OIDC Core 12.2).
                token
                    .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                    .map_err(|e| {
                        unavailable(format!("refreshed ID token: {}", describe_chain(&e)))
                    })?;
                claims::payload(&token.to_string()).map_err(unavailable)?
            }
            None => serde_json::Map::new(),
        };
        let needs_userinfo = !claims.contains_key(&self.settings.groups_claim)
            || !claims.contains_key("email")
            || !claims.contains_key("sub");
        if needs_userinfo {
            if let Some(endpoint) = d.metadata.userinfo_endpoint() {
                let info = self
                    .userinfo(endpoint.url().as_str(), response.access_token().secret())
                    .await
                    .map_err(unavailable)?;
                if claims.is_empty() {
                    claims = info;
                } else {
                    claims::merge_userinfo(&mut claims, info).map_err(unavailable)?;
                }
            }
        }
        let identity = identity_from_claims(&self.settings, &self.role_claims, &claims)
            .map_err(|e| unavailable(format!("refreshed claims: {e}")))?;
        if identity.subject != subject {
            // Never swap one user for another on refresh.
            return Err(RefreshError::Invalid(format!(
                "the refreshed identity is another subject ({})",
                identity.subject
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
            .map_err(|e| OidcError::Provider(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => OidcError::Refused {
                    code: flow::OAuthErrorCode(flow::OAuthError::parse(r.error().as_ref())),
                    detail: r.error_description().cloned(),
                },
                other => OidcError::Provider(format!("token endpoint: {}", describe_chain(&other))),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response holds no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_string());

        let verify = |jwks: CoreJsonWebKeySet, algs: &[CoreJwsSigningAlgorithm]| {
            let verifier = self.verifier(&d, jwks, algs);
            id_token.claims(&verifier, &nonce).map(|_| ())
        };
        match verify(d.jwks.clone(), &d.algs) {
            Ok(()) => {}
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its key. Another request may have
                // refetched the keys already; else refetch (rate-limited) and retry once.
                let latest = self.current()?;
                let jwks = if Arc::ptr_eq(&latest, &d) {
                    self.refresh_jwks(&d).await?
                } else {
                    latest.jwks.clone()
                };
                verify(jwks, &d.algs).map_err(|e| OidcError::IdToken(describe_chain(&e)))?;
            }
            Err(e) => return Err(OidcError::IdToken(describe_chain(&e))),
        }
        let raw = id_token.to_string();
        let mut claims = claims::payload(&raw).map_err(OidcError::IdToken)?;

        let groups_missing = !claims.contains_key(&self.settings.groups_claim);
        let email_missing = !claims.contains_key("email");
        if groups_missing || email_missing {
            if let Some(endpoint) = d.metadata.userinfo_endpoint() {
                match self
                    .userinfo(endpoint.url().as_str(), response.access_token().secret())
                    .await
                {
                    Ok(info) => {
                        claims::merge_userinfo(&mut claims, info).map_err(OidcError::IdToken)?
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "userinfo request failed; using the ID token's claims alone")
                    }
                }
            }
        }
        let identity = identity_from_claims(&self.settings, &self.role_claims, &claims)
            .map_err(OidcError::Claims)?;
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
        jwks: CoreJsonWebKeySet,
        algs: &[CoreJwsSigningAlgorithm],
    ) -> CoreIdTokenVerifier<'a> {
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

    async fn refresh_jwks(&self, d: &Discovered) -> Result<CoreJsonWebKeySet, OidcError> {
        {
            let mut last = self
                .last_jwks_fetch
                .lock()
                .map_err(|_| OidcError::Provider("JWKS state poisoned".into()))?;
            if last.is_some_and(|t| t.elapsed() < JWKS_REFRESH_INTERVAL) {
                return Err(OidcError::IdToken(
                    "signed with an unknown key (kid), and the keys were refetched moments ago"
                        .into(),
                ));
            }
            *last = Some(Instant::now());
        }
        let jwks = CoreJsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Provider(format!("JWKS: {}", describe_chain(&e))))?;
        tracing::info!("provider keys refetched after an unknown kid");
        self.store(Discovered {
            metadata: d.metadata.clone(),
            jwks: jwks.clone(),
            algs: d.algs.clone(),
        });
        Ok(jwks)
    }

    async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        self.userinfo_answer(endpoint, access_token, None)
            .await
            .map_err(|e| match e {
                bearer::UserinfoError::Refused(status) => format!("userinfo answered {status}"),
                bearer::UserinfoError::Failed(why) => why,
            })
    }

    /// The userinfo endpoint's claims for `access_token`; a refusal (400,
    /// 401, 403, and 404: Pocket ID's answer when the token names no user, as
    /// a `client_credentials` token or a deleted user's does) told apart from
    /// a failure (anything else).
    async fn userinfo_answer(
        &self,
        endpoint: &str,
        access_token: &str,
        timeout: Option<Duration>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, bearer::UserinfoError> {
        use bearer::UserinfoError as E;
        let mut request = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header("accept", "application/json");
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| E::Failed(describe_chain(&e)))?;
        let status = resp.status();
        if matches!(status.as_u16(), 400 | 401 | 403 | 404) {
            return Err(E::Refused(status.as_u16()));
        }
        if !status.is_success() {
            return Err(E::Failed(format!("userinfo answered {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| E::Failed(describe_chain(&e)))?;
        if body.len() > 64 * 1024 {
            return Err(E::Failed("userinfo answer too large".into()));
        }
        serde_json::from_slice(&body)
            .map_err(|e| E::Failed(format!("userinfo is not a JSON object: {e}")))
    }

    /// The provider's introspection endpoint, when discovery lists one.
    fn bearer_introspection_endpoint(&self) -> Result<Option<url::Url>, bearer::BearerError> {
        let d = self
            .current()
            .map_err(|e| bearer::BearerError::Unavailable(e.to_string()))?;
        Ok(d.metadata
            .additional_metadata()
            .introspection_endpoint
            .clone())
    }

    /// RFC 7662: what the introspection `endpoint` says of `token`, asked
    /// with the client's credentials (`oidc.client_auth`). Any answer but a
    /// JSON object with status 200 is a failure: an invalid token is
    /// `{"active": false}`, never an error status.
    async fn bearer_introspect(
        &self,
        endpoint: &url::Url,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, bearer::BearerError> {
        use bearer::BearerError as E;
        let form_encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let id = self.settings.client_id.as_str();
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let secret = self.settings.client_secret.as_ref().map(|s| s.expose());
        let mut request = self
            .http
            .post(endpoint.as_str())
            .header("accept", "application/json")
            .timeout(bearer::lookup_timeout());
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
        let resp = request
            .form(&form)
            .send()
            .await
            .map_err(|e| E::Unavailable(format!("introspection: {}", describe_chain(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(E::Unavailable(match status.as_u16() {
                401 | 403 => format!("introspection answered {status}: the provider refuses pocketgate's client credentials (oidc.client_id, oidc.client_secret_file, oidc.client_auth)"),
                _ => format!("introspection answered {status}"),
            }));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| E::Unavailable(format!("introspection: {}", describe_chain(&e))))?;
        if body.len() > 64 * 1024 {
            return Err(E::Unavailable("introspection answer too large".into()));
        }
        serde_json::from_slice(&body)
            .map_err(|e| E::Unavailable(format!("introspection answer is not a JSON object: {e}")))
    }

    /// The userinfo claims for a bearer token (see [`bearer`]).
    async fn bearer_userinfo(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, bearer::BearerError> {
        let d = self
            .current()
            .map_err(|e| bearer::BearerError::Unavailable(e.to_string()))?;
        let endpoint = d
            .metadata
            .userinfo_endpoint()
            .ok_or(bearer::TokenError::NoUserinfo)?;
        Ok(self
            .userinfo_answer(
                endpoint.url().as_str(),
                token,
                Some(bearer::lookup_timeout()),
            )
            .await?)
    }

    /// Verify a bearer JWT with the provider's current keys and algorithms
    /// (see [`bearer`]); on an unknown `kid`, refetch the keys once
    /// (rate-limited) and retry, as for ID tokens.
    async fn verify_bearer_jwt(
        &self,
        jws: &logout::Jws<'_>,
        audiences: &[String],
        now: u64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, bearer::BearerError> {
        use bearer::{BearerError, TokenError};
        let d = self
            .current()
            .map_err(|e| BearerError::Unavailable(e.to_string()))?;
        let issuer = d.metadata.issuer().as_str();
        match bearer::verify_jwt(jws, &d.jwks, &d.algs, issuer, audiences, now) {
            Err(TokenError::UnknownKey) => {}
            verified => return Ok(verified?),
        }
        let latest = self
            .current()
            .map_err(|e| BearerError::Unavailable(e.to_string()))?;
        let refetched;
        let jwks = if Arc::ptr_eq(&latest, &d) {
            refetched = match self.refresh_jwks(&d).await {
                Ok(jwks) => jwks,
                // Refetched moments ago: the key is still unknown.
                Err(OidcError::IdToken(_)) => return Err(TokenError::UnknownKey.into()),
                Err(e) => return Err(BearerError::Unavailable(e.to_string())),
            };
            &refetched
        } else {
            &latest.jwks
        };
        Ok(bearer::verify_jwt(
            jws, jwks, &d.algs, issuer, audiences, now,
        )?)
    }

    /// Whether the provider answers now (its discovery document, asked at
    /// most every few seconds): checked before a browser is sent there to
    /// sign in, so a provider that is down gets pocketgate's 503 page, not the
    /// browser's connection error.
    pub async fn reachable(&self) -> Result<(), OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        self.reach
            .check(&self.http, &url)
            .await
            .map_err(OidcError::Provider)
    }

    /// Whether the login asks for `scope` (configured in `oidc.scopes`).
    pub(crate) fn asks_for_scope(&self, scope: &str) -> bool {
        self.settings.scopes.iter().any(|s| s == scope)
    }

    /// The configured groups claim.
    pub(crate) fn groups_claim(&self) -> &str {
        &self.settings.groups_claim
    }

    /// Claims (verified, or the provider's userinfo answer) → an identity.
    pub(crate) fn identity_of(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Identity, String> {
        identity_from_claims(&self.settings, &self.role_claims, claims)
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

    /// Verify a back-channel logout token with the provider's current keys and
    /// algorithms (see [`logout::verify`]); on an unknown `kid`, refetch the
    /// keys once (rate-limited) and retry, as for ID tokens. The caller still
    /// refuses a `jti` it has seen before.
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<logout::LogoutClaims, logout::LogoutTokenError> {
        use logout::LogoutTokenError as E;
        let d = self.current().map_err(|_| E::NotReady)?;
        let (issuer, client_id) = (d.metadata.issuer().as_str(), &self.settings.client_id);
        match logout::verify(token, &d.jwks, &d.algs, issuer, client_id, now) {
            Err(E::UnknownKey) => {}
            verified => return verified,
        }
        // As in `complete`: another request may have refetched the keys already.
        let latest = self.current().map_err(|_| E::NotReady)?;
        let refetched;
        let jwks = if Arc::ptr_eq(&latest, &d) {
            refetched = match self.refresh_jwks(&d).await {
                Ok(jwks) => jwks,
                // Refetched moments ago: the key is still unknown.
                Err(OidcError::IdToken(_)) => return Err(E::UnknownKey),
                Err(e) => {
                    tracing::warn!(error = %e, "logout token with an unknown kid; the keys could not be refetched");
                    return Err(E::KeysUnavailable);
                }
            };
            &refetched
        } else {
            &latest.jwks
        };
        logout::verify(token, jwks, &d.algs, issuer, client_id, now)
    }
}

fn is_asymmetric(a: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm as A;
    matches!(
        a,
        A::RsaSsaPkcs1V15Sha256
            | A::RsaSsaPkcs1V15Sha384
            | A::RsaSsaPkcs1V15Sha512
            | A::RsaSsaPssSha256
            | A::RsaSsaPssSha384
            | A::RsaSsaPssSha512
            | A::EcdsaP256Sha256
            | A::EcdsaP384Sha384
            | A::EdDsa
    )
}

/// An error and its sources on one line.
fn describe_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    let mut n = 0;
    while let Some(inner) = src {
        if n >= 5 {
            break;
        }
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
        n += 1;
    }
    s
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
