//! The embedded store: SQLite (through `rusqlite`, with the library bundled)
//! in `state_dir/sessions.sqlite3`. SQLite because several processes may open
//! the same file at once (WAL mode): `pocketgate sessions` lists and revokes
//! while `serve` runs. The directory is created owner-only (0700), the file
//! 0600. Calls run on tokio's blocking pool, never on a request thread.
//!
//! The refresh lock is in-process: only `serve` refreshes, and one `serve`
//! owns the directory, so a lock shared through the file would guard
//! nothing more.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use super::{Filter, StoreError, StoreKey, Stored};

mod directory;

const FILE: &str = "sessions.sqlite3";

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT,
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions(subject);
CREATE INDEX IF NOT EXISTS sessions_sid ON sessions(sid);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE TABLE IF NOT EXISTS logout_jti (
    jti TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
";

/// The SQLite-backed store.
pub struct Embedded {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// Refresh locks held, until when.
    locks: Mutex<HashMap<StoreKey, Instant>>,
}

impl Embedded {
    /// Open (creating if needed) the database in `dir`.
    pub async fn open(dir: &Path) -> Result<Embedded, StoreError> {
        let dir = dir.to_path_buf();
        let path = dir.join(FILE);
        let place = path.display().to_string();
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_blocking(&dir, &path)).await
        };
        let conn = match opened {
            Ok(r) => r.map_err(|reason| StoreError::Unavailable { place, reason })?,
            Err(e) => {
                return Err(StoreError::Unavailable {
                    place,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Embedded {
            path,
            conn: Arc::new(Mutex::new(conn)),
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The database file, for messages.
    pub fn place(&self) -> String {
        self.path.display().to_string()
    }

    /// Run `f` on the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let place = self.place();
        let joined = tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| "the connection lock is poisoned".to_string())?;
            f(&guard).map_err(|e| e.to_string())
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(reason)) => Err(StoreError::Unavailable { place, reason }),
            Err(e) => Err(StoreError::Unavailable {
                place,
                reason: e.to_string(),
            }),
        }
    }

    pub(super) async fn get(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        self.record(key, "SELECT record FROM sessions WHERE key = ?1")
            .await
    }

    /// The one record `sql` (with the key as `?1`) returns, if any.
    async fn record(
        &self,
        key: &StoreKey,
        sql: &'static str,
    ) -> Result<Option<Stored>, StoreError> {
        let key = key.as_str().to_string();
        let text = self
            .with(move |c| {
                c.query_row(sql, params![key], |row| row.get::<_, String>(0))
                    .optional()
            })
            .await?;
        text.map(|t| parse(&t)).transpose()
    }

    pub(super) async fn put(&self, key: &StoreKey, record: &Stored) -> Result<(), StoreError> {
        let key = key.as_str().to_string();
        let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (user, subject, sid) = (
            record.user.clone(),
            record.subject.clone(),
            record.sid.clone(),
        );
        let (issued, expires) = (record.issued as i64, record.expires as i64);
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (key, user, subject, sid, issued, expires, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(key) DO UPDATE SET user = ?2, subject = ?3, sid = ?4,
                     issued = ?5, expires = ?6, record = ?7",
                params![key, user, subject, sid, issued, expires, text],
            )?;
            // Keep the file from growing with ended sessions.
            c.execute(
                "DELETE FROM sessions WHERE expires <= strftime('%s', 'now')",
                [],
            )?;
            Ok(())
        })
        .await
    }

    pub(super) async fn update(&self, key: &StoreKey, record: &Stored) -> Result<bool, StoreError> {
        let key = key.as_str().to_string();
        let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (user, expires) = (record.user.clone(), record.expires as i64);
        self.with(move |c| {
            let n = c.execute(
                "UPDATE sessions SET user = ?2, expires = ?3, record = ?4 WHERE key = ?1",
                params![key, user, expires, text],
            )?;
            Ok(n == 1)
        })
        .await
    }

    pub(super) async fn remove(&self, key: &StoreKey) -> Result<Option<Stored>, StoreError> {
        self.record(key, "DELETE FROM sessions WHERE key = ?1 RETURNING record")
            .await
    }

    pub(super) async fn remove_matching(
        &self,
        filter: &Filter,
    ) -> Result<Vec<StoreKey>, StoreError> {
        let (clause, value) = where_clause(filter);
        let keys = self
            .with(move |c| {
                let sql = format!("DELETE FROM sessions WHERE {clause} RETURNING key");
                let mut stmt = c.prepare(&sql)?;
                let params = bind(&value);
                let rows = stmt.query_map(params.as_slice(), |row| row.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .await?;
        Ok(keys.iter().filter_map(|k| StoreKey::from_hex(k)).collect())
    }

    pub(super) async fn list(
        &self,
        filter: &Filter,
        now: u64,
    ) -> Result<Vec<(StoreKey, Stored)>, StoreError> {
        let (clause, value) = where_clause(filter);
        let rows = self
            .with(move |c| {
                let sql = format!(
                    "SELECT key, record FROM sessions WHERE {clause} AND expires > {now} ORDER BY issued"
                );
                let mut stmt = c.prepare(&sql)?;
                let params = bind(&value);
                let rows = stmt.query_map(params.as_slice(), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<(String, String)>>>()
            })
            .await?;
        rows.into_iter()
            .filter_map(|(k, t)| StoreKey::from_hex(&k).map(|k| (k, t)))
            .map(|(k, t)| parse(&t).map(|r| (k, r)))
            .collect()
    }

    pub(super) async fn claim_jti(&self, jti: &str, until: u64) -> Result<bool, StoreError> {
        let jti = jti.to_string();
        self.with(move |c| {
            c.execute(
                "DELETE FROM logout_jti WHERE until <= strftime('%s', 'now')",
                [],
            )?;
            let inserted = c.execute(
                "INSERT OR IGNORE INTO logout_jti (jti, until) VALUES (?1, ?2)",
                params![jti, until as i64],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    pub(super) async fn try_lock(&self, key: &StoreKey, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        // The map holds plain deadlines: one a panicking holder left is still valid.
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.retain(|_, until| *until > now);
        if locks.contains_key(key) {
            return Ok(false);
        }
        // An absurd ttl (beyond what `Instant` holds) is a day: still released by `unlock`.
        let until = now
            .checked_add(ttl)
            .or_else(|| now.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(now);
        locks.insert(key.clone(), until);
        Ok(true)
    }

    pub(super) async fn unlock(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        // Touch the table itself: a damaged or missing table must show here.
        self.with(|c| {
            c.query_row(
                "SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT 1)",
                [],
                |_| Ok(()),
            )
        })
        .await
    }
}

/// The SQL condition for a filter, with its one parameter.
fn where_clause(filter: &Filter) -> (&'static str, Option<String>) {
    match filter {
        Filter::All => ("1 = 1", None),
        Filter::User(u) => ("user = ?1", Some(u.clone())),
        Filter::Subject(s) => ("subject = ?1", Some(s.clone())),
        Filter::ProviderSession(sid) => ("sid = ?1", Some(sid.clone())),
        // Only hex digits reach here (the CLI checks), so LIKE has no wildcard to fear.
        Filter::Id(prefix) => ("key LIKE ?1 || '%'", Some(prefix.to_ascii_lowercase())),
    }
}

/// The filter's parameter as a bind list (empty for `All`).
fn bind(value: &Option<String>) -> Vec<&dyn rusqlite::ToSql> {
    value.iter().map(|v| v as &dyn rusqlite::ToSql).collect()
}

fn parse(text: &str) -> Result<Stored, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Create the directory (0700) and the file (0600) if needed, then open and
/// migrate. A wait of up to 5 s on a lock held by another process (the CLI
/// while `serve` runs) is not an error.
fn open_blocking(dir: &Path, path: &Path) -> Result<Connection, String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create state_dir {}: {e}", dir.display()))?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(file = %path.display(), mode = format!("{mode:o}"), "the session store is readable by others; it holds sealed tokens only, but should be 0600");
    }
    let conn =
        Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.execute_batch(SCHEMA)
        .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_refresh_lock_is_held_until_unlocked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(dir.path()).await.unwrap();
        let (a, b) = (StoreKey::of(b"a"), StoreKey::of(b"b"));
        let minute = Duration::from_secs(60);
        assert!(store.try_lock(&a, minute).await.unwrap());
        assert!(!store.try_lock(&a, minute).await.unwrap(), "held");
        assert!(store.try_lock(&b, minute).await.unwrap(), "per session");
        store.unlock(&a).await.unwrap();
        assert!(
            store.try_lock(&a, Duration::ZERO).await.unwrap(),
            "released"
        );
        assert!(
            store.try_lock(&a, minute).await.unwrap(),
            "a lock whose ttl ran out is free"
        );
    }
}
