//! Pacing: how many batches may be in flight, how many operations per second go out, the shared
//! pause after a 429, and the optional requests-per-second limit. One `Pacing` per run, shared by
//! every worker of the application user.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::decide::Limit;
use tokio::time::Instant;

/// Clean batches per unit of concurrency before it climbs by one.
const CLIMB: usize = 2;
/// How far back the throughput that got through before a 429 is measured.
const LOOKBACK: Duration = Duration::from_secs(10);
/// The learned rate rises by this factor per `RAISE_EVERY` without a 429.
const RAISE: f64 = 1.03;
/// See `RAISE`.
const RAISE_EVERY: Duration = Duration::from_secs(1);
/// After a 429, the rate is set to this share of what got through over `LOOKBACK`.
const BACK_OFF: f64 = 0.95;

/// What `Pacing` learns about the service's tolerance.
struct Learned {
    /// A pause in force until then (a 429's `Retry-After`).
    paused_until: Option<Instant>,
    /// Operations per second not to exceed, once a 429 taught one.
    rate: Option<f64>,
    /// The earliest time the next operation may go out under `rate`.
    next_free: Instant,
    /// When `rate` last rose.
    last_raise: Instant,
    /// Operations that got through, by time (the last `LOOKBACK`).
    done: VecDeque<(Instant, usize)>,
    /// When pacing began (the start of the first throughput measurement).
    started: Instant,
}

/// Concurrency and rate control.
///
/// Every 429 pauses everyone until its `Retry-After` has passed. What else it does depends on the
/// limit it names ([`Limit`]):
///
/// * Request count and execution time are budgets per sliding window. Fewer batches in flight do
///   not enlarge them, they only spend them later, so the writer keeps its concurrency and rate
///   and goes on at full speed once the pause is over: Microsoft's advice for throughput is to
///   "depend on the service protection API limit Retry-After value to tell you when to send
///   more" (api-limits.md, *How to maximize throughput*). Halving here cost more than it saved:
///   `cargo bench --bench writer` went from 70–71% to 73–82% of the best possible without it.
/// * Too many concurrent requests, or a 429 without a known code, is additive increase,
///   multiplicative decrease: it halves the batches in flight (once per wave: the other batches
///   throttled at the same time do not halve it again) and sets an operations-per-second rate
///   just under what got through before it, which then rises slowly while no 429 comes; every
///   `CLIMB` × `limit` clean batches raise the concurrency by one, up to the ceiling.
///
/// The `x-ms-ratelimit-*-remaining-xrm-requests` response headers are not used: Microsoft
/// documents them as "intended for debugging purposes" and says not to "depend on these values to
/// control how many requests you send" (api-limits.md, *HTTP response headers*; PROTOCOL.md §10).
pub struct Pacing {
    limit: AtomicUsize,
    ceiling: usize,
    clean: AtomicUsize,
    learned: Mutex<Learned>,
    rps: Option<DefaultDirectRateLimiter>,
    throttles: AtomicU64,
    waited_ms: AtomicU64,
}

