//! Integration tests: the real application on a random loopback port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

#[path = "../common/mod.rs"]
mod common;

mod assertion;
mod bearer;
mod demo;
mod domains;
mod forward_auth;
mod headers;
mod login;
mod misc;
mod reload;
mod scim;
mod store;
