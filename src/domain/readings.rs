//! The ways a server may read one request path.
//!
//! Proxies and backends disagree about what a path means: one decodes `%2F`
//! into a separator, another resolves `..` after decoding, Tomcat drops
//! `;parameters` from segments, most leave everything alone. Path rules must
//! not depend on which of them sits behind the proxy, so a path is matched in
//! every reading below, and when the readings disagree about which rule
//! applies, nothing is decided in the client's favour (see `policy`).
//!
//! A path already in normal form with no `%` and no `;` (nearly every real
//! request) has exactly one reading and costs no allocation.
//!
//! Hosts with `case_insensitive_paths` match prefixes and the rules' index
//! against every reading with its letter case folded ([`fold_case`]); their
//! regexes fold case themselves, on the readings as read. Folding comes after the readings are made, so
//! that `/%41dmin` reads as `/admin` too, and never decides whether a path is
//! in normal form (that is a property of the path as sent).

use std::borrow::Cow;

use super::path::is_normal_path;

/// The readings of one path: as sent, and up to three rewritings of it.
#[derive(Debug, Clone)]
pub struct PathReadings<'a> {
    raw: &'a str,
    normal: bool,
    others: Vec<String>,
}

impl<'a> PathReadings<'a> {
    /// Every distinct reading of `path` (no query, no fragment, not decoded):
    /// - as sent;
    /// - RFC 3986 normalisation: escapes of unreserved characters decoded,
    ///   hex digits upper-cased, dot segments removed, empty segments dropped;
    /// - fully decoded (`%2F` and `\` as separators), `;parameters` dropped,
    ///   then dot segments removed and empty segments dropped;
    /// - fully decoded, nothing removed.
    pub fn of(path: &'a str) -> PathReadings<'a> {
        if is_plain(path) {
            return PathReadings {
                raw: path,
                normal: true,
                others: Vec::new(),
            };
        }
        let normal = is_normal_path(path);
        let mut others = Vec::new();
        if !normal || path.contains(['%', ';']) {
            for reading in [rfc3986(path), resolved(&decoded(path)), decoded(path)] {
                if reading != path && !others.contains(&reading) {
                    others.push(reading);
                }
            }
        }
        PathReadings {
            raw: path,
            normal,
            others,
        }
    }

    /// The path as sent.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the path as sent is in normal form (`is_normal_path`): only
    /// such paths may bypass.
    pub fn is_normal(&self) -> bool {
        self.normal
    }

    /// Whether the path has one reading only.
    pub fn is_single(&self) -> bool {
        self.others.is_empty()
    }

    /// Every reading, the path as sent first.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.raw).chain(self.others.iter().map(String::as_str))
    }
}

/// The common case, in one cheap pass: a path in normal form with no `%`
/// and no `;`, so with one reading only. Starts with `/`; printable ASCII
/// without `\`, `#`, `%` or `;`; no `//` and no segment starting with a dot.
/// (False for some normal paths, `/.well-known` for one: those take the
/// full check.)
pub fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut prev = 0u8;
    for &b in bytes {
        // One table load per byte; `//` and `/.` need the previous byte.
        let allowed = PLAIN.get(usize::from(b)).copied().unwrap_or(false);
        if !allowed || (prev == b'/' && (b == b'/' || b == b'.')) {
            return false;
        }
        prev = b;
    }
    true
}

/// The bytes [`is_plain`] lets through: printable ASCII but `\`, `#`, `%`, `;`.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build"
)]
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = !matches!(b as u8, b'\\' | b'#' | b'%' | b';');
        b += 1;
    }
    t
};

/// One reading of a path with its letter case folded, for hosts whose
/// backends match paths case-insensitively (`case_insensitive_paths`): ASCII
/// letters lower-cased, every other character lower-cased, upper-cased and
/// lower-cased again, so that the spellings such backends equate (`ſ` and
/// `S`, the Kelvin sign and `k`, `ẞ` and `ß`) fold to one. Folds more than a
/// backend might (`ß` reads as `ss`), which can only make readings disagree,
/// never bypass: only a path in normal form bypasses, and its readings are
/// ASCII. Prefixes and the rules' index meet the folded text; regexes meet
/// the reading as read (compiled case-insensitively, they fold by Unicode's
/// simple folding, which keeps `ß` apart from `ss`). Hex digits of escapes
/// fold too, which is harmless: prefixes hold no `%`. Borrowed when nothing
/// changes.
pub fn fold_case(path: &str) -> Cow<'_, str> {
    if !path
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(
                c.to_lowercase()
                    .flat_map(char::to_uppercase)
                    .flat_map(char::to_lowercase),
            );
        }
    }
    Cow::Owned(out)
}

/// RFC 3986 6.2.2 normalisation plus `//` collapsing. Malformed escapes stay as sent.
fn rfc3986(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '%' {
            if let Some(b) = escape_at(path, i) {
                chars.nth(1);
                let ch = char::from(b);
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(ch);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
                continue;
            }
        }
        out.push(c);
    }
    resolve_segments(&out, |s| s)
}

/// Every valid escape decoded, `\` read as `/`; invalid UTF-8 replaced.
fn decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, escape_at(path, i)) {
            (b'%', Some(d)) => {
                out.push(d);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace('\\', "/")
}

/// Dot segments removed, empty segments dropped and `;parameters` cut off, as
/// servers that route on decoded paths do. Trailing spaces around dots are
/// ignored (`.. ` is `..` to Windows-style servers).
fn resolved(path: &str) -> String {
    resolve_segments(path, |s| s.split(';').next().unwrap_or(s))
}

fn resolve_segments(path: &str, name: impl Fn(&str) -> &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_string();
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in rest.split('/') {
        let n = name(seg);
        trailing = true;
        match n.trim_end_matches(' ') {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            _ => {
                kept.push(n);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing || kept.is_empty() {
        out.push('/');
    }
    out
}

/// The byte a `%XY` escape at `i` stands for, if it is one.
fn escape_at(s: &str, i: usize) -> Option<u8> {
    if s.as_bytes().get(i) != Some(&b'%') {
        return None;
    }
    let hex = s.get(i + 1..i + 3)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests;
