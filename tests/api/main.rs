//! Integration tests: the real application on a random loopback port.

#[path = "../common/mod.rs"]
mod common;

mod forward_auth;
mod login;
mod misc;
