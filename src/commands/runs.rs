//! `dvload runs`: the history of a job from its run ledger; `dvload runs show RUN_ID`: one run's
//! report and its rejected rows.

use std::path::{Path, PathBuf};

use crate::exit::Exit;
use crate::ledger::Ledger;
use crate::outcome::RowState;

/// Where a job's state directory is, for commands that read the ledger.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// The job's state directory (as given to `dvload run --state`).
    #[arg(long, value_name = "DIR", global = true)]
    pub state: Option<PathBuf>,
    /// Or: a mapping file of the job; its state directory is .dvload/ beside it (the default of `dvload run`).
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "state")]
    pub mapping: Option<PathBuf>,
}

impl StateArgs {
    /// The state directory: --state, .dvload/ beside --mapping, or ./.dvload.
    pub fn dir(&self) -> PathBuf {
        match (&self.state, &self.mapping) {
            (Some(s), _) => s.clone(),
            (None, Some(m)) => crate::ledger::session::default_state_dir(m),
            (None, None) => Path::new(".dvload").to_path_buf(),
        }
    }
}

/// Arguments of `dvload runs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload runs --mapping mappings/accounts.toml\n  \
    dvload runs show 12 --state /var/lib/dvload/nightly\n\n\
    The ledger is a SQLite file (STATE_DIR/ledger.sqlite) that the sqlite3 shell opens too; docs/ledger.md \
    documents its tables.")]
