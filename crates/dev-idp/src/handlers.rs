//! The actix-web side of the provider: routes, the gate of the faults that take endpoints down
//! ([`Fault::Unavailable`], [`Fault::TokenUnavailable`], [`Fault::TokenHangs`]), and handlers
//! that parse a request, ask [`super::protocol`] and map the answer to a response.

use std::collections::HashSet;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::keys::{Forgery, JWT};
use super::pages;
use super::protocol::{
    self, authenticate_client, check_code_verifier, random_token, refresh_scopes, user_claims,
    validate_authorization, AuthorizationRequest, AuthorizeError, ErrorRedirect, Params,
    TokenError, CODE_LIFETIME, OFFLINE_ACCESS, REFRESH_LIFETIME, TOKEN_LIFETIME, WRONG_AUDIENCE,
    WRONG_ISSUER,
};
use super::store::{CodeGrant, RefreshGrant, Rejection, TokenGrant};
use super::{DevUser, Fault, Shared, TOKEN_HANG};

/// The token endpoint's path, the one [`Fault::TokenUnavailable`] and [`Fault::TokenHangs`]
/// take down.
const TOKEN_PATH: &str = "/api/oidc/token";
/// The `type` claim Pocket ID puts in its ID tokens.
const ID_TOKEN_TYPE: &str = "id-token";
/// The `type` claim Pocket ID puts in its OAuth access tokens.
const ACCESS_TOKEN_TYPE: &str = "oauth-access-token";
const REALM: &str = "pocketgate-dev-idp";

type Data = web::Data<Shared>;

/// Registers every endpoint, at Pocket ID's paths.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery),
    )
    .route("/.well-known/jwks.json", web::get().to(jwks))
    .route("/authorize", web::get().to(authorize))
    .route("/authorize/approve", web::get().to(approve))
    .route(TOKEN_PATH, web::post().to(token))
    .route("/api/oidc/userinfo", web::get().to(userinfo))
    .route("/api/oidc/userinfo", web::post().to(userinfo))
    .route("/api/oidc/introspect", web::post().to(introspect))
    .route("/api/oidc/end-session", web::get().to(end_session))
    .route("/healthz", web::get().to(healthz))
    .default_service(web::to(not_found));
}

/// Answers 503 to everything while [`Fault::Unavailable`] is set, and to the token endpoint
/// while [`Fault::TokenUnavailable`] is, or after holding the request for [`TOKEN_HANG`] while
/// [`Fault::TokenHangs`] is. Requests answered here never reach a handler.
pub(super) async fn unavailable_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let fault = req.app_data::<Data>().and_then(|shared| shared.fault());
    let token_endpoint = req.path() == TOKEN_PATH;
    let down = match fault {
        Some(Fault::Unavailable) => Some("Fault::Unavailable"),
        Some(Fault::TokenUnavailable) if token_endpoint => Some("Fault::TokenUnavailable"),
        Some(Fault::TokenHangs) if token_endpoint => {
            tracing::debug!("token request held (Fault::TokenHangs)");
            tokio::time::sleep(TOKEN_HANG).await;
            Some("Fault::TokenHangs")
        }
        _ => None,
    };
    if let Some(fault) = down {
        let response = HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "error": "temporarily_unavailable",
                "error_description": format!("The development identity provider is down ({fault})"),
            }));
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not_found" }))
}

async fn discovery(shared: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(shared.discovery.clone())
}

async fn jwks(shared: Data) -> HttpResponse {
    HttpResponse::Ok().json(shared.keys.jwks())
}

/// An HTML page with headers that keep it from being framed, cached or leaking its URL.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// A 302 to `base` with `pairs` added to its query.
fn redirect(base: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    let Ok(mut url) = url::Url::parse(base) else {
        // Registered URIs are checked at start; this is a bug, not a client error.
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error_page("The registered redirect URI is not a URL."),
        );
    };
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Sends an authorization error back to the client, with `state` and `iss` (RFC 9207).
fn error_redirect(shared: &Shared, e: &ErrorRedirect) -> HttpResponse {
    tracing::debug!(error = e.error, "authorization request refused");
    let mut pairs = vec![
        ("error", e.error),
        ("error_description", e.description.as_str()),
    ];
    if let Some(state) = &e.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &shared.issuer));
    redirect(&e.redirect_uri, &pairs)
}

