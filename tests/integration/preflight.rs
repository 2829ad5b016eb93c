//! The check before the first write (`run` refuses a job that cannot succeed, sending nothing),
//! the refusals no row can escape during a run (one message, rows unsent), and `whoami` naming a
//! user without a security role. Faulty set-ups come from the emulator's config: roles without a
//! privilege, and `changes` that revoke rights or drop tables and columns after N batches.

use dataverse_emulator::Config;
use dataverse_emulator::config::{ChangeConfig, Right, TableColumnsConfig};

use crate::support::{Emulator, Workdir, accounts_mapping, read_rejects_csv};

/// `n` accounts, `Account No,Company`.
fn accounts_csv(n: u64) -> String {
    let mut csv = String::from("Account No,Company\n");
    for i in 1..=n {
        csv.push_str(&format!("ACC-{i:05},Company {i}\n"));
    }
    csv
}

/// `n` contacts, each pointing at account `i`.
fn contacts_csv(n: u64) -> String {
    let mut csv = String::from("Email,Last,Account\n");
    for i in 1..=n {
        csv.push_str(&format!("c{i}@example.com,Person {i},ACC-{i:05}\n"));
    }
    csv
}

const CONTACTS: &str = "[source]\npath = \"contacts.csv\"\n[target]\nentity_set = \"contacts\"\n\
    operation = \"upsert\"\nkey = { emailaddress1 = \"Email\" }\n[fields]\nlastname = \"Last\"\n\
    parentcustomerid_account = { lookup = \"accounts\", key = { accountnumber = \"Account\" } }\n";

/// A work directory with accounts.toml and contacts.toml, 300 rows each.
fn accounts_and_contacts() -> Workdir {
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(300));
    w.write("accounts.toml", accounts_mapping(""));
    w.write("contacts.csv", contacts_csv(300));
    w.write("contacts.toml", CONTACTS);
    w
}

fn without(config: &mut Config, table: &str, right: Right) {
    for p in &mut config.roles[0].privileges {
        if p.table == table {
            p.rights.retain(|r| *r != right);
        }
    }
}

#[test]
fn a_role_missing_append_to_account_stops_the_run_before_any_account_is_written() {
    // The bug this guards against: the accounts were written, then every contact was refused
    // (403), exit 3, with a hint to run `dvload whoami`, which passed.
    let mut config = Config::default();
    without(&mut config, "account", Right::AppendTo);
    let emu = Emulator::start(config);
    let w = accounts_and_contacts();
    let args = ["run", "accounts.toml", "contacts.toml", "--resume"];
    let out = w.dvload_env(&args, &emu.env());
    out.expect_code(3)
        .stderr_has("nothing sent: the check against the environment refused 1 of 2 mappings")
        .stderr_has("contacts.toml -> contacts (upsert): missing privileges: prvAppendToAccount (to be the target of lookup parentcustomerid_account)")
        .stderr_has("Security roles")
        .stdout_has("verdict      MISSING PRIVILEGES: prvAppendToAccount");
    assert_eq!(emu.running.stats().batches, 0, "nothing sent");
    assert_eq!(emu.running.state.count("account"), 0, "no account written");
    assert_eq!(emu.running.state.count("contact"), 0);
    assert!(
        !out.stdout.contains("accounts.toml -> accounts"),
        "a ready mapping is not reported:\n{}",
        out.stdout
    );
    // The refused run left nothing to resume: with the role fixed, the next run starts afresh.
    let fixed = Emulator::start(Config::default());
    let out = w.dvload_env(&args, &fixed.env());
    out.expect_code(0)
        .stdout_has("checked against the environment: 2 mappings ready");
    assert!(!out.stdout.contains("resuming"), "{}", out.stdout);
    assert_eq!(fixed.running.state.count("account"), 300);
    assert_eq!(fixed.running.state.count("contact"), 300);
}

#[test]
fn an_unknown_entity_set_stops_the_run_with_one_message_and_sends_nothing() {
    let emu = Emulator::start(Config::default());
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(50));
    w.write(
        "salesorders.toml",
        accounts_mapping("").replace("entity_set = \"accounts\"", "entity_set = \"salesorders\""),
    );
    let out = w.dvload_env(&["run", "salesorders.toml"], &emu.env());
    out.expect_code(2)
        .stderr_has("salesorders.toml -> salesorders (upsert): unknown entity set 'salesorders'");
    assert_eq!(
        out.stderr.matches("unknown entity set").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(emu.running.stats().batches, 0, "nothing sent");
    assert!(
        !w.path().join("accounts.rejects.csv").exists(),
        "no reject per row"
    );
}

#[test]
fn an_unknown_column_stops_the_run_before_sending() {
    let emu = Emulator::start(Config::default());
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(300));
    w.write(
        "accounts.toml",
        accounts_mapping("telephon1 = \"Company\"\n"),
    );
    let out = w.dvload_env(&["run", "accounts.toml"], &emu.env());
    out.expect_code(2)
        .stderr_has("unknown columns: 'telephon1' (did you mean 'telephone1'?)")
        .stdout_has("verdict      UNUSABLE");
    assert_eq!(emu.running.stats().batches, 0, "nothing sent");
    assert_eq!(emu.running.state.count("account"), 0);
}

