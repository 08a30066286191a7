//! One run reports every mistake of every file, each at its file and line,
//! sorted by file and line, each once; an unknown key refuses the
//! configuration even when everything else compiles (fail closed).

use std::path::Path;

use super::base;
use crate::config::{load, load_str, ConfigErrors, Location};

/// `pocketgate.toml` in `dir` holding `text`, loaded.
fn load_file(dir: &Path, text: &str) -> ConfigErrors {
    let path = dir.join("pocketgate.toml");
    std::fs::write(&path, text).unwrap();
    load(&path).unwrap_err()
}

/// A main file that includes `conf.d/x.toml` (holding `include`) by
/// `patterns`, with `extra` after the shared test configuration: its text
/// and the errors of loading it.
fn load_with_include(patterns: &str, include: &str, extra: &str) -> (String, ConfigErrors) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(dir.path().join("conf.d/x.toml"), include).unwrap();
    let text = format!("include = {patterns}\n{}", base(extra));
    let e = load_file(dir.path(), &text);
    (text, e)
}

/// The line (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// Each error as `file:line: key`, in the order reported.
fn places(errors: &ConfigErrors) -> Vec<String> {
    errors
        .located()
        .iter()
        .map(|l| {
            let text = l.to_string();
            let mut parts = text.splitn(4, ':');
            let (file, line, key) = (parts.next(), parts.next(), parts.next());
            format!(
                "{}:{}:{}",
                file.unwrap_or(""),
                line.unwrap_or(""),
                key.unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_misspelt_key_a_bad_cidr_and_an_undefined_policy_are_three_errors_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = base(
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"nobody\"\nbypass_path = [\"/x\"]\nallowed_networks = [\"10.0.0.0/33\"]\n",
    );
    let e = load_file(dir.path(), &text);
    let (policy, key, cidr) = (
        line_of(&text, "\"nobody\""),
        line_of(&text, "bypass_path"),
        line_of(&text, "10.0.0.0/33"),
    );
    assert_eq!(
        places(&e),
        [
            format!("pocketgate.toml:{policy}: hosts[0].policy"),
            format!("pocketgate.toml:{key}: hosts[0].bypass_path"),
            format!("pocketgate.toml:{cidr}: hosts[0].allowed_networks[0]"),
        ],
        "{e}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains("(did you mean `hosts[0].bypass_paths`?)"),
        "{shown}"
    );
    assert!(shown.contains("fix: add [policies.nobody]"), "{shown}");
    assert!(shown.contains("fix: write e.g. \"10.0.0.0/8\""), "{shown}");
}

#[test]
fn an_unknown_key_alone_refuses_a_configuration_that_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        base("[[hosts]]\nhost = \"a.example.com\"\npolicy = \"users\"\nbypass_path = [\"/x\"]\n");
    let e = load_file(dir.path(), &text);
    assert_eq!(e.located().len(), 1, "{e}");
    let line = line_of(&text, "bypass_path");
    assert_eq!(
        e.located()[0].at,
        Some(Location::File {
            file: "pocketgate.toml".into(),
            line: Some(line)
        })
    );
    // Text that is no file: the same refusal, without a place.
    let e = load_str(&text, &|_| None).unwrap_err();
    assert_eq!(e.located().len(), 1, "{e}");
    assert_eq!(e.located()[0].at, None);
}

#[test]
fn errors_of_several_files_are_sorted_by_file_and_line() {
    // The main file's mistakes: an unknown key below an undefined policy.
    let (text, e) = load_with_include(
        r#"["conf.d/*.toml"]"#,
        "[[hosts]]\nhost = \"x.example.com\"\npolicy = \"nobody\"\nallowed_network = [\"10.0.0.0/8\"]\n",
        "[[hosts]]\nhost = \"a.example.com\"\npolicy = \"nobody\"\nbypass_path = [\"/x\"]\n",
    );
    assert_eq!(
        places(&e),
        [
            format!(
                "pocketgate.toml:{}: hosts[0].policy",
                line_of(&text, "\"nobody\"")
            ),
            format!(
                "pocketgate.toml:{}: hosts[0].bypass_path",
                line_of(&text, "bypass_path")
            ),
            // The include file's unknown key does not stop its host from
            // being compiled: its undefined policy is reported too.
            "conf.d/x.toml:3: hosts[0].policy".to_string(),
            "conf.d/x.toml:4: hosts[0].allowed_network".to_string(),
        ],
        "{e}"
    );
}

#[test]
fn the_same_error_twice_is_reported_once() {
    // Two patterns, one file: merged once, so its error is found once.
    let (_, e) = load_with_include(
        r#"["conf.d/*.toml", "conf.d/x.toml"]"#,
        "[[hosts]]\nhost = \"x.example.com\"\npolicy = \"users\"\nbogus = 1\n",
        "",
    );
    assert_eq!(places(&e), ["conf.d/x.toml:4: hosts[0].bogus"], "{e}");
    // Two equal errors at one place are one.
    let twice = e.located().iter().chain(e.located()).cloned().collect();
    assert_eq!(ConfigErrors::from_located(twice), Some(e));
}