fn authorize_error(shared: &Shared, error: AuthorizeError) -> HttpResponse {
    match error {
        AuthorizeError::Page(message) => {
            tracing::debug!(%message, "authorization request refused with an error page");
            html(StatusCode::BAD_REQUEST, pages::error_page(&message))
        }
        AuthorizeError::Redirect(e) => error_redirect(shared, &e),
    }
}

/// Parses and validates the authorization request in the query string; under
/// [`Fault::DenyAuthorize`] a valid request is refused like a group-restricted Pocket ID client
/// refuses a user outside its groups.
fn authorization_request(
    req: &HttpRequest,
    shared: &Shared,
) -> Result<(Params, AuthorizationRequest), AuthorizeError> {
    let params = Params::parse(req.query_string()).map_err(AuthorizeError::Page)?;
    let request = validate_authorization(&shared.client, &params)?;
    if shared.fault() == Some(Fault::DenyAuthorize) {
        return Err(AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: request.redirect_uri,
            state: Some(request.state),
            error: "access_denied",
            description: "User is not in an allowed group".to_owned(),
        }));
    }
    Ok((params, request))
}

/// `GET /authorize`: the user picker.
async fn authorize(req: HttpRequest, shared: Data) -> HttpResponse {
    let (params, _) = match authorization_request(&req, &shared) {
        Ok(valid) => valid,
        Err(error) => return authorize_error(&shared, error),
    };
    let page = pages::sign_in_page(&shared.client.id, &shared.users(), |user| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("user", &user.username);
        query.extend_pairs(params.without("user"));
        format!("/authorize/approve?{}", query.finish())
    });
    html(StatusCode::OK, page)
}

/// `GET /authorize/approve?user=..&<authorization request>`: issues a code for that user.
async fn approve(req: HttpRequest, shared: Data) -> HttpResponse {
    let (params, request) = match authorization_request(&req, &shared) {
        Ok(valid) => valid,
        Err(error) => return authorize_error(&shared, error),
    };
    let Some(state) = params.get("user").and_then(|name| shared.user(name)) else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error_page("No such user at the development identity provider."),
        );
    };
    if state.disabled {
        tracing::debug!(user = %state.user.username, "sign-in of a disabled user refused");
        return html(
            StatusCode::FORBIDDEN,
            pages::error_page("This user is disabled at the development identity provider."),
        );
    }
    let user = state.user;
    let (Ok(code), Ok(sid)) = (random_token(32), random_token(16)) else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error_page("The provider could not generate a random code."),
        );
    };
    let now = protocol::now();
    // How the user signs in: a passkey, unless the approval names another
    // method (`amr=otp`: a one-time code). `prompt=login` is a new sign-in,
    // unless the provider is told to ignore it: then the last one stands.
    let amr = params
        .get("amr")
        .filter(|m| !m.is_empty())
        .unwrap_or(protocol::AMR_PASSKEY)
        .to_owned();
    let prompt_login = params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|v| v == "login"));
    let last = shared.store().last_sign_in(&user.username);
    let (auth_time, amr) = match last {
        Some(last) if prompt_login && shared.fault() == Some(Fault::IgnorePromptLogin) => last,
        _ => (now, vec![amr]),
    };
    shared
        .store()
        .signed_in(&user.username, auth_time, amr.clone());
    let grant = CodeGrant {
        client_id: shared.client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        username: user.username.clone(),
        scopes: request.scopes,
        nonce: request.nonce,
        code_challenge: request.code_challenge,
        method: request.method,
        auth_time,
        amr,
        sid,
        expires_at: now + CODE_LIFETIME,
    };
    shared.store().insert_code(code.clone(), grant, now);
    tracing::debug!(user = %user.username, "authorization code issued");
    redirect(
        &request.redirect_uri,
        &[
            ("code", &code),
            ("state", &request.state),
            ("iss", &shared.issuer),
        ],
    )
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            TokenError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if matches!(self, TokenError::InvalidClient(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")));
        }
        response.json(json!({
            "error": self.code(),
            "error_description": self.to_string(),
        }))
    }
}

