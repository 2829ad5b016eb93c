//! The run ledger: resume after kill -9 and after lost responses, one run at a time, signals,
//! `--changed-only`, refusal to resume a changed source, `runs` and `undo`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dataverse_emulator::{Config, FaultsConfig, RunningEmulator, StartOptions};

use crate::support::{Output, Workdir};

/// `rows` accounts `ACC-00001`.. with a name and a head count.
fn accounts_csv(rows: u64, edited: &[u64]) -> String {
    let mut csv = String::from("Account No,Company,Employees\n");
    for i in 1..=rows {
        let name = if edited.contains(&i) {
            format!("Renamed {i}")
        } else {
            format!("Company {i}")
        };
        csv.push_str(&format!("ACC-{i:05},{name},{}\n", i % 500));
    }
    csv
}

fn mapping(operation: &str) -> String {
    format!(
        "[source]\npath = \"accounts.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n\
         key = {{ accountnumber = \"Account No\" }}\n[fields]\nname = \"Company\"\n\
         numberofemployees = {{ from = \"Employees\", type = \"int\" }}\n"
    )
}

async fn emulator() -> RunningEmulator {
    dataverse_emulator::start(Config::default(), StartOptions::default())
        .await
        .expect("emulator starts")
}

/// `dvload ARGS` against the emulator, in `dir`, started (not waited for).
fn spawn(dir: &Path, emu: &RunningEmulator, args: &[&str]) -> Child {
    let out = std::fs::File::create(dir.join("stdout.txt")).unwrap();
    let err = std::fs::File::create(dir.join("stderr.txt")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dvload"))
        .args(args)
        .args(if matches!(args[0], "run" | "undo") {
            &["--retry-base-ms", "10"][..]
        } else {
            &[]
        })
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("DATAVERSE_URL", emu.base_url())
        .env("AZURE_AUTHORITY_HOST", emu.base_url())
        .env("AZURE_TENANT_ID", dataverse_emulator::defaults::TENANT_ID)
        .env("AZURE_CLIENT_ID", dataverse_emulator::defaults::CLIENT_ID)
        .env(
            "AZURE_CLIENT_SECRET",
            dataverse_emulator::defaults::CLIENT_SECRET,
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run dvload")
}

/// Waits for a spawned run without blocking the emulator's runtime.
async fn wait(dir: &Path, mut child: Child) -> Output {
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(dir.join("stdout.txt")).unwrap_or_default(),
        stderr: std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default(),
    }
}

async fn run(dir: &Path, emu: &RunningEmulator, args: &[&str]) -> Output {
    let child = spawn(dir, emu, args);
    wait(dir, child).await
}

fn ledger(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(".dvload/ledger.sqlite")).expect("ledger exists")
}

fn query_u64(db: &rusqlite::Connection, sql: &str) -> u64 {
    db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

/// Every source row is in the emulator exactly once, with its source values.
#[track_caller]
fn assert_each_account_once(emu: &RunningEmulator, rows: u64) {
    let mut numbers: Vec<String> = emu
        .state
        .rows("account")
        .iter()
        .map(|r| r.fields["accountnumber"].as_str().unwrap().to_string())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=rows).map(|i| format!("ACC-{i:05}")).collect();
    assert_eq!(numbers.len(), expected.len(), "accounts in the emulator");
    assert_eq!(numbers, expected);
}

/// The ledger agrees: across the resume chain each row has exactly one outcome, `written`.
#[track_caller]
fn assert_ledger_has_each_row_written_once(dir: &Path, rows: u64) {
    let db = ledger(dir);
    let chain = query_u64(&db, "SELECT chain FROM runs ORDER BY id DESC LIMIT 1");
    let done = format!(
        "FROM row_outcomes r JOIN runs u ON u.id = r.run_id WHERE u.chain = {chain} AND r.outcome <> 'unsent'"
    );
    assert_eq!(
        query_u64(&db, &format!("SELECT count(*) {done}")),
        rows,
        "outcomes"
    );
    assert_eq!(
        query_u64(&db, &format!("SELECT count(DISTINCT r.row) {done}")),
        rows,
        "distinct rows"
    );
    assert_eq!(
        query_u64(
            &db,
            &format!("SELECT count(*) {done} AND r.outcome = 'written'")
        ),
        rows,
        "all written"
    );
}

