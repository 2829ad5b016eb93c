//! The run that sends: open every job, lock and start the ledger, connect, check the environment,
//! then write each mapping's rows in the order given, and report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::files::{check_writable, io_reason, same_file};
use super::{Console, Ending, Finished, RunOptions, Started, files, signals, text};
use crate::environment::{check, connect};
use crate::exit::Exit;
use crate::job::Job;
use crate::ledger::JobReport;
use crate::ledger::session::{RunSession, StartOptions};
use crate::outcome::Counts;
use crate::writer::{JobOutcome, Writer, WriterOptions};

/// Runs `args`, sending.
pub(super) fn run(args: RunOptions, console: &mut dyn Console) -> crate::Result<Finished> {
    // Open every job first: a broken mapping or source stops the run before anything is recorded
    // or sent. A source is opened once and read once (a pipe too); opening a named pipe waits for
    // its writer, as `cat` would, and it does so before the state lock is taken, so that a
    // waiting run never blocks the next one.
    let mut jobs = Vec::with_capacity(args.mappings.len());
    for (i, m) in args.mappings.iter().enumerate() {
        let source = args.sources.get(i).and_then(Option::as_deref);
        jobs.push(Job::open(m, source)?);
    }
    // Every file the run will write, checked before anything is recorded or sent: a run must not
    // fail at its first reject, or at its report, after rows went out.
    let several = jobs.len() > 1;
    let mut taken = Vec::new();
    let rejects_paths: Vec<PathBuf> = jobs
        .iter()
        .map(|job| files::rejects_path(args.rejects.as_deref(), several, job, &mut taken))
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
    if let Some(page) = &args.report_html {
        check_writable(page, "--report-html")?;
    }
    // Settings that cannot work are a usage error (exit 2), found before anything is recorded.
    args.connect.settings()?;
    // The ledger's lock: a second run of the same job stops here, having touched neither the
    // ledger nor Dataverse.
    let state = args.ledger.state.clone();
    let lock = state
        .as_deref()
        .map(crate::ledger::session::lock)
        .transpose()?;
    let started = Started::now();
    let session = match (lock, &state) {
        (Some(lock), Some(dir)) => {
            let mut session = RunSession::start(
                lock,
                dir,
                &args.mappings,
                &jobs.iter().map(Job::files).collect::<Vec<_>>(),
                StartOptions {
                    resume: args.ledger.resume,
                    force: args.ledger.force,
                    changed_only: args.ledger.changed_only,
                },
                &started.at,
            )?;
            for note in std::mem::take(&mut session.notes) {
                say!(console, "{note}");
            }
            say!(
                console,
                "run ledger {} (run #{})",
                crate::ledger::Ledger::file(dir).display(),
                session.run_id
            );
            Some(session)
        }
        _ => None,
    };
    let runtime = super::runtime()?;
    runtime.block_on(write_all(
        args,
        console,
        jobs,
        rejects_paths,
        session,
        started,
    ))
}