fn code_rejection(rejection: Rejection) -> TokenError {
    TokenError::InvalidGrant(
        match rejection {
            Rejection::Unknown => "Unknown authorization code",
            Rejection::Expired => "The authorization code has expired",
            Rejection::Reused => "The authorization code has already been used",
        }
        .to_owned(),
    )
}

fn refresh_rejection(rejection: Rejection) -> TokenError {
    TokenError::InvalidGrant(
        match rejection {
            Rejection::Unknown => "Unknown or revoked refresh token",
            Rejection::Expired => "The refresh token has expired",
            Rejection::Reused => {
                "The refresh token was already used; every token of its login is revoked"
            }
        }
        .to_owned(),
    )
}

fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, TokenError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(TokenError::InvalidRequest(
            "The body must be application/x-www-form-urlencoded".to_owned(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| TokenError::InvalidRequest("The body is not UTF-8".to_owned()))?;
    Params::parse(text).map_err(TokenError::InvalidRequest)
}

/// `POST /api/oidc/token`: the authorization code and refresh token grants.
async fn token(
    req: HttpRequest,
    body: web::Bytes,
    shared: Data,
) -> Result<HttpResponse, TokenError> {
    let result = token_grant(&req, &body, &shared).await;
    if let Err(error) = &result {
        tracing::debug!(error = error.code(), description = %error, "token request refused");
        if matches!(error, TokenError::InvalidGrant(_))
            && shared.fault() == Some(Fault::RefreshRefusedWithMessage)
            && is_refresh_grant(&body)
        {
            return Ok(HttpResponse::BadRequest()
                .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
                .json(json!({ "error": "Refresh token is invalid or expired" })));
        }
    }
    result
}

/// Whether a token request body asks for the refresh grant.
fn is_refresh_grant(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(k, v)| k == "grant_type" && v == "refresh_token")
}

/// The kinds of grant the token endpoint serves.
enum Grant {
    AuthorizationCode,
    RefreshToken,
}

async fn token_grant(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
) -> Result<HttpResponse, TokenError> {
    let form = form_params(req, body)?;
    let grant = match form.get("grant_type") {
        Some("authorization_code") => Grant::AuthorizationCode,
        Some("refresh_token") => Grant::RefreshToken,
        Some(other) => {
            return Err(TokenError::UnsupportedGrantType(format!(
                "grant_type {other} is not supported; use authorization_code or refresh_token"
            )))
        }
        None => {
            return Err(TokenError::InvalidRequest(
                "grant_type is required".to_owned(),
            ))
        }
    };
    let authorization = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            TokenError::InvalidClient("The Authorization header is not ASCII".to_owned())
        })?),
    };
    authenticate_client(&shared.client, authorization, &form)?;
    match grant {
        Grant::AuthorizationCode => exchange_code(&form, shared).await,
        Grant::RefreshToken => refresh(&form, shared).await,
    }
}

/// The user a grant was issued to, if still there and enabled.
fn grant_user(shared: &Shared, username: &str) -> Result<DevUser, TokenError> {
    match shared.user(username) {
        Some(state) if !state.disabled => Ok(state.user),
        Some(_) => Err(TokenError::InvalidGrant("The user is disabled".to_owned())),
        None => Err(TokenError::ServerError(
            "The grant's user is gone".to_owned(),
        )),
    }
}

