//! When sessions were last used, under `pocketgate:lu:<store key>` beside
//! each record: written in batches by the session service's flush (never
//! per request), read with the record (`get`'s `MGET`) and by `list`.
//!
//! The value expires with its session. Written for a session that ended
//! meanwhile, it stays until that expiry and is read by nobody: store keys
//! are hashes of random ids, so no later session has its key.

use super::keys::last_use_key;
use super::{millis_until, Redis, BATCH};
use crate::session::store::{StoreError, StoreKey, Stored};

impl Redis {
    /// `SET ... PX` each use until its session's expiry, a pipeline per
    /// [`BATCH`]; a session already past its expiry is skipped.
    pub(in crate::session::store) async fn record_use(
        &self,
        uses: &[(StoreKey, String, u64)],
    ) -> Result<(), StoreError> {
        for chunk in uses.chunks(BATCH) {
            let mut pipe = ::redis::pipe();
            for (key, sealed, expires) in chunk {
                let ttl = millis_until(*expires);
                if ttl == 0 {
                    continue;
                }
                pipe.cmd("SET")
                    .arg(last_use_key(key).as_bytes())
                    .arg(sealed)
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
            }
            if !pipe.is_empty() {
                self.query_pipe::<()>(&pipe).await?;
            }
        }
        Ok(())
    }

    /// Fill in the last use of listed sessions, an `MGET` per [`BATCH`].
    pub(super) async fn with_last_uses(
        &self,
        found: &mut [(StoreKey, Stored)],
    ) -> Result<(), StoreError> {
        for chunk in found.chunks_mut(BATCH) {
            let mut mget = ::redis::cmd("MGET");
            for (key, _) in chunk.iter() {
                mget.arg(last_use_key(key).as_bytes());
            }
            let used: Vec<Option<String>> = self.query(&mget).await?;
            for ((_, stored), used) in chunk.iter_mut().zip(used) {
                stored.last_used = used;
            }
        }
        Ok(())
    }
}
