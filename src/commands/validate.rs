//! `dvload validate`: check a mapping against its source and map every row, without any network.

use std::path::PathBuf;
use std::time::Instant;

use crate::exit::Exit;
use crate::job::Job;
use crate::ledger::{JobReport, RunReport};

/// Arguments of `dvload validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload validate mappings/accounts.toml\n  \
    dvload validate mappings/accounts.toml --metadata metadata/      (against pulled metadata; no network)\n  \
    dvload validate mappings/contacts.toml --source exports/contacts-2026-11-26.csv --rejects contacts.rejects.csv\n\n\
    Exit codes: 0 every row maps, 1 some rows would be rejected, 2 the mapping, the source or the command line is unusable.")]
pub struct Args {
    /// The mapping file (TOML).
    pub mapping: PathBuf,
    /// The source file; overrides the mapping's [source] path (its extension decides the format).
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the rows that would be rejected here, in the source's format (validate writes no
    /// rejects file unless asked).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Also check the mapping against table metadata in this folder (`dvload metadata pull`): its
    /// table, columns, key and lookups, as a run checks them before its first write. No network.
    #[arg(long, value_name = "DIR")]
    pub metadata: Option<PathBuf>,
    /// How many row errors to print.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub show_errors: usize,
}

/// Runs `dvload validate`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let started_at = crate::run::text::now_rfc3339();
    let start = Instant::now();
    let mut job = Job::open(&args.mapping, args.source.as_deref())?;
    println!("{}", crate::run::text::describe_job(&job));
    if let Some(line) = crate::run::text::describe_empty(&job) {
        println!("{line}");
    }
    let check = match &args.metadata {
        Some(dir) => {
            let tables = crate::environment::metadata::load_dir(dir)?;
            let check = check_against(dir, &tables, &job)?;
            // Rows are then mapped as a live run maps them: choice and Boolean labels and text
            // lengths from the metadata.
            if let Some(table) = tables.iter().find(|t| t.entity_set == job.plan.entity_set) {
                if let Some(line) = job.complete(table, None)? {
                    println!("{}: {line}", job.mapping.display());
                }
            }
            Some(check)
        }
        None => None,
    };
    let mut rejects = args.rejects.clone().map(|p| job.rejects_writer(p));
    let tally = job.run_offline(rejects.as_mut(), args.show_errors.max(20), |_, _| Ok(()))?;
    let rejects_file = match rejects {
        Some(w) => w.finish()?,
        None => None,
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        crate::run::text::summary_line(&tally.counts, "would write", secs)
    );
    if !tally.first_errors.is_empty() {
        println!("first row errors:");
        let shown = tally.first_errors.len().min(args.show_errors);
        for e in &tally.first_errors[..shown] {
            println!("  {e}");
        }
        let more = tally.counts.rejected.saturating_sub(shown as u64);
        if more > 0 {
            println!(
                "  ... and {} more{}",
                crate::run::text::thousands(more),
                rejects_file
                    .as_ref()
                    .map(|p| format!(" in {}", p.display()))
                    .unwrap_or_else(|| " (--rejects FILE writes them all)".to_string())
            );
        }
    }
    if let Some(p) = &rejects_file {
        println!("rejected rows written to {}", p.display());
    }
    let mut exit = Exit::of(&crate::outcome::Ending::Complete {
        rejected: tally.counts.rejected > 0,
    });
    if let Some(check) = &check {
        if check.exit() != Exit::Success {
            // A mapping that does not fit the environment is unusable, whatever its rows.
            exit = Exit::Unusable;
            println!(
                "the mapping does not fit the environment's metadata: {}",
                check.problems()
            );
        }
    }
    let duration_ms = start.elapsed().as_millis() as u64;
    let report = RunReport::new(
        "validate",
        true,
        started_at,
        duration_ms,
        exit.code(),
        vec![JobReport {
            mapping: job.mapping.clone(),
            source: job.source_path.clone(),
            entity_set: job.plan.entity_set.clone(),
            operation: job.plan.operation.name().into(),
            counts: tally.counts,
            batches: 0,
            passed_over: 0,
            rejects_file,
            duration_ms,
            first_errors: tally.first_errors,
            rejects_known: None,
            rejects_new: None,
        }],
    );
    crate::run::files::write_report(args.report.as_deref(), &report)?;
    Ok(exit)
}

/// Checks the job's mapping against the metadata in `dir`, printing what was checked (and, when
/// something does not fit, the check's report).
fn check_against(
    dir: &std::path::Path,
    tables: &[crate::environment::metadata::TableMetadata],
    job: &Job,
) -> anyhow::Result<crate::environment::check::JobCheck> {
    let mut checker = crate::environment::check::Checker::offline(dir, tables);
    // Nothing is awaited offline: every table's metadata is already there.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let check = runtime.block_on(checker.check_spec(&job.spec));
    if check.exit() == Exit::Success {
        for w in &check.warnings {
            println!("warning: {w}");
        }
        println!(
            "checked against the metadata in {} ({} tables): table, key, columns, types, lengths, option values and lookups fit (privileges are not in the files)",
            dir.display(),
            tables.len()
        );
    } else {
        for line in check.report() {
            println!("{line}");
        }
    }
    Ok(check)
}
