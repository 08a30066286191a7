//! The login flow's checks, free of any HTTP framework: which return
//! addresses (`rd`) may be followed, whether the provider's answer at
//! `/callback` belongs to a flow this browser started, and whether a sign-out
//! was asked for by another site. The `http` module extracts the inputs,
//! calls these, and maps the errors to pages.

use crate::config::{LoginDomain, Runtime};
use crate::session::FlowState;

/// Why a post-login or post-logout target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRedirect(pub &'static str);

/// The refusal of a target on a host no session cookie of this configuration
/// reaches (no `[[hosts]]` entry, under no cookie domain): signing in for it
/// would only start again and again.
pub const NOT_COVERED: BadRedirect =
    BadRedirect("points at a host this configuration does not cover");

/// Validate a post-login/post-logout target: an absolute http(s) URL without
/// credentials, whitespace, control characters or backslashes, on a host the
/// configuration covers, and not a downgrade to http when the public URL of
/// the target's login domain is https.
/// Returns the URL re-serialised by the URL parser (what is followed is what was checked).
pub fn validate_rd(rt: &Runtime, rd: &str) -> Result<String, BadRedirect> {
    if rd.len() > 4096 {
        return Err(BadRedirect("is too long"));
    }
    if rd
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(BadRedirect(
            "holds whitespace, control characters or backslashes",
        ));
    }
    let lower = rd.get(..8).unwrap_or(rd).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(BadRedirect("is not an absolute http(s) URL"));
    }
    let url = url::Url::parse(rd).map_err(|_| BadRedirect("is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadRedirect("holds credentials"));
    }
    let host = url.host_str().ok_or(BadRedirect("has no host"))?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !rt.is_redirect_host(host) {
        return Err(NOT_COVERED);
    }
    // The login domain the target belongs to decides: its cookie is Secure when its public_url is https.
    if rt.login_domain_for(host).public_url.https && url.scheme() != "https" {
        return Err(BadRedirect("would downgrade to http"));
    }
    Ok(url.to_string())
}

/// Whether a request to `/logout` comes from another site, so that signing
/// out needs the person's confirmation (logout CSRF): the browser says
/// `Sec-Fetch-Site: cross-site`, or the request carries an `Origin` that is
/// neither a login domain's public origin nor on a host this configuration
/// covers (`null`, a sandboxed or privacy-stripped origin, included).
/// Same-origin, same-site and direct navigations (`none`, or no
/// `Sec-Fetch-Site` at all, as older browsers and scripts send) are not: an
/// app's sign-out link under the cookie domain still works in one click.
pub fn logout_is_cross_site(
    rt: &Runtime,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
) -> bool {
    if sec_fetch_site.is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = origin.map(str::trim) else {
        return false;
    };
    let ours = rt
        .login_domains
        .iter()
        .any(|d| d.public_url.origin.eq_ignore_ascii_case(origin));
    !ours && validate_rd(rt, origin).is_err()
}

/// The login domain a checked return URL belongs to: the one whose cookie
/// domain covers its host, else the main one. A login for it has to run on
/// that domain's public host, or the session cookie would not reach it.
pub fn rd_login_domain<'r>(rt: &'r Runtime, rd: &str) -> &'r LoginDomain {
    let host = url::Url::parse(rd).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    });
    match host {
        Some(h) => rt.login_domain_for(&h),
        None => rt.login_domains.main(),
    }
}

/// Longest return URL carried through a login: the sealed flow cookie must stay
/// well under the 4 KB browsers keep.
const MAX_RD_IN_FLOW: usize = 2000;

/// A return URL short enough for the flow cookie: without its query if need be,
/// else just its origin.
pub fn fit_rd(rd: String) -> String {
    if rd.len() <= MAX_RD_IN_FLOW {
        return rd;
    }
    let Ok(mut url) = url::Url::parse(&rd) else {
        return rd;
    };
    url.set_query(None);
    url.set_fragment(None);
    if url.as_str().len() <= MAX_RD_IN_FLOW {
        return url.to_string();
    }
    url.set_path("/");
    url.to_string()
}

/// What the provider sent back to `/callback` (RFC 6749 4.1.2, RFC 9207).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackParams<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub iss: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// The OAuth 2.0 error codes a provider may send to the redirect URI or the
/// token endpoint (RFC 6749 4.1.2.1 and 5.2, OIDC Core 3.1.2.6). Anything
/// else is `Other`: a provider's free text never reaches a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    AccessDenied,
    InvalidRequest,
    InvalidGrant,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    InteractionRequired,
    ConsentRequired,
    Other,
}

impl OAuthError {
    /// Classify a provider's `error` value.
    pub fn parse(code: &str) -> OAuthError {
        match code {
            "access_denied" => OAuthError::AccessDenied,
            "invalid_request" => OAuthError::InvalidRequest,
            "invalid_grant" => OAuthError::InvalidGrant,
            "invalid_client" => OAuthError::InvalidClient,
            "unauthorized_client" => OAuthError::UnauthorizedClient,
            "unsupported_response_type" => OAuthError::UnsupportedResponseType,
            "invalid_scope" => OAuthError::InvalidScope,
            "server_error" => OAuthError::ServerError,
            "temporarily_unavailable" => OAuthError::TemporarilyUnavailable,
            "login_required" => OAuthError::LoginRequired,
            "interaction_required" => OAuthError::InteractionRequired,
            "consent_required" => OAuthError::ConsentRequired,
            _ => OAuthError::Other,
        }
    }

