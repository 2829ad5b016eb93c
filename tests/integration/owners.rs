//! Owner lookups (`ownerid`) against the emulator: rows assigned to people by their email or to
//! a team by its name, found by query like any lookup by match; a row whose owner is unknown is
//! rejected naming the value; a mapping without an owner leaves the row to the caller.

use std::collections::HashMap;

use crate::support::{Emu, Report, Workdir, read_rejects_csv};

const AVERY: &str = "a1d2c3b4-0001-4e5f-8a9b-000000000001";
const DANA: &str = "a1d2c3b4-0001-4e5f-8a9b-000000000002";
const SALES: &str = "b2e3d4c5-0002-4f6a-9b8c-000000000001";

/// The owner (id, table) of each account, by account number.
fn owners(emu: &Emu) -> HashMap<String, (String, String)> {
    emu.state
        .rows("account")
        .into_iter()
        .map(|r| {
            let no = r.fields["accountnumber"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (id, table) = r.lookup("ownerid").expect("every account has an owner");
            (no, (id.to_string(), table.to_string()))
        })
        .collect()
}

#[test]
fn rows_are_assigned_to_people_by_email_and_to_teams_by_name() {
    let w = Workdir::new();
    let emu = Emu::start();
    w.write(
        "accounts.csv",
        "No,Name,Owner Email\n\
         A-1,Alpha,avery.howard@emulator.onmicrosoft.com\n\
         A-2,Beta,DANA.WHITFIELD@emulator.onmicrosoft.com\n\
         A-3,Gamma,nobody@emulator.onmicrosoft.com\n\
         A-4,Delta,\n",
    );
    w.write(
        "people.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n\n[fields]\nname = \"Name\"\n\
         ownerid = { lookup = \"systemusers\", match = { internalemailaddress = \"Owner Email\" } }\n",
    );
    let out = w.dvload_env(
        &[
            "run",
            "people.toml",
            "--report",
            "r.json",
            "--rejects",
            "rejects.csv",
            "--no-ledger",
            "--fail-on",
            "never",
        ],
        &emu.env(),
    );
    out.expect_code(0);
    assert!(
        !out.stdout.contains("required columns") && !out.stderr.contains("required columns"),
        "an owner left out is the caller, not a warning: {}{}",
        out.stdout,
        out.stderr
    );
    let report = Report::load(&w, "r.json");
    assert_eq!(report.stat("written"), 3, "{}", out.stdout);
    assert_eq!(report.stat("rejected"), 1);
    let o = owners(&emu);
    assert_eq!(o["A-1"], (AVERY.to_string(), "systemuser".to_string()));
    assert_eq!(o["A-2"], (DANA.to_string(), "systemuser".to_string()));
    // An empty owner cell leaves the row to the caller, as the service does.
    assert_eq!(
        o["A-4"],
        (
            dataverse_emulator::defaults::APP_USER_ID.to_string(),
            "systemuser".to_string()
        )
    );
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects.len(), 1);
    assert_eq!(
        rejects[0].error,
        "column 'ownerid' (from 'Owner Email'): no systemusers record has internalemailaddress = 'nobody@emulator.onmicrosoft.com' \
         (compared as the environment compares text: case, accents and trailing spaces ignored); fix the value, or create the record first"
    );

    // The same accounts handed to a team by its name: the one navigation property binds both.
    w.write("teams.csv", "No,Team\nA-1,sales\nA-2,Customer Service\n");
    w.write(
        "teams.toml",
        "[source]\npath = \"teams.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"update\"\n\
         key = { accountnumber = \"No\" }\n\n[fields]\n\
         ownerid = { lookup = \"teams\", match = { name = \"Team\" } }\n",
    );
    w.dvload_env(&["run", "teams.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    let o = owners(&emu);
    assert_eq!(o["A-1"], (SALES.to_string(), "team".to_string()));
    assert_eq!(o["A-2"].1, "team");
}

#[test]
fn an_owner_lookup_to_a_table_it_cannot_target_is_refused_before_the_first_write() {
    let w = Workdir::new();
    let emu = Emu::start();
    w.write("accounts.csv", "No,Name,Owner\nA-1,Alpha,Contoso\n");
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n\n[fields]\nname = \"Name\"\n\
         ownerid = { lookup = \"accounts\", match = { name = \"Owner\" } }\n",
    );
    let out = w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu.env());
    out.expect_code(2).stderr_has(
        "unknown columns: 'ownerid' is not a lookup to account on account: it is a lookup (Owner) to systemuser, team (lookups to account: parentaccountid)",
    );
    assert_eq!(emu.state.count("account"), 0, "nothing is written");
}

