//! Per-key order: at most one operation per record key is in flight at a time, so that for the
//! same key the later row of the source wins, whatever the retries and concurrency do.
//!
//! The batcher takes a batch's keys just before it sends the batch, and waits while a key is held
//! by an earlier batch (a batch never waits for itself: a key twice in an `--atomic` change set is
//! taken once for both, and a batch without change sets never holds a key twice).
//! The batch tasks release a key when its row has its final outcome (written or rejected), and
//! mark it deferred when the row waits for the second pass (a lookup target not there yet): a
//! later row of that key is then deferred behind it instead of overtaking it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::keys::{ById, IdSet};

/// What the gate knows of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Rows of this key are on their way in one batch (an `--atomic` change set may hold a key
    /// more than once); `row` is the first's source row.
    InFlight {
        /// The source row.
        row: u64,
        /// How many of the batch's operations have it.
        count: u32,
    },
    /// A row of this key waits for the second pass.
    Deferred {
        /// The source row.
        row: u64,
    },
}

/// What the reader may do with a row of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The key is now held for this row: put it in a batch.
    Go,
    /// An earlier row of this key is still on its way: send what is batched, then
    /// [`KeyGate::wait`].
    Busy,
    /// An earlier row of this key waits for the second pass (`row`): this one goes after it.
    Behind {
        /// The earlier row.
        row: u64,
    },
}

/// The keys in flight or deferred, by their identity ([`crate::keys::Collation::key_id`]).
#[derive(Debug, Default)]
pub struct KeyGate {
    held: Mutex<ById<Held>>,
    /// How many keys are deferred: while none is, a row needs no look at `held` to know its
    /// key is not deferred.
    deferred: AtomicUsize,
    released: Condvar,
    /// Keys a create or a delete of this job (or of an earlier run of its resume chain) wrote: a
    /// later create of the same key that finds it taken, or a later delete that finds it gone,
    /// meets the answer a run without faults gets, whatever a read-back says.
    done: Mutex<IdSet>,
}

/// How often a waiting reader looks at the run's stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

impl KeyGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, ById<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes key `id` for `count` operations of one batch, the first of them `row`, if nothing
    /// holds it.
    pub fn try_take(&self, id: u64, row: u64, count: u32) -> Turn {
        let mut held = self.lock();
        match held.get(&id) {
            None => {
                held.insert(id, Held::InFlight { row, count });
                Turn::Go
            }
            Some(Held::InFlight { .. }) => Turn::Busy,
            Some(Held::Deferred { row }) => Turn::Behind { row: *row },
        }
    }

    /// True when key `id` waits for the second pass.
    pub fn deferred(&self, id: u64) -> Option<u64> {
        if self.deferred.load(Ordering::Acquire) == 0 {
            return None;
        }
        match self.lock().get(&id) {
            Some(Held::Deferred { row }) => Some(*row),
            _ => None,
        }
    }

    /// Marks key `id` deferred behind `row` (a row that waits for the second pass).
    pub fn defer(&self, id: u64, row: u64) {
        let mut held = self.lock();
        if !matches!(
            held.insert(id, Held::Deferred { row }),
            Some(Held::Deferred { .. })
        ) {
            self.deferred.fetch_add(1, Ordering::AcqRel);
        }
        drop(held);
        self.released.notify_all();
    }

    /// Releases key `id` for one operation: its row has its final outcome. The key is free once
    /// every operation of its batch that has it is done; a key deferred stays deferred.
    pub fn release(&self, id: u64) {
        self.release_all(&[id]);
    }

    /// [`KeyGate::release`] for several operations at once (one lock, one wake-up).
    pub fn release_all(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut held = self.lock();
        for id in ids {
            match held.get_mut(id) {
                Some(Held::InFlight { count, .. }) if *count > 1 => *count -= 1,
                Some(Held::InFlight { .. }) => {
                    held.remove(id);
                }
                // A later row of the key waits for the second pass: the key stays there until
                // it starts (`clear`), whatever earlier rows still come to.
                Some(Held::Deferred { .. }) | None => {}
            }
        }
        drop(held);
        self.released.notify_all();
    }

    /// Blocks until key `id` is no longer in flight (released or deferred), or `stop` is set.
    /// Call [`KeyGate::try_take`] again afterwards.
    pub fn wait(&self, id: u64, stop: &AtomicBool) {
        let mut held = self.lock();
        while matches!(held.get(&id), Some(Held::InFlight { .. })) && !stop.load(Ordering::Relaxed)
        {
            held = self
                .released
                .wait_timeout(held, STOP_POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Remembers that a create or a delete wrote key `id` (this run, or an earlier run of its
    /// chain).
    pub fn note_done(&self, id: u64) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
    }

    /// True when a create or a delete of this job (or its chain) wrote key `id`.
    pub fn done_in_run(&self, id: u64) -> bool {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Forgets every key in flight (the second pass starts with nothing in flight); the keys
    /// created are kept.
    pub fn clear(&self) {
        self.lock().clear();
        self.deferred.store(0, Ordering::Release);
        self.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_key_is_held_by_one_row_at_a_time() {
        let gate = KeyGate::default();
        assert_eq!(gate.try_take(7, 1, 1), Turn::Go);
        assert_eq!(gate.try_take(7, 2, 1), Turn::Busy);
        assert_eq!(gate.try_take(8, 3, 1), Turn::Go, "other keys are free");
        gate.defer(7, 1);
        assert_eq!(gate.try_take(7, 2, 1), Turn::Behind { row: 1 });
        assert_eq!(gate.deferred(7), Some(1));
        gate.release(7);
        assert_eq!(
            gate.try_take(7, 2, 1),
            Turn::Behind { row: 1 },
            "deferred until the second pass"
        );
        gate.clear();
        assert_eq!(gate.try_take(7, 2, 1), Turn::Go);
        assert_eq!(gate.try_take(8, 4, 1), Turn::Go);
        // A change set with the key twice: free once both are done.
        assert_eq!(gate.try_take(9, 5, 2), Turn::Go);
        gate.release(9);
        assert_eq!(gate.try_take(9, 7, 1), Turn::Busy);
        gate.release(9);
        assert_eq!(gate.try_take(9, 7, 1), Turn::Go);
    }

    #[test]
    fn a_waiting_reader_wakes_when_the_key_is_released_or_the_run_stops() {
        let gate = Arc::new(KeyGate::default());
        let stop = Arc::new(AtomicBool::new(false));
        assert_eq!(gate.try_take(1, 1, 1), Turn::Go);
        let (g, s) = (gate.clone(), stop.clone());
        let waiter = std::thread::spawn(move || {
            g.wait(1, &s);
            g.try_take(1, 2, 1)
        });
        gate.release(1);
        assert_eq!(waiter.join().unwrap(), Turn::Go);
        // Held again by row 2; a stop wakes a waiter without the key.
        let (g, s) = (gate.clone(), stop.clone());
        let waiter = std::thread::spawn(move || {
            g.wait(1, &s);
            g.try_take(1, 3, 1)
        });
        stop.store(true, Ordering::Relaxed);
        assert_eq!(waiter.join().unwrap(), Turn::Busy);
    }
}
