//! The ledger's side of a job: decides which rows a resumed or `--changed-only` run sends
//! (`admit`, on the reader thread) and records every outcome in batched transactions (`JobJournal`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::db::{Ledger, RowOutcome, hash16};
use super::packed::ContentIndex;
use crate::keys::Collation;
use crate::odata::{Method, Operation, Precondition};
use crate::outcome::{Admit, AdmitFn, Outcome, RowState, Sink, Step};

/// The content hash of an operation: what `--changed-only` compares.
pub fn content_hash(op: &Operation) -> [u8; 16] {
    payload_hash(op, op.body.as_deref())
}

/// [`content_hash`] of `op` with `body` in place of its own.
fn payload_hash(op: &Operation, body: Option<&str>) -> [u8; 16] {
    hash16(&[
        op.method.as_str().as_bytes(),
        op.url.as_bytes(),
        body.unwrap_or_default().as_bytes(),
    ])
}

/// The key identity and content hash of an operation with a key (`None` for a keyless create,
/// which `--changed-only` always sends).
pub fn keyed_content(op: &Operation, collation: Collation) -> Option<(u64, [u8; 16])> {
    (!op.key.is_empty()).then(|| (collation.key_id(&op.key), content_hash(op)))
}

/// What the content index holds for a key this run sends: it matches no content, so a later
/// row of the same key in the same run is always sent (it supersedes this one, whatever becomes
/// of it), instead of being compared with what an earlier run wrote.
const SENT_THIS_RUN: [u8; 16] = [0; 16];

/// `--changed-only`: true when `op` writes exactly what the index holds for its key, so it is
/// left out. Otherwise the row will be sent, and the index remembers that (see
/// [`SENT_THIS_RUN`]). Keyless operations are always sent. Shared by the run and the dry run.
pub fn unchanged(index: &mut ContentIndex, op: &Operation, collation: Collation) -> bool {
    let Some((id, hash)) = keyed_content(op, collation) else {
        return false;
    };
    if index.get(&id) == Some(&hash) {
        return true;
    }
    index.insert(id, SENT_THIS_RUN);
    false
}

/// What the reader thread needs to decide each row.
pub struct AdmitPlan {
    /// Rows done by earlier runs of the chain (resume): row → key identity.
    pub done: Option<HashMap<u64, u64>>,
    /// Of those, the rows rejected, with their reasons: passed over, and written again to this
    /// run's rejects file.
    pub rejected: HashMap<u64, String>,
    /// Last written content per key identity (`--changed-only`).
    pub hashes: Option<ContentIndex>,
    /// Rows whose key differs from the one recorded (`--force` after a source change): sent again.
    pub key_mismatches: Arc<AtomicU64>,
    /// How the environment compares keys (the identities above were taken under it).
    pub collation: Collation,
}

impl AdmitPlan {
    /// The decision function for the writer's reader thread.
    pub fn into_fn(self) -> AdmitFn {
        let AdmitPlan {
            done,
            rejected,
            mut hashes,
            key_mismatches,
            collation,
        } = self;
        let resumed = done.is_some();
        Box::new(move |step: &Step| {
            if let Some(done) = &done {
                let (row, key) = match step {
                    Step::Operation(op, record) => (record.pos.row, Some(op.key.as_str())),
                    Step::Skipped(pos) => (pos.row, None),
                    Step::Rejected(r) => (r.pos().row, None),
                };
                if let Some(&recorded) = done.get(&row) {
                    match key {
                        Some(k)
                            if recorded != 0
                                && !k.is_empty()
                                && collation.key_id(k) != recorded =>
                        {
                            key_mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            return match rejected.get(&row) {
                                Some(reason) => Admit::PassOverRejected(reason.clone()),
                                None => Admit::PassOver,
                            };
                        }
                    }
                }
            }
            if let (Some(hashes), Step::Operation(op, _)) = (&mut hashes, step) {
                if unchanged(hashes, op, collation) {
                    return Admit::Unchanged;
                }
            }
            // In a resumed run, any row not recorded may have been sent by the interrupted run.
            Admit::Send {
                sent_before: resumed,
            }
        })
    }
}

