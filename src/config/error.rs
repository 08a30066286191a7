//! Everything that can be wrong with a configuration, each naming the key, the
//! value and the fix, and the list of them one `check` run reports.

use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be used. The `Display` text is what operators
/// read: key path first, then what is wrong, then how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {reason} (fix: pass -c PATH or set POCKETGATE_CONFIG)"
    )]
    ConfigFile { path: PathBuf, reason: String },
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: unknown key{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    #[error("{key}: missing (fix: {fix})")]
    Missing { key: String, fix: String },
    #[error("{key}: {value:?} {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: policy {name:?} is not defined (defined: {defined}; fix: add [policies.{name}] or use one of those)")]
    UndefinedPolicy {
        key: String,
        name: String,
        defined: String,
    },
    #[error("{key}: {value:?} is not a network in CIDR notation: {reason} (fix: write e.g. \"10.0.0.0/8\" or \"192.168.1.10\")")]
    BadCidr {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: {value:?} is not a valid regular expression:\n{reason}")]
    BadRegex {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: host {host:?} is already configured at {first} (fix: merge the two entries)")]
    DuplicateHost {
        key: String,
        host: String,
        first: String,
    },
    #[error("{key}: {reason}")]
    Conflict { key: String, reason: String },
    #[error("{file}: policies.{name}: policy {name:?} is already defined in {first} (fix: keep one of the two definitions, or rename one and the hosts that use it)")]
    DuplicatePolicy {
        file: String,
        name: String,
        first: String,
    },
    #[error("{key}: {pattern:?} is not a valid glob pattern: {reason} (fix: e.g. \"conf.d/*.toml\" or \"conf.d/**/*.toml\")")]
    BadInclude {
        key: String,
        pattern: String,
        reason: String,
    },
    #[error("{file}: cannot read include file: {reason} (fix: make it readable by pocketgate, or move it out of the include pattern's reach)")]
    UnreadableInclude { file: String, reason: String },
    #[error("{file}: {key}: not allowed in an include file (fix: include files hold [policies.*] and [[hosts]] only; move it to the main file)")]
    NotInInclude { file: String, key: String },
    #[error("{key}: secret is {len} bytes, at least 32 are needed (fix: `pocketgate gen-secret`)")]
    ShortSecret { key: String, len: usize },
    #[error("{key}: cannot read secret file {path}: {reason}")]
    UnreadableSecretFile {
        key: String,
        path: String,
        reason: String,
    },
    #[error("{key}: {value:?} is not an absolute http(s) URL (fix: write it with its scheme, e.g. \"https://auth.example.com\")")]
    RelativePublicUrl { key: String, value: String },
    #[error("{key}: {domain:?} does not cover {url_key}'s host {host:?}, so the session cookie set at /callback would never be sent back (fix: use a parent domain of {host:?}, e.g. {suggestion:?})")]
    CookieDomainMismatch {
        /// The cookie domain's key (`session.cookie_domain`, `session.domains[0].cookie_domain`).
        key: String,
        /// The public URL's key it must cover.
        url_key: String,
        domain: String,
        host: String,
        suggestion: String,
    },
}

impl ConfigError {
    /// The same error, said of an include file: its key (or message) is
    /// prefixed with the file. Only load-time errors (unknown keys, syntax and
    /// type errors) are made about a whole fragment; others carry their file already.
    pub(super) fn in_file(self, file: &str) -> ConfigError {
        match self {
            ConfigError::UnknownKey { key, suggestion } => ConfigError::UnknownKey {
                key: format!("{file}: {key}"),
                suggestion,
            },
            ConfigError::Syntax(s) => ConfigError::Syntax(format!("{file}: {s}")),
            ConfigError::NotInInclude { key, .. } => ConfigError::NotInInclude {
                file: file.to_string(),
                key,
            },
            other => ConfigError::Syntax(format!("{file}: {other}")),
        }
    }
}

impl ConfigError {
    /// What the error is about, as its message names it: a key path
    /// (`hosts[0].policy`), after its include file when it has one
    /// (`conf.d/x.toml: hosts[0].policy`); a type error's message starts
    /// with it. `None` for errors about no key (an unreadable main file).
    pub(super) fn subject(&self) -> Option<String> {
        match self {
            ConfigError::ConfigFile { .. } => None,
            ConfigError::Syntax(s) => Some(s.clone()),
            ConfigError::DuplicatePolicy { file, name, .. } => {
                Some(format!("{file}: policies.{name}"))
            }
            ConfigError::UnreadableInclude { file, .. } => Some(format!("{file}: ")),
            ConfigError::NotInInclude { file, key } => Some(format!("{file}: {key}")),
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::UndefinedPolicy { key, .. }
            | ConfigError::BadCidr { key, .. }
            | ConfigError::BadRegex { key, .. }
            | ConfigError::DuplicateHost { key, .. }
            | ConfigError::Conflict { key, .. }
            | ConfigError::BadInclude { key, .. }
            | ConfigError::ShortSecret { key, .. }
            | ConfigError::UnreadableSecretFile { key, .. }
            | ConfigError::RelativePublicUrl { key, .. }
            | ConfigError::CookieDomainMismatch { key, .. } => Some(key.clone()),
        }
    }
}

/// Where a mistake was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// A configuration file (as the messages name it: the main file's name,
    /// an include file relative to it) and the line, when it could be found.
    File { file: String, line: Option<usize> },
    /// An environment variable (`POCKETGATE_OIDC__ISSUER`) that overrode the file.
    Env { var: String },
}

/// One error and where it was written (`None`: nowhere in particular, or
/// text that is no file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub error: ConfigError,
    pub at: Option<Location>,
}

