//! Where each configuration error was written: the file and line of the key
//! it names, or the environment variable that overrode the file. Only the
//! error path runs this; a configuration that loads is never re-read.
//!
//! Errors name their key as text (`hosts[0].allowed_networks[1]`, after the
//! include file: `conf.d/x.toml: hosts[0].policy`); the key is looked up in
//! the file's TOML syntax tree, as deep as it exists (a missing key is
//! placed at its table). JSON files are named without a line.

use std::ops::Range;
use std::path::{Path, PathBuf};

use figment::{Figment, Source};
use toml_edit::{Array, ArrayOfTables, ImDocument, Item, TableLike, Value};

use super::error::{Located, Location};
use super::{load, ConfigError, ConfigErrors};

/// Every error placed, then sorted by file and line, each once. `main` is
/// the main file, `main_label` its name as messages say it, `figment` what
/// it was read with (for the environment's overrides).
pub(super) fn locate(
    errors: Vec<ConfigError>,
    main: &Path,
    main_label: &str,
    figment: &Figment,
) -> Option<ConfigErrors> {
    let places = Places {
        main,
        main_label,
        base: main.parent().map(Path::to_path_buf).unwrap_or_default(),
        figment,
    };
    let located = errors
        .into_iter()
        .map(|error| Located {
            at: places.place(&error),
            error,
        })
        .collect();
    let mut errors = ConfigErrors::from_located(located)?;
    errors.sort_by_place(|file| usize::from(file != main_label));
    Some(errors)
}

struct Places<'a> {
    main: &'a Path,
    main_label: &'a str,
    base: PathBuf,
    figment: &'a Figment,
}

impl Places<'_> {
    fn place(&self, error: &ConfigError) -> Option<Location> {
        let subject = error.subject()?;
        let (file, key) = split_subject(&subject, self.main_label);
        let file = file.unwrap_or(self.main_label);
        let is_main = file == self.main_label;
        if is_main {
            if let Some(var) = self.env_var(&key) {
                return Some(Location::Env { var });
            }
        }
        let path = if is_main {
            self.main.to_path_buf()
        } else {
            self.base.join(file)
        };
        Some(Location::File {
            file: file.to_string(),
            line: line_of(&path, &key),
        })
    }

    /// The environment variable a key's value came from, when it did not
    /// come from the file (`POCKETGATE_OIDC__ISSUER`). Arrays are not
    /// looked into: the variable sets the whole array.
    fn env_var(&self, key: &[&str]) -> Option<String> {
        let tables: Vec<&str> = key
            .iter()
            .copied()
            .take_while(|s| s.parse::<usize>().is_err())
            .collect();
        if tables.is_empty() {
            return None;
        }
        let meta = self.figment.find_metadata(&tables.join("."))?;
        if matches!(meta.source, Some(Source::File(_))) {
            return None;
        }
        let upper: Vec<String> = tables.iter().map(|s| s.to_ascii_uppercase()).collect();
        Some(format!("POCKETGATE_{}", upper.join("__")))
    }
}

/// The include file a subject names (`conf.d/x.toml: hosts[0]`), if any,
/// and the segments of its key (`["hosts", "0"]`); no segments when the
/// subject is no key (a syntax error's text). A type error's message has
/// its key first, dotted (`hosts.0.policy: invalid type`).
fn split_subject<'s>(subject: &'s str, main_label: &str) -> (Option<&'s str>, Vec<&'s str>) {
    let (file, rest) = match subject.split_once(": ") {
        Some((file, rest)) if is_file_label(file, main_label) => (Some(file), rest),
        _ => (None, subject),
    };
    let key = rest.split([':', ' ']).next().unwrap_or_default();
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'));
    if !is_key {
        return (file, Vec::new());
    }
    let segments = key.split(['.', '[', ']']).filter(|s| !s.is_empty());
    (file, segments.collect())
}

fn is_file_label(text: &str, main_label: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text == main_label || lower.ends_with(".toml") || lower.ends_with(".json")
}

