//! Pacing: how many batches may be in flight, the shared pause after a 429, and the optional
//! requests-per-second limit. One `Pacing` per run, shared by every worker of the application user.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// Concurrency control: additive increase, multiplicative decrease. A 429 halves the number of
/// batches in flight and pauses everyone until `Retry-After` has passed; every `limit` batches that
/// come back unthrottled raise it by one again, up to the ceiling.
pub struct Pacing {
    limit: AtomicUsize,
    ceiling: usize,
    clean: AtomicUsize,
    paused_until: Mutex<Option<Instant>>,
    rate: Option<DefaultDirectRateLimiter>,
    throttles: AtomicU64,
    waited_ms: AtomicU64,
}

impl Pacing {
    /// Starts at `start` batches in flight (the server's `x-ms-dop-hint`, or the user's
    /// `--concurrency`), never above `ceiling`; `max_rps` limits requests per second.
    pub fn new(start: usize, ceiling: usize, max_rps: Option<NonZeroU32>) -> Pacing {
        let ceiling = ceiling.max(1);
        Pacing {
            limit: AtomicUsize::new(start.clamp(1, ceiling)),
            ceiling,
            clean: AtomicUsize::new(0),
            paused_until: Mutex::new(None),
            rate: max_rps.map(|n| RateLimiter::direct(Quota::per_second(n))),
            throttles: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Batches allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A 429: everyone waits `pause`, and fewer batches go out at once.
    pub fn throttled(&self, pause: Duration) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + pause;
        let mut guard = self.paused_until.lock().expect("pacing lock");
        if guard.is_none_or(|u| u < until) {
            *guard = Some(until);
        }
        drop(guard);
        let _ = self
            .limit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some((l / 2).max(1))
            });
        self.clean.store(0, Ordering::Relaxed);
    }

    /// A batch came back without throttling.
    pub fn succeeded(&self) {
        let clean = self.clean.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit();
        if clean >= limit && limit < self.ceiling {
            self.clean.store(0, Ordering::Relaxed);
            let _ =
                self.limit
                    .compare_exchange(limit, limit + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Waits out a pause in force and the requests-per-second limit; returns the time waited.
    pub async fn wait_turn(&self) -> Duration {
        let start = Instant::now();
        loop {
            let until = *self.paused_until.lock().expect("pacing lock");
            match until {
                Some(u) if u > Instant::now() => tokio::time::sleep_until(u).await,
                _ => break,
            }
        }
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        let waited = start.elapsed();
        self.waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
        waited
    }

    /// How many 429s paused the run.
    pub fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::Relaxed)
    }

    /// Total time workers spent waiting for their turn, in milliseconds.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_halves_and_clean_batches_climb_back() {
        let p = Pacing::new(8, 8, None);
        p.throttled(Duration::from_secs(1));
        assert_eq!(p.limit(), 4);
        p.throttled(Duration::from_secs(1));
        p.throttled(Duration::from_secs(1));
        p.throttled(Duration::from_secs(1));
        assert_eq!(p.limit(), 1, "never below one");
        p.succeeded();
        assert_eq!(p.limit(), 2);
        for _ in 0..2 {
            p.succeeded();
        }
        assert_eq!(p.limit(), 3);
        for _ in 0..100 {
            p.succeeded();
        }
        assert_eq!(p.limit(), 8, "never above the ceiling");
        assert_eq!(p.throttles(), 4);
    }

    #[test]
    fn the_start_is_clamped() {
        assert_eq!(Pacing::new(0, 4, None).limit(), 1);
        assert_eq!(Pacing::new(10, 4, None).limit(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn everyone_waits_out_a_pause() {
        let p = Pacing::new(4, 4, None);
        p.throttled(Duration::from_secs(3));
        let waited = p.wait_turn().await;
        assert_eq!(waited, Duration::from_secs(3));
        assert_eq!(p.wait_turn().await, Duration::ZERO, "the pause is over");
        assert!(p.waited_ms() >= 3000);
    }
}
