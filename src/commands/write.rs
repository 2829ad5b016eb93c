//! The sending half of `dvload run` (without `--dry-run`): connect, then write each mapping's rows
//! in the order given, and report.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::run::Args;
use crate::exit::{Exit, ExitError};
use crate::job::Job;
use crate::ledger::session::{RunSession, StartOptions};
use crate::ledger::{JobReport, RunReport};
use crate::outcome::Counts;
use crate::outcome::Progress;
use crate::writer::{JobOutcome, Writer, WriterOptions};

/// Runs `dvload run` for real.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    // Open every job first: a broken mapping or source stops the run before anything is recorded
    // or sent. A source is opened once and read once (a pipe too); opening a named pipe waits for
    // its writer, as `cat` would, and it does so before the state lock is taken, so that a
    // waiting run never blocks the next one.
    let mut jobs = Vec::with_capacity(args.mappings.len());
    for m in &args.mappings {
        jobs.push(Job::open(m, args.source.as_deref())?);
    }
    // Every file the run will write, checked before anything is recorded or sent: a run must not
    // fail at its first reject, or at its report, after rows went out.
    let several = jobs.len() > 1;
    let mut taken = Vec::new();
    let rejects_paths: Vec<PathBuf> = jobs
        .iter()
        .map(|job| super::rejects_path(args.rejects.as_deref(), several, job, &mut taken))
        .collect();
    for path in &rejects_paths {
        check_writable(
            path,
            if args.rejects.is_some() {
                "--rejects"
            } else {
                "the rejects file"
            },
        )?;
    }
    if let Some(report) = &args.report {
        check_writable(report, "--report")?;
    }
    // Settings that cannot work are a usage error (exit 2), found before anything is recorded.
    args.connect.settings()?;
    // The ledger's lock: a second run of the same job stops here, having touched neither the
    // ledger nor Dataverse.
    let state = (!args.no_ledger).then(|| {
        args.state
            .clone()
            .unwrap_or_else(|| crate::ledger::session::default_state_dir(&args.mappings[0]))
    });
    let lock = state
        .as_deref()
        .map(crate::ledger::session::lock)
        .transpose()?;
    let started_at = super::now_rfc3339();
    let session = match (lock, &state) {
        (Some(lock), Some(dir)) => {
            let session = RunSession::start(
                lock,
                dir,
                &args.mappings,
                &jobs.iter().map(Job::files).collect::<Vec<_>>(),
                StartOptions {
                    resume: args.resume,
                    force: args.force,
                    changed_only: args.changed_only,
                },
                &started_at,
            )?;
            for note in &session.notes {
                println!("{note}");
            }
            println!(
                "run ledger {} (run #{})",
                crate::ledger::Ledger::file(dir).display(),
                session.run_id
            );
            Some(session)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(write_all(args, jobs, rejects_paths, session, started_at))
}

/// True when `a` and `b` name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Checks that `path` can be written as the run will write it (a temporary file beside it,
/// renamed into place): its folder exists or can be made, and takes a new file. `what` names
/// the option in the message. Nothing is left behind but the folder.
fn check_writable(path: &Path, what: &str) -> anyhow::Result<()> {
    let unusable = |why: String| ExitError {
        exit: Exit::Unusable,
        message: format!("{what} {}: {why}; nothing was sent", path.display()),
    };
    if path.is_dir() {
        return Err(unusable("is a directory, not a file".into()).into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        let why = match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                format!("{} is not a folder", first_file_on_the_way(dir).display())
            }
            _ => format!(
                "cannot make its folder {}: {}",
                dir.display(),
                io_reason(&e)
            ),
        };
        return Err(unusable(why).into());
    }
    let probe = dir.join(format!(".dvload-probe.{}.tmp", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(unusable(format!(
            "cannot write in {}: {}",
            dir.display(),
            io_reason(&e)
        ))
        .into()),
    }
}

/// The first ancestor of `dir` that exists and is not a folder (the file that blocks the path).
fn first_file_on_the_way(dir: &Path) -> PathBuf {
    dir.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|a| a.exists() && !a.is_dir())
        .unwrap_or(dir)
        .to_path_buf()
}