/// A signed access token for `scopes`, and its `jti`.
fn access_token(
    shared: &Shared,
    user: &DevUser,
    scopes: &[String],
    now: u64,
) -> Result<(String, String), TokenError> {
    let jti = random_token(16)
        .map_err(|e| TokenError::ServerError(format!("No randomness for the token id: {e}")))?;
    let token = shared
        .keys
        .primary()
        .sign(&json!({
            "iss": shared.issuer,
            "sub": user.subject(),
            "aud": shared.client.id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": jti,
            "type": ACCESS_TOKEN_TYPE,
            "scope": scopes.join(" "),
        }))
        .map_err(|e| TokenError::ServerError(format!("Cannot sign the access token: {e}")))?;
    Ok((token, jti))
}

fn new_refresh_token() -> Result<String, TokenError> {
    random_token(32)
        .map_err(|e| TokenError::ServerError(format!("No randomness for the refresh token: {e}")))
}

/// The successful token response.
fn token_response(
    access_token: &str,
    id_token: Option<&str>,
    refresh_token: Option<&str>,
    scopes: &[String],
) -> HttpResponse {
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "scope": scopes.join(" "),
    });
    if let Some(id_token) = id_token {
        body["id_token"] = id_token.into();
    }
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// The authorization code grant; a refresh token too when `offline_access` was granted.
async fn exchange_code(form: &Params, shared: &Shared) -> Result<HttpResponse, TokenError> {
    let code = form
        .get("code")
        .ok_or_else(|| TokenError::InvalidRequest("code is required".to_owned()))?;
    let now = protocol::now();
    let grant = shared.store().code(code, now).map_err(code_rejection)?;
    if grant.client_id != shared.client.id {
        return Err(TokenError::InvalidGrant(
            "The code was issued to another client".to_owned(),
        ));
    }
    if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(TokenError::InvalidGrant(
            "redirect_uri must be the one of the authorization request".to_owned(),
        ));
    }
    check_code_verifier(
        grant.method,
        &grant.code_challenge,
        form.get("code_verifier"),
    )?;
    let user = grant_user(shared, &grant.username)?;

    let (access_token, jti) = access_token(shared, &user, &grant.scopes, now)?;
    let claims = IdTokenClaims {
        scopes: &grant.scopes,
        nonce: grant.nonce.as_deref(),
        auth_time: grant.auth_time,
        amr: &grant.amr,
        sid: &grant.sid,
    };
    let id_token = id_token(shared, &user, &claims, shared.fault(), now).await?;
    let refresh = if grant.scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        Some((
            new_refresh_token()?,
            RefreshGrant {
                username: user.username.clone(),
                scopes: grant.scopes.clone(),
                sid: grant.sid.clone(),
                auth_time: grant.auth_time,
                amr: grant.amr.clone(),
                expires_at: now + REFRESH_LIFETIME,
            },
        ))
    } else {
        None
    };
    let refresh_token = refresh.as_ref().map(|(token, _)| token.clone());

    shared
        .store()
        .redeem(
            code,
            jti,
            TokenGrant {
                username: user.username.clone(),
                scopes: grant.scopes.clone(),
                sid: grant.sid.clone(),
                expires_at: now + TOKEN_LIFETIME,
                audience: None,
            },
            refresh,
            now + REFRESH_LIFETIME,
            now,
        )
        .map_err(code_rejection)?;
    tracing::debug!(user = %user.username, refresh = refresh_token.is_some(), "tokens issued");
    Ok(token_response(
        &access_token,
        Some(&id_token),
        refresh_token.as_deref(),
        &grant.scopes,
    ))
}

