use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, SameSite};

use super::cookies::*;
use super::seal::*;
use super::*;
use crate::config::SessionSecrets;
use std::time::Duration;

const NOW: u64 = 1_700_000_000;

fn secret(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

fn keys(secrets: &[Vec<u8>]) -> SessionKeys {
    let mut all = secrets.iter().map(|s| {
        crate::config::SessionSecret::new(s.clone()).expect("test secrets are long enough")
    });
    let current = all.next().expect("at least one test secret");
    SessionKeys::new(&SessionSecrets::new(current, all.collect()))
}

/// Keys from one secret, and `payload` sealed with them as a session.
fn sealed_session(payload: &[u8]) -> (SessionKeys, String) {
    let keys = keys(&[secret(1)]);
    let sealed = keys.seal(Purpose::Session, payload);
    (keys, sealed)
}

/// Assert that `sealed` does not open as a session; `what` says how it was
/// made (for the failure message).
#[track_caller]
fn assert_not_opened(keys: &SessionKeys, sealed: &str, what: &str) {
    assert_eq!(keys.open(Purpose::Session, sealed).ok(), None, "{what}");
}

/// Assert that `open` gives back `value` a second before `expires`, and
/// nothing at `expires` or at any of the `later` times.
#[track_caller]
fn assert_open_until<T: PartialEq + std::fmt::Debug>(
    open: impl Fn(u64) -> Option<T>,
    value: &T,
    expires: u64,
    later: &[u64],
) {
    assert_eq!(open(expires - 1).as_ref(), Some(value));
    for &now in std::iter::once(&expires).chain(later) {
        assert_eq!(open(now), None, "at {now}");
    }
}

fn identity() -> Identity {
    Identity {
        subject: "0b5e3c2a".into(),
        user: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        name: Some("Alice".into()),
        groups: vec!["admins".into(), "staff".into()],
        ..Identity::default()
    }
}

fn session() -> Session {
    Session {
        identity: identity(),
        issued: NOW - 10,
        expires: NOW + 3600,
    }
}

/// A session whose payload is about `bytes` long (one very long group name).
fn big_session(bytes: usize) -> Session {
    let mut s = session();
    s.identity.groups = vec!["t".repeat(bytes)];
    s
}

fn flow() -> FlowState {
    FlowState {
        state: "st4te".into(),
        nonce: "n0nce".into(),
        pkce_verifier: "verifier".into(),
        rd: "https://app.example.com/x".into(),
        redirect_uri: None,
        expires: NOW + 600,
        step_up: None,
    }
}

fn settings(secure: bool, domain: Option<&str>) -> CookieSettings {
    CookieSettings {
        name: "pg".into(),
        domain: domain.map(str::to_owned),
        secure,
        lifetime: Duration::from_secs(3600),
    }
}

fn names(cookies: &[Cookie<'static>]) -> Vec<String> {
    cookies.iter().map(|c| c.name().to_owned()).collect()
}

fn is_removal(cookie: &Cookie<'_>) -> bool {
    cookie.value().is_empty() && cookie.max_age() == Some(cookie::time::Duration::ZERO)
}

/// The (name, value) pairs a browser would send back after storing `cookies`.
fn as_request(cookies: &[Cookie<'static>]) -> Vec<(String, String)> {
    cookies
        .iter()
        .filter(|c| !is_removal(c))
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}

fn borrow(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

// --- keys and sealing ---

#[test]
fn seal_then_open_round_trips() {
    let keys = keys(&[secret(1)]);
    for plaintext in [&b""[..], b"x", b"hello, world", &[0u8; 5000][..]] {
        let sealed = keys.seal(Purpose::Session, plaintext);
        assert_eq!(
            keys.open(Purpose::Session, &sealed).ok().as_deref(),
            Some(plaintext)
        );
    }
}

#[test]
fn sealed_value_is_url_safe_and_versioned() {
    let sealed = keys(&[secret(1)]).seal(Purpose::Session, b"abc");
    assert!(sealed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    assert_eq!(raw[0], VERSION);
    assert_eq!(raw.len(), 1 + KEY_ID_LEN + NONCE_LEN + 3 + TAG_LEN);
}

#[test]
fn two_seals_of_the_same_plaintext_differ() {
    let keys = keys(&[secret(1)]);
    let a = keys.seal(Purpose::Session, b"same");
    let b = keys.seal(Purpose::Session, b"same");
    assert_ne!(a, b);
    let nonce = |s: &str| {
        URL_SAFE_NO_PAD.decode(s).unwrap()[1 + KEY_ID_LEN..1 + KEY_ID_LEN + NONCE_LEN].to_vec()
    };
    assert_ne!(nonce(&a), nonce(&b));
}

#[test]
fn rotation_old_values_open_and_new_values_use_the_first_key() {
    let old = keys(&[secret(1)]);
    let rotated = keys(&[secret(2), secret(1)]);
    let new_only = keys(&[secret(2)]);

    let from_old = old.seal(Purpose::Session, b"old session");
    assert_eq!(
        rotated.open(Purpose::Session, &from_old).ok().as_deref(),
        Some(&b"old session"[..])
    );
    assert_eq!(new_only.open(Purpose::Session, &from_old).ok(), None);

    let from_rotated = rotated.seal(Purpose::Session, b"new session");
    assert_eq!(
        new_only
            .open(Purpose::Session, &from_rotated)
            .ok()
            .as_deref(),
        Some(&b"new session"[..])
    );
    assert_eq!(old.open(Purpose::Session, &from_rotated).ok(), None);
}

#[test]
fn debug_does_not_show_key_material() {
    let shown = format!("{:?}", keys(&[secret(0xab), secret(0xcd)]));
    assert_eq!(shown, "SessionKeys { keys: 2, .. }");
}

#[test]
fn flipped_byte_anywhere_does_not_open() {
    let (keys, sealed) = sealed_session(b"some session payload");
    let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    let last = raw.len() - 1;
    for position in [
        0,
        1,
        6,
        NONCE_LEN,
        NONCE_LEN + 1,
        NONCE_LEN + 5,
        last - TAG_LEN,
        last - 3,
        last,
    ] {
        for bit in [0x01u8, 0x80] {
            let mut tampered = raw.clone();
            tampered[position] ^= bit;
            let tampered = URL_SAFE_NO_PAD.encode(&tampered);
            assert_not_opened(&keys, &tampered, &format!("byte {position} bit {bit:#x}"));
        }
    }
}

#[test]
fn changed_character_anywhere_does_not_open() {
    let (keys, sealed) = sealed_session(b"some session payload");
    for position in 0..sealed.len() {
        let mut chars: Vec<char> = sealed.chars().collect();
        chars[position] = if chars[position] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert_not_opened(&keys, &tampered, &format!("char {position}"));
    }
}

#[test]
fn truncated_or_extended_does_not_open() {
    let (keys, sealed) = sealed_session(b"payload");
    for len in 0..sealed.len() {
        assert_not_opened(&keys, &sealed[..len], &format!("len {len}"));
    }
    let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    for len in 0..raw.len() {
        let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
        assert_not_opened(&keys, &cut, &format!("raw len {len}"));
    }
    let mut longer = raw.clone();
    longer.push(0);
    assert_not_opened(&keys, &URL_SAFE_NO_PAD.encode(&longer), "one byte longer");
}

#[test]
fn empty_and_malformed_input_does_not_open() {
    let (keys, sealed) = sealed_session(b"payload");
    let padded = URL_SAFE_NO_PAD
        .decode(&sealed)
        .map(|raw| base64::engine::general_purpose::URL_SAFE.encode(raw) + "=");
    let standard = URL_SAFE_NO_PAD
        .decode(&sealed)
        .map(|raw| base64::engine::general_purpose::STANDARD.encode(raw))
        .unwrap();
    let huge = "A".repeat(MAX_SEALED_LEN + 4);
    for input in [
        "",
        "!",
        "not base64 at all",
        "%%%%",
        "é",
        "\0\0\0",
        " ",
        &format!(" {sealed}"),
        &format!("{sealed}="),
        &padded.unwrap(),
        &huge,
    ] {
        assert_not_opened(&keys, input, &format!("{input:?}"));
    }
    // The standard alphabet only differs when '+' or '/' occur; either way it must not
    // open unless it is byte-for-byte the url-safe form.
    if standard != sealed {
        assert_not_opened(&keys, &standard, "standard alphabet");
    }
}

#[test]
fn wrong_version_does_not_open() {
    let keys = keys(&[secret(1)]);
    let raw = URL_SAFE_NO_PAD
        .decode(keys.seal(Purpose::Session, b"payload"))
        .unwrap();
    for version in [0u8, 1, 3, 255] {
        let mut other = raw.clone();
        other[0] = version;
        assert_not_opened(
            &keys,
            &URL_SAFE_NO_PAD.encode(&other),
            &format!("version {version}"),
        );
    }
}

#[test]
fn value_sealed_by_a_foreign_secret_does_not_open() {
    let ours = keys(&[secret(1), secret(2)]);
    let theirs = keys(&[secret(3)]);
    let sealed = theirs.seal(Purpose::Session, b"payload");
    assert_eq!(ours.open(Purpose::Session, &sealed).ok(), None);
}

#[test]
fn purposes_do_not_open_as_each_other() {
    let keys = keys(&[secret(1)]);
    let as_session = keys.seal(Purpose::Session, b"x");
    let as_flow = keys.seal(Purpose::Flow, b"x");
    assert_eq!(keys.open(Purpose::Flow, &as_session).ok(), None);
    assert_not_opened(&keys, &as_flow, "sealed for a flow");

    let sealed_session = session().seal(&keys);
    let sealed_flow = flow().seal(&keys);
    assert_eq!(FlowState::open(&keys, &sealed_session, NOW).ok(), None);
    assert_eq!(Session::open(&keys, &sealed_flow, NOW).ok(), None);
    assert_eq!(FlowState::open(&keys, &sealed_flow, NOW).ok(), Some(flow()));
    assert_eq!(
        Session::open(&keys, &sealed_session, NOW).ok(),
        Some(session())
    );
}

// --- payloads ---

#[test]
fn session_round_trips() {
    let keys = keys(&[secret(1)]);
    let s = session();
    assert_eq!(Session::open(&keys, &s.seal(&keys), NOW), Ok(s));
}

#[test]
fn session_is_compact_json_inside() {
    let keys = keys(&[secret(1)]);
    let plain = keys.open(Purpose::Session, &session().seal(&keys)).unwrap();
    let text = String::from_utf8(plain).unwrap();
    assert!(text.starts_with('{') && !text.contains(' '), "{text}");
    assert!(!text.contains("idt"), "{text}");
}

#[test]
fn expired_session_does_not_open() {
    let keys = keys(&[secret(1)]);
    let s = session();
    let sealed = s.seal(&keys);
    let open = |now| Session::open(&keys, &sealed, now).ok();
    assert_open_until(open, &s, s.expires, &[s.expires + 1, u64::MAX]);
}

#[test]
fn session_issued_in_the_future_does_not_open() {
    let keys = keys(&[secret(1)]);
    let at = |issued: u64| Session {
        issued,
        expires: NOW + 7200,
        ..session()
    };
    assert!(
        Session::open(&keys, &at(NOW + MAX_CLOCK_SKEW).seal(&keys), NOW)
            .ok()
            .is_some()
    );
    assert_eq!(
        Session::open(&keys, &at(NOW + MAX_CLOCK_SKEW + 1).seal(&keys), NOW).ok(),
        None
    );
    assert_eq!(
        Session::open(&keys, &at(NOW + 3600).seal(&keys), NOW).ok(),
        None
    );
    // No overflow when `now` is near the end of time.
    let late = Session {
        issued: u64::MAX - 1,
        expires: u64::MAX,
        ..session()
    };
    assert!(Session::open(&keys, &late.seal(&keys), u64::MAX - 1)
        .ok()
        .is_some());
}

#[test]
fn sealed_non_session_json_does_not_open_as_session() {
    let keys = keys(&[secret(1)]);
    for body in [&b"{}"[..], b"null", b"not json", b"{\"iat\":1}"] {
        let sealed = keys.seal(Purpose::Session, body);
        assert_eq!(Session::open(&keys, &sealed, NOW).ok(), None);
        let sealed = keys.seal(Purpose::Flow, body);
        assert_eq!(FlowState::open(&keys, &sealed, NOW).ok(), None);
    }
}

#[test]
fn expired_flow_does_not_open() {
    let keys = keys(&[secret(1)]);
    let f = flow();
    let sealed = f.seal(&keys);
    let open = |now| FlowState::open(&keys, &sealed, now).ok();
    assert_open_until(open, &f, f.expires, &[f.expires + 60]);
}

#[test]
fn flow_cookie_name_is_deterministic_and_per_state() {
    let a = flow_cookie_name("pg", false, "state-a");
    assert_eq!(a, flow_cookie_name("pg", false, "state-a"));
    assert_ne!(a, flow_cookie_name("pg", false, "state-b"));
    let suffix = a.strip_prefix("pg_flow_").unwrap();
    assert_eq!(suffix.len(), 16);
    assert!(suffix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    // SHA-256("") starts with e3b0c44298fc1c14.
    assert_eq!(
        flow_cookie_name("pg", false, ""),
        "pg_flow_e3b0c44298fc1c14"
    );
    // Over https the name carries the __Host- prefix.
    assert_eq!(
        flow_cookie_name("pg", true, ""),
        "__Host-pg_flow_e3b0c44298fc1c14"
    );
}

// --- cookies ---

#[test]
fn cookie_attributes() {
    let value = "v".repeat(10);
    let secure = write_cookies(&settings(true, Some("example.com")), &value, &[]).unwrap();
    assert_eq!(secure.len(), 1);
    let c = &secure[0];
    assert_eq!(c.name(), "pg");
    assert_eq!(c.value(), value);
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.domain(), Some("example.com"));
    assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(3600)));
    let header = c.to_string();
    for part in [
        "pg=vvvvvvvvvv",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Domain=example.com",
        "Max-Age=3600",
    ] {
        assert!(header.contains(part), "{header} lacks {part}");
    }

    let plain = write_cookies(&settings(false, None), &value, &[]).unwrap();
    let c = &plain[0];
    assert_ne!(c.secure(), Some(true));
    assert_eq!(c.domain(), None);
    let header = c.to_string();
    assert!(!header.contains("Secure"), "{header}");
    assert!(!header.contains("Domain"), "{header}");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));
}

#[test]
fn removal_cookies_keep_path_and_domain() {
    let cleared = clear_cookies(&settings(true, Some("example.com")), &["pg"]);
    assert_eq!(cleared.len(), 1);
    let c = &cleared[0];
    assert!(is_removal(c));
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.domain(), Some("example.com"));
    assert!(c.to_string().contains("Max-Age=0"));
}

