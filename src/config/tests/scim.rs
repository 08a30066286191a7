//! `[scim]`: off by default, the token read from its file, the cookie
//! store refused, `check`'s warnings about a weak or exposed token.

use std::os::unix::fs::PermissionsExt;

use super::*;

/// A token file holding `text`, with `mode`.
fn token_file(text: &str, mode: u32) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

fn with_scim(path: &std::path::Path) -> String {
    base(&format!("[scim]\ntoken_file = \"{}\"\n", path.display()))
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123";

#[test]
fn off_unless_configured() {
    assert_eq!(load(&base("")).unwrap().value.scim, None);
}

#[test]
fn the_token_is_the_files_first_line() {
    let f = token_file(&format!("\n  {TOKEN}  \nignored\n"), 0o600);
    let loaded = load(&with_scim(f.path())).unwrap();
    let scim = loaded.value.scim.unwrap();
    assert_eq!(scim.token.expose(), TOKEN);
    assert_eq!(scim.token_file, f.path());
    assert!(
        !loaded.warnings.iter().any(|w| w.contains("scim")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_short_or_exposed_token_is_warned_about() {
    let f = token_file("short-token\n", 0o644);
    let loaded = load(&with_scim(f.path())).unwrap();
    assert_warned(&loaded.warnings, |w| {
        w.contains("scim.token_file") && w.contains("11 characters")
    });
    assert_warned(&loaded.warnings, |w| {
        w.contains("readable by others") && w.contains("chmod 600")
    });
}

#[test]
fn an_empty_or_missing_file_is_refused() {
    let f = token_file("\n\n", 0o600);
    assert_refused(&with_scim(f.path()), &["scim.token_file", "holds no token"]);
    assert_refused(
        &base("[scim]\ntoken_file = \"/nonexistent/scim-token\"\n"),
        &["scim.token_file", "/nonexistent/scim-token"],
    );
}

#[test]
fn the_cookie_store_cannot_keep_a_directory() {
    let f = token_file(TOKEN, 0o600);
    let toml = with_scim(f.path()).replace("[session]\n", "[session]\nstore = \"cookie\"\n");
    assert_refused(
        &toml,
        &["scim.token_file", "session.store = \"cookie\"", "fix:"],
    );
}

#[test]
fn unknown_scim_keys_are_named() {
    assert_refused(
        &base("[scim]\ntoken_fil = \"/x\"\n"),
        &["scim.token_fil", "token_file"],
    );
}
