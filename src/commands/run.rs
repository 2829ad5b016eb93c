//! `dvload run`: load rows into Dataverse; with `--dry-run`, build the `$batch` requests exactly as
//! they would be sent, count and optionally write them, and send nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use crate::batch::Chunker;
use crate::exit::Exit;
use crate::job::Job;
use crate::ledger::journal::keyed_content;
use crate::ledger::packed::ContentIndex;
use crate::ledger::{JobReport, Ledger, RunReport};
use crate::odata::Operation;
use crate::odata::batch::{BatchOptions, encode_batch};

/// Arguments of `dvload run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --dry-run\n  \
    dvload run mappings/accounts.toml --dry-run --emit-batches out/ --batch-size 50\n\n\
    Mapping files run one after the other, in the order given, so that parents load before the \
    children that look them up. Rejected rows go to --rejects FILE, or by default to \
    <source name>.rejects.csv (or .jsonl) in the current directory; with several mappings, --rejects \
    names a directory.\n\n\
    Exit codes: 0 every row written, 1 some rows rejected, 2 mapping/source/command line unusable, \
    3 authentication failed, 4 stopped early (resume it with --resume), 5 another run of this job \
    holds its state directory.\n\n\
    Runs that send keep a ledger in --state DIR (default .dvload/ beside the first mapping): \
    dvload run MAPPING --resume continues an interrupted run, --changed-only sends only what changed, \
    dvload runs lists the history, dvload undo RUN_ID deletes what a run created. Dry runs keep no ledger.")]
pub struct Args {
    /// Mapping files (TOML), run in this order.
    #[arg(required = true, value_name = "MAPPING")]
    pub mappings: Vec<PathBuf>,
    /// The source file; overrides the mapping's [source] path (only with one mapping).
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Build the $batch requests but send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write each request to DIR/batch-000001.http (request line, headers, body).
    #[arg(long, value_name = "DIR", requires = "dry_run")]
    pub emit_batches: Option<PathBuf>,
    /// Operations per $batch request (1 to 1000).
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Put each batch in one change set: all of its rows are written, or none.
    #[arg(long)]
    pub atomic: bool,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write rejected rows here (a directory when several mappings are given).
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,
    /// Batches in flight at most (default: the server's x-ms-dop-hint).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=52))]
    pub concurrency: Option<u16>,
    /// Requests per second at most, across all workers.
    #[arg(long, value_name = "N")]
    pub max_rps: Option<std::num::NonZeroU32>,
    /// How the environment compares key values: ci_ai (case- and accent-insensitive) or ci_as
    /// (case-insensitive, accent-sensitive). Default: the collation of the environment's base
    /// language (organization.languagecode), ci_ai for a dry run.
    #[arg(long, value_name = "ci_ai|ci_as", value_parser = crate::keys::Collation::parse)]
    pub key_collation: Option<crate::keys::Collation>,
    /// Stop (exit 4) once more than N rows were rejected.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Skip custom synchronous plug-ins (MSCRM.BypassCustomPluginExecution; needs prvBypassCustomPlugins).
    #[arg(long)]
    pub bypass_plugins: bool,
    /// Skip custom business logic (MSCRM.BypassBusinessLogicExecution): --bypass-logic skips both,
    /// --bypass-logic=CustomSync or =CustomAsync one. The value only follows `=`, so that
    /// `--bypass-logic accounts.toml` runs the mapping instead of sending its path as the value.
    #[arg(
        long,
        value_name = "WHAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "CustomSync,CustomAsync",
        value_parser = ["CustomSync", "CustomAsync", "CustomSync,CustomAsync"]
    )]
    pub bypass_logic: Option<String>,
    /// Run duplicate detection rules (the Web API skips them unless asked): duplicates are rejected.
    #[arg(long)]
    pub duplicate_detection: bool,
    /// The job's state directory, holding the run ledger and its lock (default: .dvload/ beside the first mapping).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Continue the last run of this job if it did not finish: rows it wrote, rejected or skipped are
    /// passed over. Refused when the mapping or the source changed since (unless --force). Starts
    /// from the first row when the last run finished, so cron can always pass it.
    #[arg(long, conflicts_with = "dry_run")]
    pub resume: bool,
    /// With --resume: continue even though the mapping or the source changed (rows are matched by number).
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Send only rows whose payload differs from what the ledger last wrote for the same key
    /// (the others are counted as unchanged). With --dry-run: count what would be sent, reading
    /// the ledger without writing it.
    #[arg(long)]
    pub changed_only: bool,
    /// Upserts ask Dataverse whether they created their record (Prefer: return=representation with
    /// $select of one key column: 201 created, 200 updated), so that the ledger records the creates
    /// and `dvload undo` can delete them. Costs Dataverse a read per upsert.
    #[arg(long)]
    pub track_creates: bool,
    /// Keep no ledger for this run (no lock, no resume, no history).
    #[arg(long, conflicts_with_all = ["resume", "changed_only", "state"])]
    pub no_ledger: bool,
    /// Connection options.
    #[command(flatten)]
    pub connect: super::connect::ConnectArgs,
    /// Retry options.
    #[command(flatten)]
    pub retry: super::connect::RetryArgs,
}

