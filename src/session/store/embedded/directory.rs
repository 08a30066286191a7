//! The SCIM directory in the embedded database: two tables of their own in
//! the sessions' SQLite file, created on first use.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::directory::DirectoryKind;
use super::super::StoreError;
use super::Embedded;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scim_resources (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS scim_generation (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    generation INTEGER NOT NULL
);
";

/// The tables exist (cheap when they do: SQLite answers from its schema).
fn ready(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)
}

fn bump(c: &Connection) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO scim_generation (one, generation) VALUES (1, 1)
         ON CONFLICT(one) DO UPDATE SET generation = generation + 1",
        [],
    )
    .map(drop)
}

impl Embedded {
    pub(in super::super) async fn directory_all(
        &self,
        kind: DirectoryKind,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.with(move |c| {
            ready(c)?;
            let mut stmt = c.prepare("SELECT id, doc FROM scim_resources WHERE kind = ?1")?;
            let rows = stmt.query_map(params![kind.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            rows.collect()
        })
        .await
    }

    pub(in super::super) async fn directory_get(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            ready(c)?;
            c.query_row(
                "SELECT doc FROM scim_resources WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                |row| row.get::<_, String>(0),
            )
            .optional()
        })
        .await
    }

    pub(in super::super) async fn directory_put(
        &self,
        kind: DirectoryKind,
        id: &str,
        doc: String,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            ready(c)?;
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO scim_resources (kind, id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kind, id) DO UPDATE SET doc = ?3",
                params![kind.as_str(), id, doc],
            )?;
            bump(&tx)?;
            tx.commit()
        })
        .await
    }

    pub(in super::super) async fn directory_remove(
        &self,
        kind: DirectoryKind,
        id: &str,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            ready(c)?;
            let tx = c.unchecked_transaction()?;
            let n = tx.execute(
                "DELETE FROM scim_resources WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
            )?;
            bump(&tx)?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    pub(in super::super) async fn directory_generation(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            ready(c)?;
            let g = c
                .query_row(
                    "SELECT generation FROM scim_generation WHERE one = 1",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .optional()?;
            Ok(g.map_or(0, |g| u64::try_from(g).unwrap_or(0)))
        })
        .await
    }
}