/// Changing the owner of rows an upsert or update finds takes prvAssign: without it the check
/// says so before the first write (a warning: new rows and rows that keep their owner are fine),
/// and a row whose owner would change is refused by the service, named in the rejects.
#[test]
fn a_mapping_that_changes_owners_needs_prv_assign_and_the_check_says_so() {
    use dataverse_emulator::config::Right;
    let mut config = dataverse_emulator::Config::default();
    for p in &mut config.roles[0].privileges {
        p.rights.retain(|r| *r != Right::Assign);
    }
    let emu = Emu::start_with(config);
    let w = Workdir::new();
    let avery = "avery.howard@emulator.onmicrosoft.com";
    let dana = "dana.whitfield@emulator.onmicrosoft.com";
    w.write(
        "accounts.csv",
        format!("No,Name,Owner Email\nA-1,Alpha,{avery}\nA-2,Beta,{avery}\n"),
    );
    w.write(
        "upsert.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n\n[fields]\nname = \"Name\"\n\
         ownerid = { lookup = \"systemusers\", match = { internalemailaddress = \"Owner Email\" } }\n",
    );
    let out = w.dvload_env(&["run", "upsert.toml", "--no-ledger"], &emu.env());
    out.expect_code(0);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("prvAssignAccount is missing: rows this mapping gives another owner (ownerid) will be refused; rows it creates and rows that keep their owner are not"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    // A-1 changes owner (refused, named), A-2 keeps its owner and A-3 is new (both written):
    // the refusal is the row's, not the run's.
    w.write(
        "accounts.csv",
        format!("No,Name,Owner Email\nA-1,Alpha,{dana}\nA-2,Beta 2,{avery}\nA-3,Gamma,{dana}\n"),
    );
    let out = w.dvload_env(
        &[
            "run",
            "upsert.toml",
            "--no-ledger",
            "--rejects",
            "rejects.csv",
            "--report",
            "r.json",
            "--fail-on",
            "never",
        ],
        &emu.env(),
    );
    out.expect_code(0);
    let report = Report::load(&w, "r.json");
    assert_eq!(
        (report.stat("written"), report.stat("rejected")),
        (2, 1),
        "{}",
        out.stdout
    );
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects[0].row, 1);
    assert!(
        rejects[0].error.contains("prvAssignAccount"),
        "{}",
        rejects[0].error
    );
    let o = owners(&emu);
    assert_eq!(o["A-1"].0, AVERY, "the refused row keeps its owner");
    assert_eq!(o["A-3"].0, DANA);
}

/// An empty owner cell that clears `ownerid` would be refused for every such row (the column is
/// SystemRequired): the check says so before the first write.
#[test]
fn clearing_a_system_required_owner_is_said_before_the_run() {
    let emu = Emu::start();
    let w = Workdir::new();
    w.write("accounts.csv", "No,Name,Owner\nA-1,Alpha,\n");
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n\n[fields]\nname = \"Name\"\n\
         ownerid = { lookup = \"systemusers\", match = { internalemailaddress = \"Owner\" }, empty = \"clear\" }\n",
    );
    let out = w.dvload_env(
        &["run", "m.toml", "--no-ledger", "--fail-on", "never"],
        &emu.env(),
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("'ownerid' is cleared by an empty value (empty = \"clear\") but the column is SystemRequired: the service refuses null, so each row with an empty value there will be rejected; use empty = \"keep\" (an empty value left as it is makes a create the caller's) (m.toml:11:1)"),
        "{text}"
    );
}

