//! The guarantee where features meet the real service (issue 22): each test pins one way the
//! promise broke against something the chaos model did not know (keys compared by collation, a
//! ledger used against another environment, stale rejects, …), and checks what the emulator
//! holds, not only what dvload reports.

use std::collections::BTreeMap;

use dataverse_emulator::{Config, FaultsConfig};
use serde_json::Value;

use crate::guarantee::FAST;
use crate::support::{Emu, Output, Report, Workdir};

fn emulator(seed: u64, language: u32) -> Emu {
    let mut config = Config {
        seed,
        ..Config::default()
    };
    config.organization.language_code = language;
    Emu::start_with(config)
}

fn csv(rows: &[(String, String)]) -> String {
    let mut csv = String::from("Account No,Company\n");
    for (number, name) in rows {
        csv.push_str(&format!("\"{number}\",{name}\n"));
    }
    csv
}

/// Keyless creates of `accounts.csv`: the account number is a plain column.
const KEYLESS: &str = "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n\n\
     [fields]\naccountnumber = \"Account No\"\nname = \"Company\"\n";

/// `n` rows `PREFIX-000i, n i`, the number `width` digits wide.
fn numbered(prefix: &str, n: usize, width: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}-{i:0width$}"), format!("n {i}")))
        .collect()
}

fn mapping(operation: &str) -> String {
    format!(
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n\
         key = {{ accountnumber = \"Account No\" }}\n\n[fields]\nname = \"Company\"\n"
    )
}

/// `dvload run m.toml` with the guarantee tests' report, rejects file and fast retries.
fn run(w: &Workdir, emu: &Emu, extra: &[&str]) -> (Output, Report) {
    crate::guarantee::run(w, emu, "m.toml", extra)
}

/// The accounts in the emulator by their key as the environment compares it (lower case,
/// trailing spaces dropped, accents folded when `fold_accents`) → name; a key held by two
/// records fails the test.
fn accounts_by_key(emu: &Emu, fold_accents: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in emu.state.rows("account") {
        let number = r.fields.get("accountnumber").and_then(Value::as_str);
        let name = r.fields.get("name").and_then(Value::as_str);
        let key = fold(number.expect("accountnumber"), fold_accents);
        let previous = out.insert(key.clone(), name.unwrap_or_default().to_string());
        assert!(previous.is_none(), "{key} is in Dataverse twice");
    }
    out
}

fn fold(key: &str, accents: bool) -> String {
    let key = key.trim_end_matches(' ').to_lowercase();
    if accents {
        key.replace(['é', 'è'], "e").replace('ü', "u")
    } else {
        key
    }
}

/// Key `i` spelled four ways the service takes for one (`_CI_AI`): as is, upper case, with
/// trailing spaces, with the accent dropped.
fn spelling(i: usize, how: usize) -> String {
    let base = format!("café-{i:04}");
    match how % 4 {
        0 => base,
        1 => base.to_uppercase(),
        2 => format!("{base}   "),
        _ => base.replace('é', "e"),
    }
}

/// Item 1: 200 keys upserted twice, the second time spelled otherwise (case, trailing spaces,
/// accents) with a later value, through 5xx answers and resets. Compared as text, the two rows
/// of a key raced and a quarter of the records kept the earlier value; a `--changed-only` file
/// setting each key back in its first spelling was "unchanged".
#[test]
fn keys_spelled_otherwise_are_one_key_in_ordering_and_changed_only() {
    let emu = emulator(22, 1033);
    let w = Workdir::new();
    let n = 200;
    let mut rows: Vec<(String, String)> = (0..n)
        .map(|i| (spelling(i, 0), format!("old {i}")))
        .collect();
    rows.extend((0..n).map(|i| (spelling(i, 1 + i % 3), format!("new {i}"))));
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("upsert"));
    let newer: BTreeMap<String, String> = (0..n)
        .map(|i| (fold(&spelling(i, 0), true), format!("new {i}")))
        .collect();
    emu.set_faults(FaultsConfig {
        fail_rate: 0.15,
        reset_rate: 0.1,
        ..FaultsConfig::default()
    });
    let (out, report) = run(&w, &emu, &["--batch-size", "7"]);
    out.expect_code(0)
        .stdout_has("keys compared _CI_AI (base language 1033)");
    assert_eq!(report.written, 2 * n as u64);
    assert_eq!(
        accounts_by_key(&emu, true),
        newer,
        "the later row of each key wins"
    );

    let (out, _) = run(&w, &emu, &["--batch-size", "7", "--changed-only"]);
    out.expect_code(0);
    assert_eq!(accounts_by_key(&emu, true), newer);

    // Each key back to its old value in its first spelling: every row is a change.
    emu.set_faults(FaultsConfig::default());
    let older: Vec<(String, String)> = (0..n)
        .map(|i| (spelling(i, 0), format!("old {i}")))
        .collect();
    w.write("accounts.csv", csv(&older));
    let (out, report) = run(&w, &emu, &["--batch-size", "7", "--changed-only"]);
    out.expect_code(0);
    assert_eq!(
        report.written, n as u64,
        "no row is unchanged: {}",
        out.stdout
    );
    let expected: BTreeMap<String, String> = (0..n)
        .map(|i| (fold(&spelling(i, 0), true), format!("old {i}")))
        .collect();
    assert_eq!(accounts_by_key(&emu, true), expected);
}

/// Item 1, creates: every key created twice in two spellings through resets. The server holds
/// one record per key; the report counted 230 written for 200 records. Now: 200 written, and
/// the second row of each key rejected as the duplicate it is.
#[test]
fn creates_of_one_key_in_two_spellings_write_one_record_and_reject_the_other() {
    let emu = emulator(23, 1033);
    let w = Workdir::new();
    let n = 200;
    let mut rows = Vec::new();
    for i in 0..n {
        rows.push((spelling(i, 0), format!("first {i}")));
        rows.push((spelling(i, 1 + i % 3), format!("second {i}")));
    }
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("create"));
    emu.set_faults(FaultsConfig {
        reset_rate: 0.2,
        ..FaultsConfig::default()
    });
    let (out, report) = run(&w, &emu, &["--batch-size", "5"]);
    out.expect_code(1);
    let held = accounts_by_key(&emu, true);
    assert_eq!(held.len(), n);
    assert_eq!(report.written, n as u64, "{}", out.stdout);
    assert_eq!(report.rejected, n as u64);
    for i in 0..n {
        assert_eq!(held[&fold(&spelling(i, 0), true)], format!("first {i}"));
    }
}