/// An I/O error's reason without Rust's "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

async fn write_all(
    args: Args,
    jobs: Vec<Job>,
    rejects_paths: Vec<PathBuf>,
    mut session: Option<RunSession>,
    started_at: String,
) -> anyhow::Result<Exit> {
    let start = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupted = super::signals::watch(stop.clone());
    let policy = args.retry.policy();
    let conn = match super::connect::connect(&args.connect, &policy).await {
        Ok(conn) => conn,
        Err(e) => return Err(refused(e, session.as_mut(), &args, started_at, start)?),
    };
    let hint = conn.dop_hint.unwrap_or(4).max(1);
    let ceiling = args.concurrency.map_or(hint, usize::from);
    let (collation, collation_note) = conn.collation(args.key_collation);
    println!(
        "connected to {} as application user {} ({}); {} batch{} in flight at most; {collation_note}",
        conn.url,
        conn.whoami.user_id,
        conn.origin,
        ceiling,
        if ceiling == 1 { "" } else { "es" }
    );
    if let Some(s) = session.as_mut() {
        s.ledger.set_collation(collation);
        let env = crate::ledger::Environment {
            organization_id: conn.whoami.organization_id.clone(),
            url: conn.url.clone(),
            user_id: conn.whoami.user_id.clone(),
        };
        match s.bind_environment(&env) {
            Ok(Some(note)) => println!("{note}"),
            Ok(None) => {}
            Err(e) => return Err(refused(e, session.as_mut(), &args, started_at, start)?),
        }
    }
    // Every job checked against the environment before the first write (tables, columns, keys,
    // privileges): a refused run sent nothing and is recorded as ended with its exit code.
    let primary_ids = match super::check::preflight(&conn, &policy, &jobs).await {
        Ok(ids) => ids,
        Err(e) => return Err(refused(e, session.as_mut(), &args, started_at, start)?),
    };
    // The ids its creates get (writer::ids): the chain's, recorded before the first write; a run
    // without a ledger draws its own (it cannot be resumed).
    let chain_ids = match session.as_mut() {
        Some(s) => s.chain_ids()?,
        None => crate::ids::ChainIds::new(jiff::Timestamp::now().as_second()),
    };
    let mut jobs = jobs;
    for (seq, job) in jobs.iter_mut().enumerate() {
        job.ids = primary_ids
            .get(&job.plan.entity_set)
            .map(|pk| crate::ids::RecordIds {
                chain: chain_ids,
                seq,
                primary_id: pk.clone(),
            });
    }
    let options = WriterOptions {
        batch_size: usize::from(args.batch_size),
        atomic: args.atomic,
        part_headers: super::run::part_headers(&args),
        max_errors: args.max_errors,
        policy,
        track_creates: args.track_creates,
    };
    let mut writer = Writer::new(
        conn.client.clone(),
        hint.min(ceiling),
        ceiling,
        args.max_rps,
        options,
    );

    writer.stop = stop;
    writer.collation = collation;
    // A resumed chain that wrote keeps its clock; otherwise this run sets it, and records it
    // before its first write.
    let chain_since = session
        .as_ref()
        .and_then(|s| s.chain_writes_since.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let since = match chain_since {
        Some(since) => since,
        None => {
            let since = writes_start(&conn.client, &jobs).await;
            if let Some(s) = session.as_mut() {
                s.set_writes_since(since)?;
            }
            since
        }
    };
    writer.provenance = crate::writer::decide::Provenance {
        since,
        user_id: Some(conn.whoami.user_id.clone()),
    };
    let mut reports = Vec::new();
    let mut exit = Exit::Success;
    let mut stop_message = None;
    let written = write_jobs(
        &args,
        &writer,
        jobs,
        rejects_paths,
        session.as_mut(),
        &interrupted,
        &mut reports,
        &mut exit,
        &mut stop_message,
    )
    .await;
    if let Err(e) = &written {
        // The run cannot go on (its ledger or an output failed): it ends as stopped, and what it
        // did is reported all the same.
        exit = match crate::exit::exit_for(e) {
            Exit::Unusable => Exit::Stopped,
            other => other,
        };
    }
    if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        exit = Exit::Stopped;
        stop_message = Some(if session.is_some() {
            format!(
                "interrupted: the batches in flight were recorded; continue with:\n  {}",
                super::signals::resume_command()
            )
        } else {
            "interrupted: the batches in flight finished; later rows were not sent (--no-ledger: no resume)".into()
        });
    } else if matches!(exit, Exit::Stopped | Exit::Auth | Exit::Unusable) && session.is_some() {
        if let Some(m) = stop_message.as_mut() {
            m.push_str(&format!(
                "; continue with:\n  {}",
                super::signals::resume_command()
            ));
        }
    }
    let finished = match session.as_mut() {
        Some(s) => s.finish(exit, &super::now_rfc3339()),
        None => Ok(()),
    };
    let stats = &writer.stats;
    let mut totals = Counts::default();
    for r in &reports {
        totals.add(&r.counts);
    }
    println!(
        "total: {}; {} $batch requests, {} operations retried, {} throttling pauses ({:.1} s waited)",
        super::summary_line(&totals, "written", start.elapsed().as_secs_f64()),
        super::thousands(stats.requests.load(std::sync::atomic::Ordering::Relaxed)),
        super::thousands(stats.retries.load(std::sync::atomic::Ordering::Relaxed)),
        writer.pacing.throttles(),
        writer.pacing.waited_ms() as f64 / 1000.0
    );
    if let Some(emulator) = &conn.emulator {
        print!("the emulator at {} now holds", emulator.base_url());
        for table in ["account", "contact", "lead", "task"] {
            print!(
                " {} {table}s",
                super::thousands(emulator.state.count(table) as u64)
            );
        }
        println!(
            ".\nIt stops with this process. To look at loaded data, serve one yourself and point dvload at it:\n  \
             dvload emulator --port 8085 --data demo-state.json   (then, in another shell)\n  \
             DATAVERSE_URL=http://127.0.0.1:8085 AZURE_AUTHORITY_HOST=http://127.0.0.1:8085 \
             AZURE_TENANT_ID={} AZURE_CLIENT_ID={} AZURE_CLIENT_SECRET=... dvload run MAPPING...\n  \
             and read it back: GET http://127.0.0.1:8085/api/data/v9.2/accounts?$select=name,accountnumber&$top=5",
            dataverse_emulator::defaults::TENANT_ID,
            dataverse_emulator::defaults::CLIENT_ID
        );
    }
    let report = RunReport::new(
        "run",
        false,
        started_at,
        start.elapsed().as_millis() as u64,
        exit.code(),
        reports,
    )
    .with_writer_stats(
        stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        writer.pacing.throttles(),
        writer.pacing.waited_ms(),
    );
    super::write_report(args.report.as_deref(), &report)?;
    if let Err(e) = written {
        // The run's ledger (or an output) failed mid-run: exit 4 as the report says, with what
        // was sent and what is uncertain.
        let sent = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
        let resume = if session.is_some() {
            format!(
                "; free space (or fix the state directory) and continue with:\n  {}\n  it sends \
                 them again, and each create carries the id this run gave it, so none is written twice",
                super::signals::resume_command()
            )
        } else {
            String::new()
        };
        return Err(ExitError {
            // The exit code the report gives (4 for a ledger or an output that failed).
            exit,
            message: format!(
                "stopped, sending nothing more: {e:#}; {sent} $batch request{} had been sent: the \
                 rows whose outcome could not be recorded are uncertain (some may be written){resume}",
                if sent == 1 { "" } else { "s" }
            ),
        }
        .into());
    }
    finished?;
    if let Some(message) = stop_message {
        return Err(ExitError { exit, message }.into());
    }
    Ok(exit)
}

