//! `rd` (post-login and post-logout target) validation.
//!
//! Input: one `rd` value (UTF-8), checked against `invariants::CONFIG`
//! (public_url https://auth.example.test, cookie_domain example.test, hosts
//! app.example.test, *.wild.other.test, 10.1.2.3, and a default_policy that
//! must not make every host a target). Invariants: `invariants::check_rd`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pocketgate::config::Runtime;

#[path = "../../tests/invariants/mod.rs"]
mod invariants;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(invariants::runtime);

fuzz_target!(|data: &[u8]| {
    if let Ok(rd) = std::str::from_utf8(data) {
        invariants::check_rd(&RUNTIME, rd);
    }
});