    /// The registered code, safe to show.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::AccessDenied => "access_denied",
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::LoginRequired => "login_required",
            OAuthError::InteractionRequired => "interaction_required",
            OAuthError::ConsentRequired => "consent_required",
            OAuthError::Other => "error",
        }
    }
}

/// Why the answer at `/callback` does not complete a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("the answer carries no usable state parameter")]
    NoState,
    #[error("no open flow for this state: not started in this browser, already completed, or older than 10 minutes")]
    UnknownFlow,
    #[error("the answer lacks the iss parameter the provider promises (RFC 9207)")]
    IssMissing,
    #[error("the answer names issuer {0:?}, not the configured one")]
    IssMismatch(String),
    #[error("the provider refused the sign-in: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        code: OAuthErrorCode,
        description: Option<String>,
    },
    #[error("the answer carries no code")]
    NoCode,
}

/// An [`OAuthError`] that displays as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthErrorCode(pub OAuthError);

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// The `state` parameter, if it is usable to look the flow up.
pub fn callback_state<'a>(params: &CallbackParams<'a>) -> Result<&'a str, FlowError> {
    params
        .state
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or(FlowError::NoState)
}

/// Check the provider's answer against the flow this browser started (found
/// by the caller from the flow cookie named after `state`): the flow exists
/// and carries this state, `iss` is the configured issuer (required when the
/// provider advertises RFC 9207), no `error`, and a code. Returns the code
/// and the flow.
pub fn check_callback<'a>(
    params: &CallbackParams<'a>,
    flow: Option<FlowState>,
    issuer: &str,
    iss_required: bool,
) -> Result<(&'a str, FlowState), FlowError> {
    let state = callback_state(params)?;
    let flow = flow
        .filter(|f| f.state == state)
        .ok_or(FlowError::UnknownFlow)?;
    match params.iss {
        None if iss_required => return Err(FlowError::IssMissing),
        Some(iss) if iss != issuer => return Err(FlowError::IssMismatch(iss.to_string())),
        _ => {}
    }
    if let Some(error) = params.error {
        return Err(FlowError::Refused {
            code: OAuthErrorCode(OAuthError::parse(error)),
            description: params.error_description.map(str::to_string),
        });
    }
    let code = params
        .code
        .filter(|c| !c.is_empty())
        .ok_or(FlowError::NoCode)?;
    Ok((code, flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(state: &str) -> FlowState {
        FlowState {
            state: state.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            rd: "https://a.example.com/".into(),
            redirect_uri: None,
            expires: u64::MAX,
            step_up: None,
        }
    }

    fn params<'a>(
        code: Option<&'a str>,
        iss: Option<&'a str>,
        error: Option<&'a str>,
    ) -> CallbackParams<'a> {
        CallbackParams {
            code,
            state: Some("s1"),
            iss,
            error,
            error_description: Some("free text from the provider"),
        }
    }

    const ISS: &str = "https://id.example.com";

    #[test]
    fn each_check_of_the_callback_in_order() {
        let f = || Some(flow("s1"));
        let ok = params(Some("c"), Some(ISS), None);
        assert_eq!(check_callback(&ok, f(), ISS, true), Ok(("c", flow("s1"))));
        assert_eq!(
            check_callback(&params(Some("c"), None, None), f(), ISS, false),
            Ok(("c", flow("s1")))
        );
        let no_state = CallbackParams { state: None, ..ok };
        assert_eq!(
            check_callback(&no_state, f(), ISS, true),
            Err(FlowError::NoState)
        );
        assert_eq!(
            check_callback(&ok, None, ISS, true),
            Err(FlowError::UnknownFlow)
        );
        assert_eq!(
            check_callback(&ok, Some(flow("other")), ISS, true),
            Err(FlowError::UnknownFlow)
        );
        assert_eq!(
            check_callback(&params(Some("c"), None, None), f(), ISS, true),
            Err(FlowError::IssMissing)
        );
        assert_eq!(
            check_callback(
                &params(Some("c"), Some("https://evil.test"), None),
                f(),
                ISS,
                true
            ),
            Err(FlowError::IssMismatch("https://evil.test".into()))
        );
        assert!(matches!(
            check_callback(
                &params(None, Some(ISS), Some("access_denied")),
                f(),
                ISS,
                true
            ),
            Err(FlowError::Refused {
                code: OAuthErrorCode(OAuthError::AccessDenied),
                ..
            })
        ));
        assert_eq!(
            check_callback(&params(Some(""), Some(ISS), None), f(), ISS, true),
            Err(FlowError::NoCode)
        );
    }

    #[test]
    fn unknown_provider_error_codes_show_as_a_plain_word() {
        assert_eq!(OAuthError::parse("<script>").as_str(), "error");
        assert_eq!(OAuthError::parse("invalid_grant").as_str(), "invalid_grant");
    }

    #[test]
    fn long_return_urls_are_shortened_to_fit_the_flow_cookie() {
        let long = format!("https://a.example.com/p?{}", "q".repeat(3000));
        assert_eq!(fit_rd(long), "https://a.example.com/p");
        let long_path = format!("https://a.example.com/{}", "p".repeat(3000));
        assert_eq!(fit_rd(long_path), "https://a.example.com/");
    }
}