/// Item 1, accent-sensitive environments: in a Finnish-Swedish (1035, `_CI_AS`) environment
/// `café-1` and `cafe-1` are two records, and dvload keeps them two (the run says so).
#[test]
fn an_accent_sensitive_environment_keeps_accented_keys_apart() {
    let emu = emulator(24, 1035);
    let w = Workdir::new();
    let rows: Vec<(String, String)> = (0..20)
        .flat_map(|i| {
            [
                (spelling(i, 0), format!("accented {i}")),
                (spelling(i, 3), format!("plain {i}")),
                (spelling(i, 2), format!("accented again {i}")),
            ]
        })
        .collect();
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("upsert"));
    let (out, report) = run(&w, &emu, &["--batch-size", "4"]);
    out.expect_code(0)
        .stdout_has("keys compared _CI_AS (base language 1035)");
    assert_eq!(report.written, 60);
    let held = accounts_by_key(&emu, false);
    assert_eq!(held.len(), 40);
    for i in 0..20 {
        assert_eq!(
            held[&fold(&spelling(i, 0), false)],
            format!("accented again {i}")
        );
        assert_eq!(held[&fold(&spelling(i, 3), false)], format!("plain {i}"));
    }
}

/// Item 2: a `--changed-only` job run against one environment, then pointed (same state
/// directory) at a new, empty one, sent nothing and said "unchanged" for every row. A state
/// directory now holds the history of one environment: any run or undo against another is
/// refused before anything is sent, naming both.
#[test]
fn a_ledger_is_bound_to_the_environment_it_describes() {
    let first = emulator(25, 1033);
    let w = Workdir::new();
    let rows = numbered("E", 200, 4);
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("create"));
    let (out, report) = run(&w, &first, &["--changed-only"]);
    out.expect_code(0);
    assert_eq!(report.written, 200);

    let mut config = Config {
        seed: 26,
        ..Config::default()
    };
    config.organization.id = "11111111-2222-3333-4444-555555555555".into();
    let second = Emu::start_with(config);
    for extra in [&["--changed-only"][..], &[], &["--resume"]] {
        let (out, report) = run(&w, &second, extra);
        out.expect_code(2)
            .stderr_has("holds the history of another Dataverse environment")
            .stderr_has("11111111-2222-3333-4444-555555555555")
            .stderr_has(first.base_url())
            .stderr_has("--state DIR");
        assert_eq!(report.written, 0);
        assert_eq!(second.state.count("account"), 0, "{extra:?}: nothing sent");
    }
    let out = w.dvload_env(&["undo", "1", "--yes", "--state", ".dvload"], &second.env());
    out.expect_code(2).stderr_has("nothing was deleted");
    assert_eq!(first.state.count("account"), 200);

    // A state directory of its own for the second environment works, and the first one's
    // history is untouched: its --changed-only run still finds every row unchanged.
    let (out, report) = run(&w, &second, &["--changed-only", "--state", "state-2"]);
    out.expect_code(0);
    assert_eq!((report.written, second.state.count("account")), (200, 200));
    let (out, report) = run(&w, &first, &["--changed-only"]);
    out.expect_code(0);
    assert_eq!((report.written, report.stat("unchanged")), (0, 200));
}

