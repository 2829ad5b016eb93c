//! The dry run: every row mapped and every request built exactly as a real run would build it
//! (the same batching, the same `--changed-only` comparison), none sent; with `--emit-batches`,
//! each request written to a file.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use super::{Console, Ending, Finished, RunOptions, Started, files, text};
use crate::batch::Chunker;
use crate::exit::Exit;
use crate::job::Job;
use crate::ledger::journal::keyed_content;
use crate::ledger::packed::ContentIndex;
use crate::ledger::{JobReport, Ledger};
use crate::odata::Operation;
use crate::odata::batch::{BatchOptions, encode_batch};

/// Runs `options` without sending; `emit` is `--emit-batches`, `metadata` is `--metadata DIR`.
pub(super) fn run(
    options: &RunOptions,
    emit: Option<&Path>,
    metadata: Option<&Path>,
    console: &mut dyn Console,
) -> crate::Result<Finished> {
    let started = Started::now();
    // Open every job first, so that a broken mapping stops the run before anything happens.
    let mut jobs = Vec::with_capacity(options.mappings.len());
    for (i, m) in options.mappings.iter().enumerate() {
        let source = options.sources.get(i).and_then(Option::as_deref);
        jobs.push(Job::open(m, source)?);
    }
    if let Some(dir) = metadata {
        let tables = crate::environment::metadata::load_dir(dir)?;
        for job in &mut jobs {
            match tables.iter().find(|t| t.entity_set == job.plan.entity_set) {
                Some(table) => {
                    if let Some(line) = job.complete(table, None)? {
                        say!(console, "{}: {line}", job.mapping.display());
                    }
                }
                None => say!(
                    console,
                    "note: no metadata of {} in {}: its rows are mapped by the mapping alone",
                    job.plan.entity_set,
                    dir.display()
                ),
            }
        }
    }
    if let Some(dir) = emit {
        std::fs::create_dir_all(dir)
            .map_err(crate::Error::io(format!("cannot create {}", dir.display())))?;
    }
    let mut batch_options = BatchOptions {
        atomic: options.batching.atomic,
        part_headers: options.batching.part_headers.clone(),
        ..BatchOptions::default()
    };
    let org_url = std::env::var("DATAVERSE_URL")
        .unwrap_or_else(|_| "https://yourorg.crm.dynamics.com".into());
    // --changed-only: compare with the ledger, read only (no lock, no run recorded).
    let ledger = if options.ledger.changed_only {
        let dir = options
            .ledger
            .state
            .clone()
            .unwrap_or_else(|| crate::ledger::session::default_state_dir(&options.mappings[0]));
        if Ledger::file(&dir).exists() {
            Some(Ledger::open(&dir)?)
        } else {
            say!(
                console,
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
        console.line(&text::describe_job(&job));
        if let Some(line) = text::describe_empty(&job) {
            console.line(&line);
        }
        batch_options.upsert_select =
            crate::writer::upsert_select(options.batching.track_creates, &job.plan);
        let mut rejects = job.rejects_writer(files::rejects_path(
            options.rejects.as_deref(),
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
        let collation = options.key_collation.unwrap_or_default();
        let mut would_write: Vec<(u64, [u8; 16])> = Vec::new();
        let mut unchanged = 0u64;
        let mut pending: Vec<Operation> = Vec::with_capacity(options.batching.batch_size as usize);
        // Where each request ends, as the writer decides it.
        let mut chunk = Chunker::new(
            usize::from(options.batching.batch_size),
            options.batching.atomic,
        );
        let mut batches = 0u64;
        let mut bytes = 0u64;
        let mut flush = |pending: &mut Vec<Operation>| -> crate::Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            batch_no += 1;
            batches += 1;
            let encoded = encode_batch(
                pending,
                &batch_options,
                uuid::Uuid::from_u128(batch_no as u128),
            );
            bytes += encoded.body.len() as u64;
            if let Some(dir) = emit {
                let path = dir.join(format!("batch-{batch_no:06}.http"));
                std::fs::write(&path, encoded.to_http_file(&org_url))
                    .map_err(crate::Error::io(format!("cannot write {}", path.display())))?;
            }
            pending.clear();
            Ok(())
        };
        // A dry run cannot ask for a lookup's targets: its requests show the conditions.
        let match_lookups = job.plan.match_lookups().to_vec();
        let mut tally = job.run_offline(Some(&mut rejects), 20, |mut op, _record| {
            crate::resolve::show_conditions(&mut op, &match_lookups);
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
        let what = format!("cannot write the rejects file {}", rejects.path().display());
        let rejects_file = rejects.finish().map_err(crate::Error::io(what))?;
        let secs = job_start.elapsed().as_secs_f64();
        say!(
            console,
            "{}",
            text::summary_line(&tally.counts, "would write", secs)
        );
        say!(
            console,
            "{} $batch requests of up to {} operations built ({:.1} MB), none sent",
            text::thousands(batches),
            options.batching.batch_size,
            bytes as f64 / 1e6
        );
        for line in text::rejects_lines(
            &tally.first_errors,
            tally.counts.rejected,
            rejects_file.as_deref(),
        ) {
            console.line(&line);
        }
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
            rejects_known: None,
            rejects_new: None,
        });
    }
    if let Some(dir) = emit {
        say!(console, "requests written to {}", display_dir(dir));
    }
    let rejected: u64 = reports.iter().map(|r| r.counts.rejected).sum();
    let exit = Exit::of(&Ending::Complete {
        rejected: rejected > 0,
    });
    let report = started.report(true, exit, reports);
    files::write_report(options.report.as_deref(), &report)?;
    Ok(Finished::complete(rejected > 0))
}

fn display_dir(dir: &Path) -> String {
    dir.join("batch-*.http").display().to_string()
}