impl fmt::Display for Located {
    /// `file:line: key: what (fix: ...)`, the form editors and terminals
    /// link; the message's own file prefix is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.error.to_string();
        match &self.at {
            None => f.write_str(&text),
            Some(Location::Env { var }) => write!(f, "environment {var}: {text}"),
            Some(Location::File { file, line }) => {
                let rest = text
                    .strip_prefix(file.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .unwrap_or(&text);
                match line {
                    Some(line) => write!(f, "{file}:{line}: {rest}"),
                    None => write!(f, "{file}: {rest}"),
                }
            }
        }
    }
}

/// Every error one load found: sorted by file and line once located
/// (errors about no place first, then each file's, then the environment's),
/// each once. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<Located>);

impl ConfigErrors {
    /// The errors; at least one.
    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter().map(|l| &l.error)
    }

    /// The errors with where each was written; at least one.
    pub fn located(&self) -> &[Located] {
        &self.0
    }

    /// `None` when there is nothing to report.
    pub(super) fn from_vec(errors: Vec<ConfigError>) -> Option<ConfigErrors> {
        let located = errors
            .into_iter()
            .map(|error| Located { error, at: None })
            .collect();
        ConfigErrors::from_located(located)
    }

    /// `None` when there is nothing to report; else each error once.
    pub(super) fn from_located(errors: Vec<Located>) -> Option<ConfigErrors> {
        let mut unique: Vec<Located> = Vec::with_capacity(errors.len());
        for e in errors {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        (!unique.is_empty()).then_some(ConfigErrors(unique))
    }

    /// Sort by where: `rank` orders the files (the main one first). Stable,
    /// so errors of one line keep the order they were found in.
    pub(super) fn sort_by_place(&mut self, rank: impl Fn(&str) -> usize) {
        self.0.sort_by_key(|l| match &l.at {
            None => (0, 0, 0),
            Some(Location::File { file, line }) => (1, rank(file), line.unwrap_or(0)),
            Some(Location::Env { .. }) => (2, 0, 0),
        });
    }

    /// The errors, to be located or joined with more.
    pub(super) fn into_vec(self) -> Vec<Located> {
        self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![Located { error: e, at: None }])
    }
}

impl fmt::Display for ConfigErrors {
    /// One error a line (a regex error's own lines indented below it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