/// Item 4: a run stopped by SIGTERM listed its unsent rows in the rejects file; the resume wrote
/// them and rejected nothing, so it left the file as it was, and replaying it (as the file says
/// to) wrote every row twice. After any run the rejects file lists the rows rejected now.
#[test]
fn a_resume_that_rejects_nothing_leaves_no_stale_rejects_file() {
    let emu = emulator(27, 1033);
    let w = Workdir::new();
    let n = 1000;
    let rows = numbered("S", n, 4);
    w.write("accounts.csv", csv(&rows));
    // Keyless creates: the operation a stale rejects file would write twice.
    w.write("m.toml", KEYLESS);
    emu.set_faults(FaultsConfig {
        latency_ms: 40,
        ..FaultsConfig::default()
    });
    let mut args = vec![
        "run",
        "m.toml",
        "--rejects",
        "rejects.csv",
        "--batch-size",
        "10",
        "--concurrency",
        "1",
    ];
    args.extend_from_slice(FAST);
    let out = crate::attack::dvload_after_batches(&w, &emu, &args, 20, 15);
    assert_eq!(
        out.code, 4,
        "stopped by SIGTERM: {}{}",
        out.stdout, out.stderr
    );
    let unsent = crate::support::read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert!(
        !unsent.is_empty() && unsent.len() < n,
        "{} rows listed unsent",
        unsent.len()
    );

    emu.set_faults(FaultsConfig::default());
    let mut resume = args.clone();
    resume.push("--resume");
    let out = crate::attack::dvload_bounded(&w, &emu, &resume, None);
    out.expect_code(0).stdout_has("removed the rejects file");
    assert!(
        !w.path().join("rejects.csv").exists(),
        "no row is rejected now"
    );
    assert_eq!(emu.state.count("account"), n);
}

