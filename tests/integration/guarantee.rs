//! "Nothing lost, nothing written twice", under attack: each test pins one defect of issue 10
//! (the numbers are the items), found by trying to break dvload with faults, pipes, kills
//! and duplicate keys. Each checks Dataverse's contents against what the source must leave there,
//! and what the report, the rejects file and the ledger say.

use std::collections::{BTreeMap, BTreeSet};

use dataverse_emulator::{Config, FaultsConfig};
use serde_json::Value;

use crate::support::{Emu, Output, Report, Workdir, read_rejects_csv};

/// Small retry delays and enough attempts that injected faults never exhaust them.
pub(crate) const FAST: &[&str] = &["--retry-base-ms", "5", "--max-attempts", "40"];

pub(crate) fn emulator(seed: u64) -> Emu {
    Emu::start_with(Config {
        seed,
        ..Config::default()
    })
}

/// `accounts.csv`: one row per `(number, name)`.
fn accounts_csv(rows: impl IntoIterator<Item = (String, String)>) -> String {
    let mut csv = String::from("Account No,Company\n");
    for (number, name) in rows {
        csv.push_str(&format!("{number},{name}\n"));
    }
    csv
}

fn mapping(source: &str, operation: &str) -> String {
    let fields = if operation == "delete" {
        String::new()
    } else {
        "\n[fields]\nname = \"Company\"\n".to_string()
    };
    format!(
        "[source]\npath = \"{source}\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n\
         key = {{ accountnumber = \"Account No\" }}\n{fields}"
    )
}

pub(crate) fn run(w: &Workdir, emu: &Emu, mapping: &str, extra: &[&str]) -> (Output, Report) {
    let mut args = vec![
        "run",
        mapping,
        "--report",
        "report.json",
        "--rejects",
        "rejects.csv",
    ];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    let out = w.dvload_env(&args, &emu.env());
    let report = Report::load(w, "report.json");
    (out, report)
}

/// The accounts in the emulator: account number → name.
pub(crate) fn accounts(emu: &Emu) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in emu.state.rows("account") {
        let number = r.fields.get("accountnumber").and_then(Value::as_str);
        let name = r.fields.get("name").and_then(Value::as_str);
        let number = number.expect("accountnumber").to_string();
        assert!(
            out.insert(number.clone(), name.unwrap_or_default().to_string())
                .is_none(),
            "{number} is in Dataverse twice"
        );
    }
    out
}

pub(crate) fn number(i: usize) -> String {
    format!("A-{i:05}")
}

/// Item 2, creates: `--atomic` change sets whose first attempt is lost and whose first record
/// existed before the run. Without faults such a change set fails whole on that record; with
/// them it must too, whatever the resets did: never counted written.
#[test]
fn atomic_creates_after_a_lost_attempt_are_counted_from_the_records_not_from_a_412() {
    for seed in [3, 11] {
        let emu = emulator(seed);
        let w = Workdir::new();
        let (n, batch) = (200, 10);
        // The first row of every even batch exists before the run, under another name.
        let preexisting: BTreeSet<usize> = (0..n / batch)
            .filter(|b| b % 2 == 0)
            .map(|b| b * batch + 1)
            .collect();
        w.write(
            "pre.csv",
            accounts_csv(preexisting.iter().map(|&i| (number(i), "Before".into()))),
        );
        w.write("pre.toml", mapping("pre.csv", "upsert"));
        run(&w, &emu, "pre.toml", &[]).0.expect_code(0);
        w.write(
            "accounts.csv",
            accounts_csv((1..=n).map(|i| (number(i), format!("Company {i}")))),
        );
        w.write("m.toml", mapping("accounts.csv", "create"));
        emu.set_faults(FaultsConfig {
            reset_rate: 0.3,
            ..FaultsConfig::default()
        });
        let (out, report) = run(
            &w,
            &emu,
            "m.toml",
            &["--atomic", "--batch-size", &batch.to_string()],
        );
        out.expect_code(1);
        let s = emu.stats();
        assert!(s.fault_reset_before > 0 && s.fault_reset_after > 0, "{s:?}");
        // What Dataverse must hold: the odd batches created, the even ones untouched.
        let mut expected = BTreeMap::new();
        for i in 1..=n {
            let even = ((i - 1) / batch) % 2 == 0;
            if preexisting.contains(&i) {
                expected.insert(number(i), "Before".to_string());
            } else if !even {
                expected.insert(number(i), format!("Company {i}"));
            }
        }
        assert_eq!(accounts(&emu), expected, "seed {seed}");
        assert_eq!(
            (report.read, report.written, report.rejected),
            (n as u64, (n / 2) as u64, (n / 2) as u64),
            "seed {seed}: {}",
            out.stdout
        );
        let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
        let rejected: BTreeSet<u64> = rejects.iter().map(|r| r.row).collect();
        let want: BTreeSet<u64> = (1..=n as u64)
            .filter(|i| ((i - 1) / batch as u64) % 2 == 0)
            .collect();
        assert_eq!(rejected, want, "seed {seed}");
        for r in rejects
            .iter()
            .filter(|r| preexisting.contains(&(r.row as usize)))
        {
            assert!(r.error.contains("412"), "{r:?}");
        }
    }
}

