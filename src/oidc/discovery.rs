//! Discovery: the provider's metadata and keys, fetched in the background with
//! backoff (so bypasses and existing sessions keep working while the provider
//! is down), refreshed hourly, and the keys refetched on an unknown `kid`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, EndSessionUrl, IssuerUrl, ProviderMetadata};
use serde::{Deserialize, Serialize};

use super::{
    is_asymmetric, Endpoint, OidcError, Provider, ProviderError, JWKS_REFRESH_INTERVAL,
    METADATA_REFRESH,
};
use crate::telemetry::otel;

/// Provider metadata fields `openidconnect` does not model by default.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) end_session_endpoint: Option<EndSessionUrl>,
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: bool,
    /// RFC 8414 / RFC 7662: where opaque bearer tokens are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) introspection_endpoint: Option<url::Url>,
    /// OpenID Connect Discovery: the `amr` values the provider may send
    /// (Pocket ID 2.9.0 lists none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) amr_values_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub(super) type Metadata = ProviderMetadata<
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

/// What discovery found: the metadata, the keys, and the signing algorithms
/// accepted (the asymmetric ones the provider advertises).
pub(super) struct Discovered {
    pub(super) metadata: Metadata,
    pub(super) jwks: CoreJsonWebKeySet,
    pub(super) algs: Vec<CoreJwsSigningAlgorithm>,
}

impl Provider {
    /// Fetch `{issuer}/.well-known/openid-configuration` and the JWKS once.
    /// A failure is kept for `/readyz` and [`OidcError::NotReady`] until a
    /// discovery succeeds.
    pub async fn discover(&self) -> Result<(), OidcError> {
        match self.fetch_metadata().await {
            Ok(discovered) => {
                self.store(discovered);
                self.set_error(None);
                self.reach.answered();
                self.ready.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                let e = Arc::new(e);
                self.set_error(Some(Arc::clone(&e)));
                Err(OidcError::NotReady(Some(e)))
            }
        }
    }

    async fn fetch_metadata(&self) -> Result<Discovered, ProviderError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|source| {
            ProviderError::Issuer {
                issuer: self.settings.issuer.clone(),
                source,
            }
        })?;
        let metadata =
            Metadata::discover_async(issuer, &otel::Traced::new(&self.http, "discovery"))
                .await
                .map_err(|e| ProviderError::failed(Endpoint::Discovery, e))?;
        let algs: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| is_asymmetric(a))
            .cloned()
            .collect();
        if algs.is_empty() {
            return Err(ProviderError::NoSigningAlgorithm);
        }
        let jwks = metadata.jwks().clone();
        Ok(Discovered {
            metadata,
            jwks,
            algs,
        })
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

    /// Refetch the keys of `d` and store them; `None` when they were
    /// refetched moments ago ([`JWKS_REFRESH_INTERVAL`]).
    pub(super) async fn refresh_jwks(
        &self,
        d: &Discovered,
    ) -> Result<Option<Arc<Discovered>>, ProviderError> {
        {
            let mut last = self
                .last_jwks_fetch
                .lock()
                .map_err(|_| ProviderError::Poisoned)?;
            if last.is_some_and(|t| t.elapsed() < JWKS_REFRESH_INTERVAL) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        let jwks = CoreJsonWebKeySet::fetch_async(
            d.metadata.jwks_uri(),
            &otel::Traced::new(&self.http, "jwks"),
        )
        .await
        .map_err(|e| ProviderError::failed(Endpoint::Jwks, e))?;
        tracing::info!("provider keys refetched after an unknown kid");
        Ok(Some(self.store(Discovered {
            metadata: d.metadata.clone(),
            jwks,
            algs: d.algs.clone(),
        })))
    }
}
