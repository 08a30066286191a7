//! What went wrong with the provider, as values: which step failed, the HTTP
//! status when there was one, and the source error. Callers decide by
//! variant, never by message; the messages are for log lines (with the
//! source chain on the same line), and `http::respond` alone turns these
//! into answers.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use openidconnect::ClaimsVerificationError;
use reqwest::StatusCode;

use super::flow::OAuthErrorCode;
use super::jws::JwsError;

/// Why the provider could not be used for a sign-in, a refresh or a lookup,
/// by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Metadata not loaded yet (provider down at start): the last discovery
    /// failure, if one was seen.
    #[error("the identity provider is not reachable yet: {}", match .0 { Some(e) => e.to_string(), None => "discovery has not completed".to_string() })]
    NotReady(Option<Arc<ProviderError>>),
    /// The provider could not be reached or answered garbage.
    #[error("the identity provider failed: {0}")]
    Provider(#[from] ProviderError),
    /// The provider refused the code (expired, reused, wrong verifier...).
    #[error("the identity provider refused the sign-in: {code}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        code: OAuthErrorCode,
        detail: Option<String>,
    },
    /// The ID token failed verification.
    #[error("the ID token was rejected: {0}")]
    IdToken(#[from] IdTokenError),
    /// The claims cannot make an identity.
    #[error("the identity is unusable: {0}")]
    Claims(String),
}

/// A provider endpoint pocketgate asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `{issuer}/.well-known/openid-configuration`.
    Discovery,
    /// `jwks_uri`.
    Jwks,
    /// `token_endpoint`: the code exchange and refresh.
    Token,
    /// `userinfo_endpoint`.
    Userinfo,
    /// `introspection_endpoint` (RFC 7662).
    Introspection,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "JWKS",
            Endpoint::Token => "token endpoint",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Introspection => "introspection",
        })
    }
}