/// Item 4, replays: a rejects file replayed in place (`--source x.rejects.csv` writes its rejects
/// to the same file) whose rows are all written now is removed, not left to be replayed again.
#[test]
fn a_replayed_rejects_file_whose_rows_are_all_written_is_removed() {
    let emu = emulator(28, 1033);
    let w = Workdir::new();
    let rows = numbered("R", 10, 2);
    w.write("accounts.csv", csv(&rows));
    // Updates of records that are not there yet: each is rejected (404).
    w.write("m.toml", mapping("update"));
    let out = w.dvload_env(&["run", "m.toml"], &emu.env());
    out.expect_code(1);
    let rejects = w.path().join("accounts.rejects.csv");
    assert_eq!(crate::support::read_rejects_csv(&rejects, b',').len(), 10);
    // The records appear (another job, reading the same source, so its default rejects file is
    // the same path: rejecting nothing, it must leave the update job's file alone); the rejects
    // file, replayed unfixed, now writes every row.
    w.write(
        "create.toml",
        mapping("upsert").replace("Company", "Account No"),
    );
    w.dvload_env(&["run", "create.toml"], &emu.env())
        .expect_code(0);
    let out = w.dvload_env(
        &["run", "m.toml", "--source", "accounts.rejects.csv"],
        &emu.env(),
    );
    out.expect_code(0).stdout_has("removed the rejects file");
    assert!(!rejects.exists(), "nothing is rejected now: {}", out.stdout);
    let names: Vec<String> = emu
        .state
        .rows("account")
        .iter()
        .map(|r| r.fields["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names.len(), 10);
    assert!(names.iter().all(|n| n.starts_with("n ")), "{names:?}");
}

/// Item 10: throttling is waited out wherever it comes, never counted as a failed attempt: with
/// two attempts allowed, 429s (Retry-After) on most requests (the first `WhoAmI`, the organization,
/// the pre-flight checks, the batches) ended the run at sign-in with exit 3 ("Dataverse refused
/// the first request"), or rejected rows "gave up after 2 attempts".
#[test]
fn throttling_at_sign_in_and_on_every_request_is_waited_out() {
    let emu = emulator(29, 1033);
    let w = Workdir::new();
    let rows = numbered("T", 300, 4);
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("upsert"));
    emu.set_faults(FaultsConfig {
        throttle_rate: 0.6,
        throttle_retry_after_secs: 1,
        ..FaultsConfig::default()
    });
    // The pauses are capped for the test (--max-delay-ms); Retry-After is otherwise honoured.
    let args = [
        "run",
        "m.toml",
        "--report",
        "report.json",
        "--batch-size",
        "10",
        "--max-attempts",
        "2",
        "--retry-base-ms",
        "1",
        "--max-delay-ms",
        "2",
    ];
    let out = w.dvload_env(&args, &emu.env());
    out.expect_code(0);
    let report = Report::load(&w, "report.json");
    assert_eq!(report.written, 300);
    assert!(report.stat("throttle_waits") > 0, "{}", out.stdout);
    assert_eq!(accounts_by_key(&emu, true).len(), 300);
}

/// Item 10, 413: a `$batch` the service refuses as too large rejected every row of it (and a
/// replay failed the same way). The request is split in halves down to one row; a row too large
/// on its own is rejected with its size.
#[test]
fn a_request_too_large_is_split_down_to_the_row_that_is() {
    let mut config = Config {
        seed: 30,
        ..Config::default()
    };
    config.limits.max_request_bytes = 2_000;
    let emu = Emu::start_with(config);
    let w = Workdir::new();
    let mut text = String::from("Account No,Company,Notes\n");
    for i in 0..60 {
        let notes = if i == 17 || i == 42 {
            "x".repeat(1990)
        } else {
            format!("short {i}")
        };
        text.push_str(&format!("B-{i:03},n {i},{notes}\n"));
    }
    w.write("accounts.csv", text);
    w.write(
        "m.toml",
        format!("{}description = \"Notes\"\n", mapping("upsert")),
    );
    let (out, report) = run(&w, &emu, &["--batch-size", "50"]);
    out.expect_code(1);
    assert_eq!((report.written, report.rejected), (58, 2), "{}", out.stdout);
    assert_eq!(emu.state.count("account"), 58);
    let rejects = crate::support::read_rejects_csv(&w.path().join("rejects.csv"), b',');
    let rows: Vec<u64> = rejects.iter().map(|r| r.row).collect();
    assert_eq!(rows, [18, 43]);
    assert!(
        rejects
            .iter()
            .all(|r| r.error.contains("413") && r.error.contains("bytes")),
        "{rejects:?}"
    );
}

/// Item 9: numbers from JSON passed through `f64`: 16–19 significant digits were sent altered
/// into Money and text columns alike, a long fraction was refused as "'1.2345678901234568e+16' is
/// not a number", and the rejects file kept the rounded number. Every digit now arrives as
/// written, and a value a column cannot hold is rejected with the source's own text.
#[test]
fn numbers_from_json_keep_every_digit() {
    let emu = emulator(31, 1033);
    let w = Workdir::new();
    let values = [
        ("J-1", "12345678901234.57", "12345678901234.5678"),
        ("J-2", "123456789012345.67", "9007199254740993"),
        (
            "J-3",
            "-922337203685476.99",
            "0.1000000000000000055511151231257827",
        ),
        ("J-4", "98765432109876.5432", "12345678901234567890"),
    ];
    let mut lines = String::new();
    for (no, amount, note) in values {
        lines.push_str(&format!(
            "{{\"no\":\"{no}\",\"amount\":{amount},\"note\":{note}}}\n"
        ));
    }
    // Beyond Money's range: rejected, and the rejects file keeps the number as written.
    lines.push_str("{\"no\":\"J-9\",\"amount\":99999999999999999999.99,\"note\":1}\n");
    w.write("a.jsonl", lines);
    w.write(
        "m.toml",
        "[source]\nformat = \"jsonl\"\npath = \"a.jsonl\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"no\" }\n\n[fields]\nrevenue = { from = \"amount\", type = \"money\" }\n\
         description = \"note\"\n",
    );
    let out = w.dvload_env(&["run", "m.toml", "--rejects", "rejects.jsonl"], &emu.env());
    out.expect_code(1);
    let held: BTreeMap<String, (String, String)> = emu
        .state
        .rows("account")
        .iter()
        .map(|r| {
            let f = |k: &str| match r.fields.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            (f("accountnumber"), (f("revenue"), f("description")))
        })
        .collect();
    for (no, amount, note) in values {
        let got = held.get(no);
        let want = (amount.to_string(), note.to_string());
        assert_eq!(
            got,
            Some(&want),
            "{no}: {}\n{}",
            out.stdout,
            w.read("rejects.jsonl")
        );
    }
    assert!(!held.contains_key("J-9"));
    let rejects = w.read("rejects.jsonl");
    assert!(
        rejects.contains("\"amount\":99999999999999999999.99"),
        "{rejects}"
    );
    let error = rejects
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        error.contains("99999999999999999999.99"),
        "the reason quotes the source: {rejects}"
    );
}

