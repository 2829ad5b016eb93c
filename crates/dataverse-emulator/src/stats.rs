//! Counters of requests, operations and injected faults, served at `GET /_emulator/stats`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Live counters (atomics).
        #[derive(Debug, Default)]
        pub struct Stats { $(#[doc = $doc] pub $name: AtomicU64,)* }

        /// A point-in-time copy of [`Stats`].
        #[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
        pub struct StatsSnapshot { $(#[doc = $doc] pub $name: u64,)* }

        impl Stats {
            /// Copies every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    requests: "Web API HTTP requests received (a `$batch` is one).",
    operations: "Operations executed (each `$batch` part and bulk target counts).",
    operations_failed: "Operations that answered ≥ 400.",
    batches: "`$batch` requests.",
    change_sets_rolled_back: "Change sets rolled back.",
    tokens_issued: "Access tokens issued.",
    token_errors: "Token requests refused.",
    unauthorized: "Web API requests refused with 401.",
    forbidden: "Web API requests refused with 403.",
    throttled_requests: "429s for the request-count limit.",
    throttled_execution_time: "429s for the execution-time limit.",
    throttled_concurrency: "429s for the concurrency limit.",
    fault_latency: "Requests delayed by injected latency.",
    fault_500: "Injected 500s.",
    fault_502: "Injected 502s.",
    fault_503: "Injected 503s.",
    fault_throttle: "Injected 429s (throttle rate).",
    fault_storm_429: "Injected 429s belonging to storms.",
    fault_storms: "Storms started.",
    fault_reset_before: "Connections dropped before applying the request.",
    fault_reset_after: "Connections dropped after applying the request.",
    fault_slow: "Slow responses.",
    fault_revoked: "Tokens revoked by injection.",
}

impl Stats {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}