/// The refresh token grant, with rotation.
async fn refresh(form: &Params, shared: &Shared) -> Result<HttpResponse, TokenError> {
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| TokenError::InvalidRequest("refresh_token is required".to_owned()))?;
    let now = protocol::now();
    let grant = shared
        .store()
        .refresh(presented, now)
        .map_err(refresh_rejection)?;
    let scopes = refresh_scopes(&grant.scopes, form.get("scope"))?;
    let user = grant_user(shared, &grant.username)?;

    let (access_token, jti) = access_token(shared, &user, &scopes, now)?;
    let id_token = if scopes.iter().any(|s| s == "openid") {
        let claims = IdTokenClaims {
            scopes: &scopes,
            nonce: None,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            sid: &grant.sid,
        };
        Some(id_token(shared, &user, &claims, shared.fault(), now).await?)
    } else {
        None
    };
    let successor = new_refresh_token()?;
    shared
        .store()
        .rotate(
            presented,
            jti,
            TokenGrant {
                username: user.username.clone(),
                scopes: scopes.clone(),
                sid: grant.sid.clone(),
                expires_at: now + TOKEN_LIFETIME,
                audience: None,
            },
            (
                successor.clone(),
                RefreshGrant {
                    username: grant.username.clone(),
                    scopes: grant.scopes.clone(),
                    sid: grant.sid.clone(),
                    auth_time: grant.auth_time,
                    amr: grant.amr.clone(),
                    expires_at: grant.expires_at,
                },
            ),
            now,
        )
        .map_err(refresh_rejection)?;
    tracing::debug!(user = %user.username, "tokens refreshed");
    Ok(token_response(
        &access_token,
        id_token.as_deref(),
        Some(&successor),
        &scopes,
    ))
}

/// What an ID token says beyond the user's claims.
struct IdTokenClaims<'a> {
    scopes: &'a [String],
    nonce: Option<&'a str>,
    auth_time: u64,
    amr: &'a [String],
    sid: &'a str,
}

/// Builds and signs the ID token, bent by `fault` when one is set.
async fn id_token(
    shared: &Shared,
    user: &DevUser,
    grant: &IdTokenClaims<'_>,
    fault: Option<Fault>,
    now: u64,
) -> Result<String, TokenError> {
    let mut claims = user_claims(user, grant.scopes);
    let (iat, exp, auth_time) = if fault == Some(Fault::Expired) {
        let iat = now.saturating_sub(2 * TOKEN_LIFETIME);
        (iat, now.saturating_sub(TOKEN_LIFETIME), iat)
    } else if fault == Some(Fault::FutureAuthTime) {
        (now, now + TOKEN_LIFETIME, now + 3600)
    } else {
        (now, now + TOKEN_LIFETIME, grant.auth_time)
    };
    let issuer = if fault == Some(Fault::WrongIssuer) {
        WRONG_ISSUER
    } else {
        shared.issuer.as_str()
    };
    let audience = if fault == Some(Fault::WrongAudience) {
        WRONG_AUDIENCE
    } else {
        shared.client.id.as_str()
    };
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("iat".into(), iat.into());
    claims.insert("exp".into(), exp.into());
    // Pocket ID 2.9.0 sends no auth_time; later releases (and this provider) do.
    if fault != Some(Fault::NoAuthTime) {
        claims.insert("auth_time".into(), auth_time.into());
    }
    claims.insert("amr".into(), grant.amr.into());
    claims.insert("type".into(), ID_TOKEN_TYPE.into());
    claims.insert("sid".into(), grant.sid.into());
    let nonce = if fault == Some(Fault::NonceMismatch) {
        Some(random_token(16).map_err(|e| TokenError::ServerError(e.to_string()))?)
    } else {
        grant.nonce.map(str::to_owned)
    };
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if fault == Some(Fault::GroupsOnlyInUserinfo) {
        for claim in ["groups", "email", "email_verified"] {
            claims.remove(claim);
        }
    }
    let claims = Value::Object(claims);

    let sign_error = |e: String| TokenError::ServerError(format!("Cannot sign the ID token: {e}"));
    let keys = &shared.keys;
    let forgery = match fault {
        Some(Fault::WrongSignature) => Some(Forgery::WrongSignature),
        Some(Fault::AlgNone) => Some(Forgery::AlgNone),
        Some(Fault::Hs256WithPublicKey) => Some(Forgery::Hs256WithPublicKey),
        Some(Fault::UnknownKid) => {
            let token = keys
                .rotated()
                .await
                .map_err(|e| sign_error(e.to_string()))?
                .sign(&claims)
                .map_err(|e| sign_error(e.to_string()))?;
            // Published only now: a JWKS fetched before this token cannot know the key.
            keys.publish_rotated();
            return Ok(token);
        }
        _ => None,
    };
    keys.sign(&claims, JWT, forgery).await.map_err(sign_error)
}