/// Item 5: rejected rows replay as their own rows, bytes and all. In a pipe- or tab-delimited
/// file an unterminated quote written back as it was swallowed the rejected rows after it on
/// replay (2 of 4 read); JSON Lines with invalid UTF-8 were written back with U+FFFD and,
/// replayed unfixed, written to Dataverse altered.
#[test]
fn every_rejected_row_replays_as_its_own_row_whatever_its_bytes() {
    for (delimiter, name) in [(b'|', "|"), (b'\t', "tab"), (b';', ";"), (b',', ",")] {
        let emu = emulator(32, 1033);
        let w = Workdir::new();
        let d = delimiter as char;
        let mut text = format!("Account No{d}Company{d}Employees\n");
        // Updates of records that are not there (each rejected by the service, after its
        // batch), a bad number (rejected at once), and an unterminated quote on the last line
        // (rejected at once, so it comes before the others in the rejects file).
        let rows = [
            format!("Q-1{d}one{d}1"),
            format!("Q-2{d}two{d}x"),
            format!("Q-3{d}three{d}3"),
            format!("Q-4{d}\"broken{d}4"),
        ];
        for r in &rows {
            text.push_str(r);
            text.push('\n');
        }
        w.write("accounts.csv", text);
        w.write(
            "m.toml",
            format!(
                "[source]\npath = \"accounts.csv\"\ndelimiter = \"{name}\"\n\n[target]\nentity_set = \"accounts\"\n\
                 operation = \"update\"\nkey = {{ accountnumber = \"Account No\" }}\n\n[fields]\nname = \"Company\"\n\
                 numberofemployees = {{ from = \"Employees\", type = \"int\" }}\n"
            ),
        );
        let out = w.dvload_env(&["run", "m.toml", "--report", "r.json"], &emu.env());
        out.expect_code(1);
        let first = Report::load(&w, "r.json");
        assert_eq!(first.rejected, 4, "{name}: {}", out.stdout);
        let rejected =
            crate::support::read_rejects_csv(&w.path().join("accounts.rejects.csv"), delimiter);
        let rows_of = |r: &[crate::support::RejectRow]| r.iter().map(|r| r.row).collect::<Vec<_>>();
        let before = rows_of(&rejected);
        assert_eq!(before.len() as u64, first.rejected, "{name}");
        let held = emu.state.count("account");
        // Replayed unfixed, twice: every rejected row is read as its own row and rejected again,
        // with its first run's row number; nothing more is written.
        for round in 0..2 {
            let out = w.dvload_env(
                &[
                    "run",
                    "m.toml",
                    "--source",
                    "accounts.rejects.csv",
                    "--report",
                    "r.json",
                ],
                &emu.env(),
            );
            out.expect_code(1);
            let replay = Report::load(&w, "r.json");
            assert_eq!(
                (replay.read, replay.rejected, replay.written),
                (first.rejected, first.rejected, 0),
                "{name} round {round}: {}",
                w.read("accounts.rejects.csv")
            );
            let again =
                crate::support::read_rejects_csv(&w.path().join("accounts.rejects.csv"), delimiter);
            assert_eq!(rows_of(&again), before, "{name} round {round}");
            assert_eq!(emu.state.count("account"), held);
        }
    }
}