/// Item 2, deletes: a change set whose first attempt is lost and whose first record is then
/// absent was counted deleted whole. Now the other records tell whether the lost attempt was
/// applied: here it never was (its first record never existed, so the change set fails on it),
/// and the outcome must be the one without faults.
#[test]
fn atomic_deletes_after_a_lost_attempt_are_settled_by_the_other_records() {
    for seed in [5, 9] {
        let emu = emulator(seed);
        let w = Workdir::new();
        let (n, batch) = (160, 10);
        // The first record of every even batch does not exist.
        let absent: BTreeSet<usize> = (0..n / batch)
            .filter(|b| b % 2 == 0)
            .map(|b| b * batch + 1)
            .collect();
        w.write(
            "pre.csv",
            accounts_csv(
                (1..=n)
                    .filter(|i| !absent.contains(i))
                    .map(|i| (number(i), format!("Company {i}"))),
            ),
        );
        w.write("pre.toml", mapping("pre.csv", "upsert"));
        run(&w, &emu, "pre.toml", &[]).0.expect_code(0);
        w.write(
            "accounts.csv",
            accounts_csv((1..=n).map(|i| (number(i), String::new()))),
        );
        w.write("m.toml", mapping("accounts.csv", "delete"));
        emu.set_faults(FaultsConfig {
            reset_rate: 0.3,
            fail_rate: 0.1,
            ..FaultsConfig::default()
        });
        let (out, report) = run(
            &w,
            &emu,
            "m.toml",
            &["--atomic", "--batch-size", &batch.to_string()],
        );
        out.expect_code(1);
        let s = emu.stats();
        assert!(s.fault_reset_before > 0 && s.fault_reset_after > 0, "{s:?}");
        let even = |i: usize| ((i - 1) / batch) % 2 == 0;
        let expected: BTreeMap<String, String> = (1..=n)
            .filter(|&i| even(i) && !absent.contains(&i))
            .map(|i| (number(i), format!("Company {i}")))
            .collect();
        assert_eq!(
            accounts(&emu),
            expected,
            "seed {seed}: the odd batches deleted, the even ones untouched"
        );
        assert_eq!(
            (report.read, report.written, report.rejected),
            (n as u64, (n / 2) as u64, (n / 2) as u64),
            "seed {seed}: {}",
            out.stdout
        );
        let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
        let rejected: BTreeSet<usize> = rejects.iter().map(|r| r.row as usize).collect();
        assert_eq!(
            rejected,
            (1..=n).filter(|&i| even(i)).collect(),
            "seed {seed}"
        );
    }
}

