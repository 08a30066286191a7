//! The provider's only mutable state besides its users: issued authorization codes, access
//! tokens, refresh tokens and the login sessions (`sid`) they belong to, in memory, bounded
//! (expired entries are dropped on every insert, and past [`MAX_ENTRIES`] the entry closest to
//! expiry goes first). Times are seconds since the Unix epoch, passed in so the rules can be
//! tested without waiting.
//!
//! Every token descends from one login: the authorization code carries the login's `sid`, and
//! the access and refresh tokens issued for the code, and the ones rotated from them, carry it
//! too. That `sid` is therefore also the refresh-token family: a reused code or a reused
//! rotated refresh token revokes everything of its family.

use std::collections::HashMap;
use std::hash::Hash;

use super::protocol::PkceMethod;

/// Most entries of each kind (codes, access tokens, refresh tokens, sessions) kept at once.
pub(super) const MAX_ENTRIES: usize = 4096;

/// What an authorization code was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub method: PkceMethod,
    pub auth_time: u64,
    /// How the user signed in (`amr`), e.g. `["phr"]`.
    pub amr: Vec<String>,
    /// The login session this code belongs to, sent as `sid`.
    pub sid: String,
    pub expires_at: u64,
}

/// What an access token grants at `/userinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenGrant {
    pub username: String,
    pub scopes: Vec<String>,
    pub sid: String,
    pub expires_at: u64,
    /// The audience introspection reports; `None`: the client.
    pub audience: Option<String>,
}

/// What a refresh token grants: the scopes of the original authorization, for one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RefreshGrant {
    pub username: String,
    pub scopes: Vec<String>,
    pub sid: String,
    pub auth_time: u64,
    /// How the user signed in (`amr`), kept by every refresh.
    pub amr: Vec<String>,
    pub expires_at: u64,
}

#[derive(Debug)]
struct CodeEntry {
    grant: CodeGrant,
    redeemed: bool,
}

#[derive(Debug)]
struct RefreshEntry {
    grant: RefreshGrant,
    /// Exchanged for a successor already; kept until it expires to recognise its reuse.
    rotated: bool,
}

/// A login session a relying party learned the `sid` of (its code was redeemed).
#[derive(Debug)]
struct SessionEntry {
    username: String,
    /// Order of creation, so a user's sessions come out in login order.
    serial: u64,
    expires_at: u64,
}

/// Why a code or refresh token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Never issued, revoked, or expired and already dropped.
    Unknown,
    /// Issued but past its lifetime.
    Expired,
    /// Used before; everything issued from its family has been revoked.
    Reused,
}

/// Issued codes, tokens and sessions.
#[derive(Debug, Default)]
pub(super) struct Store {
    codes: HashMap<String, CodeEntry>,
    tokens: HashMap<String, TokenGrant>,
    refresh: HashMap<String, RefreshEntry>,
    sessions: HashMap<String, SessionEntry>,
    next_serial: u64,
    /// Each user's last sign-in (`auth_time`, `amr`), by user name; what a
    /// provider ignoring `prompt=login` answers with.
    last_sign_in: HashMap<String, (u64, Vec<String>)>,
}

/// Drops expired entries and, when still full, the one closest to expiry.
fn make_room<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    now: u64,
    expires_at: impl Fn(&V) -> u64,
) {
    map.retain(|_, v| expires_at(v) > now);
    while map.len() >= MAX_ENTRIES {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| expires_at(v))
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => map.remove(&key),
            None => break,
        };
    }
}

impl Store {
    /// Records `username`'s sign-in at `auth_time` with `amr`.
    pub(super) fn signed_in(&mut self, username: &str, auth_time: u64, amr: Vec<String>) {
        if self.last_sign_in.len() < MAX_ENTRIES || self.last_sign_in.contains_key(username) {
            self.last_sign_in
                .insert(username.to_owned(), (auth_time, amr));
        }
    }

    /// `username`'s last sign-in, if any.
    pub(super) fn last_sign_in(&self, username: &str) -> Option<(u64, Vec<String>)> {
        self.last_sign_in.get(username).cloned()
    }
    /// Records a freshly issued code.
    pub(super) fn insert_code(&mut self, code: String, grant: CodeGrant, now: u64) {
        make_room(&mut self.codes, now, |entry| entry.grant.expires_at);
        self.codes.insert(
            code,
            CodeEntry {
                grant,
                redeemed: false,
            },
        );
    }

