//! Opening session, flow and logout-hint cookies, with fixed test keys.
//!
//! Input: bytes, used twice. (1) As a cookie value: whatever opens must be
//! valid now and round-trip (`invariants::check_cookie_value`); the seeds
//! `corpus/session_open/seed-sealed-*` are values really sealed with
//! `invariants::keys()`, so mutations start from the real format. (2) As an
//! edit script on values sealed afresh with those keys (each byte pair: a
//! position and a base64url character to put there; a last odd byte cuts the
//! value there): an edited value that differs from the sealed one must open
//! as nothing (`invariants::check_mutation`).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pocketgate::session::SessionKeys;

#[path = "../../tests/invariants/mod.rs"]
mod invariants;

static KEYS: LazyLock<SessionKeys> = LazyLock::new(invariants::keys);
static SEALED: LazyLock<[String; 2]> = LazyLock::new(|| {
    [
        invariants::session().seal(&KEYS),
        invariants::flow().seal(&KEYS),
    ]
});

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn edit(sealed: &str, script: &[u8]) -> String {
    let mut out = sealed.as_bytes().to_vec();
    let mut pairs = script.chunks_exact(2);
    for pair in pairs.by_ref() {
        let at = usize::from(pair[0]) % out.len().max(1);
        if let Some(b) = out.get_mut(at) {
            *b = BASE64URL[usize::from(pair[1]) % BASE64URL.len()];
        }
    }
    if let [cut] = pairs.remainder() {
        out.truncate(usize::from(*cut) % (out.len() + 1));
    }
    String::from_utf8(out).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        invariants::check_cookie_value(&KEYS, value, invariants::NOW);
    }
    for sealed in SEALED.iter() {
        let edited = edit(sealed, data);
        invariants::check_mutation(&KEYS, sealed, &edited, invariants::NOW);
    }
});
