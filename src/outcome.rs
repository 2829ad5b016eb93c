//! The outcome vocabulary: what a source row became before sending ([`Step`]), what the run
//! ledger decides for it ([`Admit`]), what became of it ([`Outcome`], [`Written`], [`Reject`]),
//! how the ledger keeps it ([`RowState`]) and the counts ([`Counts`]). The job makes steps, the
//! writer turns them into outcomes, the ledger, the rejects file and the reports record them:
//! each of those stages imports these words from here, none from another.

use serde::Serialize;

use crate::odata::Operation;
pub use crate::source::RowPos;
use crate::source::{BadRecord, Record};

/// What one source item became.
#[derive(Debug)]
pub enum Step {
    /// An operation, with the record it came from (kept for the rejects file, should the
    /// service refuse it).
    Operation(Operation, Record),
    /// Skipped by the mapping's filter.
    Skipped(RowPos),
    /// Rejected before anything was sent: unreadable, or the mapping refused it.
    Rejected(Reject),
}

/// A rejected row and what is known of it.
#[derive(Debug)]
pub enum Reject {
    /// The mapping refused a readable record.
    Mapping(Record, crate::mapping::RowError),
    /// The record could not be read.
    Unreadable(BadRecord),
    /// Dataverse refused it, or it could not be written (the reason says which).
    Service(Record, String),
    /// The run stopped (interrupted, too many errors, a fatal set-up error) before this row was
    /// written: in the rejects file like any reject, but the ledger records it `unsent`, so that a
    /// resume sends it.
    Unsent(Record, String),
}

impl Reject {
    /// The row's position.
    pub fn pos(&self) -> RowPos {
        match self {
            Reject::Mapping(r, _) | Reject::Service(r, _) | Reject::Unsent(r, _) => r.pos,
            Reject::Unreadable(b) => b.pos,
        }
    }

    /// The reason, without the row position (that goes in its own column).
    pub fn reason(&self) -> String {
        match self {
            Reject::Mapping(_, e) => row_error_reason(e),
            Reject::Unreadable(b) => b.reason.clone(),
            Reject::Service(_, reason) | Reject::Unsent(_, reason) => reason.clone(),
        }
    }
}

/// A row error's text without its position: `column 'x' (from 'y'): reason`.
pub fn row_error_reason(e: &crate::mapping::RowError) -> String {
    match (&e.column, &e.field) {
        (Some(c), Some(f)) => format!("column '{c}' (from '{f}'): {}", e.reason),
        (Some(c), None) => format!("column '{c}': {}", e.reason),
        (None, Some(f)) => format!("field '{f}': {}", e.reason),
        (None, None) => e.reason.clone(),
    }
}

/// A row Dataverse accepted: its operation, and the record's URI when the response gave one
/// (`OData-EntityId`). The run ledger keeps both (undo, `--changed-only`).
#[derive(Debug)]
pub struct Written {
    /// The row.
    pub pos: RowPos,
    /// What was sent.
    pub op: Operation,
    /// `OData-EntityId` (or `Location`) of the part, when given.
    pub entity_id: Option<String>,
    /// The part's status: `201` when an upsert asked for its record back created it; `412` for
    /// a create settled by reading its record back.
    pub status: u16,
    /// True when the record was read back after an ambiguous answer and shows this run (or an
    /// interrupted run of its chain) created it.
    pub created: bool,
    /// The id dvload gave the record this create made (see [`crate::ids`]), if it gave one.
    pub own_id: Option<uuid::Uuid>,
}

/// What became of a row, told to the [`Sink`] and counted by [`Counts::count`].
#[derive(Debug)]
pub enum Outcome {
    /// Written.
    Written(Written),
    /// Not sent: the run ledger holds the same payload for its key (`--changed-only`).
    Unchanged(RowPos, String),
    /// Not sent: an earlier run of a resumed chain did this row.
    PassedOver,
    /// Not sent: an earlier run of a resumed chain rejected this row; it goes to this run's
    /// rejects file again (with the reason recorded then), and is counted passed over.
    Carried(Reject),
    /// Skipped by the filter.
    Skipped(RowPos),
    /// Rejected (by the mapping, the reader or Dataverse).
    Rejected(Reject),
}

/// Told every row's outcome on the recorder's task, once Dataverse has answered for it.
pub trait Sink {
    /// One outcome (written, rejected, skipped, unchanged, passed over).
    fn note(&mut self, outcome: &Outcome) -> crate::Result<()>;
    /// Everything noted so far must be durable.
    fn flush(&mut self) -> crate::Result<()>;
}

/// What the run ledger decides for a row before it is sent (see `ledger::journal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Send it (or count it, for a skip or a reject); `sent_before`: an earlier, interrupted
    /// run may have sent it already (a 412 on create or 404 on delete then means written).
    Send {
        /// See above.
        sent_before: bool,
    },
    /// An earlier run of the resumed chain did it: leave it out of this run.
    PassOver,
    /// An earlier run of the resumed chain rejected it, for this reason: leave it out of this
    /// run, but write it to this run's rejects file again (the chain's rejects file holds every
    /// row the chain rejected).
    PassOverRejected(String),
    /// `--changed-only`: the ledger holds the same payload for its key: do not send it.
    Unchanged,
}

