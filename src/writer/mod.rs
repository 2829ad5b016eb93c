//! The writer: streams a job's operations into Dataverse as concurrent `$batch` requests, within
//! the service protection limits, retrying what is retryable, so that every row ends written,
//! rejected or skipped exactly once.
//!
//! Three parts run at once: a reader thread maps rows and fills batches (bounded, so memory stays
//! flat); a dispatcher sends up to `Pacing::limit()` batches at a time, each in its own task
//! (`send.rs`); and the caller's task hands each outcome to the job's one sink,
//! `ledger::Recorder` (journal, rejects file, counts, progress). Rows whose lookup target did not
//! exist yet are sent once more at the end of the job, so that children in the same file as their
//! parents load whatever the order of completion.

pub mod client;
pub mod decide;
pub mod order;
pub mod pacing;
pub mod retry;
pub mod send;
pub mod timeline;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use client::{Client, SendFailure, WhoAmI};
pub use decide::Fatal;
pub use pacing::Pacing;
pub use retry::RetryPolicy;
pub use send::{Event, PendingOp, SendContext, SendStats};

use crate::batch::Chunker;
use crate::job::Job;
use crate::ledger::{Recorder, RejectsWriter};
use crate::odata::BatchOptions;
use crate::outcome::{Admit, AdmitFn, Counts, Outcome, Progress, Reject, Sink, Step};
use order::{KeyGate, Turn};

/// The column an upsert job asks for back with `--track-creates` (its key column), or `None`
/// (not asked, or not an upsert).
pub fn upsert_select(track_creates: bool, plan: &crate::mapping::Plan) -> Option<String> {
    if !track_creates || plan.operation != crate::mapping::OperationKind::Upsert {
        return None;
    }
    plan.key_column().map(str::to_owned)
}

/// How the writer sends.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Operations per `$batch` request.
    pub batch_size: usize,
    /// One change set per batch (all or nothing).
    pub atomic: bool,
    /// Headers on every part (`MSCRM.*` options).
    pub part_headers: Vec<(String, String)>,
    /// Stop (exit 4) once more rows than this were rejected.
    pub max_errors: Option<u64>,
    /// When to give up on an operation.
    pub policy: RetryPolicy,
    /// `--track-creates`: upserts ask for their record back so that the ledger knows which ones
    /// created it (see [`BatchOptions::upsert_select`]).
    pub track_creates: bool,
}

/// Everything one run shares across its jobs.
pub struct Writer {
    /// The Web API client.
    pub client: Client,
    /// Concurrency, pauses, requests per second.
    pub pacing: Arc<Pacing>,
    /// Options.
    pub options: WriterOptions,
    /// Counters.
    pub stats: Arc<SendStats>,
    /// The run over time, as its jobs' progress displays sample it (see [`timeline`]).
    pub timeline: timeline::Timeline,
    /// Set when the run must stop.
    pub stop: Arc<AtomicBool>,
    /// The last access token Dataverse accepted.
    accepted_token: Arc<std::sync::Mutex<Option<crate::auth::AccessToken>>>,
    /// What tells a record this run created from one there before it (see
    /// [`decide::read_back`]); by default, created since this writer was made, by anyone.
    pub provenance: decide::Provenance,
    /// How the environment compares keys (see [`crate::keys`]): the per-key order holds keys the
    /// service takes for one as one.
    pub collation: crate::keys::Collation,
    /// Each table's primary id column by entity set, as the check before the run read them (the
    /// targets of lookups by match are read by it).
    pub primary_ids: crate::environment::check::PrimaryIds,
}

/// What writing one job came to.
#[derive(Debug, Default)]
pub struct JobOutcome {
    /// Row counts.
    pub counts: Counts,
    /// The first row errors, with their positions.
    pub first_errors: Vec<String>,
    /// A set-up failure that stopped the run.
    pub fatal: Option<Fatal>,
    /// True when the run stopped for too many rejects.
    pub too_many_errors: bool,
    /// A source error that ended the job early (a broken JSON document).
    pub source_error: Option<String>,
    /// Rows sent again after their lookup target was not found.
    pub deferred: u64,
    /// Rows not sent because an earlier run of a resumed chain did them.
    pub passed_over: u64,
    /// Of those, rows the chain rejected, written again to this run's rejects file.
    pub carried: u64,
    /// The rejects file could not be written: the run stopped (the rows' outcomes are in the
    /// ledger, and a resume writes them to its rejects file).
    pub output_error: Option<String>,
}

