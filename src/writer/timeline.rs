//! What a run did over time, for its HTML report: rows settled, the batches it allowed in
//! flight, throttle pauses and retries, sampled as outcomes arrive (at most five times a second).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Pacing;
use super::send::SendStats;
use crate::outcome::{Counts, Progress};

/// One moment of the run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Milliseconds since the run began writing.
    pub t_ms: u64,
    /// Rows written so far (every job).
    pub written: u64,
    /// Rows rejected so far.
    pub rejected: u64,
    /// Batches allowed in flight at that moment.
    pub limit: usize,
    /// Throttle pauses so far.
    pub throttles: u64,
    /// Operations retried so far.
    pub retries: u64,
}

/// The samples of a run, shared by its jobs' progress displays.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Timeline {
    /// A timeline starting now.
    pub fn new() -> Timeline {
        Timeline {
            start: Instant::now(),
            samples: Arc::default(),
        }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push(&self, sample: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }

    /// Wraps a job's progress display so that its updates are also sampled; `before` holds the
    /// counts of the run's earlier jobs.
    pub fn record(
        &self,
        inner: Box<dyn Progress>,
        pacing: Arc<Pacing>,
        stats: Arc<SendStats>,
        before: Counts,
    ) -> Box<dyn Progress> {
        Box::new(Recording {
            inner,
            timeline: self.clone(),
            pacing,
            stats,
            before,
            last: None,
            latest: Counts::default(),
        })
    }
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::new()
    }
}

/// A progress display that also samples the run.
struct Recording {
    inner: Box<dyn Progress>,
    timeline: Timeline,
    pacing: Arc<Pacing>,
    stats: Arc<SendStats>,
    before: Counts,
    last: Option<Instant>,
    latest: Counts,
}

impl Recording {
    fn sample(&mut self) {
        use std::sync::atomic::Ordering;
        let now = Instant::now();
        self.last = Some(now);
        self.timeline.push(Sample {
            t_ms: now.duration_since(self.timeline.start).as_millis() as u64,
            written: self.before.written + self.latest.written,
            rejected: self.before.rejected + self.latest.rejected,
            limit: self.pacing.limit(),
            throttles: self.pacing.throttles(),
            retries: self.stats.retries.load(Ordering::Relaxed),
        });
    }
}

impl Progress for Recording {
    fn update(&mut self, counts: &Counts, line: u64) {
        self.inner.update(counts, line);
        self.latest = *counts;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.sample();
        }
    }

    fn finish(&mut self) {
        self.sample();
        self.inner.finish();
    }
}