impl Pacing {
    /// Starts at `start` batches in flight (the server's `x-ms-dop-hint`, or the user's
    /// `--concurrency`), never above `ceiling`; `max_rps` limits requests per second.
    pub fn new(start: usize, ceiling: usize, max_rps: Option<NonZeroU32>) -> Pacing {
        let ceiling = ceiling.max(1);
        let now = Instant::now();
        Pacing {
            limit: AtomicUsize::new(start.clamp(1, ceiling)),
            ceiling,
            clean: AtomicUsize::new(0),
            learned: Mutex::new(Learned {
                paused_until: None,
                rate: None,
                next_free: now,
                last_raise: now,
                done: VecDeque::new(),
                started: now,
            }),
            rps: max_rps.map(|n| RateLimiter::direct(Quota::per_second(n))),
            throttles: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Batches allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The learned operations-per-second rate, if a 429 taught one.
    #[cfg(test)]
    pub fn rate(&self) -> Option<f64> {
        self.lock().rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A 429 naming `limit`: everyone waits `pause`. For the limits that fewer batches in flight
    /// relieve (concurrency, or a 429 we cannot place) the batches in flight are also halved,
    /// once per wave, and a rate is learned; the budget limits (requests or execution time per
    /// window, see [`Limit::fewer_in_flight`]) change neither: the pause is the server's own word
    /// on when budget is back, and a rate learned before is kept.
    pub fn throttled(&self, pause: Duration, limit: Limit) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let until = now + pause;
        let mut l = self.lock();
        let new_wave = l.paused_until.is_none_or(|u| u <= now);
        if l.paused_until.is_none_or(|u| u < until) {
            l.paused_until = Some(until);
        }
        if !limit.fewer_in_flight() {
            return;
        }
        if new_wave {
            while l
                .done
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > LOOKBACK)
            {
                l.done.pop_front();
            }
            let span = now.duration_since(l.started).min(LOOKBACK);
            let ops: usize = l.done.iter().map(|(_, n)| n).sum();
            if ops > 0 && span > Duration::ZERO {
                let through = ops as f64 / span.as_secs_f64() * BACK_OFF;
                l.rate = Some(l.rate.map_or(through, |r| r.min(through)).max(1.0));
            }
            l.last_raise = until;
            drop(l);
            let _ = self
                .limit
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    Some((c / 2).max(1))
                });
        }
        self.clean.store(0, Ordering::Relaxed);
    }

    /// A batch of `ops` operations came back without throttling.
    pub fn succeeded(&self, ops: usize) {
        let now = Instant::now();
        {
            let mut l = self.lock();
            l.done.push_back((now, ops));
            while l
                .done
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > LOOKBACK)
            {
                l.done.pop_front();
            }
            if let Some(rate) = l.rate {
                if now.saturating_duration_since(l.last_raise) >= RAISE_EVERY {
                    l.rate = Some(rate * RAISE);
                    l.last_raise = now;
                }
            }
        }
        let clean = self.clean.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit();
        if clean >= limit * CLIMB && limit < self.ceiling {
            self.clean.store(0, Ordering::Relaxed);
            let _ =
                self.limit
                    .compare_exchange(limit, limit + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Waits out a pause in force, the learned rate for `ops` operations, and the
    /// requests-per-second limit; returns the time waited.
    pub async fn wait_turn(&self, ops: usize) -> Duration {
        let start = Instant::now();
        loop {
            let until = self.lock().paused_until;
            match until {
                Some(u) if u > Instant::now() => tokio::time::sleep_until(u).await,
                _ => break,
            }
        }
        let slot = {
            let mut l = self.lock();
            match l.rate {
                Some(rate) => {
                    let now = Instant::now();
                    let slot = l.next_free.max(now);
                    l.next_free = slot + Duration::from_secs_f64(ops as f64 / rate);
                    Some(slot)
                }
                None => None,
            }
        };
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot).await;
        }
        if let Some(rps) = &self.rps {
            rps.until_ready().await;
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

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_once_per_wave_and_clean_batches_climb_back() {
        let p = Pacing::new(8, 8, None);
        p.throttled(Duration::from_secs(1), Limit::Unknown);
        assert_eq!(p.limit(), 4);
        p.throttled(Duration::from_secs(1), Limit::Unknown);
        p.throttled(Duration::from_secs(2), Limit::Unknown);
        assert_eq!(
            p.limit(),
            4,
            "batches throttled in the same wave halve it once"
        );
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(3)).await;
            p.throttled(Duration::from_secs(1), Limit::Unknown);
        }
        assert_eq!(p.limit(), 1, "never below one");
        p.succeeded(1);
        assert_eq!(p.limit(), 1);
        p.succeeded(1);
        assert_eq!(p.limit(), 2);
        for _ in 0..1000 {
            p.succeeded(1);
        }
        assert_eq!(p.limit(), 8, "never above the ceiling");
        assert_eq!(p.throttles(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_teaches_a_rate_just_under_what_got_through_which_then_rises() {
        let p = Pacing::new(4, 4, None);
        assert_eq!(p.rate(), None, "no rate until the service pushes back");
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(100)).await;
            p.succeeded(100);
        }
        // 1,000 operations got through in one second.
        p.throttled(Duration::from_secs(2), Limit::Unknown);
        let rate = p.rate().unwrap();
        assert!((rate - 950.0).abs() < 1.0, "{rate}");
        // The pause is waited out, then 100 operations take 1/9.5 s of the rate's time.
        assert_eq!(p.wait_turn(100).await, Duration::from_secs(2));
        let second = p.wait_turn(100).await;
        assert!(
            (second.as_secs_f64() - 100.0 / 950.0).abs() < 0.01,
            "{second:?}"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        p.succeeded(100);
        assert!(p.rate().unwrap() > rate, "a clean second raises it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_429_pauses_everyone_but_keeps_concurrency_and_rate() {
        let p = Pacing::new(4, 4, None);
        for limit in [Limit::ExecutionTime, Limit::Requests] {
            p.throttled(Duration::from_secs(2), limit);
            assert_eq!(
                p.limit(),
                4,
                "{limit:?}: the window's budget, not concurrency"
            );
            assert_eq!(p.rate(), None, "{limit:?}: no rate learned");
            assert_eq!(p.wait_turn(100).await, Duration::from_secs(2), "{limit:?}");
            assert_eq!(
                p.wait_turn(100).await,
                Duration::ZERO,
                "{limit:?}: full speed after"
            );
        }
        // A rate learned from a concurrency throttle is kept through budget throttles.
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(100)).await;
            p.succeeded(100);
        }
        p.throttled(Duration::from_secs(1), Limit::Concurrency);
        assert_eq!(p.limit(), 2);
        let rate = p.rate().unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        p.throttled(Duration::from_secs(1), Limit::ExecutionTime);
        assert_eq!(p.limit(), 2);
        assert_eq!(p.rate(), Some(rate));
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
        p.throttled(Duration::from_secs(3), Limit::Unknown);
        let waited = p.wait_turn(1).await;
        assert_eq!(waited, Duration::from_secs(3));
        assert_eq!(p.wait_turn(1).await, Duration::ZERO, "the pause is over");
        assert!(p.waited_ms() >= 3000);
    }
}
