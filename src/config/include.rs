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

/// How messages name the main file: its file name.
pub(super) fn main_label(main: &Path) -> Arc<str> {
    main.file_name()
        .map_or_else(
            || main.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
        .into()
}

/// Read every file `raw.include` matches (relative to the directory of
/// `main`) and merge its policies and hosts into `raw`: policies by name (a
/// name defined twice is an error naming both files), hosts appended after
/// the main file's, file by file in sorted path order. Every include file is
/// read even after an error, and an include file with unknown keys is still
/// merged (its errors go to `errors`), so that one run names every mistake;
/// the caller refuses the configuration when `errors` is not empty.
pub(super) fn merge(main: &Path, raw: &mut RawConfig, errors: &mut Vec<ConfigError>) -> Included {
    let base = main.parent().unwrap_or(Path::new(""));
    let main_label = main_label(main);
    raw.main_file = Some(main_label.clone());
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
            if let Some(f) = fragment(&path, &label, errors) {
                add(raw, f, &label, &mut defined, errors);
            }
        }
    }
    Included { warnings, sources }
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

/// One include file, read and key-checked; every error names it and goes
/// to `errors`. `None` when nothing could be read from it.
fn fragment(path: &Path, label: &str, errors: &mut Vec<ConfigError>) -> Option<RawFragment> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            errors.push(ConfigError::UnreadableInclude {
                file: label.to_string(),
                reason: e.to_string(),
            });
            return None;
        }
    };
    let figment = if load::is_json(path) {
        Figment::from(Json::string(&text))
    } else {
        Figment::from(Toml::string(&text))
    };
    let (raw, found) = match load::extract_fragment(&figment) {
        Ok(extracted) => (Some(extracted.raw), extracted.unknown),
        Err(found) => (None, found),
    };
    errors.extend(found.into_iter().map(|e| in_file(e, label)));
    raw
}

/// An error of an include file's text, said of the file.
fn in_file(e: ConfigError, label: &str) -> ConfigError {
    match e {
        // figment says where the text came from; the file name says it better.
        ConfigError::Syntax(s) => ConfigError::Syntax(
            s.trim_end_matches(" in TOML source string")
                .trim_end_matches(" in JSON source string")
                .to_string(),
        ),
        e => e,
    }
    .in_file(label)
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