/// Records one job's outcomes into the ledger, a transaction every `every` rows (or
/// `max_delay`), always after Dataverse has answered for them.
pub struct JobJournal<'a> {
    ledger: &'a mut Ledger,
    run_id: i64,
    seq: usize,
    buffer: Vec<RowOutcome>,
    every: usize,
    max_delay: Duration,
    last: Instant,
    /// How many of a CSV row's fields are the source's own (a replayed rejects file adds
    /// `dvload_row` and `dvload_error`): what a reject's fingerprint covers.
    content_fields: usize,
}

impl<'a> JobJournal<'a> {
    /// Sets how many leading fields of a CSV row are its content, for reject fingerprints: the
    /// header's columns before any `dvload_` column.
    pub fn content_columns(mut self, header: Option<&[String]>) -> JobJournal<'a> {
        self.content_fields = header.map_or(usize::MAX, |h| {
            h.iter().take_while(|c| !c.starts_with("dvload_")).count()
        });
        self
    }

    /// A journal for job `seq` of run `run_id`.
    pub fn new(ledger: &'a mut Ledger, run_id: i64, seq: usize, every: usize) -> JobJournal<'a> {
        JobJournal {
            ledger,
            run_id,
            seq,
            buffer: Vec::with_capacity(every),
            every: every.max(1),
            max_delay: Duration::from_millis(200),
            last: Instant::now(),
            content_fields: usize::MAX,
        }
    }
}

/// What tells a rejected row from another: XXH3-128 of its reason (GUIDs and digits folded, so
/// that an id or a retry's count in Dataverse's message does not make it another reason) and
/// the row's content (the CSV fields, the JSON record, an unreadable record's bytes). Its
/// position is left out: the same row rejected for the same reason in tomorrow's extract is the
/// same reject, wherever it is in the file.
pub fn fingerprint(reject: &crate::outcome::Reject, reason: &str, fields: usize) -> [u8; 16] {
    use crate::outcome::Reject;
    use crate::source::RecordData;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(fold_reason(reason).as_bytes());
    h.update(b"\x00");
    match reject {
        Reject::Mapping(r, _) | Reject::Service(r, _) | Reject::Unsent(r, _) => match &r.data {
            RecordData::Csv(row) => {
                for f in row.iter().take(fields) {
                    h.update(f.as_bytes());
                    h.update(b"\x1f");
                }
            }
            RecordData::Json(v) => h.update(v.to_string().as_bytes()),
        },
        Reject::Unreadable(b) => h.update(&b.raw),
    }
    h.digest128().to_le_bytes()
}

