//! The files `pocket-id setup` reads and writes: the admin API key (read,
//! checked), the client secret and the SCIM token (written once, mode 0600,
//! never rewritten in place).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::SetupError;

/// The API key in `path`, and a warning when others may read the file.
pub(crate) fn api_key(path: &Path) -> Result<(String, Option<String>), SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| SetupError::ApiKeyFile {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(SetupError::ApiKeyEmpty { path: path.into() });
    }
    Ok((key.to_string(), world_readable(path)))
}

#[cfg(unix)]
fn world_readable(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{} is readable by every user of this machine (mode {:o}), and the key it holds administers Pocket ID; fix: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn world_readable(_: &Path) -> Option<String> {
    None
}

/// The first non-empty line of `path`, if the file exists and has one.
pub(crate) fn read_secret(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

/// A fresh SCIM token: 32 bytes from the OS CSPRNG, base64url.
pub(crate) fn new_token() -> Result<String, SetupError> {
    let mut buf = [0u8; 32];
    getrandom::getrandom(&mut buf).map_err(|e| SetupError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// Write `secret` to `path`, readable by its owner only: a new file, or (with
/// `replace`) a new file renamed over the old one, so no reader sees half a
/// secret and no other mode ever applies.
pub(crate) fn write_secret(path: &Path, secret: &str, replace: bool) -> Result<(), SetupError> {
    let fail = |e: std::io::Error| SetupError::WriteFile {
        path: path.into(),
        reason: e.to_string(),
    };
    if !replace {
        return create(path, secret).map_err(fail);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.pocketgate-new"));
    let _ = std::fs::remove_file(&tmp);
    create(&tmp, secret).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

fn create(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn a_new_secret_file_is_the_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("client-secret");
        write_secret(&p, "s3cret", false).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(read_secret(&p).as_deref(), Some("s3cret"));
    }

    #[test]
    fn an_existing_file_is_not_overwritten_unless_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("client-secret");
        std::fs::write(&p, "old\n").unwrap();
        assert!(matches!(
            write_secret(&p, "new", false),
            Err(SetupError::WriteFile { .. })
        ));
        assert_eq!(read_secret(&p).as_deref(), Some("old"));
        write_secret(&p, "new", true).unwrap();
        assert_eq!(read_secret(&p).as_deref(), Some("new"));
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("token");
        let e = write_secret(&p, "t", false).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }

    #[test]
    fn api_key_missing_empty_and_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        assert!(matches!(api_key(&p), Err(SetupError::ApiKeyFile { .. })));
        std::fs::write(&p, " \n").unwrap();
        assert!(matches!(api_key(&p), Err(SetupError::ApiKeyEmpty { .. })));
        std::fs::write(&p, "k3y\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let (key, warning) = api_key(&p).unwrap();
            assert_eq!(key, "k3y");
            assert!(warning.unwrap().contains("chmod 600"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(api_key(&p).unwrap(), ("k3y".to_string(), None));
    }

    #[test]
    fn tokens_are_32_random_bytes_base64url() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, new_token().unwrap());
    }
}
