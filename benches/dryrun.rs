//! Dry-run throughput benchmark: generates a 12-column CSV (100,000 and 1,000,000 rows), runs
//! `dvload run --dry-run` over it (read, map, encode every `$batch` body; nothing sent) and prints
//! rows/s and the child's peak RSS. Run with `cargo bench --bench dryrun`. Timings are printed,
//! never asserted (machines here are shared and noisy); to compare versions, count instructions
//! instead: `valgrind --tool=callgrind target/release/dvload run m.toml --dry-run` over the same
//! generated file (about 8,500 instructions per row for this layout).

use std::process::Command;
use std::time::Instant;

#[path = "common/bench_file.rs"]
mod bench_file;

use bench_file::{MAPPING, generate};

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