/// A reason with its ids and numbers folded (`<id>`, `#`): two rows refused for the same reason
/// whose messages differ only in an id, a count or a value fold alike.
pub fn fold_reason(reason: &str) -> String {
    let bytes = reason.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut digits = false;
    while i < bytes.len() {
        if is_guid(&bytes[i..]) {
            out.extend_from_slice(b"<id>");
            i += 36;
            digits = false;
        } else if bytes[i].is_ascii_digit() {
            if !digits {
                out.push(b'#');
            }
            digits = true;
            i += 1;
        } else {
            out.push(bytes[i]);
            digits = false;
            i += 1;
        }
    }
    // Only ASCII was replaced by ASCII: the rest is the reason's own UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether `b` starts with a GUID's 36 characters (8-4-4-4-12 hex digits).
fn is_guid(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The ledger row of an outcome (`None` for rows this run leaves to an earlier one).
pub fn row_outcome(outcome: &Outcome) -> Option<RowOutcome> {
    let blank = |pos: crate::source::RowPos, state| RowOutcome {
        row: pos.row,
        line: pos.line,
        state,
        key: None,
        created: false,
        record_url: None,
        error: None,
        hash: None,
        fingerprint: None,
    };
    Some(match outcome {
        Outcome::Written(w) => {
            // Creates that Dataverse answered with a success, and upserts that said they
            // created (`201`, only with --track-creates; a retried upsert whose first answer was
            // lost says `200` and counts as updated). A create counted written from a refusal
            // (412: its key was taken, after a lost answer or by an interrupted run) is not
            // marked: the record may have been someone else's, and undo must not delete it.
            let answered = (200..300).contains(&w.status);
            let created = w.created
                || answered
                    && (w.op.method == Method::Post
                        || w.op.precondition == Precondition::IfNoneMatchAny
                        || (w.op.method == Method::Patch
                            && w.op.precondition == Precondition::None
                            && w.status == 201));
            let record_url = if !created {
                None
            } else if let Some(id) = w.own_id {
                // The id this run gave the record: undo deletes exactly it, never a record
                // someone else created under the same key since.
                let set = w.op.url.split('(').next().unwrap_or(&w.op.url);
                Some(format!("{set}({id})"))
            } else if w.op.method == Method::Patch {
                Some(w.op.url.clone())
            } else {
                // POST: the record's id comes back in OData-EntityId: `…/accounts(guid)`.
                w.entity_id.as_deref().and_then(|uri| {
                    let tail = uri.rsplit('/').next()?;
                    tail.ends_with(')').then(|| tail.to_string())
                })
            };
            RowOutcome {
                key: Some(w.op.key.clone()),
                created,
                record_url,
                // The payload as the mapping made it: the id is the chain's, not content.
                hash: Some(match (w.own_id, w.op.body.as_deref()) {
                    (Some(id), Some(body)) => {
                        payload_hash(&w.op, Some(crate::ids::without_id(body, id).as_ref()))
                    }
                    _ => content_hash(&w.op),
                }),
                ..blank(w.pos, RowState::Written)
            }
        }
        Outcome::Unchanged(pos, key) => RowOutcome {
            key: Some(key.clone()),
            ..blank(*pos, RowState::Unchanged)
        },
        Outcome::Skipped(pos) => blank(*pos, RowState::Skipped),
        Outcome::Rejected(reject) => {
            let reason = reject.reason();
            // A row the run stopped before writing is `unsent`: a resume sends it.
            let state = match reject {
                crate::outcome::Reject::Unsent(..) => RowState::Unsent,
                _ => RowState::Rejected,
            };
            RowOutcome {
                error: Some(reason),
                ..blank(reject.pos(), state)
            }
        }
        Outcome::PassedOver | Outcome::Carried(_) => return None,
    })
}

impl Sink for JobJournal<'_> {
    fn note(&mut self, outcome: &Outcome) -> crate::Result<()> {
        if let Some(mut o) = row_outcome(outcome) {
            if let (Outcome::Rejected(reject), RowState::Rejected) = (outcome, o.state) {
                let reason = o.error.as_deref().unwrap_or_default();
                o.fingerprint = Some(fingerprint(reject, reason, self.content_fields));
            }
            self.buffer.push(o);
        }
        if self.buffer.len() >= self.every || self.last.elapsed() >= self.max_delay {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> crate::Result<()> {
        self.last = Instant::now();
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.ledger.record(self.run_id, self.seq, &self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Reject, Written};
    use crate::source::{Record, RecordData, RowPos};

    fn op(
        row: u64,
        method: Method,
        precondition: Precondition,
        key: &str,
        body: &str,
    ) -> Operation {
        Operation {
            row: RowPos { row, line: row + 1 },
            method,
            url: if key.is_empty() {
                "accounts".into()
            } else {
                format!("accounts({key})")
            },
            precondition,
            body: Some(body.into()),
            key: key.into(),
            lookups: Vec::new(),
        }
    }

    fn step(o: Operation) -> Step {
        let record = Record {
            pos: o.row,
            data: RecordData::Json(serde_json::json!({})),
        };
        Step::Operation(o, record)
    }

    #[test]
    fn resumed_rows_are_passed_over_unchanged_rows_left_out_and_the_rest_sent_as_sent_before() {
        let same = op(2, Method::Patch, Precondition::None, "n='B'", "{\"x\":1}");
        let plan = AdmitPlan {
            done: Some(HashMap::from([
                (1, Collation::default().key_id("n='A'")),
                (3, Collation::default().key_id("n='OLD'")),
                (4, Collation::default().key_id("n='R'")),
            ])),
            rejected: HashMap::from([(4, "Dataverse 400: no".to_string())]),
            hashes: Some(
                [(Collation::default().key_id("n='B'"), content_hash(&same))]
                    .into_iter()
                    .collect(),
            ),
            key_mismatches: Arc::new(AtomicU64::new(0)),
            collation: Collation::default(),
        };
        let mismatches = plan.key_mismatches.clone();
        let mut admit = plan.into_fn();
        let a = op(1, Method::Patch, Precondition::None, "n='A'", "{}");
        assert_eq!(admit(&step(a)), Admit::PassOver);
        assert_eq!(admit(&step(same.clone())), Admit::Unchanged);
        let mut changed = same;
        changed.body = Some("{\"x\":2}".into());
        assert_eq!(admit(&step(changed)), Admit::Send { sent_before: true });
        // Row 3 was recorded under another key: the source moved under us (--force); send it.
        let moved = op(3, Method::Patch, Precondition::None, "n='NEW'", "{}");
        assert_eq!(admit(&step(moved)), Admit::Send { sent_before: true });
        assert_eq!(mismatches.load(Ordering::Relaxed), 1);
        // Row 4 was rejected by the interrupted run: passed over, with its reason for the
        // rejects file.
        let r = op(4, Method::Patch, Precondition::None, "n='R'", "{}");
        assert_eq!(
            admit(&step(r)),
            Admit::PassOverRejected("Dataverse 400: no".into())
        );
    }

    #[test]
    fn creates_are_recorded_with_the_address_undo_deletes() {
        let post = Outcome::Written(Written {
            pos: RowPos { row: 1, line: 2 },
            op: op(1, Method::Post, Precondition::None, "", "{}"),
            entity_id: Some(
                "http://127.0.0.1:1/api/data/v9.2/accounts(0b7e0a52-7c1e-4f0e-9d55-0d1c8a6f3a11)"
                    .into(),
            ),
            status: 204,
            created: false,
            own_id: None,
        });
        let o = row_outcome(&post).unwrap();
        assert!(o.created);
        assert_eq!(
            o.record_url.as_deref(),
            Some("accounts(0b7e0a52-7c1e-4f0e-9d55-0d1c8a6f3a11)")
        );
        let by_key = Outcome::Written(Written {
            pos: RowPos { row: 2, line: 3 },
            op: op(
                2,
                Method::Patch,
                Precondition::IfNoneMatchAny,
                "n='A'",
                "{}",
            ),
            entity_id: None,
            status: 204,
            created: false,
            own_id: None,
        });
        let o = row_outcome(&by_key).unwrap();
        assert_eq!(
            (o.created, o.record_url.as_deref()),
            (true, Some("accounts(n='A')"))
        );
        // Counted written from a 412 (its key was taken after a lost answer): maybe not ours.
        let inferred = Outcome::Written(Written {
            status: 0,
            ..match by_key {
                Outcome::Written(w) => w,
                _ => unreachable!(),
            }
        });
        let o = row_outcome(&inferred).unwrap();
        assert_eq!(
            (o.state, o.created, o.record_url.clone()),
            (RowState::Written, false, None)
        );
        // Settled by reading the record back: this run created it, undo may delete it.
        let verified = Outcome::Written(Written {
            created: true,
            ..match inferred {
                Outcome::Written(w) => w,
                _ => unreachable!(),
            }
        });
        let o = row_outcome(&verified).unwrap();
        assert_eq!(
            (o.created, o.record_url.as_deref()),
            (true, Some("accounts(n='A')"))
        );
        let upsert = |status| {
            Outcome::Written(Written {
                pos: RowPos { row: 3, line: 4 },
                op: op(3, Method::Patch, Precondition::None, "n='A'", "{}"),
                entity_id: None,
                status,
                created: false,
                own_id: None,
            })
        };
        // 204: created or updated, nobody knows; 200: updated (--track-creates).
        for status in [204, 200] {
            let o = row_outcome(&upsert(status)).unwrap();
            assert_eq!((o.created, o.record_url), (false, None));
            assert_eq!(o.state, RowState::Written);
            assert!(o.hash.is_some());
        }
        // 201: the upsert created its record (--track-creates): undo may delete it.
        let o = row_outcome(&upsert(201)).unwrap();
        assert_eq!(
            (o.created, o.record_url.as_deref()),
            (true, Some("accounts(n='A')"))
        );
    }

    #[test]
    fn rows_the_run_stopped_before_are_unsent_whatever_the_reason_says() {
        let record = |row| Record {
            pos: RowPos { row, line: row + 1 },
            data: RecordData::Json(serde_json::json!({})),
        };
        let unsent = Outcome::Rejected(Reject::Unsent(record(1), "interrupted".into()));
        let o = row_outcome(&unsent).unwrap();
        assert_eq!(
            (o.state, o.error.as_deref()),
            (RowState::Unsent, Some("interrupted"))
        );
        // A Dataverse refusal stays rejected, even when its message happens to say "the run stopped".
        let refused = Outcome::Rejected(Reject::Service(
            record(2),
            "Dataverse 400 (0x1): the run stopped".into(),
        ));
        assert_eq!(row_outcome(&refused).unwrap().state, RowState::Rejected);
    }
}
