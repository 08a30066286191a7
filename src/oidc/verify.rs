//! Tokens verified with the provider's keys: [`Provider::verify_signed`] is
//! the one place that runs the JWS checks of [`super::jws`] with the current
//! keys and refetches them (rate-limited) on an unknown `kid`, for ID, logout
//! and bearer tokens alike.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::discovery::Discovered;
use super::jws::{self, Jws, JwsError};
use super::logout::{self, LogoutClaims, LogoutTokenError};
use super::{IdTokenError, OidcError, Provider, MAX_ID_TOKEN_LEN};

impl Provider {
    /// Verify `jws` ([`jws::verify`]) with the provider's current keys and
    /// algorithms; on an unknown `kid`, refetch the keys once (rate-limited:
    /// another request may have refetched them already) and retry. Shared by
    /// ID, logout and bearer tokens.
    pub(crate) async fn verify_signed(&self, jws: &Jws<'_>) -> Result<Signed, Unverified> {
        let d = self.current().map_err(Unverified::Unavailable)?;
        match jws::verify(jws, &d.jwks, &d.algs) {
            Err(JwsError::UnknownKey) => {}
            verified => return Ok(Signed::new(verified?, d)),
        }
        let latest = self.current().map_err(Unverified::Unavailable)?;
        let keys = if Arc::ptr_eq(&latest, &d) {
            match self.refresh_jwks(&d).await {
                Ok(Some(refreshed)) => refreshed,
                // Refetched moments ago: the key is still unknown.
                Ok(None) => return Err(JwsError::UnknownKey.into()),
                Err(e) => return Err(Unverified::Unavailable(e.into())),
            }
        } else {
            latest
        };
        Ok(Signed::new(jws::verify(jws, &keys.jwks, &keys.algs)?, keys))
    }

    /// An ID token's JWS checks ([`Provider::verify_signed`]); its claims
    /// are `openidconnect`'s to check.
    pub(super) async fn verify_id_token_jws(&self, raw: &str) -> Result<Signed, OidcError> {
        let jws = Jws::parse(raw, MAX_ID_TOKEN_LEN).map_err(IdTokenError::Jws)?;
        self.verify_signed(&jws).await.map_err(|e| match e {
            Unverified::Refused(e) => IdTokenError::Jws(e).into(),
            Unverified::Unavailable(e) => e,
        })
    }

    /// Verify a back-channel logout token with the provider's current keys and
    /// algorithms (see [`logout::verify`] and [`Provider::verify_signed`]).
    /// The caller still refuses a `jti` it has seen before.
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<LogoutClaims, LogoutTokenError> {
        use LogoutTokenError as E;
        let jws = logout::parse(token)?;
        let signed = match self.verify_signed(&jws).await {
            Ok(signed) => signed,
            Err(Unverified::Refused(e)) => return Err(e.into()),
            Err(Unverified::Unavailable(OidcError::NotReady(_))) => return Err(E::NotReady),
            Err(Unverified::Unavailable(e)) => {
                tracing::warn!(error = %e, "logout token with an unknown kid; the keys could not be refetched");
                return Err(E::KeysUnavailable);
            }
        };
        logout::check_claims(
            &signed.claims,
            signed.issuer(),
            &self.settings.client_id,
            now,
        )
    }
}

/// A JWS the provider's keys verified.
pub(crate) struct Signed {
    /// Its payload.
    pub(crate) claims: Map<String, Value>,
    /// The discovered metadata and keys that verified it.
    pub(super) keys: Arc<Discovered>,
}

impl Signed {
    fn new(claims: Map<String, Value>, keys: Arc<Discovered>) -> Signed {
        Signed { claims, keys }
    }

    /// The issuer whose keys verified it.
    pub(crate) fn issuer(&self) -> &str {
        self.keys.metadata.issuer().as_str()
    }
}

/// Why [`Provider::verify_signed`] verified nothing.
#[derive(Debug)]
pub(crate) enum Unverified {
    /// The token fails a JWS check: the token's fault.
    Refused(jws::JwsError),
    /// The keys are not loaded, or could not be refetched for an unknown `kid`.
    Unavailable(OidcError),
}

impl From<JwsError> for Unverified {
    fn from(e: JwsError) -> Unverified {
        Unverified::Refused(e)
    }
}
