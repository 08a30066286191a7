//! Cookies: the attributes every pocketgate cookie carries, splitting values
//! too long for one cookie into numbered chunks and joining them again, and
//! reading the request's `Cookie` headers without copying more than needed.

use cookie::{Cookie, SameSite};

/// Largest value one cookie carries before the session is split into `name_0`, `name_1`, ...
pub const CHUNK_SIZE: usize = 3800;

/// At most this many chunks are read or written (bounds work on hostile input); a value
/// that needs more is an error on write.
pub const MAX_CHUNKS: usize = 8;

/// Longest value read from or written to cookies; anything longer could not
/// have been written by [`write_cookies`] and is refused before decoding.
pub(super) const MAX_SEALED_LEN: usize = CHUNK_SIZE * MAX_CHUNKS;

/// Attributes shared by every cookie pocketgate sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The cookie name (or, for chunked values, the prefix of `name_0`, `name_1`, ...).
    pub name: String,
    /// The `Domain` attribute, if cookies are shared across subdomains.
    pub domain: Option<String>,
    /// Whether to set `Secure` (whenever `public_url` is https).
    pub secure: bool,
    /// The `Max-Age` of the cookie.
    pub lifetime: std::time::Duration,
}

/// A value too long to fit in [`MAX_CHUNKS`] cookies of [`CHUNK_SIZE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cookie value of {len} bytes does not fit in {MAX_CHUNKS} cookies of {CHUNK_SIZE} bytes \
     (at most {max} bytes); request fewer claims or groups from the provider"
)]
pub struct TooLarge {
    /// Length of the refused value in bytes.
    pub len: usize,
    /// The most that fits, in bytes.
    pub max: usize,
}

/// Set-Cookie values that store `value` under `settings.name`: one cookie when it fits in
/// [`CHUNK_SIZE`], else `name_0`, `name_1`, ...; every member of the family in `present`
/// that is not overwritten gets a removal cookie, so stale chunks are never joined.
pub fn write_cookies(
    settings: &CookieSettings,
    value: &str,
    present: &[&str],
) -> Result<Vec<Cookie<'static>>, TooLarge> {
    let chunks = split_chunks(value);
    if chunks.len() > MAX_CHUNKS {
        return Err(TooLarge {
            len: value.len(),
            max: MAX_SEALED_LEN,
        });
    }
    let written: Vec<(String, &str)> = if chunks.len() <= 1 {
        vec![(settings.name.clone(), value)]
    } else {
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| (chunk_name(&settings.name, i), chunk))
            .collect()
    };
    let removals: Vec<Cookie<'static>> = family(&settings.name)
        .filter(|member| present.contains(&member.as_str()))
        .filter(|member| !written.iter().any(|(name, _)| name == member))
        .map(|member| removal_cookie(settings, member))
        .collect();
    let mut cookies: Vec<Cookie<'static>> = written
        .into_iter()
        .map(|(name, chunk)| base_cookie(settings, name, chunk.to_owned()))
        .collect();
    cookies.extend(removals);
    Ok(cookies)
}

/// Removal cookies for every member of the `settings.name` family found in `present`
/// (used by logout and after a session fails to open).
pub fn clear_cookies(settings: &CookieSettings, present: &[&str]) -> Vec<Cookie<'static>> {
    family(&settings.name)
        .filter(|member| present.contains(&member.as_str()))
        .map(|member| removal_cookie(settings, member))
        .collect()
}

/// Reassemble a value from request cookies: `name` if present, else `name_0`, `name_1`, ...
/// up to the first gap and at most [`MAX_CHUNKS`]; `None` if neither `name` nor `name_0` exists.
pub fn read_cookie_value(name: &str, cookies: &[(&str, &str)]) -> Option<String> {
    let find = |wanted: &str| {
        cookies
            .iter()
            .find(|(candidate, _)| *candidate == wanted)
            .map(|(_, value)| *value)
    };
    if let Some(value) = find(name) {
        return Some(value.to_owned());
    }
    let mut joined = String::new();
    let mut found = false;
    for i in 0..MAX_CHUNKS {
        match find(&chunk_name(name, i)) {
            Some(chunk) => {
                joined.push_str(chunk);
                found = true;
            }
            None => break,
        }
    }
    found.then_some(joined)
}

/// The `(name, value)` pairs of the request's `Cookie` headers whose name
/// `keep` accepts, borrowed from the headers: cookies of other applications
/// are skipped without being copied. Malformed pieces are skipped.
pub fn request_pairs<'h>(
    cookie_headers: impl IntoIterator<Item = &'h str>,
    keep: impl Fn(&str) -> bool,
) -> Vec<(&'h str, &'h str)> {
    let mut out = Vec::new();
    for header in cookie_headers {
        for cookie in Cookie::split_parse(header).filter_map(Result::ok) {
            if let (Some(name), Some(value)) = (cookie.name_raw(), cookie.value_raw()) {
                if keep(name) {
                    out.push((name, value));
                }
            }
        }
    }
    out
}

/// Whether `candidate` is `name` or one of its chunks `name_0` .. `name_7`.
pub fn is_family(name: &str, candidate: &str) -> bool {
    match candidate.strip_prefix(name) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('_')
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < MAX_CHUNKS && rest.len() <= 3),
        None => false,
    }
}

/// Parse a raw `Cookie:` request header (several headers may be joined by `"; "`) into
/// owned `(name, value)` pairs, skipping malformed pieces.
pub fn parse_cookie_header(header: &str) -> Vec<(String, String)> {
    request_pairs([header], |_| true)
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Split `value` into pieces of at most [`CHUNK_SIZE`] bytes on character boundaries;
/// an empty value is one empty piece.
fn split_chunks(value: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut rest = value;
    loop {
        if rest.len() <= CHUNK_SIZE {
            chunks.push(rest);
            return chunks;
        }
        // A UTF-8 character is at most 4 bytes, so a boundary exists in the last 4.
        let mut end = CHUNK_SIZE;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
        // Stop early on hostile sizes: one chunk past the limit already means TooLarge.
        if chunks.len() > MAX_CHUNKS {
            return chunks;
        }
    }
}

/// `name_i`.
fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}_{i}")
}

/// Every cookie name that can hold (part of) a value stored under `name`.
fn family(name: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(name.to_owned()).chain((0..MAX_CHUNKS).map(move |i| chunk_name(name, i)))
}

/// A cookie with the attributes every pocketgate cookie carries.
pub fn cookie(settings: &CookieSettings, name: String, value: String) -> Cookie<'static> {
    base_cookie(settings, name, value)
}

/// A cookie that deletes `name` (same Path and Domain as when it was set).
pub fn removal(settings: &CookieSettings, name: String) -> Cookie<'static> {
    removal_cookie(settings, name)
}

fn base_cookie(settings: &CookieSettings, name: String, value: String) -> Cookie<'static> {
    let max_age = i64::try_from(settings.lifetime.as_secs()).unwrap_or(i64::MAX);
    let mut builder = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure)
        .max_age(cookie::time::Duration::seconds(max_age));
    if let Some(domain) = &settings.domain {
        builder = builder.domain(domain.clone());
    }
    builder.build()
}

/// A cookie that deletes `name` (same Path and Domain as when it was set).
fn removal_cookie(settings: &CookieSettings, name: String) -> Cookie<'static> {
    let mut cookie = base_cookie(settings, name, String::new());
    cookie.make_removal();
    cookie
}
