//! Lookups by any column (`match = { name = "Company" }`) against the emulator: each row binds
//! the record whose columns equal its values as the environment compares text, or is rejected
//! naming the lookup, the column and the value; the targets are found by a few queries per
//! window of rows, not one per row.

use std::collections::HashMap;

use crate::support::{Emu, Report, Workdir, read_rejects_csv};

/// Loads `names` as accounts (one per line, `accountnumber` `N-<i>`), returns name → ids.
fn load_accounts(w: &Workdir, emu: &Emu, names: &[&str]) -> HashMap<String, Vec<uuid::Uuid>> {
    let mut csv = String::from("No,Name\n");
    for (i, n) in names.iter().enumerate() {
        csv.push_str(&format!("N-{i},\"{n}\"\n"));
    }
    w.write("accounts.csv", csv);
    w.write(
        "accounts.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n\n\
         [fields]\naccountnumber = \"No\"\nname = \"Name\"\n",
    );
    w.dvload_env(&["run", "accounts.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    let mut by_name: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    let mut rows = emu.state.rows("account");
    rows.sort_by_key(|r| r.seq);
    for r in rows {
        let name = r.fields["name"].as_str().unwrap_or_default().to_string();
        by_name.entry(name).or_default().push(r.id);
    }
    by_name
}

fn contacts_mapping(extra: &str) -> String {
    format!(
        "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
         [fields]\nlastname = \"Last\"\nparentcustomerid_account = {{ lookup = \"accounts\", match = {{ name = \"Company\" }}{extra} }}\n"
    )
}

/// The account each contact (by last name) is bound to.
fn bound(emu: &Emu) -> HashMap<String, Option<uuid::Uuid>> {
    emu.state
        .rows("contact")
        .into_iter()
        .map(|r| {
            let last = r.fields["lastname"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (last, r.lookup("parentcustomerid").map(|(id, _)| id))
        })
        .collect()
}

#[test]
fn a_lookup_by_name_binds_the_record_the_service_would_match_and_rejects_the_rest_saying_why() {
    let w = Workdir::new();
    let emu = Emu::start();
    let accounts = load_accounts(
        &w,
        &emu,
        &["Contoso", "Café Nord", "Twin", "twin", "O'Neil & Sons"],
    );
    w.write(
        "contacts.csv",
        "Last,Company\n\
         Exact,Contoso\n\
         Case,CONTOSO\n\
         Spaces,  contoso  \n\
         Accent,cafe nord\n\
         Quote,O'Neil & Sons\n\
         Unknown,Fabrikam\n\
         Twice,Twin\n\
         Empty,\n",
    );
    w.write("m.toml", contacts_mapping(""));
    let out = w.dvload_env(
        &[
            "run",
            "m.toml",
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
    let report = Report::load(&w, "r.json");
    assert_eq!(report.stat("written"), 6, "{}", out.stdout);
    assert_eq!(report.stat("rejected"), 2);
    let b = bound(&emu);
    let contoso = Some(accounts["Contoso"][0]);
    assert_eq!(b["Exact"], contoso);
    assert_eq!(b["Case"], contoso);
    assert_eq!(b["Spaces"], contoso);
    assert_eq!(b["Accent"], Some(accounts["Café Nord"][0]));
    assert_eq!(b["Quote"], Some(accounts["O'Neil & Sons"][0]));
    assert_eq!(b["Empty"], None, "an empty value binds nothing");
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    let reasons: HashMap<u64, &str> = rejects.iter().map(|r| (r.row, r.error.as_str())).collect();
    assert_eq!(
        reasons[&6],
        "column 'parentcustomerid_account' (from 'Company'): no accounts record has name = 'Fabrikam' \
         (compared as the environment compares text: case, accents and trailing spaces ignored); fix the value, or create the record first"
    );
    let twins = [accounts["Twin"][0], accounts["twin"][0]];
    assert_eq!(
        reasons[&7],
        format!(
            "column 'parentcustomerid_account' (from 'Company'): 2 accounts records have name = 'Twin': {}, {}; \
             make the value unique, or set on_many = \"first\" to bind the one created first",
            twins[0], twins[1]
        )
    );

    // on_many = "first" binds the one created first; the rejected rows replay from the file.
    let emu2 = Emu::start();
    let accounts = load_accounts(&w, &emu2, &["Twin", "TWIN"]);
    w.write("contacts.csv", "Last,Company\nTwice,twin\n");
    w.write("m.toml", contacts_mapping(", on_many = \"first\""));
    w.dvload_env(&["run", "m.toml", "--no-ledger"], &emu2.env())
        .expect_code(0);
    assert_eq!(bound(&emu2)["Twice"], Some(accounts["Twin"][0]));
}

#[test]
fn targets_are_found_by_a_few_queries_per_window_not_one_per_row() {
    let w = Workdir::new();
    let emu = Emu::start();
    let names: Vec<String> = (0..1000).map(|i| format!("Company {i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let accounts = load_accounts(&w, &emu, &refs);
    let mut csv = String::from("Last,Company\n");
    let rows = 5000;
    for i in 0..rows {
        // Every account is met, most several times, in an order that is not the table's.
        csv.push_str(&format!("C{i},Company {:04}\n", (i * 7919) % 1000));
    }
    w.write("contacts.csv", csv);
    w.write("m.toml", contacts_mapping(""));
    let out = w.dvload_env(
        &["run", "m.toml", "--report", "r.json", "--no-ledger"],
        &emu.env(),
    );
    out.expect_code(0);
    let report = Report::load(&w, "r.json");
    assert_eq!(report.stat("written"), rows as u64);
    let queries = report.stat("lookup_queries");
    assert!(
        queries > 0 && queries * 100 <= rows as u64,
        "{queries} queries for {rows} rows"
    );
    out.stdout_has(&format!("lookups by match: {queries} queries"));
    for (last, id) in bound(&emu) {
        let i: usize = last[1..].parse().unwrap();
        let name = format!("Company {:04}", (i * 7919) % 1000);
        assert_eq!(id, Some(accounts[&name][0]), "{last}");
    }
}

#[test]
fn lookups_by_match_survive_failing_throttled_and_reset_queries_without_losing_a_row() {
    let w = Workdir::new();
    let emu = Emu::start_with(dataverse_emulator::Config {
        seed: 11,
        ..dataverse_emulator::Config::default()
    });
    let names: Vec<String> = (0..300).map(|i| format!("Company {i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let accounts = load_accounts(&w, &emu, &refs);
    // From here on, one request in five fails, is throttled or loses its connection: the
    // lookup queries as much as the writes.
    emu.set_faults(dataverse_emulator::FaultsConfig {
        fail_rate: 0.1,
        throttle_rate: 0.05,
        throttle_retry_after_secs: 0,
        reset_rate: 0.05,
        ..Default::default()
    });
    let rows = 3000;
    let mut csv = String::from("Last,Company\n");
    for i in 0..rows {
        csv.push_str(&format!("C{i},Company {:03}\n", (i * 37) % 300));
    }
    w.write("contacts.csv", csv);
    w.write("m.toml", contacts_mapping(""));
    let out = w.dvload_env(
        &[
            "run",
            "m.toml",
            "--report",
            "r.json",
            "--no-ledger",
            "--retry-base-ms",
            "1",
            "--max-attempts",
            "40",
            "--batch-size",
            "50",
        ],
        &emu.env(),
    );
    out.expect_code(0);
    let report = Report::load(&w, "r.json");
    assert_eq!(report.stat("written"), rows as u64, "{}", out.stdout);
    assert_eq!(emu.state.count("contact"), rows, "every contact once");
    let b = bound(&emu);
    assert_eq!(b.len(), rows);
    assert!(
        emu.stats().fault_500 + emu.stats().fault_503 > 0,
        "faults were injected"
    );
    for (last, id) in b {
        let i: usize = last[1..].parse().unwrap();
        assert_eq!(
            id,
            Some(accounts[&format!("Company {:03}", (i * 37) % 300)][0])
        );
    }
}

#[test]
fn a_run_killed_while_it_looks_targets_up_resumes_with_every_row_once_and_bound_right() {
    let w = Workdir::new();
    let emu = Emu::start();
    let names: Vec<String> = (0..200).map(|i| format!("Company {i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let accounts = load_accounts(&w, &emu, &refs);
    let rows = 3000;
    let mut csv = String::from("Last,Company\n");
    for i in 0..rows {
        csv.push_str(&format!("C{i},Company {:03}\n", (i * 13) % 200));
    }
    w.write("contacts.csv", csv);
    w.write("m.toml", contacts_mapping(""));
    // Slow answers, so that the kills land mid-run.
    emu.set_faults(dataverse_emulator::FaultsConfig {
        latency_ms: 10,
        latency_jitter_ms: 20,
        ..Default::default()
    });
    let args = [
        "run",
        "m.toml",
        "--resume",
        "--batch-size",
        "25",
        "--retry-base-ms",
        "5",
    ];
    for kill_at in [300, 1200] {
        w.dvload_killed_when(&emu, &args, || emu.state.count("contact") >= kill_at);
    }
    emu.set_faults(dataverse_emulator::FaultsConfig::default());
    w.dvload_env(&args, &emu.env()).expect_code(0);
    assert_eq!(emu.state.count("contact"), rows, "every contact once");
    for (last, id) in bound(&emu) {
        let i: usize = last[1..].parse().unwrap();
        assert_eq!(
            id,
            Some(accounts[&format!("Company {:03}", (i * 13) % 200)][0]),
            "{last}"
        );
    }
}
