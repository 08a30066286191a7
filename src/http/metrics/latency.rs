//! The decision-latency histogram, in plain atomics so that observing takes
//! no lock.
//!
//! Not for: the session store's latency, which is rarer and uses the crate's
//! own `Histogram`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 8] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.1,
];

/// A classic histogram over [`BUCKETS`] in plain atomics, encoded by the
/// crate. `prometheus_client`'s own `Histogram` takes a mutex per
/// observation, which the request path must not.
#[derive(Debug, Clone, Default)]
pub(super) struct Latency(Arc<LatencyCounts>);

#[derive(Debug, Default)]
struct LatencyCounts {
    /// Observations per bucket, not cumulative (the encoder accumulates); the
    /// last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Latency {
    pub(super) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.0.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let mut buckets = [(f64::INFINITY, 0); BUCKETS.len() + 1];
        for (i, (le, n)) in buckets.iter_mut().enumerate() {
            *le = BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *n = self.0.buckets[i].load(Relaxed);
        }
        // The count is the sum of the buckets read here, so `_count` always
        // equals the `+Inf` bucket, even while requests are being counted.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
