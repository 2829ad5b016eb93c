//! The run as a library operation: its mode (dry run, send, undo), the wiring of the stages, and
//! its typed result. `commands/` parse the command line into [`RunOptions`], call [`execute`],
//! and map the [`Ending`] to an exit code (`exit.rs`, the one place that decides them).
//!
//! A row's path through the stages, as [`send`] wires them:
//! `source/` reads a record → `mapping/` turns it into an `odata::Operation` → `batch` cuts
//! requests → `writer/` sends them (one dispatcher, one retry driver, pacing) → `outcome` names
//! what became of the row → `ledger/` records it (journal, rejects file, report).

/// `say!(console, "format", args…)`: one line on the run's console.
macro_rules! say {
    ($console:expr, $($arg:tt)*) => {
        $console.line(&format!($($arg)*))
    };
}

mod dry;
pub(crate) mod files;
pub(crate) mod html;
pub(crate) mod send;
pub(crate) mod signals;
pub(crate) mod text;
mod undo;

use std::path::PathBuf;

pub use text::thousands;

use crate::environment::connect::ConnectOptions;
use crate::keys::Collation;
use crate::writer::RetryPolicy;

pub use crate::outcome::{Console, Ending};

/// What the run does, with what it needs.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Build the requests as they would be sent, send nothing; `emit` writes each to a file.
    DryRun {
        /// The run.
        options: RunOptions,
        /// The folder for `batch-NNNNNN.http` files.
        emit: Option<PathBuf>,
        /// Table metadata to map rows with, as a live run does (`--metadata DIR`).
        metadata: Option<PathBuf>,
    },
    /// Send them.
    Send(RunOptions),
    /// Delete what an earlier run created.
    Undo(UndoOptions),
}

/// How rows become requests: the same in a dry run as in a real one.
#[derive(Debug, Clone)]
pub struct Batching {
    /// Operations per `$batch` request.
    pub batch_size: u16,
    /// One change set per request (all or nothing).
    pub atomic: bool,
    /// Headers every part carries (`MSCRM.BypassCustomPluginExecution`, …).
    pub part_headers: Vec<(String, String)>,
    /// Upserts ask which rows they created (`Prefer: return=representation`).
    pub track_creates: bool,
}

/// The run ledger's options.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// The state directory; `None` runs without a ledger (`--no-ledger`: no resume, no undo).
    pub state: Option<PathBuf>,
    /// Continue the interrupted run.
    pub resume: bool,
    /// Start anew although a run was interrupted.
    pub force: bool,
    /// Send only rows whose content changed since the ledger last saw them.
    pub changed_only: bool,
}

/// Everything a run of mappings needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The mapping files, run in this order.
    pub mappings: Vec<PathBuf>,
    /// Each mapping's source instead of its own (`None`: its own), in the mappings' order.
    pub sources: Vec<Option<PathBuf>>,
    /// Rejects file (one mapping) or folder (several).
    pub rejects: Option<PathBuf>,
    /// The JSON report's path.
    pub report: Option<PathBuf>,
    /// The HTML report's path.
    pub report_html: Option<PathBuf>,
    /// How rows become requests.
    pub batching: Batching,
    /// The ledger.
    pub ledger: LedgerOptions,
    /// How keys compare (`--key-collation`); by default the environment's.
    pub key_collation: Option<Collation>,
    /// Stop after this many rejected rows.
    pub max_errors: Option<u64>,
    /// `--fail-on`: which rejects fail the run, over each mapping's own.
    pub fail_on: Option<crate::exit::FailOn>,
    /// Batches in flight at most (default: the server's hint).
    pub concurrency: Option<u16>,
    /// Requests per second at most.
    pub max_rps: Option<std::num::NonZeroU32>,
    /// Where and how to connect.
    pub connect: ConnectOptions,
    /// The retry rules.
    pub policy: RetryPolicy,
}

/// Everything an undo needs.
#[derive(Debug, Clone)]
pub struct UndoOptions {
    /// The run whose creates to delete.
    pub run_id: i64,
    /// The state directory holding its ledger.
    pub state: PathBuf,
    /// Delete without asking.
    pub yes: bool,
    /// Deletes per request.
    pub batch_size: u16,
    /// Batches in flight at most.
    pub concurrency: Option<u16>,
    /// Where and how to connect.
    pub connect: ConnectOptions,
    /// The retry rules.
    pub policy: RetryPolicy,
}

/// What a run returns: how it ended and, when it stopped, the message that says why and how to
/// go on (the command line prints it as its error).
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// Why it stopped, when it did.
    pub message: Option<String>,
}

impl Finished {
    fn complete(rejected: bool) -> Finished {
        Finished {
            ending: Ending::Complete { rejected },
            message: None,
        }
    }

    /// Some rows were rejected: a complete run says so; a stopped one stays stopped.
    fn rejected(&mut self) {
        if let Ending::Complete { rejected } = &mut self.ending {
            *rejected = true;
        }
    }

    /// The run stops as `ending`, saying `message`.
    fn stop(&mut self, ending: Ending, message: String) {
        self.ending = ending;
        self.message = Some(message);
    }
}

/// When a run started: its report's `started_at` and duration.
#[derive(Debug, Clone)]
struct Started {
    at: String,
    instant: std::time::Instant,
}

impl Started {
    fn now() -> Started {
        Started {
            at: text::now_rfc3339(),
            instant: std::time::Instant::now(),
        }
    }

    /// The run's report, ending with `exit`.
    fn report(
        &self,
        dry_run: bool,
        exit: crate::exit::Exit,
        jobs: Vec<crate::ledger::JobReport>,
    ) -> crate::ledger::RunReport {
        crate::ledger::RunReport::new(
            "run",
            dry_run,
            self.at.clone(),
            self.instant.elapsed().as_millis() as u64,
            exit.code(),
            jobs,
        )
    }
}

/// The async runtime the run's requests go through.
fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(crate::Error::io("cannot start the async runtime"))
}

/// Runs `mode`, saying what it does on `console`. An error is a run refused before
/// it began (a mapping, a source, the settings, sign-in, the ledger's lock) or one whose outputs
/// failed at its end; its exit code is `exit::exit_for`'s.
pub fn execute(mode: Mode, console: &mut dyn Console) -> crate::Result<Finished> {
    match mode {
        Mode::DryRun {
            options,
            emit,
            metadata,
        } => dry::run(&options, emit.as_deref(), metadata.as_deref(), console),
        Mode::Send(options) => send::run(options, console),
        Mode::Undo(options) => undo::run(&options, console),
    }
}
