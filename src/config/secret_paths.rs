//! Where the configuration keeps its secrets: the paths, not the contents.
//! `pocket-id setup` creates those files, so it must know them before they
//! exist, and a normal load would refuse a configuration whose secret file
//! is missing.

use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::{compile, from_file, ConfigErrors, Loaded, Runtime};

/// The secret-file keys as written (after the environment's overrides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretPaths {
    /// `oidc.client_secret_file`.
    pub client_secret_file: Option<PathBuf>,
    /// `oidc.client_auth = "none"`: a public client, PKCE only, no secret.
    pub public_client: bool,
    /// `scim.token_file`.
    pub scim_token_file: Option<PathBuf>,
}

impl SecretPaths {
    fn of(raw: &RawConfig) -> SecretPaths {
        SecretPaths {
            client_secret_file: raw.oidc.client_secret_file.as_deref().map(PathBuf::from),
            public_client: raw.oidc.client_auth.as_deref() == Some("none"),
            scim_token_file: raw.scim.token_file.as_deref().map(PathBuf::from),
        }
    }
}

/// The configuration at `path` compiled as `check --offline` compiles it (no
/// secret or key file opened: the result must never serve), with the paths
/// of its secret files.
pub fn load_with_secret_paths(path: &Path) -> Result<Loaded<(Runtime, SecretPaths)>, ConfigErrors> {
    from_file(path, |raw| {
        let paths = SecretPaths::of(raw);
        compile::runtime(raw, &|name| std::env::var(name).ok(), true).map(|l| Loaded {
            value: (l.value, paths),
            warnings: l.warnings,
            sources: l.sources,
        })
    })
}
