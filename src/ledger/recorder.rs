//! The one sink of a job's outcomes: each outcome is told, in order, to the run ledger's journal
//! (when the run keeps one), the rejects file, the counts and first errors, and the progress
//! display. The writer (a run) and an offline pass (validate, the dry run) both record here.

use super::RejectsWriter;
use crate::outcome::{Counts, Outcome, Progress, Reject, Sink};

/// Records a job's outcomes; see the module.
pub struct Recorder<'a> {
    journal: Option<&'a mut dyn Sink>,
    rejects: Option<&'a mut RejectsWriter>,
    progress: &'a mut dyn Progress,
    keep_errors: usize,
    /// Row counts.
    pub counts: Counts,
    /// The first row errors (up to `keep_errors`), with their positions.
    pub first_errors: Vec<String>,
    /// Rows not sent because an earlier run of a resumed chain did them.
    pub passed_over: u64,
    /// Of those, rows the chain rejected, written again to this run's rejects file.
    pub carried: u64,
    /// The rejects file could not be written: later rejects are not written to it (the journal
    /// still records every outcome, and a resume writes them all to its rejects file). The
    /// caller stops the run.
    pub rejects_error: Option<String>,
    /// The furthest source line settled, for the progress display.
    line: u64,
}

impl<'a> Recorder<'a> {
    /// A recorder writing rejects to `rejects` (none: counted only) and outcomes to the run
    /// ledger's `journal` (none: a run without a ledger, or an offline pass).
    pub fn new(
        rejects: Option<&'a mut RejectsWriter>,
        journal: Option<&'a mut dyn Sink>,
        progress: &'a mut dyn Progress,
        keep_errors: usize,
    ) -> Recorder<'a> {
        Recorder {
            journal,
            rejects,
            progress,
            keep_errors,
            counts: Counts::default(),
            first_errors: Vec::new(),
            passed_over: 0,
            carried: 0,
            rejects_error: None,
            line: 0,
        }
    }

    /// Records one row's outcome. An error means the journal could not record it: the run must
    /// stop sending.
    pub fn note(&mut self, outcome: &Outcome) -> crate::Result<()> {
        if let Some(journal) = self.journal.as_deref_mut() {
            journal.note(outcome)?;
        }
        self.counts.count(outcome);
        match outcome {
            Outcome::PassedOver => self.passed_over += 1,
            Outcome::Carried(reject) => {
                self.passed_over += 1;
                self.carried += 1;
                self.keep(reject);
            }
            Outcome::Rejected(reject) => {
                if self.first_errors.len() < self.keep_errors {
                    self.first_errors
                        .push(format!("{}: {}", reject.pos(), reject.reason()));
                }
                self.keep(reject);
            }
            Outcome::Written(_) | Outcome::Skipped(_) | Outcome::Unchanged(..) => {}
        }
        if let Some(line) = outcome.line() {
            self.line = self.line.max(line);
        }
        self.progress.update(&self.counts, self.line);
        Ok(())
    }

    /// Counts a row an offline pass turned into an operation (nothing is sent).
    pub fn would_write(&mut self) {
        self.counts.read += 1;
        self.counts.written += 1;
    }

    /// Makes everything recorded so far durable in the journal.
    pub fn flush(&mut self) -> crate::Result<()> {
        match self.journal.as_deref_mut() {
            Some(journal) => journal.flush(),
            None => Ok(()),
        }
    }

    /// Writes a reject to the rejects file, unless it already failed.
    fn keep(&mut self, reject: &Reject) {
        let Some(rejects) = self.rejects.as_deref_mut() else {
            return;
        };
        if self.rejects_error.is_some() {
            return;
        }
        if let Err(e) = rejects.write_reject(reject) {
            self.rejects_error = Some(format!(
                "cannot write the rejects file {}: {e}",
                rejects.path().display()
            ));
        }
    }
}