/// Item 5, JSON Lines: a line with invalid UTF-8 is kept byte for byte (`raw_base64`), so the
/// replayed rejects file rejects it again instead of writing U+FFFD to Dataverse.
#[test]
fn invalid_utf8_in_json_lines_replays_rejected_never_altered() {
    let emu = emulator(33, 1033);
    let w = Workdir::new();
    let mut lines = Vec::new();
    lines.extend_from_slice(b"{\"no\":\"U-1\",\"name\":\"fine\"}\n");
    lines.extend_from_slice(b"{\"no\":\"U-2\",\"name\":\"bad \xff\xfe bytes\"}\n");
    lines.extend_from_slice(b"{\"no\":\"U-3\",\"name\":\"caf\xc3\"}\n");
    lines.extend_from_slice(b"{\"no\":\"U-4\",\"name\":\"also fine\"}\n");
    w.write("a.jsonl", &lines);
    w.write(
        "m.toml",
        "[source]\nformat = \"jsonl\"\npath = \"a.jsonl\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"no\" }\n\n[fields]\nname = \"name\"\n",
    );
    let out = w.dvload_env(&["run", "m.toml", "--report", "r.json"], &emu.env());
    out.expect_code(1);
    assert_eq!(Report::load(&w, "r.json").rejected, 2);
    let first = w.read("a.rejects.jsonl");
    for _ in 0..2 {
        let out = w.dvload_env(
            &[
                "run",
                "m.toml",
                "--source",
                "a.rejects.jsonl",
                "--report",
                "r.json",
            ],
            &emu.env(),
        );
        out.expect_code(1);
        let r = Report::load(&w, "r.json");
        assert_eq!(
            (r.read, r.rejected, r.written),
            (2, 2, 0),
            "{}",
            w.read("a.rejects.jsonl")
        );
        assert_eq!(
            w.read("a.rejects.jsonl").matches("\"raw_base64\":").count(),
            2
        );
    }
    assert!(first.contains("raw_base64"), "{first}");
    assert_eq!(emu.state.count("account"), 2);
    for r in emu.state.rows("account") {
        let name = r.fields["name"].as_str().unwrap_or_default();
        assert!(!name.contains('\u{fffd}'), "{name}");
    }
}

