//! A small typed client of Pocket ID's admin API (`X-API-Key`): the calls
//! `pocket-id setup` makes, and Pocket ID's answers turned into errors that
//! say what to do. Nothing here decides what to change (see `plan`).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::plan::{ClientNow, Desired, ScimNow};

/// Most pages of groups read while looking names up (100 a page).
const MAX_PAGES: u32 = 50;

/// What went wrong talking to Pocket ID, each with what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("--url {url:?} is not a URL ({reason}); fix: Pocket ID's address, e.g. https://id.example.com")]
    BadUrl { url: String, reason: String },
    #[error("Pocket ID at {url} cannot be reached ({reason}); fix: start it, or correct --url")]
    Unreachable { url: String, reason: String },
    #[error("{url} has no OpenID discovery document (/.well-known/openid-configuration answers {status}{kind}): no Pocket ID there; fix: --url is Pocket ID's own address (its APP_URL)")]
    NotAProvider {
        url: String,
        status: u16,
        kind: &'static str,
    },
    #[error("Pocket ID refused the API key (401 on {path}); fix: create an API key in Pocket ID (Settings, Admin, API Keys), put it in the --api-key-file, and check it has not expired")]
    Unauthorized { path: String },
    #[error("Pocket ID forbids {path} to this API key (403); fix: use an API key created by an administrator")]
    Forbidden { path: String },
    #[error("Pocket ID has no {path} (404 without a JSON body): {what}; fix: upgrade Pocket ID (pocketgate is tested against 2.9){hint}")]
    NoEndpoint {
        path: String,
        what: &'static str,
        hint: &'static str,
    },
    #[error("Pocket ID answered {method} {path} with a redirect to {location:?}; fix: use the address it redirects to as --url")]
    Redirect {
        method: Method,
        path: String,
        location: String,
    },
    #[error("Pocket ID failed on {method} {path} ({status}: {body}); fix: see Pocket ID's log, then run again (a run continues where the last one stopped)")]
    Server {
        method: Method,
        path: String,
        status: u16,
        body: String,
    },
    #[error("Pocket ID refused {method} {path} ({status}: {body})")]
    Refused {
        method: Method,
        path: String,
        status: u16,
        body: String,
    },
    #[error("Pocket ID's answer to {path} is not what pocketgate expects ({reason}); fix: check the Pocket ID version (pocketgate is tested against 2.9)")]
    BadAnswer { path: String, reason: String },
}

/// What is known of the server before anything is asked with the key.
#[derive(Debug, Clone)]
pub(crate) struct About {
    /// The `issuer` its discovery document names.
    pub issuer: String,
    /// `currentVersion`, when it says.
    pub version: Option<String>,
}

/// The admin API of one Pocket ID.
pub(crate) struct Admin {
    http: reqwest::Client,
    base: url::Url,
    key: String,
}