#[test]
fn small_value_is_one_cookie() {
    let value = "x".repeat(CHUNK_SIZE);
    let cookies = write_cookies(&settings(false, None), &value, &[]).unwrap();
    assert_eq!(names(&cookies), ["pg"]);
    let request = as_request(&cookies);
    assert_eq!(read_cookie_value("pg", &borrow(&request)), Some(value));
}

#[test]
fn large_session_is_chunked_and_rejoined() {
    let keys = keys(&[secret(1)]);
    let s = big_session(10 * 1024);
    let sealed = s.seal(&keys);
    // Sealing adds 29 bytes and base64 a third, so 10 KiB of token needs four chunks.
    assert!(sealed.len() > 3 * CHUNK_SIZE && sealed.len() <= 4 * CHUNK_SIZE);
    let cookies = write_cookies(&settings(true, None), &sealed, &[]).unwrap();
    assert_eq!(names(&cookies), ["pg_0", "pg_1", "pg_2", "pg_3"]);
    assert!(cookies.iter().all(|c| c.value().len() <= CHUNK_SIZE));
    assert!(cookies.iter().all(|c| c.http_only() == Some(true)));

    // The browser may send the chunks in any order, among other cookies.
    let mut request = as_request(&cookies);
    request.reverse();
    request.insert(1, ("other".into(), "x".into()));
    let joined = read_cookie_value("pg", &borrow(&request)).unwrap();
    assert_eq!(joined, sealed);
    assert_eq!(Session::open(&keys, &joined, NOW).ok(), Some(s));
}

