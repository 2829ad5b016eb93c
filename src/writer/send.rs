//! One batch's life: wait for its turn, send, decide what each operation became, and resend only
//! what is worth resending, until every operation is written, rejected or deferred.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{Client, SendFailure};
use super::decide::{
    Attempt, Fatal, Found, Limit, OpInfo, Provenance, READ_BACK_SELECT, Verdict, bound, decide,
    read_back, read_back_absent, read_back_own, settle, settle_deletes,
};
use super::order::KeyGate;
use super::pacing::Pacing;
use super::retry::{RetryPolicy, TokenRefused, token_refused};
use crate::auth::AccessToken;
use crate::odata::batch::PartOutcome;
use crate::odata::{BatchOptions, Operation, decode_batch_response, encode_batch};
use crate::outcome::{Outcome, Reject, Written};
use crate::source::Record;

/// An operation on its way, with the record it came from.
#[derive(Debug)]
pub struct PendingOp {
    /// The request.
    pub op: Operation,
    /// The source record (for the rejects file).
    pub record: Record,
    /// What the decisions need to know about it.
    pub info: OpInfo,
    /// The identity under which the key gate holds its key (see `order`), taken once; none for
    /// an operation without a key (a keyless create).
    pub key_id: Option<u64>,
    /// The id dvload gave the record this create makes (see [`crate::ids`]): a lost answer is
    /// settled by reading it, and `undo` deletes it.
    pub own_id: Option<uuid::Uuid>,
}

impl PendingOp {
    /// A fresh operation, never sent.
    pub fn new(op: Operation, record: Record, collation: crate::keys::Collation) -> PendingOp {
        let info = OpInfo {
            method: op.method,
            precondition: op.precondition,
            binds: op
                .body
                .as_deref()
                .is_some_and(|b| b.contains("@odata.bind\":\"")),
            maybe_applied: false,
            sent_before: false,
            deferred: false,
            attempts: 0,
            own_id: false,
        };
        let key_id = (!op.key.is_empty()).then(|| collation.key_id(&op.key));
        PendingOp {
            op,
            record,
            info,
            key_id,
            own_id: None,
        }
    }

    /// Gives a create its id (see [`crate::ids::RecordIds::give`]): in its body, and known to
    /// the decisions, which then never take it for a blind create.
    pub fn give_id(&mut self, ids: &crate::ids::RecordIds) {
        if let Some((id, body)) = ids.give(&self.op) {
            self.op.body = Some(body);
            self.own_id = Some(id);
            self.info.own_id = true;
        }
    }
}

/// What the batch tasks tell the recorder.
#[derive(Debug)]
pub enum Event {
    /// What became of a row.
    Outcome(Outcome),
    /// To be sent again after the rest of the job (a lookup target not found yet).
    Deferred(PendingOp, String),
    /// The set-up is wrong: stop the run.
    Fatal(Fatal),
}

/// Counters the report shows.
#[derive(Debug, Default)]
pub struct SendStats {
    /// `$batch` requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Operations sent again after an attempt.
    pub retries: AtomicU64,
    /// Queries sent to find the targets of lookups by match (see [`crate::resolve`]).
    pub lookup_queries: AtomicU64,
}

/// What every batch task shares.
pub struct SendContext {
    /// The Web API client.
    pub client: Client,
    /// Concurrency and pauses.
    pub pacing: Arc<Pacing>,
    /// When to give up.
    pub policy: RetryPolicy,
    /// How batches are encoded.
    pub batch: BatchOptions,
    /// Where outcomes go.
    pub events: mpsc::Sender<Event>,
    /// Set when the run must stop: no new batch goes out.
    pub stop: Arc<AtomicBool>,
    /// Counters.
    pub stats: Arc<SendStats>,
    /// The last token Dataverse accepted, shared by every batch: a refusal of a token that was
    /// accepted before is an expiry or a revocation, never a sign of a wrong set-up.
    pub accepted_token: Arc<std::sync::Mutex<Option<AccessToken>>>,
    /// What tells a record this run created from one that was there before (read-backs).
    pub provenance: Provenance,
    /// The keys in flight: each row's final outcome releases its key (see `order`).
    pub gate: Arc<KeyGate>,
}

