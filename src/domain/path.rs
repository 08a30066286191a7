//! Request paths in normal form, and the path prefixes bypass rules name.

use std::fmt;

use super::Invalid;

/// A request path (no query, no fragment, not decoded) that is in the normal
/// form bypass rules are matched against: see [`is_normal_path`]. Borrowed
/// from the request; checking costs one pass over the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalPath<'a>(&'a str);

impl<'a> NormalPath<'a> {
    /// `Some` when `path` is in normal form.
    pub fn new(path: &'a str) -> Option<NormalPath<'a>> {
        is_normal_path(path).then_some(NormalPath(path))
    }

    /// The path.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// A path prefix from the configuration (`bypass_paths`, `rules.paths`):
/// starts with `/`, in normal form, without `?`, `#`, `%` or `\`, stored
/// without its trailing slash (except `/` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix(String);

impl PathPrefix {
    /// Parse a configured prefix.
    pub fn parse(raw: &str) -> Result<PathPrefix, Invalid> {
        if !raw.starts_with('/') {
            return Err(Invalid::new(format!(
                "must start with '/' (fix: \"/{raw}\")"
            )));
        }
        if raw.contains(['?', '#', '%', '\\']) || !is_normal_path(raw) {
            return Err(Invalid::new(
                "must be a plain path in normal form (no '.'/'..' segments, no '//', no '?', '#', '%' or '\\')",
            ));
        }
        let trimmed = if raw.len() > 1 {
            raw.trim_end_matches('/')
        } else {
            raw
        };
        Ok(PathPrefix(trimmed.to_string()))
    }

    /// The prefix with its letters lower-cased, for a host whose paths are
    /// matched with their case folded (`case_insensitive_paths`). A prefix
    /// is ASCII, so this is what [`super::fold_case`] makes of it.
    pub fn folded(self) -> PathPrefix {
        PathPrefix(self.0.to_ascii_lowercase())
    }

    /// `/api` matches `/api` and `/api/...`, never `/apix`; `/` matches everything.
    pub fn matches(&self, path: NormalPath<'_>) -> bool {
        self.matches_reading(path.0)
    }

    /// [`Self::matches`] for any reading of a path (see `PathReadings`),
    /// normal form or not: the same segment-boundary rule on the text.
    pub fn matches_reading(&self, path: &str) -> bool {
        match path.strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || self.0 == "/",
            None => false,
        }
    }

    /// Whether every path this prefix matches is also matched by `other`
    /// (`/api/admin` is covered by `/api`).
    pub fn is_covered_by(&self, other: &PathPrefix) -> bool {
        other.matches(NormalPath(&self.0))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `path` is in the normal form bypass rules are matched against:
/// starts with `/`; no empty segment (`//`); no `.` or `..` segment, also not
/// with `;parameters`, no segment made only of dots (or dots and `%20`); no
/// percent-encoded `/`, `\`, `.`, `;`, `#`, `?`, `%`, control or non-ASCII
/// byte, no malformed `%` escape; no literal `\`, `#`, control character,
/// space or non-ASCII byte. Escapes are in RFC 3986's normal form too:
/// upper-case hex digits (6.2.2.1), and never of an unreserved character
/// (letter, digit, `-`, `_`, `~`), whose only normal spelling is itself (6.2.2.2).
///
/// Anything else might be routed by proxy or backend to another path than the
/// one we matched, or match a `bypass_resources` regex its plain spelling
/// does not (`^/share/.{8}$` and `/share/%61bcde`), so it never bypasses.
pub fn is_normal_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut rest = bytes;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b <= 0x20 || b >= 0x7f || b == b'\\' || b == b'#' {
            return false;
        }
        if b == b'%' {
            let decoded = match rest {
                [h, l, tail @ ..] => match (upper_hex(*h), upper_hex(*l)) {
                    (Some(h), Some(l)) => {
                        rest = tail;
                        h * 16 + l
                    }
                    _ => return false,
                },
                _ => return false,
            };
            if decoded < 0x20
                || matches!(decoded, b'/' | b'\\' | b'.' | b'#' | b'?' | b'%' | b';')
                || decoded >= 0x7f
                || decoded.is_ascii_alphanumeric()
                || matches!(decoded, b'-' | b'_' | b'~')
            {
                return false;
            }
        }
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        let name = seg.split(';').next().unwrap_or(seg);
        // A trailing slash (empty last segment) is fine; any other empty segment is `//`.
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || is_dot_like(name) {
            return false;
        }
    }
    true
}

/// `.`, `..`, and anything some servers collapse like them: only dots (`...`),
/// or dots followed by encoded spaces (`..%20`, trimmed by Windows-style servers).
fn is_dot_like(name: &str) -> bool {
    let mut core = name;
    while let Some(rest) = core.strip_suffix("%20") {
        core = rest;
    }
    !core.is_empty() && core.bytes().all(|b| b == b'.')
}

/// The value of an upper-case hex digit; a lower-case one is not normal form.
fn upper_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