/// Decides, on the reader thread, what each row becomes before it is sent.
pub type AdmitFn = Box<dyn FnMut(&Step) -> Admit + Send>;

/// Something that shows progress (a terminal bar, or nothing).
pub trait Progress: Send {
    /// Called after each outcome; `line` is the furthest physical line of the source whose row
    /// is settled (a record's first line: rows with quoted line breaks span several), which
    /// says how far through the file the job is better than a row count.
    fn update(&mut self, counts: &Counts, line: u64);
    /// Called once the job's rows are all settled (a display clears itself).
    fn finish(&mut self) {}
}

/// Where the run's lines go as it goes: a long nightly run says what it does while it does it.
pub trait Console {
    /// One line (or several, joined by `\n`) for the user.
    fn line(&mut self, text: &str);
    /// The progress display for a job reading `source`.
    fn progress(&mut self, source: &std::path::Path) -> Box<dyn Progress>;
    /// Asks `question` (y/N); `Ok(None)` when there is no one to ask (not a terminal).
    fn confirm(&mut self, question: &str) -> std::io::Result<Option<bool>>;
}

/// A console that says nothing and asks no one (tests).
#[cfg(test)]
pub struct Quiet;

#[cfg(test)]
impl Console for Quiet {
    fn line(&mut self, _: &str) {}
    fn progress(&mut self, _: &std::path::Path) -> Box<dyn Progress> {
        Box::new(())
    }
    fn confirm(&mut self, _: &str) -> std::io::Result<Option<bool>> {
        Ok(None)
    }
}

impl Outcome {
    /// The physical line the row starts on, when the outcome has a row of this run.
    pub fn line(&self) -> Option<u64> {
        match self {
            Outcome::Written(w) => Some(w.pos.line),
            Outcome::Unchanged(pos, _) | Outcome::Skipped(pos) => Some(pos.line),
            Outcome::Rejected(r) | Outcome::Carried(r) => Some(r.pos().line),
            Outcome::PassedOver => None,
        }
    }
}

impl Progress for () {
    fn update(&mut self, _: &Counts, _: u64) {}
}

/// Row counts. Invariant: `read = written + rejected + skipped + unchanged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records read from the source (readable or not).
    pub read: u64,
    /// Rows that produced an operation accepted by Dataverse (in a dry run: that produced an
    /// operation; nothing is sent).
    pub written: u64,
    /// Rows rejected, by the mapping or by Dataverse; each is in the rejects file.
    pub rejected: u64,
    /// Rows skipped by the mapping's `[filter]`.
    pub skipped: u64,
    /// `--changed-only`: rows whose payload is the one the ledger last wrote for their key
    /// (not sent).
    pub unchanged: u64,
}

impl Counts {
    /// True when every row read has exactly one outcome.
    #[cfg(test)]
    pub fn balanced(&self) -> bool {
        self.read == self.written + self.rejected + self.skipped + self.unchanged
    }

    /// Adds another job's counts.
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.written += other.written;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
        self.unchanged += other.unchanged;
    }

    /// Counts one row's outcome (rows passed over are not read by this run: not counted).
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Written(_) => self.written += 1,
            Outcome::Unchanged(..) => self.unchanged += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Rejected(_) => self.rejected += 1,
            Outcome::PassedOver | Outcome::Carried(_) => return,
        }
        self.read += 1;
    }
}

/// What became of one row, as the ledger keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Dataverse accepted its operation.
    Written,
    /// Rejected by the reader, the mapping or Dataverse.
    Rejected,
    /// Skipped by the mapping's filter.
    Skipped,
    /// `--changed-only`: same payload as last written.
    Unchanged,
    /// The run stopped before writing it (a resume sends it).
    Unsent,
}

impl RowState {
    /// The text stored in `rows.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Written => "written",
            RowState::Rejected => "rejected",
            RowState::Skipped => "skipped",
            RowState::Unchanged => "unchanged",
            RowState::Unsent => "unsent",
        }
    }
}

/// How a run ended: the exit code follows from it (`exit::Exit::of`, the one place that decides
/// exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every row was settled; `rejected` when some were rejected (or carried over rejected).
    Complete {
        /// Some rows were rejected.
        rejected: bool,
    },
    /// Ctrl-C or SIGTERM: what was in flight was recorded.
    Interrupted,
    /// More rows were rejected than `--max-errors` allows.
    TooManyErrors,
    /// An output of the run (the rejects file, the ledger, the report) could not be written.
    OutputFailed,
    /// Dataverse refused the mapping (a table or column it does not have).
    MappingRefused,
    /// Dataverse refused the application user (sign-in, a privilege).
    SetupRefused,
    /// The source broke in the middle (a row that cannot be read further).
    SourceBroken,
}
