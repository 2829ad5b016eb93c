//! Tests of the run ledger.

use super::*;

fn info() -> JobInfo {
    JobInfo {
        mapping: "m.toml".into(),
        mapping_hash: "mh".into(),
        source: "s.csv".into(),
        source_size: 10,
        source_hash: "sh".into(),
        entity_set: "accounts".into(),
        operation: "upsert".into(),
    }
}

fn written(row: u64, key: &str, hash: u8) -> RowOutcome {
    RowOutcome {
        row,
        line: row + 1,
        state: RowState::Written,
        key: Some(key.into()),
        created: false,
        record_url: None,
        error: None,
        hash: Some([hash; 16]),
        fingerprint: None,
    }
}

#[test]
fn content_hashes_are_those_version_1_streamed() {
    let parts: [&[u8]; 3] = [
        b"PATCH",
        b"accounts(accountnumber='A-1')",
        b"{\"name\":\"A\"}",
    ];
    let mut streamed = xxhash_rust::xxh3::Xxh3Default::new();
    for p in parts {
        streamed.update(p);
        streamed.update(&[0]);
    }
    assert_eq!(hash16(&parts), streamed.digest128().to_le_bytes());
    assert_ne!(key_id(""), 0, "0 means no key");
}

#[test]
fn a_resume_chain_sees_the_rows_of_every_earlier_run() {
    let (_dir, mut l, first) = ledger_with_a_run();
    // Row 2 created its record (an `If-None-Match` create): it gets its own `rows` record.
    let created = RowOutcome {
        created: true,
        record_url: Some("accounts(k2)".into()),
        ..written(2, "k2", 2)
    };
    l.record(first, 0, &[written(1, "k1", 1), created]).unwrap();
    let mut unsent = written(3, "k3", 3);
    unsent.state = RowState::Unsent;
    l.record(first, 0, &[unsent]).unwrap();
    let last = l.last_run("m.toml").unwrap().unwrap();
    assert!(last.unfinished(), "never ended");
    assert_eq!(
        (last.counts.read, last.counts.written, last.counts.rejected),
        (3, 2, 1),
        "a killed run's counts are those of its recorded rows"
    );
    let (_, job_counts, _) = &l.jobs(first).unwrap()[0];
    assert_eq!(
        (job_counts.read, job_counts.written),
        (3, 2),
        "and so are those of the mapping it died in"
    );
    let second = l.begin_run("m.toml", Some(&last), false, "t1").unwrap();
    l.begin_job(second, 0, &info()).unwrap();
    l.record(second, 0, &[written(4, "k4", 4)]).unwrap();
    let done = l.done_rows(first, 0).unwrap();
    let mut rows: Vec<u64> = done.keys().copied().collect();
    rows.sort();
    assert_eq!(rows, [1, 2, 4], "unsent rows are not done");
    assert_eq!(done[&1], key_id("k1"));
    // A record undo deleted is not done any more: a resume creates it again.
    l.mark_undone(first, &[(0, 2, "accounts".into(), "k2".into())])
        .unwrap();
    let mut rows: Vec<u64> = l.done_rows(first, 0).unwrap().into_keys().collect();
    rows.sort();
    assert_eq!(rows, [1, 4], "undone rows are not done");
    l.end_run(second, 0, "t2").unwrap();
    let hashes = l.content_index("accounts", i64::MAX, 0).unwrap();
    assert_eq!(hashes.len(), 2, "k2 forgotten by the undo");
    assert_eq!(hashes[&key_id("k4")], [4; 16]);
    l.end_job(
        second,
        0,
        &Counts {
            read: 1,
            written: 1,
            ..Counts::default()
        },
        2,
    )
    .unwrap();
    l.end_run(second, 0, "t2").unwrap();
    let run = l.run(second).unwrap().unwrap();
    assert_eq!(
        (run.chain, run.resumed_from, run.exit_code),
        (first, Some(first), Some(0))
    );
    assert_eq!((run.counts.written, run.passed_over), (1, 2));
    assert!(!run.unfinished());
    assert_eq!(l.runs(10).unwrap().len(), 2);
}

