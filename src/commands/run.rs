//! `dvload run`'s command line: its arguments become `run::RunOptions`, `run::execute` loads the
//! rows (or, with `--dry-run`, builds the `$batch` requests exactly as they would be sent and
//! sends nothing), and its ending becomes the exit code.

use std::path::{Path, PathBuf};

use crate::exit::Exit;
use crate::run::{Batching, LedgerOptions, Mode, RunOptions};

/// Arguments of `dvload run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --emulator      (against the built-in emulator)\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --profile prod  (a profile of dvload.toml)\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml                 (DATAVERSE_URL and AZURE_* set)\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --profile prod --resume   (after exit 4)\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --dry-run --emit-batches out/\n  \
    dvload run mappings/accounts.toml mappings/contacts.toml --profile prod --source accounts=accounts.rejects.csv\n\n\
    Mapping files run one after the other, in the order given, so that parents load before the \
    children that look them up. Rejected rows go to --rejects FILE, or by default to \
    <source name>.rejects.csv (or .jsonl) in the current directory; with several mappings, --rejects \
    names a directory.\n\n\
    Exit codes: 0 every row written (or its rejects pass --fail-on), 1 rejects that fail the run, 2 mapping/source/command line unusable, \
    3 authentication failed, 4 stopped early (resume it with --resume), 5 another run of this job \
    holds its state directory.\n\n\
    Runs that send keep a ledger in --state DIR (default .dvload/ beside the first mapping): \
    dvload run MAPPING --resume continues an interrupted run, --changed-only sends only what changed, \
    dvload runs lists the history, dvload undo RUN_ID deletes what a run created. Dry runs keep no ledger.")]
pub struct Args {
    /// Mapping files (TOML), run in this order.
    #[arg(required = true, value_name = "MAPPING")]
    pub mappings: Vec<PathBuf>,
    /// A source file instead of the mapping's [source] path: FILE with one mapping; with several,
    /// NAME=FILE, NAME being a mapping's file name without .toml (accounts) or its path, once per
    /// mapping that reads another file (the others read their own).
    #[arg(long, value_name = "[NAME=]FILE")]
    pub source: Vec<String>,
    /// Build the $batch requests but send nothing.
    #[arg(help_heading = "Dry run", long)]
    pub dry_run: bool,
    /// With --dry-run: write each request to DIR/batch-000001.http (request line, headers, body).
    #[arg(
        help_heading = "Dry run",
        long,
        value_name = "DIR",
        requires = "dry_run"
    )]
    pub emit_batches: Option<PathBuf>,
    /// With --dry-run: map rows as a live run would, with the table metadata in DIR (`dvload
    /// metadata pull`): choice and Boolean labels and text lengths the mapping leaves open.
    #[arg(
        help_heading = "Dry run",
        long,
        value_name = "DIR",
        requires = "dry_run"
    )]
    pub metadata: Option<PathBuf>,
    /// Operations per $batch request (1 to 1000).
    #[arg(help_heading = "Sending", long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Put each batch in one change set: all of its rows are written, or none.
    #[arg(help_heading = "Sending", long)]
    pub atomic: bool,
    /// Write a JSON report here.
    #[arg(help_heading = "Output and exit", long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the report as one self-contained HTML page here: counts, throughput and throttling
    /// over time, rejects by reason (new and known), what the run chose.
    #[arg(
        help_heading = "Output and exit",
        long,
        value_name = "FILE",
        conflicts_with = "dry_run"
    )]
    pub report_html: Option<PathBuf>,
    /// Write rejected rows here (a directory when several mappings are given).
    #[arg(help_heading = "Output and exit", long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,
    /// Batches in flight at most (default: the server's x-ms-dop-hint).
    #[arg(help_heading = "Sending", long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=52))]
    pub concurrency: Option<u16>,
    /// Requests per second at most, across all workers.
    #[arg(help_heading = "Sending", long, value_name = "N")]
    pub max_rps: Option<std::num::NonZeroU32>,
    /// How the environment compares key values: ci_ai (case- and accent-insensitive) or ci_as
    /// (case-insensitive, accent-sensitive). Default: the collation of the environment's base
    /// language (organization.languagecode), ci_ai for a dry run.
    #[arg(help_heading = "Sending", long, value_name = "ci_ai|ci_as", value_parser = crate::keys::Collation::parse)]
    pub key_collation: Option<crate::keys::Collation>,
    /// Stop (exit 4) once more than N rows were rejected.
    #[arg(help_heading = "Output and exit", long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Which rejects make the run exit 1: rejects, new-rejects (no earlier run of the job
    /// rejected that row for that reason), rejects>N, rejects>P%, joined by commas; or never.
    /// Wins over a mapping's [run] fail_on. Default: new-rejects,rejects>10%.
    #[arg(help_heading = "Output and exit", long, env = "DVLOAD_FAIL_ON", value_name = "POLICY", value_parser = crate::exit::FailOn::parse)]
    pub fail_on: Option<crate::exit::FailOn>,
    /// Skip custom synchronous plug-ins (MSCRM.BypassCustomPluginExecution; needs prvBypassCustomPlugins).
    #[arg(help_heading = "Sending", long)]
    pub bypass_plugins: bool,
    /// Skip custom business logic (MSCRM.BypassBusinessLogicExecution): --bypass-logic skips both,
    /// --bypass-logic=CustomSync or =CustomAsync one. The value only follows `=`, so that
    /// `--bypass-logic accounts.toml` runs the mapping instead of sending its path as the value.
    #[arg(help_heading = "Sending", 
        long,
        value_name = "WHAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "CustomSync,CustomAsync",
        value_parser = ["CustomSync", "CustomAsync", "CustomSync,CustomAsync"]
    )]
    pub bypass_logic: Option<String>,
    /// Run duplicate detection rules (the Web API skips them unless asked): duplicates are rejected.
    #[arg(help_heading = "Sending", long)]
    pub duplicate_detection: bool,
    /// The job's state directory, holding the run ledger and its lock (default: .dvload/ beside the first mapping).
    #[arg(help_heading = "Run ledger", long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Continue the last run of this job if it did not finish: rows it wrote, rejected or skipped are
    /// passed over. Refused when the mapping or the source changed since (unless --force). Starts
    /// from the first row when the last run finished, so cron can always pass it.
    #[arg(help_heading = "Run ledger", long, conflicts_with = "dry_run")]
    pub resume: bool,
    /// With --resume: continue even though the mapping or the source changed (rows are matched by number).
    #[arg(help_heading = "Run ledger", long, requires = "resume")]
    pub force: bool,
    /// Send only rows whose payload differs from what the ledger last wrote for the same key
    /// (the others are counted as unchanged). With --dry-run: count what would be sent, reading
    /// the ledger without writing it.
    #[arg(help_heading = "Run ledger", long)]
    pub changed_only: bool,
    /// Upserts ask Dataverse whether they created their record (Prefer: return=representation with
    /// $select of one key column: 201 created, 200 updated), so that the ledger records the creates
    /// and `dvload undo` can delete them. Costs Dataverse a read per upsert.
    #[arg(help_heading = "Sending", long)]
    pub track_creates: bool,
    /// Keep no ledger for this run (no lock, no resume, no history).
    #[arg(help_heading = "Run ledger", long, conflicts_with_all = ["resume", "changed_only", "state"])]
    pub no_ledger: bool,
    /// Connection options.
    #[command(flatten)]
    pub connect: super::connect::ConnectArgs,
    /// Retry options.
    #[command(flatten)]
    pub retry: super::connect::RetryArgs,
}

