//! The configuration file as written: plain serde structures, no validation.
//!
//! Everything here is turned into typed runtime values by [`super::compile`];
//! nothing outside the `config` module sees these types.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

/// The whole file, after figment merged TOML and environment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub listen: Option<String>,
    /// A second listener serving only `/metrics` and `/readyz`.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub metrics_listen: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub public_url: Option<String>,
    #[serde(deserialize_with = "lenient::opt_strings")]
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub default_policy: Option<String>,
    /// A line for people refused at a page: whom to ask.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub support_contact: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub log_format: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub log_level: Option<String>,
    /// Glob patterns of include files; a single string is one pattern.
    #[serde(deserialize_with = "lenient::one_or_many")]
    pub include: Vec<String>,
    pub oidc: RawOidc,
    pub session: RawSession,
    pub headers: RawHeaders,
    pub assertion: RawAssertion,
    pub bearer: RawBearer,
    pub scim: RawScim,
    pub policies: BTreeMap<String, RawPolicy>,
    pub hosts: Vec<RawHost>,
    pub audit: RawAudit,
    /// The main file's name, once include files were merged (for messages
    /// about a main-file entry and an include file's).
    #[serde(skip)]
    pub main_file: Option<Arc<str>>,
}

/// `[oidc]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawOidc {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub issuer: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_secret: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_secret_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub client_auth: Option<String>,
    #[serde(deserialize_with = "lenient::opt_strings")]
    pub scopes: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub username_claim: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub groups_claim: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAudit {
    /// Append audit records to this file instead of writing them to stdout.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub file: Option<String>,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSession {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub secret: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub secret_file: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub cookie_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub cookie_domain: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub lifetime: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub store: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub state_dir: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub redis_url: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub refresh_interval: Option<String>,
    pub domains: Vec<RawSessionDomain>,
    /// A session unused this long ends.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub idle_timeout: Option<String>,
}

/// One `[[session.domains]]` entry: another registrable domain with its own login host.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSessionDomain {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub cookie_domain: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub public_url: Option<String>,
}

/// `[scim]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawScim {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub token_file: Option<String>,
}

/// `[bearer]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawBearer {
    pub enabled: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_strings")]
    pub audiences: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub opaque: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub lookups_in_flight: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub lookups_per_minute: Option<String>,
}

/// `[headers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHeaders {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub user: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub groups: Option<String>,
}

/// `[assertion]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAssertion {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub header: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub lifetime: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub key_file: Option<String>,
}

/// `[policies.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPolicy {
    #[serde(deserialize_with = "lenient::strings")]
    pub allowed_groups: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub allowed_users: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub allowed_networks: Vec<String>,
    /// The include file that defined it (`None`: the main file).
    #[serde(skip)]
    pub origin: Option<Arc<str>>,
}

impl RawPolicy {
    /// How messages name this policy: `policies.NAME`, after its include file if it has one.
    pub(crate) fn key(&self, name: &str) -> String {
        in_file(self.origin.as_deref(), &format!("policies.{name}"))
    }
}

/// `[[hosts]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHost {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub host: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub policy: Option<String>,
    pub claim_roles: Vec<RawClaimRole>,
    #[serde(deserialize_with = "lenient::strings")]
    pub bypass_paths: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub bypass_resources: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub allowed_networks: Vec<String>,
    pub rules: Vec<RawRule>,
    /// Match paths with their letter case folded (ASP.NET Core backends).
    pub case_insensitive_paths: bool,
    /// `[hosts.headers]`: this host's identity header names, key by key over `[headers]`.
    pub headers: Option<RawHeaders>,
    /// This host's idle timeout: shorter than `[session]`'s, or no effect.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub idle_timeout: Option<String>,
    /// This host's session lifetime: shorter than `[session]`'s, or no effect.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub lifetime: Option<String>,
    /// Step-up: the sign-in must be at most this old (`"10m"`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub max_age: Option<String>,
    /// Step-up: the sign-in must have used one of these methods (`["phr"]`).
    pub amr: Option<Vec<String>>,
    /// Where it was written (`None`: the main file).
    #[serde(skip)]
    pub origin: Option<HostOrigin>,
}

/// An include file's `[[hosts]]` entry: the file and the entry's position in it.
#[derive(Debug, Clone)]
pub(crate) struct HostOrigin {
    /// The file as written relative to the main file's directory.
    pub file: Arc<str>,
    /// The position among that file's `[[hosts]]`.
    pub index: usize,
}

impl RawHost {
    /// How messages name this entry: `hosts[3]` (its position overall) for the
    /// main file's, `conf.d/gitea.toml: hosts[0]` for an include file's.
    pub(crate) fn key(&self, position: usize) -> String {
        match &self.origin {
            Some(o) => in_file(Some(&o.file), &format!("hosts[{}]", o.index)),
            None => format!("hosts[{position}]"),
        }
    }

