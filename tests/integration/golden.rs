//! Golden outputs (issue 23, step 0): a fixed set of jobs run deterministically (one batch in
//! flight, an emulator without faults) and what they print and write, compared with the files
//! recorded under `tests/golden/`. The refactor of the run pipeline keeps them unchanged; a
//! change meant to change an output is its own commit that records them again and says so:
//! `DVLOAD_GOLDEN_RECORD=1 cargo test --test integration golden`.
//!
//! What differs from run to run is normalized first: the work directory, the emulator's
//! address, GUIDs (record ids, batch boundaries), durations and rates, and the report's
//! timestamps. Outputs larger than [`WHOLE`] are kept as a digest (SHA-256, size, lines) and
//! their first lines. A mismatch writes every output of the job to `target/golden-actual/JOB/`
//! for `diff -r tests/golden/JOB target/golden-actual/JOB`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::attack::dvload_after_batches;
use crate::support::{Emu, Workdir};

/// Outputs up to this size are kept whole; larger ones as a digest and their first lines.
const WHOLE: usize = 48 * 1024;
/// The first lines kept of a large output.
const HEAD_LINES: usize = 40;

fn golden_dir(job: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(job)
}

/// What one job printed and wrote, by output name, normalized.
#[derive(Default)]
struct Outputs(BTreeMap<String, String>);

impl Outputs {
    fn add(&mut self, name: &str, text: String) {
        let kept = if text.len() > WHOLE {
            digest(&text)
        } else {
            text
        };
        assert!(
            self.0.insert(name.to_string(), kept).is_none(),
            "output {name} twice"
        );
    }

    /// Compares with (or, with `DVLOAD_GOLDEN_RECORD=1`, records as) `tests/golden/JOB/`.
    fn check(self, job: &str) {
        let dir = golden_dir(job);
        if std::env::var_os("DVLOAD_GOLDEN_RECORD").is_some() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in &self.0 {
                std::fs::write(dir.join(name), text).unwrap();
            }
            return;
        }
        let mut recorded = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (record with DVLOAD_GOLDEN_RECORD=1)",
                dir.display()
            )
        }) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            recorded.insert(name, std::fs::read_to_string(&path).unwrap());
        }
        let mut problems = Vec::new();
        for (name, want) in &recorded {
            match self.0.get(name) {
                None => problems.push(format!("{name}: no longer produced")),
                Some(got) if got != want => {
                    let line = got
                        .lines()
                        .zip(want.lines())
                        .position(|(g, w)| g != w)
                        .map_or_else(
                            || got.lines().count().min(want.lines().count()) + 1,
                            |i| i + 1,
                        );
                    problems.push(format!("{name}: differs from line {line}"));
                }
                Some(_) => {}
            }
        }
        for name in self.0.keys().filter(|n| !recorded.contains_key(*n)) {
            problems.push(format!("{name}: new output, not recorded"));
        }
        if !problems.is_empty() {
            let actual = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/golden-actual")
                .join(job);
            let _ = std::fs::remove_dir_all(&actual);
            std::fs::create_dir_all(&actual).unwrap();
            for (name, text) in &self.0 {
                std::fs::write(actual.join(name), text).unwrap();
            }
            panic!(
                "golden outputs of {job} changed:\n  {}\ncompare: diff -r {} {}",
                problems.join("\n  "),
                dir.display(),
                actual.display()
            );
        }
    }
}

