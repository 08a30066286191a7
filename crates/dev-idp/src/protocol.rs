//! The OAuth 2.0 / OpenID Connect rules of the provider, free of HTTP plumbing: parameter
//! parsing, authorization request validation, client authentication, PKCE, claims and the
//! discovery document.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{Client, DevUser, SigningAlg};

/// Lifetime of an authorization code, in seconds.
pub(super) const CODE_LIFETIME: u64 = 60;
/// Lifetime of ID and access tokens, in seconds.
pub(super) const TOKEN_LIFETIME: u64 = 3600;
/// Lifetime of a refresh token, and of the login session it belongs to, in seconds: 30 days,
/// Pocket ID's default. Rotation does not extend it.
pub(super) const REFRESH_LIFETIME: u64 = 30 * 24 * 3600;
/// The scope that makes the code exchange return a refresh token.
pub(super) const OFFLINE_ACCESS: &str = "offline_access";
/// The `amr` of a passkey sign-in (Pocket ID: "phr", phishing-resistant).
pub(super) const AMR_PASSKEY: &str = "phr";
/// The scopes the provider knows; others are ignored, as OpenID Connect asks.
pub(super) const SUPPORTED_SCOPES: [&str; 5] =
    ["openid", "profile", "email", "groups", OFFLINE_ACCESS];
/// Pocket ID's `claims_supported`.
const SUPPORTED_CLAIMS: [&str; 12] = [
    "sub",
    "given_name",
    "family_name",
    "name",
    "display_name",
    "email",
    "email_verified",
    "preferred_username",
    "picture",
    "groups",
    "auth_time",
    "amr",
];

/// The issuer put in forged tokens ([`super::Fault::WrongIssuer`],
/// [`super::LogoutTokenFlaw::WrongIssuer`]).
pub(super) const WRONG_ISSUER: &str = "http://wrong-issuer.example.test";
/// The audience put in forged tokens ([`super::Fault::WrongAudience`],
/// [`super::LogoutTokenFlaw::WrongAudience`]).
pub(super) const WRONG_AUDIENCE: &str = "some-other-client";

pub(super) use kit::{random_token, unix_now as now};

/// The discovery document, built once at start.
pub(super) fn discovery_document(
    issuer: &str,
    backchannel: &str,
    alg: SigningAlg,
    introspection: bool,
) -> Value {
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{backchannel}/api/oidc/token"),
        "userinfo_endpoint": format!("{backchannel}/api/oidc/userinfo"),
        "jwks_uri": format!("{backchannel}/.well-known/jwks.json"),
        "end_session_endpoint": format!("{issuer}/api/oidc/end-session"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg.as_str()],
        "code_challenge_methods_supported": ["plain", "S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": SUPPORTED_CLAIMS,
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if introspection {
        document["introspection_endpoint"] = format!("{backchannel}/api/oidc/introspect").into();
    }
    document
}

/// Form- or query-encoded parameters, in order, each name at most once. Empty values count as
/// absent (RFC 6749 section 3.1).
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text; a repeated name is refused.
    pub(super) fn parse(encoded: &str) -> Result<Params, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter {name} appears more than once"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params(pairs))
    }

    /// The non-empty value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// All parameters except `name`, in order.
    pub(super) fn without<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0
            .iter()
            .filter(move |(n, _)| n != name)
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// How the code challenge was derived from the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PkceMethod {
    /// The challenge is the verifier.
    Plain,
    /// The challenge is BASE64URL(SHA-256(verifier)).
    S256,
}

