//! A step-up's fresh sign-in taken over by the session it was made for:
//! the same session (the same id and cookie with a store; with stateless
//! cookies, the same session re-sealed) now carries the new identity, its
//! sign-in facts and the fresh tokens, and keeps its issue and end times.

use cookie::Cookie;

use super::super::{logout_hint_cookie_name, CookieSettings, Session, TooLarge};
use super::{codec, Backend, CreateError, Current, Sessions, Tokens};
use crate::policy::Identity;

impl Sessions {
    /// The cookies of a stateless session: `session` sealed, and its ID
    /// token in the logout-hint cookie.
    pub(super) fn sealed(
        &self,
        cookie: &CookieSettings,
        session: &Session,
        id_token: Option<String>,
        present: &[&str],
    ) -> Result<Vec<Cookie<'static>>, TooLarge> {
        let hint_name = logout_hint_cookie_name(&self.cookie.name);
        codec::session_cookies(&self.keys, cookie, hint_name, session, id_token, present)
    }

    /// Put `identity` (same subject: the caller checks) and `tokens` into
    /// the request's session `current`. The cookies to set: none with a
    /// store (the cookie names the same session), the re-sealed session with
    /// stateless cookies. `Ok(None)` when the session ended meanwhile
    /// (then the caller starts a new one).
    pub async fn renew(
        &self,
        current: &Current,
        cookie: &CookieSettings,
        identity: Identity,
        tokens: Tokens,
        present: &[&str],
    ) -> Result<Option<Vec<Cookie<'static>>>, CreateError> {
        let (lookup, key) = match (&self.backend, &current.key) {
            (Backend::Store(lookup), Some(key)) => (lookup, key),
            _ => {
                let session = Session {
                    identity,
                    issued: current.session.issued,
                    expires: current.session.expires,
                };
                return Ok(Some(self.sealed(
                    cookie,
                    &session,
                    tokens.id_token,
                    present,
                )?));
            }
        };
        let Some(mut record) = lookup
            .store()
            .get(key)
            .await?
            .and_then(|stored| stored.open(&self.keys, key).ok())
        else {
            return Ok(None);
        };
        let seal = |t: String| codec::seal_token(&self.keys, t);
        record.identity = identity;
        if let Some(t) = tokens.refresh_token {
            record.refresh_token = Some(seal(t));
        }
        if let Some(t) = tokens.id_token {
            record.id_token = Some(seal(t));
        }
        if tokens.sid.is_some() {
            record.sid = tokens.sid;
        }
        if !lookup
            .store()
            .update(key, &record.seal(&self.keys, key))
            .await?
        {
            lookup.forget(key);
            return Ok(None);
        }
        lookup.remember(key.clone(), record);
        Ok(Some(Vec::new()))
    }
}