/// Item 3: a create's provenance was guessed from the clock and the user. Two jobs sharing an
/// application user: job A, creating by key, stopped part-way while job B created the same keys;
/// A's resume took B's records for its own (their createdon was after A's start, their creator
/// A's user), counted them written, and `undo` of A deleted them. Each create now carries the id
/// dvload gave it: A's resume rejects the keys B holds, and undo deletes exactly A's records.
#[test]
fn a_job_never_adopts_or_undoes_the_records_of_another_job_with_the_same_user() {
    let emu = emulator(34, 1033);
    let (a, b) = (Workdir::new(), Workdir::new());
    let n = 1000;
    let rows = |who: &str| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("K-{i:04}"), format!("{who} {i}")))
            .collect()
    };
    a.write("accounts.csv", csv(&rows("A")));
    a.write("m.toml", mapping("create"));
    b.write("accounts.csv", csv(&rows("B")));
    b.write("m.toml", mapping("create"));
    emu.set_faults(FaultsConfig {
        latency_ms: 40,
        reset_rate: 0.2,
        ..FaultsConfig::default()
    });
    let mut args = vec!["run", "m.toml", "--batch-size", "10", "--concurrency", "2"];
    args.extend_from_slice(FAST);
    let out = crate::attack::dvload_after_batches(&a, &emu, &args, 20, 15);
    assert_eq!(
        out.code, 4,
        "A stopped part-way: {}{}",
        out.stdout, out.stderr
    );
    let by_a: Vec<String> = accounts_by_key(&emu, false).into_keys().collect();
    assert!(
        !by_a.is_empty() && by_a.len() < n,
        "{} written by A: {}{}",
        by_a.len(),
        out.stdout,
        out.stderr
    );
    // B, the same application user, creates every key; those A holds are refused.
    emu.set_faults(FaultsConfig::default());
    let out = crate::attack::dvload_bounded(&b, &emu, &args, None);
    out.expect_code(1);
    // A resumes through lost answers: every key B holds is B's, never adopted.
    emu.set_faults(FaultsConfig {
        reset_rate: 0.1,
        ..FaultsConfig::default()
    });
    let mut resume = args.clone();
    resume.extend(["--resume", "--report", "report.json"]);
    let out = crate::attack::dvload_bounded(&a, &emu, &resume, None);
    out.expect_code(1);
    let report = Report::load(&a, "report.json");
    let held = accounts_by_key(&emu, false);
    assert_eq!(held.len(), n);
    let a_holds = held.values().filter(|v| v.starts_with("A ")).count();
    assert_eq!(
        a_holds,
        by_a.len(),
        "A wrote nothing more: B held every other key"
    );
    // Every key B holds is rejected, none adopted (a record whose answer A lost before it
    // stopped is A's own, and is counted written by the resume that reads its id back).
    assert_eq!(report.rejected as usize, n - a_holds, "{}", out.stdout);
    // Undo of A's chain deletes A's records and only those.
    emu.set_faults(FaultsConfig::default());
    for run in ["1", "2"] {
        let out = a.dvload_env(&["undo", run, "--yes"], &emu.env());
        assert!(
            matches!(out.code, 0 | 1),
            "undo {run}: {}{}",
            out.stdout,
            out.stderr
        );
    }
    let left = accounts_by_key(&emu, false);
    assert_eq!(left.len(), n - a_holds, "{}", a.read("report.json"));
    assert!(left.values().all(|v| v.starts_with("B ")));
}

/// Item 8: `undo` had no signal handling (Ctrl-C killed it mid-request), and a delete applied
/// but not yet recorded kept its content hash, so a later `--changed-only` run called its row
/// "unchanged" though the record was gone. Now undo stops cleanly (exit 4, deletes in flight
/// recorded), a second undo finishes, and the content index forgets each record before its
/// delete is sent.
#[test]
fn undo_stops_cleanly_and_a_second_undo_finishes_with_nothing_left_unchanged() {
    let emu = emulator(35, 1033);
    let w = Workdir::new();
    let n = 600;
    let rows = numbered("D", n, 4);
    w.write("accounts.csv", csv(&rows));
    w.write("m.toml", mapping("create"));
    let (out, _) = run(&w, &emu, &["--changed-only"]);
    out.expect_code(0);
    assert_eq!(emu.state.count("account"), n);
    emu.set_faults(FaultsConfig {
        latency_ms: 40,
        ..FaultsConfig::default()
    });
    let undo = [
        "undo",
        "1",
        "--yes",
        "--batch-size",
        "10",
        "--concurrency",
        "1",
    ];
    let out = crate::attack::dvload_after_batches(&w, &emu, &undo, 15, 15);
    assert_eq!(out.code, 4, "stopped cleanly: {}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("finish with"), "{}", out.stderr);
    let left = emu.state.count("account");
    assert!(left > 0 && left < n, "{left} left");
    emu.set_faults(FaultsConfig::default());
    let out = crate::attack::dvload_bounded(&w, &emu, &undo, None);
    out.expect_code(0);
    assert_eq!(emu.state.count("account"), 0);
    // Every row's record is gone: --changed-only sends every row again.
    let (out, report) = run(&w, &emu, &["--changed-only"]);
    out.expect_code(0);
    assert_eq!(report.written, n as u64, "{}", out.stdout);
    assert_eq!(emu.state.count("account"), n);
}

/// Item 7: `--changed-only` after `kill -9`. Records at v1; a v2 `--changed-only` run killed while
/// batches were applied but not recorded; then a file with even rows back at v1 and odd rows at
/// v3: the content index still said v1 for the rows the killed run had changed, so they were
/// "unchanged" and kept v2. A run killed before it recorded what it sent now makes the next
/// `--changed-only` run on that table send every row (and says why).
#[test]
fn changed_only_after_a_kill_sends_what_the_killed_run_may_have_changed() {
    let emu = emulator(36, 1033);
    let w = Workdir::new();
    let n = 1500;
    let version = |v: &dyn Fn(usize) -> u32| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("V-{i:05}"), format!("v{}", v(i))))
            .collect()
    };
    w.write("accounts.csv", csv(&version(&|_| 1)));
    w.write("m.toml", mapping("upsert"));
    let (out, _) = run(&w, &emu, &["--changed-only"]);
    out.expect_code(0);
    w.write("accounts.csv", csv(&version(&|_| 2)));
    emu.set_faults(FaultsConfig {
        latency_ms: 40,
        ..FaultsConfig::default()
    });
    let mut args = vec![
        "run",
        "m.toml",
        "--changed-only",
        "--batch-size",
        "20",
        "--concurrency",
        "4",
    ];
    args.extend_from_slice(FAST);
    let out = crate::attack::dvload_after_batches(&w, &emu, &args, 20, 9);
    assert_eq!(out.code, -1, "killed: {}{}", out.stdout, out.stderr);
    let at_v2 = accounts_by_key(&emu, false)
        .values()
        .filter(|v| *v == "v2")
        .count();
    assert!(at_v2 > 0 && at_v2 < n, "{at_v2} records at v2");
    emu.set_faults(FaultsConfig::default());
    let mixed = |i: usize| if i % 2 == 0 { 1 } else { 3 };
    w.write("accounts.csv", csv(&version(&mixed)));
    let (out, report) = run(&w, &emu, &["--changed-only"]);
    out.expect_code(0)
        .stdout_has("was killed before it recorded what it sent to accounts");
    assert_eq!(report.written, n as u64);
    let expected: BTreeMap<String, String> = version(&mixed)
        .into_iter()
        .map(|(k, v)| (k.to_lowercase(), v))
        .collect();
    assert_eq!(accounts_by_key(&emu, false), expected);
    // The next run trusts the index again.
    let (out, report) = run(&w, &emu, &["--changed-only"]);
    out.expect_code(0);
    assert_eq!((report.written, report.stat("unchanged")), (0, n as u64));
}