#[test]
fn chunk_boundaries_are_exact() {
    let at_two = "y".repeat(2 * CHUNK_SIZE);
    let cookies = write_cookies(&settings(false, None), &at_two, &[]).unwrap();
    assert_eq!(names(&cookies), ["pg_0", "pg_1"]);
    let one_more = "y".repeat(CHUNK_SIZE + 1);
    let cookies = write_cookies(&settings(false, None), &one_more, &[]).unwrap();
    assert_eq!(names(&cookies), ["pg_0", "pg_1"]);
    assert_eq!(cookies[1].value(), "y");
}

#[test]
fn multibyte_values_split_on_character_boundaries() {
    let value = format!("a{}", "é".repeat(CHUNK_SIZE));
    let cookies = write_cookies(&settings(false, None), &value, &[]).unwrap();
    assert!(cookies.iter().all(|c| c.value().len() <= CHUNK_SIZE));
    let request = as_request(&cookies);
    assert_eq!(read_cookie_value("pg", &borrow(&request)), Some(value));
}

#[test]
fn stale_chunks_get_removal_cookies() {
    let value = "z".repeat(CHUNK_SIZE + 10);
    let present = [
        "pg", "pg_0", "pg_1", "pg_2", "pg_3", "pg_7", "pg_8", "other", "pg_x",
    ];
    let cookies = write_cookies(&settings(false, None), &value, &present).unwrap();
    assert_eq!(
        names(&cookies),
        ["pg_0", "pg_1", "pg", "pg_2", "pg_3", "pg_7"]
    );
    assert!(!is_removal(&cookies[0]) && !is_removal(&cookies[1]));
    assert!(cookies[2..].iter().all(is_removal));
}