/// A 401 from `/userinfo`, RFC 6750 style.
fn invalid_token(description: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": "invalid_token", "error_description": description }))
}

/// The JWS `token` with each part re-encoded as unpadded base64url, as Pocket ID's JWT library
/// reads a token: `=` padding and the standard alphabet (`+`, `/`) are accepted.
fn lenient_jws(token: &str) -> String {
    token
        .split('.')
        .map(|part| {
            part.trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Holds a lookup (userinfo, introspection) for the delay set by [`super::DevIdp::set_lookup_delay`].
async fn lookup_delay(shared: &Shared) {
    let delay = *shared
        .lookup_delay
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// The live grant behind an access token (a JWT of this provider's, or an opaque token) and
/// the token's verified claims, if a JWT. `audience`: the `aud` a JWT must carry; `None`
/// checks none, as Pocket ID's userinfo does.
fn access_grant(
    shared: &Shared,
    token: &str,
    audience: Option<&str>,
) -> Option<(TokenGrant, Option<Value>)> {
    if token.contains('.') {
        let key = shared.keys.primary();
        let mut validation = key.validation();
        validation.set_issuer(&[&shared.issuer]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let claims = key.verify(&lenient_jws(token), &validation).ok()?;
        if claims.get("type").and_then(Value::as_str) != Some(ACCESS_TOKEN_TYPE) {
            return None;
        }
        let grant = claims
            .get("jti")
            .and_then(Value::as_str)
            .and_then(|jti| shared.store().token(jti, protocol::now()))?;
        Some((grant, Some(claims)))
    } else {
        // An opaque token from `DevIdp::access_token`: the token is its own key.
        let grant = shared.store().token(token, protocol::now())?;
        Some((grant, None))
    }
}

/// `GET|POST /api/oidc/userinfo` with `Authorization: Bearer <access token>`. Like Pocket ID's,
/// it checks no audience: any live access token of this provider is answered.
async fn userinfo(req: HttpRequest, shared: Data) -> HttpResponse {
    shared
        .userinfo_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    lookup_delay(&shared).await;
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return invalid_token("A bearer access token is required");
    };
    let Some((state, grant)) = access_grant(&shared, token, None)
        .and_then(|(grant, _)| shared.user(&grant.username).map(|user| (user, grant)))
    else {
        return invalid_token("The access token is invalid, expired, revoked or unknown");
    };
    if state.disabled {
        return invalid_token("The user is disabled");
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(user_claims(&state.user, &grant.scopes)))
}

/// `POST /api/oidc/introspect` (RFC 7662) with the client's credentials and `token=...`:
/// `{"active": false}` for anything not a live access or refresh token of an enabled user, else
/// what Pocket ID answers (`active`, `scope`, `exp`, `iat`, `sub`, `aud`, `iss`, plus
/// `client_id`; never `token_type`, which Pocket ID's fosite fork does not write). A refresh
/// token (fosite falls back to them) is active with the calling client's `client_id` and its
/// `exp`. No user claims: those come from userinfo.
async fn introspect(req: HttpRequest, body: web::Bytes, shared: Data) -> HttpResponse {
    shared
        .introspection_calls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    lookup_delay(&shared).await;
    let answer = (|| {
        let form = form_params(&req, &body)?;
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| {
                value.to_str().map_err(|_| {
                    TokenError::InvalidClient("The Authorization header is not ASCII".to_owned())
                })
            })
            .transpose()?;
        authenticate_client(&shared.client, authorization, &form)?;
        let token = form
            .get("token")
            .ok_or_else(|| TokenError::InvalidRequest("token is required".to_owned()))?;
        Ok::<_, TokenError>(introspection(&shared, token))
    })();
    match answer {
        Ok(value) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(value),
        Err(e) => e.error_response(),
    }
}

/// The introspection answer for `token`.
fn introspection(shared: &Shared, token: &str) -> Value {
    let Some((grant, claims)) = access_grant(shared, token, None) else {
        return refresh_introspection(shared, token);
    };
    let Some(user) = shared.user(&grant.username).filter(|u| !u.disabled) else {
        return json!({ "active": false });
    };
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).cloned();
    // The client it was issued to: ours, unless the test named another.
    let client_id = grant
        .audience
        .clone()
        .unwrap_or_else(|| shared.client.id.clone());
    let audience = claim("aud").unwrap_or_else(|| json!([client_id]));
    json!({
        "active": true,
        "scope": grant.scopes.join(" "),
        "exp": claim("exp").unwrap_or_else(|| grant.expires_at.into()),
        "iat": claim("iat").unwrap_or_else(|| (grant.expires_at.saturating_sub(TOKEN_LIFETIME)).into()),
        "sub": user.user.subject(),
        "aud": audience,
        "iss": shared.issuer,
        "client_id": client_id,
    })
}

/// The introspection answer for `token` as a refresh token: this provider has one client, so
/// every refresh token is the calling client's.
fn refresh_introspection(shared: &Shared, token: &str) -> Value {
    let Some(grant) = shared.store().live_refresh(token, protocol::now()) else {
        return json!({ "active": false });
    };
    if shared.user(&grant.username).is_none_or(|u| u.disabled) {
        return json!({ "active": false });
    }
    json!({
        "active": true,
        "client_id": shared.client.id,
        "exp": grant.expires_at,
    })
}

/// Whether `hint` is an ID token this provider issued to its client (expired ones included).
fn issued_here(shared: &Shared, hint: &str) -> bool {
    let Some(key) = jsonwebtoken::decode_header(hint)
        .ok()
        .and_then(|header| header.kid)
        .and_then(|kid| shared.keys.published_key(&kid))
    else {
        return false;
    };
    let mut validation = key.validation();
    validation.validate_exp = false;
    validation.required_spec_claims =
        HashSet::from(["iss".to_owned(), "aud".to_owned(), "sub".to_owned()]);
    validation.set_issuer(&[&shared.issuer]);
    validation.set_audience(&[&shared.client.id]);
    key.verify(hint, &validation).is_ok()
}

/// Where RP-initiated logout may send the browser back to, or why it may not.
fn logout_target<'a>(shared: &Shared, params: &'a Params) -> Result<&'a str, &'static str> {
    let uri = params
        .get("post_logout_redirect_uri")
        .ok_or("No post_logout_redirect_uri was given.")?;
    if !shared
        .client
        .post_logout_redirect_uris
        .iter()
        .any(|u| u == uri)
    {
        return Err("The post_logout_redirect_uri is not registered, so you stay here.");
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != shared.client.id)
    {
        return Err("The client_id is not registered at this provider.");
    }
    let hint = params.get("id_token_hint").ok_or(
        "No id_token_hint was given, so the application cannot be trusted to get you back.",
    )?;
    if !issued_here(shared, hint) {
        return Err("The id_token_hint was not issued by this provider.");
    }
    Ok(uri)
}

/// `GET /api/oidc/end-session`: RP-initiated logout.
async fn end_session(req: HttpRequest, shared: Data) -> HttpResponse {
    let Ok(params) = Params::parse(req.query_string()) else {
        return html(
            StatusCode::OK,
            pages::signed_out_page("The logout request repeats a parameter."),
        );
    };
    match logout_target(&shared, &params) {
        Ok(uri) => {
            let state: Vec<(&str, &str)> = params
                .get("state")
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            redirect(uri, &state)
        }
        Err(note) => html(StatusCode::OK, pages::signed_out_page(note)),
    }
}
