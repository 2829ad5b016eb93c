//! `dvload run --dry-run`: batches built exactly as they would be sent, nothing sent.

use crate::support::{Workdir, accounts_mapping};

#[test]
fn batches_are_written_as_http_files() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    let mut csv = String::from("Account No,Company\n");
    for i in 1..=5 {
        csv.push_str(&format!("A-{i},Company {i}\n"));
    }
    w.write("accounts.csv", csv);
    w.dvload(&[
        "run",
        "m.toml",
        "--dry-run",
        "--emit-batches",
        "out",
        "--batch-size",
        "2",
        "--report",
        "r.json",
    ])
    .expect_code(0)
    .stdout_has("read 5  would write 5  rejected 0  skipped 0")
    .stdout_has("3 $batch requests of up to 2 operations built (")
    .stdout_has("none sent");
    let mut files: Vec<String> = std::fs::read_dir(w.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "batch-000001.http",
            "batch-000002.http",
            "batch-000003.http"
        ]
    );
    let first = w.read("out/batch-000001.http");
    let (head, body) = first
        .split_once("\r\n\r\n")
        .expect("headers, blank line, body");
    assert!(
        head.starts_with("POST https://yourorg.crm.dynamics.com/api/data/v9.2/$batch HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Content-Type: multipart/mixed; boundary=\"batch_"),
        "{head}"
    );
    assert!(head.contains("Prefer: odata.continue-on-error"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len(), "Content-Length is the body's length");
    assert_eq!(
        body.matches("PATCH /api/data/v9.2/accounts(accountnumber='A-")
            .count(),
        2
    );
    assert!(body.contains("{\"name\":\"Company 1\"}"), "{body}");
    let report: serde_json::Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["batches"], 3);
    assert_eq!(report["written"], 5);
}

#[test]
fn atomic_batches_use_one_change_set() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    w.write("accounts.csv", "Account No,Company\nA-1,Acme\nA-2,Globex\n");
    w.dvload(&[
        "run",
        "m.toml",
        "--dry-run",
        "--atomic",
        "--emit-batches",
        "out",
    ])
    .expect_code(0);
    let batch = w.read("out/batch-000001.http");
    assert!(
        batch.contains("Content-Type: multipart/mixed; boundary=\"changeset_"),
        "{batch}"
    );
    assert!(
        !batch.contains("Prefer: odata.continue-on-error"),
        "a change set is a transaction"
    );
}

#[test]
fn rejects_go_to_the_default_file_in_the_current_directory() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("revenue = { from = \"Revenue\", type = \"money\" }\n"),
    );
    w.write(
        "accounts.csv",
        "Account No,Company,Revenue\nA-1,Acme,\"1,000.00\"\nA-2,Globex,lots\n",
    );
    w.dvload(&["run", "m.toml", "--dry-run"])
        .expect_code(1)
        .stdout_has("rejected rows written to accounts.rejects.csv");
    assert!(
        w.read("accounts.rejects.csv").contains(
            "A-2,Globex,lots,2,column 'revenue' (from 'Revenue'): 'lots' is not a number"
        )
    );
}

#[test]
fn several_mappings_run_in_order_and_a_broken_one_stops_everything_first() {
    let w = Workdir::new();
    w.write("a.toml", accounts_mapping(""));
    w.write("accounts.csv", "Account No,Company\nA-1,Acme\n");
    w.write("b.toml", accounts_mapping("x = { from = \"Nope\" }\n"));
    w.dvload(&[
        "run",
        "a.toml",
        "b.toml",
        "--dry-run",
        "--emit-batches",
        "out",
    ])
    .expect_code(2)
    .stderr_has("b.toml:11:14: source field 'Nope' is not a column of accounts.csv");
    assert!(!w.path().join("out").exists(), "nothing was done");
    w.dvload(&["run", "a.toml", "a.toml", "--dry-run", "--report", "r.json"])
        .expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(report["read"], 2);
}

#[test]
fn replaying_a_rejects_file_in_place_reads_all_of_it() {
    // The bug this guards against: the default rejects file of `accounts.rejects.csv` is
    // `accounts.rejects.csv` itself; it was truncated on the first reject while being read, and
    // every row past the reader's buffer was silently never read.
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("employees = { from = \"Employees\", type = \"int\" }\n"),
    );
    let mut csv = String::from("Account No,Company,Employees\n");
    for i in 1..=3000 {
        csv.push_str(&format!(
            "A-{i:05},Company number {i} with a longer name,many\n"
        ));
    }
    w.write("accounts.csv", csv);
    w.dvload(&["run", "m.toml", "--dry-run"])
        .expect_code(1)
        .stdout_has("read 3,000  would write 0  rejected 3,000");
    assert!(
        std::fs::metadata(w.path().join("accounts.rejects.csv"))
            .unwrap()
            .len()
            > 200_000
    );
    // Replayed as it is (nothing fixed): every row is read and rejected again, into the same file.
    w.dvload(&[
        "run",
        "m.toml",
        "--dry-run",
        "--source",
        "accounts.rejects.csv",
    ])
    .expect_code(1)
    .stdout_has("read 3,000  would write 0  rejected 3,000");
    let rows = crate::support::read_rejects_csv(&w.path().join("accounts.rejects.csv"), b',');
    assert_eq!(rows.len(), 3000);
    let leftovers: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn two_mappings_whose_sources_share_a_name_get_their_own_rejects_files() {
    // Without distinct names the second job's rejects file replaced the first one's.
    let w = Workdir::new();
    for dir in ["a", "b"] {
        w.write(
            &format!("{dir}/m.toml"),
            accounts_mapping("employees = { from = \"Employees\", type = \"int\" }\n"),
        );
        w.write(
            &format!("{dir}/accounts.csv"),
            format!("Account No,Company,Employees\n{dir}-1,Company,many\n{dir}-2,Company,3\n"),
        );
    }
    w.dvload(&["run", "a/m.toml", "b/m.toml", "--dry-run"])
        .expect_code(1)
        .stdout_has("rejected rows written to accounts.rejects.csv")
        .stdout_has("rejected rows written to accounts-2.rejects.csv");
    let first = crate::support::read_rejects_csv(&w.path().join("accounts.rejects.csv"), b',');
    let second = crate::support::read_rejects_csv(&w.path().join("accounts-2.rejects.csv"), b',');
    assert_eq!((first.len(), second.len()), (1, 1));
    assert!(w.read("accounts.rejects.csv").contains("a-1"));
    assert!(w.read("accounts-2.rejects.csv").contains("b-1"));
}