impl SendContext {
    /// Hands a row's outcome to the recorder, then lets the next row of its key go (or holds
    /// the key for the second pass when the row is deferred). The outcome goes first, so that the
    /// ledger records this row before any later row of its key can be sent.
    /// `done` collects the keys to release: the caller releases them once its batch's outcomes
    /// are all sent ([`KeyGate::release_all`]: one lock for the batch).
    async fn emit(&self, key: Option<u64>, row: u64, event: Event, done: &mut Vec<u64>) {
        let deferred = matches!(event, Event::Deferred(..));
        if let (Some(id), Event::Outcome(Outcome::Written(w))) = (key, &event) {
            if settles_by_key(&w.op) {
                self.gate.note_done(id);
            }
        }
        let _ = self.events.send(event).await;
        if let Some(id) = key {
            if deferred {
                self.gate.defer(id, row);
            } else {
                done.push(id);
            }
        }
    }
}

/// Sends one batch until each of its operations has an outcome.
pub async fn send_batch(mut pending: Vec<PendingOp>, ctx: Arc<SendContext>) {
    let first = Instant::now();
    let mut attempt = 0u32;
    // Attempts of this batch in a row refused (401) with a token Dataverse never accepted.
    let mut refused_in_a_row = 0u32;
    while !pending.is_empty() {
        if ctx.stop.load(Ordering::Relaxed) {
            let mut done = Vec::new();
            for p in pending {
                let reason =
                    "not sent: the run stopped before this row's turn (replay it from this file)"
                        .to_string();
                let (key, row) = (p.key_id, p.record.pos.row);
                let event = Event::Outcome(Outcome::Rejected(Reject::Unsent(p.record, reason)));
                ctx.emit(key, row, event, &mut done).await;
            }
            ctx.gate.release_all(&done);
            return;
        }
        ctx.pacing.wait_turn(pending.len()).await;
        for p in &mut pending {
            p.info.attempts += 1;
        }
        let ops: Vec<&Operation> = pending.iter().map(|p| &p.op).collect();
        let encoded = encode_batch(&ops, &ctx.batch, uuid::Uuid::new_v4());
        drop(ops);
        ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut infos: Vec<OpInfo> = pending.iter().map(|p| p.info).collect();
        let elapsed = first.elapsed();
        let reply = ctx.client.post_batch(&encoded).await;
        if matches!(&reply, Ok(r) if r.status == 413) {
            // Too large for the service: not a failed attempt of the rows, but of the request's
            // shape. Split it in halves (each sent in turn, down to one row); a single row, or an
            // --atomic change set (which must stay whole), is rejected with its size.
            for p in &mut pending {
                p.info.attempts = p.info.attempts.saturating_sub(1);
            }
            let size = encoded.body.len();
            drop(encoded);
            if pending.len() > 1 && !ctx.batch.atomic {
                tracing::warn!(
                    rows = pending.len(),
                    bytes = size,
                    "the service refused the request as too large (413); splitting it"
                );
                let second = pending.split_off(pending.len() / 2);
                Box::pin(send_batch(pending, ctx.clone())).await;
                Box::pin(send_batch(second, ctx)).await;
                return;
            }
            let reason = if pending.len() > 1 {
                format!(
                    "rejected with its change set (--atomic): the request of {} rows ({size} bytes) is too large for the service (413 Request Entity Too Large); use a smaller --batch-size",
                    pending.len()
                )
            } else {
                format!(
                    "the row is too large for the service: its request ({size} bytes) was refused with 413 (Request Entity Too Large); shorten its values"
                )
            };
            let mut done = Vec::new();
            for p in pending {
                let (key, row) = (p.key_id, p.record.pos.row);
                let event =
                    Event::Outcome(Outcome::Rejected(Reject::Service(p.record, reason.clone())));
                ctx.emit(key, row, event, &mut done).await;
            }
            ctx.gate.release_all(&done);
            return;
        }
        let mut answers: Vec<(Option<String>, u16)> = Vec::new();
        let (decision, token) = match &reply {
            Err(SendFailure::Auth(e)) if e.is_transient() => {
                // Entra busy or out of reach: nothing was sent; try again like any such failure.
                let why = format!("no access token: {e}");
                (
                    decide(
                        &Attempt::NotSent(&why),
                        &infos,
                        ctx.batch.atomic,
                        elapsed,
                        &ctx.policy,
                    ),
                    None,
                )
            }
            Err(SendFailure::Auth(e)) => {
                // No token at all: the set-up is wrong, every row of the run would fail alike.
                // The run stops; this batch was not sent, so its rows are unsent (a resume, once
                // the set-up is fixed, sends them).
                ctx.stop.store(true, Ordering::Relaxed);
                let fatal = Fatal {
                    status: 401,
                    error: crate::odata::ODataError {
                        code: String::new(),
                        message: e.to_string(),
                    },
                };
                let _ = ctx.events.send(Event::Fatal(fatal)).await;
                let mut done = Vec::new();
                for p in pending {
                    let reason = format!("not sent: the run stopped: {e}");
                    let (key, row) = (p.key_id, p.record.pos.row);
                    let event = Event::Outcome(Outcome::Rejected(Reject::Unsent(p.record, reason)));
                    ctx.emit(key, row, event, &mut done).await;
                }
                ctx.gate.release_all(&done);
                return;
            }
            Err(SendFailure::NotSent(why)) => (
                decide(
                    &Attempt::NotSent(why),
                    &infos,
                    ctx.batch.atomic,
                    elapsed,
                    &ctx.policy,
                ),
                None,
            ),
            Err(SendFailure::Lost(why)) => (
                decide(
                    &Attempt::Lost(why),
                    &infos,
                    ctx.batch.atomic,
                    elapsed,
                    &ctx.policy,
                ),
                None,
            ),
            Ok(r) => {
                let decoded = decode_batch_response(r.status, r.content_type.as_deref(), &r.body);
                // A throttled operation (429: the whole request, its part or its change set) was
                // not run: waiting as the service asks is not a failed attempt, so it does not
                // count toward --max-attempts (max_elapsed still bounds it).
                let outcomes = decoded
                    .as_ref()
                    .ok()
                    .map(|response| response.outcomes_of(&encoded));
                for (i, (info, p)) in infos.iter_mut().zip(pending.iter_mut()).enumerate() {
                    let part = outcomes.as_ref().and_then(|o| o.get(i));
                    let throttled = r.status == 429
                        || matches!(
                            part,
                            Some(
                                PartOutcome::Failed { status: 429, .. }
                                    | PartOutcome::ChangeSetFailed { status: 429, .. }
                            )
                        );
                    if throttled {
                        info.attempts = info.attempts.saturating_sub(1);
                        p.info.attempts = info.attempts;
                    }
                }
                let decided = match decoded {
                    Ok(response) => {
                        let outcomes = outcomes.unwrap_or_default();
                        answers = outcomes.iter().map(answer).collect();
                        let attempt = Attempt::Answered {
                            response: &response,
                            retry_after: r.retry_after,
                            outcomes: &outcomes,
                        };
                        decide(&attempt, &infos, ctx.batch.atomic, elapsed, &ctx.policy)
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        let attempt = Attempt::Unreadable {
                            status: r.status,
                            reason: &reason,
                        };
                        decide(&attempt, &infos, ctx.batch.atomic, elapsed, &ctx.policy)
                    }
                };
                (decided, Some(r.token.clone()))
            }
        };
        drop(encoded);
        let mut fatal = decision.fatal.clone();
        let mut skip_backoff = false;
        let accepted_before = |t: &Option<AccessToken>| {
            let last = ctx.accepted_token.lock().unwrap_or_else(|e| e.into_inner());
            t.is_some() && *last == *t
        };
        if decision.refresh_token {
            if !accepted_before(&token) {
                refused_in_a_row += 1;
            }
            match token_refused(refused_in_a_row) {
                TokenRefused::Stop => {
                    // New tokens refused again and again: the token is not the problem.
                    fatal.get_or_insert(Fatal {
                        status: 401,
                        error: crate::odata::ODataError {
                            code: String::new(),
                            message: format!(
                                "Dataverse refused {refused_in_a_row} access tokens in a row, freshly issued ones included (401)"
                            ),
                        },
                    });
                }
                TokenRefused::Refresh => {
                    if let Some(token) = &token {
                        ctx.client.tokens().invalidate(token).await;
                        skip_backoff = true;
                    }
                }
            }
        } else if reply.is_ok() {
            refused_in_a_row = 0;
            if token.is_some() && !accepted_before(&token) {
                *ctx.accepted_token.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
            }
        }
        match decision.throttle {
            Some(pause) => ctx
                .pacing
                .throttled(pause, decision.limit.unwrap_or(Limit::Unknown)),
            None if reply.is_ok() => ctx.pacing.succeeded(
                decision
                    .verdicts
                    .iter()
                    .filter(|v| matches!(v, Verdict::Written))
                    .count(),
            ),
            None => {}
        }
        if let Some(f) = fatal {
            ctx.stop.store(true, Ordering::Relaxed);
            let _ = ctx.events.send(Event::Fatal(f)).await;
        }
        // Ambiguous answers (a create by key finding its key taken after an attempt that may
        // have created it) are settled by reading the record back before anything is counted.
        let mut found = Vec::new();
        let done_before: Vec<bool> = pending
            .iter()
            .map(|p| settles_by_key(&p.op) && p.key_id.is_some_and(|id| ctx.gate.done_in_run(id)))
            .collect();
        let settled = if decision.settle_deletes && done_before.iter().any(|&d| d) {
            settle_deletes(decision.verdicts, &found, &done_before)
        } else if decision.settle_deletes {
            for (i, p) in pending.iter().enumerate().skip(1) {
                let read = match read_record(&ctx, &p.op).await {
                    Ok(status) => read_back_absent(status),
                    Err(why) => Found::Unknown(why),
                };
                found.push((i, read));
            }
            settle_deletes(decision.verdicts, &found, &done_before)
        } else {
            for (i, v) in decision.verdicts.iter().enumerate() {
                if matches!(v, Verdict::Verify(_)) {
                    found.push((i, read_record_back(&ctx, &pending[i]).await));
                }
            }
            settle(
                decision.verdicts,
                &found,
                decision.settle_with,
                &infos,
                &done_before,
            )
        };
        let mut settled = settled;
        if !found.is_empty() {
            // A read that told nothing sends the operations again: within the same bounds.
            let mut verdicts: Vec<Verdict> = settled.iter().map(|s| s.verdict.clone()).collect();
            bound(&mut verdicts, &infos, decision.peeled, elapsed, &ctx.policy);
            for (s, v) in settled.iter_mut().zip(verdicts) {
                s.verdict = v;
            }
        }
        if decision.peeled {
            // Resending without the operation found done is progress, not another attempt.
            for p in &mut pending {
                p.info.attempts = p.info.attempts.saturating_sub(1);
            }
        }
        let stopping = ctx.stop.load(Ordering::Relaxed);
        let attempted = pending.len();
        let mut again = Vec::new();
        let mut done = Vec::with_capacity(pending.len());
        for (i, (mut p, settled)) in pending.into_iter().zip(settled).enumerate() {
            let (key, row) = (p.key_id, p.record.pos.row);
            let event = match settled.verdict {
                Verdict::Written => {
                    let (entity_id, status) = answers
                        .get_mut(i)
                        .map_or((None, 0), |(id, status)| (id.take(), *status));
                    Event::Outcome(Outcome::Written(Written {
                        pos: p.record.pos,
                        entity_id,
                        status,
                        op: p.op,
                        created: settled.created,
                        own_id: p.own_id,
                    }))
                }
                Verdict::Verify(reason) => {
                    unreachable!("settle() resolves every read-back ({reason})")
                }
                Verdict::Rejected(reason) => {
                    Event::Outcome(Outcome::Rejected(Reject::Service(p.record, reason)))
                }
                Verdict::Unsent(reason) => {
                    Event::Outcome(Outcome::Rejected(Reject::Unsent(p.record, reason)))
                }
                Verdict::Defer(reason) => Event::Deferred(p, reason),
                Verdict::Retry {
                    reason,
                    maybe_applied,
                } => {
                    p.info.maybe_applied |= maybe_applied;
                    if stopping {
                        let reason =
                            format!("not written: the run stopped while retrying ({reason})");
                        Event::Outcome(Outcome::Rejected(Reject::Unsent(p.record, reason)))
                    } else {
                        again.push(p);
                        continue;
                    }
                }
            };
            ctx.emit(key, row, event, &mut done).await;
        }
        ctx.gate.release_all(&done);
        if again.is_empty() {
            return;
        }
        // Backoff and --max-attempts count failures in a row: an attempt that settled some of
        // the batch's rows (a change set peeled, parts answered) starts both again. Otherwise an
        // --atomic change set whose answers are lost after it was applied, peeled one operation
        // per round trip, charges its last operations for every loss of the set and gives them
        // up while the batch is making progress. Each such round settles at least one row, so
        // the batch still ends, and max_elapsed bounds it in time.
        let progressed = again.len() < attempted;
        if progressed {
            attempt = 0;
            for p in &mut again {
                p.info.attempts = 0;
            }
        }
        ctx.stats
            .retries
            .fetch_add(again.len() as u64, Ordering::Relaxed);
        // A throttle pause is waited out in `wait_turn`; a refreshed token is tried at once;
        // anything else backs off.
        if decision.throttle.is_none() && !skip_backoff && !decision.peeled {
            // By the one set of rules (`retry.rs`): a Retry-After the answer gave, else backoff.
            let retry_after = reply.as_ref().ok().and_then(|r| r.retry_after);
            let delay = super::retry::failure_pause(&ctx.policy, attempt + 1, retry_after);
            tokio::time::sleep(delay).await;
        }
        if !decision.peeled && !progressed {
            attempt += 1;
        }
        pending = again;
    }
}