#[test]
fn single_cookie_write_clears_old_chunks() {
    let present = ["pg_0", "pg_1", "pg_2", "pg"];
    let cookies = write_cookies(&settings(false, None), "short", &present).unwrap();
    assert_eq!(names(&cookies), ["pg", "pg_0", "pg_1", "pg_2"]);
    assert_eq!(cookies[0].value(), "short");
    assert!(cookies[1..].iter().all(is_removal));
}

#[test]
fn duplicate_present_names_get_one_removal() {
    let cookies = write_cookies(&settings(false, None), "short", &["pg_0", "pg_0"]).unwrap();
    assert_eq!(names(&cookies), ["pg", "pg_0"]);
}

#[test]
fn value_needing_more_than_max_chunks_is_too_large() {
    let fits = "q".repeat(CHUNK_SIZE * MAX_CHUNKS);
    let cookies = write_cookies(&settings(false, None), &fits, &[]).unwrap();
    assert_eq!(cookies.len(), MAX_CHUNKS);

    let too_long = "q".repeat(CHUNK_SIZE * MAX_CHUNKS + 1);
    let err = write_cookies(&settings(false, None), &too_long, &["pg"]).unwrap_err();
    assert_eq!(
        err,
        TooLarge {
            len: too_long.len(),
            max: CHUNK_SIZE * MAX_CHUNKS
        }
    );
    let huge = "q".repeat(CHUNK_SIZE * MAX_CHUNKS * 10);
    assert!(write_cookies(&settings(false, None), &huge, &[]).is_err());
}