/// A run refused before its first write (sign-in, the pre-flight check): it ends here with the
/// exit code `e` gets, recorded in the ledger, and its report says so (a cron wrapper reads it
/// on every exit). Returns `e` to hand on.
fn refused(
    e: anyhow::Error,
    session: Option<&mut RunSession>,
    args: &Args,
    started_at: String,
    start: Instant,
) -> anyhow::Result<anyhow::Error> {
    let exit = crate::exit::exit_for(&e);
    if let Some(s) = session {
        s.finish(exit, &super::now_rfc3339())?;
    }
    let report = RunReport::new(
        "run",
        false,
        started_at,
        start.elapsed().as_millis() as u64,
        exit.code(),
        Vec::new(),
    );
    super::write_report(args.report.as_deref(), &report)?;
    Ok(e)
}

/// Writes each job in turn, pushing its report; sets `exit` and `stop_message` when a job stops
/// the run. An error means the run cannot go on (the ledger or an output failed).
#[allow(clippy::too_many_arguments)]
async fn write_jobs(
    args: &Args,
    writer: &Writer,
    jobs: Vec<Job>,
    rejects_paths: Vec<PathBuf>,
    mut session: Option<&mut RunSession>,
    interrupted: &std::sync::atomic::AtomicBool,
    reports: &mut Vec<JobReport>,
    exit: &mut Exit,
    stop_message: &mut Option<String>,
) -> anyhow::Result<()> {
    for ((seq, job), rejects_path) in jobs.into_iter().enumerate().zip(rejects_paths) {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let job_start = Instant::now();
        println!("{}", super::describe_job(&job));
        // A killed run's temporary rejects file goes (the state lock says no run of this job is
        // writing it; the ledger has its rows, and a resume writes them again).
        crate::ledger::rejects::remove_stale_temporaries(&rejects_path);
        let mut rejects = job.rejects_writer(rejects_path);
        let (mapping, source, entity_set, operation) = (
            job.mapping.clone(),
            job.source_path.clone(),
            job.plan.entity_set.clone(),
            job.plan.operation.name().to_string(),
        );
        let mut progress = TerminalProgress::new(&source);
        let requests_before = writer
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
        let outcome: JobOutcome = match session.as_deref_mut() {
            Some(s) => {
                let (plan, mismatches) = s.begin_job(seq)?;
                let mut journal = s.journal(seq, usize::from(args.batch_size));
                let hooks = crate::writer::Hooks {
                    admit: plan.map(|p| p.into_fn()),
                    sink: Some(&mut journal),
                };
                let outcome = writer
                    .write_job_with(job, &mut rejects, &mut progress, hooks)
                    .await?;
                drop(journal);
                s.end_job(seq, &outcome.counts, outcome.passed_over)?;
                let mismatches = mismatches.load(std::sync::atomic::Ordering::Relaxed);
                if mismatches > 0 {
                    println!(
                        "warning: {} rows have another key than the interrupted run recorded for them; they were sent",
                        super::thousands(mismatches)
                    );
                }
                outcome
            }
            None => writer.write_job(job, &mut rejects, &mut progress).await?,
        };
        progress.finish();
        if outcome.passed_over > 0 {
            println!(
                "{} rows done by the interrupted run were passed over",
                super::thousands(outcome.passed_over)
            );
        }
        if outcome.carried > 0 {
            println!(
                "{} of them had been rejected: they are in this run's rejects file again",
                super::thousands(outcome.carried)
            );
        }
        let rejects_at = rejects.path().to_path_buf();
        let rejects_file = match rejects.finish() {
            Ok(file) => {
                // The rejects file lists the rows rejected now: one an earlier run of this job
                // left, or the file this run replayed, goes when no row is.
                let replayed = same_file(&rejects_at, &source);
                let removed = match session.as_deref_mut() {
                    Some(s) => s.settle_rejects(seq, &rejects_at, file.is_some())?,
                    None => false,
                } || (file.is_none()
                    && replayed
                    && crate::ledger::session::remove_if_there(&rejects_at)?);
                if removed {
                    println!(
                        "no row is rejected now: removed the rejects file {} of an earlier run (its rows are written)",
                        rejects_at.display()
                    );
                }
                file
            }
            Err(e) => {
                *exit = Exit::Stopped;
                *stop_message = Some(format!(
                    "stopped: cannot write the rejects file: {}",
                    io_reason(&e)
                ));
                None
            }
        };
        let secs = job_start.elapsed().as_secs_f64();
        println!("{}", super::summary_line(&outcome.counts, "written", secs));
        if outcome.deferred > 0 {
            println!(
                "{} rows whose lookup target was not there yet were sent again at the end",
                super::thousands(outcome.deferred)
            );
        }
        super::print_rejects(&outcome.first_errors, rejects_file.as_deref());
        if (outcome.counts.rejected > 0 || outcome.carried > 0) && *exit == Exit::Success {
            *exit = Exit::Rejected;
        }
        let requests = writer
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            - requests_before;
        reports.push(JobReport {
            mapping,
            source,
            entity_set,
            operation,
            counts: outcome.counts,
            batches: requests,
            passed_over: outcome.passed_over,
            rejects_file,
            duration_ms: job_start.elapsed().as_millis() as u64,
            first_errors: outcome.first_errors.clone(),
        });
        if stop_message.is_some() {
            break;
        }
        if let Some(e) = &outcome.output_error {
            *exit = Exit::Stopped;
            *stop_message = Some(format!("stopped: {e}"));
            break;
        }
        if let Some(f) = &outcome.fatal {
            // Exit 2 for a mapping that does not fit the environment, 3 for the set-up.
            *exit = f.exit();
            *stop_message = Some(format!("stopped: {}", f.explain()));
            break;
        }
        if outcome.too_many_errors {
            *exit = Exit::Stopped;
            *stop_message = Some(format!(
                "stopped early: more than {} rows were rejected (--max-errors); everything written so far is reported above",
                args.max_errors.unwrap_or_default()
            ));
            break;
        }
        if let Some(e) = &outcome.source_error {
            *exit = Exit::Unusable;
            *stop_message = Some(format!("stopped: the source is broken: {e}"));
            break;
        }
    }
    Ok(())
}