/// Reads back the record of a create by key that found its key taken, to tell whether this run
/// created it. A key an earlier row of this run created needs no read: the 412 is a real
/// conflict (the gate remembers such keys). Any failure to read gives [`Found::Unknown`]: the
/// create is sent again.
async fn read_record_back(ctx: &SendContext, p: &PendingOp) -> Found {
    if p.key_id.is_some_and(|id| ctx.gate.done_in_run(id)) {
        return Found::Theirs(
            "the record already exists: an earlier row of this run with the same key created it"
                .into(),
        );
    }
    if let Some(id) = p.own_id {
        // The record of the id this run gave it: there, it is this create's (no one else uses
        // that id); absent, the key is held by a record this run did not create.
        let set = p.op.url.split('(').next().unwrap_or(&p.op.url);
        return match get_url(ctx, &format!("{set}({id})")).await {
            Ok(reply) => read_back_own(reply.status, id),
            Err(why) => Found::Unknown(why),
        };
    }
    match get_record(ctx, &p.op).await {
        Ok(reply) => read_back(reply.status, &reply.body, &ctx.provenance),
        Err(why) => Found::Unknown(why),
    }
}

/// Reads a record's status (200 there, 404 gone), for a delete that may have been applied.
async fn read_record(ctx: &SendContext, op: &Operation) -> Result<u16, String> {
    get_record(ctx, op).await.map(|reply| reply.status)
}

