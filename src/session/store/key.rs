//! The key a store keeps a session under: the lowercase hex SHA-256 of the
//! session id, built once into a fixed byte buffer. It is copied, compared
//! and hashed on the signed-in path (the cache, the refresh bookkeeping), so
//! it holds no heap allocation; on disk and in Redis it is the same 64 hex
//! digits it always was, so existing stores keep working.

use std::fmt;

use sha2::{Digest, Sha256};

/// Hex digits in a key (a SHA-256, two per byte).
const LEN: usize = 64;
/// Hex digits `pocketgate sessions` shows and takes.
const SHORT: usize = 12;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What the store is keyed by: the hex SHA-256 of the session id. The id
/// itself never leaves the sealed cookie.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; LEN]);

impl StoreKey {
    /// The key of a session id.
    pub fn of(id: &[u8]) -> StoreKey {
        let digest = Sha256::digest(id);
        let mut hex = [0u8; LEN];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        StoreKey(hex)
    }

    /// A key as stored (from `list`); only hex digits are accepted.
    pub fn from_hex(hex: &str) -> Option<StoreKey> {
        let bytes: [u8; LEN] = hex.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_hexdigit)
            .then(|| StoreKey(bytes.map(|b| b.to_ascii_lowercase())))
    }

    /// The full key, as stored.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever put in: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The full key's bytes, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first 12 hex digits: what `pocketgate sessions` shows and takes.
    pub fn short(&self) -> &str {
        self.as_str().get(..SHORT).unwrap_or_default()
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout before keys were built into a buffer: one `format!` per byte.
    fn old_layout(id: &[u8]) -> String {
        let mut hex = String::new();
        for b in Sha256::digest(id) {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }

    #[test]
    fn a_key_is_the_hex_sha256_of_the_id_as_stores_always_kept_it() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(StoreKey::of(b"abc").as_str(), expected);
        assert_eq!(StoreKey::of(b"abc").as_bytes(), expected.as_bytes());
        for id in [&b""[..], b"abc", &[0u8; 32], &[0xffu8; 32], b"\x00\x0f\xf0"] {
            assert_eq!(StoreKey::of(id).as_str(), old_layout(id), "{id:?}");
        }
        assert_eq!(StoreKey::of(b"abc").short(), "ba7816bf8f01");
    }

    #[test]
    fn from_hex_takes_64_hex_digits_only_and_reads_them_lowercase() {
        let key = StoreKey::of(b"abc");
        assert_eq!(StoreKey::from_hex(key.as_str()), Some(key.clone()));
        assert_eq!(
            StoreKey::from_hex(&key.as_str().to_ascii_uppercase()),
            Some(key.clone())
        );
        let long = format!("{}0", key.as_str());
        let not_hex = format!("{}g", &key.as_str()[..63]);
        for bad in ["", &key.as_str()[..63], &long, &not_hex] {
            assert_eq!(StoreKey::from_hex(bad), None, "{bad}");
        }
        // The order of keys is the order of their text, as before.
        let (a, b) = (StoreKey::of(b"a"), StoreKey::of(b"b"));
        assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
    }
}