/// One answer: status, whether it is JSON, the body.
struct Answer {
    status: StatusCode,
    json: bool,
    body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientDto {
    #[serde(rename = "callbackURLs", default)]
    callback_urls: Option<Vec<String>>,
    #[serde(rename = "logoutCallbackURLs", default)]
    logout_callback_urls: Option<Vec<String>>,
    #[serde(default)]
    is_public: bool,
    #[serde(default)]
    pkce_enabled: bool,
    #[serde(default)]
    requires_pushed_authorization_requests: bool,
    #[serde(default)]
    is_group_restricted: bool,
    #[serde(default)]
    allowed_user_groups: Option<Vec<GroupDto>>,
}

#[derive(Deserialize)]
struct GroupDto {
    id: String,
    name: String,
    #[serde(rename = "friendlyName", default)]
    friendly_name: String,
}

/// A Pocket ID group: its id and friendly name, by name.
pub(crate) type Groups = BTreeMap<String, (String, String)>;

#[derive(Deserialize)]
struct GroupPage {
    data: Vec<GroupDto>,
    pagination: Pagination,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    total_pages: u32,
}

#[derive(Deserialize)]
struct ScimDto {
    id: String,
    endpoint: String,
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct SecretDto {
    secret: String,
}

/// The client as Pocket ID has it: the managed parts, and the whole object
/// (an update sends back what setup does not manage, e.g. the launch URL).
pub(crate) struct ClientFound {
    pub now: ClientNow,
    pub raw: Map<String, Value>,
}

impl Admin {
    pub(crate) fn new(url: &str, key: String) -> Result<Admin, ApiError> {
        let bad = |reason: String| ApiError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let mut base = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad("not an absolute http(s) URL".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            // The API key is a header of our own, which a redirect would carry elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pocketgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Admin { http, base, key })
    }

    /// The discovery document (no key needed) and the version.
    pub(crate) async fn about(&self) -> Result<About, ApiError> {
        let path = ".well-known/openid-configuration";
        let a = self.send(Method::GET, path, None, false).await?;
        if a.status != StatusCode::OK || !a.json {
            return Err(ApiError::NotAProvider {
                url: self.origin(),
                status: a.status.as_u16(),
                kind: if a.json { "" } else { ", not JSON" },
            });
        }
        let doc: Value = parse(path, &a.body)?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let version = match self
            .send(Method::GET, "api/version/current", None, true)
            .await
        {
            Ok(v) if v.status.is_success() => serde_json::from_str::<Value>(&v.body)
                .ok()
                .and_then(|v| v.get("currentVersion")?.as_str().map(String::from)),
            _ => None,
        };
        Ok(About { issuer, version })
    }

    /// The client with id `id`, if there is one.
    pub(crate) async fn client(&self, id: &str) -> Result<Option<ClientFound>, ApiError> {
        let path = format!("api/oidc/clients/{}", segment(id));
        let a = self.send(Method::GET, &path, None, true).await?;
        if a.status == StatusCode::NOT_FOUND && a.json {
            return Ok(None);
        }
        let a = self.ok(Method::GET, &path, a, "the OIDC clients API", "")?;
        let raw: Map<String, Value> = parse(&path, &a.body)?;
        let dto: ClientDto = parse(&path, &a.body)?;
        Ok(Some(ClientFound {
            now: ClientNow {
                callback_urls: dto.callback_urls.unwrap_or_default(),
                logout_callback_urls: dto.logout_callback_urls.unwrap_or_default(),
                public: dto.is_public,
                pkce: dto.pkce_enabled,
                pushed_authorization: dto.requires_pushed_authorization_requests,
                group_restricted: dto.is_group_restricted,
                groups: dto
                    .allowed_user_groups
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| g.name)
                    .collect(),
            },
            raw,
        }))
    }

    /// Create the client with every desired setting.
    pub(crate) async fn create_client(
        &self,
        want: &Desired,
        restricted: bool,
    ) -> Result<(), ApiError> {
        let mut body = Map::new();
        body.insert("id".into(), json!(want.client_id));
        body.insert("name".into(), json!(want.client_name));
        body.insert("credentials".into(), json!({}));
        body.insert("requiresReauthentication".into(), json!(false));
        managed(&mut body, want, restricted);
        let path = "api/oidc/clients";
        let a = self
            .send(Method::POST, path, Some(&Value::Object(body)), true)
            .await?;
        self.ok(Method::POST, path, a, "the OIDC clients API", "")
            .map(drop)
    }

    /// Update the client: what it has, with the managed settings replaced.
    pub(crate) async fn update_client(
        &self,
        want: &Desired,
        mut raw: Map<String, Value>,
        restricted: bool,
    ) -> Result<(), ApiError> {
        managed(&mut raw, want, restricted);
        for read_only in ["id", "allowedUserGroups", "hasLogo", "hasDarkLogo"] {
            raw.remove(read_only);
        }
        let path = format!("api/oidc/clients/{}", segment(&want.client_id));
        let a = self
            .send(Method::PUT, &path, Some(&Value::Object(raw)), true)
            .await?;
        self.ok(Method::PUT, &path, a, "the OIDC clients API", "")
            .map(drop)
    }

    /// Replace the client's allowed groups.
    pub(crate) async fn set_groups(&self, client_id: &str, ids: &[String]) -> Result<(), ApiError> {
        let path = format!(
            "api/oidc/clients/{}/allowed-user-groups",
            segment(client_id)
        );
        let body = json!({ "userGroupIds": ids });
        let a = self.send(Method::PUT, &path, Some(&body), true).await?;
        self.ok(Method::PUT, &path, a, "allowed user groups", "")
            .map(drop)
    }

