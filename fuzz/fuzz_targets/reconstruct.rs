//! Request reconstruction from proxy headers.
//!
//! Input: text lines. The first is the TCP peer's address (trusted:
//! 127.0.0.1, 10.9.0.0/16, ::1; anything else is not, and a line that is not
//! an address means 127.0.0.1); every further line is one `Name: value`
//! header, in bytes (lines that are not valid HTTP headers are skipped, as
//! actix would have refused them). Invariants: `invariants::check_reconstruct`.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use pocketgate::request::Scheme;

#[path = "../../tests/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let peer = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let headers = invariants::header_map(lines.filter_map(|line| {
        let colon = line.iter().position(|b| *b == b':')?;
        let (name, value) = line.split_at(colon);
        let value = value[1..].strip_suffix(b"\r").unwrap_or(&value[1..]);
        Some((name, value.trim_ascii()))
    }));
    invariants::check_reconstruct(&headers, peer, "GET", Scheme::Https);
});
