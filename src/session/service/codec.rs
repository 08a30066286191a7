//! The cookie codec: what goes into the browser's cookies and comes back.
//! Stateless sessions are the sealed [`Session`] itself (chunked when long,
//! the ID token beside it in a logout-hint cookie); with a store, the cookie
//! holds only a sealed random id, which opens to the [`StoreKey`]. Tokens
//! kept in store records are sealed and opened here too.
//!
//! It never looks in a store and never decides: a value that does not open
//! is no session (logged at debug), and the caller goes on without one.

use cookie::Cookie;

use super::super::store::StoreKey;
use super::super::{
    cookies, logout_hint_cookie_name, CookieSettings, LogoutHint, Purpose, Refused, Session,
    SessionKeys, TooLarge,
};

/// Bytes of session id (256 bits).
const ID_LEN: usize = 32;

/// A fresh random session id and its store key.
pub(super) fn new_id() -> Result<([u8; ID_LEN], StoreKey), getrandom::Error> {
    let mut id = [0u8; ID_LEN];
    getrandom::getrandom(&mut id)?;
    Ok((id, StoreKey::of(&id)))
}

/// The store key behind a sealed session id; `None` (logged at debug) when
/// it does not open or is no session id.
pub(super) fn open_id(keys: &SessionKeys, sealed: &str) -> Option<StoreKey> {
    match keys.open(Purpose::SessionId, sealed) {
        Ok(id) if id.len() == ID_LEN => Some(StoreKey::of(&id)),
        Ok(_) => {
            tracing::debug!(why = %Refused::NotThisKind, "session cookie refused");
            None
        }
        Err(why) => {
            tracing::debug!(%why, "session cookie refused");
            None
        }
    }
}

/// The cookies of a session kept in a store: the sealed `id`, and the
/// removal of a logout hint (`hint_name`) left from a stateless session
/// (`present`: the names of our cookies the browser sent; stale chunks get
/// removal cookies).
pub(super) fn id_cookies(
    keys: &SessionKeys,
    cookie: &CookieSettings,
    hint_name: String,
    id: &[u8],
    present: &[&str],
) -> Result<Vec<Cookie<'static>>, TooLarge> {
    let sealed = keys.seal(Purpose::SessionId, id);
    let mut out = cookies::write_cookies(cookie, &sealed, present)?;
    if present.contains(&hint_name.as_str()) {
        out.push(cookies::removal(cookie, hint_name));
    }
    Ok(out)
}

/// The cookies of a stateless session: the sealed session, and the ID token
/// in its own cookie (`hint_name`), read only by /logout (when it does not
/// fit, logout goes without `id_token_hint`).
pub(super) fn session_cookies(
    keys: &SessionKeys,
    cookie: &CookieSettings,
    hint_name: String,
    session: &Session,
    id_token: Option<String>,
    present: &[&str],
) -> Result<Vec<Cookie<'static>>, TooLarge> {
    let mut out = cookies::write_cookies(cookie, &session.seal(keys), present)?;
    if let Some(id_token) = id_token {
        let hint = LogoutHint {
            id_token,
            subject: session.identity.subject.clone(),
            expires: session.expires,
        }
        .seal(keys);
        if hint.len() <= cookies::CHUNK_SIZE {
            out.push(cookies::cookie(cookie, hint_name, hint));
        }
    }
    Ok(out)
}

/// A stateless session from `cookies` (the family of `name`): the first
/// cookie of the exact name that opens, else the chunks joined.
pub(super) fn open_session(
    keys: &SessionKeys,
    name: &str,
    cookies: &[(&str, &str)],
    now: u64,
) -> Option<Session> {
    let open = |value: &str| {
        Session::open(keys, value, now)
            .map_err(|why| tracing::debug!(cookie = name, %why, "session cookie refused"))
            .ok()
    };
    if let Some(s) = cookies
        .iter()
        .filter(|(n, _)| *n == name)
        .find_map(|(_, v)| open(v))
    {
        return Some(s);
    }
    let chunks: Vec<(&str, &str)> = cookies
        .iter()
        .filter(|(n, _)| *n != name)
        .copied()
        .collect();
    open(&cookies::read_cookie_value(name, &chunks)?)
}

/// The ID token of a logout-hint cookie, when it opens and belongs to `subject`.
pub(super) fn hint_id_token(
    keys: &SessionKeys,
    hint: Option<&str>,
    subject: &str,
    now: u64,
) -> Option<String> {
    hint.and_then(|h| LogoutHint::open(keys, h, now).ok())
        .filter(|h| h.subject == subject)
        .map(|h| h.id_token)
}

/// The cookies that clear every cookie of ours the browser sent
/// (`present`), with the attributes of `cookie`, the logout hint included.
pub(super) fn clearing(cookie: &CookieSettings, present: &[&str]) -> Vec<Cookie<'static>> {
    let mut names: Vec<&str> = present.to_vec();
    if names.is_empty() {
        // Nothing visible to clear; still expire the main name in case the browser scoped it elsewhere.
        names.push(cookie.name.as_str());
    }
    let mut out = cookies::clear_cookies(cookie, &names);
    out.push(cookies::removal(
        cookie,
        logout_hint_cookie_name(&cookie.name),
    ));
    out
}

/// A token to keep in a store record, sealed.
pub(super) fn seal_token(keys: &SessionKeys, token: String) -> String {
    keys.seal(Purpose::StoredToken, token.as_bytes())
}

/// A token sealed into a store record, opened.
pub(super) fn unseal_token(keys: &SessionKeys, sealed: &str) -> Option<String> {
    let bytes = keys.open(Purpose::StoredToken, sealed).ok()?;
    String::from_utf8(bytes).ok()
}
