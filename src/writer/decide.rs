//! Retry decisions: what becomes of each operation of a `$batch` attempt, given what came back.
//! Pure (no clock, no I/O): the loop that sleeps and resends lives in `send.rs`.

use std::time::Duration;

use super::retry::{RetryPolicy, retryable, throttle_pause};
use crate::odata::{BatchResponse, Method, NotProcessed, ODataError, PartOutcome, Precondition};

/// What the writer knows of one operation when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    /// Its method.
    pub method: Method,
    /// Its conditional header.
    pub precondition: Precondition,
    /// True when its body binds a lookup (`@odata.bind`).
    pub binds: bool,
    /// True when an earlier attempt of this run may have been applied without our knowing (a
    /// lost answer), as the same batch.
    pub maybe_applied: bool,
    /// True when an earlier run may have sent it (a resumed run: any row not recorded), in a
    /// batch of unknown make-up; or, for undo, when someone may have deleted it already.
    pub sent_before: bool,
    /// True when it was already put back once for a missing lookup target.
    pub deferred: bool,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// True for a create whose id dvload chose (see `writer::ids`): a resend cannot make a
    /// second record, and a 412 after a lost attempt is settled by reading that id.
    pub own_id: bool,
}

impl OpInfo {
    /// A `POST` create without an id of ours: Dataverse picks the id, so a resend after a lost
    /// answer could make a second record.
    fn is_blind_create(&self) -> bool {
        self.method == Method::Post && !self.own_id
    }
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// Nothing reached the server (connection refused, name not resolved): safe to resend.
    NotSent(&'a str),
    /// The request went out but no complete answer came back (timeout, connection reset): the
    /// operations may or may not have been applied.
    Lost(&'a str),
    /// An answer that could not be read as a batch response (a garbled multipart body).
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        reason: &'a str,
    },
    /// A decoded answer, with one outcome per operation.
    Answered {
        /// The decoded response.
        response: &'a BatchResponse,
        /// The top-level `Retry-After`.
        retry_after: Option<Duration>,
        /// One outcome per operation, in order (`BatchResponse::outcomes_of`).
        outcomes: &'a [PartOutcome],
    },
}

/// What becomes of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Dataverse has it.
    Written,
    /// Refused for good; the text goes to the rejects file.
    Rejected(String),
    /// Send again later.
    Retry {
        /// Why (kept to explain a final give-up).
        reason: String,
        /// True when this attempt may have been applied.
        maybe_applied: bool,
    },
    /// Its lookup target does not exist yet (it may be later in the same file, or in flight):
    /// send it again once the rest of the job is done.
    Defer(String),
    /// The answer says the record exists (412 on a create by key), and an earlier attempt of
    /// this run, or an interrupted run of its chain, may have created it: only the record itself
    /// can tell whether this row was written or refused. The writer reads it back
    /// ([`read_back`]) before anything is counted.
    Verify(String),
    /// Refused because the set-up is wrong (403: a privilege missing, the user disabled): the
    /// run stops (see [`Decision::fatal`]), and the row is not written but not refused for
    /// itself either: a resume sends it once the set-up is fixed.
    Unsent(String),
}

/// A failure that stops the whole run: the set-up or the mapping, not the rows, is wrong, so no
/// row could escape it (see [`Fatal::cause`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// The HTTP status.
    pub status: u16,
    /// Dataverse's error.
    pub error: ODataError,
}

/// What a [`Fatal`] failure says is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Signing in failed (no token, or fresh tokens refused): the set-up (exit 3).
    SignIn,
    /// Not allowed (403): a privilege missing from the user's roles (named when Dataverse names
    /// it), or the user disabled (exit 3).
    NotAllowed {
        /// `prvCreateAccount`, from the message.
        privilege: Option<String>,
    },
    /// The entity set does not exist in this environment (404 `0x80060888`, "Resource not found
    /// for the segment"): the mapping does not fit it (exit 2).
    NoEntitySet {
        /// The segment Dataverse named.
        name: Option<String>,
    },
    /// A column (or lookup navigation property) the mapping writes does not exist on the table
    /// (400: `0x80048d19` "Invalid property" or "The property … does not exist", or `0x0` "An
    /// undeclared property", PROTOCOL.md §2): the mapping does not fit it (exit 2).
    NoColumn {
        /// The property Dataverse named.
        name: Option<String>,
    },
}

impl Fatal {
    /// What is wrong.
    pub fn cause(&self) -> Cause {
        if self.status == 401 {
            return Cause::SignIn;
        }
        stop_cause(self.status, &self.error).unwrap_or(Cause::SignIn)
    }

    /// How the run ends: refused for its mapping (a table or column the environment lacks, exit 2) or
    /// for its set-up (exit 3).
    pub fn ending(&self) -> crate::outcome::Ending {
        match self.cause() {
            Cause::NoEntitySet { .. } | Cause::NoColumn { .. } => {
                crate::outcome::Ending::MappingRefused
            }
            Cause::SignIn | Cause::NotAllowed { .. } => crate::outcome::Ending::SetupRefused,
        }
    }

    /// Dataverse's error and what it means, for the message that ends the run.
    pub fn explain(&self) -> String {
        let what = describe(self.status, &self.error);
        let check = "`dvload whoami --check MAPPING...` checks every mapping without writing";
        let quoted =
            |name: &Option<String>| name.as_ref().map_or(String::new(), |n| format!(" '{n}'"));
        match self.cause() {
            Cause::SignIn => format!(
                "{what} — the application user's set-up is wrong (run `dvload whoami` to check it)"
            ),
            Cause::NotAllowed { privilege: Some(p) } => format!(
                "{what} — the application user's security role lacks {p}: add it to the role ({check})"
            ),
            Cause::NotAllowed { privilege: None } => format!(
                "{what} — the application user is not allowed to do this (a privilege missing from its role, \
                 or the user disabled): run `dvload whoami` ({check})"
            ),
            Cause::NoEntitySet { name } => format!(
                "{what} — the entity set{} does not exist in this environment: fix the mapping's entity_set \
                 (or its lookup's) ({check})",
                quoted(&name)
            ),
            Cause::NoColumn { name } => format!(
                "{what} — the column{} does not exist on the table in this environment: fix the mapping's \
                 [fields] ({check})",
                quoted(&name)
            ),
        }
    }
}

/// The cause of a refusal that no row can escape, which stops the run; `None` for a refusal of
/// the row itself. 401 is not one of them: a token is refreshed first ([`token_refused`]). A
/// missing `prvAssign…` is the row's own: only a row whose owner would change needs it (rows
/// created, and rows that keep their owner, do not), so that row is rejected and the run goes on.
pub fn stop_cause(status: u16, error: &ODataError) -> Option<Cause> {
    let message = error.message.as_str();
    match status {
        403 => {
            let privilege = between(message, "is missing ", " privilege")
                .filter(|p| p.starts_with("prv") && !p.contains(' '));
            if privilege
                .as_deref()
                .is_some_and(|p| p.starts_with("prvAssign"))
            {
                return None;
            }
            Some(Cause::NotAllowed { privilege })
        }
        404 if error.code.eq_ignore_ascii_case(RESOURCE_NOT_FOUND)
            || message.starts_with("Resource not found for the segment") =>
        {
            Some(Cause::NoEntitySet {
                name: between(message, "for the segment '", "'"),
            })
        }
        400 => [
            "Invalid property '",
            "The property '",
            "An undeclared property '",
        ]
        .iter()
        .find_map(|start| {
            let name = between(message, start, "'")?;
            let declared = *start != "The property '" || message.contains("does not exist");
            declared.then_some(Cause::NoColumn { name: Some(name) })
        }),
        _ => None,
    }
}

/// The OData code of a URL naming nothing the service has ("Resource not found for the segment").
const RESOURCE_NOT_FOUND: &str = "0x80060888";

/// The text between the first `start` and the next `end` after it.
fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

