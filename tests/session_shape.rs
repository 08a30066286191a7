//! The session's shape on the embedded store: the idle timeout ends a
//! session, a use on another pocketgate of the same store keeps it, a
//! host's lifetime and idle timeout shorten it for that host only, and
//! requests write nothing until the flush. The same scenarios run on
//! Redis in tests/redis.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    dead_code,
    reason = "test code: a panic is a failed test"
)]

#[path = "shape/scenarios.rs"]
#[macro_use]
mod scenarios;

use std::path::Path;

use pocketgate::config::StoreSettings;
use pocketgate::session::store::Store;
use tokio::runtime::Runtime;

/// The embedded store in `dir`, opened on `rt` (several opens share it, as
/// `serve` and `pocketgate sessions` do).
fn embedded(dir: &Path) -> impl Fn(&Runtime) -> Store + '_ {
    move |rt| {
        rt.block_on(Store::open(&StoreSettings::Embedded {
            state_dir: dir.to_path_buf(),
        }))
        .unwrap()
        .unwrap()
    }
}

store_scenarios!(|scenario| {
    let dir = tempfile::tempdir().unwrap();
    scenario(&embedded(dir.path()));
});

#[test]
fn uses_are_not_store_writes() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite's data_version, read on a connection of its own, changes when
    // another connection committed since it was last read.
    let mut watcher: Option<rusqlite::Connection> = None;
    let mut seen: Option<i64> = None;
    scenarios::uses_are_not_store_writes(&embedded(dir.path()), || {
        let conn = watcher.get_or_insert_with(|| {
            rusqlite::Connection::open(dir.path().join("sessions.sqlite3")).unwrap()
        });
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap();
        let changed = seen.is_some_and(|s| s != version);
        seen = Some(version);
        std::future::ready(changed)
    });
}
