//! Undo: deletes the records a run created (never those it only updated), in `$batch` requests
//! cut by the one batching rule and sent by the writer's dispatcher, recording each delete.

use tokio::sync::mpsc;

use super::{Console, Ending, Finished, UndoOptions, signals, text};
use crate::batch::Chunker;
use crate::environment::{check, connect};

use crate::ledger::Ledger;
use crate::ledger::db::RowDetail;
use crate::odata::{Method, Operation, Precondition};
use crate::outcome::{Outcome, RowState};
use crate::source::{Record, RecordData, RowPos};
use crate::writer::{Event, PendingOp, RetryPolicy, Writer, WriterOptions};

/// Deletes what run `args.run_id` created, after saying what that is (and asking, without
/// `args.yes`).
pub(super) fn run(args: &UndoOptions, console: &mut dyn Console) -> crate::Result<Finished> {
    let dir = args.state.clone();
    // Settings that cannot work are a usage error (exit 2), found before the ledger is locked.
    args.connect.settings()?;
    let _lock = crate::ledger::session::lock(&dir)?;
    let mut ledger = Ledger::open_existing(&dir)?;
    if ledger.run(args.run_id)?.is_none() {
        return Err(crate::Error::Unusable(format!(
            "no run #{} in {}",
            args.run_id,
            Ledger::file(&dir).display()
        )));
    }
    if let Some(run) = ledger.run(args.run_id)? {
        if ledger.pruned(&run)? {
            return Err(crate::Error::Unusable(format!(
                "run #{}'s row outcomes were pruned (dvload runs prune): what it created is no longer known; nothing deleted",
                args.run_id
            )));
        }
    }
    let written = ledger.count_outcome(args.run_id, RowState::Written)?;
    let created: Vec<RowDetail> = ledger
        .rows_of(args.run_id, RowState::Written)?
        .into_iter()
        .filter(|d| d.created != 0)
        .collect();
    let updated = written.saturating_sub(created.len() as u64);
    let undone = created.iter().filter(|d| d.created == 2).count();
    let (todo, no_id): (Vec<RowDetail>, Vec<RowDetail>) = created
        .into_iter()
        .filter(|d| d.created == 1)
        .partition(|d| d.record_url.is_some());
    let mut per_set: std::collections::BTreeMap<&str, u64> = Default::default();
    for d in &todo {
        *per_set.entry(&d.entity_set).or_default() += 1;
    }
    let what: Vec<String> = per_set
        .iter()
        .map(|(s, n)| format!("{} from {s}", text::thousands(*n)))
        .collect();
    say!(
        console,
        "run #{} created {} records that are still there: {}",
        args.run_id,
        text::thousands(todo.len() as u64),
        if what.is_empty() {
            "none".into()
        } else {
            what.join(", ")
        }
    );
    if updated > 0 {
        say!(
            console,
            "{} rows it updated or upserted are left as they are (updates, and upserts that did not say \
             they created: run upserts with --track-creates to make them undoable)",
            text::thousands(updated)
        );
    }
    if undone > 0 {
        say!(
            console,
            "{} records were deleted by an earlier undo",
            text::thousands(undone as u64)
        );
    }
    if !no_id.is_empty() {
        say!(
            console,
            "{} created records cannot be deleted: the response gave no record id",
            text::thousands(no_id.len() as u64)
        );
    }
    if todo.is_empty() {
        return Ok(Finished::complete(false));
    }
    if !args.yes {
        match console
            .confirm("delete them?")
            .map_err(crate::Error::io("cannot read the answer"))?
        {
            None => {
                return Err(crate::Error::Unusable(
                    "nothing deleted: add --yes to confirm when not at a terminal".into(),
                ));
            }
            Some(false) => {
                console.line("nothing deleted");
                return Ok(Finished::complete(false));
            }
            Some(true) => {}
        }
    }
    let runtime = super::runtime()?;
    runtime.block_on(delete_all(args, console, &mut ledger, todo))
}