    /// The grant behind an unredeemed, unexpired code. A reused code revokes every token issued
    /// for it and rotated since (RFC 6749 section 4.1.2).
    pub(super) fn code(&mut self, code: &str, now: u64) -> Result<CodeGrant, Rejection> {
        let entry = self.codes.get(code).ok_or(Rejection::Unknown)?;
        if entry.redeemed {
            let sid = entry.grant.sid.clone();
            self.revoke_family(&sid);
            return Err(Rejection::Reused);
        }
        if entry.grant.expires_at <= now {
            return Err(Rejection::Expired);
        }
        Ok(entry.grant.clone())
    }

    /// Marks a code redeemed, stores the access token `jti` (and the refresh token, if any)
    /// issued for it and records its session, atomically. Fails, storing nothing, when the code
    /// was redeemed meanwhile or is gone.
    pub(super) fn redeem(
        &mut self,
        code: &str,
        jti: String,
        token: TokenGrant,
        refresh: Option<(String, RefreshGrant)>,
        session_expires_at: u64,
        now: u64,
    ) -> Result<(), Rejection> {
        let entry = self.codes.get_mut(code).ok_or(Rejection::Unknown)?;
        if entry.redeemed {
            return Err(Rejection::Reused);
        }
        entry.redeemed = true;
        let (sid, username) = (entry.grant.sid.clone(), entry.grant.username.clone());
        self.insert_token(jti, token, now);
        if let Some((refresh_token, grant)) = refresh {
            self.insert_refresh(refresh_token, grant, now);
        }
        make_room(&mut self.sessions, now, |s| s.expires_at);
        self.next_serial += 1;
        self.sessions.insert(
            sid,
            SessionEntry {
                username,
                serial: self.next_serial,
                expires_at: session_expires_at,
            },
        );
        Ok(())
    }

    /// Registers an access token issued outside the code flow (by its `jti`, or the opaque
    /// token itself).
    pub(super) fn insert_access_token(&mut self, key: String, token: TokenGrant, now: u64) {
        self.insert_token(key, token, now);
    }

    fn insert_token(&mut self, jti: String, token: TokenGrant, now: u64) {
        make_room(&mut self.tokens, now, |t| t.expires_at);
        self.tokens.insert(jti, token);
    }

    fn insert_refresh(&mut self, refresh_token: String, grant: RefreshGrant, now: u64) {
        make_room(&mut self.refresh, now, |r| r.grant.expires_at);
        self.refresh.insert(
            refresh_token,
            RefreshEntry {
                grant,
                rotated: false,
            },
        );
    }

    /// Stores a refresh token issued outside the code grant (for [`crate::DevIdp::refresh_token`]).
    pub(super) fn insert_refresh_token(&mut self, token: String, grant: RefreshGrant, now: u64) {
        self.insert_refresh(token, grant, now);
    }

    /// The grant of a live refresh token (unexpired, not rotated nor revoked), without using
    /// it: what introspection looks at.
    pub(super) fn live_refresh(&self, refresh_token: &str, now: u64) -> Option<RefreshGrant> {
        self.refresh
            .get(refresh_token)
            .filter(|r| !r.rotated && r.grant.expires_at > now)
            .map(|r| r.grant.clone())
    }

    /// The grant of an unexpired, unrevoked access token.
    pub(super) fn token(&self, jti: &str, now: u64) -> Option<TokenGrant> {
        self.tokens.get(jti).filter(|t| t.expires_at > now).cloned()
    }

    /// The grant behind a live refresh token. Presenting one that was rotated already is taken
    /// as theft: the whole family (every refresh and access token of its `sid`) is revoked.
    pub(super) fn refresh(
        &mut self,
        refresh_token: &str,
        now: u64,
    ) -> Result<RefreshGrant, Rejection> {
        let entry = self.refresh.get(refresh_token).ok_or(Rejection::Unknown)?;
        if entry.rotated {
            let sid = entry.grant.sid.clone();
            self.revoke_family(&sid);
            return Err(Rejection::Reused);
        }
        if entry.grant.expires_at <= now {
            return Err(Rejection::Expired);
        }
        Ok(entry.grant.clone())
    }

    /// Replaces a live refresh token by its successor: the old one is marked rotated, the
    /// family's access tokens are revoked (like Pocket ID) and the new access and refresh
    /// tokens stored, atomically. Fails, storing nothing, when the old token was rotated or
    /// revoked meanwhile.
    pub(super) fn rotate(
        &mut self,
        old: &str,
        jti: String,
        token: TokenGrant,
        successor: (String, RefreshGrant),
        now: u64,
    ) -> Result<(), Rejection> {
        let entry = self.refresh.get_mut(old).ok_or(Rejection::Unknown)?;
        if entry.rotated {
            return Err(Rejection::Reused);
        }
        entry.rotated = true;
        let sid = entry.grant.sid.clone();
        self.tokens.retain(|_, t| t.sid != sid);
        self.insert_token(jti, token, now);
        self.insert_refresh(successor.0, successor.1, now);
        Ok(())
    }

