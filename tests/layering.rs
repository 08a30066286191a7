//! The module graph is one-way: `domain` ← `policy` ← `config` ← `session`/`oidc`
//! ← `gate` ← `http` ← `cli`. The two lowest layers stay pure: no HTTP server or client,
//! no async runtime, no clock, and `policy` never names `config`. This test
//! reads their source, so a violation fails the build's tests, not a review.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::fs;
use std::path::{Path, PathBuf};

/// The module's source files, without its `tests.rs` (tests may load a configuration).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.to_string_lossy().ends_with("tests.rs")
        {
            out.push(path);
        }
    }
    out
}

/// Where a module's code lines name one of `forbidden`: `src/<module>.rs`
/// and everything under `src/<module>/`.
fn offences(module: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut files = if root.is_dir() {
        sources(&root)
    } else {
        Vec::new()
    };
    let file = root.with_extension("rs");
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no sources for {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in forbidden {
                if code.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    found
}

const IMPURE: &[&str] = &[
    "actix",
    "reqwest",
    "tokio",
    "SystemTime::now",
    "Instant::now",
    "std::fs",
    "std::net::Tcp",
];

#[test]
fn policy_is_pure_and_never_names_config() {
    let mut forbidden = IMPURE.to_vec();
    forbidden.extend([
        "crate::config",
        "crate::http",
        "crate::session",
        "crate::oidc",
    ]);
    let found = offences("policy", &forbidden);
    assert!(
        found.is_empty(),
        "policy must stay pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn domain_is_a_pure_leaf() {
    let mut forbidden = IMPURE.to_vec();
    forbidden.extend([
        "crate::config",
        "crate::policy",
        "crate::request",
        "crate::http",
        "crate::session",
        "crate::oidc",
    ]);
    let found = offences("domain", &forbidden);
    assert!(
        found.is_empty(),
        "domain must import nothing of ours:\n{}",
        found.join("\n")
    );
}

#[test]
fn http_never_names_the_demo() {
    let found = offences("http", &["demo"]);
    assert!(
        found.is_empty(),
        "the demo plugs into http through ServeOptions::extra_routes, not the other way:\n{}",
        found.join("\n")
    );
}

#[test]
fn gate_never_names_actix_http_or_the_command_line() {
    let found = offences(
        "gate",
        &["actix", "crate::http", "crate::cli", "crate::demo"],
    );
    assert!(
        found.is_empty(),
        "gate is the actix-free answer to one request; http calls it, never the other way:\n{}",
        found.join("\n")
    );
}

#[test]
fn nothing_below_the_gate_names_it() {
    let found: Vec<String> = ["domain", "policy", "config", "session", "oidc", "assertion"]
        .iter()
        .flat_map(|module| offences(module, &["crate::gate"]))
        .collect();
    assert!(
        found.is_empty(),
        "the gate sits above domain, policy, config, session, oidc and assertion:\n{}",
        found.join("\n")
    );
}