/// A tiny deterministic generator for kill delays.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

// Each run is killed at a random point of its progress (a random number of rows after the
// emulator's count when it started, plus a random few milliseconds), never near the end: a run
// that finished on its own would close the chain, and the next `--resume` would start a new one
// whose creates are (rightly) refused as duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_resume_writes_every_row_exactly_once() {
    const ROWS: u64 = 6000;
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(ROWS, &[]));
    wd.write("accounts.toml", mapping("create"));
    let emu = emulator().await;
    emu.set_faults(FaultsConfig {
        latency_ms: 15,
        latency_jitter_ms: 30,
        ..FaultsConfig::default()
    });
    let args = [
        "run",
        "accounts.toml",
        "--resume",
        "--batch-size",
        "25",
        "--concurrency",
        "4",
    ];
    let mut kills = 0;
    for seed in 1..=12u64 {
        let mut s = seed;
        let before = emu.state.count("account") as u64;
        // At most a sixth of what is left, so that twelve kills never reach the end.
        let kill_at = before + 1 + next(&mut s) % ((ROWS - before) / 6).max(1);
        let extra = Duration::from_millis(next(&mut s) % 40);
        let mut child = spawn(wd.path(), &emu, &args);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while (emu.state.count("account") as u64) < kill_at {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "run {seed} ended on its own ({status}) before its kill point ({kill_at} of {ROWS} rows)"
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {seed} wrote nothing for 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(extra).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 10, "only {kills} runs were killed mid-way");
    let out = run(wd.path(), &emu, &args).await;
    out.expect_code(0);
    assert_each_account_once(&emu, ROWS);
    assert_ledger_has_each_row_written_once(wd.path(), ROWS);
    let db = ledger(wd.path());
    let runs_with_rows = query_u64(&db, "SELECT count(DISTINCT run_id) FROM row_outcomes");
    let killed = query_u64(&db, "SELECT count(*) FROM runs WHERE ended_at IS NULL");
    assert!(
        runs_with_rows >= 10 && killed >= 10,
        "the kills should land mid-run: {runs_with_rows} runs recorded rows, {killed} never ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_lost_after_create_are_applied_once_and_recorded_once() {
    const ROWS: u64 = 800;
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(ROWS, &[]));
    wd.write("accounts.toml", mapping("create"));
    let emu = emulator().await;
    // Half of these drop the connection after applying the batch: the creates are in, the
    // answer is lost; the retry finds them there (412) and counts them written.
    emu.set_faults(FaultsConfig {
        reset_rate: 0.4,
        ..FaultsConfig::default()
    });
    let out = run(
        wd.path(),
        &emu,
        &[
            "run",
            "accounts.toml",
            "--batch-size",
            "20",
            "--max-attempts",
            "30",
        ],
    )
    .await;
    out.expect_code(0);
    assert_each_account_once(&emu, ROWS);
    assert_ledger_has_each_row_written_once(wd.path(), ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_job_is_refused_and_changes_nothing() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(400, &[]));
    wd.write("accounts.toml", mapping("upsert"));
    let emu = emulator().await;
    emu.set_faults(FaultsConfig {
        latency_ms: 100,
        ..FaultsConfig::default()
    });
    let first = spawn(
        wd.path(),
        &emu,
        &[
            "run",
            "accounts.toml",
            "--batch-size",
            "10",
            "--concurrency",
            "1",
        ],
    );
    // Wait until the first run holds the lock and has recorded its start.
    let lock = wd.path().join(".dvload/lock");
    for _ in 0..500 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid"))
            && wd.path().join(".dvload/ledger.sqlite").exists()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second_dir = wd.path().join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let second = run(
        &second_dir,
        &emu,
        &["run", "../accounts.toml", "--state", "../.dvload"],
    )
    .await;
    second
        .expect_code(5)
        .stderr_has("another dvload run is using the state directory");
    assert!(
        !second.stdout.contains("connected"),
        "the second run connected: {}",
        second.stdout
    );
    let out = wait(wd.path(), first).await;
    out.expect_code(0);
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(&db, "SELECT count(*) FROM runs"),
        1,
        "one run recorded"
    );
    assert_ledger_has_each_row_written_once(wd.path(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_with_exit_4_and_the_resume_command_then_resume_finishes() {
    const ROWS: u64 = 1500;
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(ROWS, &[]));
    wd.write("accounts.toml", mapping("upsert"));
    let emu = emulator().await;
    emu.set_faults(FaultsConfig {
        latency_ms: 30,
        ..FaultsConfig::default()
    });
    let args = [
        "run",
        "accounts.toml",
        "--batch-size",
        "20",
        "--concurrency",
        "2",
    ];
    let child = spawn(wd.path(), &emu, &args);
    while emu.state.count("account") < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait(wd.path(), child).await;
    out.expect_code(4)
        .stderr_has("interrupted")
        .stderr_has("dvload run accounts.toml --batch-size 20 --concurrency 2")
        .stderr_has(" --resume");
    assert!(emu.state.count("account") < ROWS as usize, "stopped early");

    // The source changed: resuming is refused, unless forced.
    wd.write("accounts.csv", accounts_csv(ROWS, &[7]));
    let refused = run(wd.path(), &emu, &["run", "accounts.toml", "--resume"]).await;
    refused
        .expect_code(2)
        .stderr_has("cannot resume run #1: the source accounts.csv changed");
    wd.write("accounts.csv", accounts_csv(ROWS, &[]));
    let resumed = run(
        wd.path(),
        &emu,
        &["run", "accounts.toml", "--resume", "--report", "r.json"],
    )
    .await;
    resumed
        .expect_code(0)
        .stdout_has("resuming run #1")
        .stdout_has("passed over");
    assert_each_account_once(&emu, ROWS);
    assert_ledger_has_each_row_written_once(wd.path(), ROWS);
    // The report says how many rows the interrupted run had done: the ones it recorded.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wd.path().join("r.json")).unwrap()).unwrap();
    let done_before = query_u64(
        &ledger(wd.path()),
        "SELECT count(*) FROM row_outcomes WHERE run_id = 1 AND outcome <> 'unsent'",
    );
    assert!(done_before > 0);
    assert_eq!(report["passed_over"].as_u64(), Some(done_before));
    assert_eq!(report["jobs"][0]["passed_over"].as_u64(), Some(done_before));
    assert_eq!(report["read"].as_u64(), Some(ROWS - done_before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_only_sends_only_the_rows_that_changed() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(300, &[]));
    wd.write("accounts.toml", mapping("upsert"));
    let emu = emulator().await;
    run(wd.path(), &emu, &["run", "accounts.toml"])
        .await
        .expect_code(0);
    wd.write("accounts.csv", accounts_csv(300, &[5, 150, 299]));
    // A dry run tells what --changed-only would send, and leaves the ledger as it was.
    let runs_before = query_u64(&ledger(wd.path()), "SELECT count(*) FROM runs");
    run(
        wd.path(),
        &emu,
        &["run", "accounts.toml", "--dry-run", "--changed-only"],
    )
    .await
    .expect_code(0)
    .stdout_has("would write 3")
    .stdout_has("unchanged 297");
    assert_eq!(
        query_u64(&ledger(wd.path()), "SELECT count(*) FROM runs"),
        runs_before,
        "no run recorded"
    );
    assert_eq!(
        query_u64(&ledger(wd.path()), "SELECT count(*) FROM content_folded"),
        0,
        "the content index is folded in memory only"
    );
    let report = wd.path().join("report.json");
    let out = run(
        wd.path(),
        &emu,
        &[
            "run",
            "accounts.toml",
            "--changed-only",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .await;
    out.expect_code(0)
        .stdout_has("written 3")
        .stdout_has("unchanged 297");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (report["written"].as_u64(), report["unchanged"].as_u64()),
        (Some(3), Some(297))
    );
    let renamed = emu
        .state
        .rows("account")
        .into_iter()
        .filter(|r| r.fields["name"].as_str().unwrap().starts_with("Renamed"))
        .count();
    assert_eq!(renamed, 3);
    // Nothing changed since: nothing is sent.
    run(wd.path(), &emu, &["run", "accounts.toml", "--changed-only"])
        .await
        .expect_code(0)
        .stdout_has("written 0")
        .stdout_has("unchanged 300");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_lists_the_history_and_undo_deletes_only_what_a_run_created() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(120, &[]));
    // Keyless creates (POST): the record ids come back in OData-EntityId.
    wd.write(
        "accounts.toml",
        "[source]\npath = \"accounts.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n\
         [fields]\nname = \"Company\"\naccountnumber = \"Account No\"\n",
    );
    wd.write(
        "upsert.toml",
        mapping("upsert").replace("accounts.csv", "more.csv"),
    );
    wd.write("more.csv", accounts_csv(130, &[]).replace("ACC-", "UPS-"));
    let emu = emulator().await;
    run(wd.path(), &emu, &["run", "accounts.toml"])
        .await
        .expect_code(0);
    run(wd.path(), &emu, &["run", "upsert.toml"])
        .await
        .expect_code(0);
    assert_eq!(emu.state.count("account"), 250);

    let list = run(wd.path(), &emu, &["runs"]).await;
    list.expect_code(0)
        .stdout_has("accounts.toml")
        .stdout_has("upsert.toml");
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.stdout);
    run(wd.path(), &emu, &["runs", "show", "1"])
        .await
        .expect_code(0)
        .stdout_has("120 records created (`dvload undo 1` deletes them)");

    // Not at a terminal and no --yes: nothing happens.
    run(wd.path(), &emu, &["undo", "1"])
        .await
        .expect_code(2)
        .stdout_has("run #1 created 120 records that are still there: 120 from accounts")
        .stderr_has("add --yes");
    assert_eq!(emu.state.count("account"), 250);
    run(
        wd.path(),
        &emu,
        &["undo", "1", "--yes", "--batch-size", "50"],
    )
    .await
    .expect_code(0)
    .stdout_has("deleted 120 of 120 records");
    assert_eq!(
        emu.state.count("account"),
        130,
        "the upserted accounts stay"
    );
    // Upserts are never undone; an undone run has nothing left to undo.
    run(wd.path(), &emu, &["undo", "2", "--yes"])
        .await
        .expect_code(0)
        .stdout_has("created 0 records")
        .stdout_has("130 rows it updated or upserted are left as they are");
    run(wd.path(), &emu, &["undo", "1", "--yes"])
        .await
        .expect_code(0)
        .stdout_has("120 records were deleted by an earlier undo");
    assert_eq!(emu.state.count("account"), 130);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_with_track_creates_are_undone_where_they_created_and_only_there() {
    let wd = Workdir::new();
    wd.write("first.csv", accounts_csv(40, &[]));
    wd.write("accounts.csv", accounts_csv(100, &[3]));
    wd.write(
        "first.toml",
        mapping("upsert").replace("accounts.csv", "first.csv"),
    );
    wd.write("accounts.toml", mapping("upsert"));
    let emu = emulator().await;
    // 40 accounts exist before; the tracked run updates those and creates 60.
    run(wd.path(), &emu, &["run", "first.toml", "--no-ledger"])
        .await
        .expect_code(0);
    let dry = run(
        wd.path(),
        &emu,
        &[
            "run",
            "accounts.toml",
            "--dry-run",
            "--track-creates",
            "--emit-batches",
            "out",
            "--batch-size",
            "100",
        ],
    )
    .await;
    dry.expect_code(0);
    let batch = std::fs::read_to_string(wd.path().join("out/batch-000001.http")).unwrap();
    assert!(
        batch.contains("PATCH /api/data/v9.2/accounts(accountnumber='ACC-00001')?$select=accountnumber HTTP/1.1\r\n")
            && batch.matches("Prefer: return=representation\r\n").count() == 100,
        "{batch}"
    );
    run(
        wd.path(),
        &emu,
        &["run", "accounts.toml", "--track-creates"],
    )
    .await
    .expect_code(0);
    assert_eq!(emu.state.count("account"), 100);
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(&db, "SELECT count(*) FROM row_outcomes WHERE created = 1"),
        60
    );
    assert_eq!(
        query_u64(&db, "SELECT min(row) FROM row_outcomes WHERE created = 1"),
        41
    );
    run(wd.path(), &emu, &["undo", "1", "--yes"])
        .await
        .expect_code(0)
        .stdout_has("run #1 created 60 records that are still there: 60 from accounts")
        .stdout_has("40 rows it updated or upserted are left as they are")
        .stdout_has("deleted 60 of 60 records");
    // The 40 that existed before stay, with what the tracked run wrote (row 3 renamed).
    assert_each_account_once(&emu, 40);
    let renamed = emu
        .state
        .rows("account")
        .iter()
        .filter(|r| r.fields["name"] == "Renamed 3")
        .count();
    assert_eq!(renamed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_a_missing_privilege_resumes_once_the_role_is_fixed() {
    const ROWS: u64 = 300;
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(ROWS, &[]));
    wd.write("accounts.toml", mapping("upsert"));
    let mut contacts = String::from("Email,Last\n");
    for i in 1..=ROWS {
        contacts.push_str(&format!("c{i}@example.com,Person {i}\n"));
    }
    wd.write("contacts.csv", contacts);
    wd.write(
        "contacts.toml",
        "[source]\npath = \"contacts.csv\"\n[target]\nentity_set = \"contacts\"\noperation = \"upsert\"\n\
         key = { emailaddress1 = \"Email\" }\n[fields]\nlastname = \"Last\"\n",
    );
    // The role loses the right to create contacts while the run goes (after the accounts' 15
    // batches; the check before the first write saw it): the second mapping stops the run (exit 3).
    let config = Config {
        changes: vec![dataverse_emulator::config::ChangeConfig {
            after_batches: ROWS / 20,
            revoke: vec![dataverse_emulator::config::TablePrivilegesConfig {
                table: "contact".into(),
                rights: vec![dataverse_emulator::config::Right::Create],
            }],
            ..Default::default()
        }],
        ..Config::default()
    };
    let emu = dataverse_emulator::start(config, StartOptions::default())
        .await
        .unwrap();
    let args = [
        "run",
        "accounts.toml",
        "contacts.toml",
        "--resume",
        "--batch-size",
        "20",
    ];
    let out = run(wd.path(), &emu, &args).await;
    out.expect_code(3)
        .stderr_has("prvCreateContact")
        .stderr_has("continue with:")
        .stderr_has("--resume");
    assert_eq!(emu.state.count("account"), ROWS as usize);
    assert_eq!(emu.state.count("contact"), 0);
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(
            &db,
            "SELECT count(*) FROM row_outcomes WHERE seq = 1 AND outcome = 'rejected'"
        ),
        0,
        "the refused rows were not refused for themselves"
    );
    assert!(
        query_u64(
            &db,
            "SELECT count(*) FROM row_outcomes WHERE seq = 1 AND outcome = 'unsent'"
        ) > 0
    );
    // The role fixed (here: an environment whose role has the privilege), the resume passes over
    // the accounts and writes every contact.
    let fixed = emulator().await;
    let out = run(wd.path(), &fixed, &args).await;
    out.expect_code(0).stdout_has("resuming run #1");
    assert_eq!(fixed.state.count("account"), 0, "accounts passed over");
    assert_eq!(fixed.state.count("contact"), ROWS as usize);
    let db = ledger(wd.path());
    for seq in [0, 1] {
        assert_eq!(
            query_u64(
                &db,
                &format!(
                    "SELECT count(DISTINCT row) FROM row_outcomes WHERE seq = {seq} AND outcome = 'written'"
                )
            ),
            ROWS,
            "mapping {seq}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_without_the_delete_privilege_exits_3_and_deletes_nothing() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(50, &[]));
    wd.write("accounts.toml", mapping("create"));
    let mut config = Config::default();
    for p in &mut config.roles[0].privileges {
        if p.table == "account" {
            p.rights
                .retain(|r| *r != dataverse_emulator::config::Right::Delete);
        }
    }
    let emu = dataverse_emulator::start(config, StartOptions::default())
        .await
        .unwrap();
    run(wd.path(), &emu, &["run", "accounts.toml"])
        .await
        .expect_code(0);
    let out = run(
        wd.path(),
        &emu,
        &["undo", "1", "--yes", "--batch-size", "10"],
    )
    .await;
    // Refused by the check before the first delete.
    out.expect_code(3)
        .stderr_has("nothing deleted")
        .stderr_has("prvDeleteAccount");
    assert_eq!(emu.state.count("account"), 50);
    // Nothing was recorded as undone: the same undo, once allowed, deletes them all.
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(&db, "SELECT count(*) FROM row_outcomes WHERE created = 2"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refused_at_sign_in_leaves_nothing_to_resume() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(30, &[]));
    wd.write("accounts.toml", mapping("create"));
    // The app's secret was rotated: the default one is refused at sign-in.
    let mut config = Config::default();
    config.apps[0].secrets[0].value = "rotated".into();
    let refusing = dataverse_emulator::start(config, StartOptions::default())
        .await
        .unwrap();
    let args = ["run", "accounts.toml", "--resume"];
    run(wd.path(), &refusing, &args).await.expect_code(3);
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(&db, "SELECT exit_code FROM runs WHERE id = 1"),
        3,
        "the refused run is recorded as ended"
    );
    // Nothing was sent: the next run starts afresh rather than resuming (a resume would count
    // a create that finds its key taken as its own).
    let emu = emulator().await;
    let out = run(wd.path(), &emu, &args).await;
    out.expect_code(0);
    assert!(!out.stdout.contains("resuming"), "{}", out.stdout);
    assert_eq!(
        query_u64(&ledger(wd.path()), "SELECT chain FROM runs WHERE id = 2"),
        2
    );
    assert_each_account_once(&emu, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_the_history_drops_old_row_outcomes_and_refuses_to_undo_them() {
    let wd = Workdir::new();
    wd.write("accounts.csv", accounts_csv(40, &[]));
    wd.write("accounts.toml", mapping("upsert"));
    let emu = emulator().await;
    for _ in 0..2 {
        run(wd.path(), &emu, &["run", "accounts.toml"])
            .await
            .expect_code(0);
    }
    run(
        wd.path(),
        &emu,
        &["runs", "prune", "--keep", "1", "--vacuum"],
    )
    .await
    .expect_code(0)
    .stdout_has("pruned the row outcomes of run #1");
    let db = ledger(wd.path());
    assert_eq!(
        query_u64(&db, "SELECT count(DISTINCT run_id) FROM row_outcomes"),
        1
    );
    assert_eq!(query_u64(&db, "SELECT min(run_id) FROM row_outcomes"), 2);
    assert_eq!(
        query_u64(&db, "SELECT count(*) FROM runs"),
        2,
        "history kept"
    );
    run(wd.path(), &emu, &["runs", "show", "1"])
        .await
        .expect_code(0)
        .stdout_has("were pruned")
        .stdout_has("written 40");
    run(wd.path(), &emu, &["undo", "1", "--yes"])
        .await
        .expect_code(2)
        .stderr_has("pruned");
    // Nothing changed since run 1's rows were pruned: the content index still knows them.
    run(wd.path(), &emu, &["run", "accounts.toml", "--changed-only"])
        .await
        .expect_code(0)
        .stdout_has("unchanged 40");
}