/// A large output's digest and first lines.
fn digest(text: &str) -> String {
    let sha = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = sha.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut out = format!(
        "sha256 {hex}\nbytes {}\nlines {}\n--- first {HEAD_LINES} lines\n",
        text.len(),
        text.lines().count()
    );
    for line in text.lines().take(HEAD_LINES) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Replaces what differs from run to run: `dir`, the emulator's address, GUIDs, durations.
fn normalize(text: &str, dir: &Path, emu: Option<&Emu>) -> String {
    let mut s = text.replace(&dir.display().to_string(), "<dir>");
    if let Some(emu) = emu {
        s = s.replace(emu.base_url().trim_end_matches('/'), "<emulator>");
    }
    durations(&guids(&s))
}

/// Every GUID (8-4-4-4-12 hex digits) as `<uuid>`.
fn guids(s: &str) -> String {
    let b = s.as_bytes();
    let shape = |i: usize| -> bool {
        if i + 36 > b.len() {
            return false;
        }
        b[i..i + 36].iter().enumerate().all(|(j, c)| {
            if matches!(j, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if shape(i) {
            out.push_str(&s[copied..i]);
            out.push_str("<uuid>");
            i += 36;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// ` in 1.23 s (4,567 rows/s)` as ` in <t>`, `(0.0 s waited)` as `(<t> waited)`.
fn durations(s: &str) -> String {
    s.lines()
        .map(|line| {
            let mut line = line.to_string();
            if let Some(at) = line.find(" rows/s)") {
                if let Some(start) = line[..at].rfind(" in ") {
                    line.replace_range(start..at + " rows/s)".len(), " in <t>");
                }
            }
            if let Some(at) = line.find(" s waited)") {
                if let Some(start) = line[..at].rfind('(') {
                    line.replace_range(start..at + " s waited)".len(), "(<t> waited)");
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if s.ends_with('\n') { "\n" } else { "" }
}

/// A report without its timings, pretty-printed, GUIDs normalized.
fn report(w: &Workdir, name: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&w.read(name)).expect("report JSON");
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["duration_ms", "started_at", "ended_at", "waited_ms"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    normalize(
        &(serde_json::to_string_pretty(&v).unwrap() + "\n"),
        w.path(),
        None,
    )
}

/// The records of `tables`, one line each (columns sorted, GUIDs normalized, timestamps and row
/// versions left out), sorted.
fn state(emu: &Emu, tables: &[&str]) -> String {
    let mut out = String::new();
    for table in tables {
        let mut lines: Vec<String> = emu
            .state
            .rows(table)
            .iter()
            .map(|r| {
                let mut cols: Vec<(&String, &serde_json::Value)> = r
                    .fields
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "createdon" | "modifiedon" | "versionnumber")
                    })
                    .collect();
                cols.sort_by(|a, b| a.0.cmp(b.0));
                let cols: Vec<String> = cols.iter().map(|(k, v)| format!("{k}={v}")).collect();
                guids(&format!("{table}: {}", cols.join(" ")))
            })
            .collect();
        lines.sort();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// A work directory holding a copy of the repository's `mappings/` and `samples/`.
fn samples() -> Workdir {
    let w = Workdir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["mappings", "samples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue; // a state directory left by a run in the repository
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            w.write(&format!("{dir}/{name}"), std::fs::read(&path).unwrap());
        }
    }
    w
}

/// The files in `dir` whose name holds `part`, relative to `w` (`.`: the names alone), sorted.
fn files_named(w: &Workdir, dir: &str, part: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(w.path().join(dir))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(part))
                .map(|n| if dir == "." { n } else { format!("{dir}/{n}") })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

const SAMPLES: [&str; 3] = [
    "mappings/accounts.toml",
    "mappings/contacts.toml",
    "mappings/leads.toml",
];
const TABLES: [&str; 3] = ["account", "contact", "lead"];

/// Runs `dvload ARGS` in `w` against `emu`; its exit code and normalized stdout.
fn dvload(w: &Workdir, emu: &Emu, args: &[&str]) -> (i32, String) {
    let out = w.dvload_env(args, &emu.env());
    (out.code, normalize(&out.stdout, w.path(), Some(emu)))
}

/// The samples loaded, their rejects replayed unfixed, then the first run undone.
#[test]
fn golden_samples_run_replay_and_undo() {
    let emu = Emu::start();
    let w = samples();
    let mut o = Outputs::default();
    let mut args = vec!["run"];
    args.extend(SAMPLES);
    args.extend(["--concurrency", "1", "--report", "run.report.json"]);
    let (code, stdout) = dvload(&w, &emu, &args);
    o.add("run.stdout", format!("exit {code}\n{stdout}"));
    o.add("run.report.json", report(&w, "run.report.json"));
    let rejects = files_named(&w, ".", ".rejects.");
    assert!(!rejects.is_empty(), "the samples have rejects");
    for f in &rejects {
        o.add(&f.replace('/', "_"), normalize(&w.read(f), w.path(), None));
    }
    o.add("run.state", state(&emu, &TABLES));

    let accounts_rejects = rejects
        .iter()
        .find(|f| f.contains("accounts"))
        .expect("accounts rejects");
    let (code, stdout) = dvload(
        &w,
        &emu,
        &[
            "run",
            "mappings/accounts.toml",
            "--source",
            accounts_rejects,
            "--concurrency",
            "1",
            "--report",
            "replay.report.json",
            "--rejects",
            "replay.rejects.csv",
        ],
    );
    o.add("replay.stdout", format!("exit {code}\n{stdout}"));
    o.add("replay.report.json", report(&w, "replay.report.json"));
    o.add(
        "replay.rejects.csv",
        normalize(&w.read("replay.rejects.csv"), w.path(), None),
    );

    let (code, stdout) = dvload(
        &w,
        &emu,
        &[
            "undo",
            "1",
            "--yes",
            "--state",
            "mappings/.dvload",
            "--concurrency",
            "1",
        ],
    );
    o.add("undo.stdout", format!("exit {code}\n{stdout}"));
    o.add("undo.state", state(&emu, &TABLES));
    o.check("samples");
}

/// The samples killed after a few batches and resumed end as an uninterrupted run: the same
/// records, the same rejects files (those are pinned by `golden/samples`).
#[test]
fn golden_a_resumed_run_ends_as_an_uninterrupted_one() {
    let mut args = vec!["run"];
    args.extend(SAMPLES);
    args.extend(["--concurrency", "1", "--resume"]);
    let whole = |emu: &Emu, w: &Workdir| {
        let mut files = vec![("state".to_string(), state(emu, &TABLES))];
        for f in files_named(w, ".", ".rejects.") {
            let text = normalize(&w.read(&f), w.path(), None);
            files.push((f, text));
        }
        files
    };
    let (emu, w) = (Emu::start(), samples());
    assert_eq!(dvload(&w, &emu, &args).0, 1, "the samples end with rejects");
    let uninterrupted = whole(&emu, &w);
    let (emu, w) = (Emu::start(), samples());
    let first = dvload_after_batches(&w, &emu, &args, 3, 9);
    assert_eq!(first.code, -1, "killed: {}", first.stdout);
    assert_eq!(dvload(&w, &emu, &args).0, 1, "the samples end with rejects");
    let resumed = whole(&emu, &w);
    for ((name, want), (_, got)) in uninterrupted.iter().zip(&resumed) {
        if got != want {
            let line = got.lines().zip(want.lines()).position(|(g, w)| g != w);
            let at = |t: &str| {
                line.and_then(|l| t.lines().nth(l))
                    .unwrap_or("")
                    .to_string()
            };
            panic!(
                "{name} differs after the resume, first at line {line:?}:\n  resumed:       {}\n  uninterrupted: {}",
                at(got),
                at(want)
            );
        }
    }
    assert_eq!(uninterrupted.len(), resumed.len(), "rejects files");
}

/// The dry runs: the samples and the benchmark's file, each request as `--emit-batches`
/// writes it.
#[test]
fn golden_dry_runs_emit_the_same_batches() {
    let w = samples();
    let mut o = Outputs::default();
    let mut args = vec!["run"];
    args.extend(SAMPLES);
    args.extend(["--dry-run", "--emit-batches", "emitted"]);
    let out = w.dvload(&args);
    o.add(
        "samples.stdout",
        format!(
            "exit {}\n{}",
            out.code,
            normalize(&out.stdout, w.path(), None)
        ),
    );
    emitted(&w, "emitted", "samples", &mut o);

    crate::bench_file::generate(&w.path().join("bench.csv"), 10_000);
    w.write("bench.toml", crate::bench_file::MAPPING);
    let out = w.dvload(&[
        "run",
        "bench.toml",
        "--dry-run",
        "--emit-batches",
        "bench",
        "--batch-size",
        "1000",
        "--atomic",
        "--rejects",
        "bench.rejects.csv",
    ]);
    o.add(
        "bench.stdout",
        format!(
            "exit {}\n{}",
            out.code,
            normalize(&out.stdout, w.path(), None)
        ),
    );
    o.add(
        "bench.rejects.csv",
        normalize(&w.read("bench.rejects.csv"), w.path(), None),
    );
    emitted(&w, "bench", "bench", &mut o);
    o.check("dry-run");
}

/// Every request file under `dir`, as `PREFIX.NAME` outputs.
fn emitted(w: &Workdir, dir: &str, prefix: &str, o: &mut Outputs) {
    let files = files_named(w, dir, "batch-");
    assert!(!files.is_empty(), "no requests in {dir}");
    for f in files {
        let name = f.rsplit('/').next().unwrap();
        o.add(
            &format!("{prefix}.{name}"),
            normalize(&w.read(&f), w.path(), None),
        );
    }
}
