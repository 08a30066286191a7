//! What bounds the provider lookups of bearer tokens (introspection,
//! userinfo): at most `lookups_in_flight` at once for the whole process (a
//! semaphore; past it, a refusal at once, never a queue), and a budget of
//! `lookups_per_minute` per client address (a token bucket per address, in a
//! bounded cache; IPv6 clients by their /64, which one host usually holds
//! whole). A flood of distinct unknown tokens is then a bounded trickle on the
//! provider, and a 503 for whoever floods.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most client addresses whose budget is remembered; an address not seen for
/// a minute starts afresh anyway.
const CLIENTS_REMEMBERED: u64 = 10_000;
/// The budget's period.
const PERIOD: Duration = Duration::from_secs(60);

/// Why a lookup was not made: the `reason` label of
/// `pocketgate_bearer_throttled_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttle {
    /// `bearer.lookups_in_flight` lookups are running already.
    #[error("{0} provider lookups are in flight already (bearer.lookups_in_flight)")]
    InFlight(u32),
    /// This client has used its `bearer.lookups_per_minute`.
    #[error(
        "this client has used its {0} provider lookups of the minute (bearer.lookups_per_minute)"
    )]
    ClientBudget(u32),
}

impl Throttle {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Throttle::InFlight(_) => "in_flight",
            Throttle::ClientBudget(_) => "client_budget",
        }
    }

    /// When asking again may succeed, in seconds (`Retry-After`).
    pub fn retry_after(self) -> u64 {
        match self {
            Throttle::InFlight(_) => 1,
            Throttle::ClientBudget(n) => (PERIOD.as_secs() / u64::from(n.max(1))).max(1),
        }
    }
}

/// One client's budget: a token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The bounds, shared by every lookup of one [`super::BearerAuth`].
pub(super) struct Limits {
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    per_minute: u32,
    budgets: Cache<IpAddr, Arc<Mutex<Bucket>>>,
}

/// Held while a lookup runs; dropping it frees the slot.
pub(super) struct Permit(#[allow(dead_code, reason = "held for its Drop")] OwnedSemaphorePermit);

impl Limits {
    pub(super) fn new(max_in_flight: u32, per_minute: u32) -> Limits {
        Limits {
            in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
            max_in_flight,
            per_minute,
            budgets: Cache::builder()
                .max_capacity(CLIENTS_REMEMBERED)
                .time_to_idle(PERIOD)
                .build(),
        }
    }

    /// A slot for one lookup on behalf of `client`, or why not.
    pub(super) fn admit(&self, client: IpAddr) -> Result<Permit, Throttle> {
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| Throttle::InFlight(self.max_in_flight))?;
        let capacity = f64::from(self.per_minute);
        let bucket = self.budgets.get_with(budget_key(client), || {
            Arc::new(Mutex::new(Bucket {
                tokens: capacity,
                refilled: Instant::now(),
            }))
        });
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity / PERIOD.as_secs_f64()).min(capacity);
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            return Err(Throttle::ClientBudget(self.per_minute));
        }
        bucket.tokens -= 1.0;
        Ok(Permit(permit))
    }
}

/// The address a budget belongs to: an IPv4 address, an IPv6 /64.
fn budget_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_flight_bound_refuses_at_once_and_frees_on_drop() {
        let limits = Limits::new(2, 100);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let a = limits.admit(client).unwrap();
        let _b = limits.admit(client).unwrap();
        assert_eq!(limits.admit(client).err(), Some(Throttle::InFlight(2)));
        drop(a);
        assert!(limits.admit(client).is_ok());
    }

    #[test]
    fn each_client_has_its_own_budget_and_an_ipv6_64_is_one_client() {
        let limits = Limits::new(100, 3);
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.admit(one).is_ok());
        }
        assert_eq!(limits.admit(same_64).err(), Some(Throttle::ClientBudget(3)));
        assert!(limits.admit(other).is_ok());
        assert_eq!(Throttle::ClientBudget(3).retry_after(), 20);
    }
}
