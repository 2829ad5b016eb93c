//! Lookups by match against the emulator: 100,000 contacts each bound to one of 10,000 accounts
//! by the account's name, in an order unrelated to the table's. Prints the lookup queries sent
//! (the bound: at most one per 100 rows), rows/s, and the ratio to the same contacts bound
//! by the accounts' alternate key (which the service resolves as it writes: no queries), and
//! checks that every contact is bound to the right account.
//! Run with `cargo bench --bench lookups`. Figures are printed, never asserted.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Instant;

use dataverse_emulator::{Config, StartOptions, start};

#[path = "common/emulator_env.rs"]
mod emulator_env;

const ACCOUNTS: usize = 10_000;
const CONTACTS: usize = 100_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    let mut accounts = String::from("No,Name\n");
    for i in 0..ACCOUNTS {
        accounts.push_str(&format!("N-{i:05},Account {i:05}\n"));
    }
    write("accounts.csv", accounts);
    write(
        "accounts.toml",
        "[source]\npath = \"accounts.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"No\" }\n[fields]\nname = \"Name\"\n"
            .into(),
    );
    let mut csv =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("contacts.csv")).unwrap());
    writeln!(csv, "Last,Company,Company No").unwrap();
    for i in 0..CONTACTS {
        let a = (i * 7919) % ACCOUNTS;
        writeln!(csv, "C{i:06},account {a:05},N-{a:05}").unwrap();
    }
    csv.flush().unwrap();
    drop(csv);
    let contacts = |bind: &str| {
        format!(
            "[source]\npath = \"contacts.csv\"\n[target]\nentity_set = \"contacts\"\noperation = \"create\"\n\
             [fields]\nlastname = \"Last\"\nparentcustomerid_account = {{ lookup = \"accounts\", {bind} }}\n"
        )
    };
    write("by_name.toml", contacts("match = { name = \"Company\" }"));
    write(
        "by_key.toml",
        contacts("key = { accountnumber = \"Company No\" }"),
    );

    let mut figures = Vec::new();
    for mapping in ["by_name.toml", "by_key.toml"] {
        let emulator = runtime
            .block_on(start(Config::default(), StartOptions::default()))
            .expect("emulator");
        let base = emulator.base_url().to_string();
        let run = |args: &[&str]| {
            let out = emulator_env::dvload(dir.path(), &base, args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        };
        run(&["run", "accounts.toml", "--no-ledger"]);
        let start_at = Instant::now();
        run(&["run", mapping, "--no-ledger", "--report", "r.json"]);
        let secs = start_at.elapsed().as_secs_f64();
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
        let queries = report["lookup_queries"].as_u64().unwrap();
        // Every contact bound to the account its row names.
        let names: HashMap<uuid::Uuid, String> = emulator
            .state
            .rows("account")
            .into_iter()
            .map(|r| (r.id, r.fields["name"].as_str().unwrap().to_lowercase()))
            .collect();
        let contacts = emulator.state.rows("contact");
        assert_eq!(contacts.len(), CONTACTS, "every contact once");
        for c in &contacts {
            let i: usize = c.fields["lastname"].as_str().unwrap()[1..].parse().unwrap();
            let (id, _) = c.lookup("parentcustomerid").expect("bound");
            assert_eq!(names[&id], format!("account {:05}", (i * 7919) % ACCOUNTS));
        }
        figures.push((mapping, secs, queries));
        runtime.block_on(emulator.shutdown());
    }
    let (_, name_secs, queries) = figures[0];
    let (_, key_secs, _) = figures[1];
    println!(
        "{CONTACTS} contacts bound to {ACCOUNTS} accounts by name: {queries} lookup queries \
         (one per {} rows), {:.0} rows/s; by alternate key: {:.0} rows/s; by name / by key = {:.2}",
        CONTACTS as u64 / queries.max(1),
        CONTACTS as f64 / name_secs,
        CONTACTS as f64 / key_secs,
        key_secs / name_secs
    );
}