/// Item 6: the state directory full mid-run. dvload exited 2 ("nothing was sent") while its
/// report said 4 and 0 written, with hundreds of records on the server; the resume wrote some of
/// them twice. Now the run stops sending at the first failed ledger write, exits 4 as its report
/// says, names what is uncertain, and the resume (space freed) writes every row once. The full
/// disk is a file-size limit (`ulimit -f`, SIGXFSZ ignored: writes fail with EFBIG).
#[test]
fn a_full_state_directory_stops_the_run_truthfully_and_the_resume_writes_each_row_once() {
    let emu = emulator(37, 1033);
    let w = Workdir::new();
    let n = 3000;
    let rows = numbered("F", n, 5);
    w.write("accounts.csv", csv(&rows));
    // Keyless creates: each has its own ledger record (what undo deletes), so the ledger grows.
    w.write("m.toml", KEYLESS);
    let bin = env!("CARGO_BIN_EXE_dvload");
    let script = format!(
        "trap '' XFSZ; ulimit -f 1500; exec {bin} run m.toml --state st --report report.json \
         --batch-size 50 --concurrency 2 --retry-base-ms 5"
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &script]).current_dir(w.path());
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    let full = cmd.output().expect("sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&full.stdout).into_owned(),
        String::from_utf8_lossy(&full.stderr).into_owned(),
    );
    assert_eq!(full.status.code(), Some(4), "{stdout}{stderr}");
    let report = Report::load(&w, "report.json");
    assert_eq!(report.stat("exit_code"), 4);
    assert!(stderr.contains("cannot record"), "{stderr}");
    assert!(
        stderr.contains("is the disk full, or the file larger than this process may write?"),
        "says what to check: {stderr}"
    );
    let on_server = emu.state.count("account");
    assert!(on_server > 0 && on_server < n, "{on_server}");
    let (out, report) = run(
        &w,
        &emu,
        &["--state", "st", "--resume", "--batch-size", "50"],
    );
    out.expect_code(0);
    assert_eq!(report.rejected, 0);
    let mut seen = std::collections::BTreeSet::new();
    for r in emu.state.rows("account") {
        let number = r.fields["accountnumber"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(seen.insert(number.clone()), "{number} written twice");
    }
    assert_eq!(seen.len(), n);
}
