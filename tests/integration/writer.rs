//! `dvload run` for real: the built binary against the in-process emulator on 127.0.0.1, with
//! faults. After every run: read = written + rejected + skipped in the report, every written row
//! is in the emulator exactly once, and every source row is written, rejected or skipped exactly
//! once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use dataverse_emulator::{Config, FaultsConfig, LimitsConfig, Record};
use serde_json::Value;

use crate::support::{Emu, Output, RejectRow, Report, Workdir, read_rejects_csv, repo, rt};

/// Small retry delays and enough attempts that injected faults never exhaust them.
const FAST: &[&str] = &["--retry-base-ms", "5", "--max-attempts", "30"];

/// `accounts.csv` with `n` rows: `A-00001,Company 00001,1` ...; `name(i)` may replace a name.
/// Writes `accounts.csv` with `n` rows; a row for which `refused` holds has a negative number
/// of employees, which only the service refuses (the column's range is not the mapping's).
fn write_accounts(w: &Workdir, n: usize, refused: impl Fn(usize) -> bool) {
    let mut csv = String::from("Account No,Company,Employees\n");
    for i in 1..=n {
        let employees = if refused(i) {
            format!("-{i}")
        } else {
            i.to_string()
        };
        csv.push_str(&format!("A-{i:05},Company {i:05},{employees}\n"));
    }
    w.write("accounts.csv", csv);
}

/// A mapping of `accounts.csv`; `keyed` upserts/creates by the alternate key accountnumber,
/// otherwise accountnumber is an ordinary column (a create is then a POST).
fn accounts_mapping(operation: &str, keyed: bool) -> String {
    let (key, column) = if keyed {
        ("key = { accountnumber = \"Account No\" }\n", "")
    } else {
        ("", "accountnumber = \"Account No\"\n")
    };
    format!(
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n{key}\n\
         [fields]\nname = \"Company\"\nnumberofemployees = {{ from = \"Employees\", type = \"int\" }}\n{column}"
    )
}

/// Runs `dvload run m.toml` against `emu` with a report and a rejects file.
fn run(w: &Workdir, emu: &Emu, extra: &[&str]) -> (Output, Report) {
    let mut args = vec![
        "run",
        "m.toml",
        "--report",
        "report.json",
        "--rejects",
        "rejects.csv",
    ];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    let out = w.dvload_env(&args, &emu.env());
    assert!(
        w.path().join("report.json").exists(),
        "no report\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    let report = Report::load(w, "report.json");
    (out, report)
}

fn text<'a>(r: &'a Record, column: &str) -> Option<&'a str> {
    r.fields.get(column).and_then(Value::as_str)
}

/// The source row an account came from ("Company 00042" is row 42).
fn row_of(r: &Record) -> u64 {
    let number = text(r, "accountnumber").expect("accountnumber");
    let row: u64 = number.trim_start_matches("A-").parse().expect("A-nnnnn");
    if let Some(name) = text(r, "name") {
        assert_eq!(name, format!("Company {row:05}"), "{r:?}");
    }
    assert_eq!(r.fields.get("numberofemployees"), Some(&Value::from(row)));
    row
}

/// Checks the invariants of a run of `n` generated account rows (nothing skipped) and returns
/// the rows written and the rejects.
#[track_caller]
fn check_accounts(
    emu: &Emu,
    w: &Workdir,
    report: &Report,
    n: u64,
) -> (BTreeSet<u64>, Vec<RejectRow>) {
    let rows = emu.state.rows("account");
    let mut written = BTreeSet::new();
    for r in &rows {
        let row = row_of(r);
        assert!(written.insert(row), "row {row} is in Dataverse twice");
    }
    assert_eq!(
        rows.len() as u64,
        report.written,
        "the report's written rows are all in Dataverse, once"
    );
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(
        rejects.len() as u64,
        report.rejected,
        "every rejected row is in the rejects file"
    );
    let mut seen = written.clone();
    for r in &rejects {
        assert!(
            seen.insert(r.row),
            "row {} is both written and rejected, or rejected twice",
            r.row
        );
    }
    assert_eq!(report.skipped, 0);
    assert_eq!(report.read, n);
    assert_eq!(
        seen,
        (1..=n).collect::<BTreeSet<_>>(),
        "every row ends written or rejected"
    );
    (written, rejects)
}

fn emulator_with_faults(faults: FaultsConfig) -> Emu {
    Emu::start_with(Config {
        seed: 7,
        faults,
        ..Config::default()
    })
}

// ---------------------------------------------------------------------------------------------
// 1. The bundled samples.

fn sample_rows(name: &str, delimiter: u8) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(repo().join("samples").join(name))
        .unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(|v| v.trim().to_string()))
                .collect()
        })
        .collect()
}

/// Asserts that a stored value is what the source should have produced (`None`: empty/null).
#[track_caller]
fn same(r: &Record, column: &str, expected: Option<Value>, context: &str) {
    let actual = r.fields.get(column).filter(|v| !v.is_null());
    match (&expected, actual) {
        (Some(Value::Number(e)), Some(Value::Number(a))) => assert!(
            (e.as_f64().unwrap() - a.as_f64().unwrap()).abs() < 1e-6,
            "{context}: {column} is {a}, expected {e}"
        ),
        _ => assert_eq!(actual, expected.as_ref(), "{context}: {column}"),
    }
}

fn nonempty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

fn dmy(s: &str) -> Option<Value> {
    let parts: Vec<&str> = nonempty(s)?.split('/').collect();
    Some(Value::from(format!(
        "{}-{}-{}",
        parts[2], parts[1], parts[0]
    )))
}

fn yes_no(s: &str, default: bool) -> Value {
    Value::from(match s.to_lowercase().as_str() {
        "" => default,
        "yes" | "true" | "y" | "1" => true,
        "no" | "false" | "n" | "0" => false,
        other => panic!("not a bool: {other}"),
    })
}

fn choice(label: &str, map: &[(&str, i64)]) -> Option<Value> {
    let label = nonempty(label)?;
    let (_, v) = map
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(label))
        .unwrap_or_else(|| panic!("unknown label {label}"));
    Some(Value::from(*v))
}