/// Owners changed by a role without prvAssign, through faults and two SIGKILLs: every row ends
/// once — created, updated with its owner kept, or rejected (only the rows whose owner would
/// change, each named once in the chain's rejects file) — and no refused row changed.
#[test]
fn refused_owner_changes_through_faults_and_kills_lose_nothing_and_write_nothing_twice() {
    use dataverse_emulator::config::Right;
    const DANA: &str = "a1d2c3b4-0001-4e5f-8a9b-000000000002";
    const JORDAN: &str = "a1d2c3b4-0001-4e5f-8a9b-000000000003";
    let mut config = dataverse_emulator::Config {
        seed: 13,
        ..dataverse_emulator::Config::default()
    };
    for p in &mut config.roles[0].privileges {
        p.rights.retain(|r| *r != Right::Assign);
    }
    let emu = Emu::start_with(config);
    let w = Workdir::new();
    let email = |who: &str| format!("{who}@emulator.onmicrosoft.com");
    let mapping = "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
                   key = { accountnumber = \"No\" }\n\n[fields]\nname = \"Name\"\n\
                   ownerid = { lookup = \"systemusers\", match = { internalemailaddress = \"Owner Email\" } }\n";
    w.write("accounts.toml", mapping);
    // 1,500 accounts owned by Avery.
    let existing = 1500;
    let mut csv = String::from("No,Name,Owner Email\n");
    for i in 0..existing {
        csv.push_str(&format!("O-{i:04},Name {i},{}\n", email("avery.howard")));
    }
    w.write("accounts.csv", csv);
    w.dvload_env(&["run", "accounts.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    // The night's file: a third of them change owner (refused), the rest keep theirs (updated),
    // and 1,500 new ones.
    let rows = 3000;
    let mut csv = String::from("No,Name,Owner Email\n");
    for i in 0..rows {
        let owner = match i {
            i if i < existing && i % 3 == 0 => email("dana.whitfield"),
            i if i < existing => email("avery.howard"),
            i if i % 2 == 0 => email("jordan.ellis"),
            _ => email("dana.whitfield"),
        };
        csv.push_str(&format!("O-{i:04},Updated {i},{owner}\n"));
    }
    w.write("accounts.csv", csv);
    emu.set_faults(dataverse_emulator::FaultsConfig {
        fail_rate: 0.05,
        reset_rate: 0.05,
        latency_ms: 5,
        latency_jitter_ms: 10,
        ..Default::default()
    });
    let args = [
        "run",
        "accounts.toml",
        "--resume",
        "--rejects",
        "rejects.csv",
        "--fail-on",
        "never",
        "--batch-size",
        "25",
        "--retry-base-ms",
        "1",
        "--max-attempts",
        "40",
    ];
    for kill_at in [1800, 2400] {
        w.dvload_killed_when(&emu, &args, || emu.state.count("account") >= kill_at);
    }
    let stats = emu.stats();
    assert!(
        stats.fault_500 + stats.fault_503 > 0,
        "faults were injected"
    );
    emu.set_faults(dataverse_emulator::FaultsConfig::default());
    w.dvload_env(&args, &emu.env()).expect_code(0);

    assert_eq!(emu.state.count("account"), rows, "every account once");
    let by_no: HashMap<String, (String, String)> = emu
        .state
        .rows("account")
        .into_iter()
        .map(|r| {
            (
                r.fields["accountnumber"].as_str().unwrap().to_string(),
                (
                    r.fields["name"].as_str().unwrap().to_string(),
                    r.lookup("ownerid").unwrap().0.to_string(),
                ),
            )
        })
        .collect();
    let mut refused = Vec::new();
    for i in 0..rows {
        let (name, owner) = &by_no[&format!("O-{i:04}")];
        let expected = match i {
            i if i < existing && i % 3 == 0 => {
                refused.push(i as u64 + 1);
                (format!("Name {i}"), AVERY)
            }
            i if i < existing => (format!("Updated {i}"), AVERY),
            i if i % 2 == 0 => (format!("Updated {i}"), JORDAN),
            i => (format!("Updated {i}"), DANA),
        };
        assert_eq!(
            (name.as_str(), owner.as_str()),
            (expected.0.as_str(), expected.1),
            "O-{i:04}"
        );
    }
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    let mut named: Vec<u64> = rejects.iter().map(|r| r.row).collect();
    named.sort_unstable();
    assert_eq!(named, refused, "each refused change named once");
    assert!(rejects.iter().all(|r| r.error.contains("prvAssignAccount")));
}