/// The run ledger's hooks into a job; `Hooks::default()` is a run without a ledger.
#[derive(Default)]
pub struct Hooks<'a> {
    /// See [`Admit`].
    pub admit: Option<AdmitFn>,
    /// See [`Sink`].
    pub sink: Option<&'a mut dyn Sink>,
}

impl Writer {
    /// A writer; `max_rps` limits requests per second across all workers.
    pub fn new(
        client: Client,
        start_concurrency: usize,
        ceiling: usize,
        max_rps: Option<NonZeroU32>,
        options: WriterOptions,
    ) -> Writer {
        Writer {
            client,
            pacing: Arc::new(Pacing::new(start_concurrency, ceiling, max_rps)),
            options,
            stats: Arc::new(SendStats::default()),
            timeline: timeline::Timeline::new(),
            stop: Arc::new(AtomicBool::new(false)),
            accepted_token: Arc::default(),
            provenance: decide::Provenance {
                since: jiff::Timestamp::now(),
                user_id: None,
            },
            collation: crate::keys::Collation::default(),
            primary_ids: Default::default(),
        }
    }

    /// Writes one job; rejects go to `rejects`.
    pub async fn write_job(
        &self,
        job: Job,
        rejects: &mut RejectsWriter,
        progress: &mut dyn Progress,
    ) -> crate::Result<JobOutcome> {
        self.write_job_with(job, rejects, progress, Hooks::default())
            .await
    }