    /// Revokes every access and refresh token of one login.
    fn revoke_family(&mut self, sid: &str) {
        self.tokens.retain(|_, t| t.sid != sid);
        self.refresh.retain(|_, r| r.grant.sid != sid);
    }

    /// Revokes every refresh token of `username`; returns how many were still usable.
    pub(super) fn revoke_refresh_tokens(&mut self, username: &str, now: u64) -> usize {
        let live = self
            .refresh
            .values()
            .filter(|r| r.grant.username == username && !r.rotated && r.grant.expires_at > now)
            .count();
        self.refresh.retain(|_, r| r.grant.username != username);
        live
    }

    /// The user of a live session.
    pub(super) fn session(&self, sid: &str, now: u64) -> Option<String> {
        self.sessions
            .get(sid)
            .filter(|s| s.expires_at > now)
            .map(|s| s.username.clone())
    }

    /// The live sessions of `username`, oldest login first.
    pub(super) fn sessions_of(&self, username: &str, now: u64) -> Vec<String> {
        let mut sessions: Vec<(&String, &SessionEntry)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.username == username && s.expires_at > now)
            .collect();
        sessions.sort_by_key(|(_, s)| s.serial);
        sessions.into_iter().map(|(sid, _)| sid.clone()).collect()
    }

    /// Forgets a session (after a back-channel logout). Its tokens are left alone.
    pub(super) fn end_session(&mut self, sid: &str) {
        self.sessions.remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: u64) -> CodeGrant {
        grant_for("sid-1", expires_at)
    }

    fn grant_for(sid: &str, expires_at: u64) -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            username: "alice".into(),
            scopes: vec!["openid".into()],
            nonce: None,
            code_challenge: "x".repeat(43),
            method: PkceMethod::S256,
            auth_time: 0,
            amr: Vec::new(),
            sid: sid.into(),
            expires_at,
        }
    }

    fn token(expires_at: u64) -> TokenGrant {
        token_for("sid-1", expires_at)
    }

    fn token_for(sid: &str, expires_at: u64) -> TokenGrant {
        TokenGrant {
            username: "alice".into(),
            scopes: vec!["openid".into()],
            sid: sid.into(),
            expires_at,
            audience: None,
        }
    }

    fn refresh_for(sid: &str, expires_at: u64) -> RefreshGrant {
        RefreshGrant {
            username: "alice".into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            sid: sid.into(),
            auth_time: 0,
            amr: Vec::new(),
            expires_at,
        }
    }

    /// A store with code `c1` of session `sid-1` redeemed for access token `t1` and refresh
    /// token `r1` (expiring at 10 000).
    fn redeemed() -> Store {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        let refresh = Some(("r1".to_owned(), refresh_for("sid-1", 10_000)));
        assert_eq!(
            store.redeem("c1", "t1".into(), token(3700), refresh, 10_000, 100),
            Ok(())
        );
        store
    }

    #[test]
    fn code_is_usable_until_it_expires() {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        assert_eq!(store.code("c1", 159), Ok(grant(160)));
        assert_eq!(store.code("c1", 160), Err(Rejection::Expired));
        assert_eq!(store.code("nope", 100), Err(Rejection::Unknown));
    }

    #[test]
    fn reused_code_is_rejected_and_revokes_its_tokens() {
        let mut store = redeemed();
        assert!(store.token("t1", 101).is_some());
        assert!(store.refresh("r1", 101).is_ok());
        assert_eq!(
            store.redeem("c1", "t2".into(), token(3700), None, 10_000, 101),
            Err(Rejection::Reused)
        );
        assert_eq!(store.code("c1", 102), Err(Rejection::Reused));
        assert_eq!(store.token("t1", 102), None);
        assert_eq!(store.token("t2", 102), None);
        assert_eq!(store.refresh("r1", 102), Err(Rejection::Unknown));
    }

    #[test]
    fn tokens_expire() {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        store
            .redeem("c1", "t1".into(), token(200), None, 10_000, 100)
            .ok();
        assert!(store.token("t1", 199).is_some());
        assert!(store.token("t1", 200).is_none());
    }

    #[test]
    fn refresh_tokens_rotate_once_and_expire() {
        let mut store = redeemed();
        assert_eq!(store.refresh("r1", 9_999), Ok(refresh_for("sid-1", 10_000)));
        assert_eq!(store.refresh("r1", 10_000), Err(Rejection::Expired));
        assert_eq!(store.refresh("nope", 100), Err(Rejection::Unknown));

        let successor = ("r2".to_owned(), refresh_for("sid-1", 20_000));
        assert_eq!(
            store.rotate("r1", "t2".into(), token(3800), successor.clone(), 200),
            Ok(())
        );
        // The family's earlier access token goes with the rotation, the new one stays.
        assert_eq!(store.token("t1", 201), None);
        assert!(store.token("t2", 201).is_some());
        assert_eq!(store.refresh("r2", 201), Ok(refresh_for("sid-1", 20_000)));
        // A second rotation of the same token loses the race and stores nothing.
        assert_eq!(
            store.rotate(
                "r1",
                "t3".into(),
                token(3800),
                ("r3".into(), successor.1),
                201
            ),
            Err(Rejection::Reused)
        );
        assert_eq!(store.token("t3", 202), None);
        assert_eq!(store.refresh("r3", 202), Err(Rejection::Unknown));
    }

    #[test]
    fn reusing_a_rotated_refresh_token_revokes_the_whole_family_only() {
        let mut store = redeemed();
        store.insert_code("c2".into(), grant_for("sid-2", 160), 100);
        let other = Some(("o1".to_owned(), refresh_for("sid-2", 10_000)));
        store
            .redeem(
                "c2",
                "u1".into(),
                token_for("sid-2", 3700),
                other,
                10_000,
                100,
            )
            .ok();
        let successor = ("r2".to_owned(), refresh_for("sid-1", 20_000));
        store
            .rotate("r1", "t2".into(), token(3800), successor, 200)
            .ok();

        assert_eq!(store.refresh("r1", 300), Err(Rejection::Reused));
        assert_eq!(store.refresh("r2", 300), Err(Rejection::Unknown));
        assert_eq!(store.token("t2", 300), None);
        // Another login of the same user is untouched.
        assert!(store.refresh("o1", 300).is_ok());
        assert!(store.token("u1", 300).is_some());
    }

    #[test]
    fn revoking_a_users_refresh_tokens_counts_the_live_ones() {
        let mut store = redeemed();
        let successor = ("r2".to_owned(), refresh_for("sid-1", 20_000));
        store
            .rotate("r1", "t2".into(), token(3800), successor, 200)
            .ok();
        assert_eq!(store.revoke_refresh_tokens("bob", 300), 0);
        assert_eq!(store.revoke_refresh_tokens("alice", 300), 1);
        assert_eq!(store.refresh("r2", 300), Err(Rejection::Unknown));
        assert_eq!(store.refresh("r1", 300), Err(Rejection::Unknown));
        // Access tokens live on until they expire.
        assert!(store.token("t2", 300).is_some());
    }

    #[test]
    fn sessions_are_recorded_at_redemption_in_login_order() {
        let mut store = Store::default();
        store.insert_code("c0".into(), grant_for("sid-0", 160), 100);
        for (code, sid) in [("c2", "sid-2"), ("c1", "sid-1")] {
            store.insert_code(code.into(), grant_for(sid, 160), 100);
            store
                .redeem(
                    code,
                    format!("t-{code}"),
                    token_for(sid, 3700),
                    None,
                    5_000,
                    100,
                )
                .ok();
        }
        assert_eq!(store.sessions_of("alice", 101), ["sid-2", "sid-1"]);
        assert_eq!(store.session("sid-0", 101), None, "never redeemed");
        assert_eq!(store.session("sid-1", 101).as_deref(), Some("alice"));
        assert!(store.sessions_of("bob", 101).is_empty());
        store.end_session("sid-2");
        assert_eq!(store.sessions_of("alice", 101), ["sid-1"]);
        assert!(store.sessions_of("alice", 5_000).is_empty());
    }

    #[test]
    fn store_stays_bounded_and_drops_expired_entries_first() {
        let mut store = Store::default();
        store.insert_code("expired".into(), grant(50), 10);
        for i in 0..MAX_ENTRIES + 10 {
            store.insert_code(format!("c{i}"), grant(1000 + i as u64), 100);
        }
        assert_eq!(store.codes.len(), MAX_ENTRIES);
        assert!(!store.codes.contains_key("expired"));
        // The entries closest to expiry were dropped to make room, the newest kept.
        assert!(!store.codes.contains_key("c0"));
        assert!(store.codes.contains_key(&format!("c{}", MAX_ENTRIES + 9)));
    }
}