#[test]
fn a_table_deleted_during_the_run_ends_its_job_with_one_message_and_leaves_its_rows_unsent() {
    // The bug this guards against: 404 0x80060888 for every row, a second pass "lookup target
    // not there yet", exit 1, and the cause only inside the rejects file.
    let config = Config {
        changes: vec![ChangeConfig {
            after_batches: 3,
            drop_tables: vec!["contact".into()],
            ..ChangeConfig::default()
        }],
        ..Config::default()
    };
    let emu = Emulator::start(config);
    let w = accounts_and_contacts();
    let out = w.dvload_env(
        &[
            "run",
            "accounts.toml",
            "contacts.toml",
            "--batch-size",
            "100",
            "--concurrency",
            "1",
        ],
        &emu.env(),
    );
    out.expect_code(2)
        .stderr_has(
            "stopped: Dataverse 404 (0x80060888): Resource not found for the segment 'contacts'.",
        )
        .stderr_has("the entity set 'contacts' does not exist in this environment")
        .stderr_has("continue with:");
    assert!(
        !out.stdout.contains("sent again at the end"),
        "{}",
        out.stdout
    );
    assert_eq!(emu.running.state.count("account"), 300);
    assert_eq!(
        emu.running.stats().batches,
        4,
        "one batch of contacts, not one per row"
    );
    let rejects = read_rejects_csv(&w.path().join("contacts.rejects.csv"), b',');
    // Every contact read is accounted for; on a loaded machine the reader may not have read all
    // 300 before the stop (it takes no new rows then: a resume reads them).
    assert!(
        (100..=300).contains(&rejects.len()),
        "every contact read accounted for: {}",
        rejects.len()
    );
    assert!(
        rejects.iter().all(|r| r.error.starts_with("not")),
        "unsent, not refused: {:?}",
        rejects.first()
    );
}

#[test]
fn a_column_the_server_refuses_mid_run_ends_the_job_with_one_message() {
    // The pre-flight saw telephone1; it was deleted after the first batch.
    let config = Config {
        changes: vec![ChangeConfig {
            after_batches: 1,
            drop_columns: vec![TableColumnsConfig {
                table: "account".into(),
                columns: vec!["telephone1".into()],
            }],
            ..ChangeConfig::default()
        }],
        ..Config::default()
    };
    let emu = Emulator::start(config);
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(300));
    w.write(
        "accounts.toml",
        accounts_mapping("telephone1 = \"Account No\"\n"),
    );
    let out = w.dvload_env(
        &[
            "run",
            "accounts.toml",
            "--batch-size",
            "50",
            "--concurrency",
            "1",
            "--report",
            "report.json",
        ],
        &emu.env(),
    );
    out.expect_code(2)
        .stderr_has("Invalid property 'telephone1'")
        .stderr_has("the column 'telephone1' does not exist on the table in this environment");
    assert_eq!(emu.running.state.count("account"), 50, "the first batch");
    assert_eq!(
        emu.running.stats().batches,
        2,
        "one refused batch, then the job ended"
    );
    let report = crate::support::Report::load(&w, "report.json");
    assert_eq!(
        (report.read, report.written, report.rejected),
        (300, 50, 250)
    );
}

#[test]
fn whoami_names_a_user_without_any_security_role() {
    let mut config = Config::default();
    config.application_users[0].roles.clear();
    let emu = Emulator::start(config);
    let out = Workdir::new().dvload_env(&["whoami"], &emu.env());
    out.expect_code(3)
        .stdout_has("roles          NONE: the application user has no security role")
        .stdout_has("Edit security roles");
    let emu = Emulator::start(Config::default());
    Workdir::new()
        .dvload_env(&["whoami"], &emu.env())
        .expect_code(0)
        .stdout_has(&format!(
            "roles          {}",
            dataverse_emulator::defaults::ROLE_NAME
        ));
}

#[test]
fn undo_without_the_delete_privilege_is_refused_before_deleting() {
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(20));
    w.write(
        "accounts.toml",
        accounts_mapping("").replace("\"upsert\"", "\"create\""),
    );
    let mut config = Config::default();
    without(&mut config, "account", Right::Delete);
    let emu = Emulator::start(config);
    w.dvload_env(&["run", "accounts.toml"], &emu.env())
        .expect_code(0);
    let batches = emu.running.stats().batches;
    let out = w.dvload_env(&["undo", "1", "--yes"], &emu.env());
    out.expect_code(3)
        .stderr_has("nothing deleted: the check against the environment refused 1 of 1 table")
        .stderr_has("missing privileges: prvDeleteAccount (to delete rows)");
    assert_eq!(emu.running.stats().batches, batches, "no delete sent");
    assert_eq!(emu.running.state.count("account"), 20);
}

#[test]
fn a_bypass_the_role_does_not_allow_stops_the_run_before_any_row_is_sent() {
    let emu = Emulator::start(Config::default());
    let w = Workdir::new();
    w.write("accounts.csv", accounts_csv(20));
    w.write("m.toml", accounts_mapping(""));
    // The default role lacks prvBypassCustomPlugins: every row would be refused (403).
    let out = w.dvload_env(&["run", "m.toml", "--bypass-plugins"], &emu.env());
    out.expect_code(3)
        .stderr_has("prvBypassCustomPlugins (to skip custom plug-ins (--bypass-plugins))");
    assert_eq!(emu.running.stats().batches, 0, "nothing sent");
    // Granted, the same run writes every row.
    let mut config = Config::default();
    config.roles[0].global.push("prvBypassCustomPlugins".into());
    let emu = Emulator::start(config);
    w.dvload_env(
        &["run", "m.toml", "--bypass-plugins", "--no-ledger"],
        &emu.env(),
    )
    .expect_code(0);
    assert_eq!(emu.running.state.count("account"), 20);
}