    /// Writes one job with the run ledger's hooks.
    pub async fn write_job_with(
        &self,
        mut job: Job,
        rejects: &mut RejectsWriter,
        progress: &mut dyn Progress,
        hooks: Hooks<'_>,
    ) -> crate::Result<JobOutcome> {
        // Never a row with a constant still waiting for its column's labels (the pre-flight
        // check converts them, or refuses the run).
        job.plan.ready()?;
        let Hooks { mut admit, sink } = hooks;
        // Every outcome of the job goes through one recorder: the ledger's journal, the rejects
        // file, the counts, the progress display.
        let journal = sink.map(|s| &mut *s as &mut dyn Sink);
        let mut recorder = Recorder::new(Some(rejects), journal, progress, 20);
        let batch_size = self.options.batch_size.max(1);
        let collation = self.collation;
        let ids = job.ids.clone();
        // Room for the outcomes of every batch in flight and as many again, so that a batch that
        // has its answer never waits for the recorder (whose ledger transactions come in bursts).
        let events_room = (batch_size * (self.pacing.limit() + 1) * 2).max(4096);
        let (events_tx, mut events_rx) = mpsc::channel::<Event>(events_room);
        let (batches_tx, batches_rx) =
            mpsc::channel::<Vec<PendingOp>>(self.pacing.limit().max(2) * 2);
        let stop = self.stop.clone();
        let upsert_select = upsert_select(self.options.track_creates, &job.plan);

        // The reader: maps rows into batches on a blocking thread, in key order (see `order`).
        let gate = Arc::new(KeyGate::default());
        let mut batcher = Batcher::new(
            batch_size,
            self.options.atomic,
            false,
            batches_tx,
            events_tx.clone(),
            gate.clone(),
            stop.clone(),
        );
        // Lookups by match are found a window of rows at a time, before the rows are admitted.
        let mut resolver =
            crate::resolve::Resolver::for_job(&job, self, tokio::runtime::Handle::current());
        let reader = tokio::task::spawn_blocking(move || -> Option<String> {
            let mut source_error = None;
            while !stop.load(Ordering::Relaxed) {
                let next = match resolver.as_mut() {
                    Some(r) => r.next_step(&mut job),
                    None => job.next_step(),
                };
                let step = match next {
                    None => break,
                    Some(Err(e)) => {
                        // The rows before the break are still sent: the partial batch below.
                        source_error = Some(e.to_string());
                        break;
                    }
                    Some(Ok(step)) => step,
                };
                let admitted = admit
                    .as_mut()
                    .map_or(Admit::Send { sent_before: false }, |f| f(&step));
                let event = match (admitted, step) {
                    (Admit::PassOver, step) => {
                        // A create or delete an earlier run of the chain did: its key is this
                        // job's own doing (see `KeyGate::note_done`).
                        if let Step::Operation(op, _) = &step {
                            if send::settles_by_key(op) {
                                batcher.gate.note_done(collation.key_id(&op.key));
                            }
                        }
                        Event::Outcome(Outcome::PassedOver)
                    }
                    (Admit::PassOverRejected(reason), Step::Operation(_, record)) => {
                        Event::Outcome(Outcome::Carried(Reject::Service(record, reason)))
                    }
                    (Admit::PassOverRejected(_), Step::Rejected(reject)) => {
                        Event::Outcome(Outcome::Carried(reject))
                    }
                    (Admit::PassOverRejected(_), _) => Event::Outcome(Outcome::PassedOver),
                    (Admit::Unchanged, Step::Operation(op, record)) => {
                        Event::Outcome(Outcome::Unchanged(record.pos, op.key))
                    }
                    (Admit::Send { .. }, Step::Operation(op, record)) if !op.lookups.is_empty() => {
                        // Never sent with a lookup left unbound (the resolver binds or rejects).
                        let reason = "not sent: a lookup by match was not resolved (a defect: please report it)";
                        Event::Outcome(Outcome::Rejected(Reject::Unsent(record, reason.into())))
                    }
                    (Admit::Send { sent_before }, Step::Operation(op, record)) => {
                        let mut pending = PendingOp::new(op, record, collation);
                        if let Some(ids) = &ids {
                            pending.give_id(ids);
                        }
                        pending.info.sent_before |= sent_before;
                        if batcher.push(pending) {
                            continue;
                        }
                        break;
                    }
                    (_, Step::Skipped(pos)) => Event::Outcome(Outcome::Skipped(pos)),
                    (_, Step::Rejected(reject)) => Event::Outcome(Outcome::Rejected(reject)),
                };
                if batcher.events.blocking_send(event).is_err() {
                    break;
                }
            }
            batcher.finish();
            source_error
        });

        let dispatcher = tokio::spawn(dispatch(
            self.context_selecting(events_tx.clone(), upsert_select.clone(), gate.clone()),
            batches_rx,
        ));
        drop(events_tx);

        let mut outcome = JobOutcome::default();
        let mut deferred = Vec::new();
        self.record(&mut events_rx, &mut recorder, &mut outcome, &mut deferred)
            .await?;
        dispatcher.await?;
        outcome.source_error = reader.await?;

        // Second pass: rows whose lookup target was missing, now that the rest of the job is in
        // (unless the run is stopping: then they are unsent).
        if !deferred.is_empty() && self.stop.load(Ordering::Relaxed) {
            self.give_up_deferred(deferred, &mut recorder, &mut outcome)?;
        } else if !deferred.is_empty() {
            outcome.deferred = deferred.len() as u64;
            // In source order: a batch holds consecutive rows, so an --atomic change set deferred
            // whole stays one change set (every batch but the job's last is full).
            deferred.sort_by_key(|op| op.record.pos.row);
            let (events_tx, mut events_rx) = mpsc::channel::<Event>(4096);
            let (batches_tx, batches_rx) = mpsc::channel::<Vec<PendingOp>>(4);
            // Nothing is in flight any more; the deferred rows go in source order, one row per
            // key at a time again.
            gate.clear();
            let dispatcher = tokio::spawn(dispatch(
                self.context_selecting(events_tx.clone(), upsert_select, gate.clone()),
                batches_rx,
            ));
            let mut batcher = Batcher::new(
                batch_size,
                self.options.atomic,
                true,
                batches_tx,
                events_tx,
                gate,
                self.stop.clone(),
            );
            let feeder = tokio::task::spawn_blocking(move || {
                let mut rest = deferred.into_iter();
                for op in rest.by_ref() {
                    if !batcher.push(op) {
                        break;
                    }
                }
                // The run stopped: what was not sent has an outcome all the same.
                for op in rest {
                    let reason = "not sent: the run stopped before this row's turn (replay it from this file)";
                    let event =
                        Event::Outcome(Outcome::Rejected(Reject::Unsent(op.record, reason.into())));
                    let _ = batcher.events.blocking_send(event);
                }
                batcher.finish();
            });
            let mut again = Vec::new();
            self.record(&mut events_rx, &mut recorder, &mut outcome, &mut again)
                .await?;
            dispatcher.await?;
            feeder.await?;
            // Deferred rows are deferred once only; should one come back, it is not dropped.
            if !again.is_empty() {
                self.give_up_deferred(again, &mut recorder, &mut outcome)?;
            }
        }
        outcome.counts = recorder.counts;
        outcome.first_errors = std::mem::take(&mut recorder.first_errors);
        outcome.passed_over = recorder.passed_over;
        outcome.carried = recorder.carried;
        outcome.output_error = recorder.rejects_error.take();
        Ok(outcome)
    }

