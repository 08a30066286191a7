//! Refreshing a session's identity with the provider, off the request path.
//! (Filled in with the refresh-token exchange; for now nothing is due.)

use super::AppState;
use crate::session::Current;

/// Start refreshing `current` in the background, unless one is under way.
pub(super) fn spawn(_state: &AppState, _current: &Current) {}