/// Deletes `todo` (rows of the ledger whose records the run created), recording each delete.
async fn delete_all(
    args: &UndoOptions,
    console: &mut dyn Console,
    ledger: &mut Ledger,
    mut todo: Vec<RowDetail>,
) -> crate::Result<Finished> {
    let conn = connect::connect(&args.connect, &RetryPolicy::default()).await?;
    // The ledger's history belongs to one environment: its records are not in another.
    let env = crate::ledger::Environment {
        organization_id: conn.whoami.organization_id.clone(),
        url: conn.url.clone(),
        user_id: conn.whoami.user_id.clone(),
    };
    if let Some((run, recorded)) = ledger.environment()? {
        if !recorded.same_as(&env) {
            return Err(crate::Error::Unusable(
                crate::ledger::session::other_environment(ledger.path(), run, &recorded, &env)
                    .replace("nothing was sent", "nothing was deleted"),
            ));
        }
    }
    let collation = conn.collation(None).0;
    ledger.set_collation(collation);
    // The delete privilege on every table first: a refused undo deleted nothing.
    let mut sets: Vec<&str> = todo.iter().map(|d| d.entity_set.as_str()).collect();
    sets.sort_unstable();
    sets.dedup();
    check::preflight_delete(&conn, &args.policy, &sets, console).await?;
    let hint = conn.dop_hint.unwrap_or(4).max(1);
    let ceiling = args.concurrency.map_or(hint, usize::from);
    // Before the first delete, the content index forgets every record this undo may delete: a
    // delete applied and not yet recorded (a kill, a lost answer) must never leave its row
    // "unchanged" for a later --changed-only run, which then sends it again.
    let forget: Vec<(String, String)> = todo
        .iter()
        .filter_map(|d| {
            Some((
                d.entity_set.clone(),
                d.key.clone().filter(|k| !k.is_empty())?,
            ))
        })
        .collect();
    ledger.forget_content(&forget)?;
    let writer = Writer::new(
        conn.client.clone(),
        hint.min(ceiling),
        ceiling,
        None,
        WriterOptions {
            batch_size: usize::from(args.batch_size),
            atomic: false,
            part_headers: Vec::new(),
            track_creates: false,
            max_errors: None,
            policy: args.policy,
        },
    );
    // Ctrl-C / SIGTERM: no new deletes; those in flight are answered and recorded, and the
    // same undo, run again, finishes the work.
    let again = std::env::args().collect::<Vec<_>>().join(" ");
    let interrupted = signals::watch_for(writer.stop.clone(), "deleting no more", again.clone());
    // Children before parents: the last mapping of the run first, the last row first.
    todo.sort_by_key(|d| std::cmp::Reverse((d.seq, d.row)));
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(4096);
    let ctx = writer.context(events_tx);
    let total = todo.len();
    // Each operation carries the index of its ledger row as its row number.
    let details = todo;
    let ops: Vec<PendingOp> = details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let pos = RowPos {
                row: i as u64,
                line: d.line,
            };
            let url = d.record_url.clone().unwrap_or_default();
            let op = Operation {
                row: pos,
                method: Method::Delete,
                url: url.clone(),
                precondition: Precondition::None,
                body: None,
                key: d.key.clone().unwrap_or_default(),
                lookups: Vec::new(),
            };
            let record = Record {
                pos,
                data: RecordData::Json(serde_json::json!({ "delete": url, "source_row": d.row })),
            };
            let mut p = PendingOp::new(op, record, collation);
            // Already gone (deleted by hand, or by an undo whose answer was lost): counts as deleted.
            p.info.sent_before = true;
            p
        })
        .collect();
    let batch_size = usize::from(args.batch_size);
    // The deletes go as the run's operations do: requests cut by the one batching rule, sent
    // by the writer's dispatcher within the pacing's limit.
    let (batches_tx, batches_rx) = mpsc::channel::<Vec<PendingOp>>(2);
    let dispatcher = tokio::spawn(crate::writer::dispatch(ctx, batches_rx));
    let sender = tokio::spawn(async move {
        let mut chunk = Chunker::new(batch_size, false);
        let mut batch = Vec::with_capacity(batch_size);
        for p in ops {
            if chunk.ends_before(p.key_id) {
                chunk.next();
                if batches_tx.send(std::mem::take(&mut batch)).await.is_err() {
                    return;
                }
            }
            let full = chunk.add(p.key_id);
            batch.push(p);
            if full {
                chunk.next();
                if batches_tx.send(std::mem::take(&mut batch)).await.is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches_tx.send(batch).await;
        }
    });
    let mut deleted: Vec<(usize, u64, String, String)> = Vec::new();
    let mut failed = Vec::new();
    let mut fatal = None;
    let flush = |ledger: &mut Ledger, deleted: &mut Vec<(usize, u64, String, String)>| {
        let r = ledger.mark_undone(args.run_id, deleted);
        deleted.clear();
        r
    };
    while let Some(event) = events_rx.recv().await {
        match event {
            Event::Outcome(Outcome::Written(w)) => {
                let d = &details[w.pos.row as usize];
                deleted.push((
                    d.seq,
                    d.row,
                    d.entity_set.clone(),
                    d.key.clone().unwrap_or_default(),
                ));
                if deleted.len() >= batch_size {
                    flush(ledger, &mut deleted)?;
                }
            }
            Event::Outcome(Outcome::Rejected(r)) => {
                let d = &details[r.pos().row as usize];
                failed.push(format!(
                    "row {} ({}): {}",
                    d.row,
                    d.record_url.as_deref().unwrap_or_default(),
                    r.reason()
                ));
            }
            Event::Fatal(f) => {
                fatal.get_or_insert((f.ending(), f.explain()));
            }
            _ => {}
        }
    }
    flush(ledger, &mut deleted)?;
    sender.await?;
    dispatcher.await?;
    say!(
        console,
        "deleted {} of {} records",
        text::thousands((total - failed.len()) as u64),
        text::thousands(total as u64)
    );
    if !failed.is_empty() {
        say!(console, "not deleted:");
        for f in failed.iter().take(20) {
            say!(console, "  {f}");
        }
    }
    if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Finished {
            ending: Ending::Interrupted,
            message: Some(format!(
                "interrupted: the deletes in flight were recorded; finish with:\n  {again}"
            )),
        });
    }
    if let Some((ending, why)) = fatal {
        // Not allowed (a missing prvDelete privilege, the user disabled), or the table is gone.
        return Ok(Finished {
            ending,
            message: Some(format!(
                "undo stopped: {why}; run the same undo again once it is fixed: records already deleted are recorded"
            )),
        });
    }
    Ok(Finished::complete(!failed.is_empty()))
}