#[test]
fn clear_cookies_removes_the_whole_family_present() {
    let present = ["pg", "pg_0", "pg_5", "pg_flow_0123", "pgx", "pg_", "other"];
    let cleared = clear_cookies(&settings(false, None), &present);
    assert_eq!(names(&cleared), ["pg", "pg_0", "pg_5"]);
    assert!(cleared.iter().all(is_removal));
    assert!(clear_cookies(&settings(false, None), &[]).is_empty());
}

#[test]
fn read_prefers_the_unchunked_cookie() {
    let cookies = [("pg_0", "chunk"), ("pg", "whole"), ("pg_1", "more")];
    assert_eq!(read_cookie_value("pg", &cookies).as_deref(), Some("whole"));
}

#[test]
fn read_stops_at_the_first_gap() {
    let keys = keys(&[secret(1)]);
    let sealed = big_session(10 * 1024).seal(&keys);
    let cookies = write_cookies(&settings(false, None), &sealed, &[]).unwrap();
    let request: Vec<_> = as_request(&cookies)
        .into_iter()
        .filter(|(name, _)| name != "pg_1")
        .collect();
    let read = read_cookie_value("pg", &borrow(&request)).unwrap();
    assert_eq!(read, cookies[0].value());
    assert_eq!(Session::open(&keys, &read, NOW).ok(), None);
}

