//! Deterministic fault injection: one seeded draw per Web API request decides its fault.

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::FaultsConfig;

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Nothing.
    None,
    /// Answer this 5xx status without applying.
    Fail(u16),
    /// Answer 429 (injected throttle) without applying.
    Throttle,
    /// Answer 429 as part of a storm.
    Storm,
    /// Drop the connection before applying.
    ResetBefore,
    /// Apply, then drop the connection.
    ResetAfter,
    /// Apply, then answer after this many milliseconds.
    Slow(u64),
    /// Revoke the presented token (401).
    Revoke,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Latency to add before handling, in milliseconds.
    pub latency_ms: u64,
    /// The fault.
    pub fault: Fault,
}

#[derive(Debug)]
struct Inner {
    config: FaultsConfig,
    rng: ChaCha8Rng,
    storm_left: u64,
}

/// The fault injector (settable at runtime).
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    /// An injector drawing from `seed`.
    pub fn new(config: FaultsConfig, seed: u64) -> Self {
        Faults {
            inner: Mutex::new(Inner {
                config,
                rng: ChaCha8Rng::seed_from_u64(seed),
                storm_left: 0,
            }),
        }
    }

    /// Replaces the configuration (the random sequence continues).
    pub fn set(&self, config: FaultsConfig) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.config = config;
        g.storm_left = 0;
    }

    /// The current configuration.
    pub fn get(&self) -> FaultsConfig {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// Draws the plan of the next request.
    pub fn draw(&self) -> Plan {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let c = g.config.clone();
        let jitter = if c.latency_jitter_ms > 0 {
            g.rng.random_range(0..=c.latency_jitter_ms)
        } else {
            0
        };
        let latency_ms = c.latency_ms + jitter;
        if g.storm_left > 0 {
            g.storm_left -= 1;
            return Plan {
                latency_ms,
                fault: Fault::Storm,
            };
        }
        let x: f64 = g.rng.random();
        let mut edge = 0.0;
        let mut hit = |rate: f64| {
            edge += rate.clamp(0.0, 1.0);
            x < edge
        };
        let fault = if hit(c.storm_rate) {
            g.storm_left = c.storm_length.saturating_sub(1);
            Fault::Storm
        } else if hit(c.revoke_rate) {
            Fault::Revoke
        } else if hit(c.fail_rate) {
            Fault::Fail([500, 502, 503][g.rng.random_range(0..3)])
        } else if hit(c.throttle_rate) {
            Fault::Throttle
        } else if hit(c.reset_rate) {
            if g.rng.random_bool(0.5) {
                Fault::ResetBefore
            } else {
                Fault::ResetAfter
            }
        } else if hit(c.slow_rate) {
            Fault::Slow(c.slow_ms)
        } else {
            Fault::None
        };
        Plan { latency_ms, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let cfg = FaultsConfig {
            fail_rate: 0.3,
            reset_rate: 0.3,
            ..Default::default()
        };
        let a = Faults::new(cfg.clone(), 7);
        let b = Faults::new(cfg, 7);
        let xs: Vec<_> = (0..100).map(|_| a.draw()).collect();
        let ys: Vec<_> = (0..100).map(|_| b.draw()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|p| matches!(p.fault, Fault::Fail(_))));
        assert!(xs.iter().any(|p| p.fault == Fault::ResetBefore));
        assert!(xs.iter().any(|p| p.fault == Fault::ResetAfter));
    }

    #[test]
    fn storms_last_their_length() {
        let f = Faults::new(
            FaultsConfig {
                storm_rate: 1.0,
                storm_length: 3,
                ..Default::default()
            },
            1,
        );
        assert!((0..9).all(|_| f.draw().fault == Fault::Storm));
    }
}