/// Item 5: creates by key whose first answer was lost and whose retry met 412 were recorded
/// "updated or upserted", so undo left the records the run had created.
#[test]
fn undo_removes_every_record_a_create_made_even_after_lost_answers() {
    let emu = emulator(21);
    let w = Workdir::new();
    let n = 200;
    // One record exists before the run: the create refuses it, and undo must leave it.
    w.write(
        "pre.csv",
        accounts_csv([(number(120), "Before".to_string())]),
    );
    w.write("pre.toml", mapping("pre.csv", "upsert"));
    let state = w.path().join("state-pre");
    let state_pre = state.display().to_string();
    run(&w, &emu, "pre.toml", &["--state", &state_pre])
        .0
        .expect_code(0);
    w.write(
        "accounts.csv",
        accounts_csv((1..=n).map(|i| (number(i), format!("Company {i}")))),
    );
    w.write("m.toml", mapping("accounts.csv", "create"));
    emu.set_faults(FaultsConfig {
        reset_rate: 0.4,
        ..FaultsConfig::default()
    });
    let (out, report) = run(&w, &emu, "m.toml", &["--batch-size", "10"]);
    out.expect_code(1);
    assert_eq!((report.written, report.rejected), (n as u64 - 1, 1));
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].row, 120);
    assert!(
        rejects[0].error.contains("already exists"),
        "{:?}",
        rejects[0]
    );
    assert!(emu.stats().fault_reset_after > 0);
    emu.set_faults(FaultsConfig::default());
    let mut args = vec!["undo", "1", "--yes"];
    args.extend_from_slice(FAST);
    let out = w.dvload_env(&args, &emu.env());
    out.expect_code(0);
    assert!(
        !out.stdout.contains("updated or upserted"),
        "{}",
        out.stdout
    );
    let left = accounts(&emu);
    assert_eq!(
        left,
        BTreeMap::from([(number(120), "Before".to_string())]),
        "undo deletes what the run created, and only that"
    );
}

/// Item 3: the same key twice in one file. Through server errors and resets the later row must
/// win (a retried earlier batch landed after the later one), and `--changed-only` on the
/// unchanged file must not flip the data back (each row was compared with the index as it stood
/// before the run, so the earlier rows were sent as changed and won).
#[test]
fn for_the_same_key_the_later_row_wins_through_faults_and_changed_only() {
    let emu = emulator(13);
    let w = Workdir::new();
    let n = 120;
    // Every key twice, far apart (old, then new), and a few adjacent pairs in one batch.
    let mut rows: Vec<(String, String)> =
        (1..=n).map(|i| (number(i), format!("old {i}"))).collect();
    rows.extend((1..=n).map(|i| (number(i), format!("new {i}"))));
    for i in 1..=10 {
        rows.push((number(n + i), format!("first {i}")));
        rows.push((number(n + i), format!("second {i}")));
    }
    w.write("accounts.csv", accounts_csv(rows));
    w.write("m.toml", mapping("accounts.csv", "upsert"));
    let expected: BTreeMap<String, String> = (1..=n)
        .map(|i| (number(i), format!("new {i}")))
        .chain((1..=10).map(|i| (number(n + i), format!("second {i}"))))
        .collect();
    emu.set_faults(FaultsConfig {
        fail_rate: 0.15,
        reset_rate: 0.1,
        ..FaultsConfig::default()
    });
    let (out, report) = run(&w, &emu, "m.toml", &["--batch-size", "7"]);
    out.expect_code(0);
    assert_eq!(report.written, 2 * n as u64 + 20);
    assert_eq!(accounts(&emu), expected, "the later row of each key wins");
    for round in 0..2 {
        let (out, report) = run(&w, &emu, "m.toml", &["--batch-size", "7", "--changed-only"]);
        out.expect_code(0);
        assert_eq!(
            accounts(&emu),
            expected,
            "round {round}: --changed-only on the unchanged file keeps the later rows"
        );
        assert_eq!(report.read, 2 * n as u64 + 20);
    }
}