#[test]
fn read_at_most_max_chunks() {
    let request: Vec<(String, String)> = (0..MAX_CHUNKS + 3)
        .map(|i| (format!("pg_{i}"), "c".into()))
        .collect();
    let read = read_cookie_value("pg", &borrow(&request)).unwrap();
    assert_eq!(read.len(), MAX_CHUNKS);
}

#[test]
fn read_without_the_family_is_none() {
    assert_eq!(read_cookie_value("pg", &[]), None);
    assert_eq!(
        read_cookie_value("pg", &[("pg_1", "a"), ("pgx", "b"), ("pg_flow_ab", "c")]),
        None
    );
}

#[test]
fn parse_cookie_header_splits_pairs() {
    let parsed = parse_cookie_header("pg_0=abc; pg_1=def;other=x=y;  empty=");
    assert_eq!(
        parsed,
        [
            ("pg_0".to_owned(), "abc".to_owned()),
            ("pg_1".to_owned(), "def".to_owned()),
            ("other".to_owned(), "x=y".to_owned()),
            ("empty".to_owned(), String::new()),
        ]
    );
}

#[test]
fn parse_cookie_header_skips_garbage_without_panicking() {
    let long = "=".repeat(100_000);
    for header in [
        "",
        ";",
        ";;;; ;",
        "=",
        "=value",
        "novalue",
        "\u{0}\u{1}\u{7f}",
        "é=ü; ✓",
        "a=\"quoted\"",
        long.as_str(),
    ] {
        let _ = parse_cookie_header(header);
    }
    assert_eq!(
        parse_cookie_header("junk; =nameless; pg=ok; ;"),
        [("pg".to_owned(), "ok".to_owned())]
    );
}

#[test]
fn header_round_trip_through_parse_and_read() {
    let keys = keys(&[secret(1)]);
    let s = big_session(5000);
    let cookies = write_cookies(&settings(true, None), &s.seal(&keys), &[]).unwrap();
    let header = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let parsed = parse_cookie_header(&header);
    let read = read_cookie_value("pg", &borrow(&parsed)).unwrap();
    assert_eq!(Session::open(&keys, &read, NOW).ok(), Some(s));
}

