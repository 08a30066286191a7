//! The configuration file as written: plain serde structures, no validation.
//!
//! Everything here is turned into typed runtime values by [`super::compile`];
//! nothing outside the `config` module sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file, after figment merged TOML and environment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub default_policy: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub oidc: RawOidc,
    pub session: RawSession,
    pub headers: RawHeaders,
    pub policies: BTreeMap<String, RawPolicy>,
    pub hosts: Vec<RawHost>,
}

/// `[oidc]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<String>,
    pub client_auth: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub username_claim: Option<String>,
    pub groups_claim: Option<String>,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSession {
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub lifetime: Option<String>,
}

/// `[headers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHeaders {
    pub user: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Option<String>,
}

/// `[policies.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPolicy {
    pub allowed_groups: Vec<String>,
    pub allowed_users: Vec<String>,
    pub allowed_networks: Vec<String>,
}

/// `[[hosts]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHost {
    pub host: Option<String>,
    pub policy: Option<String>,
    pub claim_roles: Vec<RawClaimRole>,
    pub bypass_paths: Vec<String>,
    pub bypass_resources: Vec<String>,
    pub allowed_networks: Vec<String>,
}

/// One `claim_roles` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClaimRole {
    pub claim: Option<String>,
    pub value: Option<String>,
    pub role: Option<String>,
}

/// Every valid key, per table, for the unknown-key check and its suggestions.
pub mod keys {
    pub const TOP: &[&str] = &[
        "listen",
        "public_url",
        "trusted_proxies",
        "default_policy",
        "log_format",
        "log_level",
        "oidc",
        "session",
        "headers",
        "policies",
        "hosts",
    ];
    pub const OIDC: &[&str] = &[
        "issuer",
        "client_id",
        "client_secret",
        "client_secret_file",
        "client_auth",
        "scopes",
        "username_claim",
        "groups_claim",
    ];
    pub const SESSION: &[&str] = &[
        "secret",
        "secret_file",
        "cookie_name",
        "cookie_domain",
        "lifetime",
    ];
    pub const HEADERS: &[&str] = &["user", "email", "name", "groups"];
    pub const POLICY: &[&str] = &["allowed_groups", "allowed_users", "allowed_networks"];
    pub const HOST: &[&str] = &[
        "host",
        "policy",
        "claim_roles",
        "bypass_paths",
        "bypass_resources",
        "allowed_networks",
    ];
    pub const CLAIM_ROLE: &[&str] = &["claim", "value", "role"];
}
