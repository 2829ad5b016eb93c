//! The run ledger's cost: `dvload run` on 1,000,000 generated rows against the built-in emulator
//! (`--emulator`, in the same process), without the ledger (`--no-ledger`), with it (fresh state
//! directory), with it again under `--changed-only` (nothing changed: nothing sent), and with the
//! rows shuffled (keys in no order); and the dry run without the ledger and reading it
//! (`--dry-run --changed-only`: nothing changed, so nothing would be sent).
//! Run with `cargo bench --bench ledger` (`LEDGER_BENCH_ROWS=N` for another size,
//! `LEDGER_BENCH_PAIRS=N` for more pairs of runs without and with the ledger; the median of the
//! pairs is the figure). Timings are printed, never asserted.

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
name = "Company"
numberofemployees = { from = "Employees", type = "int" }
address1_city = "City"
"#;

fn generate(path: &Path, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "Account No,Company,Employees,City").unwrap();
    for i in 1..=rows {
        writeln!(
            out,
            "ACC-{i:07},Company {i} Ltd,{},City {}",
            i % 5000,
            i % 97
        )
        .unwrap();
    }
}

/// The rows of `from` (after its header) in a fixed pseudo-random order: keys in no order.
fn shuffle(from: &Path, to: &Path) {
    let text = std::fs::read_to_string(from).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<&str> = lines.collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..rows.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        rows.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(to).unwrap());
    writeln!(out, "{header}").unwrap();
    for row in rows {
        writeln!(out, "{row}").unwrap();
    }
}

fn time(dir: &Path, label: &str, args: &[&str], rows: u64) -> f64 {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dvload"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run dvload");
    let secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{label}: exit {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("read "))
        .unwrap_or_default();
    println!(
        "{label:<40} {secs:>7.2} s  {:>9.0} rows/s   {summary}",
        rows as f64 / secs
    );
    secs
}

fn main() {
    let rows: u64 = std::env::var("LEDGER_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("bench.csv"), rows);
    std::fs::write(dir.path().join("bench.toml"), MAPPING).unwrap();
    println!("{rows} rows, batch size 1000");
    let b = ["run", "bench.toml", "--batch-size", "1000"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        b.iter().copied().chain(extra.iter().copied()).collect()
    };
    let dry = time(
        dir.path(),
        "dry run (no ledger)",
        &with(&["--dry-run"]),
        rows,
    );
    // Pairs of runs without and with the ledger, in alternating order, each with a fresh state
    // directory: the host's speed drifts from minute to minute, so each pair is compared on its
    // own and the median of the pairs is the figure.
    let pairs: usize = std::env::var("LEDGER_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut ratios = Vec::with_capacity(pairs);
    for pair in 0..pairs {
        let state = format!("state-{pair}");
        let state_args = ["--emulator", "--state", state.as_str()];
        let run_without = || {
            time(
                dir.path(),
                "emulator, --no-ledger",
                &with(&["--emulator", "--no-ledger"]),
                rows,
            )
        };
        let run_with = || {
            let args: Vec<&str> = b.iter().copied().chain(state_args).collect();
            time(
                dir.path(),
                "emulator, ledger (fresh state directory)",
                &args,
                rows,
            )
        };
        let (without, ledger) = if pair % 2 == 0 {
            let w = run_without();
            (w, run_with())
        } else {
            let l = run_with();
            (run_without(), l)
        };
        let cost = (ledger / without - 1.0) * 100.0;
        println!("  pair {}: ledger cost {cost:+.1}% run time", pair + 1);
        ratios.push(cost);
    }
    let last_state = format!("state-{}", pairs - 1);
    let changed_args: Vec<&str> = b
        .iter()
        .copied()
        .chain([
            "--emulator",
            "--state",
            last_state.as_str(),
            "--changed-only",
        ])
        .collect();
    time(
        dir.path(),
        "emulator, ledger, --changed-only (same data)",
        &changed_args,
        rows,
    );
    let dry_changed: Vec<&str> = b
        .iter()
        .copied()
        .chain([
            "--dry-run",
            "--changed-only",
            "--state",
            last_state.as_str(),
        ])
        .collect();
    let dry_with = time(
        dir.path(),
        "dry run reading the ledger (--changed-only)",
        &dry_changed,
        rows,
    );
    println!(
        "  dry run: reading the ledger costs {:+.1}% run time",
        (dry_with / dry - 1.0) * 100.0
    );
    shuffle(
        &dir.path().join("bench.csv"),
        &dir.path().join("shuffled.csv"),
    );
    std::fs::write(
        dir.path().join("shuffled.toml"),
        MAPPING.replace("bench.csv", "shuffled.csv"),
    )
    .unwrap();
    time(
        dir.path(),
        "emulator, ledger, rows in shuffled order",
        &[
            "run",
            "shuffled.toml",
            "--batch-size",
            "1000",
            "--emulator",
            "--state",
            "state-shuffled",
        ],
        rows,
    );
    ratios.sort_by(f64::total_cmp);
    println!(
        "ledger cost against the emulator: median {:+.1}% run time over {pairs} pairs (each: {})",
        ratios[ratios.len() / 2],
        ratios
            .iter()
            .map(|r| format!("{r:+.1}%"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let size = std::fs::metadata(dir.path().join(&last_state).join("ledger.sqlite"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("ledger file: {:.1} MB", size as f64 / 1e6);
}