    /// A new secret of the client (Pocket ID generates it; the old one stops working).
    pub(crate) async fn create_secret(&self, client_id: &str) -> Result<String, ApiError> {
        let path = format!("api/oidc/clients/{}/secret", segment(client_id));
        let a = self.send(Method::POST, &path, None, true).await?;
        let a = self.ok(Method::POST, &path, a, "client secrets", "")?;
        let s: SecretDto = parse(&path, &a.body)?;
        if s.secret.is_empty() {
            return Err(ApiError::BadAnswer {
                path,
                reason: "an empty secret".into(),
            });
        }
        Ok(s.secret)
    }

    /// Name → (id, friendly name) of those of `names` that are Pocket ID
    /// groups (exact names).
    pub(crate) async fn groups(&self, names: &[String]) -> Result<Groups, ApiError> {
        let mut found = BTreeMap::new();
        for name in names {
            let mut page = 1;
            loop {
                let mut u = self
                    .base
                    .join("api/user-groups")
                    .map_err(|e| bad_join(&e))?;
                u.query_pairs_mut()
                    .append_pair("search", name)
                    .append_pair("pagination[page]", &page.to_string())
                    .append_pair("pagination[limit]", "100");
                let path = format!("api/user-groups?{}", u.query().unwrap_or_default());
                let a = self.send(Method::GET, &path, None, true).await?;
                let a = self.ok(Method::GET, &path, a, "the user groups API", "")?;
                let p: GroupPage = parse(&path, &a.body)?;
                if let Some(g) = p.data.into_iter().find(|g| &g.name == name) {
                    found.insert(g.name, (g.id, g.friendly_name));
                    break;
                }
                if page >= p.pagination.total_pages || page >= MAX_PAGES {
                    break;
                }
                page += 1;
            }
        }
        Ok(found)
    }

    /// The SCIM service provider of the client, if it has one.
    pub(crate) async fn scim(&self, client_id: &str) -> Result<Option<ScimNow>, ApiError> {
        let path = format!(
            "api/oidc/clients/{}/scim-service-provider",
            segment(client_id)
        );
        let a = self.send(Method::GET, &path, None, true).await?;
        if a.status == StatusCode::NOT_FOUND && a.json {
            return Ok(None);
        }
        let a = self.ok(Method::GET, &path, a, SCIM_WHAT, SCIM_HINT)?;
        let s: ScimDto = parse(&path, &a.body)?;
        Ok(Some(ScimNow {
            id: s.id,
            endpoint: s.endpoint,
            token: s.token,
        }))
    }

    /// Create (`id` None) or update the client's SCIM service provider.
    pub(crate) async fn put_scim(
        &self,
        id: Option<&str>,
        client_id: &str,
        endpoint: &str,
        token: &str,
    ) -> Result<(), ApiError> {
        let body = json!({ "endpoint": endpoint, "token": token, "oidcClientId": client_id });
        let (method, path) = match id {
            None => (Method::POST, "api/scim/service-provider".to_string()),
            Some(id) => (
                Method::PUT,
                format!("api/scim/service-provider/{}", segment(id)),
            ),
        };
        let a = self.send(method.clone(), &path, Some(&body), true).await?;
        self.ok(method, &path, a, SCIM_WHAT, SCIM_HINT).map(drop)
    }