#[test]
fn refusals_say_why() {
    let keys = keys(&[secret(1)]);
    let s = session();
    let sealed = s.seal(&keys);
    assert_eq!(
        Session::open(&keys, &sealed, s.expires),
        Err(Refused::Expired)
    );
    let future = Session {
        issued: NOW + 3600,
        expires: NOW + 7200,
        ..session()
    };
    assert_eq!(
        Session::open(&keys, &future.seal(&keys), NOW),
        Err(Refused::FromTheFuture)
    );
    assert_eq!(
        Session::open(&self::keys(&[secret(9)]), &sealed, NOW),
        Err(Refused::ForeignKey)
    );
    assert_eq!(
        Session::open(&keys, &flow().seal(&keys), NOW),
        Err(Refused::WrongPurpose)
    );
    let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    assert_eq!(
        Session::open(&keys, &URL_SAFE_NO_PAD.encode(&raw), NOW),
        Err(Refused::Tampered)
    );
    raw[0] = 1;
    assert_eq!(
        Session::open(&keys, &URL_SAFE_NO_PAD.encode(&raw), NOW),
        Err(Refused::Version)
    );
    assert_eq!(Session::open(&keys, "!!", NOW), Err(Refused::Malformed));
    assert_eq!(
        Session::open(&keys, &"A".repeat(MAX_SEALED_LEN + 1), NOW),
        Err(Refused::TooLong)
    );
    let not_a_session = keys.seal(Purpose::Session, b"{}");
    assert_eq!(
        Session::open(&keys, &not_a_session, NOW),
        Err(Refused::NotThisKind)
    );
}

#[test]
fn the_logout_hint_is_its_own_purpose() {
    let keys = keys(&[secret(1)]);
    let hint = LogoutHint {
        id_token: "eyJ.header.sig".into(),
        subject: "sub".into(),
        expires: NOW + 60,
    };
    let sealed = hint.seal(&keys);
    assert_eq!(LogoutHint::open(&keys, &sealed, NOW), Ok(hint.clone()));
    assert_eq!(
        Session::open(&keys, &sealed, NOW),
        Err(Refused::WrongPurpose)
    );
    assert_eq!(
        LogoutHint::open(&keys, &session().seal(&keys), NOW),
        Err(Refused::WrongPurpose)
    );
    assert_eq!(
        LogoutHint::open(&keys, &sealed, NOW + 60),
        Err(Refused::Expired)
    );
    assert!(!format!("{hint:?}").contains("eyJ"));
}

#[test]
fn only_the_session_family_is_borrowed_from_the_cookie_header() {
    let header = "app=1; pg=abc; pg_idt=x; pg_0=c0; pg_1=c1; pg_flow_12=f; pg_8=no; pgx=no";
    let pairs = request_pairs([header], |n| is_family("pg", n));
    assert_eq!(pairs, vec![("pg", "abc"), ("pg_0", "c0"), ("pg_1", "c1")]);
}

mod stored_records {
    use super::*;
    use crate::session::store::{Record, StoreKey};

    fn record() -> Record {
        Record {
            identity: identity(),
            issued: NOW - 10,
            expires: NOW + 3600,
            refreshed: NOW - 10,
            refresh_token: Some("sealed-refresh".into()),
            id_token: None,
            sid: Some("sid-1".into()),
            client: Some("203.0.113.7".into()),
            user_agent: None,
            refresh_failures: 0,
            retry_at: 0,
            last_used: None,
        }
    }

    #[test]
    fn a_record_opens_only_under_its_own_key_and_with_its_clear_fields() {
        let keys = keys(&[secret(1)]);
        let (a, b) = (StoreKey::of(b"a"), StoreKey::of(b"b"));
        let stored = record().seal(&keys, &a);
        assert_eq!(stored.user, "alice");
        assert_eq!(stored.sid.as_deref(), Some("sid-1"));
        assert!(!stored.sealed.contains("admins"), "groups are sealed");
        assert_eq!(stored.open(&keys, &a), Ok(record()));
        assert_eq!(stored.open(&keys, &b), Err(Refused::Tampered), "copied");
        let mut renamed = stored.clone();
        renamed.user = "bob".into();
        assert_eq!(renamed.open(&keys, &a), Err(Refused::Disagrees));
        let mut moved = stored.clone();
        moved.sid = None;
        assert_eq!(moved.open(&keys, &a), Err(Refused::Disagrees));
        let foreign = record().seal(&super::keys(&[secret(2)]), &a);
        assert_eq!(foreign.open(&keys, &a), Err(Refused::ForeignKey));
        // A value sealed for another purpose, with the right key, is no record.
        let mut other = stored;
        other.sealed = keys.seal(Purpose::StoredToken, b"{}");
        assert!(other.open(&keys, &a).is_err());
    }