/// The decision for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// One verdict per operation, in order.
    pub verdicts: Vec<Verdict>,
    /// Pause every worker this long (a 429, at the top or inside the batch).
    pub throttle: Option<Duration>,
    /// Which service protection limit the 429 named (with `throttle`); when several parts were
    /// throttled, the one that asks most of the pacing (see [`Limit::fewer_in_flight`]).
    pub limit: Option<Limit>,
    /// The token was refused (401): refresh it once and resend.
    pub refresh_token: bool,
    /// Stop the run.
    pub fatal: Option<Fatal>,
    /// `--atomic`: the read-back of this operation (a [`Verdict::Verify`]) settles the whole
    /// change set, whose earlier attempt was lost: the record created by this run means that
    /// attempt was applied (every operation in it is written); the record there before the run
    /// means it was not (the change set fails on that operation, as it would have without the
    /// fault).
    pub settle_with: Option<usize>,
    /// `--atomic`: a change set of deletes whose earlier attempt was lost, and whose first
    /// record is now absent: either that attempt was applied whole, or the record was absent
    /// before it. The other records, read back, tell which (see [`settle_deletes`]).
    pub settle_deletes: bool,
    /// `--atomic`: an operation of a rolled-back change set was settled on its own (found done),
    /// and the others are sent again without it. That resend is progress, not a failure: it does
    /// not count as an attempt and waits for no backoff.
    pub peeled: bool,
}

/// The service protection limit a 429 names by its error code (api-limits.md, PROTOCOL.md §10):
/// the Web API sends the hex form, the SDK's `ErrorDetails` the decimal one (Microsoft's
/// ServiceClient compares the decimal form), so both are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `0x80072322` / -2147015902: requests per window.
    Requests,
    /// `0x80072321` / -2147015903: combined execution time per window.
    ExecutionTime,
    /// `0x80072326` / -2147015898: concurrent requests.
    Concurrency,
    /// A 429 without one of those codes (a gateway, a change set, an unknown code).
    Unknown,
}

impl Limit {
    /// The limit `error` names.
    pub fn of(error: &ODataError) -> Limit {
        match error.code.trim().to_ascii_lowercase().as_str() {
            "0x80072322" | "-2147015902" => Limit::Requests,
            "0x80072321" | "-2147015903" => Limit::ExecutionTime,
            "0x80072326" | "-2147015898" => Limit::Concurrency,
            _ => Limit::Unknown,
        }
    }

    /// True when fewer batches in flight answer this throttle. The request-count and
    /// execution-time limits are budgets per sliding window: fewer batches at once do not
    /// enlarge the budget, they only spend it later, so after the `Retry-After` pause the
    /// writer goes on as before ("depend on the Retry-After value to tell you when to send
    /// more", api-limits.md, *How to maximize throughput*). Too many concurrent requests, or a
    /// 429 we cannot place, does call for fewer in flight.
    pub fn fewer_in_flight(self) -> bool {
        matches!(self, Limit::Concurrency | Limit::Unknown)
    }
}

/// What a status means and what to do, for an answer that said nothing more than its status.
fn explain_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "the service refused the request without saying why",
        401 => {
            "the access token was refused (expired or revoked mid-run, or issued for another environment): check that DATAVERSE_URL names the environment the application user is in; dvload whoami checks the set-up"
        }
        403 => {
            "the application user may not do this (a missing privilege): dvload whoami --check MAPPING lists what the mapping needs"
        }
        404 => "not found: the table, the record or the URL is not there",
        413 => "the request is too large for the service: lower --batch-size",
        429 => "throttled by the service protection limits: the run waits and tries again",
        500 => "the service failed (an internal error); a retry may get through",
        502..=504 => {
            "the service or a proxy before it is unavailable or timed out; a retry may get through"
        }
        _ => return None,
    })
}

/// Dataverse's error as it goes to the rejects file: `Dataverse 400 (0x80044331): message`. An
/// answer with no message of its own (an empty body) is explained by its status instead of
/// repeating it (`Dataverse 401: HTTP 401`).
pub fn describe(status: u16, error: &ODataError) -> String {
    let bare = error.message.trim().is_empty() || error.message == format!("HTTP {status}");
    if bare && error.code.is_empty() {
        if let Some(why) = explain_status(status) {
            return format!("Dataverse {status}: {why}");
        }
    }
    if error.code.is_empty() || error.code == "0x0" && error.message.is_empty() {
        format!("Dataverse {status}: {}", error.message)
    } else {
        format!("Dataverse {status} ({}): {}", error.code, error.message)
    }
}

/// Decides the fate of each operation of one attempt. `elapsed` is the time since the
/// operations' first attempt.
pub fn decide(
    attempt: &Attempt<'_>,
    ops: &[OpInfo],
    atomic: bool,
    elapsed: Duration,
    policy: &RetryPolicy,
) -> Decision {
    let mut d = Decision {
        verdicts: Vec::with_capacity(ops.len()),
        throttle: None,
        limit: None,
        refresh_token: false,
        fatal: None,
        settle_with: None,
        settle_deletes: false,
        peeled: false,
    };
    let retry = |reason: String, maybe_applied: bool| Verdict::Retry {
        reason,
        maybe_applied,
    };
    match attempt {
        Attempt::NotSent(why) => {
            d.verdicts = ops
                .iter()
                .map(|_| retry(format!("not sent: {why}"), false))
                .collect();
        }
        Attempt::Lost(why) => {
            d.verdicts = ops
                .iter()
                .map(|_| retry(format!("no answer: {why}"), true))
                .collect();
        }
        Attempt::Unreadable { status, reason } => {
            d.verdicts = ops
                .iter()
                .map(|_| retry(format!("unreadable answer (HTTP {status}): {reason}"), true))
                .collect();
        }
        Attempt::Answered {
            response,
            retry_after,
            outcomes,
        } => {
            let top = response
                .rejection
                .as_ref()
                .map(|r| r.failure(response.status));
            for (i, outcome) in outcomes.iter().enumerate() {
                let op = &ops[i];
                let verdict = match outcome {
                    PartOutcome::Succeeded { .. } => Verdict::Written,
                    PartOutcome::Failed {
                        status,
                        error,
                        retry_after: part_after,
                    } => part_verdict(
                        *status,
                        error,
                        *part_after,
                        &evidence(op, i, atomic),
                        &mut d,
                        policy,
                    ),
                    PartOutcome::ChangeSetFailed { status, error } => {
                        // Throttled, token refused, not allowed, worth another attempt: as
                        // anywhere else; any other refusal sinks the change set.
                        common_verdict(*status, error, None, true, &mut d, policy).unwrap_or_else(
                            || {
                                Verdict::Rejected(format!(
                                    "the change set failed, nothing in it was written: {}",
                                    describe(*status, error)
                                ))
                            },
                        )
                    }
                    PartOutcome::NotProcessed(NotProcessed::AfterFailure { .. }) => retry(
                        "not run: the batch stopped at an earlier failure".into(),
                        false,
                    ),
                    PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op }) => {
                        rolled_back(*failed_op, outcomes, atomic, op, ops, &mut d)
                    }
                    PartOutcome::NotProcessed(NotProcessed::Missing) => {
                        retry("the answer has no part for this operation".into(), true)
                    }
                    PartOutcome::NotProcessed(NotProcessed::BatchRejected) => {
                        let error = top.clone().unwrap_or_else(|| ODataError {
                            code: String::new(),
                            message: format!("HTTP {}", response.status),
                        });
                        batch_rejected(response.status, &error, *retry_after, &mut d, policy)
                    }
                };
                d.verdicts.push(verdict);
            }
            // The first delete found its record absent: not counted before the others tell.
            if d.settle_deletes {
                if let (Some(v), Some(PartOutcome::Failed { status, error, .. })) =
                    (d.verdicts.first_mut(), outcomes.first())
                {
                    *v = Verdict::Verify(describe(*status, error));
                }
            }
        }
    }
    bound(&mut d.verdicts, ops, d.peeled, elapsed, policy);
    d
}

/// Gives up on what has been tried enough, and never resends a blind create that may have been
/// applied: a second POST would make a second record. Applies to every verdict of an attempt,
/// those [`settle`] and [`settle_deletes`] give included; `peeled` (see
/// [`Decision::peeled`]) spares the attempts count, never the time.
pub fn bound(
    verdicts: &mut [Verdict],
    ops: &[OpInfo],
    peeled: bool,
    elapsed: Duration,
    policy: &RetryPolicy,
) {
    for (v, op) in verdicts.iter_mut().zip(ops) {
        if let Verdict::Retry {
            reason,
            maybe_applied,
        } = v
        {
            let applied = *maybe_applied || op.maybe_applied;
            if applied && op.is_blind_create() {
                *v = Verdict::Rejected(format!(
                    "outcome unknown ({reason}); not sent again because a repeated create without a key could make a \
                     second record: check whether it exists, then replay the row (or give the mapping a key)"
                ));
            } else if (op.attempts >= policy.max_attempts && !peeled)
                || elapsed >= policy.max_elapsed
            {
                *v = Verdict::Rejected(format!(
                    "gave up after {} attempt{} over {} s: {reason}",
                    op.attempts,
                    if op.attempts == 1 { "" } else { "s" },
                    elapsed.as_secs()
                ));
            }
        }
    }
}