/// A new ledger with run 1 started and its job 0 begun.
fn ledger_with_a_run() -> (tempfile::TempDir, Ledger, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(dir.path()).unwrap();
    let run = l.begin_run("m.toml", None, false, "t0").unwrap();
    l.begin_job(run, 0, &info()).unwrap();
    (dir, l, run)
}

fn query_u64(l: &Ledger, sql: &str) -> u64 {
    l.conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

#[test]
fn plain_rows_are_packed_into_spans_and_the_view_lists_every_row() {
    let (_dir, mut l, run) = ledger_with_a_run();
    let mut outcomes: Vec<RowOutcome> = (1..=1000)
        .map(|i| written(i, &format!("k{i}"), 1))
        .collect();
    outcomes[499] = RowOutcome {
        state: RowState::Rejected,
        error: Some("Dataverse 400".into()),
        hash: None,
        ..outcomes[499].clone()
    };
    outcomes.reverse(); // answers come back in any order
    l.record(run, 0, &outcomes).unwrap();
    assert_eq!(
        query_u64(&l, "SELECT count(*) FROM spans"),
        2,
        "rows 1-499 and 501-1000"
    );
    assert_eq!(
        query_u64(&l, "SELECT count(*) FROM rows"),
        1,
        "the rejected row"
    );
    assert_eq!(
        query_u64(
            &l,
            "SELECT count(*) FROM row_outcomes WHERE outcome = 'written'"
        ),
        999
    );
    assert_eq!(
        query_u64(&l, "SELECT count(DISTINCT row) FROM row_outcomes"),
        1000
    );
    let key_of_row_1000: String = l
        .conn
        .query_row("SELECT key FROM row_outcomes WHERE row = 1000", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        key_of_row_1000, "k1000",
        "a person reads each row's key in the view"
    );
    assert_eq!(l.count_outcome(run, RowState::Written).unwrap(), 999);
    assert_eq!(
        l.run(run).unwrap().unwrap().counts.rejected,
        1,
        "a killed run's counts"
    );
    let done = l.done_rows(run, 0).unwrap();
    assert_eq!(done.len(), 1000);
    assert_eq!(done[&1000], key_id("k1000"));
}

#[test]
fn a_killed_run_makes_the_next_changed_only_run_distrust_the_index_once() {
    let (_dir, mut l, first) = ledger_with_a_run();
    l.record(first, 0, &[written(1, "k1", 1)]).unwrap();
    // `first` never ended: killed. A resume of it keeps the index; another run drops it.
    let resume = l
        .begin_run("m.toml", l.run(first).unwrap().as_ref(), true, "t1")
        .unwrap();
    l.begin_job(resume, 0, &info()).unwrap();
    assert!(l.killed_before("accounts", resume).unwrap().is_empty());
    let fresh = l.begin_run("m.toml", None, true, "t2").unwrap();
    assert_eq!(l.killed_before("accounts", fresh).unwrap(), [first, resume]);
    l.begin_job(fresh, 0, &info()).unwrap();
    assert!(l.content_index("accounts", fresh, 0).unwrap().is_empty());
    l.record(fresh, 0, &[written(2, "k2", 2)]).unwrap();
    l.end_run(fresh, 0, "t3").unwrap();
    let next = l.begin_run("m.toml", None, true, "t4").unwrap();
    assert!(
        l.killed_before("accounts", next).unwrap().is_empty(),
        "settled"
    );
    let index = l.content_index("accounts", next, 0).unwrap();
    assert_eq!(index.len(), 1, "only what the run after the kill wrote");
    assert_eq!(index[&key_id("k2")], [2; 16]);
}

#[test]
fn the_content_index_folds_runs_in_order_and_only_before_the_current_run() {
    let (_dir, mut l, first) = ledger_with_a_run();
    l.record(first, 0, &[written(1, "k1", 1), written(2, "k2", 2)])
        .unwrap();
    l.end_run(first, 0, "t0").unwrap();
    let second = l.begin_run("m.toml", None, true, "t1").unwrap();
    l.begin_job(second, 0, &info()).unwrap();
    // The index a run sees is that of the runs before it.
    let seen = l.content_index("accounts", second, 0).unwrap();
    assert_eq!((seen.len(), seen[&key_id("k1")]), (2, [1; 16]));
    l.record(second, 0, &[written(1, "k1", 9)]).unwrap();
    let other = JobInfo {
        entity_set: "contacts".into(),
        ..info()
    };
    l.begin_job(second, 1, &other).unwrap();
    l.record(second, 1, &[written(1, "k1", 7)]).unwrap();
    l.end_run(second, 0, "t1").unwrap();
    let after = l.content_index("accounts", i64::MAX, 0).unwrap();
    assert_eq!(after[&key_id("k1")], [9; 16], "the later write wins");
    assert_eq!(after[&key_id("k2")], [2; 16]);
    assert_eq!(
        l.content_index("contacts", i64::MAX, 0).unwrap().len(),
        1,
        "per entity set"
    );
    // Two mappings of one run write the same key: the later mapping wins, whatever the row
    // numbers, and the later mapping already compares with the earlier one's write.
    let third = l.begin_run("m.toml", None, true, "t2").unwrap();
    l.begin_job(third, 0, &info()).unwrap();
    l.record(third, 0, &[written(5, "k2", 5)]).unwrap();
    l.begin_job(third, 1, &info()).unwrap();
    let seen = l.content_index("accounts", third, 1).unwrap();
    assert_eq!(
        seen[&key_id("k2")],
        [5; 16],
        "mapping 1 sees mapping 0's write"
    );
    l.record(third, 1, &[written(1, "k2", 6)]).unwrap();
    l.end_run(third, 0, "t2").unwrap();
    let after = l.content_index("accounts", i64::MAX, 0).unwrap();
    assert_eq!(after[&key_id("k2")], [6; 16], "the later mapping wins");
    // Folded once: reading it again changes nothing.
    assert_eq!(l.content_index("accounts", i64::MAX, 0).unwrap(), after);
}

#[test]
fn pruning_keeps_the_newest_runs_resumable_chains_and_the_content_index() {
    let (_dir, mut l, first) = ledger_with_a_run();
    l.record(first, 0, &[written(1, "k1", 1)]).unwrap();
    let one = Counts {
        read: 1,
        written: 1,
        ..Counts::default()
    };
    l.end_job(first, 0, &one, 0).unwrap();
    l.end_run(first, 0, "t1").unwrap();
    // A run stopped early (exit 4): a resume may continue it, so its rows stay.
    let stopped = l.begin_run("m.toml", None, false, "t2").unwrap();
    l.begin_job(stopped, 0, &info()).unwrap();
    l.record(stopped, 0, &[written(1, "k1", 2)]).unwrap();
    l.end_run(stopped, 4, "t3").unwrap();
    let newest = l.begin_run("other.toml", None, false, "t4").unwrap();
    l.begin_job(newest, 0, &info()).unwrap();
    l.record(newest, 0, &[written(1, "k9", 9)]).unwrap();
    l.end_run(newest, 0, "t5").unwrap();

    let (pruned, deleted) = l.prune(1).unwrap();
    assert_eq!((pruned, deleted), (vec![first], 1));
    let gone = l.run(first).unwrap().unwrap();
    assert!(l.pruned(&gone).unwrap());
    assert_eq!(gone.counts.written, 1, "its summary stays");
    assert!(!l.pruned(&l.run(newest).unwrap().unwrap()).unwrap());
    assert_eq!(
        l.done_rows(stopped, 0).unwrap().len(),
        1,
        "the stopped run's rows stay"
    );
    // What the pruned run wrote is still in the content index.
    let index = l.content_index("accounts", i64::MAX, 0).unwrap();
    assert_eq!(index[&key_id("k1")], [2; 16]);
    assert_eq!(index[&key_id("k9")], [9; 16]);
    assert_eq!(l.runs(10).unwrap().len(), 3, "the history stays");
    assert_eq!(
        l.prune(1).unwrap().0,
        Vec::<i64>::new(),
        "nothing left to prune"
    );
    l.vacuum().unwrap();
}

#[test]
fn a_version_1_ledger_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(Ledger::file(dir.path())).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, chain INTEGER NOT NULL,
               resumed_from INTEGER, changed_only INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL,
               ended_at TEXT, exit_code INTEGER);
             CREATE TABLE run_jobs (run_id INTEGER NOT NULL, seq INTEGER NOT NULL, mapping TEXT NOT NULL,
               mapping_hash TEXT NOT NULL, source TEXT NOT NULL, source_size INTEGER NOT NULL,
               source_hash TEXT NOT NULL, entity_set TEXT NOT NULL, operation TEXT NOT NULL,
               read INTEGER NOT NULL DEFAULT 0, written INTEGER NOT NULL DEFAULT 0,
               rejected INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
               unchanged INTEGER NOT NULL DEFAULT 0, passed_over INTEGER NOT NULL DEFAULT 0,
               PRIMARY KEY (run_id, seq));
             CREATE TABLE rows (run_id INTEGER NOT NULL, seq INTEGER NOT NULL, row INTEGER NOT NULL,
               line INTEGER NOT NULL, outcome TEXT NOT NULL, key TEXT, created INTEGER NOT NULL DEFAULT 0,
               record_url TEXT, error TEXT, PRIMARY KEY (run_id, seq, row)) WITHOUT ROWID;
             CREATE TABLE content (entity_set TEXT NOT NULL, key TEXT NOT NULL, hash BLOB NOT NULL,
               run_id INTEGER NOT NULL, PRIMARY KEY (entity_set, key)) WITHOUT ROWID;
             INSERT INTO runs VALUES (1, 'm.toml', 1, NULL, 0, 't0', NULL, NULL);
             INSERT INTO run_jobs (run_id, seq, mapping, mapping_hash, source, source_size, source_hash, entity_set, operation)
               VALUES (1, 0, 'm.toml', 'mh', 's.csv', 10, 'sh', 'accounts', 'upsert');
             INSERT INTO rows VALUES (1, 0, 1, 2, 'written', 'k1', 0, NULL, NULL);
             INSERT INTO content VALUES ('accounts', 'k1', x'01010101010101010101010101010101', 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut l = Ledger::open(dir.path()).unwrap();
    assert_eq!(query_u64(&l, "PRAGMA user_version"), VERSION as u64);
    assert_eq!(
        l.done_rows(1, 0).unwrap()[&1],
        key_id("k1"),
        "its rows stay"
    );
    assert!(l.last_run("m.toml").unwrap().unwrap().unfinished());
    // (An unfinished run makes --changed-only distrust the index: end it to read it.)
    l.end_run(1, 0, "t0").unwrap();
    let index = l.content_index("accounts", i64::MAX, 0).unwrap();
    assert_eq!(index[&key_id("k1")], [1; 16]);
    let run = l.begin_run("m.toml", None, false, "t1").unwrap();
    l.record(run, 0, &[written(2, "k2", 2)]).unwrap();
    assert_eq!(query_u64(&l, "SELECT count(*) FROM row_outcomes"), 2);
    drop(l);
    // A ledger from a newer dvload is refused, not damaged.
    let conn = Connection::open(Ledger::file(dir.path())).unwrap();
    conn.pragma_update(None, "user_version", VERSION + 1)
        .unwrap();
    drop(conn);
    let err = Ledger::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains(&format!("schema version is {}", VERSION + 1)),
        "{err}"
    );
}

#[test]
fn a_version_7_ledger_gains_the_reject_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    drop(Ledger::open(dir.path()).unwrap());
    {
        let conn = Connection::open(Ledger::file(dir.path())).unwrap();
        conn.execute_batch(
            "DROP INDEX rows_fingerprint; ALTER TABLE rows DROP COLUMN fingerprint;
             INSERT INTO runs VALUES (1, 'm.toml', 1, NULL, 0, '2026-12-01T00:00:00Z', NULL, NULL);
             INSERT INTO run_jobs (run_id, seq, mapping, mapping_hash, source, source_size, source_hash, entity_set, operation)
               VALUES (1, 0, 'm.toml', 'h', 'a.csv', 1, 'h', 'accounts', 'upsert');
             INSERT INTO rows (run_id, seq, row, line, outcome, error) VALUES (1, 0, 3, 4, 'rejected', 'bad');
             PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(query_u64(&l, "PRAGMA user_version"), VERSION as u64);
    // Its rejects have no fingerprint: they count as new, never as another row's.
    let h = l.reject_history(1).unwrap();
    assert_eq!(h[&0], crate::exit::RejectHistory { known: 0, new: 1 });
}