    /// What the batch tasks of this writer share, sending outcomes to `events`.
    pub fn context(&self, events: mpsc::Sender<Event>) -> Arc<SendContext> {
        self.context_selecting(events, None, Arc::default())
    }

    /// [`Writer::context`] whose upserts ask for their record back (`upsert_select`).
    fn context_selecting(
        &self,
        events: mpsc::Sender<Event>,
        upsert_select: Option<String>,
        gate: Arc<KeyGate>,
    ) -> Arc<SendContext> {
        Arc::new(SendContext {
            client: self.client.clone(),
            pacing: self.pacing.clone(),
            policy: self.options.policy,
            batch: BatchOptions {
                atomic: self.options.atomic,
                part_headers: self.options.part_headers.clone(),
                upsert_select,
                ..BatchOptions::default()
            },
            events,
            stop: self.stop.clone(),
            stats: self.stats.clone(),
            accepted_token: self.accepted_token.clone(),
            provenance: self.provenance.clone(),
            gate,
        })
    }

    /// Receives outcomes until every sender is gone, and records them. When one cannot be
    /// recorded (the state directory full), nothing more is sent, in either pass.
    async fn record(
        &self,
        events: &mut mpsc::Receiver<Event>,
        recorder: &mut Recorder<'_>,
        outcome: &mut JobOutcome,
        deferred: &mut Vec<PendingOp>,
    ) -> crate::Result<()> {
        let stop_on_error = |r: crate::Result<()>| {
            if r.is_err() {
                self.stop.store(true, Ordering::Relaxed);
            }
            r
        };
        while let Some(event) = events.recv().await {
            match event {
                Event::Outcome(row) => {
                    stop_on_error(recorder.note(&row))?;
                    self.check_limits(recorder, outcome);
                }
                Event::Deferred(mut op, reason) => {
                    tracing::debug!(row = op.record.pos.row, %reason, "lookup target not found yet; will send again at the end");
                    op.info.deferred = true;
                    deferred.push(op);
                }
                Event::Fatal(f) => {
                    self.stop.store(true, Ordering::Relaxed);
                    outcome.fatal.get_or_insert(f);
                }
            }
        }
        stop_on_error(recorder.flush())
    }

    /// Deferred rows the run stopped before resending: rejected as unsent (a resume sends
    /// them), never dropped.
    fn give_up_deferred(
        &self,
        deferred: Vec<PendingOp>,
        recorder: &mut Recorder<'_>,
        outcome: &mut JobOutcome,
    ) -> crate::Result<()> {
        for op in deferred {
            let reject = Reject::Unsent(
                op.record,
                "not written: the run stopped before its lookup could be retried".into(),
            );
            recorder.note(&Outcome::Rejected(reject))?;
            self.check_limits(recorder, outcome);
        }
        recorder.flush()
    }

    /// Stops the run when the rejects file cannot be written (the rows still on their way are
    /// recorded as ever: the ledger has every outcome, and a resume's rejects file holds them
    /// all again), or when rejects pass `--max-errors`.
    fn check_limits(&self, recorder: &Recorder<'_>, outcome: &mut JobOutcome) {
        if recorder.rejects_error.is_some() {
            self.stop.store(true, Ordering::Relaxed);
        }
        if let Some(max) = self.options.max_errors {
            if recorder.counts.rejected > max && !self.stop.swap(true, Ordering::Relaxed) {
                outcome.too_many_errors = true;
            }
        }
    }
}

/// Groups operations into batches, in key order: a batch takes its keys just before it is sent,
/// waiting for an earlier batch that holds one (see `order`). A batch without change sets never
/// holds a key twice (a retried part could land after the later one): a second row of a key
/// starts the next batch. A row whose key an earlier row holds for the second pass is deferred
/// behind it. Runs on a blocking thread.
struct Batcher {
    size: usize,
    batch: Vec<PendingOp>,
    /// Where `batch` ends (see `crate::batch`).
    chunk: Chunker,
    batches: mpsc::Sender<Vec<PendingOp>>,
    events: mpsc::Sender<Event>,
    gate: Arc<KeyGate>,
    stop: Arc<AtomicBool>,
    /// `--atomic`: a change set is applied in order, all or nothing, so it may hold a key twice.
    atomic: bool,
    /// The second pass defers nothing: a key found deferred is taken over.
    second_pass: bool,
}