/// Item 4: after `--resume`, the rejects file held only the second run's rejects; the first
/// run's were only in the ledger.
#[test]
fn a_resumed_chains_rejects_file_holds_every_row_the_chain_rejected() {
    let emu = emulator(1);
    let w = Workdir::new();
    let n = 100;
    let mut csv = String::from("Account No,Company,Employees\n");
    for i in 1..=n {
        let employees = if i % 10 == 0 {
            "twelve".to_string()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("{},Company {i},{employees}\n", number(i)));
    }
    w.write("accounts.csv", csv);
    w.write(
        "m.toml",
        format!(
            "{}numberofemployees = {{ from = \"Employees\", type = \"int\" }}\n",
            mapping("accounts.csv", "upsert")
        ),
    );
    let (out, report) = run(
        &w,
        &emu,
        "m.toml",
        &["--batch-size", "5", "--max-errors", "2"],
    );
    out.expect_code(4);
    assert!(report.rejected >= 3, "{}", out.stdout);
    let (out, report) = run(&w, &emu, "m.toml", &["--batch-size", "5", "--resume"]);
    out.expect_code(1);
    assert!(
        report.json["passed_over"].as_u64().unwrap() > 0,
        "{}",
        out.stdout
    );
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    let rows: BTreeSet<u64> = rejects.iter().map(|r| r.row).collect();
    assert_eq!(
        rows,
        (1..=n as u64).filter(|i| i % 10 == 0).collect(),
        "every rejected row of the chain, and only those: {rejects:?}"
    );
    for r in &rejects {
        assert!(r.error.contains("twelve"), "{r:?}");
    }
    assert_eq!(
        accounts(&emu).len(),
        n - n / 10,
        "every good row written once"
    );
}