async fn write_all(
    args: RunOptions,
    console: &mut dyn Console,
    jobs: Vec<Job>,
    rejects_paths: Vec<PathBuf>,
    mut session: Option<RunSession>,
    started: Started,
) -> crate::Result<Finished> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupted = signals::watch(stop.clone());
    let policy = args.policy;
    let conn = match connect::connect(&args.connect, &policy).await {
        Ok(conn) => conn,
        Err(e) => return Err(refused(e, session.as_mut(), &args, &started)?),
    };
    let hint = conn.dop_hint.unwrap_or(4).max(1);
    let ceiling = args.concurrency.map_or(hint, usize::from);
    let (collation, collation_note) = conn.collation(args.key_collation);
    say!(
        console,
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
            Ok(Some(note)) => say!(console, "{note}"),
            Ok(None) => {}
            Err(e) => return Err(refused(e, session.as_mut(), &args, &started)?),
        }
    }
    // Every job checked against the environment before the first write (tables, columns, keys,
    // privileges): a refused run sent nothing and is recorded as ended with its exit code.
    let mut jobs = jobs;
    let primary_ids = match check::preflight(
        &conn,
        &policy,
        &mut jobs,
        &args.batching.part_headers,
        console,
    )
    .await
    {
        Ok(ids) => ids,
        Err(e) => return Err(refused(e, session.as_mut(), &args, &started)?),
    };
    // The ids its creates get (writer::ids): the chain's, recorded before the first write; a run
    // without a ledger draws its own (it cannot be resumed).
    let chain_ids = match session.as_mut() {
        Some(s) => s.chain_ids()?,
        None => crate::ids::ChainIds::new(jiff::Timestamp::now().as_second()),
    };
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
        batch_size: usize::from(args.batching.batch_size),
        atomic: args.batching.atomic,
        part_headers: args.batching.part_headers.clone(),
        max_errors: args.max_errors,
        policy,
        track_creates: args.batching.track_creates,
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
    writer.primary_ids = primary_ids;
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
    // Which rejects fail the run, per mapping: --fail-on (or DVLOAD_FAIL_ON), else the
    // mapping's [run] fail_on, else the profile's fail_on, else the default.
    let policies: Vec<crate::exit::FailOn> = jobs
        .iter()
        .map(|j| {
            args.fail_on
                .clone()
                .or_else(|| j.spec.run.fail_on.clone())
                .or_else(|| conn.fail_on.clone())
                .unwrap_or_default()
        })
        .collect();
    let mut reports = Vec::new();
    let mut end = Finished::complete(false);
    let written = write_jobs(
        &args,
        console,
        &writer,
        jobs,
        rejects_paths,
        session.as_mut(),
        &interrupted,
        &mut reports,
        &mut end,
    )
    .await;
    let Finished {
        mut ending,
        message: mut stop_message,
    } = end;
    if written.is_err() {
        // The run cannot go on (its ledger or an output failed): it ends as stopped, and what it
        // did is reported all the same.
        ending = Ending::OutputFailed;
    }
    if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        ending = Ending::Interrupted;
        stop_message = Some(if session.is_some() {
            format!(
                "interrupted: the batches in flight were recorded; continue with:\n  {}",
                signals::resume_command()
            )
        } else {
            "interrupted: the batches in flight finished; later rows were not sent (--no-ledger: no resume)".into()
        });
    } else if !matches!(ending, Ending::Complete { .. }) && session.is_some() {
        if let Some(m) = stop_message.as_mut() {
            m.push_str(&format!(
                "; continue with:\n  {}",
                signals::resume_command()
            ));
        }
    }
    if ending == (Ending::Complete { rejected: true }) {
        ending = Ending::Complete {
            rejected: judge_rejects(&policies, &mut reports, session.as_ref(), console),
        };
    }
    let exit = Exit::of(&ending);
    let finished = match session.as_mut() {
        Some(s) => s.finish(exit, &text::now_rfc3339()),
        None => Ok(()),
    };
    let stats = &writer.stats;
    let mut totals = Counts::default();
    for r in &reports {
        totals.add(&r.counts);
    }
    say!(
        console,
        "total: {}; {} $batch requests, {} operations retried, {} throttling pauses ({:.1} s waited)",
        text::summary_line(&totals, "written", started.instant.elapsed().as_secs_f64()),
        text::thousands(stats.requests.load(std::sync::atomic::Ordering::Relaxed)),
        text::thousands(stats.retries.load(std::sync::atomic::Ordering::Relaxed)),
        writer.pacing.throttles(),
        writer.pacing.waited_ms() as f64 / 1000.0
    );
    let lookup_queries = stats
        .lookup_queries
        .load(std::sync::atomic::Ordering::Relaxed);
    if lookup_queries > 0 {
        say!(
            console,
            "lookups by match: {} {}",
            text::thousands(lookup_queries),
            if lookup_queries == 1 {
                "query"
            } else {
                "queries"
            }
        );
    }
    if let Some(emulator) = &conn.emulator {
        let mut holds = format!("the emulator at {} now holds", emulator.base_url());
        for table in ["account", "contact", "lead", "task"] {
            holds.push_str(&format!(
                " {} {table}s",
                text::thousands(emulator.state.count(table) as u64)
            ));
        }
        say!(
            console,
            "{holds}.\nIt stops with this process. To look at loaded data, serve one yourself and point dvload at it:\n  \
             dvload emulator --port 8085 --data demo-state.json   (then, in another shell)\n  \
             DATAVERSE_URL=http://127.0.0.1:8085 AZURE_AUTHORITY_HOST=http://127.0.0.1:8085 \
             AZURE_TENANT_ID={} AZURE_CLIENT_ID={} AZURE_CLIENT_SECRET=... dvload run MAPPING...\n  \
             (the emulator's secret is in the README), and read it back with a token from the emulator, as the README's five-minute tour does.",
            dataverse_emulator::defaults::TENANT_ID,
            dataverse_emulator::defaults::CLIENT_ID
        );
    }
    let mut report = started.report(false, exit, reports).with_writer_stats(
        stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        writer.pacing.throttles(),
        writer.pacing.waited_ms(),
    );
    report.lookup_queries = lookup_queries;
    files::write_report(args.report.as_deref(), &report)?;
    if let Some(path) = &args.report_html {
        let rejects: Vec<(usize, u64, String, Option<bool>)> =
            match session.as_ref().map(RunSession::chain_rejects) {
                Some(Ok(list)) => list
                    .into_iter()
                    .map(|r| (r.seq, r.row, r.error, Some(r.known)))
                    .collect(),
                // Without a ledger, the first errors the console listed.
                _ => Vec::new(),
            };
        let groups = super::html::group_rejects(&rejects);
        let page = super::html::Page {
            title: match session.as_ref() {
                Some(s) => format!("dvload run #{}", s.run_id),
                None => "dvload run".to_string(),
            },
            report: &report,
            samples: &writer.timeline.samples(),
            rejects: &groups,
            choices: &choices(&args, &policies),
            stopped: stop_message.as_deref(),
        };
        crate::ledger::report::write_atomically(path, super::html::render(&page).as_bytes())
            .map_err(crate::Error::io(format!(
                "cannot write the HTML report {}",
                path.display()
            )))?;
        say!(console, "HTML report written to {}", path.display());
    }
    if let Err(e) = written {
        // The run's ledger (or an output) failed mid-run: exit 4 as the report says, with what
        // was sent and what is uncertain.
        let sent = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
        let resume = if session.is_some() {
            format!(
                "; free space (or fix the state directory) and continue with:\n  {}\n  it sends \
                 them again, and each create carries the id this run gave it, so none is written twice",
                signals::resume_command()
            )
        } else {
            String::new()
        };
        return Ok(Finished {
            // The ending the report gives (4 for a ledger or an output that failed).
            ending,
            message: Some(format!(
                "stopped, sending nothing more: {e:#}; {sent} $batch request{} had been sent: the \
                 rows whose outcome could not be recorded are uncertain (some may be written){resume}",
                if sent == 1 { "" } else { "s" }
            )),
        });
    }
    finished?;
    Ok(Finished {
        ending,
        message: stop_message,
    })
}

