//! `check --offline` ([`load_offline`]): the secret and key files are named
//! but never opened, everything else is checked as by [`load`].

use super::assert_mentions;
use crate::config::{load, load_offline};

fn write_config(dir: &std::path::Path, policy: &str, session_secret: &str) -> std::path::PathBuf {
    let path = dir.join("pocketgate.json");
    let text = format!(
        r#"{{
  "public_url": "https://auth.example.com",
  "oidc": {{ "issuer": "https://id.example.com", "client_id": "pocketgate", "client_secret_file": "/nonexistent/pocketgate/client" }},
  "session": {{ {session_secret} "cookie_domain": "example.com" }},
  "assertion": {{ "header": "X-Pocketgate-Assertion", "key_file": "/nonexistent/pocketgate/key.pem" }},
  "policies": {{ "admins": {{ "allowed_groups": ["admins"] }} }},
  "hosts": [ {{ "host": "grafana.example.com", "policy": "{policy}" }} ]
}}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

const SESSION_SECRET_FILE: &str = r#""secret_file": "/nonexistent/pocketgate/session","#;

#[test]
fn files_that_only_the_serving_machine_has_are_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "admins", SESSION_SECRET_FILE);
    let e = load(&path).unwrap_err().to_string();
    for key in [
        "oidc.client_secret_file",
        "session.secret_file",
        "assertion.key_file",
    ] {
        assert!(e.contains(key), "{key} in {e}");
    }
    let loaded = load_offline(&path).unwrap();
    // Only the configuration itself was read.
    assert_eq!(loaded.sources.files, vec![path.clone()]);
    let rt = loaded.value;
    assert_eq!(rt.session.secrets.len(), 1);
    let keys = &rt.assertion.unwrap().key_file.unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert!(keys.path.ends_with("key.pem"));
}

#[test]
fn everything_else_is_still_checked_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "admin", SESSION_SECRET_FILE);
    let e = load_offline(&path).unwrap_err().to_string();
    assert_mentions(&e, &["hosts[0].policy", "\"admin\" is not defined"]);
    // A secret that is not configured at all is still missing.
    let path = write_config(dir.path(), "admins", "");
    let e = load_offline(&path).unwrap_err().to_string();
    assert_mentions(&e, &["session.secret: missing"]);
}