fn throttle(d: &mut Decision, after: Option<Duration>, limit: Limit, policy: &RetryPolicy) {
    let pause = throttle_pause(policy, after);
    d.throttle = Some(d.throttle.map_or(pause, |p| p.max(pause)));
    d.limit = match d.limit {
        Some(l) if l.fewer_in_flight() || !limit.fewer_in_flight() => Some(l),
        _ => Some(limit),
    };
}

/// The verdict a status gets wherever it came from (one part, or the whole batch): throttled,
/// token refused, a refusal no row can escape ([`stop_cause`]), or worth another attempt (`applied_if_retried` says whether the
/// failed attempt may have been applied). `None` for the other refusals, which the caller decides.
fn common_verdict(
    status: u16,
    error: &ODataError,
    retry_after: Option<Duration>,
    applied_if_retried: bool,
    d: &mut Decision,
    policy: &RetryPolicy,
) -> Option<Verdict> {
    let retry = |maybe_applied| Verdict::Retry {
        reason: describe(status, error),
        maybe_applied,
    };
    Some(match status {
        429 => {
            throttle(d, retry_after, Limit::of(error), policy);
            retry(false)
        }
        401 => {
            d.refresh_token = true;
            retry(false)
        }
        // Not allowed, no such table or column: no row can escape it, the run stops.
        _ if stop_cause(status, error).is_some() => {
            d.fatal.get_or_insert(Fatal {
                status,
                error: error.clone(),
            });
            Verdict::Unsent(format!(
                "not written: the run stopped: {}",
                describe(status, error)
            ))
        }
        s if retryable(s) => retry(applied_if_retried),
        _ => return None,
    })
}

fn part_verdict(
    status: u16,
    error: &ODataError,
    retry_after: Option<Duration>,
    op: &OpInfo,
    d: &mut Decision,
    policy: &RetryPolicy,
) -> Verdict {
    if let Some(v) = common_verdict(status, error, retry_after, true, d, policy) {
        return v;
    }
    match status {
        // The record exists: created by an earlier attempt, or there before the run? Read it.
        s if found_existing(s, error, op) => Verdict::Verify(describe(status, error)),
        // The record is absent, as the delete asked: done by the lost attempt, unless an earlier
        // row of this run deleted it (see `settle`).
        s if found_absent(s, op) => Verdict::Verify(describe(status, error)),
        // A lookup whose target is not there (yet): try once more after the rest of the job.
        s if defers(s, op) => Verdict::Defer(describe(status, error)),
        _ => Verdict::Rejected(describe(status, error)),
    }
}

/// True when an earlier attempt may have done this operation's work: this run's, whose answer
/// was lost, or an interrupted run's (resume).
fn maybe_done(op: &OpInfo) -> bool {
    op.maybe_applied || op.sent_before
}

/// A create by key that finds its key taken after an attempt that may have created it. The 412
/// alone cannot tell "created by that attempt" from "there before the run", so it is never
/// counted written on its own: the record is read back (see [`read_back`]). A 412 from duplicate
/// detection (`0x80040333`, --duplicate-detection) is a refusal, not a key taken.
fn found_existing(status: u16, error: &ODataError, op: &OpInfo) -> bool {
    if !maybe_done(op) || error.code.eq_ignore_ascii_case(DUPLICATE_DETECTED) {
        return false;
    }
    // A create by key finds its key taken (412). A POST carrying our id finds the id taken:
    // "Cannot insert duplicate key" (0x80040237), whose HTTP status PROTOCOL.md §2 leaves
    // UNVERIFIED, so the code decides, whatever the status.
    (status == 412 && op.precondition == Precondition::IfNoneMatchAny)
        || (op.method == Method::Post
            && op.own_id
            && (status == 412 || error.code.eq_ignore_ascii_case(DUPLICATE_KEY)))
}

/// Dataverse's "Cannot insert duplicate key" (DuplicateRecord): a create whose primary id is
/// taken.
const DUPLICATE_KEY: &str = "0x80040237";

/// A delete that finds nothing after an attempt that may have deleted it: the record is absent,
/// which is what the row asked; counted done whoever removed it (nothing can tell which).
fn found_absent(status: u16, op: &OpInfo) -> bool {
    maybe_done(op) && status == 404 && op.method == Method::Delete
}

/// Either of the above: the culprit of a rolled-back change set that an earlier attempt may
/// have done.
fn found_done(status: u16, error: &ODataError, op: &OpInfo) -> bool {
    found_existing(status, error, op) || found_absent(status, op)
}

/// The code of a 412 from a duplicate detection rule (optional-parameters.md, "Suppress
/// duplicate detection"; SDK -2147220685).
const DUPLICATE_DETECTED: &str = "0x80040333";

/// A 404 on an operation that binds a lookup, not yet deferred: its target may come later in
/// the same job.
fn defers(status: u16, op: &OpInfo) -> bool {
    status == 404 && op.binds && !op.deferred && op.method != Method::Delete
}

/// What may be inferred from operation `i`'s own refusal: in a change set, the operations before
/// it have just succeeded, so this batch's earlier attempt was not applied (all or nothing), and
/// only an earlier run can have done its work.
fn evidence(op: &OpInfo, i: usize, atomic: bool) -> OpInfo {
    OpInfo {
        maybe_applied: op.maybe_applied && !(atomic && i > 0),
        ..*op
    }
}

fn rolled_back(
    failed_op: Option<usize>,
    outcomes: &[PartOutcome],
    atomic: bool,
    op: &OpInfo,
    ops: &[OpInfo],
    d: &mut Decision,
) -> Verdict {
    let culprit = failed_op.and_then(|i| outcomes.get(i).map(|o| (i, o)));
    match culprit {
        // The first operation finds its work done, and this batch's earlier attempt, the same
        // change set, was lost: either that attempt was applied whole (all or nothing), or it
        // failed on this very operation because its record was there before the run (a create)
        // or absent before it (a delete). A create's record, read back, tells which; for a
        // delete, the other records do (all absent: applied). Either settles the whole change
        // set. (A culprit further in means the ones before it just succeeded: the earlier
        // attempt was not applied.)
        Some((0, PartOutcome::Failed { status, error, .. }))
            if op.maybe_applied
                && ops
                    .first()
                    .is_some_and(|c| !c.sent_before && found_done(*status, error, c)) =>
        {
            if ops
                .first()
                .is_some_and(|c| found_existing(*status, error, c))
            {
                d.settle_with = Some(0);
                Verdict::Retry {
                    reason: "rolled back with its change set, whose earlier attempt was lost: \
                             settled by operation 1's record"
                        .into(),
                    maybe_applied: true,
                }
            } else {
                d.settle_deletes = true;
                Verdict::Retry {
                    reason: "rolled back with its change set, whose earlier attempt was lost: \
                             settled by the other records"
                        .into(),
                    maybe_applied: true,
                }
            }
        }
        // The culprit may have been done by an interrupted run (resume), in a batch of another
        // make-up: it is settled on its own (read back, or found absent), and the rest are sent
        // again without it.
        Some((i, PartOutcome::Failed { status, error, .. }))
            if ops
                .get(i)
                .is_some_and(|c| found_done(*status, error, &evidence(c, i, atomic))) =>
        {
            d.peeled = true;
            Verdict::Retry {
                reason: format!(
                    "rolled back with its change set: operation {} may have been written before",
                    i + 1
                ),
                maybe_applied: false,
            }
        }
        // The culprit waits for its lookup target: the change set waits with it, all or nothing.
        Some((i, PartOutcome::Failed { status, error, .. }))
            if atomic && ops.get(i).is_some_and(|c| defers(*status, c)) =>
        {
            Verdict::Defer(format!(
                "rolled back with its batch (--atomic): operation {} failed: {}",
                i + 1,
                describe(*status, error)
            ))
        }
        // The set-up is wrong (the run stops): not written, and not refused for itself.
        Some((i, PartOutcome::Failed { status, error, .. }))
            if stop_cause(*status, error).is_some() =>
        {
            Verdict::Unsent(format!(
                "not written: the run stopped: rolled back with its batch: operation {} failed: {}",
                i + 1,
                describe(*status, error)
            ))
        }
        Some((i, PartOutcome::Failed { status, error, .. })) if !retryable(*status) && atomic => {
            Verdict::Rejected(format!(
                "rolled back with its batch (--atomic): operation {} failed: {}",
                i + 1,
                describe(*status, error)
            ))
        }
        _ => Verdict::Retry {
            reason: "rolled back with its change set".into(),
            maybe_applied: false,
        },
    }
}

