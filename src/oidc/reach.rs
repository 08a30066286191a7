//! Whether the provider answers right now, asked before a browser is sent
//! there to sign in.
//!
//! Discovery is cached for an hour, so a stopped provider is not noticed by
//! starting a login: without this check the browser would be sent to an
//! address that refuses it, and the person would see their browser's
//! connection error instead of a page that says what is wrong. One small
//! request to the discovery document (2 s timeout), its answer kept for a
//! few seconds, so a burst of sign-ins asks once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Endpoint, ProviderError};
use crate::telemetry::otel;

/// How long an answer is believed: a success a little longer than a failure,
/// so a provider that comes back is noticed quickly.
const KEEP_UP: Duration = Duration::from_secs(5);
const KEEP_DOWN: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(2);

/// The last answer: when it was taken, and why the provider could not be
/// reached (`None`: it answered).
#[derive(Debug, Default)]
pub(super) struct Reachability {
    last: Mutex<Option<(Instant, Option<Arc<ProviderError>>)>>,
}

impl Reachability {
    /// `Ok` when the provider answered the last check (asked again when it is
    /// too old), else why not. Any HTTP answer below 500 counts: the provider
    /// is there and will show its own page.
    pub(super) async fn check(
        &self,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<(), Arc<ProviderError>> {
        let now = Instant::now();
        if let Ok(last) = self.last.lock() {
            if let Some((at, why)) = last.as_ref() {
                let keep = if why.is_none() { KEEP_UP } else { KEEP_DOWN };
                if now.duration_since(*at) < keep {
                    return why.clone().map_or(Ok(()), Err);
                }
            }
        }
        let why = match otel::send("reachability", http.get(url).timeout(TIMEOUT)).await {
            Ok(resp) if resp.status().is_server_error() => Some(Arc::new(ProviderError::Status {
                endpoint: Endpoint::Discovery,
                status: resp.status(),
            })),
            Ok(_) => None,
            Err(e) => Some(Arc::new(ProviderError::failed(Endpoint::Discovery, e))),
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), why.clone()));
        }
        why.map_or(Ok(()), Err)
    }

    /// The provider answered elsewhere (discovery succeeded): forget a
    /// remembered failure, so the next sign-in is not refused for a
    /// provider that is back.
    pub(super) fn answered(&self) {
        if let Ok(mut last) = self.last.lock() {
            if last.as_ref().is_some_and(|(_, why)| why.is_some()) {
                *last = None;
            }
        }
    }
}