/// A run refused before its first write (sign-in, the pre-flight check): it ends here with the
/// exit code `e` gets, recorded in the ledger, and its report says so (a cron wrapper reads it
/// on every exit). Returns `e` to hand on.
fn refused(
    e: crate::Error,
    session: Option<&mut RunSession>,
    args: &RunOptions,
    started: &Started,
) -> crate::Result<crate::Error> {
    let exit = Exit::for_error(&e);
    if let Some(s) = session {
        s.finish(exit, &text::now_rfc3339())?;
    }
    files::write_report(
        args.report.as_deref(),
        &started.report(false, exit, Vec::new()),
    )?;
    Ok(e)
}

/// Writes each job in turn, pushing its report; sets `exit` and `stop_message` when a job stops
/// the run. An error means the run cannot go on (the ledger or an output failed).
#[allow(clippy::too_many_arguments)]
async fn write_jobs(
    args: &RunOptions,
    console: &mut dyn Console,
    writer: &Writer,
    jobs: Vec<Job>,
    rejects_paths: Vec<PathBuf>,
    mut session: Option<&mut RunSession>,
    interrupted: &std::sync::atomic::AtomicBool,
    reports: &mut Vec<JobReport>,
    end: &mut Finished,
) -> crate::Result<()> {
    for ((seq, job), rejects_path) in jobs.into_iter().enumerate().zip(rejects_paths) {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let job_start = Instant::now();
        console.line(&text::describe_job(&job));
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
        // Only a run that writes an HTML report samples itself as it goes.
        let mut progress = match &args.report_html {
            Some(_) => writer.timeline.record(
                console.progress(&source),
                writer.pacing.clone(),
                writer.stats.clone(),
                reports
                    .iter()
                    .fold(Counts::default(), |mut c, r: &JobReport| {
                        c.add(&r.counts);
                        c
                    }),
            ),
            None => console.progress(&source),
        };
        let requests_before = writer
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
        let outcome: JobOutcome = match session.as_deref_mut() {
            Some(s) => {
                let (plan, mismatches) = s.begin_job(seq)?;
                for note in std::mem::take(&mut s.notes) {
                    console.line(&note);
                }
                let mut journal = s
                    .journal(seq, usize::from(args.batching.batch_size))
                    .content_columns(job.reader.columns());
                let hooks = crate::writer::Hooks {
                    admit: plan.map(|p| p.into_fn()),
                    sink: Some(&mut journal),
                };
                let outcome = writer
                    .write_job_with(job, &mut rejects, progress.as_mut(), hooks)
                    .await?;
                drop(journal);
                s.end_job(seq, &outcome.counts, outcome.passed_over)?;
                let mismatches = mismatches.load(std::sync::atomic::Ordering::Relaxed);
                if mismatches > 0 {
                    say!(
                        console,
                        "warning: {} rows have another key than the interrupted run recorded for them; they were sent",
                        text::thousands(mismatches)
                    );
                }
                outcome
            }
            None => {
                writer
                    .write_job(job, &mut rejects, progress.as_mut())
                    .await?
            }
        };
        progress.finish();
        if outcome.passed_over > 0 {
            say!(
                console,
                "{} rows done by the interrupted run were passed over",
                text::thousands(outcome.passed_over)
            );
        }
        if outcome.carried > 0 {
            say!(
                console,
                "{} of them had been rejected: they are in this run's rejects file again",
                text::thousands(outcome.carried)
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
                    && crate::ledger::session::remove_if_there(&rejects_at).map_err(
                        crate::Error::io(format!("cannot remove {}", rejects_at.display())),
                    )?);
                if removed {
                    say!(
                        console,
                        "no row is rejected now: removed the rejects file {} of an earlier run (its rows are written)",
                        rejects_at.display()
                    );
                }
                file
            }
            Err(e) => {
                end.stop(
                    Ending::OutputFailed,
                    format!("stopped: cannot write the rejects file: {}", io_reason(&e)),
                );
                None
            }
        };
        let secs = job_start.elapsed().as_secs_f64();
        say!(
            console,
            "{}",
            text::summary_line(&outcome.counts, "written", secs)
        );
        if outcome.deferred > 0 {
            say!(
                console,
                "{} rows whose lookup target was not there yet were sent again at the end",
                text::thousands(outcome.deferred)
            );
        }
        for line in text::rejects_lines(
            &outcome.first_errors,
            outcome.counts.rejected,
            rejects_file.as_deref(),
        ) {
            console.line(&line);
        }
        if outcome.counts.rejected > 0 || outcome.carried > 0 {
            end.rejected();
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
            rejects_known: None,
            rejects_new: None,
        });
        if end.message.is_some() {
            break;
        }
        if let Some(e) = &outcome.output_error {
            end.stop(Ending::OutputFailed, format!("stopped: {e}"));
            break;
        }
        if let Some(f) = &outcome.fatal {
            // A mapping that does not fit the environment, or the set-up.
            end.stop(f.ending(), format!("stopped: {}", f.explain()));
            break;
        }
        if outcome.too_many_errors {
            end.stop(Ending::TooManyErrors, format!(
                "stopped early: more than {} rows were rejected (--max-errors); everything written so far is reported above",
                args.max_errors.unwrap_or_default()
            ));
            break;
        }
        if let Some(e) = &outcome.source_error {
            end.stop(
                Ending::SourceBroken,
                format!("stopped: the source is broken: {e}"),
            );
            break;
        }
    }
    Ok(())
}

