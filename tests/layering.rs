//! The module graph is one-way, as DESIGN.md "Layout" draws it: `domain` ←
//! `policy` ← `config` ← `session`/`oidc`/`assertion` ← `gate` ← `http` ←
//! `reload` ← `cli`/`main`. Every module under `src/` has a place in
//! [`LAYERS`] and names only modules of its own layer or below, with no circle
//! anywhere. The two lowest layers stay pure: no HTTP server or client, no
//! async runtime, no clock. These tests read the source, so a violation fails
//! the build's tests, not a review.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The module's source files, without its unit tests (`tests.rs` and
/// `tests/`: tests may load a configuration).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().is_some_and(|n| n == "tests") {
            continue;
        }
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

/// Every module of the crate, lowest layer first. A module may name modules of
/// its own layer or of a lower one; a new module gets its place here.
const LAYERS: &[&[&str]] = &[
    // Parsed values: imports nothing of ours.
    &["domain"],
    // The compiled rules and the pure decision engine.
    &["policy"],
    // Outside input made into policy's types: files (config), proxy headers (request).
    &["config", "request"],
    // Services built from the configuration.
    &["session", "oidc", "assertion", "telemetry", "scim"],
    // One request's whole answer, actix-free; the audit records of its events.
    &["gate", "audit"],
    // The actix-web handlers and `respond`.
    &["http"],
    // Swapping the configuration of a running server.
    &["reload"],
    // What plugs into http from above, and the command line.
    &["demo", "cli"],
    &["main"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules under `src/`: a `name.rs`, a `name/` folder, or both.
fn modules() -> BTreeSet<String> {
    fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "lib")
        .collect()
}

/// A module's production source: its files without unit tests (`tests.rs`,
/// `tests/`, an inline `mod tests`) and without comments.
fn production_code(module: &str) -> String {
    let dir = src().join(module);
    let mut files = if dir.is_dir() {
        sources(&dir)
    } else {
        Vec::new()
    };
    let file = src().join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut code = String::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        // An inline test module comes last in its file.
        let text = text
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or_default();
        for line in text.lines() {
            code.push_str(line.split("//").next().unwrap_or_default());
            code.push('\n');
        }
    }
    code
}

/// The first path segment after each `crate::` (or `pocketgate::` in the
/// binary), braces included: `crate::{config::Runtime, policy}` names both.
fn named_modules(code: &str, root: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(root) {
        let rest = &code[at + root.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut segment_start = true;
            for (i, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => segment_start = true,
                    c if segment_start && (c.is_alphabetic() || c == '_') => {
                        found.insert(identifier(&list[i..]));
                        segment_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier(rest));
        }
    }
    found
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Each module present under `src/` with the modules of ours it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    modules()
        .into_iter()
        .map(|module| {
            let code = production_code(&module);
            let root = if module == "main" {
                "pocketgate::"
            } else {
                "crate::"
            };
            let mut names = named_modules(&code, root);
            names.remove(&module);
            names.retain(|n| n != "self" && n != "super");
            (module, names)
        })
        .collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: Vec<String> = modules()
        .into_iter()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a place in LAYERS (tests/layering.rs): {unplaced:?}"
    );
    for module in [
        "domain", "policy", "config", "session", "oidc", "http", "cli",
    ] {
        assert!(
            modules().contains(module),
            "{module} is gone: update LAYERS"
        );
    }
}

#[test]
fn every_module_names_only_its_own_layer_or_lower() {
    let mut upward = Vec::new();
    for (module, names) in graph() {
        let Some(layer) = layer_of(&module) else {
            continue;
        };
        for name in names {
            match layer_of(&name) {
                Some(l) if l <= layer => {}
                Some(_) => upward.push(format!("{module} names {name}, a layer above it")),
                None => upward.push(format!(
                    "{module} names {name}, which is not a module of ours"
                )),
            }
        }
    }
    assert!(upward.is_empty(), "{}", upward.join("\n"));
}

/// A circle in `graph`, written `a -> b -> a`, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    // Depth-first from each module: reaching it again is a circle.
    for start in graph.keys() {
        let mut stack = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let module = path.last().copied().unwrap_or(start);
            for next in graph.get(module).into_iter().flatten() {
                if next == start {
                    let names: Vec<&str> = path.iter().map(|m| m.as_str()).collect();
                    return Some(format!("{} -> {start}", names.join(" -> ")));
                }
                if seen.insert(next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
    None
}

#[test]
fn no_module_circle_within_a_layer() {
    if let Some(circle) = find_circle(&graph()) {
        panic!("a circle: {circle}");
    }
}

#[test]
fn the_layering_test_reads_imports_of_every_shape_and_finds_circles() {
    let code =
        "use crate::domain::X;\nuse crate::{config::{A, B}, policy};\nlet x = crate::oidc::f();";
    let names: Vec<String> = named_modules(code, "crate::").into_iter().collect();
    assert_eq!(names, ["config", "domain", "oidc", "policy"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g = BTreeMap::<String, BTreeSet<String>>::new();
        for (from, to) in edges {
            g.entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        g
    };
    assert_eq!(
        find_circle(&graph(&[("session", "config"), ("oidc", "session")])),
        None
    );
    assert_eq!(
        find_circle(&graph(&[
            ("oidc", "session"),
            ("session", "assertion"),
            ("assertion", "oidc")
        ]))
        .as_deref(),
        Some("assertion -> oidc -> session -> assertion")
    );
}

/// Imports the lowest layers must never have, whatever module they name.
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
fn policy_and_domain_are_pure() {
    for module in ["policy", "domain"] {
        let found = offences(module, IMPURE);
        assert!(
            found.is_empty(),
            "{module} must stay pure:\n{}",
            found.join("\n")
        );
    }
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
