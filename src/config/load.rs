//! Loading: the TOML file merged with `POCKETGATE_*` environment variables
//! (figment), the unknown-key check, and extraction into the raw structures.
//! Nothing here judges values; that is `compile`'s job. Unknown keys are
//! returned beside what was read, not instead of it, so that one run reports
//! them with every other mistake.

use std::path::Path;

use figment::providers::{Env, Format, Json, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::de::DeserializeOwned;

use super::raw::{keys, RawConfig, RawFragment};
use super::ConfigError;

/// The figment for a config file plus the `POCKETGATE_` environment. The two
/// secret variables are read directly (so a secret that looks like a number
/// stays text), and `POCKETGATE_CONFIG` names the file, not a key.
pub(super) fn figment_for(path: &Path) -> Figment {
    let file = if is_json(path) {
        Figment::new().merge(Json::file_exact(path))
    } else {
        Figment::new().merge(Toml::file_exact(path))
    };
    file.merge(
        Env::prefixed("POCKETGATE_")
            .filter(|k| {
                let k = k.as_str();
                !(k.eq_ignore_ascii_case("config")
                    || k.eq_ignore_ascii_case("session__secret")
                    || k.eq_ignore_ascii_case("oidc__client_secret"))
            })
            .split("__"),
    )
}

/// Whether a configuration file is JSON (by its `.json` extension; anything
/// else is TOML). Same keys either way, so generators without a TOML writer
/// (Nix's `builtins.toJSON`, Ansible, Helm) can write it.
pub(super) fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The figment for TOML text alone (tests, `demo`).
pub(super) fn figment_from_str(toml: &str) -> Figment {
    Figment::from(Toml::string(toml))
}

/// Extract the raw configuration and the unknown keys beside it, so that
/// compiling can report its errors in the same run (the caller must still
/// refuse the configuration for an unknown key). A syntax error stops at
/// once (nothing else can be read); type errors come with the unknown keys.
pub(super) fn extract(figment: &Figment) -> Result<Extracted<RawConfig>, Vec<ConfigError>> {
    extract_with(figment, unknown_keys)
}

/// What extraction read, and the unknown keys it found beside it.
pub(super) struct Extracted<T> {
    pub raw: T,
    pub unknown: Vec<ConfigError>,
}

/// Extract an include file's `[policies.*]` and `[[hosts]]`: any other
/// top-level key is refused, and unknown keys inside are reported as in the
/// main file. The errors do not name the file yet; the caller adds it.
pub(super) fn extract_fragment(
    figment: &Figment,
) -> Result<Extracted<RawFragment>, Vec<ConfigError>> {
    extract_with(figment, |tree, errors| {
        for key in tree
            .keys()
            .filter(|k| !keys::FRAGMENT.contains(&k.as_str()))
        {
            errors.push(ConfigError::NotInInclude {
                file: String::new(),
                key: key.clone(),
            });
        }
        rules_unknown_keys(tree, errors);
    })
}

fn extract_with<T: DeserializeOwned>(
    figment: &Figment,
    check_keys: impl Fn(&Dict, &mut Vec<ConfigError>),
) -> Result<Extracted<T>, Vec<ConfigError>> {
    let tree: Dict = figment
        .extract()
        .map_err(|e| vec![ConfigError::Syntax(e.to_string())])?;
    let mut errors = Vec::new();
    check_keys(&tree, &mut errors);
    match figment.extract::<T>() {
        Ok(raw) => Ok(Extracted {
            raw,
            unknown: errors,
        }),
        Err(e) => {
            errors.extend(describe_figment_error(&e).map(ConfigError::Syntax));
            Err(errors)
        }
    }
}

fn describe_figment_error(e: &figment::Error) -> impl Iterator<Item = String> {
    e.clone().into_iter().map(|err| {
        let key = err.path.join(".");
        if key.is_empty() {
            err.kind.to_string()
        } else {
            format!("{key}: {}", err.kind)
        }
    })
}

fn unknown_keys(tree: &Dict, errors: &mut Vec<ConfigError>) {
    check_table(tree, "", keys::TOP, errors);
    for (table, allowed) in [
        ("oidc", keys::OIDC),
        ("session", keys::SESSION),
        ("headers", keys::HEADERS),
        ("assertion", keys::ASSERTION),
        ("bearer", keys::BEARER),
        ("scim", keys::SCIM),
        ("audit", keys::AUDIT),
    ] {
        if let Some(Value::Dict(_, d)) = tree.get(table) {
            check_table(d, table, allowed, errors);
        }
    }
    if let Some(Value::Dict(_, session)) = tree.get("session") {
        if let Some(Value::Array(_, domains)) = session.get("domains") {
            for (i, d) in domains.iter().enumerate() {
                if let Value::Dict(_, d) = d {
                    let prefix = format!("session.domains[{i}]");
                    check_table(d, &prefix, keys::SESSION_DOMAIN, errors);
                }
            }
        }
    }
    rules_unknown_keys(tree, errors);
}

/// Unknown keys inside `[policies.*]` and `[[hosts]]` (main file or include file).
fn rules_unknown_keys(tree: &Dict, errors: &mut Vec<ConfigError>) {
    if let Some(Value::Dict(_, policies)) = tree.get("policies") {
        for (name, p) in policies {
            if let Value::Dict(_, d) = p {
                check_table(d, &format!("policies.{name}"), keys::POLICY, errors);
            }
        }
    }
    if let Some(Value::Array(_, hosts)) = tree.get("hosts") {
        for (i, h) in hosts.iter().enumerate() {
            let Value::Dict(_, d) = h else { continue };
            let prefix = format!("hosts[{i}]");
            check_table(d, &prefix, keys::HOST, errors);
            if let Some(Value::Array(_, roles)) = d.get("claim_roles") {
                for (j, r) in roles.iter().enumerate() {
                    if let Value::Dict(_, rd) = r {
                        let key = format!("{prefix}.claim_roles[{j}]");
                        check_table(rd, &key, keys::CLAIM_ROLE, errors);
                    }
                }
            }
            if let Some(Value::Dict(_, hd)) = d.get("headers") {
                check_table(hd, &format!("{prefix}.headers"), keys::HEADERS, errors);
            }
            if let Some(Value::Array(_, rules)) = d.get("rules") {
                for (j, r) in rules.iter().enumerate() {
                    if let Value::Dict(_, rd) = r {
                        check_table(rd, &format!("{prefix}.rules[{j}]"), keys::RULE, errors);
                    }
                }
            }
        }
    }
}

fn check_table(table: &Dict, prefix: &str, allowed: &[&str], errors: &mut Vec<ConfigError>) {
    let qualify = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    for key in table.keys().filter(|k| !allowed.contains(&k.as_str())) {
        errors.push(ConfigError::UnknownKey {
            key: qualify(key),
            suggestion: nearest(key, allowed).map(|s| qualify(&s)),
        });
    }
}

/// The valid key an unknown one was probably meant to be: its snake_case
/// spelling (caddy-security's camelCase names), else the closest by edit distance.
fn nearest(key: &str, allowed: &[&str]) -> Option<String> {
    let snake = to_snake_case(key);
    if allowed.contains(&snake.as_str()) {
        return Some(snake);
    }
    allowed
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 2).max(2) || key.starts_with(*k) || k.starts_with(key))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

fn to_snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}
