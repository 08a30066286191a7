//! The SCIM directory's persistence, beside the sessions in the same store
//! (the embedded database's `scim_resources` table, or Redis hashes under
//! `pocketgate:scim:`), so every replica sees the users and groups a SCIM
//! client pushed. Each resource is an opaque document under its kind and
//! id; a generation counter goes up with every change, so a replica learns
//! that its view is old with one small read.
//!
//! This keeps; it never decides, and it does not know SCIM: the documents
//! come sealed from `crate::scim`, which reads and writes them.

use super::{Store, StoreError};

/// The kinds of resource the directory keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryKind {
    User,
    Group,
}

impl DirectoryKind {
    /// The name the stores keep it under.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::User => "User",
            DirectoryKind::Group => "Group",
        }
    }
}

impl Store {
    /// Every document of `kind`, with its id (in no particular order).
    pub async fn directory_all(
        &self,
        kind: DirectoryKind,
    ) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Embedded(e) => e.directory_all(kind).await,
            Store::Redis(r) => r.directory_all(kind).await,
        }
    }

    /// The document of `kind` under `id`, if any.
    pub async fn directory_get(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Embedded(e) => e.directory_get(kind, id).await,
            Store::Redis(r) => r.directory_get(kind, id).await,
        }
    }

    /// Create or replace a document, and count a change.
    pub async fn directory_put(
        &self,
        kind: DirectoryKind,
        id: &str,
        doc: String,
    ) -> Result<(), StoreError> {
        match self {
            Store::Embedded(e) => e.directory_put(kind, id, doc).await,
            Store::Redis(r) => r.directory_put(kind, id, doc).await,
        }
    }

    /// Remove a document (and count a change); whether it was there.
    pub async fn directory_remove(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => e.directory_remove(kind, id).await,
            Store::Redis(r) => r.directory_remove(kind, id).await,
        }
    }

    /// How many changes the directory has seen (0 before the first).
    pub async fn directory_generation(&self) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(e) => e.directory_generation().await,
            Store::Redis(r) => r.directory_generation().await,
        }
    }
}
