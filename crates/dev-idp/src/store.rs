//! The provider's only mutable state: issued authorization codes and access tokens, in memory,
//! bounded (expired entries are dropped on every insert, and past [`MAX_ENTRIES`] the entry
//! closest to expiry goes first). Times are seconds since the Unix epoch, passed in so the
//! rules can be tested without waiting.

use std::collections::HashMap;
use std::hash::Hash;

use super::protocol::PkceMethod;

/// Most codes, and most access tokens, kept at once.
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
    pub expires_at: u64,
}

/// What an access token grants at `/userinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenGrant {
    pub username: String,
    pub scopes: Vec<String>,
    pub expires_at: u64,
}

#[derive(Debug)]
struct CodeEntry {
    grant: CodeGrant,
    /// The `jti` of the access token issued for this code, once redeemed.
    redeemed_by: Option<String>,
}

/// Why a code cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeRejection {
    /// Never issued, or expired and already dropped.
    Unknown,
    /// Issued but past its lifetime.
    Expired,
    /// Redeemed before; the access token issued then has been revoked.
    Reused,
}

/// Issued codes and access tokens.
#[derive(Debug, Default)]
pub(super) struct Store {
    codes: HashMap<String, CodeEntry>,
    tokens: HashMap<String, TokenGrant>,
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
    /// Records a freshly issued code.
    pub(super) fn insert_code(&mut self, code: String, grant: CodeGrant, now: u64) {
        make_room(&mut self.codes, now, |entry| entry.grant.expires_at);
        self.codes.insert(
            code,
            CodeEntry {
                grant,
                redeemed_by: None,
            },
        );
    }

    /// The grant behind an unredeemed, unexpired code. A reused code revokes the access
    /// token it was redeemed for (RFC 6749 section 4.1.2).
    pub(super) fn code(&mut self, code: &str, now: u64) -> Result<CodeGrant, CodeRejection> {
        let entry = self.codes.get(code).ok_or(CodeRejection::Unknown)?;
        if let Some(jti) = &entry.redeemed_by {
            let jti = jti.clone();
            self.tokens.remove(&jti);
            return Err(CodeRejection::Reused);
        }
        if entry.grant.expires_at <= now {
            return Err(CodeRejection::Expired);
        }
        Ok(entry.grant.clone())
    }

    /// Marks a code redeemed by the access token `jti` and stores that token, atomically.
    /// Fails (storing nothing) when the code was redeemed meanwhile or is gone.
    pub(super) fn redeem(
        &mut self,
        code: &str,
        jti: String,
        token: TokenGrant,
        now: u64,
    ) -> Result<(), CodeRejection> {
        let entry = self.codes.get_mut(code).ok_or(CodeRejection::Unknown)?;
        if entry.redeemed_by.is_some() {
            return Err(CodeRejection::Reused);
        }
        entry.redeemed_by = Some(jti.clone());
        make_room(&mut self.tokens, now, |t| t.expires_at);
        self.tokens.insert(jti, token);
        Ok(())
    }

    /// The grant of an unexpired, unrevoked access token.
    pub(super) fn token(&self, jti: &str, now: u64) -> Option<TokenGrant> {
        self.tokens.get(jti).filter(|t| t.expires_at > now).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: u64) -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            username: "alice".into(),
            scopes: vec!["openid".into()],
            nonce: None,
            code_challenge: "x".repeat(43),
            method: PkceMethod::S256,
            auth_time: 0,
            expires_at,
        }
    }

    fn token(expires_at: u64) -> TokenGrant {
        TokenGrant {
            username: "alice".into(),
            scopes: vec!["openid".into()],
            expires_at,
        }
    }

    #[test]
    fn code_is_usable_until_it_expires() {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        assert_eq!(store.code("c1", 159), Ok(grant(160)));
        assert_eq!(store.code("c1", 160), Err(CodeRejection::Expired));
        assert_eq!(store.code("nope", 100), Err(CodeRejection::Unknown));
    }

    #[test]
    fn reused_code_is_rejected_and_revokes_its_token() {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        assert_eq!(store.redeem("c1", "t1".into(), token(3700), 100), Ok(()));
        assert!(store.token("t1", 101).is_some());
        assert_eq!(
            store.redeem("c1", "t2".into(), token(3700), 101),
            Err(CodeRejection::Reused)
        );
        assert_eq!(store.code("c1", 102), Err(CodeRejection::Reused));
        assert_eq!(store.token("t1", 102), None);
        assert_eq!(store.token("t2", 102), None);
    }

    #[test]
    fn tokens_expire() {
        let mut store = Store::default();
        store.insert_code("c1".into(), grant(160), 100);
        store.redeem("c1", "t1".into(), token(200), 100).ok();
        assert!(store.token("t1", 199).is_some());
        assert!(store.token("t1", 200).is_none());
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