/// What tells a record this run created from one that was there before it: its `createdon`
/// (Dataverse's clock, whole seconds) at or after the start of the run's resume chain, and its
/// `createdby` the run's application user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// When the first run of the chain started (this run's start without a resume).
    pub since: jiff::Timestamp,
    /// The application user's `systemuserid` (`WhoAmI`), when known.
    pub user_id: Option<String>,
}

/// The columns a read-back asks for.
pub const READ_BACK_SELECT: &str = "$select=createdon,_createdby_value";

/// What a record read back after an ambiguous 412 says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Created by this run (or an interrupted run of its chain): the row was written.
    Ours,
    /// There before the run: the create is refused, as it would have been without the fault.
    Theirs(String),
    /// The read gave no verdict (no answer, throttled, a server error, the record gone since):
    /// the create is sent again, and its answer decides.
    Unknown(String),
}

/// Decides from the read-back of a record (`GET set(key)?$select=createdon,_createdby_value`)
/// whether this run created it. Pure.
pub fn read_back(status: u16, body: &[u8], provenance: &Provenance) -> Found {
    if status != 200 {
        return Found::Unknown(format!("reading the record back answered HTTP {status}"));
    }
    let Ok(record) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Found::Unknown("the record read back was not JSON".into());
    };
    let created_on = record.get("createdon").and_then(|v| v.as_str());
    let Some(created) = created_on.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return Found::Unknown("the record read back has no createdon".into());
    };
    // createdon has whole seconds: compare with the second the chain started in.
    let since =
        jiff::Timestamp::from_second(provenance.since.as_second()).unwrap_or(provenance.since);
    let by = record.get("_createdby_value").and_then(|v| v.as_str());
    let by_us = match (by, &provenance.user_id) {
        (Some(by), Some(us)) => by.eq_ignore_ascii_case(us),
        _ => true,
    };
    if created >= since && by_us {
        Found::Ours
    } else {
        let who = match by {
            Some(by) if !by_us => format!(" by user {by}"),
            _ => String::new(),
        };
        let when = created_on.unwrap_or_default();
        Found::Theirs(if created < since {
            format!("the record already exists: it was created {when}{who}, before this run")
        } else {
            format!(
                "the record already exists: it was created {when}{who}, not by this run's application user"
            )
        })
    }
}

/// What reading back the id this run gave a create (`set(id)`) says: there (200), the create was
/// applied (an id of ours names no one else's record); absent (404), its key is held by a record
/// this run did not create. Pure.
pub fn read_back_own(status: u16, id: uuid::Uuid) -> Found {
    match status {
        200 => Found::Ours,
        404 => Found::Theirs(format!(
            "the record already exists: its key is held by a record this run did not create \
             (the record this run would have created, {id}, is not there)"
        )),
        s => Found::Unknown(format!("reading the record back answered HTTP {s}")),
    }
}

/// A verdict after the read-backs, and whether the row's record was created by this run (a
/// create settled by its record, for undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The verdict; never [`Verdict::Verify`].
    pub verdict: Verdict,
    /// True when a read-back showed this run created the record.
    pub created: bool,
}

/// Turns an attempt's verdicts and the read-backs of its [`Verdict::Verify`] operations (`found`,
/// by index) into final verdicts. With `settle_with` (see [`Decision::settle_with`]) the one
/// read-back settles the whole change set. Pure.
pub fn settle(
    verdicts: Vec<Verdict>,
    found: &[(usize, Found)],
    settle_with: Option<usize>,
    ops: &[OpInfo],
    done_before: &[bool],
) -> Vec<Settled> {
    let found_at = |i: usize| found.iter().find(|(j, _)| *j == i).map(|(_, f)| f);
    let culprit = settle_with.and_then(|c| found_at(c).map(|f| (c, f)));
    let culprit_reason = settle_with.and_then(|c| match verdicts.get(c) {
        Some(Verdict::Verify(reason)) => Some(reason.clone()),
        _ => None,
    });
    verdicts
        .into_iter()
        .enumerate()
        .map(|(i, verdict)| {
            let plain = |verdict| Settled {
                verdict,
                created: false,
            };
            let delete = ops.get(i).is_some_and(|o| o.method == Method::Delete);
            match (verdict, culprit) {
                // A delete that found its record absent after a lost attempt: done, unless an
                // earlier row of this run deleted it (then it was absent before the attempt, and
                // the 404 is the answer a run without the fault gets).
                (Verdict::Verify(reason), _) if delete => {
                    if done_before.get(i).copied().unwrap_or(false) {
                        plain(Verdict::Rejected(reason))
                    } else {
                        plain(Verdict::Written)
                    }
                }
                (Verdict::Verify(reason), _) => match found_at(i) {
                    Some(Found::Ours) => Settled {
                        verdict: Verdict::Written,
                        created: true,
                    },
                    Some(Found::Theirs(why)) => {
                        plain(Verdict::Rejected(format!("{reason}: {why}")))
                    }
                    Some(Found::Unknown(why)) => plain(Verdict::Retry {
                        reason: format!("{reason}; {why}"),
                        maybe_applied: true,
                    }),
                    None => plain(Verdict::Retry {
                        reason: format!("{reason}; not read back"),
                        maybe_applied: true,
                    }),
                },
                // The change set's lost attempt was applied whole: this operation was created
                // with the culprit.
                (Verdict::Retry { .. }, Some((_, Found::Ours))) => Settled {
                    verdict: Verdict::Written,
                    created: true,
                },
                // It was not: the change set fails on its culprit, as without the fault.
                (Verdict::Retry { .. }, Some((c, Found::Theirs(why)))) => {
                    plain(Verdict::Rejected(format!(
                        "rolled back with its batch (--atomic): operation {} failed: {}: {why}",
                        c + 1,
                        culprit_reason.as_deref().unwrap_or("Dataverse 412")
                    )))
                }
                (verdict, _) => plain(verdict),
            }
        })
        .collect()
}

/// What the read-back of a record a delete may have removed says: absent ([`Found::Ours`]:
/// consistent with this run's delete), still there ([`Found::Theirs`]), or nothing known.
pub fn read_back_absent(status: u16) -> Found {
    match status {
        404 => Found::Ours,
        200 => Found::Theirs("the record is still there".into()),
        s => Found::Unknown(format!("reading the record back answered HTTP {s}")),
    }
}

/// Settles a change set of deletes (see [`Decision::settle_deletes`]) from the read-backs of
/// its operations after the first (`found`, by index) and what this run deleted before
/// (`done_before`, by index): every record absent means the lost attempt was applied, and every
/// operation is written; one still there, or one an earlier row deleted, means it was not, and
/// the change set fails on its first operation, as it would have without the fault; a read that
/// told nothing sends the change set again. (Every record absent and none deleted by this run:
/// applied, or all absent before the run — nothing tells, and the rows' records are gone as
/// they asked.) Pure.
pub fn settle_deletes(
    verdicts: Vec<Verdict>,
    found: &[(usize, Found)],
    done_before: &[bool],
) -> Vec<Settled> {
    let n = verdicts.len();
    let first_reason = match verdicts.first() {
        Some(Verdict::Verify(reason)) => reason.clone(),
        _ => "Dataverse 404".into(),
    };
    let of = |i: usize| found.iter().find(|(j, _)| *j == i).map(|(_, f)| f);
    let unknown = (1..n).find_map(|i| match of(i) {
        Some(Found::Unknown(why)) => Some(why.clone()),
        None => Some("not read back".into()),
        _ => None,
    });
    // A record an earlier row of this run deleted was absent before the lost attempt, which
    // then failed on it: not applied, whatever the reads say (they are not made).
    let absent_before = done_before.iter().take(n).any(|&d| d);
    let unknown = if absent_before { None } else { unknown };
    let there = absent_before || (1..n).any(|i| matches!(of(i), Some(Found::Theirs(_))));
    let plain = |verdict| Settled {
        verdict,
        created: false,
    };
    (0..n)
        .map(|i| match (&unknown, there) {
            (Some(why), _) => plain(Verdict::Retry {
                reason: format!("{first_reason}; {why}"),
                maybe_applied: true,
            }),
            (None, true) if i == 0 => plain(Verdict::Rejected(first_reason.clone())),
            (None, true) => plain(Verdict::Rejected(format!(
                "rolled back with its batch (--atomic): operation 1 failed: {first_reason}"
            ))),
            (None, false) => plain(Verdict::Written),
        })
        .collect()
}