/// Each mapping's `--source`, in the mappings' order (`None`: the mapping's own): `FILE` alone
/// with one mapping, `NAME=FILE` otherwise, NAME being a mapping's file stem or its path as given.
pub fn sources_by_mapping(
    mappings: &[PathBuf],
    given: &[String],
) -> Result<Vec<Option<PathBuf>>, crate::Error> {
    let names: Vec<String> = mappings
        .iter()
        .map(|m| {
            m.file_stem().map_or_else(
                || m.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let listed = || names.join(", ");
    let mut out: Vec<Option<PathBuf>> = vec![None; mappings.len()];
    for arg in given {
        // NAME=FILE when the part before '=' names a mapping; otherwise the whole is a file.
        let named = arg.split_once('=').and_then(|(name, file)| {
            let hits: Vec<usize> = (0..mappings.len())
                .filter(|&i| names[i] == name || mappings[i] == Path::new(name))
                .collect();
            (!hits.is_empty()).then(|| (name.to_string(), hits, PathBuf::from(file)))
        });
        let (index, file) = match named {
            Some((name, hits, _)) if hits.len() > 1 => {
                return Err(crate::Error::Unusable(format!(
                    "--source {arg}: '{name}' names {} of the mappings; name it by its path",
                    hits.len()
                )));
            }
            Some((_, hits, file)) => (hits[0], file),
            None if mappings.len() == 1 => (0, PathBuf::from(arg)),
            None => {
                return Err(crate::Error::Unusable(format!(
                    "--source {arg}: with several mappings, say which reads it: --source NAME=FILE, NAME one of {}",
                    listed()
                )));
            }
        };
        if out[index].is_some() {
            return Err(crate::Error::Unusable(format!(
                "--source {arg}: mapping '{}' has a source already; give one per mapping",
                names[index]
            )));
        }
        out[index] = Some(file);
    }
    Ok(out)
}

/// Runs `dvload run`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let sources = sources_by_mapping(&args.mappings, &args.source)?;
    let options = RunOptions {
        sources,
        rejects: args.rejects.clone(),
        report: args.report.clone(),
        report_html: args.report_html.clone(),
        batching: Batching {
            batch_size: args.batch_size,
            atomic: args.atomic,
            part_headers: part_headers(&args),
            track_creates: args.track_creates,
        },
        ledger: LedgerOptions {
            state: (!args.no_ledger).then(|| {
                args.state
                    .clone()
                    .unwrap_or_else(|| crate::ledger::session::default_state_dir(&args.mappings[0]))
            }),
            resume: args.resume,
            force: args.force,
            changed_only: args.changed_only,
        },
        key_collation: args.key_collation,
        max_errors: args.max_errors,
        fail_on: args.fail_on,
        concurrency: args.concurrency,
        max_rps: args.max_rps,
        connect: args.connect.options(),
        policy: args.retry.policy(),
        mappings: args.mappings,
    };
    let mode = if args.dry_run {
        Mode::DryRun {
            options,
            emit: args.emit_batches,
            metadata: args.metadata,
        }
    } else {
        Mode::Send(options)
    };
    Ok(super::finish(crate::run::execute(
        mode,
        &mut super::Terminal,
    )?))
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