/// What the run chose, for its HTML report.
fn choices(args: &RunOptions, policies: &[crate::exit::FailOn]) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "mappings".to_string(),
            args.mappings
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "batch size".to_string(),
            args.batching.batch_size.to_string(),
        ),
        (
            "atomic change sets".to_string(),
            args.batching.atomic.to_string(),
        ),
        (
            "batches in flight".to_string(),
            args.concurrency.map_or_else(
                || "as the service hints (x-ms-dop-hint)".to_string(),
                |c| format!("at most {c}"),
            ),
        ),
        (
            "requests per second".to_string(),
            args.max_rps
                .map_or_else(|| "no limit".to_string(), |r| r.to_string()),
        ),
        (
            "max errors".to_string(),
            args.max_errors
                .map_or_else(|| "no limit".to_string(), |m| m.to_string()),
        ),
    ];
    for (m, p) in args.mappings.iter().zip(policies) {
        out.push((format!("fail_on ({})", m.display()), p.text().to_string()));
    }
    if args.ledger.changed_only {
        out.push(("changed only".to_string(), "true".to_string()));
    }
    if args.ledger.resume {
        out.push(("resumed".to_string(), "true".to_string()));
    }
    out
}

/// Tells each job's rejects apart (known from an earlier run of the job, or new: every one
/// without a ledger), notes it in the job's report and on the console, and says whether any
/// job's rejects fail the run by its policy (`--fail-on`, `[run] fail_on`, the default).
fn judge_rejects(
    policies: &[crate::exit::FailOn],
    reports: &mut [JobReport],
    session: Option<&RunSession>,
    console: &mut dyn Console,
) -> bool {
    use crate::exit::RejectHistory;
    let history = match session.map(RunSession::reject_history) {
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            say!(
                console,
                "note: the rejects of earlier runs could not be read ({e}): every reject counts as new"
            );
            None
        }
        None => None,
    };
    let mut failing = Vec::new();
    for (seq, (report, policy)) in reports.iter_mut().zip(policies).enumerate() {
        let rejected = report.counts.rejected;
        let h = match &history {
            Some(h) => h.get(&seq).copied().unwrap_or_default(),
            None => RejectHistory {
                known: 0,
                new: rejected,
            },
        };
        if history.is_some() {
            report.rejects_known = Some(h.known);
            report.rejects_new = Some(h.new);
        }
        if h.known + h.new == 0 {
            continue;
        }
        let verdict = policy.fails(report.counts.read, h);
        say!(
            console,
            "{}: {} rejected{} -> {} (fail_on = {})",
            report.mapping.display(),
            text::thousands(h.known + h.new),
            match &history {
                Some(_) => format!(
                    ": {} known from earlier runs (the same row, for the same reason), {} new",
                    text::thousands(h.known),
                    text::thousands(h.new)
                ),
                None => " (no ledger: none can be told known)".to_string(),
            },
            match &verdict {
                Some(why) => format!("fails the run: {why}"),
                None => "does not fail the run".to_string(),
            },
            policy.text()
        );
        if verdict.is_some() {
            failing.push(seq);
        }
    }
    !failing.is_empty()
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