impl Batcher {
    fn new(
        size: usize,
        atomic: bool,
        second_pass: bool,
        batches: mpsc::Sender<Vec<PendingOp>>,
        events: mpsc::Sender<Event>,
        gate: Arc<KeyGate>,
        stop: Arc<AtomicBool>,
    ) -> Batcher {
        Batcher {
            size,
            batch: Vec::with_capacity(size),
            chunk: Chunker::new(size, atomic),
            batches,
            events,
            gate,
            stop,
            atomic,
            second_pass,
        }
    }

    /// Puts `op` in a batch (sending the batch when full); false when the run is over.
    fn push(&mut self, op: PendingOp) -> bool {
        if let Some(id) = op.key_id {
            // A change set stays whole: it is deferred behind such a row when it is sent.
            if !self.second_pass && !self.atomic {
                if let Some(earlier) = self.gate.deferred(id) {
                    return self.defer_behind(op, earlier);
                }
            }
        }
        if self.chunk.ends_before(op.key_id) && !self.send() {
            return false;
        }
        let full = self.chunk.add(op.key_id);
        self.batch.push(op);
        !full || self.send()
    }

    /// Defers `op` behind the earlier row of its key that waits for the second pass.
    fn defer_behind(&self, op: PendingOp, earlier: u64) -> bool {
        let reason = format!("row {earlier} has the same key and waits for the second pass");
        self.events
            .blocking_send(Event::Deferred(op, reason))
            .is_ok()
    }

    /// Takes the batch's keys (waiting for earlier batches that hold them) and sends it; false
    /// when nobody takes batches any more.
    fn send(&mut self) -> bool {
        self.chunk.next();
        if self.batch.is_empty() {
            return true;
        }
        let mut batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        // Each key once, with how many operations have it, in batch order.
        let mut keys: Vec<(u64, u64, u32)> = Vec::with_capacity(batch.len());
        let mut seen: crate::keys::ById<usize> = crate::keys::ById::default();
        seen.reserve(batch.len());
        for (id, p) in batch.iter().filter_map(|p| p.key_id.map(|id| (id, p))) {
            match seen.get(&id) {
                Some(&at) => keys[at].2 += 1,
                None => {
                    seen.insert(id, keys.len());
                    keys.push((id, p.record.pos.row, 1));
                }
            }
        }
        for &(id, row, count) in &keys {
            loop {
                match self.gate.try_take(id, row, count) {
                    Turn::Go => break,
                    Turn::Busy if self.stop.load(Ordering::Relaxed) => break,
                    Turn::Busy => self.gate.wait(id, &self.stop),
                    Turn::Behind { .. } if self.second_pass => self.gate.release(id),
                    Turn::Behind { row: earlier } if self.atomic => {
                        // The key waits for the second pass: the change set follows it there,
                        // whole, and every key of it waits with it.
                        for &(key, row, _) in &keys {
                            self.gate.defer(key, row);
                        }
                        return batch.into_iter().all(|op| self.defer_behind(op, earlier));
                    }
                    Turn::Behind { row: earlier } => {
                        // The key waits for the second pass: its rows follow it there.
                        let (behind, rest): (Vec<_>, Vec<_>) =
                            batch.into_iter().partition(|p| p.key_id == Some(id));
                        batch = rest;
                        for op in behind {
                            if !self.defer_behind(op, earlier) {
                                return false;
                            }
                        }
                        break;
                    }
                }
            }
        }
        // At a stop, the batch goes all the same: its task records its rows unsent.
        batch.is_empty() || self.batches.blocking_send(batch).is_ok()
    }

    /// Sends the last, partial batch.
    fn finish(mut self) {
        self.send();
    }
}

/// Sends batches as they come, at most `Pacing::limit()` at a time.
pub async fn dispatch(ctx: Arc<SendContext>, mut batches: mpsc::Receiver<Vec<PendingOp>>) {
    let mut tasks = JoinSet::new();
    while let Some(batch) = batches.recv().await {
        while tasks.len() >= ctx.pacing.limit() {
            if tasks.join_next().await.is_none() {
                break;
            }
        }
        tasks.spawn(send::send_batch(batch, ctx.clone()));
    }
    while tasks.join_next().await.is_some() {}
}
