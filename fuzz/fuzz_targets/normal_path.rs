//! The path normal form and the decision over it.
//!
//! Input: one request path (UTF-8). Invariants: `invariants::check_normal_path`
//! (a path in normal form holds no dot segment, `//`, `\`, needless or
//! lower-case escape, or escape of `/ \ . ; # ? %`), and
//! `invariants::check_spelling_of` (no path gets a more permissive answer
//! from the fixture rules than its plain form).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pocketgate::policy::Rules;

#[path = "../../tests/invariants/mod.rs"]
mod invariants;

static RULES: LazyLock<Rules> = LazyLock::new(invariants::rules);

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    invariants::check_normal_path(path);
    invariants::check_spelling_of(&RULES, invariants::APP, path);
});