    /// [`Self::key`], naming the main file too (`pocketgate.toml: hosts[3]`):
    /// for messages about two entries of which one is in an include file.
    pub(crate) fn key_with_file(&self, position: usize, main_file: Option<&str>) -> String {
        match &self.origin {
            Some(_) => self.key(position),
            None => in_file(main_file, &self.key(position)),
        }
    }
}

/// An include file: `[policies.*]` and `[[hosts]]` only (other top-level keys
/// are refused before this is read).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawFragment {
    pub policies: BTreeMap<String, RawPolicy>,
    pub hosts: Vec<RawHost>,
}

/// `file: key`, the one form every message about an include file's key takes.
pub(crate) fn in_file(file: Option<&str>, key: &str) -> String {
    match file {
        Some(file) => format!("{file}: {key}"),
        None => key.to_string(),
    }
}

/// One `[[hosts.rules]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRule {
    #[serde(deserialize_with = "lenient::strings")]
    pub paths: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub resources: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub methods: Vec<String>,
    #[serde(deserialize_with = "lenient::strings")]
    pub networks: Vec<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub policy: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub action: Option<String>,
    /// Step-up for this rule (wins over the host's `max_age`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub max_age: Option<String>,
    /// Step-up for this rule (wins over the host's `amr`).
    pub amr: Option<Vec<String>>,
}

/// One `claim_roles` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawClaimRole {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub claim: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub role: Option<String>,
}

/// Strings that tolerate scalars: the environment provider reads
/// `POCKETGATE_OIDC__CLIENT_ID=12345` as a number and `...=true` as a boolean,
/// but every such key is text. Tables and arrays are still type errors.
mod lenient {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;

    struct Text(String);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Text;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                    Ok(Text(v.to_owned()))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                    Ok(Text(v))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_i128<E: de::Error>(self, v: i128) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_u128<E: de::Error>(self, v: u128) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_char<E: de::Error>(self, v: char) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
    }

    pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(Vec::<Text>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    /// A list of strings, or one string standing for a list of one.
    pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
                Ok(vec![v.to_owned()])
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }

    pub(crate) fn opt_strings<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Option::<Vec<Text>>::deserialize(d)?.map(|v| v.into_iter().map(|t| t.0).collect()))
    }
}

/// Every valid key, per table, for the unknown-key check and its suggestions.
pub(crate) mod keys {
    pub(crate) const TOP: &[&str] = &[
        "listen",
        "metrics_listen",
        "public_url",
        "trusted_proxies",
        "default_policy",
        "support_contact",
        "log_format",
        "log_level",
        "include",
        "oidc",
        "session",
        "headers",
        "assertion",
        "bearer",
        "scim",
        "policies",
        "hosts",
        "audit",
    ];
    pub(crate) const OIDC: &[&str] = &[
        "issuer",
        "client_id",
        "client_secret",
        "client_secret_file",
        "client_auth",
        "scopes",
        "username_claim",
        "groups_claim",
    ];
    pub(crate) const SESSION: &[&str] = &[
        "secret",
        "secret_file",
        "cookie_name",
        "cookie_domain",
        "lifetime",
        "store",
        "state_dir",
        "redis_url",
        "refresh_interval",
        "domains",
        "idle_timeout",
    ];
    pub(crate) const SESSION_DOMAIN: &[&str] = &["cookie_domain", "public_url"];
    pub(crate) const HEADERS: &[&str] = &["user", "email", "name", "groups"];
    pub(crate) const ASSERTION: &[&str] = &["header", "lifetime", "key_file"];
    pub(crate) const BEARER: &[&str] = &[
        "enabled",
        "audiences",
        "opaque",
        "lookups_in_flight",
        "lookups_per_minute",
    ];
    pub(crate) const SCIM: &[&str] = &["token_file"];
    pub(crate) const AUDIT: &[&str] = &["file"];
    pub(crate) const POLICY: &[&str] = &["allowed_groups", "allowed_users", "allowed_networks"];
    pub(crate) const HOST: &[&str] = &[
        "host",
        "policy",
        "claim_roles",
        "bypass_paths",
        "bypass_resources",
        "allowed_networks",
        "rules",
        "case_insensitive_paths",
        "headers",
        "idle_timeout",
        "lifetime",
        "max_age",
        "amr",
    ];
    pub(crate) const RULE: &[&str] = &[
        "paths",
        "resources",
        "methods",
        "networks",
        "policy",
        "action",
        "max_age",
        "amr",
    ];
    pub(crate) const CLAIM_ROLE: &[&str] = &["claim", "value", "role"];
    /// The top-level keys an include file may hold.
    pub(crate) const FRAGMENT: &[&str] = &["policies", "hosts"];
}
