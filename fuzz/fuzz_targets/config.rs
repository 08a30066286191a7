//! Configuration loading from TOML text.
//!
//! Input: the text of a configuration file. It is loaded with both secrets
//! from "the environment" (so secret files are never read), and, unless it
//! names a file or uses escapes that could spell `*_file` keys, without them
//! (inline secrets). Invariants: `invariants::check_config` (never a panic;
//! a configuration that loads has an http(s) issuer, at least one session
//! secret of at least 32 bytes, and rules that load alone).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/invariants/mod.rs"]
mod invariants;

fn no_env(_: &str) -> Option<String> {
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(toml) = std::str::from_utf8(data) else {
        return;
    };
    invariants::check_config(toml, &invariants::env);
    if !toml.contains("file") && !toml.contains("\\u") && !toml.contains("\\U") {
        invariants::check_config(toml, &no_env);
    }
});
