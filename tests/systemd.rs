//! The shipped systemd unit (examples/systemd/pocketgate.service): it runs
//! `pocketgate serve -c /etc/pocketgate/pocketgate.toml` with the NixOS
//! module's hardening, and `systemd-analyze verify` accepts it where
//! systemd-analyze exists.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "test code: a panic is a failed test"
)]

use std::process::Command;

const UNIT: &str = include_str!("../examples/systemd/pocketgate.service");
const MODULE: &str = include_str!("../nix/module.nix");

/// `Key=value` lines of the unit's `[Service]` section.
fn service() -> Vec<(&'static str, &'static str)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in UNIT.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not Key=value: {line}"));
        if section == "[Service]" {
            out.push((key, value));
        }
    }
    out
}

#[test]
fn the_unit_serves_the_configuration_in_etc() {
    let service = service();
    let get = |k: &str| -> Vec<&str> {
        service
            .iter()
            .filter(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(
        get("ExecStart"),
        ["/usr/local/bin/pocketgate serve -c /etc/pocketgate/pocketgate.toml"]
    );
    assert_eq!(
        get("ExecStartPre"),
        ["/usr/local/bin/pocketgate check -c /etc/pocketgate/pocketgate.toml"]
    );
    assert!(get("ExecReload").contains(&"/bin/kill -HUP $MAINPID"));
    assert_eq!(
        get("LoadCredential"),
        [
            "client_secret:/etc/pocketgate/client-secret",
            "session_secret:/etc/pocketgate/session-secret"
        ]
    );
    assert_eq!(get("StateDirectory"), ["pocketgate"]);
    assert!(UNIT.contains("WantedBy=multi-user.target"));
}

/// Every hardening option of the NixOS unit is in the shipped one.
#[test]
fn the_unit_is_hardened_as_the_nixos_one() {
    let start = MODULE.find("DynamicUser = true;").unwrap();
    let end = start + MODULE[start..].find("SystemCallFilter").unwrap();
    let keys: Vec<&str> = MODULE[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert!(keys.len() > 20, "{keys:?}");
    let service = service();
    for key in keys.iter().chain(&["SystemCallFilter"]) {
        if *key == "ReadWritePaths" {
            continue; // only for a state_dir outside /var/lib/pocketgate
        }
        assert!(
            service.iter().any(|(k, _)| k == key),
            "{key} is set by nix/module.nix but not in examples/systemd/pocketgate.service"
        );
    }
}

/// `systemd-analyze verify`, with the binary path pointed at this build;
/// skipped (with a note) where systemd-analyze is not installed.
#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: verify skipped (the parse tests still ran)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("pocketgate.service");
    std::fs::write(
        &unit,
        UNIT.replace(
            "/usr/local/bin/pocketgate",
            env!("CARGO_BIN_EXE_pocketgate"),
        ),
    )
    .unwrap();
    let out = Command::new("timeout")
        .args(["30", "systemd-analyze", "verify"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown or misspelt keys are only warned about: none may be.
    assert!(
        !stderr.contains("pocketgate.service"),
        "systemd-analyze complains: {stderr}"
    );
}

/// The configuration the unit serves, as shipped, passes `check` (offline:
/// the credentials exist only inside the running unit).
#[test]
fn the_minimal_configuration_passes_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketgate"))
        .args(["check", "--offline", "-c"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/systemd/pocketgate.toml"
        ))
        .env_remove("POCKETGATE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("callback https://auth.example.com/callback"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// The guide's commands create what the unit can read: with `DynamicUser`
/// the service is not root, so the configuration's directory and file must
/// be readable to others, while the secret files stay root's (systemd reads
/// them for `LoadCredential` before dropping privileges).
#[test]
fn the_deploy_guide_leaves_the_configuration_readable_to_the_transient_user() {
    let guide = include_str!("../docs/src/deploy.md");
    assert!(service().contains(&("DynamicUser", "yes")));
    let installs: Vec<&str> = guide
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("install ") && l.contains("/etc/pocketgate"))
        .collect();
    let mode_of = |needle: &str| {
        let line = installs
            .iter()
            .find(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("the guide installs no {needle}: {installs:#?}"));
        let mode = line.split_whitespace().skip_while(|w| *w != "-m").nth(1);
        u32::from_str_radix(mode.expect("an explicit -m MODE"), 8).unwrap()
    };
    let dir = mode_of("/etc/pocketgate");
    let config = mode_of("/etc/pocketgate/pocketgate.toml");
    assert_eq!(
        dir & 0o005,
        0o005,
        "the directory must be searchable by others: {dir:o}"
    );
    assert_eq!(
        config & 0o004,
        0o004,
        "the configuration must be readable by others: {config:o}"
    );
    for secret in [
        "/etc/pocketgate/session-secret",
        "/etc/pocketgate/client-secret",
    ] {
        assert_eq!(mode_of(secret) & 0o077, 0, "{secret} must stay root's");
    }
    // The guide creates the directory before it copies anything into it.
    let first = |needle: &str| guide.find(needle).unwrap();
    assert!(first("install -d -m") < first("/etc/pocketgate/pocketgate.toml\n"));
}
