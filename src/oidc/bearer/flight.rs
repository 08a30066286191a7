//! Single-flight for bearer checks: concurrent requests with one token
//! share one check, and the map of running checks holds only checks that
//! someone still waits for (a dropped request takes its interest with it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::Checked;

/// Checks running now, by token hash.
pub(super) type RunningChecks = Mutex<HashMap<[u8; 32], Waiting>>;

/// One running check and how many requests wait for it; both change only
/// under the map's lock, so the last request to leave always sees itself
/// as the last, however many leave at once.
pub(super) struct Waiting {
    cell: Arc<tokio::sync::OnceCell<Checked>>,
    waiters: usize,
}

/// One request's interest in a running check: dropping the last one takes
/// the check out of the map (a later request finds its answer in the caches,
/// or starts afresh).
pub(super) struct Running<'a> {
    running: &'a RunningChecks,
    key: [u8; 32],
    pub(super) cell: Arc<tokio::sync::OnceCell<Checked>>,
}

impl<'a> Running<'a> {
    /// Wait for the check of `key`, starting one if none is running.
    pub(super) fn join(running: &'a RunningChecks, key: [u8; 32]) -> Running<'a> {
        let mut map = running.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = map.entry(key).or_insert_with(|| Waiting {
            cell: Arc::default(),
            waiters: 0,
        });
        waiting.waiters = waiting.waiters.saturating_add(1);
        Running {
            running,
            key,
            cell: waiting.cell.clone(),
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(waiting) = running.get_mut(&self.key) else {
            return;
        };
        // A later check of the same token has its own entry: not ours.
        if !Arc::ptr_eq(&waiting.cell, &self.cell) {
            return;
        }
        waiting.waiters = waiting.waiters.saturating_sub(1);
        if waiting.waiters == 0 || self.cell.initialized() {
            running.remove(&self.key);
        }
    }
}
