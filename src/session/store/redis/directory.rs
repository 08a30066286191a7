//! The SCIM directory in Redis: one hash per kind of resource
//! (`pocketgate:scim:User`, `pocketgate:scim:Group`: id → document) and a
//! counter of changes (`pocketgate:scim:generation`), none of them expiring.
//! A write and its count go in one transaction.

use super::super::directory::DirectoryKind;
use super::super::StoreError;
use super::keys::named_key;
use super::Redis;

fn hash_key(kind: DirectoryKind) -> Vec<u8> {
    named_key("scim:", kind.as_str())
}

fn generation_key() -> Vec<u8> {
    named_key("scim:", "generation")
}

impl Redis {
    pub(in super::super) async fn directory_all(
        &self,
        kind: DirectoryKind,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.query(::redis::cmd("HGETALL").arg(hash_key(kind)))
            .await
    }

    pub(in super::super) async fn directory_get(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.query(::redis::cmd("HGET").arg(hash_key(kind)).arg(id))
            .await
    }

    pub(in super::super) async fn directory_put(
        &self,
        kind: DirectoryKind,
        id: &str,
        doc: String,
    ) -> Result<(), StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(hash_key(kind))
            .arg(id)
            .arg(doc)
            .ignore()
            .cmd("INCR")
            .arg(generation_key())
            .ignore();
        // Writing the same document twice counts one change too many: harmless.
        self.query_pipe(&pipe).await
    }

    pub(in super::super) async fn directory_remove(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("HDEL")
            .arg(hash_key(kind))
            .arg(id)
            .cmd("INCR")
            .arg(generation_key())
            .ignore();
        let (removed,): (u64,) = self.query_pipe_at_most_once(&pipe).await?;
        Ok(removed > 0)
    }

    pub(in super::super) async fn directory_generation(&self) -> Result<u64, StoreError> {
        let g: Option<u64> = self
            .query(::redis::cmd("GET").arg(generation_key()))
            .await?;
        Ok(g.unwrap_or(0))
    }
}
