//! Dry-run throughput benchmark: generates a 12-column CSV (100,000 and 1,000,000 rows), runs
//! `dvload run --dry-run` over it (read, map, encode every `$batch` body; nothing sent) and prints
//! rows/s and the child's peak RSS. Run with `cargo bench --bench dryrun`. Timings are printed,
//! never asserted (machines here are shared and noisy); to compare versions, count instructions
//! instead: `valgrind --tool=callgrind target/release/dvload run m.toml --dry-run` over the same
//! generated file (about 8,500 instructions per row for this layout).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const MAPPING: &str = r#"
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

fn generate(path: &Path, rows: u64) {
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

/// Waits for a child and returns its exit code and peak resident set size in KiB (`wait4`).
fn wait_with_rss(child: &std::process::Child) -> (i32, i64) {
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 fills `status` and `usage` for the child it reaps; the pid is our child's.
    unsafe {
        libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr());
        (libc::WEXITSTATUS(status), usage.assume_init().ru_maxrss)
    }
}

// The child is reaped by `wait4` (to read its own peak RSS), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.toml"), MAPPING).unwrap();
    println!(
        "dvload run --dry-run --batch-size 1000, 12-column CSV (read + map + encode, nothing sent)"
    );
    for rows in [100_000u64, 1_000_000] {
        let csv = dir.path().join("bench.csv");
        generate(&csv, rows);
        let size = std::fs::metadata(&csv).unwrap().len();
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dvload"))
            .args([
                "run",
                "m.toml",
                "--dry-run",
                "--batch-size",
                "1000",
                "--rejects",
                "rejects.csv",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let (code, rss_kib) = wait_with_rss(&child);
        let secs = start.elapsed().as_secs_f64();
        assert!(matches!(code, 0 | 1), "dvload exited {code}");
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("read "))
            .unwrap_or_default();
        println!(
            "{rows:>9} rows ({:.0} MiB): {:>9.0} rows/s, {secs:.2} s, peak RSS {:.1} MiB  [{summary}]",
            size as f64 / 1048576.0,
            rows as f64 / secs,
            rss_kib as f64 / 1024.0,
        );
    }
}
