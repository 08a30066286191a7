//! pocketgate: a forward-auth sidecar for Caddy, nginx and Traefik in front of
//! Pocket ID (OpenID Connect).
//!
//! Dependencies point one way: [`domain`] ← [`policy`] ← [`config`] ←
//! [`session`] / [`oidc`] ← [`gate`] ← [`http`] ← [`cli`]. See DESIGN.md for
//! the contract.

pub mod assertion;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod domain;
pub mod gate;
pub mod http;
pub mod oidc;
pub mod policy;
pub mod reload;
pub mod request;
pub mod session;
pub mod telemetry;
