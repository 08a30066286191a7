//! `max_age` and `amr` (step-up) on `[[hosts]]` and `[[hosts.rules]]`:
//! compiled key by key, a rule's value over its host's; every mistake
//! reported at its file and line with the fix.

use std::path::Path;

use super::*;
use crate::config::load as load_path;

/// A host with `host_keys`, and one rule on `/admin` with `rule_keys`.
fn step_up_host(host_keys: &str, rule_keys: &str) -> String {
    base(&format!(
        "[[hosts]]\nhost = \"app.example.com\"\npolicy = \"users\"\n{host_keys}\n\
         [[hosts.rules]]\npaths = [\"/admin\"]\n{rule_keys}\n"
    ))
}

fn load_file(dir: &Path, text: &str) -> String {
    let path = dir.join("pocketgate.toml");
    std::fs::write(&path, text).unwrap();
    load_path(&path).unwrap_err().to_string()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_rules_value_wins_over_the_hosts_key_by_key() {
    let rt = load(&step_up_host(
        "max_age = \"1h\"\namr = [\"phr\", \"otp\"]",
        "policy = \"admins\"\nmax_age = \"10m\"",
    ))
    .unwrap()
    .value;
    let h = &rt.rules.hosts()[0];
    assert_eq!(h.step_up.max_age, Some(3600));
    assert_eq!(h.step_up.amr, ["phr", "otp"]);
    let r = &h.rules[0].step_up;
    assert_eq!(r.max_age, Some(600));
    assert_eq!(r.max_age_from.as_deref(), Some("hosts[0].rules[0]"));
    assert_eq!(r.amr, ["phr", "otp"], "amr comes from the host");
    assert_eq!(r.amr_from.as_deref(), Some("hosts[0]"));
    // A rule without a policy of its own... is an error already; a rule
    // with amr alone keeps the host's max_age.
    let rt = load(&step_up_host(
        "max_age = \"1h\"",
        "policy = \"admins\"\namr = [\"phr\"]",
    ))
    .unwrap()
    .value;
    let r = &rt.rules.hosts()[0].rules[0].step_up;
    assert_eq!(
        (r.max_age, r.amr.as_slice()),
        (Some(3600), ["phr".to_string()].as_slice())
    );
}

#[test]
fn a_host_without_the_keys_asks_nothing() {
    let rt = load(&step_up_host("", "policy = \"admins\""))
        .unwrap()
        .value;
    assert!(rt.rules.hosts()[0].step_up.is_empty());
    assert!(rt.rules.hosts()[0].rules[0].step_up.is_empty());
}

#[rustfmt::skip]
#[test]
fn bad_values_are_errors_at_their_line_with_the_fix() {
    let cases: [(&str, &str, &str, &str); 6] = [
        ("max_age = \"soon\"", "policy = \"admins\"", "hosts[0].max_age", "fix: e.g. max_age = \"10m\""),
        ("max_age = \"0s\"", "policy = \"admins\"", "hosts[0].max_age", "at least one second"),
        ("amr = []", "policy = \"admins\"", "hosts[0].amr", "fix: name the methods"),
        ("", "policy = \"admins\"\namr = [\"\"]", "hosts[0].rules[0].amr[0]", "is not an authentication method name"),
        ("", "action = \"bypass\"\nmax_age = \"10m\"", "hosts[0].rules[0].max_age", "fix: drop max_age here"),
        ("", "action = \"deny\"\namr = [\"phr\"]", "hosts[0].rules[0].amr", "fix: drop amr here"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (host_keys, rule_keys, key, fix) in cases {
        let text = step_up_host(host_keys, rule_keys);
        let e = load_file(dir.path(), &text);
        let needle = if host_keys.is_empty() { rule_keys.lines().last().unwrap() } else { host_keys };
        let at = format!("pocketgate.toml:{}: {key}", line_of(&text, needle));
        assert!(e.contains(&at), "want {at:?} in:\n{e}");
        assert!(e.contains(fix), "want {fix:?} in:\n{e}");
    }
}