#[test]
fn every_bundled_sample_loads_and_reads_back_identical() {
    let emu = Emu::start();
    let w = Workdir::new();
    let m = |name: &str| repo().join("mappings").join(name).display().to_string();
    let (a, c, l) = (m("accounts.toml"), m("contacts.toml"), m("leads.toml"));
    // The ledger in the test's directory, not beside the repository's mappings.
    let mut args = vec![
        "run",
        &a,
        &c,
        &l,
        "--report",
        "report.json",
        "--state",
        ".dvload",
    ];
    args.extend_from_slice(FAST);
    let out = w.dvload_env(&args, &emu.env());
    out.expect_code(1);
    let report = Report::load(&w, "report.json");
    let jobs = report.json["jobs"].as_array().unwrap().clone();
    let job = |i: usize, k: &str| jobs[i][k].as_u64().unwrap();

    // Accounts.
    const INDUSTRY: &[(&str, i64)] = &[
        ("Accounting", 1),
        ("Agriculture", 2),
        ("Brokers", 4),
        ("Business Services", 6),
        ("Consulting", 7),
        ("Design", 9),
        ("Entertainment Retail", 14),
        ("Financial", 16),
        ("Food and Tobacco Processing", 17),
        ("Insurance", 20),
        ("Legal Services", 21),
        ("Transportation", 30),
        ("Utility Creation and Distribution", 31),
        ("Wholesale", 33),
    ];
    let source = sample_rows("accounts.csv", b',');
    let bad: BTreeSet<u64> = [137, 412, 655, 873, 1044].into();
    let rejects = read_rejects_csv(&w.path().join("accounts.rejects.csv"), b',');
    assert_eq!(
        rejects.iter().map(|r| r.row).collect::<BTreeSet<_>>(),
        bad,
        "{rejects:?}"
    );
    assert_eq!(rejects.len(), bad.len());
    assert_eq!(
        (
            job(0, "read"),
            job(0, "written"),
            job(0, "rejected"),
            job(0, "skipped")
        ),
        (source.len() as u64, source.len() as u64 - 5, 5, 0)
    );
    let accounts = emu.state.rows("account");
    assert_eq!(accounts.len(), source.len() - bad.len());
    let by_number: HashMap<String, &Record> = accounts
        .iter()
        .map(|r| (text(r, "accountnumber").unwrap().to_string(), r))
        .collect();
    assert_eq!(
        by_number.len(),
        accounts.len(),
        "account numbers are unique"
    );
    for (i, row) in source.iter().enumerate() {
        let n = i as u64 + 1;
        let number = &row["Account No"];
        if bad.contains(&n) {
            assert!(
                !by_number.contains_key(number),
                "rejected row {n} was written"
            );
            continue;
        }
        let r = by_number
            .get(number)
            .unwrap_or_else(|| panic!("account row {n} ({number}) is missing"));
        let ctx = format!("accounts row {n}");
        same(r, "name", Some(Value::from(row["Company"].as_str())), &ctx);
        let revenue = nonempty(&row["Revenue"])
            .map(|s| Value::from(s.replace(',', "").parse::<f64>().unwrap()));
        same(r, "revenue", revenue, &ctx);
        let employees = nonempty(&row["Employees"])
            .filter(|s| !["n/a", "-"].contains(&s.to_lowercase().as_str()))
            .map(|s| Value::from(s.parse::<i64>().unwrap()));
        same(r, "numberofemployees", employees, &ctx);
        same(r, "industrycode", choice(&row["Industry"], INDUSTRY), &ctx);
        same(r, "new_customersince", dmy(&row["Customer Since"]), &ctx);
        same(
            r,
            "creditonhold",
            Some(yes_no(&row["Credit Hold"], false)),
            &ctx,
        );
        let country = nonempty(&row["Country"]).unwrap_or("United Kingdom");
        same(r, "address1_country", Some(Value::from(country)), &ctx);
        same(
            r,
            "address1_city",
            nonempty(&row["City"]).map(Value::from),
            &ctx,
        );
        same(
            r,
            "emailaddress1",
            nonempty(&row["Email"]).map(Value::from),
            &ctx,
        );
        match nonempty(&row["Parent No"]) {
            Some(parent) => {
                let target = by_number[parent];
                assert_eq!(
                    r.lookup("parentaccountid"),
                    Some((target.id, "account")),
                    "{ctx}: _parentaccountid_value points at {parent}"
                );
            }
            None => assert_eq!(r.lookup("parentaccountid"), None, "{ctx}"),
        }
    }

    // Contacts.
    const METHOD: &[(&str, i64)] = &[
        ("Any", 1),
        ("Email", 2),
        ("Phone", 3),
        ("Fax", 4),
        ("Mail", 5),
    ];
    const INTERESTS: &[(&str, i64)] = &[
        ("Sports", 1),
        ("Music", 2),
        ("Travel", 3),
        ("Cooking", 4),
        ("Technology", 5),
        ("Reading", 6),
    ];
    let source = sample_rows("contacts.csv", b';');
    let bad: BTreeSet<u64> = [318, 1207, 1650, 2111].into();
    let rejects = read_rejects_csv(&w.path().join("contacts.rejects.csv"), b';');
    assert_eq!(rejects.iter().map(|r| r.row).collect::<BTreeSet<_>>(), bad);
    assert_eq!(rejects.len(), bad.len());
    let r318 = rejects.iter().find(|r| r.row == 318).unwrap();
    assert_eq!(
        r318.error,
        "Dataverse 404 (0x80040217): A record with the specified key values does not exist in account entity",
        "row 318: the lookup's account ACC-99999 does not exist"
    );
    assert_eq!(r318.fields["Account No"], "ACC-99999");
    assert_eq!(
        (
            job(1, "read"),
            job(1, "written"),
            job(1, "rejected"),
            job(1, "skipped")
        ),
        (source.len() as u64, source.len() as u64 - 4, 4, 0)
    );
    let contacts = emu.state.rows("contact");
    assert_eq!(contacts.len(), source.len() - bad.len());
    let by_email: HashMap<String, &Record> = contacts
        .iter()
        .map(|r| (text(r, "emailaddress1").unwrap().to_string(), r))
        .collect();
    assert_eq!(by_email.len(), contacts.len());
    for (i, row) in source.iter().enumerate() {
        let n = i as u64 + 1;
        if bad.contains(&n) {
            assert!(
                !by_email.contains_key(&row["Email"]),
                "rejected contact {n} was written"
            );
            continue;
        }
        let r = by_email
            .get(&row["Email"])
            .unwrap_or_else(|| panic!("contact row {n} is missing"));
        let ctx = format!("contacts row {n}");
        same(
            r,
            "firstname",
            nonempty(&row["First Name"]).map(Value::from),
            &ctx,
        );
        same(
            r,
            "lastname",
            Some(Value::from(row["Last Name"].as_str())),
            &ctx,
        );
        same(
            r,
            "jobtitle",
            nonempty(&row["Job Title"]).map(Value::from),
            &ctx,
        );
        same(
            r,
            "birthdate",
            nonempty(&row["Birth Date"]).map(Value::from),
            &ctx,
        );
        same(
            r,
            "gendercode",
            choice(&row["Gender"], &[("Male", 1), ("Female", 2)]),
            &ctx,
        );
        same(
            r,
            "preferredcontactmethodcode",
            choice(&row["Preferred Contact"], METHOD),
            &ctx,
        );
        let interests = nonempty(&row["Interests"]).map(|s| {
            let values: Vec<String> = s
                .split('|')
                .map(|l| choice(l.trim(), INTERESTS).unwrap().to_string())
                .collect();
            Value::from(values.join(","))
        });
        same(r, "new_interests", interests, &ctx);
        same(
            r,
            "donotemail",
            Some(yes_no(&row["Do Not Email"], false)),
            &ctx,
        );
        let account = nonempty(&row["Account No"]).map(|number| {
            let account = by_number
                .get(number)
                .unwrap_or_else(|| panic!("{ctx}: its account {number} is not loaded"));
            (account.id, "account")
        });
        assert_eq!(
            r.lookup("parentcustomerid"),
            account,
            "{ctx}: _parentcustomerid_value"
        );
    }

    // Leads.
    let text_lines = std::fs::read_to_string(repo().join("samples/leads.jsonl")).unwrap();
    let lines: Vec<&str> = text_lines.lines().collect();
    let bad: BTreeSet<u64> = [77, 191, 333, 468].into();
    let rejects: Vec<Value> = std::fs::read_to_string(w.path().join("leads.rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rejects
            .iter()
            .map(|r| r["row"].as_u64().unwrap())
            .collect::<BTreeSet<_>>(),
        bad
    );
    assert_eq!(rejects.len(), bad.len());
    assert_eq!(
        (
            job(2, "read"),
            job(2, "written"),
            job(2, "rejected"),
            job(2, "skipped")
        ),
        (lines.len() as u64, lines.len() as u64 - 4, 4, 0)
    );
    let leads = emu.state.rows("lead");
    assert_eq!(leads.len(), lines.len() - bad.len());
    let key = |subject: &str, email: Option<&str>, amount: Option<f64>| {
        format!(
            "{subject}|{email:?}|{:?}",
            amount.map(|a| (a * 100.0).round() as i64)
        )
    };
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for r in &leads {
        let k = key(
            text(r, "subject").unwrap(),
            text(r, "emailaddress1"),
            r.fields.get("estimatedamount").and_then(Value::as_f64),
        );
        *stored.entry(k).or_default() += 1;
    }
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if bad.contains(&(i as u64 + 1)) {
            continue;
        }
        let v: Value = serde_json::from_str(line).unwrap();
        let k = key(
            v["topic"].as_str().unwrap().trim(),
            v["person"]["email"]
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            v["estimated_value"].as_f64(),
        );
        *expected.entry(k).or_default() += 1;
    }
    assert_eq!(
        stored, expected,
        "every good lead once, with its topic, email and value"
    );
    let ids: BTreeSet<_> = leads.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), leads.len());
    assert_eq!(
        report.read,
        job(0, "read") + job(1, "read") + job(2, "read")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Dataverse's own per-row errors.

#[test]
fn per_row_rejects_carry_dataverses_error_and_the_batch_goes_on() {
    let emu = Emu::start();
    let w = Workdir::new();
    // Only Dataverse knows that a negative number of employees is out of the column's range.
    write_accounts(&w, 30, |i| i == 7 || i == 23);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(1);
    // Rows 7 and 23 carry a name that is not "Company nnnnn": check them apart.
    let mut rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    rejects.sort_by_key(|r| r.row);
    assert_eq!(rejects.iter().map(|r| r.row).collect::<Vec<_>>(), [7, 23]);
    for r in &rejects {
        let expected = format!(
            "Dataverse 400 (0x8004431a): A validation error occurred.  The value -{} of 'numberofemployees' \
             on record of type 'account' is outside the valid range.",
            r.row
        );
        assert!(r.error.starts_with(&expected), "{}", r.error);
        assert_eq!(
            r.fields["Employees"],
            format!("-{}", r.row),
            "the row is kept as it was"
        );
    }
    let (written, _) = check_accounts(&emu, &w, &report, 30);
    assert_eq!(
        written.len(),
        28,
        "the other rows of the same batches are written"
    );
    assert_eq!(report.json["exit_code"], 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Tokens that expire or are revoked during the run.

#[test]
fn tokens_expiring_during_the_run_are_refreshed() {
    let emu = emulator_with_faults(FaultsConfig {
        latency_ms: 150,
        ..FaultsConfig::default()
    });
    emu.set_token_lifetime(2);
    let w = Workdir::new();
    write_accounts(&w, 300, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "5", "--concurrency", "2"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 300);
    assert_eq!(report.written, 300);
    let stats = emu.stats();
    assert!(
        stats.tokens_issued >= 3,
        "the run outlived several tokens: {stats:?}\n{}",
        out.stdout
    );
}

#[test]
fn revoked_tokens_are_refreshed_once_and_the_batch_resent() {
    let emu = emulator_with_faults(FaultsConfig {
        revoke_rate: 0.1,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "5"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 200);
    let stats = emu.stats();
    assert!(
        stats.fault_revoked > 0 && stats.unauthorized > 0,
        "{stats:?}"
    );
    assert!(stats.tokens_issued > 1, "{stats:?}");
}

#[test]
fn all_tokens_revoked_mid_run_means_one_refresh_and_everything_written() {
    let emu = emulator_with_faults(FaultsConfig {
        latency_ms: 100,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    // Revoke every token once the run has sent a few batches.
    let revoker = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let start = std::time::Instant::now();
            while emu.stats().batches < 3 && start.elapsed() < std::time::Duration::from_secs(20) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            emu.revoke_all_tokens();
            emu.stats().batches
        });
        let result = run(&w, &emu, &["--batch-size", "5", "--concurrency", "2"]);
        (result, handle.join().unwrap())
    });
    let ((out, report), batches_at_revocation) = revoker;
    out.expect_code(0);
    assert!(batches_at_revocation < 40, "revoked before the end");
    check_accounts(&emu, &w, &report, 200);
    let stats = emu.stats();
    assert!(stats.unauthorized > 0, "{stats:?}");
    assert_eq!(
        stats.tokens_issued, 2,
        "one refresh for all the refused requests: {stats:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4.–7. Throttling, server errors, dropped connections and slow answers.

#[test]
fn storms_of_429_with_retry_after_are_waited_out() {
    let emu = emulator_with_faults(FaultsConfig {
        throttle_rate: 0.1,
        storm_rate: 0.05,
        storm_length: 4,
        throttle_retry_after_secs: 1,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 200);
    assert!(report.stat("throttle_waits") > 0, "{}", report.json);
    let stats = emu.stats();
    assert!(
        stats.fault_throttle + stats.fault_storm_429 > 0,
        "{stats:?}"
    );
}

#[test]
fn server_errors_are_retried() {
    let emu = emulator_with_faults(FaultsConfig {
        fail_rate: 0.3,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 200);
    assert!(report.stat("retries") > 0, "{}", report.json);
    let s = emu.stats();
    assert!(s.fault_500 + s.fault_502 + s.fault_503 > 0, "{s:?}");
}

fn resets_exactly_once(operation: &str) {
    let emu = emulator_with_faults(FaultsConfig {
        reset_rate: 0.3,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping(operation, true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 200);
    assert_eq!(report.written, 200);
    let s = emu.stats();
    assert!(s.fault_reset_before > 0 && s.fault_reset_after > 0, "{s:?}");
    assert!(report.stat("retries") > 0);
    if operation == "create" {
        // The only operations that can fail here are the create-only PATCHes resent after a lost
        // answer that had been applied: their 412 is the row written.
        assert!(s.operations_failed > 0, "a 412 after a lost attempt: {s:?}");
    }
}

#[test]
fn connection_resets_with_upsert_write_every_row_once() {
    resets_exactly_once("upsert");
}

#[test]
fn connection_resets_with_create_by_key_write_every_row_once() {
    // create + key = PATCH with If-None-Match: *; the 412 after a lost attempt is the row written.
    resets_exactly_once("create");
}

#[test]
fn connection_resets_with_delete_remove_every_row_once() {
    let emu = Emu::start();
    let w = Workdir::new();
    write_accounts(&w, 150, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    run(&w, &emu, &["--batch-size", "10"]).0.expect_code(0);
    assert_eq!(emu.state.count("account"), 150);
    emu.set_faults(FaultsConfig {
        reset_rate: 0.3,
        ..FaultsConfig::default()
    });
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"delete\"\n\
         key = { accountnumber = \"Account No\" }\n",
    );
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    assert_eq!(
        (report.read, report.written, report.rejected),
        (150, 150, 0)
    );
    assert_eq!(emu.state.count("account"), 0, "every row deleted");
    let s = emu.stats();
    assert!(s.fault_reset_after > 0, "{s:?}");
    assert!(report.stat("retries") > 0);
}

#[test]
fn rows_that_never_get_through_are_rejected_after_max_attempts() {
    let faults = FaultsConfig {
        fail_rate: 0.5,
        ..FaultsConfig::default()
    };
    // A seed whose first draw (WhoAmI's) is clean: the set-up must get through for the rows to
    // meet the faults.
    let seed = (0..)
        .find(|&seed| {
            dataverse_emulator::faults::Faults::new(faults.clone(), seed)
                .draw()
                .fault
                == dataverse_emulator::faults::Fault::None
        })
        .unwrap();
    let emu = Emu::start_with(Config {
        seed,
        faults,
        ..Config::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 100, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let mut args = vec![
        "run",
        "m.toml",
        "--report",
        "report.json",
        "--rejects",
        "rejects.csv",
        "--batch-size",
        "5",
        "--retry-base-ms",
        "1",
        "--max-attempts",
        "2",
    ];
    args.push("--concurrency");
    args.push("2");
    let out = w.dvload_env(&args, &emu.env());
    out.expect_code(1);
    let report = Report::load(&w, "report.json");
    let (_, rejects) = check_accounts(&emu, &w, &report, 100);
    assert!(!rejects.is_empty());
    for r in &rejects {
        assert!(
            r.error.starts_with("gave up after 2 attempts over ")
                && r.error.contains("Dataverse 50"),
            "row {}: {}",
            r.row,
            r.error
        );
    }
}

#[test]
fn slow_answers_past_the_timeout_are_retried_once_written() {
    let emu = emulator_with_faults(FaultsConfig {
        slow_rate: 0.2,
        slow_ms: 1500,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 100, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--timeout", "1"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 100);
    assert!(emu.stats().fault_slow > 0);
    assert!(report.stat("retries") > 0);
}

// ---------------------------------------------------------------------------------------------
// 8. A create without a key is never written twice.

/// dvload gives each keyless create its id (writer::ids): after a lost answer the create is sent
/// again with the same id, and the service's "duplicate key" answer is settled by reading that
/// id. Every row is written, once, and each record has the id dvload gave it. (Before ids, such
/// rows were rejected "outcome unknown": the one case that could write twice.)
#[test]
fn creates_without_a_key_are_resent_with_their_id_and_written_once() {
    let emu = emulator_with_faults(FaultsConfig {
        reset_rate: 0.3,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("create", false));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    assert!(
        emu.stats().fault_reset_after > 0,
        "some answers were lost after the write"
    );
    let mut in_dataverse = BTreeSet::new();
    for r in emu.state.rows("account") {
        let row = row_of(&r);
        assert!(in_dataverse.insert(row), "row {row} was created twice");
    }
    assert_eq!(in_dataverse, (1..=200).collect::<BTreeSet<u64>>());
    assert_eq!((report.read, report.written), (200, 200));
}

// ---------------------------------------------------------------------------------------------
// 9. Service protection limits.

#[test]
fn service_protection_limits_on_a_small_window_are_honoured() {
    let emu = Emu::start();
    emu.set_limits(LimitsConfig {
        window_secs: 1.0,
        max_requests: 5,
        ..LimitsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 150, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 150);
    assert!(emu.stats().throttled_requests > 0);
    assert!(report.stat("throttle_waits") > 0);
}

#[test]
fn the_concurrency_limit_is_honoured() {
    let emu = Emu::start();
    emu.set_limits(LimitsConfig {
        max_concurrent: 2,
        op_cost_ms: 5,
        ..LimitsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 80, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--concurrency", "4"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 80);
    assert!(emu.stats().throttled_concurrency > 0, "{:?}", emu.stats());
    assert!(report.stat("throttle_waits") > 0);
}

#[test]
fn the_execution_time_limit_is_honoured() {
    let emu = Emu::start();
    emu.set_limits(LimitsConfig {
        window_secs: 1.0,
        max_exec_ms: 150,
        op_cost_ms: 2,
        ..LimitsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 200, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 200);
    assert!(
        emu.stats().throttled_execution_time > 0,
        "{:?}",
        emu.stats()
    );
    assert!(report.stat("throttle_waits") > 0);
}

// ---------------------------------------------------------------------------------------------
// 10.–11. Stopping early and all-or-nothing batches.

#[test]
fn max_errors_counts_dataverses_rejects_and_rows_in_flight_end_rejected() {
    let emu = emulator_with_faults(FaultsConfig {
        latency_ms: 30,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    // Every fifth row is out of the column's range for Dataverse (the mapping does not know).
    write_accounts(&w, 300, |i| i % 5 == 0);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(
        &w,
        &emu,
        &[
            "--batch-size",
            "5",
            "--concurrency",
            "4",
            "--max-errors",
            "2",
        ],
    );
    out.expect_code(4).stderr_has("stopped early");
    assert!(report.read < 300, "stopped before the end: {}", report.json);
    let mut seen = BTreeSet::new();
    for r in emu.state.rows("account") {
        assert!(seen.insert(row_of(&r)));
    }
    assert_eq!(seen.len() as u64, report.written);
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects.len() as u64, report.rejected);
    for r in &rejects {
        assert!(seen.insert(r.row), "row {} twice", r.row);
        assert!(
            r.error.starts_with("Dataverse 400 (0x8004431a)") || r.error.starts_with("not "),
            "row {}: {}",
            r.row,
            r.error
        );
    }
    assert_eq!(seen.len() as u64, report.read);
    assert_eq!(
        seen,
        (1..=report.read).collect(),
        "the rows read are the first ones"
    );
}

#[test]
fn children_before_their_parents_in_the_same_file_are_sent_again_at_the_end() {
    let emu = Emu::start();
    let w = Workdir::new();
    let mut csv = String::from("Account No,Company,Employees,Parent No\n");
    for i in 1..=60 {
        // Rows 1-20 point at rows 41-60, which come later in the file.
        let parent = if i <= 20 {
            format!("A-{:05}", i + 40)
        } else {
            String::new()
        };
        csv.push_str(&format!("A-{i:05},Company {i:05},{i},{parent}\n"));
    }
    w.write("accounts.csv", csv);
    w.write(
        "m.toml",
        accounts_mapping("upsert", true)
            + "parentaccountid = { lookup = \"accounts\", key = { accountnumber = \"Parent No\" } }\n",
    );
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--concurrency", "1"]);
    out.expect_code(0).stdout_has("were sent again at the end");
    check_accounts(&emu, &w, &report, 60);
    let rows = emu.state.rows("account");
    let id_of: HashMap<u64, uuid::Uuid> = rows.iter().map(|r| (row_of(r), r.id)).collect();
    for r in &rows {
        let row = row_of(r);
        let expected = (row <= 20).then(|| (id_of[&(row + 40)], "account"));
        assert_eq!(r.lookup("parentaccountid"), expected, "row {row}");
    }
}

#[test]
fn atomic_batches_with_children_before_their_parents_are_deferred_whole() {
    let emu = Emu::start();
    let w = Workdir::new();
    let mut csv = String::from("Account No,Company,Employees,Parent No\n");
    for i in 1..=40 {
        // Row 3 points at row 35, later in the file; row 13 at an account that never comes.
        let parent = match i {
            3 => "A-00035",
            13 => "A-99999",
            _ => "",
        };
        csv.push_str(&format!("A-{i:05},Company {i:05},{i},{parent}\n"));
    }
    w.write("accounts.csv", csv);
    w.write(
        "m.toml",
        accounts_mapping("upsert", true)
            + "parentaccountid = { lookup = \"accounts\", key = { accountnumber = \"Parent No\" } }\n",
    );
    let (out, report) = run(
        &w,
        &emu,
        &["--batch-size", "10", "--concurrency", "1", "--atomic"],
    );
    out.expect_code(1);
    let (written, rejects) = check_accounts(&emu, &w, &report, 40);
    assert_eq!(
        written,
        (1..=10).chain(21..=40).collect(),
        "row 3's change set waited for its parent and was written whole"
    );
    for r in &rejects {
        assert!(
            r.error.contains("Dataverse 404 (0x80040217)"),
            "row {}: {}",
            r.row,
            r.error
        );
    }
    let rows = emu.state.rows("account");
    let parent = rows.iter().find(|r| row_of(r) == 35).unwrap().id;
    let child = rows.iter().find(|r| row_of(r) == 3).unwrap();
    assert_eq!(child.lookup("parentaccountid"), Some((parent, "account")));
}

#[test]
fn atomic_batches_under_faults_are_written_exactly_once() {
    let emu = emulator_with_faults(FaultsConfig {
        fail_rate: 0.15,
        reset_rate: 0.15,
        throttle_rate: 0.05,
        throttle_retry_after_secs: 1,
        ..FaultsConfig::default()
    });
    let w = Workdir::new();
    write_accounts(&w, 150, |_| false);
    w.write("m.toml", accounts_mapping("create", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--atomic"]);
    out.expect_code(0);
    check_accounts(&emu, &w, &report, 150);
    assert!(report.stat("retries") > 0);
}

#[test]
fn max_errors_stops_early_with_exit_4_and_counts_that_add_up() {
    let emu = Emu::start();
    let w = Workdir::new();
    let mut csv = String::from("Account No,Company,Employees\n");
    for i in 1..=300 {
        let employees = if i % 3 == 0 {
            "many".to_string()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("A-{i:05},Company {i:05},{employees}\n"));
    }
    w.write("accounts.csv", csv);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--max-errors", "2"]);
    out.expect_code(4).stderr_has("stopped early");
    assert!(report.read < 300, "stopped before the end: {}", report.json);
    assert!(report.rejected >= 3);
    let rows = emu.state.rows("account");
    assert_eq!(rows.len() as u64, report.written);
    let mut seen = BTreeSet::new();
    for r in &rows {
        assert!(seen.insert(row_of(r)));
    }
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects.len() as u64, report.rejected);
    for r in &rejects {
        assert!(seen.insert(r.row), "row {} twice", r.row);
    }
    assert_eq!(seen.len() as u64, report.read);
    assert_eq!(report.json["exit_code"], 4);
}

#[test]
fn atomic_batches_are_all_or_nothing() {
    let emu = Emu::start();
    let w = Workdir::new();
    write_accounts(&w, 50, |i| i == 15);
    w.write("m.toml", accounts_mapping("upsert", true));
    let (out, report) = run(&w, &emu, &["--batch-size", "10", "--atomic"]);
    out.expect_code(1);
    let (written, rejects) = check_accounts(&emu, &w, &report, 50);
    assert_eq!(
        rejects.iter().map(|r| r.row).collect::<BTreeSet<_>>(),
        (11..=20).collect(),
        "the whole batch of row 15 is rejected"
    );
    assert_eq!(
        written,
        (1..=10).chain(21..=50).collect(),
        "the other batches are written"
    );
    let culprit = rejects.iter().find(|r| r.row == 15).unwrap();
    assert!(
        culprit.error.starts_with("Dataverse 400 (0x8004431a)"),
        "{}",
        culprit.error
    );
    for r in rejects.iter().filter(|r| r.row != 15) {
        assert!(
            r.error.contains("rolled back") && r.error.contains("0x8004431a"),
            "row {}: {}",
            r.row,
            r.error
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Secrets never leak.

fn token_from(emu: &Emu) -> String {
    use dataverse_emulator::defaults;
    let base = emu.base_url().to_string();
    rt().block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let scope = format!("{base}/.default");
        let resp = reqwest::Client::new()
            .post(format!("{base}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", defaults::CLIENT_ID),
                ("client_secret", defaults::CLIENT_SECRET),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    })
}

#[test]
fn no_secret_or_token_in_any_output_even_at_trace_level() {
    let emu = emulator_with_faults(FaultsConfig {
        fail_rate: 0.1,
        revoke_rate: 0.05,
        ..FaultsConfig::default()
    });
    let token = token_from(&emu);
    assert!(token.starts_with("eyJ"), "the emulator issues JWTs");
    let w = Workdir::new();
    write_accounts(&w, 40, |i| i == 3);
    w.write("m.toml", accounts_mapping("upsert", true));
    let mut args = vec![
        "--log-level",
        "trace",
        "run",
        "m.toml",
        "--report",
        "report.json",
        "--rejects",
        "rejects.csv",
        "--batch-size",
        "5",
    ];
    args.extend_from_slice(FAST);
    let mut env = emu.env();
    env.push(("RUST_LOG", "trace".into()));
    let out = w.dvload_env(&args, &env);
    out.expect_code(1);
    assert!(
        out.stderr.contains("TRACE") || out.stderr.contains("DEBUG"),
        "trace logs are on"
    );
    let mut texts = vec![
        ("stdout", out.stdout.clone()),
        ("stderr", out.stderr.clone()),
        ("report", w.read("report.json")),
        ("rejects", w.read("rejects.csv")),
    ];
    // A wrong secret on top: the error path must not echo it either.
    let wrong = w.dvload_env(
        &["--log-level", "trace", "run", "m.toml"],
        &emu.env_with(&[
            ("AZURE_CLIENT_SECRET", "wrong-emulator-secret-value"),
            ("RUST_LOG", "trace"),
        ]),
    );
    wrong.expect_code(3);
    texts.push(("stdout (wrong secret)", wrong.stdout.clone()));
    texts.push(("stderr (wrong secret)", wrong.stderr.clone()));
    // JSON logs carry fields a text formatter might shorten.
    let json = w.dvload_env(
        &[
            "--log-level",
            "trace",
            "--log-format",
            "json",
            "run",
            "m.toml",
            "--rejects",
            "rejects-json.csv",
            "--retry-base-ms",
            "5",
        ],
        &emu.env_with(&[("RUST_LOG", "trace"), ("DVLOAD_FAIL_ON", "rejects")]),
    );
    json.expect_code(1);
    assert!(
        json.stderr.contains("\"level\":\"TRACE\"") || json.stderr.contains("\"level\":\"DEBUG\"")
    );
    texts.push(("stdout (json logs)", json.stdout.clone()));
    texts.push(("stderr (json logs)", json.stderr.clone()));
    texts.push(("rejects (json logs)", w.read("rejects-json.csv")));
    for (what, text) in &texts {
        for secret in ["emulator-secret", "eyJ", &token[..40]] {
            assert!(!text.contains(secret), "{what} holds {secret:?}:\n{text}");
        }
    }
    Report::load(&w, "report.json");
}

// ---------------------------------------------------------------------------------------------
// 13. A wrong set-up: exit 3, and the message says which step to fix.

#[test]
fn wrong_credentials_exit_3_naming_the_step_to_fix() {
    let emu = Emu::start();
    let w = Workdir::new();
    write_accounts(&w, 3, |_| false);
    w.write("m.toml", accounts_mapping("upsert", true));
    let out = w.dvload_env(
        &["run", "m.toml"],
        &emu.env_with(&[("AZURE_CLIENT_SECRET", "not-the-secret")]),
    );
    out.expect_code(3)
        .stderr_has("AADSTS7000215")
        .stderr_has("The client secret is wrong")
        .stderr_has("AZURE_CLIENT_SECRET");
    let out = w.dvload_env(
        &["run", "m.toml"],
        &emu.env_with(&[("AZURE_TENANT_ID", "99999999-9999-9999-9999-999999999999")]),
    );
    out.expect_code(3)
        .stderr_has("AADSTS90002")
        .stderr_has("The tenant is wrong")
        .stderr_has("AZURE_TENANT_ID");
    let out = w.dvload_env(
        &["run", "m.toml"],
        &emu.env_with(&[("AZURE_CLIENT_ID", "99999999-9999-9999-9999-999999999999")]),
    );
    out.expect_code(3).stderr_has("AZURE_CLIENT_ID");
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    // With Entra, the token for an unknown environment is refused first ...
    let out = w.dvload_env(
        &["run", "m.toml"],
        &emu.env_with(&[("DATAVERSE_URL", &nowhere)]),
    );
    out.expect_code(3)
        .stderr_has("AADSTS500011")
        .stderr_has("nothing answers at DATAVERSE_URL");
    // ... and with a ready token, the environment itself cannot be reached.
    let token = token_from(&emu);
    let out = w.dvload_env(
        &["run", "m.toml"],
        &[
            ("DATAVERSE_URL", nowhere.as_str()),
            ("DATAVERSE_ACCESS_TOKEN", token.as_str()),
        ],
    );
    out.expect_code(3)
        .stderr_has(&format!("nothing answers at DATAVERSE_URL {nowhere}"))
        .stderr_has("check DATAVERSE_URL");
    assert_eq!(emu.state.count("account"), 0, "nothing was written");
    assert!(!Path::new(&w.path().join("accounts.rejects.csv")).exists());
}

// ---------------------------------------------------------------------------------------------
// A source that breaks in the middle: the rows before the break are still written.

#[test]
fn a_json_document_cut_short_mid_run_still_writes_the_rows_before_it() {
    let emu = Emu::start();
    let w = Workdir::new();
    let mut json = String::from("{\"value\":[");
    for i in 1..=25 {
        json.push_str(&format!(
            "{{\"no\":\"J-{i:03}\",\"name\":\"Company {i}\"}},"
        ));
    }
    json.push_str("{\"no\":\"J-026\",\"na"); // cut short
    w.write("a.json", json);
    w.write(
        "m.toml",
        "[source]\npath = \"a.json\"\nrecords = \"/value\"\n[target]\nentity_set = \"accounts\"\n\
         operation = \"upsert\"\nkey = { accountnumber = \"no\" }\n[fields]\nname = \"name\"\n",
    );
    let out = w.dvload_env(
        &["run", "m.toml", "--batch-size", "10", "--report", "r.json"],
        &emu.env(),
    );
    out.expect_code(2).stderr_has("the source is broken");
    assert_eq!(
        emu.state.count("account"),
        25,
        "all 25 rows before the break are written, including the last partial batch"
    );
    let report: serde_json::Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(
        (report["read"].as_u64(), report["written"].as_u64()),
        (Some(25), Some(25))
    );
}

// ---------------------------------------------------------------------------------------------
// Empty values by intent (issue 24): a nightly upsert of a partial extract erases nothing unless
// the mapping says so.

#[test]
fn an_empty_cell_keeps_the_column_unless_the_mapping_says_clear() {
    let emu = Emu::start();
    let w = Workdir::new();
    let mapping = |empty: &str| {
        format!(
            "[source]\npath = \"a.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
             key = {{ accountnumber = \"No\" }}\n{empty}\n[fields]\nname = \"Name\"\ntelephone1 = \"Phone\"\n\
             parentaccountid = {{ lookup = \"accounts\", key = {{ accountnumber = \"Parent\" }} }}\n"
        )
    };
    // The first night: every column filled.
    w.write(
        "a.csv",
        "No,Name,Phone,Parent\nP,Parent Ltd,,\nA,Alpha,+44 1,P\n",
    );
    w.write("m.toml", mapping(""));
    w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    let alpha = || {
        emu.state
            .rows("account")
            .into_iter()
            .find(|r| text(r, "accountnumber") == Some("A"))
            .unwrap()
    };
    assert_eq!(text(&alpha(), "telephone1"), Some("+44 1"));
    assert!(alpha().lookup("parentaccountid").is_some());
    // A partial extract: phone and parent empty. The default keeps both; validate says so.
    w.write("a.csv", "No,Name,Phone,Parent\nA,Alpha,,\n");
    w.dvload(&["validate", "m.toml"])
        .expect_code(0)
        .stdout_has("empty values leave every column as it is (empty = \"keep\", the default)");
    w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    assert_eq!(text(&alpha(), "telephone1"), Some("+44 1"), "kept");
    assert!(alpha().lookup("parentaccountid").is_some(), "kept");
    // Asked to clear the phone only: the dry run names it, and the run clears it alone.
    w.write(
        "m.toml",
        mapping("").replace(
            "telephone1 = \"Phone\"",
            "telephone1 = { from = \"Phone\", empty = \"clear\" }",
        ),
    );
    w.dvload(&["run", "m.toml", "--dry-run"]).expect_code(0).stdout_has(
        "an empty value clears telephone1 (empty = \"clear\"); the other fields' empty values leave their columns as they are",
    );
    w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    assert_eq!(
        alpha().fields.get("telephone1"),
        Some(&Value::Null),
        "cleared"
    );
    assert!(alpha().lookup("parentaccountid").is_some(), "kept");
    // The whole mapping clears: the lookup too.
    w.write("m.toml", mapping("empty = \"clear\""));
    w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    assert!(alpha().lookup("parentaccountid").is_none(), "cleared");
}

// ---------------------------------------------------------------------------------------------
// The exit policy a scheduler can use (issue 24): known rejects do not fail a night.

#[test]
fn a_night_fails_on_new_rejects_not_on_the_ones_it_had_before() {
    let emu = Emu::start();
    let w = Workdir::new();
    // 30 rows, two the service refuses (a negative number of employees).
    write_accounts(&w, 30, |i| i == 7 || i == 23);
    w.write("m.toml", accounts_mapping("upsert", true));
    let night = |extra: &[&str]| {
        let mut args = vec!["run", "m.toml", "--report", "report.json"];
        args.extend_from_slice(extra);
        w.dvload_env(&args, &emu.env())
    };
    // The first night: both are new.
    night(&[]).expect_code(1).stdout_has(
        "m.toml: 2 rejected: 0 known from earlier runs (the same row, for the same reason), 2 new -> fails the run: 2 new rejects",
    );
    // The second night, the same extract: the same two, known; the night is healthy.
    night(&[]).expect_code(0).stdout_has(
        "m.toml: 2 rejected: 2 known from earlier runs (the same row, for the same reason), 0 new -> does not fail the run (fail_on = new-rejects,rejects>10%)",
    );
    let report = Report::load(&w, "report.json");
    assert_eq!(report.json["exit_code"], 0);
    assert_eq!(
        report.json["jobs"][0]["rejects_known"], 2,
        "{}",
        report.json
    );
    assert_eq!(report.json["jobs"][0]["rejects_new"], 0);
    // Asked to fail on any reject, it does.
    night(&["--fail-on", "rejects"])
        .expect_code(1)
        .stdout_has("fails the run: 2 rows rejected (fail_on = rejects)");
    // A third row goes bad: one new reject fails the night.
    write_accounts(&w, 30, |i| i == 7 || i == 23 || i == 11);
    night(&[])
        .expect_code(1)
        .stdout_has("2 known from earlier runs (the same row, for the same reason), 1 new -> fails the run: 1 new reject");
    // The mapping may say what fails its runs; the command line wins over it.
    w.write(
        "m.toml",
        format!(
            "{}\n[run]\nfail_on = \"never\"\n",
            accounts_mapping("upsert", true)
        ),
    );
    write_accounts(&w, 30, |i| i == 7 || i == 23 || i == 11 || i == 12);
    night(&[])
        .expect_code(0)
        .stdout_has("does not fail the run (fail_on = never)");
    night(&["--fail-on", "new-rejects"]).expect_code(0);
    write_accounts(&w, 30, |i| i == 13);
    night(&["--fail-on", "new-rejects"]).expect_code(1);
    // Known rejects over the threshold still fail: a night broken the way the last one was.
    w.write("m.toml", accounts_mapping("upsert", true));
    write_accounts(&w, 30, |i| i <= 13);
    night(&["--fail-on", "rejects>12"]).expect_code(1);
    night(&[])
        .expect_code(1)
        .stdout_has("fails the run: 13 of 30 rows rejected (43.3%), more than 10%");
    // What is accepted, when the policy is not.
    night(&["--fail-on", "sometimes"])
        .expect_code(2)
        .stderr_has("'sometimes' is not a fail-on term; accepted: rejects, new-rejects, rejects>N, rejects>P%");
    w.write(
        "m.toml",
        format!(
            "{}\n[run]\nfail_on = \"rejects>lots\"\n",
            accounts_mapping("upsert", true)
        ),
    );
    night(&[])
        .expect_code(2)
        .stderr_has("m.toml:")
        .stderr_has("fail_on: 'rejects>lots': the limit must be a whole number");
}

// ---------------------------------------------------------------------------------------------
// The report a person looks at (issue 24).

#[test]
fn the_html_report_shows_counts_time_rejects_and_choices_and_loads_nothing() {
    let emu = Emu::start();
    let w = Workdir::new();
    write_accounts(&w, 300, |i| i % 50 == 0);
    w.write("m.toml", accounts_mapping("upsert", true));
    w.dvload_env(
        &[
            "run",
            "m.toml",
            "--report-html",
            "night.html",
            "--batch-size",
            "10",
        ],
        &emu.env(),
    )
    .expect_code(1)
    .stdout_has("HTML report written to night.html");
    let html = w.read("night.html");
    // A page that could not be written is found before anything is sent, not after.
    let before = emu.state.count("account");
    std::fs::create_dir(w.path().join("page")).unwrap();
    w.dvload_env(&["run", "m.toml", "--report-html", "page"], &emu.env())
        .expect_code(2)
        .stderr_has("--report-html page: is a directory")
        .stderr_has("nothing was sent");
    assert_eq!(emu.state.count("account"), before);
    for part in [
        "<title>dvload run #1</title>",
        "<b>300</b><span>read</span>",
        "<b>294</b><span>written</span>",
        "<b>6</b><span>rejected</span>",
        "rows per second",
        "batches in flight allowed",
        "is outside the valid range",
        "<span class=\"tag new\">new</span>",
        "row 50, row 100, row 150",
        "new-rejects,rejects&gt;10%",
    ] {
        assert!(html.contains(part), "{part} missing from the page");
    }
    for fetch in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(fetch), "the page fetches nothing: {fetch}");
    }
    // The same night again: the rejects are known; the ledger rebuilds the page of either run.
    w.dvload_env(
        &["run", "m.toml", "--report-html", "night2.html"],
        &emu.env(),
    )
    .expect_code(0);
    assert!(
        w.read("night2.html")
            .contains("<span class=\"tag known\">known</span>")
    );
    w.dvload(&[
        "runs",
        "show",
        "1",
        "--html",
        "first.html",
        "--state",
        ".dvload",
    ])
    .expect_code(0)
    .stdout_has("HTML report written to first.html");
    let first = w.read("first.html");
    assert!(first.contains("<b>6</b><span>rejected</span>"), "{first}");
    assert!(first.contains("Not recorded for this run"));
}
