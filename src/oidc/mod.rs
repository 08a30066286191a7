//! The provider client: discovery, the authorization URL, the code exchange,
//! ID-token verification, userinfo and RP-initiated logout.
//!
//! Layout: [`Provider`] and its state here; `discovery` (metadata, keys,
//! their refresh), `client` (sign-in, refresh, logout URL through
//! `openidconnect`), [`jws`] (strict JWS checks, pure), `verify` (the JWS
//! checks with the provider's keys, for every kind of token), `lookup`
//! (userinfo, introspection), [`logout`] and [`bearer`] (their tokens' own
//! claims), `claims` (claims to an [`Identity`]), [`flow`] (the login flow's
//! pure checks).
//!
//! Protocol work is done by the `openidconnect` crate; this module adds what a
//! forward-auth sidecar needs around it: background discovery with backoff (so
//! bypasses and existing sessions keep working while the provider is down),
//! signature algorithms pinned to what the provider advertises (never `none`,
//! never HMAC), strict JWS checks shared by ID, logout and bearer tokens
//! ([`jws`]), a JWKS refetch on an unknown `kid` (rate-limited), and the
//! mapping of claims to an [`Identity`]. It knows nothing of HTTP requests.

pub mod bearer;
mod claims;
mod client;
mod discovery;
mod error;
pub mod flow;
pub mod jws;
pub mod logout;
mod lookup;
mod reach;
pub mod step_up;
#[cfg(test)]
mod test_keys;
mod verify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::CoreJwsSigningAlgorithm;

use crate::config::OidcSettings;
use crate::policy::Identity;
pub use claims::{identity_from_claim_names, identity_from_claims};
pub use client::{Refreshed, SignIn};
use discovery::Discovered;
pub use discovery::ExtraMetadata;
pub use error::{Endpoint, IdTokenError, InvalidGrant, OidcError, ProviderError, RefreshError};
pub(crate) use verify::Unverified;

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY: Duration = Duration::from_secs(60);
/// At most one JWKS refetch per this interval, however many unknown `kid`s arrive.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How often loaded metadata and keys are refreshed.
const METADATA_REFRESH: Duration = Duration::from_secs(3600);
/// Longest ID token accepted from the token endpoint (groups make it grow).
const MAX_ID_TOKEN_LEN: usize = 64 * 1024;

/// The provider client. One per process; shared by `Arc`.
pub struct Provider {
    settings: OidcSettings,
    role_claims: Vec<String>,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    ready: AtomicBool,
    last_error: RwLock<Option<Arc<ProviderError>>>,
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
            .map_err(ProviderError::HttpClient)?;
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
    pub fn last_error(&self) -> Option<Arc<ProviderError>> {
        self.last_error.read().ok().and_then(|e| e.clone())
    }

    fn current(&self) -> Result<Arc<Discovered>, OidcError> {
        self.discovered
            .read()
            .ok()
            .and_then(|d| d.clone())
            .ok_or_else(|| OidcError::NotReady(self.last_error()))
    }

    /// Make `d` the current metadata and keys.
    fn store(&self, d: Discovered) -> Arc<Discovered> {
        let d = Arc::new(d);
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(Arc::clone(&d));
        }
        d
    }

    fn set_error(&self, e: Option<Arc<ProviderError>>) {
        if let Ok(mut slot) = self.last_error.write() {
            *slot = e;
        }
    }

    /// Whether the provider lists `offline_access` in `scopes_supported`.
    pub fn offers_offline_access(&self) -> bool {
        self.current().is_ok_and(|d| {
            d.metadata
                .scopes_supported()
                .is_some_and(|s| s.iter().any(|s| s.as_str() == "offline_access"))
        })
    }

    /// The discovery document's `amr_values_supported`, when it lists them.
    pub fn amr_values_supported(&self) -> Option<Vec<String>> {
        self.current().ok().and_then(|d| {
            d.metadata
                .additional_metadata()
                .amr_values_supported
                .clone()
        })
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
            .map_err(|e| OidcError::NotReady(Some(e)))
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
