//! `dvload metadata pull`: each table's metadata as a file, against the emulator.

use serde_json::Value;

use crate::support::Workdir;

fn json(w: &Workdir, name: &str) -> Value {
    serde_json::from_str(&w.read(name)).unwrap()
}

#[test]
fn pull_writes_one_stable_file_per_table_with_what_validation_needs() {
    let w = Workdir::new();
    w.dvload(&[
        "metadata",
        "pull",
        "account",
        "contact",
        "--out",
        "md",
        "--emulator",
    ])
    .expect_code(0)
    .stdout_has("account: ")
    .stdout_has("-> md/contact.json");
    let account = json(&w, "md/account.json");
    assert_eq!(account["entity_set"], "accounts");
    assert_eq!(account["primary_id"], "accountid");
    assert_eq!(account["primary_name"], "name");
    let name = &account["columns"]["name"];
    assert_eq!(name["attribute_type"], "String");
    assert_eq!(name["max_length"], 160);
    assert_eq!(name["required_level"], "ApplicationRequired");
    let revenue = &account["columns"]["revenue"];
    assert_eq!(revenue["attribute_type"], "Money");
    assert!(revenue["precision"].is_i64(), "{revenue}");
    // A choice with its labels, from the cast with $expand=OptionSet.
    let industry = account["columns"]["industrycode"]["options"]
        .as_array()
        .unwrap();
    assert_eq!(industry.len(), 33);
    assert_eq!(industry[0]["value"], 1);
    assert_eq!(industry[0]["labels"]["1033"], "Accounting");
    // The primary id cannot be updated; the alternate key and its index status.
    assert_eq!(account["columns"]["accountid"]["valid_for_update"], false);
    assert_eq!(
        account["keys"]["accountnumber_key"]["attributes"],
        serde_json::json!(["accountnumber"])
    );
    assert_eq!(
        account["keys"]["accountnumber_key"]["index_status"],
        "Active"
    );
    // A Customer lookup: its targets and the navigation property that binds each.
    let customer = &json(&w, "md/contact.json")["columns"]["parentcustomerid"];
    assert_eq!(customer["attribute_type"], "Customer");
    assert_eq!(
        customer["targets"],
        serde_json::json!(["account", "contact"])
    );
    assert_eq!(
        customer["navigation"]["account"],
        "parentcustomerid_account"
    );
    assert_eq!(
        customer["navigation"]["contact"],
        "parentcustomerid_contact"
    );
    // Pulled again from another emulator, the files are byte for byte the same (a diff in
    // version control shows only what changed).
    let first = w.read("md/account.json");
    w.dvload(&["metadata", "pull", "account", "--out", "md", "--emulator"])
        .expect_code(0);
    assert_eq!(w.read("md/account.json"), first);
}

#[test]
fn an_unknown_table_or_a_name_that_cannot_be_one_is_refused() {
    let w = Workdir::new();
    w.dvload(&["metadata", "pull", "acount", "--out", "md", "--emulator"])
        .expect_code(2)
        .stderr_has("table 'acount'")
        .stderr_has("Could not find entity");
    assert!(!w.path().join("md/acount.json").exists());
    w.dvload(&["metadata", "pull", "account')", "--out", "md", "--emulator"])
        .expect_code(2)
        .stderr_has("is not a table's logical name");
}

/// The first request a dry run of `m.toml` against the metadata in `md` would send.
fn first_dry_run_batch(w: &Workdir) -> String {
    w.dvload(&[
        "run",
        "m.toml",
        "--dry-run",
        "--metadata",
        "md",
        "--emit-batches",
        "out",
    ])
    .expect_code(0);
    w.read("out/batch-000001.http")
}

/// A folder with the emulator's account and contact metadata.
fn pulled() -> Workdir {
    pulled_tables(&["account", "contact", "systemuser"])
}

/// A work directory with `tables` pulled from the built-in emulator into `md`.
fn pulled_tables(tables: &[&str]) -> Workdir {
    let w = Workdir::new();
    let mut args = vec!["metadata", "pull"];
    args.extend_from_slice(tables);
    args.extend_from_slice(&["--out", "md", "--emulator"]);
    w.dvload(&args).expect_code(0);
    w
}

