//! `dvload validate`: summaries, exit codes, reports and rejects files.

use crate::support::{Workdir, accounts_mapping, repo};

#[test]
fn every_row_maps_exit_0() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    w.write("accounts.csv", "Account No,Company\nA-1,Acme\nA-2,Globex\n");
    w.dvload(&["validate", "m.toml", "--report", "r.json"])
        .expect_code(0)
        .stdout_has("m.toml -> accounts (upsert by accountnumber)")
        .stdout_has("read 2  would write 2  rejected 0  skipped 0");
    let report: serde_json::Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(
        (report["read"].as_u64(), report["written"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(report["dry_run"], true);
    assert!(report["duration_ms"].is_u64());
    assert!(
        !w.path().join("accounts.rejects.csv").exists(),
        "validate writes no rejects unless asked"
    );
}

#[test]
fn the_bundled_samples_show_their_deliberately_bad_rows() {
    let w = Workdir::new();
    let accounts = repo().join("mappings/accounts.toml");
    w.dvload(&["validate", accounts.to_str().unwrap(), "--rejects", "bad.csv"])
        .expect_code(1)
        .stdout_has("read 1,200  would write 1,195  rejected 5  skipped 0")
        .stdout_has("row 137 (line 139): column 'industrycode' (from 'Industry'): unknown label 'Aerospace'")
        .stdout_has("row 412 (line 415): column 'new_customersince' (from 'Customer Since'): '31/02/2019' is not a valid date")
        .stdout_has("row 655 (line 659)")
        .stdout_has("row 873 (line 879): column 'numberofemployees' (from 'Employees'): 'twelve' is not a whole number")
        .stdout_has("row 1044 (line 1050): column 'name' (from 'Company'): is 169 characters long; at most 160 are allowed");
    let rejects = w.read("bad.csv");
    assert_eq!(rejects.lines().count(), 6, "header + 5 rows:\n{rejects}");
    assert!(rejects.starts_with("Account No,Company,Parent No,Industry,Revenue,Employees,Phone,Email,Website,City,Country,Customer Since,Credit Hold,Notes,dvload_row,dvload_error\r\n"), "the sample is CRLF, so are its rejects");

    let contacts = repo().join("mappings/contacts.toml");
    w.dvload(&["validate", contacts.to_str().unwrap()])
        .expect_code(1)
        .stdout_has("read 2,400  would write 2,397  rejected 3  skipped 0")
        .stdout_has("row 1650 (line 1651): column 'new_interests' (from 'Interests'): unknown label 'Knitting'");
}

#[test]
fn a_fixed_rejects_file_replays_with_the_same_mapping() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("numberofemployees = { from = \"Employees\", type = \"int\" }\n"),
    );
    w.write(
        "accounts.csv",
        "Account No,Company,Employees\nA-1,Acme,12\nA-2,Globex,twelve\nA-3,Initech,7\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "accounts.rejects.csv"])
        .expect_code(1);
    let rejects = w.read("accounts.rejects.csv");
    assert_eq!(
        rejects,
        "Account No,Company,Employees,dvload_row,dvload_error\n\
         A-2,Globex,twelve,2,column 'numberofemployees' (from 'Employees'): 'twelve' is not a whole number\n"
    );
    // Fix the value, replay the rejects file with the same mapping: the extra columns are ignored.
    w.write("accounts.rejects.csv", rejects.replace("twelve,2", "12,2"));
    w.dvload(&["validate", "m.toml", "--source", "accounts.rejects.csv"])
        .expect_code(0)
        .stdout_has("read 1  would write 1  rejected 0");
}

#[test]
fn filters_count_skipped_rows() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping(
            "\n[filter]\nskip_empty = [\"Company\"]\nskip_equal = { Status = \"Closed\" }\n",
        ),
    );
    w.write(
        "accounts.csv",
        "Account No,Company,Status\nA-1,Acme,Open\nA-2,,Open\nA-3,Initech,Closed\n",
    );
    w.dvload(&["validate", "m.toml"])
        .expect_code(0)
        .stdout_has("read 3  would write 1  rejected 0  skipped 2");
}

#[test]
fn help_shows_a_worked_example() {
    let w = Workdir::new();
    w.dvload(&["validate", "--help"])
        .expect_code(0)
        .stdout_has("dvload validate mappings/accounts.toml");
    w.dvload(&["run", "--help"])
        .expect_code(0)
        .stdout_has("--dry-run --emit-batches out/");
    w.dvload(&["--help"])
        .expect_code(0)
        .stdout_has("Exit codes");
}

#[test]
fn a_bad_command_line_exits_2() {
    let w = Workdir::new();
    w.dvload(&["validate"]).expect_code(2);
    w.dvload(&["run", "m.toml", "--batch-size", "1001", "--dry-run"])
        .expect_code(2)
        .stderr_has("1001");
    w.dvload(&["validate", "missing.toml"])
        .expect_code(2)
        .stderr_has("missing.toml: cannot read the mapping file");
}
