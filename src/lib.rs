//! pocketgate: a forward-auth sidecar for Caddy, nginx and Traefik in front of
//! Pocket ID (OpenID Connect).
//!
//! The modules, lowest first; each names only modules of its own layer or
//! below, with no circle (`tests/layering.rs` checks every module):
//!
//! - [`domain`]: parsed values (host names, normal paths, networks, keys);
//! - [`policy`]: the compiled rules and the pure decision engine;
//! - [`config`]: load, check and compile the configuration into `policy`'s
//!   rules; [`request`]: the original request, from the proxy's headers;
//! - [`session`], [`oidc`], [`assertion`], [`telemetry`]: sessions and their
//!   stores, the provider client, the signed identity assertion, logging;
//! - [`gate`]: one request's whole answer, actix-free; [`audit`]: the
//!   security events, one JSON record each;
//! - [`http`]: the actix-web handlers, and `respond`, which turns every outcome
//!   into an answer;
//! - [`reload`]: a new configuration put in force under a running server;
//! - [`cli`], and `demo` (the `demo` feature), which plugs into `http`.
//!
//! DESIGN.md is the contract.

pub mod assertion;
pub mod audit;
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
pub mod scim;
pub mod session;
pub mod telemetry;