#[test]
fn validate_checks_a_mapping_against_pulled_metadata_without_network() {
    let w = pulled();
    let repo = crate::support::repo();
    let mapping = repo.join("mappings/contacts.toml");
    let source = repo.join("samples/contacts.csv");
    // The sample mapping fits: its rows decide the exit code (three of them are rejected).
    w.dvload(&[
        "validate",
        mapping.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
        "--metadata",
        "md",
    ])
    .expect_code(1)
    .stdout_has(
        "checked against the metadata in md (3 tables): table, key, columns, types, lengths, option values and lookups fit",
    );
    // A misspelt column, a key that is not an alternate key, and a lookup to a table the folder
    // does not have: every problem at once, exit 2 whatever the rows.
    w.write("accounts.csv", "Account No,Company,Owner\nA1,Contoso,L1\n");
    w.write(
        "bad.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { name = \"Company\" }\n\n[fields]\nnmae = \"Company\"\naccountnumber = \"Account No\"\n\
         originatingleadid = { lookup = \"leads\", key = { subject = \"Owner\" } }\n",
    );
    w.dvload(&["validate", "bad.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("nmae")
        .stdout_has("unknown: 'nmae' (did you mean 'name'?)")
        .stdout_has("account has no alternate key on (name)")
        .stdout_has("unknown entity set 'leads' in the metadata of md")
        .stdout_has("dvload metadata pull")
        .stdout_has("the mapping does not fit the environment's metadata");
}

#[test]
fn a_metadata_folder_that_cannot_be_read_is_refused_with_where() {
    let w = Workdir::new();
    w.write("accounts.csv", "Account No,Company\nA1,Contoso\n");
    w.write("m.toml", crate::support::accounts_mapping(""));
    std::fs::create_dir_all(w.path().join("empty")).unwrap();
    w.dvload(&["validate", "m.toml", "--metadata", "empty"])
        .expect_code(2)
        .stderr_has("no table metadata (*.json) here")
        .stderr_has("dvload metadata pull TABLE... --out empty");
    w.write(
        "broken/account.json",
        "{\"logical_name\": \"account\",\n  \"columns\": 3}\n",
    );
    w.dvload(&["validate", "m.toml", "--metadata", "broken"])
        .expect_code(2)
        .stderr_has("broken/account.json:2:")
        .stderr_has("not table metadata as dvload metadata pull writes it");
}

#[test]
fn a_type_that_does_not_fit_its_column_stops_validate_and_the_run_before_any_write() {
    let w = pulled();
    w.write(
        "accounts.csv",
        "Account No,Company,Revenue,Since\nA1,Contoso,12.5,2026-01-02\n",
    );
    w.write(
        "m.toml",
        crate::support::accounts_mapping(
            "revenue = { from = \"Revenue\", type = \"int\" }\n\
             new_customersince = { from = \"Since\", type = \"datetime\" }\n",
        ),
    );
    // Offline, against the pulled files: both at once (the date column is DateOnly).
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("'revenue' is int but the column is Money: use type = \"money\"")
        .stdout_has(
            "'new_customersince' is datetime but the column is DateTime (DateOnly behaviour): use type = \"dateonly\"",
        );
    // Online, the run's check refuses both before its first write: it reads the metadata as
    // `metadata pull` does (the casts its fields need).
    w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"])
        .expect_code(2)
        .stdout_has("'revenue' is int but the column is Money")
        .stdout_has("'new_customersince' is datetime but the column is DateTime")
        .stderr_has("nothing sent");
}

#[test]
fn a_choice_mapped_to_a_value_the_column_lacks_is_named_with_the_options_there_are() {
    let w = pulled();
    w.write(
        "accounts.csv",
        "Account No,Company,Industry\nA1,Contoso,Aerospace\n",
    );
    w.write(
        "m.toml",
        crate::support::accounts_mapping(
            "industrycode = { from = \"Industry\", type = \"choice\", map = { \"Accounting\" = 1, \"Aerospace\" = 99 } }\n",
        ),
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("'industrycode' maps 'Aerospace' = 99 to no option of the column (its options: 1 Accounting, 2 Agriculture")
        .stdout_has(", …)");
}

#[test]
fn a_max_length_longer_than_the_column_holds_is_refused() {
    let w = pulled();
    w.write("accounts.csv", "Account No,Company\nA1,Contoso\n");
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"Account No\" }\n\n[fields]\nname = { from = \"Company\", max_length = 200 }\n",
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("'name' has max_length = 200 but the column holds at most 160 characters");
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"Account No\" }\n\n[fields]\nname = { from = \"Company\", max_length = 160 }\n",
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(0);
}

/// Accounts with choice labels as people type them, one unknown label and one name too long for
/// the column; contacts with a Boolean column's own labels. Neither mapping has a `map` or a
/// `max_length`: both come from the table's metadata.
fn labelled(w: &Workdir) {
    let long = "N".repeat(170);
    w.write(
        "accounts.csv",
        format!(
            "Account No,Company,Industry\nA1,Contoso,accounting\nA2,Fabrikam,CONSULTING\n\
             A3,Northwind,Plumbing\nA4,{long},Legal Services\nA5,Litware,21\n"
        ),
    );
    w.write(
        "a.toml",
        crate::support::accounts_mapping(
            "industrycode = { from = \"Industry\", type = \"choice\" }\n",
        ),
    );
    w.write(
        "contacts.csv",
        "Last,Email pref\nSmith,Do Not Allow\nJones,allow\nBrown,yes\nGreen,maybe\n",
    );
    w.write(
        "c.toml",
        "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
         [fields]\nlastname = \"Last\"\ndonotemail = { from = \"Email pref\", type = \"bool\" }\n",
    );
}

/// What the rejects files say, by source row: (row, error).
fn rejected(w: &Workdir, file: &str) -> Vec<(u64, String)> {
    crate::support::read_rejects_csv(&w.path().join(file), b',')
        .into_iter()
        .map(|r| (r.row, r.error))
        .collect()
}

#[test]
fn labels_and_lengths_come_from_the_metadata_alike_live_in_the_dry_run_and_in_validate() {
    let emu = crate::support::Emu::start();
    let w = pulled();
    labelled(&w);
    let out = w.dvload_env(&["run", "a.toml", "c.toml", "--no-ledger"], &emu.env());
    out.expect_code(1)
        .stdout_has(
            "a.toml: from the table's metadata: 'industrycode' takes the labels of its 33 options (Accounting, Agriculture and Non-petrol",
        )
        .stdout_has("max_length name=160")
        .stdout_has(
            "c.toml: from the table's metadata: 'donotemail' also takes the column's labels 'Do Not Allow' / 'Allow'",
        );
    let accounts = rejected(&w, "accounts.rejects.csv");
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert_eq!(accounts[0].0, 3);
    assert!(
        accounts[0]
            .1
            .contains("unknown label 'Plumbing'; allowed: Accounting, Agriculture and Non-petrol Natural Resource Extraction, Broadcasting"),
        "{}",
        accounts[0].1
    );
    assert!(
        !accounts[0].1.contains("Dataverse"),
        "refused before sending"
    );
    assert_eq!(accounts[1].0, 4);
    assert!(
        accounts[1].1.contains("at most 160"),
        "refused before sending: {}",
        accounts[1].1
    );
    let industry = |number: &str| {
        emu.state
            .rows("account")
            .into_iter()
            .find(|r| r.fields.get("accountnumber") == Some(&Value::from(number)))
            .map(|r| r.fields.get("industrycode").cloned())
    };
    assert_eq!(industry("A1"), Some(Some(Value::from(1))));
    assert_eq!(industry("A2"), Some(Some(Value::from(7))));
    assert_eq!(
        industry("A5"),
        Some(Some(Value::from(21))),
        "an option's value"
    );
    let mut emails: Vec<(String, Value)> = emu
        .state
        .rows("contact")
        .into_iter()
        .map(|r| {
            (
                r.fields["lastname"].as_str().unwrap().to_string(),
                r.fields["donotemail"].clone(),
            )
        })
        .collect();
    emails.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        emails,
        [
            ("Brown".to_string(), Value::Bool(true)),
            ("Jones".to_string(), Value::Bool(false)),
            ("Smith".to_string(), Value::Bool(true)),
        ]
    );
    let contacts = rejected(&w, "contacts.rejects.csv");
    assert_eq!(contacts.len(), 1);
    assert!(
        contacts[0]
            .1
            .contains("or the column's labels: do not allow / allow"),
        "{}",
        contacts[0].1
    );

    // The dry run and validate, given the pulled files, map every row as the live run did.
    for (mapping, rejects) in [("a.toml", 2), ("c.toml", 1)] {
        let dry = w.dvload(&["run", mapping, "--dry-run", "--metadata", "md"]);
        dry.expect_code(1)
            .stdout_has(&format!("{mapping}: from the table's metadata"));
        assert!(
            dry.stdout.contains(&format!("rejected {rejects}"))
                || dry.stdout.contains(&format!("{rejects} rejected")),
            "{}",
            dry.stdout
        );
        let valid = w.dvload(&["validate", mapping, "--metadata", "md"]);
        valid
            .expect_code(1)
            .stdout_has(&format!("{mapping}: from the table's metadata"));
        // Without the files, the labels are not known: every label row is refused.
        let bare = w.dvload(&["validate", mapping]);
        bare.expect_code(1);
    }
}

#[test]
fn init_writes_mappings_of_the_samples_that_validate_without_edits() {
    let w = pulled_tables(&["account", "contact", "lead"]);
    let samples = crate::support::repo().join("samples");
    std::fs::create_dir_all(w.path().join("m")).unwrap();
    for (file, entity) in [
        ("accounts.csv", "account"),
        ("contacts.csv", "contact"),
        ("leads.jsonl", "lead"),
    ] {
        let source = samples.join(file);
        let out = format!("m/{entity}.toml");
        w.dvload(&[
            "init",
            "--source",
            source.to_str().unwrap(),
            "--entity",
            entity,
            "--metadata",
            "md",
            "--out",
            &out,
        ])
        .expect_code(0)
        .stdout_has(&format!("wrote {out}"));
        // The samples carry rows that are wrong on purpose (exit 1); the mapping itself fits.
        w.dvload(&["validate", &out, "--metadata", "md"])
            .expect_code(1)
            .stdout_has("lookups fit");
    }
    let accounts = w.read("m/account.toml");
    for line in [
        "key = { accountnumber = \"Account No\" }",
        "parentaccountid = { lookup = \"accounts\", key = { accountnumber = \"Parent No\" } }",
        "new_customersince = { from = \"Customer Since\", type = \"dateonly\", format = \"%d/%m/%Y\" }",
        "numberofemployees = { from = \"Employees\", type = \"int\", null_if = [\"n/a\"] }",
        "CHECK the guesses \"Agriculture\" as \"Agriculture and Non-petrol Natural Resource Extraction\"",
    ] {
        assert!(accounts.contains(line), "{line}\n{accounts}");
    }
    let contacts = w.read("m/contact.toml");
    assert!(contacts.contains("delimiter = \";\""), "{contacts}");
    assert!(
        contacts.contains("parentcustomerid_account = { lookup = \"accounts\", key = { accountnumber = \"Account No\" } }"),
        "{contacts}"
    );
    let leads = w.read("m/lead.toml");
    assert!(leads.contains("firstname = \"person.first\""), "{leads}");
    assert!(leads.contains("# \"id\": no column of lead"), "{leads}");

    // Online the environment gives the same mapping as the files it was pulled into.
    let source = samples.join("accounts.csv");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "init".to_string(),
            "--source".into(),
            source.to_str().unwrap().to_string(),
            "--entity".into(),
            "accounts".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let offline = args(&["--metadata", "md"]);
    let online = args(&["--emulator"]);
    let run = |a: &[String]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        w.dvload(&a).expect_code(0).stdout.clone()
    };
    assert_eq!(run(&offline), run(&online));

    // What init refuses: a mapping that exists, a table the folder lacks, the wrong table.
    let src = source.to_str().unwrap();
    w.dvload(&[
        "init",
        "--source",
        src,
        "--entity",
        "account",
        "--metadata",
        "md",
        "--out",
        "m/account.toml",
    ])
    .expect_code(2)
    .stderr_has("m/account.toml exists");
    w.dvload(&[
        "init",
        "--source",
        src,
        "--entity",
        "incident",
        "--metadata",
        "md",
    ])
    .expect_code(2)
    .stderr_has("no metadata of 'incident' in md")
    .stderr_has("dvload metadata pull incident --out md");
    w.write("colours.xlsx", "Colour,Flavour\nBlue,Mint\n");
    w.dvload(&[
        "init",
        "--source",
        "colours.xlsx",
        "--entity",
        "account",
        "--metadata",
        "md",
    ])
    .expect_code(2)
    .stderr_has("colours.xlsx: cannot tell the format from the extension; name it .csv, .tsv");
    w.write("colours.csv", "Colour,Flavour\nBlue,Mint\n");
    w.dvload(&[
        "init",
        "--source",
        "colours.csv",
        "--entity",
        "account",
        "--metadata",
        "md",
    ])
    .expect_code(2)
    .stderr_has("is it the right table?");
}

#[test]
fn problems_name_their_line_and_a_required_column_left_out_is_a_warning() {
    let w = pulled();
    w.write("contacts.csv", "First,Mail\nAnn,ann@example.com\n");
    // A create that leaves out lastname (ApplicationRequired): said, not refused.
    w.write(
        "c.toml",
        "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
         [fields]\nfirstname = \"First\"\nemailaddress1 = \"Mail\"\n",
    );
    w.dvload(&["validate", "c.toml", "--metadata", "md"])
        .expect_code(0)
        .stdout_has("warning: required columns this mapping leaves out of its creates: lastname (ApplicationRequired)");
    w.dvload(&["run", "c.toml", "--emulator", "--no-ledger"])
        .expect_code(0)
        .stdout_has("c.toml -> contacts (create): warning: required columns this mapping leaves out of its creates: lastname");
    // A problem with a field says where the field is written.
    w.write(
        "c.toml",
        "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
         [fields]\nlastname = \"First\"\nbirthdate = { from = \"Mail\", type = \"int\" }\nnickname = \"Mail\"\n",
    );
    w.dvload(&["validate", "c.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has(
            "'birthdate' is int but the column is DateTime (DateOnly behaviour): use type = \"dateonly\" (c.toml:10:1)",
        )
        .stdout_has("'nickname' (c.toml:11:1)");
}

#[test]
fn what_validate_accepts_against_pulled_metadata_the_emulator_writes_row_for_row() {
    let emu = crate::support::Emu::start();
    let w = pulled_tables(&["account", "contact", "lead"]);
    let repo = crate::support::repo();
    let mappings: Vec<String> = ["accounts", "contacts", "leads"]
        .iter()
        .map(|m| {
            repo.join(format!("mappings/{m}.toml"))
                .display()
                .to_string()
        })
        .collect();
    // Offline: each mapping fits the files, and validate says which rows it would write.
    let mut would_write = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        let report = format!("v{i}.json");
        w.dvload(&["validate", m, "--metadata", "md", "--report", &report])
            .expect_code(1)
            .stdout_has("lookups fit");
        let v: Value = serde_json::from_str(&w.read(&report)).unwrap();
        would_write.push(v["written"].as_u64().unwrap());
    }
    // Live, against the emulator those files came from: the same rows are written, but for
    // the one row whose lookup target does not exist, which only the service can tell.
    let args: Vec<&str> = ["run"]
        .into_iter()
        .chain(mappings.iter().map(String::as_str))
        .chain(["--report", "run.json", "--state", "state"])
        .collect();
    w.dvload_env(&args, &emu.env()).expect_code(1);
    let run: Value = serde_json::from_str(&w.read("run.json")).unwrap();
    let written: Vec<u64> = (0..3)
        .map(|i| run["jobs"][i]["written"].as_u64().unwrap())
        .collect();
    assert_eq!(written[0], would_write[0], "accounts");
    assert_eq!(written[2], would_write[2], "leads");
    assert_eq!(
        written[1],
        would_write[1] - 1,
        "contacts: all but ACC-99999's"
    );
    let rejects = crate::support::read_rejects_csv(&w.path().join("contacts.rejects.csv"), b';');
    let service: Vec<u64> = rejects
        .iter()
        .filter(|r| r.error.starts_with("Dataverse"))
        .map(|r| r.row)
        .collect();
    assert_eq!(service, [318], "{rejects:?}");
}

#[test]
fn a_lookup_by_match_is_checked_against_the_targets_columns_and_the_dry_run_shows_its_condition() {
    let w = pulled();
    w.write("contacts.csv", "Last,Company\nSmith,Contoso\n");
    let mapping = |column: &str| {
        format!(
            "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
             [fields]\nlastname = \"Last\"\nparentcustomerid_account = {{ lookup = \"accounts\", match = {{ {column} = \"Company\" }} }}\n"
        )
    };
    w.write("m.toml", mapping("name"));
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(0)
        .stdout_has("option values and lookups fit");
    let batch = first_dry_run_batch(&w);
    assert!(
        batch.contains(r#""parentcustomerid_account@odata.bind":"/accounts(<name eq 'Contoso'>)""#),
        "{batch}"
    );
    w.write("m.toml", mapping("nmae"));
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("lookup 'parentcustomerid_account' matches on 'nmae' (did you mean 'name'?) of account, which has no such column (m.toml:10:61)");
}

#[test]
fn init_matches_display_names_in_any_language_and_binds_a_named_company_by_match() {
    let w = pulled();
    w.write(
        "c.csv",
        "Nachname,First Name,Company Name,Birthday\nSmith,Ann,Contoso,31/01/1980\nJones,Bob,contoso ,01/02/1975\n",
    );
    w.dvload(&[
        "init",
        "--source",
        "c.csv",
        "--entity",
        "contact",
        "--metadata",
        "md",
        "--out",
        "c.toml",
    ])
    .expect_code(0);
    let mapping = w.read("c.toml");
    for line in [
        "lastname = \"Nachname\"  # Last Name (String), by display name",
        "parentcustomerid_account = { lookup = \"accounts\", match = { name = \"Company Name\" } }  # Company Name (Customer), by display name; bound by the target's name, which the run looks up (CHECK the values are names)",
        "birthdate = { from = \"Birthday\", type = \"dateonly\", format = \"%d/%m/%Y\" }",
    ] {
        assert!(mapping.contains(line), "{line}\n---\n{mapping}");
    }
    w.dvload(&["validate", "c.toml", "--metadata", "md"])
        .expect_code(0);
    // Run as generated, after the account it names: both contacts bound to it.
    w.write("a.csv", "Name\nContoso\n");
    w.write(
        "a.toml",
        "[source]\npath = \"a.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = \"Name\"\n",
    );
    w.dvload(&["run", "a.toml", "c.toml", "--emulator", "--no-ledger"])
        .expect_code(0)
        .stdout_has("lookups by match: 1 query");
}

/// An export's "Owner" column holds people's full names: init binds `ownerid` by match on the
/// user's name, and the run assigns each row to the person named.
#[test]
fn init_binds_an_owner_column_of_full_names_to_the_users() {
    let w = pulled_tables(&["account", "systemuser", "team"]);
    w.write(
        "a.csv",
        "Account Name,Owner\nContoso,Avery Howard\nFabrikam,dana whitfield\n",
    );
    w.dvload(&[
        "init",
        "--source",
        "a.csv",
        "--entity",
        "account",
        "--metadata",
        "md",
        "--out",
        "a.toml",
    ])
    .expect_code(0);
    let mapping = w.read("a.toml");
    let line = "ownerid = { lookup = \"systemusers\", match = { fullname = \"Owner\" } }  # Owner (Owner), by display name; bound by the target's name, which the run looks up (CHECK the values are names)";
    assert!(mapping.contains(line), "{line}\n---\n{mapping}");
    w.dvload(&["validate", "a.toml", "--metadata", "md"])
        .expect_code(0);
    let emu = crate::support::Emu::start();
    w.dvload_env(&["run", "a.toml", "--no-ledger"], &emu.env())
        .expect_code(0);
    let mut owners: Vec<String> = emu
        .state
        .rows("account")
        .iter()
        .map(|r| r.lookup("ownerid").unwrap().0.to_string())
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        [
            "a1d2c3b4-0001-4e5f-8a9b-000000000001",
            "a1d2c3b4-0001-4e5f-8a9b-000000000002"
        ]
    );
}

#[test]
fn constants_and_defaults_the_column_cannot_hold_are_found_before_any_row() {
    let w = pulled();
    w.write("accounts.csv", "Company\nContoso\n");
    let long = "x".repeat(161);
    w.write(
        "m.toml",
        format!(
            "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n\n\
             [fields]\nname = {{ from = \"Company\", default = \"{long}\" }}\n\
             numberofemployees = {{ value = -5, type = \"int\" }}\n\
             accountcategorycode = {{ value = 7, type = \"choice\" }}\n\
             revenue = {{ value = 100, type = \"money\" }}\n"
        ),
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stdout_has("'name' default is 161 characters long; the column holds 160 (m.toml:9:1)")
        .stdout_has("'numberofemployees' constant value -5 is outside the column's range (0 to 1000000000) (m.toml:10:1)")
        .stdout_has("'accountcategorycode' constant value 7 is no option of the column (its options: 1 Preferred Customer, 2 Standard) (m.toml:11:1)")
        .stdout_has("the mapping does not fit the environment's metadata");
    // The live check says the same, before anything is sent.
    let out = w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"]);
    out.expect_code(2);
    let said = format!("{}{}", out.stdout, out.stderr);
    for part in [
        "'name' default is 161 characters long; the column holds 160 (m.toml:9:1)",
        "'numberofemployees' constant value -5 is outside the column's range (0 to 1000000000) (m.toml:10:1)",
        "'accountcategorycode' constant value 7 is no option of the column",
    ] {
        assert!(said.contains(part), "{part}\n{said}");
    }
}

#[test]
fn labels_in_constants_and_defaults_take_their_values_from_the_option_set() {
    let w = pulled();
    w.write("contacts.csv", "Last,Category\nSmith,\n");
    w.write(
        "m.toml",
        "[source]\npath = \"contacts.csv\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\n\
         [fields]\nlastname = \"Last\"\ndonotemail = { value = \"Do Not Allow\", type = \"bool\" }\n\
         preferredcontactmethodcode = { from = \"Category\", type = \"choice\", default = \"email\" }\n",
    );
    // Without the metadata, the labels cannot be converted: said at their place, nothing read.
    w.dvload(&["validate", "m.toml"]).expect_code(2).stderr_has(
        "m.toml:10:24: field 'donotemail': constant value 'Do Not Allow' is not a yes/no value",
    );
    // With it, or against the environment, they are the column's values.
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(0);
    let batch = first_dry_run_batch(&w);
    assert!(
        batch.contains(r#"{"lastname":"Smith","donotemail":true,"preferredcontactmethodcode":2}"#),
        "{batch}"
    );
    w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"])
        .expect_code(0);
    // A label the option set does not have is refused at its place, online and offline.
    w.write(
        "m.toml",
        w.read("m.toml")
            .replace("default = \"email\"", "default = \"Pigeon\""),
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(2)
        .stderr_has("m.toml:11:78: field 'preferredcontactmethodcode': default unknown label 'Pigeon'; allowed: Any, Email, Phone, Fax, Mail");
    w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"])
        .expect_code(2)
        .stderr_has("m.toml:11:78: field 'preferredcontactmethodcode': default unknown label 'Pigeon'; allowed: Any, Email, Phone, Fax, Mail");
}

/// The header and a row of a contacts "Export to Excel" from a Dataverse environment in English:
/// the export's own columns first, then display names.
const CONTACTS_EXPORT: &str = "(Do Not Modify) Contact,(Do Not Modify) Row Checksum,(Do Not Modify) Modified On,\
Full Name,Company Name,Email,Business Phone,Job Title,Birthday,Preferred Method of Contact,Do not allow Emails,Status\n\
7d1f3a52-0c8e-4e0b-9d4c-1a2b3c4d5e6f,abc123==,15/07/2024 09:30,Ann Smith,Contoso,ann@contoso.com,555-0100,Buyer,\
31/01/1980,Email,Allow,Active\n";

#[test]
fn init_on_a_dataverse_export_keys_by_the_exported_id_and_leaves_the_bookkeeping_out() {
    let w = pulled();
    w.write("export.csv", CONTACTS_EXPORT);
    w.dvload(&[
        "init",
        "--source",
        "export.csv",
        "--entity",
        "contact",
        "--metadata",
        "md",
        "--out",
        "export.toml",
    ])
    .expect_code(0);
    let mapping = w.read("export.toml");
    for line in [
        "operation = \"upsert\"\nkey = { contactid = { from = \"(Do Not Modify) Contact\", type = \"guid\" } }",
        "emailaddress1 = \"Email\"",
        "parentcustomerid_account = { lookup = \"accounts\", match = { name = \"Company Name\" } }",
        "birthdate = { from = \"Birthday\", type = \"dateonly\", format = \"%d/%m/%Y\" }",
        "donotemail = { from = \"Do not allow Emails\", type = \"bool\" }",
        "# \"(Do Not Modify) Row Checksum\": the export's own bookkeeping",
        "# \"(Do Not Modify) Modified On\": the export's own bookkeeping",
        "# \"Full Name\": fullname is read-only",
    ] {
        assert!(mapping.contains(line), "{line}\n---\n{mapping}");
    }
    // What it gets wrong is said, not hidden: the required last name is not in the export.
    w.dvload(&["validate", "export.toml", "--metadata", "md"])
        .expect_code(0)
        .stdout_has("required columns this mapping leaves out of its creates: lastname");
    w.write("a.csv", "Name\nContoso\n");
    w.write(
        "a.toml",
        "[source]\npath = \"a.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = \"Name\"\n",
    );
    w.dvload(&["run", "a.toml", "export.toml", "--emulator", "--no-ledger"])
        .expect_code(0)
        .stdout_has("read 1  written 1  rejected 0");
}

#[test]
fn standard_tables_beyond_the_samples_pull_generate_and_load() {
    let w = pulled_tables(&[
        "incident",
        "opportunity",
        "product",
        "team",
        "account",
        "contact",
    ]);
    let incident: serde_json::Value = serde_json::from_str(&w.read("md/incident.json")).unwrap();
    assert_eq!(incident["display_name"]["1033"], "Case");
    assert_eq!(
        incident["columns"]["customerid"]["attribute_type"],
        "Customer"
    );
    assert_eq!(
        incident["columns"]["customerid"]["required_level"],
        "SystemRequired"
    );
    assert_eq!(
        incident["columns"]["customerid"]["navigation"]["account"],
        "customerid_account"
    );
    let opportunity: serde_json::Value =
        serde_json::from_str(&w.read("md/opportunity.json")).unwrap();
    assert_eq!(
        opportunity["columns"]["estimatedclosedate"]["date_time_behavior"],
        "DateOnly"
    );
    // A cases export by display names: the customer bound by name, the origin by its labels.
    w.write(
        "cases.csv",
        "Case Title,Customer,Priority,Origin,Description\nPrinter jam,Contoso,High,Email,Tray 2\n",
    );
    w.dvload(&[
        "init",
        "--source",
        "cases.csv",
        "--entity",
        "incident",
        "--metadata",
        "md",
        "--out",
        "cases.toml",
    ])
    .expect_code(0);
    let mapping = w.read("cases.toml");
    assert!(
        mapping.contains(
            "customerid_account = { lookup = \"accounts\", match = { name = \"Customer\" } }"
        ),
        "{mapping}"
    );
    w.dvload(&["validate", "cases.toml", "--metadata", "md"])
        .expect_code(0);
    w.write("a.csv", "Name\nContoso\n");
    w.write(
        "a.toml",
        "[source]\npath = \"a.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = \"Name\"\n",
    );
    w.dvload(&["run", "a.toml", "cases.toml", "--emulator", "--no-ledger"])
        .expect_code(0)
        .stdout_has("read 1  written 1  rejected 0");
}

/// Each validation rule broken once; `(extra [target] lines, [fields] lines, what both checks say)`.
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "",
        "nmae = \"Company\"\n",
        "unknown: 'nmae' (did you mean 'name'?) (m.toml:7:1)",
    ),
    (
        "",
        "revenue = { from = \"N\", type = \"int\" }\n",
        "'revenue' is int but the column is Money: use type = \"money\" (m.toml:7:1)",
    ),
    (
        "",
        "new_customersince = { from = \"N\", type = \"datetime\" }\n",
        "'new_customersince' is datetime but the column is DateTime (DateOnly behaviour): use type = \"dateonly\" (m.toml:7:1)",
    ),
    (
        "",
        "industrycode = { from = \"N\", type = \"choice\", map = { Tech = 999 } }\n",
        "'industrycode' maps 'Tech' = 999 to no option of the column",
    ),
    (
        "",
        "name = { from = \"Company\", max_length = 500 }\n",
        "'name' has max_length = 500 but the column holds at most 160 characters: set max_length = 160 or less (m.toml:7:1)",
    ),
    (
        "",
        "createdon = { from = \"N\", type = \"datetime\" }\n",
        "read-only columns: createdon",
    ),
    (
        "key = { name = \"Company\" }\n",
        "accountnumber = \"N\"\n",
        "no alternate key on (name)",
    ),
    (
        "",
        "parentaccountid = { lookup = \"leadz\", key = { subject = \"N\" } }\n",
        "unknown entity set 'leadz'",
    ),
    (
        "",
        "parentaccountid = { lookup = \"contacts\", key = { emailaddress1 = \"N\" } }\n",
        "'parentaccountid' is not a lookup to contact on account",
    ),
    (
        "",
        "numberofemployees = { value = -5, type = \"int\" }\n",
        "'numberofemployees' constant value -5 is outside the column's range (0 to 1000000000)",
    ),
    (
        "",
        "parentaccountid = { lookup = \"accounts\", match = { nmae = \"Company\" } }\n",
        "lookup 'parentaccountid' matches on 'nmae' (did you mean 'name'?) of account",
    ),
    (
        "",
        "ownerid = { lookup = \"accounts\", match = { name = \"Company\" } }\n",
        "'ownerid' is not a lookup to account on account: it is a lookup (Owner) to systemuser, team",
    ),
    (
        "",
        "ownerid_systemuser = { lookup = \"systemusers\", match = { fullname = \"Company\" } }\n",
        "'ownerid_systemuser' is not a lookup to systemuser on account: column ownerid is bound to systemuser through the navigation property 'ownerid'",
    ),
];

/// An owner bound by a person's email: pulled with the user table, the mapping validates
/// offline, and the environment takes every row, each assigned to the person named.
#[test]
fn an_owner_lookup_validates_offline_and_the_environment_takes_it() {
    let w = pulled_tables(&["account", "systemuser", "team"]);
    let pulled = w.read("md/account.json");
    assert!(
        pulled.contains("\"attribute_type\": \"Owner\""),
        "ownerid is pulled as an Owner lookup"
    );
    w.write(
        "accounts.csv",
        "No,Company,Owner\nO-1,Contoso,avery.howard@emulator.onmicrosoft.com\n",
    );
    w.write(
        "m.toml",
        "[source]\npath = \"accounts.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n[fields]\nname = \"Company\"\n\
         ownerid = { lookup = \"systemusers\", match = { internalemailaddress = \"Owner\" } }\n",
    );
    w.dvload(&["validate", "m.toml", "--metadata", "md"])
        .expect_code(0);
    w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"])
        .expect_code(0)
        .stdout_has("written 1");
}

#[test]
fn every_validation_rule_gives_the_same_verdict_offline_and_against_the_environment() {
    let w = pulled();
    w.write("accounts.csv", "Company,N\nContoso,1\n");
    for (target, fields, said) in BROKEN {
        let operation = if target.is_empty() {
            "create"
        } else {
            "upsert"
        };
        w.write(
            "m.toml",
            format!(
                "[source]\npath = \"accounts.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n{target}[fields]\n{fields}"
            ),
        );
        let offline = w.dvload(&["validate", "m.toml", "--metadata", "md"]);
        let online = w.dvload(&["run", "m.toml", "--emulator", "--no-ledger"]);
        for (how, out) in [("offline", &offline), ("online", &online)] {
            let text = format!("{}{}", out.stdout, out.stderr);
            assert_eq!(out.code, 2, "{how}, {fields}{target}: {text}");
            assert!(
                text.contains(said),
                "{how}, {fields}{target}: lacks {said}\n{text}"
            );
        }
        assert!(
            !online.stdout.contains("written 1"),
            "nothing sent: {}",
            online.stdout
        );
    }
}

/// `--solution NAME` pulls the tables the solution holds, found as a client finds them (the
/// solution by unique name, its Entity components, the tables with those metadata ids); a name
/// no solution has is refused saying which name is meant.
#[test]
fn pull_by_solution_takes_exactly_the_solutions_tables() {
    let mut config = dataverse_emulator::Config::default();
    config
        .solutions
        .push(dataverse_emulator::config::SolutionConfig {
            unique_name: "ContosoSales".into(),
            friendly_name: Some("Contoso Sales".into()),
            tables: vec!["product".into(), "opportunity".into()],
        });
    let emu = crate::support::Emulator::start(config);
    let w = Workdir::new();
    w.dvload_env(
        &[
            "metadata",
            "pull",
            "--solution",
            "ContosoSales",
            "--out",
            "md",
        ],
        &emu.env(),
    )
    .expect_code(0)
    .stdout_has("solution ContosoSales: 2 tables: opportunity, product");
    let mut files: Vec<String> = std::fs::read_dir(w.path().join("md"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["opportunity.json", "product.json"]);
    w.dvload_env(
        &["metadata", "pull", "--solution", "Contoso Sales", "--out", "md"],
        &emu.env(),
    )
    .expect_code(2)
    .stderr_has("solution 'Contoso Sales': no solution has the unique name 'Contoso Sales' (the Name column of Power Apps' Solutions list, not its display name)");
}