/// The instant from which a record created by this run's user is this run's: the second after
/// the server's clock (`Date`) now, when a job creates by key (its 412s are settled by reading
/// the record back, `writer::decide::read_back`); the run then waits for that second to begin,
/// so that every record it creates has a `createdon` at or after it and every record created
/// before has one before it (`createdon` has whole seconds). Other jobs need no wait.
async fn writes_start(client: &crate::writer::Client, jobs: &[Job]) -> jiff::Timestamp {
    let creates_by_key = jobs.iter().any(|j| {
        j.plan.operation == crate::mapping::OperationKind::Create && j.plan.key_column().is_some()
    });
    if !creates_by_key {
        return jiff::Timestamp::now();
    }
    let server_now = match client.get("WhoAmI").await {
        Ok(reply) => reply.date,
        Err(_) => None,
    };
    let now = server_now.unwrap_or_else(jiff::Timestamp::now);
    let next = jiff::Timestamp::from_second(now.as_second() + 1).unwrap_or(now);
    // The server's second ends at most a second after it answered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    next
}

/// A progress bar on stderr when it is a terminal; nothing otherwise (cron, CI, pipes).
struct TerminalProgress {
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
}

impl TerminalProgress {
    fn new(source: &std::path::Path) -> TerminalProgress {
        if !std::io::stderr().is_terminal() || !crate::ledger::db::is_regular_file(source) {
            return TerminalProgress {
                bar: None,
                last: Instant::now(),
            };
        }
        // The total is estimated from the file's line count (fast, and close for CSV and JSON
        // Lines); the bar shows rows/s and the time left. A pipe is never read twice: no bar.
        let total = count_lines(source).unwrap_or(0);
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr_with_hz(5),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        TerminalProgress {
            bar: Some(bar),
            last: Instant::now(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for TerminalProgress {
    fn update(&mut self, counts: &Counts) {
        if let Some(bar) = &self.bar {
            if self.last.elapsed() >= Duration::from_millis(100) {
                self.last = Instant::now();
                bar.set_position(counts.read);
                bar.set_message(format!("rejected {}", counts.rejected));
            }
        }
    }
}

/// Counts `\n` bytes through a fixed buffer (never the whole file in memory).
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&c| c == b'\n').count() as u64;
    }
}
