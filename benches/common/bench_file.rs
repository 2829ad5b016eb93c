//! The benchmark's generated file: a 12-column CSV of accounts (quoted fields, thousands
//! separators, UK dates, lookups to earlier rows, one bad row in 10,000) and its mapping. Shared
//! by `benches/dryrun.rs` and the golden outputs (`tests/integration/golden.rs`).

use std::io::Write;
use std::path::Path;

/// The mapping of the generated file (`bench.csv` beside it).
pub const MAPPING: &str = r#"
[source]
path = "bench.csv"

[target]
entity_set = "accounts"
operation = "upsert"
key = { accountnumber = "Account No" }

[fields]
name = { from = "Company", required = true, max_length = 160 }
revenue = { from = "Revenue", type = "money" }
numberofemployees = { from = "Employees", type = "int", null_if = ["n/a"] }
telephone1 = "Phone"
emailaddress1 = "Email"
address1_city = "City"
address1_country = "Country"
new_customersince = { from = "Since", type = "dateonly", format = "%d/%m/%Y" }
creditonhold = { from = "Credit Hold", type = "bool" }
industrycode = { from = "Industry", type = "choice", map = { "Accounting" = 1, "Agriculture" = 2, "Consulting" = 7, "Financial" = 16, "Insurance" = 20 } }
parentaccountid = { lookup = "accounts", key = { accountnumber = "Parent No" } }
"#;

const INDUSTRIES: &[&str] = &[
    "Accounting",
    "Agriculture",
    "consulting",
    "Financial",
    "Insurance",
    "",
];
const CITIES: &[&str] = &[
    "London",
    "Manchester",
    "Leeds",
    "Cardiff",
    "Edinburgh",
    "Bristol",
    "Belfast",
];

/// Writes `rows` generated rows to `path` (the same rows every time).
pub fn generate(path: &Path, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "Account No,Company,Parent No,Industry,Revenue,Employees,Phone,Email,City,Country,Since,Credit Hold").unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 1..=rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let parent = if i > 1000 && x % 3 == 0 {
            format!("ACC-{:07}", x % 1000 + 1)
        } else {
            String::new()
        };
        // One row in 10,000 is bad (an unknown industry), so the reject path is exercised too.
        let industry = if i % 10_000 == 0 {
            "Aerospace"
        } else {
            INDUSTRIES[(x % 6) as usize]
        };
        let revenue = x % 90_000_000;
        writeln!(
            out,
            "ACC-{i:07},\"Company {i}, Ltd\",{parent},{industry},\"{},{:03},{:03}.{:02}\",{},+44 20 7946 {:04},info{i}@example.co.uk,{},United Kingdom,{:02}/{:02}/{},{}",
            revenue / 1_000_000 + 1,
            revenue / 1000 % 1000,
            revenue % 1000,
            x % 100,
            x % 5000,
            x % 10_000,
            CITIES[(x % 7) as usize],
            x % 28 + 1,
            x % 12 + 1,
            1990 + x % 35,
            if x % 2 == 0 { "Yes" } else { "No" },
        )
        .unwrap();
    }
    out.flush().unwrap();
}