/// RFC 7636 syntax for verifiers and challenges: 43 to 128 unreserved characters.
fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` answers `challenge`.
pub(super) fn pkce_matches(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    match method {
        PkceMethod::Plain => same_secret(challenge, verifier),
        PkceMethod::S256 => same_secret(
            challenge,
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        ),
    }
}

/// Compares digests rather than the strings, so timing says nothing about a secret's prefix.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AuthorizationRequest {
    pub redirect_uri: String,
    pub state: String,
    /// The requested scopes the provider knows, in request order.
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub method: PkceMethod,
}

/// A refused authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: answer with an error page, never redirect.
    Page(String),
    /// Tell the client, at its registered redirect URI.
    Redirect(ErrorRedirect),
}

/// An error to send back to the client's redirect URI (RFC 6749 section 4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

/// Validates an authorization request against the registered client. The client and redirect
/// URI are checked first, so that any later error can safely be redirected.
pub(super) fn validate_authorization(
    client: &Client,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let page = |msg: &str| Err(AuthorizeError::Page(msg.to_owned()));
    match params.get("client_id") {
        None => return page("The request has no client_id."),
        Some(id) if id != client.id => {
            return page("The client_id is not registered at this provider.")
        }
        Some(_) => {}
    }
    let redirect_uri = match params.get("redirect_uri") {
        None => return page("The request has no redirect_uri."),
        Some(uri) if !client.redirect_uris.iter().any(|r| r == uri) => {
            return page(
                "The redirect_uri is not registered for this client (exact match required).",
            )
        }
        Some(uri) => uri.to_owned(),
    };
    let state = params.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: &str| {
        Err(AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description: description.to_owned(),
        }))
    };

    if params.get("response_type") != Some("code") {
        return refuse(
            "unsupported_response_type",
            "Only response_type=code is supported",
        );
    }
    let requested: Vec<&str> = params
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if !requested.contains(&"openid") {
        return refuse("invalid_scope", "The scope must include openid");
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested {
        if SUPPORTED_SCOPES.contains(&scope) && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    let Some(state_value) = state.clone() else {
        return refuse("invalid_request", "The state parameter is required");
    };
    let Some(code_challenge) = params.get("code_challenge") else {
        return refuse(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        );
    };
    let method = match params.get("code_challenge_method") {
        None | Some("plain") => PkceMethod::Plain,
        Some("S256") => PkceMethod::S256,
        Some(_) => {
            return refuse(
                "invalid_request",
                "code_challenge_method must be S256 or plain",
            )
        }
    };
    if !is_pkce_value(code_challenge) {
        return refuse(
            "invalid_request",
            "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]",
        );
    }
    if params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|p| p == "none"))
    {
        return refuse(
            "login_required",
            "The development identity provider has no sessions; prompt=none cannot succeed",
        );
    }
    Ok(AuthorizationRequest {
        redirect_uri,
        state: state_value,
        scopes,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        method,
    })
}

/// An error answered by the token endpoint (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum TokenError {
    /// Malformed request: missing or repeated parameter, wrong content type...
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed (401).
    #[error("{0}")]
    InvalidClient(String),
    /// The code, redirect URI or code verifier is wrong, or the refresh token is not usable.
    #[error("{0}")]
    InvalidGrant(String),
    /// A refresh request asks for a scope that was not granted.
    #[error("{0}")]
    InvalidScope(String),
    /// Anything but `authorization_code` and `refresh_token`.
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// The provider itself failed.
    #[error("{0}")]
    ServerError(String),
}

impl TokenError {
    /// The OAuth `error` code.
    pub(super) fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::UnsupportedGrantType(_) => "unsupported_grant_type",
            TokenError::ServerError(_) => "server_error",
        }
    }
}

/// Decodes one half of HTTP Basic client credentials, which RFC 6749 section 2.3.1 says are
/// form-urlencoded before being joined with `:`.
fn form_decode(component: &str) -> Option<String> {
    if component.contains('&') {
        return None;
    }
    url::form_urlencoded::parse(format!("v={component}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
}

/// Authenticates the client at the token endpoint: HTTP Basic, `client_secret` in the form,
/// or (public client) `client_id` alone. Exactly one method may be used.
pub(super) fn authenticate_client(
    client: &Client,
    authorization: Option<&str>,
    form: &Params,
) -> Result<(), TokenError> {
    let invalid_client = |msg: &str| Err(TokenError::InvalidClient(msg.to_owned()));
    let (client_id, secret) = match authorization {
        Some(header) => {
            let Some((scheme, credentials)) = header.trim().split_once(' ') else {
                return invalid_client("Malformed Authorization header");
            };
            if !scheme.eq_ignore_ascii_case("basic") {
                return invalid_client("Only HTTP Basic client authentication is supported");
            }
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return invalid_client("Malformed HTTP Basic credentials");
            };
            let (Some(id), Some(secret)) = (form_decode(id), form_decode(secret)) else {
                return invalid_client("Malformed HTTP Basic credentials");
            };
            if form.get("client_secret").is_some() {
                return Err(TokenError::InvalidRequest(
                    "Use one client authentication method, not both Basic and client_secret"
                        .to_owned(),
                ));
            }
            if form.get("client_id").is_some_and(|form_id| form_id != id) {
                return invalid_client("client_id in the form differs from the Basic credentials");
            }
            (id, Some(secret).filter(|s| !s.is_empty()))
        }
        None => {
            let Some(id) = form.get("client_id") else {
                return invalid_client("No client authentication and no client_id");
            };
            (id.to_owned(), form.get("client_secret").map(str::to_owned))
        }
    };
    if client_id != client.id {
        return invalid_client("Unknown client");
    }
    match (&client.secret, secret) {
        (Some(expected), Some(given)) if same_secret(expected, &given) => Ok(()),
        (Some(_), Some(_)) => invalid_client("Wrong client secret"),
        (Some(_), None) => {
            invalid_client("This confidential client must authenticate with its secret")
        }
        (None, None) => Ok(()),
        (None, Some(_)) => invalid_client("This is a public client; it has no secret"),
    }
}

/// Checks the `code_verifier` of a token request against the code's challenge.
pub(super) fn check_code_verifier(
    method: PkceMethod,
    challenge: &str,
    verifier: Option<&str>,
) -> Result<(), TokenError> {
    let Some(verifier) = verifier else {
        return Err(TokenError::InvalidRequest(
            "code_verifier is required".to_owned(),
        ));
    };
    if !is_pkce_value(verifier) {
        return Err(TokenError::InvalidGrant(
            "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]".to_owned(),
        ));
    }
    if pkce_matches(method, challenge, verifier) {
        Ok(())
    } else {
        Err(TokenError::InvalidGrant(
            "code_verifier does not match the code_challenge".to_owned(),
        ))
    }
}

/// The scopes of a refresh request: the granted ones, or the subset named by its `scope`
/// parameter (RFC 6749 section 6). Naming a scope that was not granted is `invalid_scope`.
pub(super) fn refresh_scopes(
    granted: &[String],
    requested: Option<&str>,
) -> Result<Vec<String>, TokenError> {
    let Some(requested) = requested else {
        return Ok(granted.to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !granted.iter().any(|g| g == scope) {
            return Err(TokenError::InvalidScope(format!(
                "The scope {scope} was not granted to this refresh token"
            )));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// The user claims for the granted scopes, exactly as Pocket ID decides them: `email` and
/// `email_verified` with `email`, the profile claims with `profile`, `groups` with `groups`.
pub(super) fn user_claims(user: &DevUser, scopes: &[String]) -> Map<String, Value> {
    let has = |scope: &str| scopes.iter().any(|s| s == scope);
    let mut claims = Map::new();
    claims.insert("sub".into(), user.subject().into());
    if has("profile") {
        let (given, family) = match user.name.split_once(' ') {
            Some((given, family)) => (given, family),
            None => (user.name.as_str(), ""),
        };
        claims.insert("name".into(), user.name.clone().into());
        claims.insert("given_name".into(), given.into());
        if !family.is_empty() {
            claims.insert("family_name".into(), family.into());
        }
        claims.insert("preferred_username".into(), user.username.clone().into());
    }
    if has("email") {
        claims.insert("email".into(), user.email.clone().into());
        claims.insert("email_verified".into(), user.email_verified.into());
    }
    if has("groups") {
        claims.insert("groups".into(), user.groups.clone().into());
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<&str>) -> Client {
        Client {
            id: "pocketgate".into(),
            secret: secret.map(str::to_owned),
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
        }
    }

    fn params(s: &str) -> Params {
        Params::parse(s).unwrap_or_default()
    }

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    const SECRET: &str = "s3cr3t:with+special=chars&more/%";

    #[test]
    fn client_authentication_rules() {
        let confidential = client(Some(SECRET));
        let public = client(None);
        let none = params("");
        type Case<'a> = (
            &'a str,
            &'a Client,
            Option<String>,
            Params,
            Result<(), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "basic, form-encoded",
                &confidential,
                Some(basic("pocketgate", SECRET)),
                params(""),
                Ok(()),
            ),
            (
                "basic, wrong secret",
                &confidential,
                Some(basic("pocketgate", "nope")),
                params(""),
                Err("invalid_client"),
            ),
            (
                "basic, raw secret not form-encoded",
                &confidential,
                Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("pocketgate:{SECRET}"))
                )),
                params(""),
                Err("invalid_client"),
            ),
            (
                "basic, unknown client",
                &confidential,
                Some(basic("other", SECRET)),
                params(""),
                Err("invalid_client"),
            ),
            (
                "basic and post together",
                &confidential,
                Some(basic("pocketgate", SECRET)),
                params("client_secret=x"),
                Err("invalid_request"),
            ),
            (
                "post",
                &confidential,
                None,
                params(&format!(
                    "client_id=pocketgate&client_secret={}",
                    url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>()
                )),
                Ok(()),
            ),
            (
                "post, wrong secret",
                &confidential,
                None,
                params("client_id=pocketgate&client_secret=x"),
                Err("invalid_client"),
            ),
            (
                "confidential without secret",
                &confidential,
                None,
                params("client_id=pocketgate"),
                Err("invalid_client"),
            ),
            (
                "nothing at all",
                &confidential,
                None,
                none,
                Err("invalid_client"),
            ),
            (
                "public, client_id only",
                &public,
                None,
                params("client_id=pocketgate"),
                Ok(()),
            ),
            (
                "public, basic with empty secret",
                &public,
                Some(basic("pocketgate", "")),
                params(""),
                Ok(()),
            ),
            (
                "public, sends a secret",
                &public,
                None,
                params("client_id=pocketgate&client_secret=x"),
                Err("invalid_client"),
            ),
            (
                "bearer scheme",
                &confidential,
                Some("Bearer abc".into()),
                params(""),
                Err("invalid_client"),
            ),
            (
                "garbage basic",
                &confidential,
                Some("Basic %%%".into()),
                params(""),
                Err("invalid_client"),
            ),
        ];
        for (name, client, header, form, expected) in cases {
            let got = authenticate_client(client, header.as_deref(), &form).map_err(|e| e.code());
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn pkce_s256_and_plain() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(PkceMethod::S256, challenge, verifier));
        assert!(!pkce_matches(PkceMethod::S256, verifier, verifier));
        assert!(pkce_matches(PkceMethod::Plain, verifier, verifier));
        assert_eq!(
            check_code_verifier(PkceMethod::S256, challenge, None).map_err(|e| e.code()),
            Err("invalid_request")
        );
        assert_eq!(
            check_code_verifier(PkceMethod::S256, challenge, Some("short")).map_err(|e| e.code()),
            Err("invalid_grant")
        );
    }

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_absent() {
        assert!(Params::parse("a=1&a=2").is_err());
        let p = params("a=&b=2");
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("2"));
    }

    #[test]
    fn refresh_may_narrow_but_never_widen_the_scopes() {
        let granted: Vec<String> = ["openid", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(refresh_scopes(&granted, None), Ok(granted.clone()));
        assert_eq!(
            refresh_scopes(&granted, Some("email  openid email")),
            Ok(vec!["email".to_owned(), "openid".to_owned()])
        );
        assert_eq!(
            refresh_scopes(&granted, Some("openid groups")).map_err(|e| e.code()),
            Err("invalid_scope")
        );
    }

    #[test]
    fn subject_is_stable_and_uuid_shaped() {
        let alice = &super::super::default_users()[0];
        let sub = alice.subject();
        assert_eq!(sub, alice.subject());
        assert_eq!(sub.len(), 36);
        assert_eq!(sub.as_bytes()[14], b'8');
        assert_ne!(sub, super::super::default_users()[1].subject());
    }
}