/// `dvload run` with its stdin fed by a thread (a pipe), like `cat file | dvload run ...`.
fn run_piped(w: &Workdir, emu: &Emu, input: Vec<u8>, extra: &[&str]) -> Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvload"));
    cmd.args([
        "run",
        "m.toml",
        "--source",
        "/dev/stdin",
        "--report",
        "report.json",
        "--rejects",
        "rejects.csv",
    ])
    .args(FAST)
    .args(extra)
    .current_dir(w.path())
    .env("NO_PROXY", "127.0.0.1,localhost")
    .env_remove("RUST_LOG")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run dvload");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // The run may stop before it has read everything (a refusal): a closed pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("dvload ends");
    feeder.join().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Item 1: a source that is a pipe lost rows when the ledger was on (the start-of-run hash read
/// the pipe a second time); a resume cannot check a pipe and says so.
#[test]
fn a_piped_source_is_read_once_and_whole_and_a_resume_of_it_is_refused() {
    let emu = emulator(2);
    let w = Workdir::new();
    let n = 3000;
    let csv = accounts_csv((1..=n).map(|i| (number(i), format!("Company {i}"))));
    w.write("m.toml", mapping("accounts.csv", "upsert"));
    let out = run_piped(&w, &emu, csv.clone().into_bytes(), &["--batch-size", "100"]);
    out.expect_code(0);
    let report = Report::load(&w, "report.json");
    assert_eq!(
        (report.read, report.written),
        (n as u64, n as u64),
        "{}",
        out.stdout
    );
    assert_eq!(accounts(&emu).len(), n);
    // A run of a pipe stopped early: its resume cannot check the pipe, and refuses.
    let mut bad = String::from("Account No,Company\n");
    for i in 1..=200 {
        let name = if i % 20 == 0 {
            "x".repeat(200)
        } else {
            format!("Company {i}")
        };
        bad.push_str(&format!("{},{name}\n", number(i)));
    }
    w.write(
        "m.toml",
        mapping("accounts.csv", "upsert").replace(
            "name = \"Company\"",
            "name = { from = \"Company\", max_length = 160 }",
        ),
    );
    run_piped(
        &w,
        &emu,
        bad.clone().into_bytes(),
        &["--max-errors", "1", "--batch-size", "10"],
    )
    .expect_code(4);
    let out = run_piped(&w, &emu, bad.into_bytes(), &["--resume"]);
    out.expect_code(2)
        .stderr_has("is not a regular file (a pipe or a device)");
}

/// Item 1: a named pipe whose writer has not come yet must never hang a run while it holds the
/// state lock (every later cron run would exit 5).
#[test]
fn a_run_waiting_for_a_named_pipe_does_not_hold_the_state_lock() {
    let emu = emulator(4);
    let w = Workdir::new();
    let fifo = w.path().join("feed.csv");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    w.write("m.toml", mapping("feed.csv", "upsert"));
    let mut waiting = std::process::Command::new(env!("CARGO_BIN_EXE_dvload"));
    waiting
        .args(["run", "m.toml"])
        .current_dir(w.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in emu.env() {
        waiting.env(k, v);
    }
    let mut waiting = waiting.spawn().unwrap();
    // The same job from a regular file meanwhile: it must get the lock and finish.
    w.write(
        "accounts.csv",
        accounts_csv((1..=10).map(|i| (number(i), format!("Company {i}")))),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let out = loop {
        let out = w.dvload_env(&["run", "m.toml", "--source", "accounts.csv"], &emu.env());
        // Until the waiting run has got as far as it can, a try may race it; exit 5 would mean
        // it holds the lock while it waits.
        if out.code != 5 || std::time::Instant::now() > deadline {
            break out;
        }
    };
    out.expect_code(0);
    // Feed the pipe: the waiting run reads it and ends.
    std::fs::write(&fifo, accounts_csv([(number(11), "Company 11".into())])).unwrap();
    let status = waiting.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(accounts(&emu).len(), 11);
}

/// The ledger's runs: (id, exit code).
fn ledger_runs(w: &Workdir) -> Vec<(i64, Option<i64>)> {
    let path = w.path().join(".dvload/ledger.sqlite");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, exit_code FROM runs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Item 6: an unwritable `--rejects` path failed at the first reject after rows were written
/// (exit 2, "File exists", no report, the ledger's run never ended); an unwritable `--report`
/// exited 2 after every row was written. Both are checked before anything is sent.
#[test]
fn unwritable_outputs_stop_the_run_before_anything_is_sent() {
    let emu = emulator(6);
    let w = Workdir::new();
    w.write(
        "accounts.csv",
        accounts_csv((1..=50).map(|i| (number(i), format!("Company {i}")))),
    );
    w.write("m.toml", mapping("accounts.csv", "upsert"));
    w.write("plain-file", "not a folder");
    for (option, path) in [
        ("--rejects", "plain-file/rejects.csv"),
        ("--report", "plain-file/report.json"),
        ("--rejects", "."),
    ] {
        let mut args = vec!["run", "m.toml", option, path];
        args.extend_from_slice(FAST);
        let out = w.dvload_env(&args, &emu.env());
        out.expect_code(2)
            .stderr_has(option)
            .stderr_has("nothing was sent");
        assert!(!out.stderr.contains("File exists"), "{}", out.stderr);
    }
    assert_eq!(emu.state.count("account"), 0, "nothing was sent");
    assert!(
        ledger_runs(&w).is_empty(),
        "no run recorded: {:?}",
        ledger_runs(&w)
    );
}

/// Item 6: a run refused at sign-in (exit 3) wrote no `--report`, though a cron wrapper reads it.
#[test]
fn a_run_refused_at_sign_in_writes_its_report_and_ends_its_ledger_run() {
    let emu = emulator(8);
    let w = Workdir::new();
    w.write(
        "accounts.csv",
        accounts_csv((1..=5).map(|i| (number(i), format!("Company {i}")))),
    );
    w.write("m.toml", mapping("accounts.csv", "upsert"));
    let env = emu.env_with(&[("AZURE_CLIENT_SECRET", "wrong-secret")]);
    let out = w.dvload_env(&["run", "m.toml", "--report", "report.json"], &env);
    out.expect_code(3);
    assert!(!out.stderr.contains("wrong-secret") && !out.stdout.contains("wrong-secret"));
    let report: Value = serde_json::from_str(&w.read("report.json")).unwrap();
    assert_eq!(report["exit_code"], 3, "{report}");
    assert_eq!(report["written"], 0, "{report}");
    assert_eq!(ledger_runs(&w), vec![(1, Some(3))]);
}