    fn origin(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        with_key: bool,
    ) -> Result<Answer, ApiError> {
        let url = self.base.join(path).map_err(|e| bad_join(&e))?;
        let mut req = self.http.request(method.clone(), url);
        if with_key {
            req = req.header("X-API-Key", &self.key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ApiError::Unreachable {
            url: self.origin(),
            reason: without_url(&e),
        })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(ApiError::Redirect {
                method,
                path: strip_query(path),
                location: resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = resp.text().await.map_err(|e| ApiError::Unreachable {
            url: self.origin(),
            reason: without_url(&e),
        })?;
        Ok(Answer { status, json, body })
    }

    /// A success answer, else the error that says what to do.
    fn ok(
        &self,
        method: Method,
        path: &str,
        a: Answer,
        what: &'static str,
        hint: &'static str,
    ) -> Result<Answer, ApiError> {
        let path = strip_query(path);
        match a.status {
            s if s.is_success() => Ok(a),
            StatusCode::UNAUTHORIZED => Err(ApiError::Unauthorized { path }),
            StatusCode::FORBIDDEN => Err(ApiError::Forbidden { path }),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED if !a.json => {
                Err(ApiError::NoEndpoint { path, what, hint })
            }
            s if s.is_server_error() => Err(ApiError::Server {
                method,
                path,
                status: s.as_u16(),
                body: short(&a.body),
            }),
            s => Err(ApiError::Refused {
                method,
                path,
                status: s.as_u16(),
                body: short(&a.body),
            }),
        }
    }
}

const SCIM_WHAT: &str = "this Pocket ID has no SCIM service providers";
const SCIM_HINT: &str = ", or run setup with --no-scim";

/// The settings setup manages, written into a client body.
fn managed(body: &mut Map<String, Value>, want: &Desired, restricted: bool) {
    body.insert("callbackURLs".into(), json!(want.callback_urls));
    body.insert(
        "logoutCallbackURLs".into(),
        json!(want.logout_callback_urls),
    );
    body.insert("isPublic".into(), json!(want.secret_file.is_none()));
    body.insert("pkceEnabled".into(), json!(true));
    body.insert("requiresPushedAuthorizationRequests".into(), json!(false));
    body.insert("isGroupRestricted".into(), json!(restricted));
}

fn parse<T: serde::de::DeserializeOwned>(path: &str, body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::BadAnswer {
        path: strip_query(path),
        reason: e.to_string(),
    })
}

/// An id as one path segment (percent-encoded).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn strip_query(path: &str) -> String {
    format!("/{}", path.split('?').next().unwrap_or_default())
}

/// At most 300 characters of an error body, on one line.
fn short(body: &str) -> String {
    let one: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(300).collect()
}

fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

fn bad_join(e: &url::ParseError) -> ApiError {
    ApiError::BadAnswer {
        path: String::new(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use super::*;

    fn answer(status: u16, json: bool, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            json,
            body: body.into(),
        }
    }

    /// What each answer of Pocket ID becomes, and the fix it tells.
    #[rustfmt::skip]
    #[test]
    fn answers_become_errors_that_say_what_to_do() {
        let admin = Admin::new("http://localhost:1411", "k".into()).unwrap();
        let cases: &[(u16, bool, &str, &str)] = &[
            (401, true,  r#"{"error":"Unauthorized"}"#, "refused the API key (401 on /api/x)"),
            (403, true,  "{}",                          "forbids /api/x"),
            (404, false, "404 page not found",          "has no /api/x (404 without a JSON body): this Pocket ID has no SCIM service providers; fix: upgrade Pocket ID (pocketgate is tested against 2.9), or run setup with --no-scim"),
            (405, false, "",                            "has no /api/x"),
            (500, true,  r#"{"error":"Something went wrong"}"#, "failed on GET /api/x (500: {\"error\":\"Something went wrong\"}); fix: see Pocket ID's log"),
            (400, true,  r#"{"error":"Field 'id' ..."}"#, "refused GET /api/x (400: {\"error\":\"Field 'id' ...\"})"),
        ];
        for (status, json, body, expected) in cases {
            let e = admin
                .ok(Method::GET, "api/x?search=a", answer(*status, *json, body), SCIM_WHAT, SCIM_HINT)
                .err()
                .unwrap_or_else(|| panic!("{status} passed"));
            assert!(e.to_string().contains(expected), "{status}: {e}");
        }
        assert!(admin.ok(Method::GET, "api/x", answer(201, true, "{}"), "", "").is_ok());
    }

    #[test]
    fn the_url_must_be_absolute_http() {
        for bad in ["localhost:1411", "ftp://id.example.com", "not a url"] {
            assert!(
                matches!(Admin::new(bad, "k".into()), Err(ApiError::BadUrl { .. })),
                "{bad}"
            );
        }
        let a = Admin::new("https://id.example.com/pid", "k".into()).unwrap();
        assert_eq!(
            a.base.join("api/x").unwrap().as_str(),
            "https://id.example.com/pid/api/x"
        );
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("pocketgate"), "pocketgate");
    }
}
