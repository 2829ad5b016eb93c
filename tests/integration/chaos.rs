//! Seeded chaos: random small jobs against the emulator with random faults and kill -9, checked
//! against an oracle computed from the job (see `chaos_support.rs`).
//!
//! `cargo test --test integration chaos_ci_seeds` runs the fixed seeds below;
//! `DVLOAD_CHAOS_SEEDS=500 cargo test --test integration chaos_soak -- --ignored --nocapture`
//! runs seeds 1..=500 (`DVLOAD_CHAOS_FIRST=M` starts at M); `DVLOAD_CHAOS_SEED=N` (either test)
//! runs seed N alone, and
//! `DVLOAD_CHAOS_KEEP=1` keeps its work directory (ledger, rejects, report, each run's stderr).
//! A failing seed prints the job in one line and each broken promise, classed as one of the
//! known defects or as new.
//!
//! Beyond faults and kills, a seed's job may meet the seams of issue 22 (`Seams`): keys spelled
//! otherwise (case, accents, trailing spaces), a JSON Lines source with long numbers, runs on a
//! full disk, another job of the same application user taking some of its keys between two
//! runs, the job then pointed at another environment, and `undo` of the chain killed and run
//! again.

use crate::chaos_support::{Job, Kind, Op, Oracle, Row, StateExp, run_seed_tampered, run_seeds};

/// The seeds CI runs (about two minutes on two cores). Each one marked "was:" showed that defect before
/// issue 10's fixes (thread timing and kill points vary, so a seed may show more or fewer from one
/// run to the next) and pins its fix; the others guard the paths they exercise.
const CI_SEEDS: &[u64] = &[
    22,  // was: --atomic lost attempt then 404 counted written whole (delete)
    183, // was: --atomic lost attempt then 404 counted written whole (delete)
    4, // was: create by key after a lost answer (kill) + 412 recorded as not created; resume rejects
    11, // was: --atomic lost attempt then 412 counted written whole (create); create after 412 not created
    12, // was: duplicate keys end with the older row's values (429s only)
    16, // was: duplicate keys end with the older row's values (update)
    21, // was: duplicate keys end with the older row's values
    29, // was: duplicate keys end with the older row's values (deferred lookup)
    9,  // was: after --resume the rejects file lacks the earlier run's rejects (keyless)
    25, // was: after --resume the rejects file lacks the earlier runs' rejects (update)
    30, // was: after --resume the rejects file lacks the earlier runs' rejects (keyless)
    87, // was: after --resume the rejects file lacks the earlier runs' rejects (delete)
    6,  // was: create by key after a kill + 412 recorded as not created
    69, // was: create by key after a kill + 412 recorded as not created
    3,  // NEW: without --atomic, 412 after a lost answer counted written (record there before)
    105, // NEW: without --atomic, 412 after a lost answer counted written (record there before)
    42, // NEW: the same, and create after a lost answer + 412 recorded as not created
    26, // soak: a resumed chain judged its read-backs by the client clock (record there before)
    107, // soak: the same, with 5xx, resets, revocation
    82, // soak: an --atomic change set split by a row deferred behind its key
    194, // soak: a resume after a kill before the first write judged its own records by a late clock
    319, // soak: a resumed --atomic delete peeled under heavy faults backed off past 120 s
    97,  // soak (issue 22): one GET driver refreshed a refused token once only; all were revoked
    929, // soak: a resumed --atomic create peeled one row per round trip gave its last rows up
    3,   // seams: two runs on a full disk, another job of the same user takes 3 keys (create)
    5,   // seams: JSON Lines with long numbers, undo killed twice (update)
    25,  // seams: then pointed at another environment (update, three kills)
    29,  // seams: undo killed twice, another job takes keys (upsert)
    34,  // seams: another job of the same user takes 35 of the keys (upsert)
    1,   // passes: delete, 5xx + resets + 429s + revocation, a kill
    8,   // passes: --atomic update, all tokens revoked, kills
    13,  // passes: --atomic upsert, resets, storms, short-lived tokens, a kill
    28,  // passes: --atomic update, 5xx, slow answers, kills
    113, // passes: --atomic keyless create, a kill
    161, // passes: --atomic upsert, 5xx, three kills
    168, // passes: --atomic keyless create, every fault, a kill
    171, // passes: update, every fault but 429, three kills
    195, // passes: keyless create, resets, tokens revoked and expiring, kills
    64,  // passes: --atomic create with refused rows and lookups, no faults (exact oracle)
    58,  // passes: --atomic update with refused rows, 5xx, resets, revocation
];

