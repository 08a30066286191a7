#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::http::header::{HeaderName, HeaderValue};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use super::*;
use crate::config::{SessionSecret, SessionSecrets};
use crate::telemetry::{audit_only, AuditSink};

fn at() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000, 250_000_000).unwrap()
}

fn key() -> StoreKey {
    StoreKey::of(b"a session id")
}

fn ctx(key: &StoreKey) -> Context<'_> {
    Context {
        request_id: Some("req-1".into()),
        client: Some(IpAddr::from([192, 0, 2, 7])),
        user: Some("alice"),
        subject: Some("sub-alice"),
        session: Some(key),
    }
}

#[test]
fn a_record_holds_the_marker_the_version_the_time_and_the_context() {
    let k = key();
    let line = record(&ctx(&k), &Event::Login, at());
    assert_eq!(
        line,
        format!(
            r#"{{"audit":"pocketgate/1","schema":1,"time":"2023-11-14T22:13:20.250Z","event":"login","request_id":"req-1","client":"192.0.2.7","user":"alice","subject":"sub-alice","session":"{}"}}"#,
            &k.as_str()[..16]
        )
    );
}

#[test]
fn the_session_is_named_by_a_prefix_of_its_store_key_which_sessions_list_shows() {
    let k = key();
    let line = record(&ctx(&k), &Event::Logout, at());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let shown = v["session"].as_str().unwrap();
    assert_eq!(shown.len(), 16);
    assert!(
        shown.starts_with(k.short()),
        "`sessions revoke --id` takes it"
    );
}

#[test]
fn unknown_context_fields_are_null_not_missing() {
    let line = record(&Context::default(), &Event::Logout, at());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for field in ["request_id", "client", "user", "subject", "session"] {
        assert!(v[field].is_null(), "{field}: {line}");
        assert!(v.as_object().unwrap().contains_key(field), "{field}");
    }
}

/// Every event's own fields, after the common ones.
#[rustfmt::skip]
#[test]
fn every_event_has_its_name_and_fields() {
    let rows: &[(Event<'_>, &str)] = &[
        (Event::Login, r#""event":"login""#),
        (Event::LoginFailed { reason: "state mismatch" }, r#""event":"login_failed","reason":"state mismatch""#),
        (Event::Logout, r#""event":"logout""#),
        (Event::Deny { host: "a.test", path: "/x", rule: "hosts[0]", reason: "not in group" }, r#""event":"deny","host":"a.test","path":"/x","rule":"hosts[0]","reason":"not in group""#),
        (Event::StepUp { host: "a.test", path: "/admin", rule: "hosts[0].rules[1]", reason: "sign-in older than 5m" }, r#""event":"step_up","host":"a.test","path":"/admin","rule":"hosts[0].rules[1]","reason":"sign-in older than 5m""#),
        (Event::Revoke { by: RevokedBy::Cli, sessions: 2 }, r#""event":"revoke","by":"cli","sessions":2"#),
        (Event::Revoke { by: RevokedBy::Idle, sessions: 1 }, r#""event":"revoke","by":"idle","sessions":1"#),
        (Event::RefreshInvalid { reason: "invalid_grant" }, r#""event":"refresh_invalid","reason":"invalid_grant""#),
        (Event::BackchannelLogout { sessions: 3 }, r#""event":"backchannel_logout","sessions":3"#),
        (Event::ScimDeprovision { sessions: 4 }, r#""event":"scim_deprovision","sessions":4"#),
        (Event::ConfigReload { result: "ok", error: None }, r#""event":"config_reload","result":"ok","error":null"#),
        (Event::ConfigReload { result: "error", error: Some("x.toml:3: bad") }, r#""event":"config_reload","result":"error","error":"x.toml:3: bad""#),
    ];
    for (event, fields) in rows {
        let line = record(&Context::default(), event, at());
        let want = format!(r#"{{"audit":"pocketgate/1","schema":1,"time":"2023-11-14T22:13:20.250Z",{fields},"request_id":null"#);
        assert!(line.starts_with(&want), "{line}\nwant {want}");
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

const PROXY: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
const STRANGER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)));

#[test]
fn a_trusted_proxys_request_id_is_taken() {
    let h = headers(&[("x-request-id", "4bf92f3577b34da6")]);
    assert_eq!(
        request_id(&h, PROXY, &Networks::loopback()),
        "4bf92f3577b34da6"
    );
}

#[test]
fn a_request_id_from_an_untrusted_peer_or_unfit_is_replaced() {
    let loopback = Networks::loopback();
    let from_stranger = headers(&[("x-request-id", "chosen-by-the-client")]);
    let id = request_id(&from_stranger, STRANGER, &loopback);
    assert_ne!(id, "chosen-by-the-client");
    assert_eq!(id.len(), 16, "12 random bytes, base64url: {id}");
    let quoted = headers(&[("x-request-id", "a\"b")]);
    assert_ne!(request_id(&quoted, PROXY, &loopback), "a\"b");
    let long: &'static str = Box::leak("x".repeat(129).into_boxed_str());
    let long = headers(&[("x-request-id", long)]);
    assert_eq!(request_id(&long, PROXY, &loopback).len(), 16);
    let none = headers(&[]);
    assert_ne!(
        request_id(&none, PROXY, &loopback),
        request_id(&none, PROXY, &loopback),
        "each request its own"
    );
}

#[test]
fn the_session_key_is_read_from_a_sealed_id_cookie_and_nothing_else() {
    let secret = SessionSecret::new(vec![7u8; 32]).unwrap();
    let keys = SessionKeys::new(&SessionSecrets::new(secret, Vec::new()));
    let sealed = keys.seal(Purpose::SessionId, b"a session id");
    assert_eq!(key_of_cookie(&keys, &sealed), Some(key()));
    assert_eq!(key_of_cookie(&keys, "not sealed"), None);
    let flow = keys.seal(Purpose::Flow, b"a session id");
    assert_eq!(key_of_cookie(&keys, &flow), None, "another purpose");
}

/// Lines written through the audit layer, kept in memory.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_audit_layer_writes_each_event_as_one_line_and_nothing_else() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(AuditSink::to(Box::new(lines.clone())).with_filter(audit_only()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("an operator's log line");
        tracing::warn!(target: "pocketgate::audit::other", "not an audit record");
        step_up(
            &Context::default(),
            "a.test",
            "/admin",
            "hosts[0]",
            "too old",
        );
        scim_deprovision(&Context::default().who(None), 2);
    });
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let events: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events, [r#""step_up""#, r#""scim_deprovision""#], "{text}");
}

#[test]
fn without_an_audit_layer_nothing_is_built() {
    // No subscriber: `enabled` is false and `emit` returns before formatting.
    assert!(!tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO));
    login(&Context::default());
}
