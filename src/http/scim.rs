//! `/scim/v2/...`: the SCIM service provider's thin handlers. Each checks
//! the bearer token, reads the body (at most [`MAX_BODY`]) and the query,
//! calls one `scim::Directory` operation and hands the answer to
//! `respond`. Without `[scim]` every path here is a 404.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::respond::{self, Rejection};
use super::{now, AppState, State};
use crate::audit;
use crate::policy::Identity;
use crate::scim::{self, Deprovisioned, Directory, ListQuery, ScimError, Scope};
use crate::session::store::DirectoryKind;

/// Largest SCIM request body, in bytes (beyond: 413).
pub(super) const MAX_BODY: usize = 256 * 1024;

/// Mount `/scim/v2`.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .service(read_only("/ServiceProviderConfig", service_provider_config))
            .service(read_only("/ResourceTypes", resource_types))
            .service(read_only("/ResourceTypes/{id}", resource_type))
            .service(read_only("/Schemas", schemas))
            .service(read_only("/Schemas/{id}", schema))
            .route("/.search", web::to(not_implemented))
            .route("/{kind}/.search", web::to(not_implemented))
            .route("/{kind}", web::get().to(list))
            .route("/{kind}", web::post().to(create))
            .route("/{kind}/{id}", web::get().to(get))
            .route("/{kind}/{id}", web::put().to(update))
            .route("/{kind}/{id}", web::patch().to(update))
            .route("/{kind}/{id}", web::delete().to(delete))
            .default_service(web::to(unknown)),
    );
}

/// A discovery endpoint: GET only, anything else 405 (RFC 7644 §4).
fn read_only<F, Args>(path: &str, get: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .get(get)
        .default_service(web::to(not_allowed))
}

async fn not_allowed(req: HttpRequest, state: State) -> HttpResponse {
    answer(authorized(&state, req.headers()).and_then(|_| {
        Err(ScimError::MethodNotAllowed(format!(
            "{} {} is not allowed: discovery endpoints answer GET only",
            req.method(),
            req.path()
        ))
        .into())
    }))
}

async fn not_implemented(req: HttpRequest, state: State) -> HttpResponse {
    answer(authorized(&state, req.headers()).and_then(|_| {
        Err(ScimError::NotImplemented(format!(
            "{} is not implemented: list with GET and a filter",
            req.path()
        ))
        .into())
    }))
}

