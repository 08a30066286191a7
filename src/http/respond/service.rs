//! The answers beside the policy's: the health and readiness probes, the
//! assertion's key set, the metrics page, `/whoami`, the provider's
//! back-channel logout, and requests whose query string cannot be read.
//! Part of `respond`, the one place outcomes become responses.

use actix_web::error::{InternalError, QueryPayloadError};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::{no_store, reject, Client, Rejection};

/// `/healthz`: the process answers.
pub(crate) fn alive() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// What `/readyz` found.
pub(crate) enum Readiness {
    /// The configuration is loaded, the provider's metadata fetched, the store answers.
    Ready,
    /// Not ready, and why (for the orchestrator's event log).
    NotReady(String),
}

/// `/readyz`: 200 `ready`, or 503 `not ready: why`.
pub(crate) fn readiness(readiness: Readiness) -> HttpResponse {
    match readiness {
        Readiness::Ready => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Readiness::NotReady(why) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("not ready: {why}\n")),
    }
}

/// `/.well-known/jwks.json`: backends may cache it briefly (a new key is
/// published before it signs only with a reload, so a backend refetches on
/// an unknown `kid`).
pub(crate) fn jwks(keys: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(keys)
}

/// `/metrics`: the exposition text.
pub(crate) fn metrics(content_type: &'static str, body: String) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type).body(body)
}

/// A JSON answer that is never cached (`/whoami`).
pub(crate) fn private_json(body: serde_json::Value) -> HttpResponse {
    no_store(HttpResponse::Ok()).json(body)
}

/// What `/backchannel-logout` answers the provider (OIDC Back-Channel
/// Logout 1.0, section 2.8). Every answer carries `Cache-Control: no-store`.
pub(crate) enum LogoutAnswer {
    /// The token verified and its sessions ended: 200.
    Ended,
    /// The request or its token is refused: 400 `invalid_request` with the reason.
    Refused(String),
    /// The token cannot be checked or its sessions ended now; it was not
    /// spent, so the provider's retry works: 503 `temporarily_unavailable`.
    Unavailable(String),
}

/// The response to a back-channel logout.
pub(crate) fn backchannel(answer: LogoutAnswer) -> HttpResponse {
    let (status, error) = match answer {
        LogoutAnswer::Ended => (StatusCode::OK, None),
        LogoutAnswer::Refused(why) => (StatusCode::BAD_REQUEST, Some(("invalid_request", why))),
        LogoutAnswer::Unavailable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(("temporarily_unavailable", why)),
        ),
    };
    let mut b = no_store(HttpResponse::build(status));
    match error {
        None => b.finish(),
        Some((code, description)) => b.json(serde_json::json!({
            "error": code,
            "error_description": description,
        })),
    }
}

/// A query string the handler's extractor cannot read (`/login?rd=a&rd=b`):
/// the 400 page or JSON of every other rejection, as an error actix answers with.
pub(crate) fn bad_query(e: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let rejection = Rejection::Query(e.to_string());
    InternalError::from_response(e, reject(&rejection, Client::of(req.headers()))).into()
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    /// Status, `Content-Type`, `Cache-Control` and body.
    fn parts(r: HttpResponse) -> (u16, String, String, String) {
        let header = |name| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (status, content_type, cache) = (
            r.status().as_u16(),
            header(header::CONTENT_TYPE),
            header(header::CACHE_CONTROL),
        );
        let body = r.into_body().try_into_bytes().unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        (status, content_type, cache, body)
    }

    fn of(
        status: u16,
        content_type: &str,
        cache: &str,
        body: &str,
    ) -> (u16, String, String, String) {
        (status, content_type.into(), cache.into(), body.into())
    }

    #[rustfmt::skip]
    #[test]
    fn the_probes_answer_in_plain_text() {
        assert_eq!(parts(alive()),                                        of(200, "text/plain", "", "ok\n"));
        assert_eq!(parts(readiness(Readiness::Ready)),                    of(200, "text/plain", "", "ready\n"));
        assert_eq!(parts(readiness(Readiness::NotReady("no store".into()))), of(503, "text/plain", "", "not ready: no store\n"));
    }

    #[rustfmt::skip]
    #[test]
    fn a_back_channel_logout_is_answered_uncached_with_the_reason() {
        let json = "application/json";
        assert_eq!(parts(backchannel(LogoutAnswer::Ended)),                   of(200, "", "no-store", ""));
        assert_eq!(parts(backchannel(LogoutAnswer::Refused("replay".into()))), of(400, json, "no-store", r#"{"error":"invalid_request","error_description":"replay"}"#));
        assert_eq!(parts(backchannel(LogoutAnswer::Unavailable("keys".into()))), of(503, json, "no-store", r#"{"error":"temporarily_unavailable","error_description":"keys"}"#));
    }

    #[test]
    fn the_key_set_may_be_cached_briefly() {
        let (status, _, cache, body) = parts(jwks(serde_json::json!({ "keys": [] })));
        assert_eq!(
            (status, cache.as_str(), body.as_str()),
            (200, "public, max-age=300", r#"{"keys":[]}"#)
        );
    }
}
