//! Writer throughput against the emulator's service protection limits: the emulator charges a
//! simulated execution cost per operation and allows a scaled-down execution-time budget per
//! window, so the most any client can write is known; this prints rows/s achieved, that maximum,
//! and their ratio, and checks that no row was lost or written twice.
//! Run with `cargo bench --bench writer`. Figures are printed, never asserted.

use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

use dataverse_emulator::{Config, StartOptions, defaults, start};

const ROWS: u64 = 60_000;
const WINDOW_SECS: f64 = 5.0;
const MAX_EXEC_MS: u64 = 10_000;
const OP_COST_MS: u64 = 1;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.limits.enabled = true;
    config.limits.window_secs = WINDOW_SECS;
    config.limits.max_exec_ms = MAX_EXEC_MS;
    config.limits.max_requests = 1_000_000;
    config.limits.op_cost_ms = OP_COST_MS;
    let config_dop = config.limits.dop_hint;
    let emulator = runtime
        .block_on(start(config, StartOptions::default()))
        .expect("emulator");
    let base = emulator.base_url().to_string();

    let dir = tempfile::tempdir().unwrap();
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.path().join("a.csv")).unwrap());
    writeln!(csv, "Account No,Company,Employees").unwrap();
    for i in 1..=ROWS {
        writeln!(csv, "B-{i:07},Company {i},{}", i % 5000).unwrap();
    }
    csv.flush().unwrap();
    drop(csv);
    std::fs::write(
        dir.path().join("m.toml"),
        "[source]\npath = \"a.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { accountnumber = \"Account No\" }\n[fields]\nname = \"Company\"\n\
         numberofemployees = { from = \"Employees\", type = \"int\" }\n",
    )
    .unwrap();

    // What the emulator charges (crates/dataverse-emulator/src/limits.rs): each admitted request
    // is charged its wall time when it completes, and a request is refused while the completed
    // requests of the last WINDOW_SECS add up to MAX_EXEC_MS. So, at OP_COST_MS per operation:
    // * at most `rate` operations per second are sustained, and any WINDOW_SECS span holds at
    //   most one budget's worth (plus what was already in flight when the budget ran out);
    // * a run of ROWS therefore spans at least ROWS / rate - WINDOW_SECS seconds: the first
    //   window's budget comes free, but only to a client that can spend a whole budget at once.
    //   That needs unbounded concurrency; this is `best_secs`, kept as the headline figure;
    // * dvload keeps at most x-ms-dop-hint batches in flight (the emulator sends `dop_hint`), so
    //   spending one window's budget takes it MAX_EXEC_MS / dop_hint ms at the least: one window
    //   is never free, that much of it is spent at the end of the run (`best_at_dop`).
    // Both are optimistic: the charge is the request's wall time, which also holds the parsing
    // and the upserts themselves (measured 1.04-1.05 ms per operation at OP_COST_MS = 1), and
    // the emulator's Retry-After is whole seconds (at least 1) against a 5 s window, where
    // Dataverse's is whole seconds against 300 s: each 429 costs a client that honours it
    // about half a second, a tenth of a window.
    let rate = MAX_EXEC_MS as f64 / OP_COST_MS as f64 / WINDOW_SECS;
    let best_secs = (ROWS as f64 / rate - WINDOW_SECS).max(ROWS as f64 / rate / 2.0);
    let dop = config_dop as f64;
    let best_at_dop = best_secs + MAX_EXEC_MS as f64 / 1000.0 / dop;
    println!(
        "dvload run against the emulator: {ROWS} upserts, cost {OP_COST_MS} ms/op, {MAX_EXEC_MS} ms of execution per {WINDOW_SECS} s window \
         (at most {rate:.0} ops/s; the fastest possible run takes {best_secs:.1} s, {best_at_dop:.1} s with at most {config_dop} batches in flight)"
    );
    for batch_size in ["100", "250"] {
        let start_time = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_dvload"))
            .args([
                "run",
                "m.toml",
                "--batch-size",
                batch_size,
                "--report",
                "r.json",
            ])
            .current_dir(dir.path())
            .env("DATAVERSE_URL", &base)
            .env("AZURE_AUTHORITY_HOST", &base)
            .env("AZURE_TENANT_ID", defaults::TENANT_ID)
            .env("AZURE_CLIENT_ID", defaults::CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", defaults::CLIENT_SECRET)
            .output()
            .unwrap();
        let secs = start_time.elapsed().as_secs_f64();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
        let held = emulator.state.count("account") as u64;
        println!(
            "batch size {batch_size:>4}: {:>7.0} rows/s in {secs:.1} s = {:.0}% of the best possible; written {}, held {held} (lost or doubled: {}), \
             {} requests, {} throttling pauses, {} retries ({:.0}% of the best at {config_dop} in flight)",
            ROWS as f64 / secs,
            100.0 * best_secs / secs,
            report["written"],
            ROWS as i64 - held as i64,
            report["batches"],
            report["throttle_waits"],
            report["retries"],
            100.0 * best_at_dop / secs,
        );
        // The next run updates the same rows; wait for the window to empty first.
        std::thread::sleep(std::time::Duration::from_secs_f64(WINDOW_SECS));
    }
    runtime.block_on(emulator.shutdown());
}