/// The dry run cuts requests where the run does: a key the request already holds (in another
/// spelling the environment takes for the same key) starts the next one outside `--atomic`.
#[test]
fn the_dry_run_cuts_requests_where_the_run_does() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    w.write(
        "accounts.csv",
        "Account No,Company\nA-1,One\nA-2,Two\na-1 ,One again\nA-3,Three\n",
    );
    for (atomic, requests) in [(false, 2), (true, 1)] {
        let out_dir = format!("out-{atomic}");
        let mut args = vec!["run", "m.toml", "--dry-run", "--emit-batches", &out_dir];
        if atomic {
            args.push("--atomic");
        }
        w.dvload(&args).expect_code(0);
        let emitted = std::fs::read_dir(w.path().join(&out_dir)).unwrap().count();
        assert_eq!(emitted, requests, "--atomic {atomic}");
        let emu = crate::support::Emu::start();
        let before = emu.stats().batches;
        let mut args = vec!["run", "m.toml", "--no-ledger", "--concurrency", "1"];
        if atomic {
            args.push("--atomic");
        }
        w.dvload_env(&args, &emu.env()).expect_code(0);
        assert_eq!(
            emu.stats().batches - before,
            requests as u64,
            "--atomic {atomic}"
        );
    }
}

#[test]
fn several_mappings_take_a_source_each_by_name() {
    let w = crate::support::Workdir::new();
    let repo = crate::support::repo();
    for m in ["accounts", "contacts", "leads"] {
        let text = std::fs::read_to_string(repo.join(format!("mappings/{m}.toml")))
            .unwrap()
            .replace("../samples/", "samples/");
        w.write(&format!("{m}.toml"), text);
    }
    std::fs::create_dir_all(w.path().join("samples")).unwrap();
    for f in ["accounts.csv", "contacts.csv", "leads.jsonl"] {
        std::fs::copy(
            repo.join("samples").join(f),
            w.path().join("samples").join(f),
        )
        .unwrap();
    }
    // Tonight's accounts come from another file: two rows, one of them bad.
    w.write(
        "tonight.csv",
        "Account No,Company,Parent No,Industry,Revenue,Employees,Phone,Email,Website,City,Country,Customer Since,Credit Hold,Notes\n\
         ACC-1,Good Ltd,,Consulting,1,2,,,,,,01/01/2020,no,\nACC-2,Bad Ltd,,Consulting,1,many,,,,,,01/01/2020,no,\n",
    );
    let out = w.dvload(&[
        "run",
        "accounts.toml",
        "contacts.toml",
        "--dry-run",
        "--source",
        "accounts=tonight.csv",
    ]);
    out.expect_code(1)
        .stdout_has("source tonight.csv (csv, 14 columns)")
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("source samples/contacts.csv");
    // The rejects of one mapping replayed by its path, beside the other's own source.
    w.dvload(&[
        "run",
        "accounts.toml",
        "contacts.toml",
        "--dry-run",
        "--source",
        "accounts.toml=tonight.rejects.csv",
    ])
    .expect_code(1)
    .stdout_has("source tonight.rejects.csv")
    .stdout_has("read 1  would write 0  rejected 1");
    // What is refused, naming what would be accepted.
    w.dvload(&["run", "accounts.toml", "contacts.toml", "--dry-run", "--source", "tonight.csv"])
        .expect_code(2)
        .stderr_has("with several mappings, say which reads it: --source NAME=FILE, NAME one of accounts, contacts");
    w.dvload(&[
        "run",
        "accounts.toml",
        "contacts.toml",
        "--dry-run",
        "--source",
        "leads=x.jsonl",
    ])
    .expect_code(2)
    .stderr_has("NAME one of accounts, contacts");
    w.dvload(&[
        "run",
        "accounts.toml",
        "contacts.toml",
        "--dry-run",
        "--source",
        "accounts=a.csv",
        "--source",
        "accounts=b.csv",
    ])
    .expect_code(2)
    .stderr_has("mapping 'accounts' has a source already");
}