fn batch_rejected(
    status: u16,
    error: &ODataError,
    retry_after: Option<Duration>,
    d: &mut Decision,
    policy: &RetryPolicy,
) -> Verdict {
    // A 503 refusal of the whole batch comes from the gateway: nothing in it ran.
    common_verdict(status, error, retry_after, status != 503, d, policy).unwrap_or_else(|| {
        Verdict::Rejected(format!(
            "the whole batch was refused: {}",
            describe(status, error)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_nothing_but_its_status_is_explained() {
        let bare = |message: &str| ODataError {
            code: String::new(),
            message: message.into(),
        };
        let e = describe(401, &bare("HTTP 401"));
        assert!(
            e.starts_with("Dataverse 401: the access token was refused"),
            "{e}"
        );
        assert!(describe(403, &bare("")).contains("dvload whoami --check MAPPING"));
        assert!(describe(413, &bare("HTTP 413")).contains("lower --batch-size"));
        // A message of its own is kept as it is.
        assert_eq!(
            describe(401, &bare("Bearer token expired")),
            "Dataverse 401: Bearer token expired"
        );
    }
    use crate::odata::PartOutcome;
    use crate::odata::batch::BatchRejection;

    fn op(method: Method, precondition: Precondition) -> OpInfo {
        OpInfo {
            method,
            precondition,
            binds: false,
            maybe_applied: false,
            sent_before: false,
            deferred: false,
            attempts: 1,
            own_id: false,
        }
    }

    fn upsert() -> OpInfo {
        op(Method::Patch, Precondition::None)
    }

    fn err(code: &str, message: &str) -> ODataError {
        ODataError {
            code: code.into(),
            message: message.into(),
        }
    }

    fn failed(status: u16, after: Option<u64>) -> PartOutcome {
        PartOutcome::Failed {
            status,
            error: err("0x1", "m"),
            retry_after: after.map(Duration::from_secs),
        }
    }

    fn ok() -> PartOutcome {
        PartOutcome::Succeeded {
            status: 204,
            entity_id: None,
        }
    }

    /// `decide` for a change set (`--atomic`) answered 200 with these outcomes.
    fn in_change_set(ops: &[OpInfo], outcomes: &[PartOutcome]) -> Decision {
        let response = BatchResponse {
            status: 200,
            parts: Vec::new(),
            rejection: None,
        };
        let attempt = Attempt::Answered {
            response: &response,
            retry_after: None,
            outcomes,
        };
        decide(&attempt, ops, true, Duration::ZERO, &RetryPolicy::default())
    }

    fn answered(
        ops: &[OpInfo],
        outcomes: &[PartOutcome],
        status: u16,
        rejection: Option<BatchRejection>,
        after: Option<u64>,
    ) -> Decision {
        let response = BatchResponse {
            status,
            parts: Vec::new(),
            rejection,
        };
        let attempt = Attempt::Answered {
            response: &response,
            retry_after: after.map(Duration::from_secs),
            outcomes,
        };
        decide(
            &attempt,
            ops,
            false,
            Duration::ZERO,
            &RetryPolicy::default(),
        )
    }

    fn retry(maybe_applied: bool) -> impl Fn(&Verdict) -> bool {
        move |v| matches!(v, Verdict::Retry { maybe_applied: m, .. } if *m == maybe_applied)
    }

    #[test]
    fn per_part_outcomes_table() {
        let ops = [upsert(); 6];
        let d = answered(
            &ops,
            &[
                ok(),
                failed(400, None),
                failed(429, Some(7)),
                failed(503, None),
                failed(404, None),
                failed(412, None),
            ],
            200,
            None,
            None,
        );
        assert_eq!(d.verdicts[0], Verdict::Written);
        assert_eq!(
            d.verdicts[1],
            Verdict::Rejected("Dataverse 400 (0x1): m".into())
        );
        assert!(
            retry(false)(&d.verdicts[2]),
            "a throttled part was not applied"
        );
        assert!(
            retry(true)(&d.verdicts[3]),
            "a 5xx part may have been applied"
        );
        assert_eq!(
            d.verdicts[4],
            Verdict::Rejected("Dataverse 404 (0x1): m".into())
        );
        assert_eq!(
            d.verdicts[5],
            Verdict::Rejected("Dataverse 412 (0x1): m".into())
        );
        assert_eq!(
            d.throttle,
            Some(Duration::from_secs(7)),
            "a 429 inside the batch pauses everyone"
        );
        assert!(!d.refresh_token && d.fatal.is_none());
    }

    #[test]
    fn a_429_names_its_limit_in_hex_or_decimal() {
        for (code, limit) in [
            ("0x80072322", Limit::Requests),
            ("-2147015902", Limit::Requests),
            ("0x80072321", Limit::ExecutionTime),
            ("0X80072321", Limit::ExecutionTime),
            ("-2147015903", Limit::ExecutionTime),
            ("0x80072326", Limit::Concurrency),
            ("-2147015898", Limit::Concurrency),
            ("", Limit::Unknown),
            ("0x80040216", Limit::Unknown),
        ] {
            assert_eq!(Limit::of(&err(code, "m")), limit, "{code}");
        }
        assert!(!Limit::Requests.fewer_in_flight() && !Limit::ExecutionTime.fewer_in_flight());
        assert!(Limit::Concurrency.fewer_in_flight() && Limit::Unknown.fewer_in_flight());
    }

    #[test]
    fn throttled_parts_pause_for_the_longest_and_name_the_most_demanding_limit() {
        let ops = [upsert(); 3];
        let part = |code: &str, after: u64| PartOutcome::Failed {
            status: 429,
            error: err(code, "m"),
            retry_after: Some(Duration::from_secs(after)),
        };
        let d = answered(
            &ops,
            &[part("0x80072321", 2), ok(), part("0x80072321", 3)],
            200,
            None,
            None,
        );
        assert_eq!(d.throttle, Some(Duration::from_secs(3)));
        assert_eq!(d.limit, Some(Limit::ExecutionTime));
        let d = answered(
            &ops,
            &[part("0x80072321", 2), part("0x80072326", 1), ok()],
            200,
            None,
            None,
        );
        assert_eq!(d.throttle, Some(Duration::from_secs(2)));
        assert_eq!(
            d.limit,
            Some(Limit::Concurrency),
            "the concurrency limit wins"
        );
        let d = answered(
            &ops,
            &[part("0x80072326", 1), part("0x80072322", 2), ok()],
            200,
            None,
            None,
        );
        assert_eq!(d.limit, Some(Limit::Concurrency), "and stays");
        let d = answered(&ops, &[ok(), ok(), ok()], 200, None, None);
        assert_eq!((d.throttle, d.limit), (None, None));
    }

    #[test]
    fn top_level_refusals() {
        let ops = [upsert(); 2];
        let all = [
            PartOutcome::NotProcessed(NotProcessed::BatchRejected),
            PartOutcome::NotProcessed(NotProcessed::BatchRejected),
        ];
        let reject = |code: &str| {
            Some(BatchRejection {
                error: Some(err(code, "x")),
                body: String::new(),
            })
        };
        let d = answered(&ops, &all, 429, reject("0x80072322"), Some(3));
        assert!(d.verdicts.iter().all(retry(false)));
        assert_eq!(d.throttle, Some(Duration::from_secs(3)));
        assert_eq!(d.limit, Some(Limit::Requests));
        let d = answered(&ops, &all, 429, reject("0x80072322"), None);
        assert_eq!(
            d.throttle,
            Some(Duration::from_secs(5)),
            "no Retry-After: the default pause"
        );
        let d = answered(&ops, &all, 401, None, None);
        assert!(d.refresh_token && d.verdicts.iter().all(retry(false)));
        let d = answered(&ops, &all, 403, reject("0x80040220"), None);
        assert_eq!(d.fatal.as_ref().map(|f| f.status), Some(403));
        assert!(
            matches!(&d.verdicts[0], Verdict::Unsent(r) if r.starts_with("not written: the run stopped: Dataverse 403"))
        );
        let d = answered(&ops, &all, 503, None, None);
        assert!(
            d.verdicts.iter().all(retry(false)),
            "a 503 gateway refusal was not applied"
        );
        let d = answered(&ops, &all, 500, None, None);
        assert!(d.verdicts.iter().all(retry(true)));
        let d = answered(&ops, &all, 400, reject(""), None);
        assert!(
            matches!(&d.verdicts[0], Verdict::Rejected(r) if r.starts_with("the whole batch was refused: Dataverse 400"))
        );
    }

    #[test]
    fn lost_answers_and_idempotency() {
        let create_by_key = OpInfo {
            maybe_applied: true,
            ..op(Method::Patch, Precondition::IfNoneMatchAny)
        };
        let delete = OpInfo {
            maybe_applied: true,
            ..op(Method::Delete, Precondition::None)
        };
        let d = answered(
            &[create_by_key, delete],
            &[failed(412, None), failed(404, None)],
            200,
            None,
            None,
        );
        assert!(
            matches!(d.verdicts[0], Verdict::Verify(_)),
            "a 412 after a lost attempt: created by it, or there before the run? read it back"
        );
        assert!(
            matches!(d.verdicts[1], Verdict::Verify(_)),
            "a 404 after a lost attempt: absent, as the delete asked, unless this run deleted it before"
        );
        let ops = [create_by_key, delete];
        let found = [(0, Found::Ours)];
        let once = settle(d.verdicts.clone(), &found, None, &ops, &[false, false]);
        assert_eq!(once[1].verdict, Verdict::Written);
        let twice = settle(d.verdicts, &found, None, &ops, &[false, true]);
        assert!(
            matches!(twice[1].verdict, Verdict::Rejected(_)),
            "an earlier row of the run deleted it: the 404 is the answer without the fault"
        );
        // Without an earlier lost attempt the same answers are real refusals.
        let fresh = [
            op(Method::Patch, Precondition::IfNoneMatchAny),
            op(Method::Delete, Precondition::None),
        ];
        let d = answered(
            &fresh,
            &[failed(412, None), failed(404, None)],
            200,
            None,
            None,
        );
        assert!(d.verdicts.iter().all(|v| matches!(v, Verdict::Rejected(_))));

        let policy = RetryPolicy::default();
        let ops = [upsert(), op(Method::Post, Precondition::None)];
        let d = decide(
            &Attempt::Lost("timed out"),
            &ops,
            false,
            Duration::ZERO,
            &policy,
        );
        assert!(retry(true)(&d.verdicts[0]), "an upsert is safe to resend");
        assert!(
            matches!(&d.verdicts[1], Verdict::Rejected(r) if r.starts_with("outcome unknown (no answer: timed out); not sent again")),
            "{:?}",
            d.verdicts[1]
        );
        let d = decide(
            &Attempt::NotSent("connection refused"),
            &ops,
            false,
            Duration::ZERO,
            &policy,
        );
        assert!(
            d.verdicts.iter().all(retry(false)),
            "nothing reached the server: even a POST is safe"
        );
    }

    #[test]
    fn missing_lookup_targets_are_deferred_once() {
        let binds = OpInfo {
            binds: true,
            ..upsert()
        };
        let d = answered(&[binds], &[failed(404, None)], 200, None, None);
        assert_eq!(
            d.verdicts,
            [Verdict::Defer("Dataverse 404 (0x1): m".into())]
        );
        let again = OpInfo {
            deferred: true,
            ..binds
        };
        let d = answered(&[again], &[failed(404, None)], 200, None, None);
        assert_eq!(
            d.verdicts,
            [Verdict::Rejected("Dataverse 404 (0x1): m".into())]
        );
    }

    #[test]
    fn attempts_and_time_are_bounded() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let tired = OpInfo {
            attempts: 3,
            ..upsert()
        };
        let d = decide(
            &Attempt::NotSent("refused"),
            &[tired, upsert()],
            false,
            Duration::from_secs(9),
            &policy,
        );
        assert_eq!(
            d.verdicts[0],
            Verdict::Rejected("gave up after 3 attempts over 9 s: not sent: refused".into())
        );
        assert!(retry(false)(&d.verdicts[1]));
        let d = decide(
            &Attempt::NotSent("refused"),
            &[upsert()],
            false,
            policy.max_elapsed,
            &policy,
        );
        assert!(
            matches!(&d.verdicts[0], Verdict::Rejected(r) if r.starts_with("gave up after 1 attempt over"))
        );
    }

    #[test]
    fn change_sets_are_all_or_nothing() {
        let ops = [upsert(); 3];
        let outcomes = [
            PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(1) }),
            failed(400, None),
            PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(1) }),
        ];
        let d = in_change_set(&ops, &outcomes);
        assert_eq!(
            d.verdicts[0],
            Verdict::Rejected(
                "rolled back with its batch (--atomic): operation 2 failed: Dataverse 400 (0x1): m"
                    .into()
            )
        );
        assert_eq!(
            d.verdicts[1],
            Verdict::Rejected("Dataverse 400 (0x1): m".into())
        );
        let unknown = [PartOutcome::ChangeSetFailed {
            status: 400,
            error: err("", "bad"),
        }; 1];
        let d = in_change_set(&ops[..1], &unknown);
        assert_eq!(
            d.verdicts[0],
            Verdict::Rejected(
                "the change set failed, nothing in it was written: Dataverse 400: bad".into()
            )
        );
    }

    #[test]
    fn a_lost_change_set_is_settled_by_its_first_records_read_back() {
        // Issue 10 item 2: with --atomic, a change set whose first attempt was lost and whose
        // first create then met 412 was counted written whole, although the 412 could come from
        // a record that existed before the run (then nothing of the change set was written).
        let lost = OpInfo {
            maybe_applied: true,
            ..op(Method::Patch, Precondition::IfNoneMatchAny)
        };
        let rolled = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(0) });
        let outcomes = [failed(412, None), rolled.clone(), rolled];
        let d = in_change_set(&[lost; 3], &outcomes);
        assert!(
            matches!(d.verdicts[0], Verdict::Verify(_)),
            "{:?}",
            d.verdicts
        );
        assert!(d.verdicts[1..].iter().all(retry(true)), "{:?}", d.verdicts);
        assert_eq!(d.settle_with, Some(0));
        assert!(
            d.verdicts.iter().all(|v| *v != Verdict::Written),
            "nothing is counted before the record is read back"
        );
        // The record was created by this run: the lost attempt was applied whole.
        let ours = settle(
            d.verdicts.clone(),
            &[(0, Found::Ours)],
            d.settle_with,
            &[lost; 3],
            &[],
        );
        assert!(
            ours.iter()
                .all(|s| s.verdict == Verdict::Written && s.created),
            "{ours:?}"
        );
        // It was there before: nothing was applied, and the change set fails on it.
        let theirs = settle(
            d.verdicts.clone(),
            &[(
                0,
                Found::Theirs("created 2020-01-01T00:00:00Z, before this run".into()),
            )],
            d.settle_with,
            &[lost; 3],
            &[],
        );
        assert_eq!(
            theirs[0].verdict,
            Verdict::Rejected(
                "Dataverse 412 (0x1): m: created 2020-01-01T00:00:00Z, before this run".into()
            )
        );
        for s in &theirs[1..] {
            assert!(
                matches!(&s.verdict, Verdict::Rejected(r) if r.starts_with("rolled back with its batch (--atomic): operation 1 failed: Dataverse 412")),
                "{theirs:?}"
            );
            assert!(!s.created);
        }
        // The read failed: everything is sent again (still maybe applied).
        let unknown = settle(
            d.verdicts,
            &[(0, Found::Unknown("HTTP 503".into()))],
            d.settle_with,
            &[lost; 3],
            &[],
        );
        assert!(
            unknown.iter().all(|s| retry(true)(&s.verdict)),
            "{unknown:?}"
        );
        // Never sent before: the 412 is a real conflict, and the change set is rejected whole.
        let fresh = op(Method::Patch, Precondition::IfNoneMatchAny);
        let d = in_change_set(&[fresh; 3], &outcomes);
        assert_eq!(
            d.verdicts[0],
            Verdict::Rejected("Dataverse 412 (0x1): m".into())
        );
        assert!(
            d.verdicts[1..]
                .iter()
                .all(|v| matches!(v, Verdict::Rejected(r) if r.starts_with("rolled back with its batch (--atomic): operation 1 failed: Dataverse 412"))),
            "{:?}",
            d.verdicts
        );
    }

    #[test]
    fn a_lost_change_set_of_deletes_is_settled_by_its_other_records() {
        // Issue 10 item 2: with --atomic, deletes whose change set's first attempt was lost and
        // whose first record was absent on the retry were counted deleted whole, though the
        // record may never have existed and nothing else was deleted.
        let lost = OpInfo {
            maybe_applied: true,
            ..op(Method::Delete, Precondition::None)
        };
        let rolled = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(0) });
        let d = in_change_set(&[lost; 3], &[failed(404, None), rolled.clone(), rolled]);
        assert!(
            matches!(d.verdicts[0], Verdict::Verify(_)),
            "{:?}",
            d.verdicts
        );
        assert!(d.verdicts[1..].iter().all(retry(true)), "{:?}", d.verdicts);
        assert!(d.settle_deletes);
        // Every other record is gone: the lost attempt was applied.
        let gone = settle_deletes(
            d.verdicts.clone(),
            &[(1, Found::Ours), (2, Found::Ours)],
            &[],
        );
        assert!(
            gone.iter().all(|s| s.verdict == Verdict::Written),
            "{gone:?}"
        );
        // The same reads, but an earlier row of the run deleted the second record: it was
        // absent before the lost attempt, which failed on the first one.
        let earlier = settle_deletes(
            d.verdicts.clone(),
            &[(1, Found::Ours), (2, Found::Ours)],
            &[false, true, false],
        );
        assert!(
            earlier
                .iter()
                .all(|s| matches!(s.verdict, Verdict::Rejected(_))),
            "{earlier:?}"
        );
        assert!(
            gone.iter().all(|s| s.verdict == Verdict::Written),
            "{gone:?}"
        );
        // One is still there: it was not, and the change set fails on its first delete.
        let there = settle_deletes(
            d.verdicts.clone(),
            &[(1, Found::Ours), (2, Found::Theirs("still there".into()))],
            &[],
        );
        assert_eq!(
            there[0].verdict,
            Verdict::Rejected("Dataverse 404 (0x1): m".into())
        );
        assert!(
            there[1..].iter().all(|s| matches!(&s.verdict, Verdict::Rejected(r) if r.starts_with("rolled back with its batch (--atomic): operation 1 failed: Dataverse 404"))),
            "{there:?}"
        );
        // A read that told nothing: the change set goes again.
        let unknown = settle_deletes(
            d.verdicts,
            &[(1, Found::Ours), (2, Found::Unknown("503".into()))],
            &[],
        );
        assert!(
            unknown.iter().all(|s| retry(true)(&s.verdict)),
            "{unknown:?}"
        );
        assert_eq!(read_back_absent(404), Found::Ours);
        assert!(matches!(read_back_absent(200), Found::Theirs(_)));
        assert!(matches!(read_back_absent(503), Found::Unknown(_)));
    }

    #[test]
    fn a_record_read_back_tells_who_created_it() {
        let since: jiff::Timestamp = "2026-12-04T10:00:00.700Z".parse().unwrap();
        let us = "00000000-0000-0000-0000-0000000000aa";
        let p = Provenance {
            since,
            user_id: Some(us.into()),
        };
        let body = |on: &str, by: &str| {
            serde_json::json!({ "createdon": on, "_createdby_value": by }).to_string()
        };
        let cases: &[(u16, String, &str)] = &[
            (200, body("2026-12-04T10:00:00Z", us), "ours"),
            (
                200,
                body("2026-12-04T10:05:00Z", &us.to_uppercase()),
                "ours",
            ),
            (200, body("2026-12-04T09:59:59Z", us), "theirs"),
            (
                200,
                body(
                    "2026-12-04T10:05:00Z",
                    "00000000-0000-0000-0000-0000000000bb",
                ),
                "theirs",
            ),
            (404, String::new(), "unknown"),
            (503, String::new(), "unknown"),
            (200, "{}".into(), "unknown"),
            (200, "not json".into(), "unknown"),
        ];
        for (status, body, want) in cases {
            let got = match read_back(*status, body.as_bytes(), &p) {
                Found::Ours => "ours",
                Found::Theirs(_) => "theirs",
                Found::Unknown(_) => "unknown",
            };
            assert_eq!(got, *want, "{status} {body}");
        }
        match read_back(200, body("2026-12-04T09:00:00Z", us).as_bytes(), &p) {
            Found::Theirs(why) => assert!(why.contains("before this run"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_change_set_says_nothing_of_the_rest_when_its_culprit_is_further_in() {
        // The bug this guards against: a 412 at operation 3 of a resent change set marked the
        // whole change set written, though operations 1-2 had just succeeded (so the earlier
        // attempt had not been applied) and everything was rolled back.
        let lost = OpInfo {
            maybe_applied: true,
            ..op(Method::Patch, Precondition::IfNoneMatchAny)
        };
        let rolled = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(2) });
        let outcomes = [rolled.clone(), rolled.clone(), failed(412, None), rolled];
        let d = in_change_set(&[lost; 4], &outcomes);
        assert_eq!(
            d.verdicts[2],
            Verdict::Rejected("Dataverse 412 (0x1): m".into()),
            "a real conflict"
        );
        for i in [0, 1, 3] {
            assert!(
                matches!(&d.verdicts[i], Verdict::Rejected(r) if r.starts_with("rolled back with its batch (--atomic): operation 3 failed")),
                "{:?}",
                d.verdicts
            );
        }
        // Done by an interrupted run (resume), in a batch of another make-up: that operation
        // counts as written; the others were not applied by this attempt and go again.
        let resumed = OpInfo {
            sent_before: true,
            ..op(Method::Patch, Precondition::IfNoneMatchAny)
        };
        let d = in_change_set(&[resumed; 4], &outcomes);
        assert!(
            matches!(d.verdicts[2], Verdict::Verify(_)),
            "{:?}",
            d.verdicts
        );
        assert!(d.peeled && d.settle_with.is_none());
        for i in [0, 1, 3] {
            assert!(
                matches!(d.verdicts[i], Verdict::Retry { .. }),
                "{:?}",
                d.verdicts
            );
        }
    }

    #[test]
    fn a_post_carrying_our_id_that_finds_it_taken_after_a_lost_answer_reads_it_back() {
        let ours = OpInfo {
            maybe_applied: true,
            own_id: true,
            ..op(Method::Post, Precondition::None)
        };
        let taken = |status| PartOutcome::Failed {
            status,
            error: err("0x80040237", "Cannot insert duplicate key."),
            retry_after: None,
        };
        let d = answered(&[ours, ours], &[taken(412), taken(400)], 200, None, None);
        assert!(matches!(d.verdicts[0], Verdict::Verify(_)));
        assert!(
            matches!(d.verdicts[1], Verdict::Verify(_)),
            "the code decides"
        );
        // Never sent before, or an id not ours (Dataverse's own): a refusal.
        let fresh = OpInfo {
            own_id: true,
            ..op(Method::Post, Precondition::None)
        };
        let d = answered(&[fresh], &[taken(412)], 200, None, None);
        assert!(matches!(d.verdicts[0], Verdict::Rejected(_)));
        assert!(
            !OpInfo {
                own_id: true,
                ..op(Method::Post, Precondition::None)
            }
            .is_blind_create()
        );
        assert!(op(Method::Post, Precondition::None).is_blind_create());
    }

    #[test]
    fn a_duplicate_detection_412_is_a_refusal_even_after_a_lost_answer() {
        let lost = OpInfo {
            maybe_applied: true,
            sent_before: true,
            ..op(Method::Patch, Precondition::IfNoneMatchAny)
        };
        let duplicate = PartOutcome::Failed {
            status: 412,
            error: err(
                "0x80040333",
                "A record was not created or updated because a duplicate of the current record already exists.",
            ),
            retry_after: None,
        };
        let d = answered(
            &[lost, lost],
            &[duplicate, failed(412, None)],
            200,
            None,
            None,
        );
        assert!(matches!(&d.verdicts[0], Verdict::Rejected(r) if r.contains("duplicate")));
        assert!(
            matches!(d.verdicts[1], Verdict::Verify(_)),
            "its key was taken: by us, or before the run? the record tells"
        );
    }

    #[test]
    fn a_resumed_keyless_create_that_is_throttled_is_sent_again() {
        // The bug this guards against: in a resumed run every row counted as "maybe applied",
        // so a keyless create throttled (429, never applied) was rejected instead of resent.
        let resumed = OpInfo {
            sent_before: true,
            ..op(Method::Post, Precondition::None)
        };
        let d = answered(&[resumed], &[failed(429, Some(2))], 200, None, None);
        assert!(
            matches!(d.verdicts[0], Verdict::Retry { .. }),
            "{:?}",
            d.verdicts
        );
        // Its answer lost in this run: never sent again (a second POST makes a second record).
        let d = decide(
            &Attempt::Lost("reset"),
            &[resumed],
            false,
            Duration::ZERO,
            &RetryPolicy::default(),
        );
        assert!(matches!(&d.verdicts[0], Verdict::Rejected(r) if r.starts_with("outcome unknown")));
    }

    #[test]
    fn an_atomic_change_set_waits_with_its_deferred_lookup() {
        // The bug this guards against: with --atomic, a child row before its parent in the file
        // was deferred and written at the end, while the rest of its change set was rejected.
        let binds = OpInfo {
            binds: true,
            ..upsert()
        };
        let rolled = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(1) });
        let outcomes = [rolled.clone(), failed(404, None), rolled];
        let d = in_change_set(&[upsert(), binds, upsert()], &outcomes);
        assert!(
            d.verdicts.iter().all(|v| matches!(v, Verdict::Defer(_))),
            "{:?}",
            d.verdicts
        );
        // Sent again at the end and still missing: the whole change set is rejected.
        let again = |o: OpInfo| OpInfo {
            deferred: true,
            ..o
        };
        let d = in_change_set(&[again(upsert()), again(binds), again(upsert())], &outcomes);
        assert!(
            d.verdicts.iter().all(|v| matches!(v, Verdict::Rejected(_))),
            "{:?}",
            d.verdicts
        );
    }

    #[test]
    fn a_refusal_no_row_can_escape_stops_the_run_and_leaves_the_rows_unsent() {
        // The bug this guards against: an entity set missing from the environment gave a reject
        // per row (and a useless second pass for "lookup target not there yet"), and an unknown
        // column 300 identical 400s, with exit 1.
        let unknown_property = "Error identified in Payload provided by the user for Entity :'accounts', For more \
            information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  \
            ---->  InnerException : Microsoft.Crm.CrmException: Invalid property 'telephon1' was found in entity \
            'Microsoft.Dynamics.CRM.account'. ---> Microsoft.OData.ODataException: Does not support untyped value \
            in non-open type.";
        let table = [
            // (status, code, message, cause, exit)
            (
                404,
                "0x80060888",
                "Resource not found for the segment 'opportunities'.",
                Some(Cause::NoEntitySet {
                    name: Some("opportunities".into()),
                }),
                crate::exit::Exit::Unusable,
            ),
            (
                404,
                "",
                "Resource not found for the segment 'opportunities'.",
                Some(Cause::NoEntitySet {
                    name: Some("opportunities".into()),
                }),
                crate::exit::Exit::Unusable,
            ),
            (
                400,
                "0x80048d19",
                unknown_property,
                Some(Cause::NoColumn {
                    name: Some("telephon1".into()),
                }),
                crate::exit::Exit::Unusable,
            ),
            (
                400,
                "0x80048d19",
                "Error identified in Payload ... InnerException : Microsoft.OData.ODataException: The property 'telephon1' does not exist on type 'Microsoft.Dynamics.CRM.account'.",
                Some(Cause::NoColumn {
                    name: Some("telephon1".into()),
                }),
                crate::exit::Exit::Unusable,
            ),
            (
                400,
                "0x0",
                "An error occurred while validating input parameters: Microsoft.OData.ODataException: An undeclared property 'parentcustomerid' which only has property annotations in the payload but no property value was found in the payload.",
                Some(Cause::NoColumn {
                    name: Some("parentcustomerid".into()),
                }),
                crate::exit::Exit::Unusable,
            ),
            (
                403,
                "0x80040220",
                "Principal user (Id=1, type=8, roleCount=1, privilegeCount=20, accessMode=4), is missing prvAppendToAccount privilege (Id=2) on OTC=1 for entity 'account'.",
                Some(Cause::NotAllowed {
                    privilege: Some("prvAppendToAccount".into()),
                }),
                crate::exit::Exit::Auth,
            ),
            (
                403,
                "0x80040225",
                "The specified user is disabled.",
                Some(Cause::NotAllowed { privilege: None }),
                crate::exit::Exit::Auth,
            ),
            // The row's own problems: no stop.
            (
                403,
                "0x80040220",
                "Principal user (Id=1, type=8, roleCount=1, privilegeCount=20, accessMode=4), is missing prvAssignAccount privilege (Id=2) on OTC=1 for entity 'account'.",
                None,
                crate::exit::Exit::Auth,
            ),
            (
                404,
                "0x80040217",
                "A record with the specified key values does not exist in account entity",
                None,
                crate::exit::Exit::Auth,
            ),
            (
                400,
                "0x80048d19",
                "Error identified in Payload ... InnerException : Cannot convert the literal 'x' to the expected type 'Edm.Int32'.",
                None,
                crate::exit::Exit::Auth,
            ),
            (
                400,
                "0x80044331",
                "A validation error occurred.",
                None,
                crate::exit::Exit::Auth,
            ),
            (
                400,
                "0x80060888",
                "Bad Request - Error in query syntax.",
                None,
                crate::exit::Exit::Auth,
            ),
        ];
        let binds = OpInfo {
            binds: true,
            ..upsert()
        };
        for (status, code, message, cause, exit) in table {
            let error = err(code, message);
            assert_eq!(stop_cause(status, &error), cause, "{status} {message}");
            let outcome = PartOutcome::Failed {
                status,
                error: error.clone(),
                retry_after: None,
            };
            let d = answered(
                &[binds, upsert()],
                &[outcome.clone(), outcome],
                200,
                None,
                None,
            );
            match cause {
                Some(cause) => {
                    let f = d.fatal.as_ref().expect("the run stops");
                    assert_eq!(
                        (f.cause(), crate::exit::Exit::of(&f.ending())),
                        (cause, exit),
                        "{message}"
                    );
                    assert!(
                        d.verdicts.iter().all(|v| matches!(v, Verdict::Unsent(r) if r.starts_with("not written: the run stopped"))),
                        "not deferred, not rejected: {:?}",
                        d.verdicts
                    );
                }
                None => {
                    assert!(d.fatal.is_none(), "{message}");
                    assert!(
                        !d.verdicts.iter().any(|v| matches!(v, Verdict::Unsent(_))),
                        "{message}"
                    );
                }
            }
        }
        // In a change set (--atomic), the rows rolled back with the culprit are unsent too.
        let rolled = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(0) });
        let missing = PartOutcome::Failed {
            status: 404,
            error: err(
                "0x80060888",
                "Resource not found for the segment 'opportunities'.",
            ),
            retry_after: None,
        };
        let d = in_change_set(&[upsert(); 2], &[missing, rolled]);
        assert!(d.fatal.is_some());
        assert!(
            matches!(&d.verdicts[1], Verdict::Unsent(r) if r.contains("rolled back with its batch")),
            "{:?}",
            d.verdicts
        );
    }

    #[test]
    fn the_final_message_names_the_cause() {
        let fatal = |status, code: &str, message: &str| Fatal {
            status,
            error: err(code, message),
        };
        let f = fatal(
            404,
            "0x80060888",
            "Resource not found for the segment 'opportunities'.",
        );
        assert!(
            f.explain()
                .contains("the entity set 'opportunities' does not exist in this environment"),
            "{}",
            f.explain()
        );
        let f = fatal(
            400,
            "0x0",
            "An undeclared property 'parentcustomerid' which only has property annotations",
        );
        assert!(
            f.explain()
                .contains("the column 'parentcustomerid' does not exist on the table")
        );
        let f = fatal(
            403,
            "0x80040220",
            "Principal user (Id=1), is missing prvAppendToAccount privilege (Id=2)",
        );
        assert!(
            f.explain()
                .contains("security role lacks prvAppendToAccount"),
            "{}",
            f.explain()
        );
        assert_eq!(f.ending(), crate::outcome::Ending::SetupRefused);
        let f = fatal(401, "", "Dataverse refused 3 access tokens in a row");
        assert_eq!(
            (f.cause(), crate::exit::Exit::of(&f.ending())),
            (Cause::SignIn, crate::exit::Exit::Auth)
        );
        assert!(f.explain().contains("run `dvload whoami` to check it"));
    }
}