/// The directory and the URL of `/scim/v2`, when `[scim]` is on and the
/// request carries its token.
fn authorized<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
) -> Result<(&'s Directory, String), Answer> {
    let (Some(settings), Some(directory)) = (&state.runtime.scim, state.directory.as_ref()) else {
        return Err(Answer::Off);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // Digests of both sides: equal length, compared in constant time.
    let expected = Sha256::digest(settings.token.expose().as_bytes());
    let matches =
        presented.is_some_and(|t| bool::from(Sha256::digest(t.as_bytes()).ct_eq(&expected)));
    if !matches {
        return Err(Answer::Refused(ScimError::Unauthorized));
    }
    Ok((
        directory,
        format!("{}/scim/v2", state.runtime.public_url.origin),
    ))
}

/// Why a handler answers without the directory's word.
enum Answer {
    /// `[scim]` is off: the path does not exist.
    Off,
    Refused(ScimError),
}

impl From<ScimError> for Answer {
    fn from(e: ScimError) -> Answer {
        Answer::Refused(e)
    }
}

fn answer(result: Result<HttpResponse, Answer>) -> HttpResponse {
    match result {
        Ok(r) => r,
        Err(Answer::Off) => HttpResponse::NotFound().finish(),
        Err(Answer::Refused(e)) => respond::scim_error(&e),
    }
}

fn kind_of(text: &str) -> Result<DirectoryKind, Answer> {
    match text {
        "Users" => Ok(DirectoryKind::User),
        "Groups" => Ok(DirectoryKind::Group),
        other => Err(ScimError::NotFound(format!("no endpoint {other:?} (Users, Groups)")).into()),
    }
}

/// The request body as JSON, at most [`MAX_BODY`] bytes.
async fn json_body(payload: web::Payload) -> Result<Value, ScimError> {
    let bytes = payload
        .to_bytes_limited(MAX_BODY)
        .await
        .map_err(|_| ScimError::TooLarge(MAX_BODY))?
        .map_err(|e| ScimError::InvalidSyntax(format!("the body could not be read: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::InvalidSyntax(format!("the body is not JSON: {e}")))
}

/// The query string's parameters.
fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// `attributes` / `excludedAttributes` of the query applied to the answer.
fn projected(answer: &mut scim::Answer, query: &[(String, String)]) {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(body) = answer.body.as_mut() {
        scim::project(body, param("attributes"), param("excludedAttributes"));
    }
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

fn scope<'a>(
    state: &'a AppState,
    base: &'a str,
    on_deprovision: &'a dyn Fn(&Deprovisioned<'_>),
) -> Scope<'a> {
    Scope {
        sessions: &state.sessions,
        base,
        now: now(),
        on_deprovision,
    }
}

/// A read changes nothing: no one is deprovisioned.
fn unchanged(_: &Deprovisioned<'_>) {}

/// The `scim_deprovision` audit record of a user this request deprovisioned.
fn audited<'r>(req: &'r HttpRequest, state: &'r AppState) -> impl Fn(&Deprovisioned<'_>) + 'r {
    move |d| {
        let ctx = audit::Context::http(req, &state.runtime.trusted_proxies)
            .signed_in(d.user, d.subject.unwrap_or_default());
        audit::scim_deprovision(&ctx, d.sessions);
    }
}

async fn list(req: HttpRequest, state: State, path: web::Path<String>) -> HttpResponse {
    answer(
        async {
            let (directory, base) = authorized(&state, req.headers())?;
            let kind = kind_of(&path)?;
            let mut filter = None;
            let (mut start_index, mut count) = (None, None);
            let pairs = query(&req);
            for (k, v) in &pairs {
                let number = || {
                    v.trim().parse::<i64>().map_err(|_| {
                        ScimError::InvalidValue(format!("{k} must be an integer, not {v:?}"))
                    })
                };
                match k.to_ascii_lowercase().as_str() {
                    "filter" => filter = Some(v.as_str()),
                    "startindex" => start_index = Some(number()?),
                    "count" => count = Some(number()?),
                    _ => {}
                }
            }
            let q = ListQuery {
                filter,
                start_index,
                count,
            };
            let mut listed = directory
                .list(&scope(&state, &base, &unchanged), kind, &q)
                .await?;
            projected(&mut listed, &pairs);
            Ok(respond::scim(listed))
        }
        .await,
    )
}

async fn create(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    answer(
        async {
            let (directory, base) = authorized(&state, req.headers())?;
            let kind = kind_of(&path)?;
            let body = json_body(payload).await?;
            let audit = audited(&req, &state);
            Ok(respond::scim(
                directory
                    .create(&scope(&state, &base, &audit), kind, &body)
                    .await?,
            ))
        }
        .await,
    )
}

async fn get(req: HttpRequest, state: State, path: web::Path<(String, String)>) -> HttpResponse {
    answer(
        async {
            let (directory, base) = authorized(&state, req.headers())?;
            let kind = kind_of(&path.0)?;
            let mut got = directory
                .get(&scope(&state, &base, &unchanged), kind, &path.1)
                .await?;
            projected(&mut got, &query(&req));
            Ok(respond::scim(got))
        }
        .await,
    )
}

/// `PUT` (the whole resource) or `PATCH` (operations on it).
async fn update(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    answer(
        async {
            let (directory, base) = authorized(&state, req.headers())?;
            let kind = kind_of(&path.0)?;
            let body = json_body(payload).await?;
            let audit = audited(&req, &state);
            let (s, wanted) = (scope(&state, &base, &audit), if_match(req.headers()));
            let done = if req.method() == actix_web::http::Method::PATCH {
                directory.patch(&s, kind, &path.1, &body, wanted).await?
            } else {
                directory.replace(&s, kind, &path.1, &body, wanted).await?
            };
            Ok(respond::scim(done))
        }
        .await,
    )
}

async fn delete(req: HttpRequest, state: State, path: web::Path<(String, String)>) -> HttpResponse {
    answer(
        async {
            let (directory, base) = authorized(&state, req.headers())?;
            let kind = kind_of(&path.0)?;
            let audit = audited(&req, &state);
            let s = scope(&state, &base, &audit);
            Ok(respond::scim(
                directory
                    .delete(&s, kind, &path.1, if_match(req.headers()))
                    .await?,
            ))
        }
        .await,
    )
}

async fn service_provider_config(req: HttpRequest, state: State) -> HttpResponse {
    answer(
        authorized(&state, req.headers())
            .map(|(_, base)| respond::scim_json(&scim::service_provider_config(&base))),
    )
}

async fn resource_types(req: HttpRequest, state: State) -> HttpResponse {
    answer(authorized(&state, req.headers()).map(|(_, base)| {
        respond::scim_json(&scim::all(
            scim::resource_types(&base)
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ))
    }))
}

async fn resource_type(req: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    answer(
        authorized(&state, req.headers())
            .and_then(|(_, base)| one(scim::resource_types(&base), &id)),
    )
}

async fn schemas(req: HttpRequest, state: State) -> HttpResponse {
    answer(authorized(&state, req.headers()).map(|(_, base)| {
        respond::scim_json(&scim::all(
            scim::schemas(&base).into_iter().map(|(_, v)| v).collect(),
        ))
    }))
}

async fn schema(req: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    answer(authorized(&state, req.headers()).and_then(|(_, base)| one(scim::schemas(&base), &id)))
}

fn one(all: Vec<(&'static str, Value)>, id: &str) -> Result<HttpResponse, Answer> {
    all.into_iter()
        .find(|(k, _)| *k == id)
        .map(|(_, v)| respond::scim_json(&v))
        .ok_or_else(|| ScimError::NotFound(format!("no {id:?} here")).into())
}

async fn unknown(req: HttpRequest, state: State) -> HttpResponse {
    answer(authorized(&state, req.headers()).and_then(|_| {
        Err(ScimError::NotFound(format!("no SCIM endpoint at {}", req.path())).into())
    }))
}

impl AppState {
    /// A sign-in SCIM keeps inactive is refused (403) until the user is active again.
    pub(crate) async fn refuse_disabled(&self, identity: &Identity) -> Result<(), Rejection> {
        let Some(directory) = &self.directory else {
            return Ok(());
        };
        match directory.refuses(&self.sessions, identity, now()).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(Rejection::AccountDisabled(identity.user.clone())),
            Err(e) => Err(Rejection::StoreUnavailable(e)),
        }
    }
}