/// Runs `dvload run`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    if args.source.is_some() && args.mappings.len() > 1 {
        anyhow::bail!(
            "--source applies to one mapping; {} were given",
            args.mappings.len()
        );
    }
    if !args.dry_run {
        return super::write::run(args);
    }
    let started_at = super::now_rfc3339();
    let start = Instant::now();
    // Open every job first, so that a broken mapping stops the run before anything happens.
    let mut jobs = Vec::with_capacity(args.mappings.len());
    for m in &args.mappings {
        let source = args.source.as_deref();
        jobs.push(Job::open(m, source)?);
    }
    if let Some(dir) = &args.emit_batches {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = BatchOptions {
        atomic: args.atomic,
        part_headers: part_headers(&args),
        ..BatchOptions::default()
    };
    let org_url = std::env::var("DATAVERSE_URL")
        .unwrap_or_else(|_| "https://yourorg.crm.dynamics.com".into());
    // --changed-only: compare with the ledger, read only (no lock, no run recorded).
    let ledger = if args.changed_only {
        let dir = args
            .state
            .clone()
            .unwrap_or_else(|| crate::ledger::session::default_state_dir(&args.mappings[0]));
        if Ledger::file(&dir).exists() {
            Some(Ledger::open(&dir)?)
        } else {
            println!(
                "note: no run ledger in {}: every row would be sent (--state DIR names another)",
                dir.display()
            );
            None
        }
    } else {
        None
    };
    let mut previews: HashMap<String, ContentIndex> = HashMap::new();
    let mut batch_no = 0u64;
    let mut reports = Vec::new();
    let several = jobs.len() > 1;
    let mut rejects_taken = Vec::new();
    for mut job in jobs {
        let job_start = Instant::now();
        println!("{}", super::describe_job(&job));
        options.upsert_select = crate::writer::upsert_select(args.track_creates, &job.plan);
        let mut rejects = job.rejects_writer(super::rejects_path(
            args.rejects.as_deref(),
            several,
            &job,
            &mut rejects_taken,
        ));
        // The index as the job would see it: earlier runs, then this run's earlier mappings.
        let mut hashes = match &ledger {
            Some(l) => Some(match previews.remove(&job.plan.entity_set) {
                Some(index) => index,
                None => l.content_index_preview(&job.plan.entity_set)?,
            }),
            None => None,
        };
        let collation = args.key_collation.unwrap_or_default();
        let mut would_write: Vec<(u64, [u8; 16])> = Vec::new();
        let mut unchanged = 0u64;
        let mut pending: Vec<Operation> = Vec::with_capacity(args.batch_size as usize);
        // Where each request ends, as the writer decides it.
        let mut chunk = Chunker::new(usize::from(args.batch_size), args.atomic);
        let mut batches = 0u64;
        let mut bytes = 0u64;
        let mut flush = |pending: &mut Vec<Operation>| -> anyhow::Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            batch_no += 1;
            batches += 1;
            let encoded = encode_batch(pending, &options, uuid::Uuid::from_u128(batch_no as u128));
            bytes += encoded.body.len() as u64;
            if let Some(dir) = &args.emit_batches {
                let path = dir.join(format!("batch-{batch_no:06}.http"));
                std::fs::write(&path, encoded.to_http_file(&org_url))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            pending.clear();
            Ok(())
        };
        let mut tally = job.run_offline(Some(&mut rejects), 20, |op, _record| {
            if let Some(hashes) = &mut hashes {
                if crate::ledger::journal::unchanged(hashes, &op, collation) {
                    unchanged += 1;
                    return Ok(());
                }
                would_write.extend(keyed_content(&op, collation));
            }
            let key_id = (!op.key.is_empty()).then(|| collation.key_id(&op.key));
            if chunk.ends_before(key_id) {
                flush(&mut pending)?;
                chunk.next();
            }
            let full = chunk.add(key_id);
            pending.push(op);
            if full {
                flush(&mut pending)?;
                chunk.next();
            }
            Ok(())
        })?;
        flush(&mut pending)?;
        tally.counts.written -= unchanged;
        tally.counts.unchanged += unchanged;
        if let Some(mut index) = hashes.take() {
            index.extend(would_write);
            previews.insert(job.plan.entity_set.clone(), index);
        }
        let rejects_file = rejects.finish()?;
        let secs = job_start.elapsed().as_secs_f64();
        println!(
            "{}",
            super::summary_line(&tally.counts, "would write", secs)
        );
        println!(
            "{} $batch requests of up to {} operations built ({:.1} MB), none sent",
            super::thousands(batches),
            args.batch_size,
            bytes as f64 / 1e6
        );
        super::print_rejects(&tally.first_errors, rejects_file.as_deref());
        reports.push(JobReport {
            mapping: job.mapping.clone(),
            source: job.source_path.clone(),
            entity_set: job.plan.entity_set.clone(),
            operation: job.plan.operation.name().into(),
            counts: tally.counts,
            batches,
            passed_over: 0,
            rejects_file,
            duration_ms: job_start.elapsed().as_millis() as u64,
            first_errors: tally.first_errors,
        });
    }
    if let Some(dir) = &args.emit_batches {
        println!("requests written to {}", display_dir(dir));
    }
    let rejected: u64 = reports.iter().map(|r| r.counts.rejected).sum();
    let exit = if rejected > 0 {
        Exit::Rejected
    } else {
        Exit::Success
    };
    let report = RunReport::new(
        "run",
        true,
        started_at,
        start.elapsed().as_millis() as u64,
        exit.code(),
        reports,
    );
    super::write_report(args.report.as_deref(), &report)?;
    Ok(exit)
}

fn display_dir(dir: &Path) -> String {
    dir.join("batch-*.http").display().to_string()
}

/// The headers every part carries for the Dataverse options of `args` (`--bypass-plugins`,
/// `--bypass-logic`, `--duplicate-detection`): the same in a dry run as in a real one.
pub fn part_headers(args: &Args) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if args.bypass_plugins {
        headers.push(("MSCRM.BypassCustomPluginExecution".into(), "true".into()));
    }
    if let Some(what) = &args.bypass_logic {
        headers.push(("MSCRM.BypassBusinessLogicExecution".into(), what.clone()));
    }
    if args.duplicate_detection {
        headers.push(("MSCRM.SuppressDuplicateDetection".into(), "false".into()));
    }
    headers
}