/// What failed talking to the provider, or setting up to.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot build the HTTP client: {}", chain(.0))]
    HttpClient(#[source] reqwest::Error),
    #[error("issuer {issuer:?}: {source}")]
    Issuer {
        issuer: String,
        source: url::ParseError,
    },
    #[error("redirect URI {uri:?}: {source}")]
    RedirectUri {
        uri: String,
        source: url::ParseError,
    },
    #[error("the provider advertises no asymmetric ID-token signing algorithm (id_token_signing_alg_values_supported)")]
    NoSigningAlgorithm,
    #[error("no token endpoint: {0}")]
    NoTokenEndpoint(#[source] openidconnect::ConfigurationError),
    /// No answer, or one that could not be read.
    #[error("{endpoint}: {}", chain(.source.as_ref()))]
    Failed {
        endpoint: Endpoint,
        source: Box<dyn Error + Send + Sync>,
    },
    /// An answer with a status that says no.
    #[error("{endpoint} answered {status}")]
    Status {
        endpoint: Endpoint,
        status: StatusCode,
    },
    /// Introspection refuses pocketgate's own client credentials.
    #[error("introspection answered {status}: the provider refuses pocketgate's client credentials (oidc.client_id, oidc.client_secret_file, oidc.client_auth)")]
    CredentialsRefused { status: StatusCode },
    #[error("{endpoint} answer too large")]
    TooLarge { endpoint: Endpoint },
    #[error("{endpoint} answer is not a JSON object: {source}")]
    NotJson {
        endpoint: Endpoint,
        source: serde_json::Error,
    },
    #[error("the state of the provider's keys is poisoned")]
    Poisoned,
}

impl ProviderError {
    /// `source` as the failure of `endpoint`.
    pub(super) fn failed(endpoint: Endpoint, source: impl Error + Send + Sync + 'static) -> Self {
        ProviderError::Failed {
            endpoint,
            source: Box::new(source),
        }
    }
}

/// Why an ID token (from the code exchange or a refresh) was rejected.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response holds no id_token")]
    Missing,
    /// A JWS check shared with logout and bearer tokens.
    #[error("it {0}")]
    Jws(#[from] JwsError),
    /// `openidconnect`'s checks of the claims (issuer, audience, nonce, times).
    #[error("{}", chain(.0))]
    Claims(#[source] ClaimsVerificationError),
    #[error("userinfo is about another subject than the ID token")]
    OtherSubject,
    /// `auth_time` lies more than the clock leeway in the future.
    #[error("its auth_time ({0}) lies in the future")]
    AuthTimeInFuture(u64),
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: user disabled
    /// or deleted, token revoked or already used): the session ends.
    #[error("the provider refused the refresh token: {0}")]
    Invalid(InvalidGrant),
    /// The provider could not answer: the session stays, retried later.
    #[error("the provider could not refresh: {0}")]
    Unavailable(#[from] OidcError),
}

/// Why a refresh token no longer stands for its session.
#[derive(Debug, thiserror::Error)]
pub enum InvalidGrant {
    /// `invalid_grant`, or a refusal in the provider's own words: its
    /// description, else its error code.
    #[error("{0}")]
    Refused(String),
    /// The refreshed identity is another subject: never swap one user for another.
    #[error("the refreshed identity is another subject ({0})")]
    OtherSubject(String),
}

/// An error and its sources on one line (at most five of them).
pub(super) fn chain(e: &(dyn Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::test_keys::oidc_settings;
    use crate::oidc::Provider;

    #[tokio::test]
    async fn a_failed_discovery_says_which_step_failed_and_is_kept_for_readyz() {
        // A loopback port nobody listens on any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let provider = Provider::new(oidc_settings(&issuer), Vec::new()).unwrap();
        assert!(matches!(
            provider.authorization_url("http://x/cb", "s", "n", "v", None),
            Err(OidcError::NotReady(None))
        ));

        let e = provider.discover().await.unwrap_err();
        let OidcError::NotReady(Some(cause)) = &e else {
            panic!("{e:?}");
        };
        assert!(
            matches!(
                **cause,
                ProviderError::Failed {
                    endpoint: Endpoint::Discovery,
                    ..
                }
            ),
            "{cause:?}"
        );
        assert!(cause.source().is_some(), "the source error is kept");
        let kept = provider.last_error().unwrap();
        assert!(Arc::ptr_eq(&kept, cause));
        let message = e.to_string();
        assert!(
            message.starts_with("the identity provider is not reachable yet: discovery: "),
            "{message}"
        );

        let bad = Provider::new(oidc_settings("not a url"), Vec::new()).unwrap();
        let e = bad.discover().await.unwrap_err();
        assert!(
            matches!(&e, OidcError::NotReady(Some(c)) if matches!(**c, ProviderError::Issuer { .. })),
            "{e:?}"
        );
    }

    #[rustfmt::skip]
    #[test]
    fn messages_name_the_step_and_the_status() {
        let cases: [(OidcError, &str); 6] = [
            (OidcError::NotReady(None),                                                      "the identity provider is not reachable yet: discovery has not completed"),
            (ProviderError::Status { endpoint: Endpoint::Userinfo, status: StatusCode::BAD_GATEWAY }.into(), "the identity provider failed: userinfo answered 502 Bad Gateway"),
            (ProviderError::CredentialsRefused { status: StatusCode::UNAUTHORIZED }.into(),   "the identity provider failed: introspection answered 401 Unauthorized: the provider refuses pocketgate's client credentials (oidc.client_id, oidc.client_secret_file, oidc.client_auth)"),
            (ProviderError::TooLarge { endpoint: Endpoint::Introspection }.into(),            "the identity provider failed: introspection answer too large"),
            (IdTokenError::Missing.into(),                                                    "the ID token was rejected: the token response holds no id_token"),
            (IdTokenError::Jws(JwsError::Unsigned).into(),                                     "the ID token was rejected: it is unsigned (alg none)"),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
        let refused = RefreshError::Invalid(InvalidGrant::Refused("invalid_grant".into()));
        assert_eq!(refused.to_string(), "the provider refused the refresh token: invalid_grant");
        let other = RefreshError::Invalid(InvalidGrant::OtherSubject("u-2".into()));
        assert_eq!(other.to_string(), "the provider refused the refresh token: the refreshed identity is another subject (u-2)");
    }
}
