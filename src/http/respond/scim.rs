//! SCIM answers (RFC 7644): `application/scim+json` bodies with `Location`
//! and `ETag` where a resource was made or read, and every refusal as the
//! RFC's error body (`schemas`, `status`, `scimType`, `detail`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{json, Value};

use super::no_store;
use crate::scim::{Answer, ScimError, ERROR_SCHEMA};

/// The media type of every SCIM body.
pub(crate) const SCIM_JSON: &str = "application/scim+json";

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A successful SCIM answer.
pub(crate) fn scim(answer: Answer) -> HttpResponse {
    let mut b = no_store(HttpResponse::build(status(answer.status)));
    if let Some(etag) = answer
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        b.insert_header((header::ETAG, etag));
    }
    if answer.status == 201 {
        if let Some(l) = answer
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            b.insert_header((header::LOCATION, l));
        }
    }
    match answer.body {
        Some(body) => b.content_type(SCIM_JSON).body(body.to_string()),
        None => b.finish(),
    }
}

/// A discovery document (`ServiceProviderConfig`, a schema, a list).
pub(crate) fn scim_json(body: &Value) -> HttpResponse {
    no_store(HttpResponse::Ok())
        .content_type(SCIM_JSON)
        .body(body.to_string())
}

/// A refused SCIM request, logged with its detail.
pub(crate) fn scim_error(e: &ScimError) -> HttpResponse {
    match e {
        ScimError::Store(_) => {
            tracing::warn!(target: "pocketgate::scim", error = %e, "SCIM request failed")
        }
        ScimError::Unauthorized => {
            tracing::info!(target: "pocketgate::scim", "SCIM request without the configured bearer token")
        }
        _ => tracing::info!(target: "pocketgate::scim", error = %e, "SCIM request refused"),
    }
    let code = e.status();
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": code.to_string(),
        "detail": e.detail(),
    });
    if let (Some(t), Value::Object(o)) = (e.scim_type(), &mut body) {
        o.insert("scimType".into(), json!(t));
    }
    let mut b = no_store(HttpResponse::build(status(code)));
    if let ScimError::Unauthorized = e {
        b.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scim\""));
    }
    if let ScimError::Store(_) = e {
        b.insert_header((header::RETRY_AFTER, "10"));
    }
    b.content_type(SCIM_JSON).body(body.to_string())
}
