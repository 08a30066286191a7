//! `include = ["conf.d/*.toml"]`: more files holding `[policies.*]` and
//! `[[hosts]]`, found by glob relative to the main file and merged into its
//! raw configuration before anything is compiled.
//!
//! Each include file is read and key-checked on its own, so that every
//! mistake in it names the file; its values are judged later by `compile`,
//! like the main file's (its hosts and policies carry their file along for
//! that). Environment overrides apply to the main file only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::providers::{Format, Json, Toml};
use figment::Figment;

use super::load;
use super::raw::{HostOrigin, RawConfig, RawFragment};
use super::{ConfigError, Loaded, Sources};

/// What the include files add besides their policies and hosts: the
/// warnings and the list of files and directories read.
pub(super) struct Included {
    warnings: Vec<String>,
    sources: Sources,
}

impl Included {
    /// Put the include warnings first and the main and include files (and
    /// glob directories) before the secret files compiling read.
    pub(super) fn attach<T>(self, mut loaded: Loaded<T>) -> Loaded<T> {
        let mut warnings = self.warnings;
        warnings.append(&mut loaded.warnings);
        loaded.warnings = warnings;
        let mut sources = self.sources;
        sources.files.append(&mut loaded.sources.files);
        loaded.sources = sources;
        loaded
    }
}

/// Read every file `raw.include` matches (relative to the directory of
/// `main`) and merge its policies and hosts into `raw`: policies by name (a
/// name defined twice is an error naming both files), hosts appended after
/// the main file's, file by file in sorted path order. Every include file is
/// read even after an error, so that one run names every mistake.
pub(super) fn merge(main: &Path, raw: &mut RawConfig) -> Result<Included, Vec<ConfigError>> {
    let base = main.parent().unwrap_or(Path::new(""));
    let main_label: Arc<str> = main
        .file_name()
        .map_or_else(
            || main.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
        .into();
    raw.main_file = Some(main_label.clone());
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut sources = Sources {
        files: vec![main.to_path_buf()],
        ..Sources::default()
    };
    // Which file defined each policy, for the duplicate error.
    let mut defined: BTreeMap<String, Arc<str>> = raw
        .policies
        .keys()
        .map(|name| (name.clone(), main_label.clone()))
        .collect();
    // Files already merged (the main file too, should a pattern match it),
    // so two patterns matching one file do not define everything in it twice.
    let mut seen: Vec<PathBuf> = vec![canonical(main)];
    for (i, pattern) in std::mem::take(&mut raw.include).iter().enumerate() {
        let key = format!("include[{i}]");
        if let Some(dir) = base_dir(base, pattern).filter(|d| d.is_dir()) {
            if !sources.dirs.contains(&dir) {
                sources.dirs.push(dir);
            }
        }
        let files = match expand(base, &key, pattern) {
            Ok(files) => files,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if files.is_empty() {
            warnings.push(format!("{key}: {pattern:?} matches no file"));
        }
        for path in files {
            let id = canonical(&path);
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let label: Arc<str> = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string()
                .into();
            sources.files.push(path.clone());
            sources.includes.push(path.clone());
            match fragment(&path, &label) {
                Ok(f) => add(raw, f, &label, &mut defined, &mut errors),
                Err(mut e) => errors.append(&mut e),
            }
        }
    }
    if errors.is_empty() {
        Ok(Included { warnings, sources })
    } else {
        Err(errors)
    }
}

/// The files one pattern matches, sorted; directories are skipped. A
/// directory that does not exist matches nothing (that is not an error).
fn expand(base: &Path, key: &str, pattern: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let full = if Path::new(pattern).is_absolute() || base.as_os_str().is_empty() {
        pattern.to_string()
    } else {
        // The main file's directory is literal text, whatever characters it holds.
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(&base.to_string_lossy())
        )
    };
    let options = glob::MatchOptions {
        // `*` does not match editor and dotfile leftovers (`.x.toml`), as in a shell.
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let paths = glob::glob_with(&full, options).map_err(|e| ConfigError::BadInclude {
        key: key.to_string(),
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })?;
    let mut files = Vec::new();
    for entry in paths {
        match entry {
            Ok(path) if path.is_dir() => {}
            Ok(path) => files.push(path),
            // A directory on the way that cannot be listed.
            Err(e) => {
                return Err(ConfigError::UnreadableInclude {
                    file: e.path().display().to_string(),
                    reason: e.error().to_string(),
                })
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The directory a pattern searches: its leading components without glob
/// characters (`conf.d` for `conf.d/**/*.toml`), below `base` unless absolute.
/// A file appearing there (or below, with `**`) may change what it matches.
fn base_dir(base: &Path, pattern: &str) -> Option<PathBuf> {
    let pattern = Path::new(pattern);
    let mut dir = if pattern.is_absolute() {
        PathBuf::new()
    } else if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base.to_path_buf()
    };
    let parent = pattern.parent()?;
    for part in parent.components() {
        let text = part.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        dir.push(part);
    }
    Some(dir)
}

/// One include file, read and key-checked; every error names it.
fn fragment(path: &Path, label: &str) -> Result<RawFragment, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::UnreadableInclude {
            file: label.to_string(),
            reason: e.to_string(),
        }]
    })?;
    let figment = if load::is_json(path) {
        Figment::from(Json::string(&text))
    } else {
        Figment::from(Toml::string(&text))
    };
    load::extract_fragment(&figment).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| match e {
                // figment says where the text came from; the file name says it better.
                ConfigError::Syntax(s) => ConfigError::Syntax(
                    s.trim_end_matches(" in TOML source string")
                        .trim_end_matches(" in JSON source string")
                        .to_string(),
                ),
                e => e,
            })
            .map(|e| e.in_file(label))
            .collect()
    })
}

/// Merge one include file's policies and hosts into the configuration.
fn add(
    raw: &mut RawConfig,
    fragment: RawFragment,
    label: &Arc<str>,
    defined: &mut BTreeMap<String, Arc<str>>,
    errors: &mut Vec<ConfigError>,
) {
    for (name, mut policy) in fragment.policies {
        if let Some(first) = defined.get(&name) {
            errors.push(ConfigError::DuplicatePolicy {
                file: label.to_string(),
                name,
                first: first.to_string(),
            });
            continue;
        }
        defined.insert(name.clone(), label.clone());
        policy.origin = Some(label.clone());
        raw.policies.insert(name, policy);
    }
    for (index, mut host) in fragment.hosts.into_iter().enumerate() {
        host.origin = Some(HostOrigin {
            file: label.clone(),
            index,
        });
        raw.hosts.push(host);
    }
}

/// A file's identity for "already merged": its canonical path when it has one.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