/// Reads `op`'s record (`$select=createdon,_createdby_value`), trying again what is transient
/// (no answer, 429, 5xx, a refused token) up to the policy's attempts with its backoff: a read
/// is cheap and harmless, and one that tells nothing sends a whole change set again (a change
/// set of deletes reads every other record, so under heavy faults a few tries were not enough).
async fn get_record(ctx: &SendContext, op: &Operation) -> Result<super::client::Reply, String> {
    get_url(ctx, &op.url).await
}

/// Reads the record at `url` (`$select=createdon,_createdby_value`), as [`get_record`].
async fn get_url(ctx: &SendContext, url: &str) -> Result<super::client::Reply, String> {
    let url = format!("{url}?{READ_BACK_SELECT}");
    ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
    match ctx.client.get_retrying(&url, &ctx.policy).await {
        Ok(reply) if reply.status == 401 => {
            Err("reading the record back: the token was refused (401)".into())
        }
        Ok(reply) if super::retry::retryable(reply.status) => Err(format!(
            "reading the record back answered HTTP {}",
            reply.status
        )),
        Ok(reply) => Ok(reply),
        Err(e) => Err(format!("reading the record back failed: {e}")),
    }
}

/// True for a create by key or a delete: operations whose ambiguous answers (412, 404) depend on
/// whether an earlier row of the run already did the key (see `KeyGate::note_done`).
pub fn settles_by_key(op: &Operation) -> bool {
    !op.key.is_empty()
        && (op.precondition == crate::odata::Precondition::IfNoneMatchAny
            || op.method == crate::odata::Method::Delete)
}

/// What a written row keeps of its part's answer: `OData-EntityId` and the status.
fn answer(outcome: &PartOutcome) -> (Option<String>, u16) {
    match outcome {
        PartOutcome::Succeeded { entity_id, status } => (entity_id.clone(), *status),
        _ => (None, 0),
    }
}