    #[test]
    fn a_record_sealed_under_an_older_secret_line_still_opens() {
        let key = StoreKey::of(b"k");
        let stored = record().seal(&keys(&[secret(1)]), &key);
        let rotated = keys(&[secret(2), secret(1)]);
        assert_eq!(stored.open(&rotated, &key), Ok(record()));
        assert_eq!(
            stored.open(&keys(&[secret(2)]), &key),
            Err(Refused::ForeignKey),
            "the old line removed: no longer"
        );
    }
}

// --- the session service ---

mod service {
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::config::StoreSettings;
    use store::Store;

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Sessions in an embedded store in `dir`, or stateless without one.
    async fn sessions(dir: Option<&std::path::Path>) -> Sessions {
        let store = match dir {
            Some(dir) => {
                let settings = StoreSettings::Embedded {
                    state_dir: dir.to_path_buf(),
                };
                Store::open(&settings).await.unwrap()
            }
            None => None,
        };
        let events = Arc::new(NoEvents);
        Sessions::new(
            keys(&[secret(1)]),
            settings(false, None),
            store,
            None,
            events,
        )
    }

    /// A session started for alice, as the browser sends it back.
    async fn signed_in(sessions: &Sessions) -> Vec<(String, String)> {
        let cookies = sessions
            .create(
                &settings(false, None),
                identity(),
                Tokens::default(),
                LoginContext::default(),
                Duration::from_secs(3600),
                now(),
                &[],
            )
            .await
            .unwrap();
        as_request(&cookies)
    }

    #[tokio::test]
    async fn signed_in_requests_share_the_cached_identity_instead_of_copying_it() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = sessions(Some(dir.path())).await;
        let pairs = signed_in(&sessions).await;
        let first = sessions.current(&borrow(&pairs), now()).await.unwrap();
        let second = sessions.current(&borrow(&pairs), now()).await.unwrap();
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(*first.session.identity, identity());
        assert!(Arc::ptr_eq(
            &first.session.identity,
            &second.session.identity
        ));
        assert_eq!(first.key, second.key);
        assert!(first.key.is_some());
    }

    #[tokio::test]
    async fn a_stateless_session_opens_to_the_same_identity() {
        let sessions = sessions(None).await;
        let pairs = signed_in(&sessions).await;
        let current = sessions.current(&borrow(&pairs), now()).await.unwrap();
        let current = current.unwrap();
        assert_eq!(*current.session.identity, identity());
        assert_eq!(current.key, None);
        assert!(!current.refresh_due);
    }

    /// Counts the store's calls.
    #[derive(Default)]
    struct StoreCalls(std::sync::atomic::AtomicUsize);

    impl SessionEvents for StoreCalls {
        fn created(&self) {}
        fn ended(&self, _: EndReason, _: usize) {}
        fn cache(&self, _: bool) {}
        fn store_call(&self, _: Duration, _: bool) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn refresh(&self, _: RefreshOutcome) {}
        fn record_rejected(&self) {}
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_session_read_the_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = sessions(Some(dir.path())).await;
        let pairs = Arc::new(signed_in(&first).await);
        // A second replica over the same store: nothing cached yet, as
        // when the cached entry has just ended.
        let store = Store::open(&StoreSettings::Embedded {
            state_dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
        let calls = Arc::new(StoreCalls::default());
        let second = Arc::new(Sessions::new(
            keys(&[secret(1)]),
            settings(false, None),
            store,
            None,
            calls.clone(),
        ));
        // A page's parallel requests: all are queued before the first
        // read returns, so without sharing each one would read.
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (second, pairs) = (second.clone(), pairs.clone());
            requests.spawn(async move {
                let cookies: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                second.current(&cookies, now()).await
            });
        }
        let mut signed_in = 0;
        while let Some(found) = requests.join_next().await {
            let found = found.unwrap().unwrap();
            assert_eq!(found.unwrap().session.identity.user, "alice");
            signed_in += 1;
        }
        assert_eq!(signed_in, 32);
        assert_eq!(calls.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
