//! The names of pocketgate's Redis keys (the table in the module above),
//! each built once into a byte buffer. The text is what it always was, so
//! a Redis written by an earlier pocketgate keeps working.

use super::super::{Filter, StoreKey, Stored};
use super::PREFIX;

/// What the record keys start with: [`PREFIX`] and `s:`.
pub(super) const RECORD_PREFIX: &str = "pocketgate:s:";
/// The kinds of key a session's own keys have after [`PREFIX`].
const RECORD: &str = "s:";
const LOCK: &str = "lock:";
const LAST_USE: &str = "lu:";
/// The longest such key: [`PREFIX`], `lock:` and the 64 hex digits of a store key.
const SESSION_KEY_MAX: usize = PREFIX.len() + LOCK.len() + 64;

/// A session's own Redis key (its record, its refresh lock), built once
/// into a byte buffer: [`PREFIX`], the kind, the store key. The layout is
/// the text it always was (`pocketgate:s:<store key>`), so records written
/// before are found.
pub(super) struct SessionKey {
    buf: [u8; SESSION_KEY_MAX],
    len: usize,
}

impl SessionKey {
    fn new(kind: &str, key: &StoreKey) -> SessionKey {
        let mut buf = [0u8; SESSION_KEY_MAX];
        let mut len = 0;
        for part in [PREFIX.as_bytes(), kind.as_bytes(), key.as_bytes()] {
            if let Some(room) = buf.get_mut(len..len + part.len()) {
                room.copy_from_slice(part);
                len += part.len();
            }
        }
        SessionKey { buf, len }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

pub(super) fn record_key(key: &StoreKey) -> SessionKey {
    SessionKey::new(RECORD, key)
}

pub(super) fn lock_key(key: &StoreKey) -> SessionKey {
    SessionKey::new(LOCK, key)
}

/// Where a session's last use is kept, beside its record.
pub(super) fn last_use_key(key: &StoreKey) -> SessionKey {
    SessionKey::new(LAST_USE, key)
}

/// [`PREFIX`], `kind` and `value` in one buffer (an index set, a `jti`).
pub(super) fn named_key(kind: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX.len() + kind.len() + value.len());
    for part in [PREFIX, kind, value] {
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The index sets a record is a member of.
pub(super) fn index_keys(record: &Stored) -> Vec<Vec<u8>> {
    let mut keys = vec![
        named_key("u:", &record.user),
        named_key("sub:", &record.subject),
    ];
    if let Some(sid) = &record.sid {
        keys.push(named_key("sid:", sid));
    }
    keys
}

/// The index set that answers `filter`, if one does.
pub(super) fn index_of(filter: &Filter) -> Option<Vec<u8>> {
    match filter {
        Filter::User(u) => Some(named_key("u:", u)),
        Filter::Subject(s) => Some(named_key("sub:", s)),
        Filter::ProviderSession(sid) => Some(named_key("sid:", sid)),
        Filter::All | Filter::Id(_) => None,
    }
}

/// The `SCAN MATCH` pattern for the filters no index answers. `None` for an
/// id prefix that is not hex: no key can match it, and it must not reach a
/// glob pattern.
pub(super) fn scan_pattern(filter: &Filter) -> Option<String> {
    let ids = match filter {
        Filter::Id(prefix) if prefix.bytes().all(|b| b.is_ascii_hexdigit()) => {
            prefix.to_ascii_lowercase()
        }
        Filter::Id(_) => return None,
        _ => String::new(),
    };
    Some([RECORD_PREFIX, &ids, "*"].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prefix_that_is_not_hex_never_reaches_a_glob_pattern() {
        assert_eq!(
            scan_pattern(&Filter::Id("AbC123".into())).as_deref(),
            Some("pocketgate:s:abc123*")
        );
        for bad in ["*", "ab?", "[a-f]", "ab\\*"] {
            assert_eq!(scan_pattern(&Filter::Id(bad.into())), None, "{bad}");
        }
        assert_eq!(
            scan_pattern(&Filter::All).as_deref(),
            Some("pocketgate:s:*")
        );
    }

    #[test]
    fn keys_built_into_buffers_have_the_layout_stores_were_written_with() {
        // The layout as it was built before, with `format!`.
        let key = StoreKey::of(b"abc");
        let old = |kind: &str, value: &str| format!("{PREFIX}{kind}{value}").into_bytes();
        assert_eq!(
            record_key(&key).as_bytes(),
            old("s:", key.as_str()).as_slice()
        );
        assert_eq!(
            record_key(&key).as_bytes(),
            b"pocketgate:s:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            lock_key(&key).as_bytes(),
            old("lock:", key.as_str()).as_slice()
        );
        let stored = Stored {
            user: "alice".into(),
            subject: "3ffb29e3".into(),
            sid: Some("sid-1".into()),
            issued: 1,
            expires: 2,
            sealed: String::new(),
            last_used: None,
        };
        assert_eq!(
            index_keys(&stored),
            [
                old("u:", "alice"),
                old("sub:", "3ffb29e3"),
                old("sid:", "sid-1")
            ]
        );
        assert_eq!(
            index_of(&Filter::User("alice".into())),
            Some(old("u:", "alice"))
        );
        assert_eq!(named_key("jti:", "j-1"), old("jti:", "j-1"));
        assert_eq!(
            last_use_key(&key).as_bytes(),
            old("lu:", key.as_str()).as_slice()
        );
        assert_eq!(RECORD_PREFIX.as_bytes(), old("s:", "").as_slice());
    }
}