pub struct Args {
    /// `show RUN_ID`: one run in detail.
    #[command(subcommand)]
    pub command: Option<Sub>,
    /// Where the ledger is.
    #[command(flatten)]
    pub state: StateArgs,
    /// How many runs to list (newest first).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

/// `dvload runs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Print one run's report (per mapping: source, hashes, counts) and its rejected rows.
    Show {
        /// The run id (see `dvload runs`).
        run_id: i64,
        /// How many rejected rows to print.
        #[arg(long, default_value_t = 100, value_name = "N")]
        rejects: usize,
        /// Also write the run as one self-contained HTML page here (as run --report-html, without
        /// the timeline, which only a run records as it goes).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Delete the per-row outcomes of all runs but the newest N (their summaries stay in the
    /// history; they can no longer be undone). Runs a resume may continue keep their rows.
    Prune {
        /// How many of the newest runs keep their rows.
        #[arg(long, value_name = "N")]
        keep: usize,
        /// Then shrink the file (VACUUM: rewrites it; without it the space is reused by later runs).
        #[arg(long)]
        vacuum: bool,
    },
}

fn status(r: &crate::ledger::db::RunRow, live: Option<i64>) -> String {
    match r.exit_code {
        Some(c) => format!("exit {c}"),
        None if live == Some(r.id) => "running".into(),
        None => "did not finish".into(),
    }
}

/// The run that is going on now, if any: the newest run, when it has no end recorded and a live
/// process holds the job's lock since it started (not an `undo` or `prune` that took the lock
/// after the run was killed). The lock is taken without waiting and let go at once: a run starting
/// in that instant finds the directory busy (exit 5), a window of microseconds.
fn live_run(dir: &Path, newest: Option<&crate::ledger::db::RunRow>) -> Option<i64> {
    let newest = newest.filter(|r| r.ended_at.is_none() && r.exit_code.is_none())?;
    match crate::ledger::StateLock::acquire(dir) {
        Err(crate::ledger::lock::LockError::Busy { holder, .. }) => {
            // "pid N since 2024-05-01T02:00:00Z": the holder took the lock before its run
            // started; one that took it later is another command.
            let since = holder.split(" since ").nth(1).map(str::trim);
            since
                .is_none_or(|since| since <= newest.started_at.as_str())
                .then_some(newest.id)
        }
        _ => None,
    }
}

/// Writes run `r` as an HTML page from what the ledger holds: its jobs' counts, and the rejects
/// of its resume chain grouped by reason, new and known.
fn write_html(
    ledger: &Ledger,
    r: &crate::ledger::db::RunRow,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let jobs: Vec<crate::ledger::JobReport> = ledger
        .jobs(r.id)?
        .into_iter()
        .map(|(info, counts, passed_over)| crate::ledger::JobReport {
            mapping: info.mapping.into(),
            source: info.source.into(),
            entity_set: info.entity_set,
            operation: info.operation,
            counts,
            batches: 0,
            passed_over,
            rejects_file: None,
            duration_ms: 0,
            first_errors: Vec::new(),
            rejects_known: None,
            rejects_new: None,
        })
        .collect();
    let duration_ms = match (
        r.started_at.parse::<jiff::Timestamp>(),
        r.ended_at.as_deref().map(str::parse::<jiff::Timestamp>),
    ) {
        (Ok(a), Some(Ok(b))) => b.duration_since(a).as_millis().max(0) as u64,
        _ => 0,
    };
    let report = crate::ledger::RunReport::new(
        "run",
        false,
        r.started_at.clone(),
        duration_ms,
        r.exit_code.unwrap_or(4) as u8,
        jobs,
    );
    let rejects: Vec<(usize, u64, String, Option<bool>)> = ledger
        .chain_rejects(r.chain)?
        .into_iter()
        .map(|c| (c.seq, c.row, c.error, Some(c.known)))
        .collect();
    let groups = crate::run::html::group_rejects(&rejects);
    let stopped = r.unfinished().then(|| {
        "this run did not finish its rows: `dvload run ... --resume` continues it".to_string()
    });
    let page = crate::run::html::Page {
        title: format!("dvload run #{}", r.id),
        report: &report,
        samples: &[],
        rejects: &groups,
        choices: &[("mappings".to_string(), r.job.replace('\n', " "))],
        stopped: stopped.as_deref(),
    };
    crate::ledger::report::write_atomically(path, crate::run::html::render(&page).as_bytes())
        .map_err(crate::Error::io(format!(
            "cannot write the HTML report {}",
            path.display()
        )))?;
    Ok(())
}

/// Runs `dvload runs`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let dir = args.state.dir();
    if let Some(Sub::Prune { keep, vacuum }) = args.command {
        // Like a run and undo: one at a time per state directory.
        let _lock = crate::ledger::session::lock(&dir)?;
        let mut ledger = Ledger::open_existing(&dir)?;
        let (runs, deleted) = ledger.prune(keep)?;
        if runs.is_empty() {
            println!(
                "nothing to prune: every run but the newest {keep} already has no rows, or a resume may still need them"
            );
        } else {
            let which = match runs.as_slice() {
                [one] => format!("run #{one}"),
                [first, .., last] => format!("{} runs (#{first} to #{last})", runs.len()),
                [] => unreachable!("not empty"),
            };
            println!(
                "pruned the row outcomes of {which}: {} records deleted; the history keeps its summary",
                super::thousands(deleted)
            );
        }
        if vacuum {
            ledger.vacuum()?;
            println!("{} vacuumed", Ledger::file(&dir).display());
        }
        return Ok(Exit::Success);
    }
    let ledger = Ledger::open_existing(&dir)?;
    match args.command {
        None => {
            let runs = ledger.runs(args.limit)?;
            let live = live_run(&dir, runs.first());
            if runs.is_empty() {
                println!("no runs in {}", Ledger::file(&dir).display());
                return Ok(Exit::Success);
            }
            println!(
                "{:>5}  {:<20}  {:<14}  {:>10}  {:>10}  {:>9}  {:>8}  {:>10}  {:>11}  note",
                "run",
                "started",
                "status",
                "read",
                "written",
                "rejected",
                "skipped",
                "unchanged",
                "passed over"
            );
            for r in &runs {
                let mut note = Vec::new();
                if let Some(from) = r.resumed_from {
                    note.push(format!("resumed #{from}"));
                }
                if r.changed_only {
                    note.push("changed-only".into());
                }
                let jobs: Vec<String> = r
                    .job
                    .lines()
                    .map(|l| {
                        Path::new(l)
                            .file_name()
                            .map_or(l.to_string(), |f| f.to_string_lossy().into_owned())
                    })
                    .collect();
                note.push(jobs.join(" "));
                println!(
                    "{:>5}  {:<20}  {:<14}  {:>10}  {:>10}  {:>9}  {:>8}  {:>10}  {:>11}  {}",
                    r.id,
                    r.started_at,
                    status(r, live),
                    super::thousands(r.counts.read),
                    super::thousands(r.counts.written),
                    super::thousands(r.counts.rejected),
                    super::thousands(r.counts.skipped),
                    super::thousands(r.counts.unchanged),
                    super::thousands(r.passed_over),
                    note.join(", ")
                );
            }
        }
        Some(Sub::Prune { .. }) => unreachable!("handled above"),
        Some(Sub::Show {
            run_id,
            rejects,
            html,
        }) => {
            let Some(r) = ledger.run(run_id)? else {
                anyhow::bail!("no run #{run_id} in {}", Ledger::file(&dir).display());
            };
            if let Some(path) = &html {
                write_html(&ledger, &r, path)?;
                println!("HTML report written to {}", path.display());
            }
            if ledger.pruned(&r)? {
                println!(
                    "run #{run_id}'s row outcomes were pruned (dvload runs prune): its summary follows"
                );
            }
            let newest = ledger.runs(1)?.into_iter().next();
            let live = live_run(&dir, newest.as_ref().filter(|n| n.id == r.id));
            println!(
                "run #{}: started {}, {}{}",
                r.id,
                r.started_at,
                match &r.ended_at {
                    Some(e) => format!("ended {e}, {}", status(&r, live)),
                    None if live == Some(r.id) => {
                        "running (a live process holds the job's lock)".into()
                    }
                    None =>
                        "did not finish (killed); `dvload run ... --resume` continues it".into(),
                },
                r.resumed_from
                    .map(|f| format!(", resumed run #{f}"))
                    .unwrap_or_default()
            );
            if r.changed_only {
                println!("--changed-only");
            }
            for (info, counts, passed_over) in ledger.jobs(run_id)? {
                println!(
                    "{} -> {} ({})\n  mapping sha256 {}\n  source {} ({} bytes, sha256 {})\n  {}{}",
                    info.mapping,
                    info.entity_set,
                    info.operation,
                    info.mapping_hash,
                    info.source,
                    super::thousands(info.source_size),
                    info.source_hash,
                    crate::run::text::summary_line(&counts, "written", 0.0)
                        .split("  in ")
                        .next()
                        .unwrap_or_default(),
                    if passed_over > 0 {
                        format!("  passed over {}", super::thousands(passed_over))
                    } else {
                        String::new()
                    }
                );
            }
            let created = ledger
                .rows_of(run_id, RowState::Written)?
                .iter()
                .filter(|d| d.created == 1)
                .count();
            if created > 0 {
                println!(
                    "{} records created (`dvload undo {run_id}` deletes them)",
                    super::thousands(created as u64)
                );
            }
            let rejected = ledger.rows_of(run_id, RowState::Rejected)?;
            let unsent = ledger.rows_of(run_id, RowState::Unsent)?;
            if !rejected.is_empty() {
                println!(
                    "rejected rows ({}):",
                    super::thousands(rejected.len() as u64)
                );
                for d in rejected.iter().take(rejects) {
                    println!(
                        "  row {} (line {}){}: {}",
                        d.row,
                        d.line,
                        d.key
                            .as_deref()
                            .map(|k| format!(" [{k}]"))
                            .unwrap_or_default(),
                        d.error.as_deref().unwrap_or_default()
                    );
                }
                if rejected.len() > rejects {
                    println!("  ... {} more", rejected.len() - rejects);
                }
            }
            if !unsent.is_empty() {
                println!(
                    "{} rows were not sent before the run stopped (a resume sends them)",
                    super::thousands(unsent.len() as u64)
                );
            }
        }
    }
    Ok(Exit::Success)
}