/// The line of `key` in the TOML file at `path` (1-based): of the deepest
/// part of it the file has. For a file that does not parse, the line of the
/// syntax error.
fn line_of(path: &Path, key: &[&str]) -> Option<usize> {
    if load::is_json(path) {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let span = match ImDocument::parse(text.as_str()) {
        Err(e) => e.span(),
        Ok(doc) => span_of(doc.as_table(), key),
    }?;
    Some(line_at(&text, span.start))
}

fn line_at(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.matches('\n').count() + 1
}

/// A step on the way down a TOML document.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a dyn TableLike),
    Tables(&'a ArrayOfTables),
    Array(&'a Array),
    Leaf,
}

impl<'a> Node<'a> {
    fn of_item(item: &'a Item) -> Node<'a> {
        match item {
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::Value(v) => Node::of_value(v),
            Item::None => Node::Leaf,
        }
    }

    fn of_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(t) => Node::Table(t),
            Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }

    /// The child `segment` names and where it is written: a table's header,
    /// a key's name, an array element's value.
    fn child(self, segment: &str) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match self {
            Node::Table(t) => {
                let (k, item) = t.get_key_value(segment)?;
                let header = item.as_table().and_then(|t| t.span());
                Some((Node::of_item(item), header.or_else(|| k.span())))
            }
            Node::Tables(a) => {
                let t = a.get(segment.parse().ok()?)?;
                Some((Node::Table(t), t.span()))
            }
            Node::Array(a) => {
                let v = a.get(segment.parse().ok()?)?;
                Some((Node::of_value(v), v.span()))
            }
            Node::Leaf => None,
        }
    }
}

/// Where the deepest existing part of `key` is written.
fn span_of(root: &dyn TableLike, key: &[&str]) -> Option<Range<usize>> {
    let mut node = Node::Table(root);
    let mut found = None;
    for segment in key {
        let Some((next, span)) = node.child(segment) else {
            break;
        };
        node = next;
        found = span.or(found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
listen = \"127.0.0.1:4180\"

[policies.admins]
allowed_groups = [\"admins\"]

[[hosts]]
host = \"a.example.com\"

[[hosts]]
host = \"b.example.com\"
allowed_networks = [
  \"10.0.0.0/8\",
  \"10.0.0/33\",
]
claim_roles = [{ claim = \"groups\", value = \"x\" }]
";

    fn line(key: &str) -> Option<usize> {
        let doc = ImDocument::parse(FILE).unwrap();
        let (_, key) = split_subject(key, "pocketgate.toml");
        span_of(doc.as_table(), &key).map(|s| line_at(FILE, s.start))
    }

    #[rustfmt::skip]
    #[test]
    fn a_key_is_found_on_its_line() {
        assert_eq!(line("listen"), Some(1));
        assert_eq!(line("policies.admins"), Some(3));
        assert_eq!(line("policies.admins.allowed_groups"), Some(4));
        assert_eq!(line("hosts[1]"), Some(9));
        assert_eq!(line("hosts[1].host"), Some(10));
        assert_eq!(line("hosts[1].allowed_networks[1]"), Some(13));
        assert_eq!(line("hosts.1.allowed_networks: invalid type"), Some(11));
        assert_eq!(line("hosts[1].claim_roles[0].valeu"), Some(15));
        // A missing key is placed at its table; no key at all, nowhere.
        assert_eq!(line("hosts[0].policy"), Some(6));
        assert_eq!(line("session.secret (line 2)"), None);
        assert_eq!(line("TOML parse error at line 1"), None);
    }

    #[rustfmt::skip]
    #[test]
    fn a_subject_names_its_include_file() {
        assert_eq!(split_subject("conf.d/x.toml: hosts[0].policy", "pocketgate.toml"), (Some("conf.d/x.toml"), vec!["hosts", "0", "policy"]));
        assert_eq!(split_subject("pocketgate.toml: hosts[3]", "pocketgate.toml"), (Some("pocketgate.toml"), vec!["hosts", "3"]));
        assert_eq!(split_subject("hosts[0].policy", "pocketgate.toml"), (None, vec!["hosts", "0", "policy"]));
    }
}
