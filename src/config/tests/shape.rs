//! The session's shape: `[session] idle_timeout`, and `idle_timeout` and
//! `lifetime` per `[[hosts]]` entry, which only ever shorten `[session]`'s;
//! an idle timeout needs a store that records use.

use std::time::Duration;

use super::*;
use crate::config::{load as load_path, SessionShape};

const APP: &str = "[[hosts]]\nhost = \"app.example.com\"\npolicy = \"users\"\n";

/// The shared configuration with `keys` added to `[session]` and `host`
/// (keys of one `[[hosts]]` entry for app.example.com) after it.
fn shaped(session_keys: &str, host_keys: &str) -> String {
    base(&format!("{APP}{host_keys}")).replace(
        "cookie_domain = \"example.com\"",
        &format!("cookie_domain = \"example.com\"\n{session_keys}"),
    )
}

fn shape_of(toml: &str) -> SessionShape {
    let rt = load(toml).unwrap().value;
    rt.session
        .shape_for(&rt.rules.lookup_host("app.example.com"))
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

#[test]
fn idle_timeout_is_unset_by_default_and_parsed_when_set() {
    assert_eq!(load(&base("")).unwrap().value.session.idle_timeout, None);
    let rt = load(&shaped("idle_timeout = \"2h\"", "")).unwrap().value;
    assert_eq!(rt.session.idle_timeout, secs(7200));
    assert_refused(
        &shaped("idle_timeout = \"soon\"", ""),
        &["session.idle_timeout", "\"30m\""],
    );
    assert_refused(
        &shaped("idle_timeout = \"500ms\"", ""),
        &["session.idle_timeout", "at least 1 second"],
    );
}

#[test]
fn a_host_shortens_the_session_for_itself_only() {
    let toml = shaped(
        "idle_timeout = \"2h\"",
        "idle_timeout = \"15m\"\nlifetime = \"1h\"\n",
    );
    assert_eq!(
        shape_of(&toml),
        SessionShape {
            idle_timeout: secs(900),
            lifetime: secs(3600)
        }
    );
    let rt = load(&toml).unwrap().value;
    // Hosts without the keys, and the default policy's, ask nothing more.
    for other in ["other.example.com", "unknown.example.org"] {
        assert_eq!(
            rt.session.shape_for(&rt.rules.lookup_host(other)),
            SessionShape::default(),
            "{other}"
        );
    }
    // Without a session idle_timeout a host may still set its own.
    assert_eq!(
        shape_of(&shaped("", "idle_timeout = \"15m\"\n")).idle_timeout,
        secs(900)
    );
}

#[test]
fn a_host_value_longer_than_the_sessions_warns_and_has_no_effect() {
    let toml = shaped(
        "idle_timeout = \"30m\"\nlifetime = \"8h\"",
        "idle_timeout = \"1h\"\nlifetime = \"1d\"\n",
    );
    let w = load(&toml).unwrap().warnings;
    assert_warned(&w, |w| {
        w.starts_with("hosts[0].idle_timeout = \"1h\" is longer than session.idle_timeout (30m)")
            && w.contains("no effect")
    });
    assert_warned(&w, |w| {
        w.starts_with("hosts[0].lifetime = \"1d\" is longer than session.lifetime (8h)")
    });
    assert_eq!(
        shape_of(&toml),
        SessionShape::default(),
        "never an extension"
    );
    // As long as the session's: nothing to shorten, nothing to warn about.
    let same = shaped("idle_timeout = \"30m\"", "idle_timeout = \"30m\"\n");
    assert!(!load(&same)
        .unwrap()
        .warnings
        .iter()
        .any(|w| w.contains("idle_timeout")));
    assert_eq!(shape_of(&same), SessionShape::default());
}

#[test]
fn bad_host_values_name_their_key() {
    assert_refused(
        &shaped("", "idle_timeout = \"0s\"\n"),
        &["hosts[0].idle_timeout", "at least 1 second"],
    );
    assert_refused(
        &shaped("", "lifetime = \"forever\"\n"),
        &["hosts[0].lifetime", "is not a duration"],
    );
}

#[test]
fn idle_timeout_with_the_cookie_store_is_an_error_at_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pocketgate.toml");
    let cases = [
        (
            shaped("store = \"cookie\"\nidle_timeout = \"2h\"", ""),
            "idle_timeout = \"2h\"",
            "session.idle_timeout",
        ),
        (
            shaped("store = \"cookie\"", "idle_timeout = \"10m\"\n"),
            "idle_timeout = \"10m\"",
            "hosts[0].idle_timeout",
        ),
    ];
    for (text, needle, key) in cases {
        std::fs::write(&path, &text).unwrap();
        let e = load_path(&path).unwrap_err().to_string();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_mentions(
            &e,
            &[
                &format!("pocketgate.toml:{line}: {key}"),
                "store = \"cookie\"",
                "use session.store = \"embedded\" or \"redis\"",
            ],
        );
    }
    // A host lifetime needs no store: the cookie knows when it was issued.
    let lifetime = shaped("store = \"cookie\"", "lifetime = \"1h\"\n");
    assert_eq!(shape_of(&lifetime).lifetime, secs(3600));
}