fn seeds_from_env(default: &[u64]) -> Vec<u64> {
    if let Some(seed) = std::env::var("DVLOAD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    default.to_vec()
}

#[test]
fn chaos_ci_seeds() {
    let failed = run_seeds(&seeds_from_env(CI_SEEDS));
    assert!(
        failed.is_empty(),
        "seeds that broke the promise: {failed:?}"
    );
}

#[test]
#[ignore = "soak: DVLOAD_CHAOS_SEEDS=N seeds"]
fn chaos_soak() {
    let n: u64 = std::env::var("DVLOAD_CHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let first: u64 = std::env::var("DVLOAD_CHAOS_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let all: Vec<u64> = (first..first + n).collect();
    let failed = run_seeds(&seeds_from_env(&all));
    assert!(
        failed.is_empty(),
        "seeds that broke the promise: {failed:?}"
    );
}

/// The checks see a broken promise: a record changed behind the job's back, and a rejects file
/// gone. Seed 64 is an `--atomic` create without faults or kills, so its run is exact.
#[test]
fn chaos_checks_see_a_changed_record_and_a_lost_rejects_file() {
    let result = run_seed_tampered(64, |w, emu| {
        w.write("tamper/t.csv", "Key,Name\nE-000,Tampered\n");
        w.write(
            "tamper/t.toml",
            "[source]\npath = \"t.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
             key = { accountnumber = \"Key\" }\n[fields]\nname = \"Name\"\n",
        );
        w.dvload_env(&["run", "tamper/t.toml", "--no-ledger"], &emu.env())
            .expect_code(0);
        std::fs::remove_file(w.path().join(Job::generate(64).rejects_name()))
            .expect("the job had rejects");
    });
    let texts: Vec<&str> = result.violations.iter().map(|v| v.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t
            .starts_with("record E-000: expected Old E-000/900/-, Dataverse has Tampered/900/-")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("rejects file lacks rejected rows")),
        "{texts:#?}"
    );
}

fn row(n: u64, key: &str, parent: &str, kind: Kind) -> Row {
    Row {
        n,
        key: key.into(),
        spelled: key.into(),
        parent_spelled: parent.into(),
        name: format!("N{n}"),
        employees: n.to_string(),
        parent: parent.into(),
        revenue: String::new(),
        kind,
    }
}

fn job(op: Op, atomic: bool, batch_size: u16, rows: Vec<Row>) -> Job {
    let mut job = Job::generate(1);
    job.op = op;
    job.atomic = atomic;
    job.batch_size = batch_size;
    job.rows = rows;
    job.pre = Vec::new();
    job
}

#[test]
fn chaos_oracle_an_atomic_change_set_whose_child_precedes_its_parent_is_rejected_whole() {
    let rows = vec![
        row(1, "C-1", "P-1", Kind::Valid),
        row(2, "P-1", "", Kind::Valid),
        row(3, "C-2", "P-1", Kind::Valid),
        row(4, "C-1", "", Kind::Valid),
    ];
    // --atomic, two rows a change set: the first fails on its lookup, is deferred, and fails again
    // at the end (the parent is after the child in it); the second is written.
    let atomic = Oracle::of(&job(Op::Upsert, true, 2, rows.clone()));
    use crate::chaos_support::Expect::*;
    assert_eq!(
        atomic.expect,
        [
            Rejected(false),
            Rejected(false),
            Rejected(false),
            Rejected(false)
        ]
    );
    // Row 3's lookup finds no P-1 (its change set was rolled back): that one is rejected too.
    assert_eq!(atomic.state.get("P-1"), Some(&StateExp::Absent));
    // Without --atomic every row is written, and C-1 has its later row's values.
    let plain = Oracle::of(&job(Op::Upsert, false, 2, rows));
    assert_eq!(plain.expect, [Written, Written, Written, Written]);
    match plain.state.get("C-1") {
        Some(StateExp::Is(r)) => assert_eq!((r.name.as_str(), r.parent.as_deref()), ("N4", None)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn chaos_oracle_a_create_of_a_key_created_earlier_in_the_file_is_one_of_a_group() {
    let rows = vec![
        row(1, "K-1", "", Kind::Valid),
        row(2, "K-1", "", Kind::Valid),
        row(3, "K-2", "", Kind::Refused),
    ];
    let oracle = Oracle::of(&job(Op::Create, false, 10, rows));
    assert_eq!(oracle.create_groups.get("K-1"), Some(&vec![1, 2]));
    assert!(matches!(oracle.state.get("K-1"), Some(StateExp::OneOf(o)) if o.len() == 2));
    assert_eq!(oracle.state.get("K-2"), Some(&StateExp::Absent));
}
