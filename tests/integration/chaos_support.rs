//! Seeded chaos for `dvload run`: random small jobs and fault mixes, an oracle computed from the
//! job alone, a runner that kills the process with SIGKILL and resumes it, and the checks.
//!
//! A seed decides everything that can be decided: the job (operation, rows, duplicate keys,
//! lookups, invalid and refused rows, records already in the emulator), the options
//! (`--atomic`, `--batch-size`, `--concurrency`), the fault mix and how many times the run is
//! killed, and (from a stream of its own) how the source spells each key: as the oracle knows it,
//! in lower case, with trailing spaces or with accents, which the service (English, `_CI_AI`)
//! takes for one key (issue 22); the
//! checks compare keys as the service does. What cannot be (thread timing, where a kill lands) is
//! why the oracle says, per row, what
//! is *allowed*, and is exact wherever the promise is: each keyed record exactly once with the
//! values of the last row of its key that was written; every row written, rejected or skipped
//! exactly once across the resume chain; the rejects file holding exactly the rejected rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataverse_emulator::{Config, FaultsConfig};

use crate::support::{Emu, RejectRow, Workdir, read_rejects_csv};

// ---------------------------------------------------------------------------------------------
// Randomness: SplitMix64, so that a seed means the same job whatever crate versions do.

/// A small deterministic generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// The job.

/// The mapping's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `PATCH set(key)`.
    Upsert,
    /// `PATCH set(key)` + `If-None-Match: *`.
    Create,
    /// `POST set`: no key.
    Keyless,
    /// `PATCH set(key)` + `If-Match: *`.
    Update,
    /// `DELETE set(key)`.
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Create | Op::Keyless => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// What a row is, as the generator made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Maps, and Dataverse takes its values.
    Valid,
    /// Does not map (employees not a number; for a delete, an empty key): rejected before sending.
    Invalid,
    /// Maps, but Dataverse refuses its name (longer than the column's 160 characters).
    Refused,
    /// Skipped by the mapping's filter (`Name = SKIP`).
    Skip,
}

/// One source row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Source row number (1-based, the header excluded).
    pub n: u64,
    /// The key as the oracle knows it (upper case, no trailing space).
    pub key: String,
    /// The key as the source writes it: `key`, or another spelling the service takes for the
    /// same key (lower case, trailing spaces).
    pub spelled: String,
    /// The parent key as the source writes it.
    pub parent_spelled: String,
    pub name: String,
    pub employees: String,
    pub parent: String,
    /// Revenue as the JSON source writes it (a number of up to 18 digits); empty in CSV jobs.
    pub revenue: String,
    pub kind: Kind,
}

/// A record's values as the oracle and the checks compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub name: String,
    pub employees: Option<i64>,
    pub parent: Option<String>,
    /// Revenue, every digit, in [`canon_decimal`] form (JSON jobs only).
    pub revenue: Option<String>,
}

impl Rec {
    fn of(row: &Row) -> Rec {
        Rec {
            name: row.name.clone(),
            employees: row.employees.parse().ok(),
            parent: (!row.parent.is_empty()).then(|| row.parent.clone()),
            revenue: (!row.revenue.is_empty()).then(|| canon_decimal(&row.revenue)),
        }
    }

    fn show(&self) -> String {
        let name = if self.name.len() > 20 {
            format!("{}…", &self.name[..8])
        } else {
            self.name.clone()
        };
        format!(
            "{name}/{}/{}{}",
            self.employees.map_or("-".into(), |e| e.to_string()),
            self.parent.as_deref().unwrap_or("-"),
            self.revenue
                .as_deref()
                .map_or(String::new(), |r| format!("/{r}"))
        )
    }
}

/// A decimal number's text without the zeros a fraction may end with (`1.50` is `1.5`, `2.0`
/// is `2`): how the oracle compares an amount sent with the amount held.
pub fn canon_decimal(s: &str) -> String {
    match s.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => s.to_string(),
    }
}

/// A job and everything around it.
#[derive(Debug, Clone)]
pub struct Job {
    pub seed: u64,
    pub op: Op,
    pub atomic: bool,
    pub batch_size: u16,
    pub concurrency: Option<u16>,
    pub rows: Vec<Row>,
    /// Records in the emulator before the run: key, name, employees.
    pub pre: Vec<(String, Rec)>,
    pub faults: FaultsConfig,
    pub token_lifetime: Option<u64>,
    /// Revoke every token once the emulator has seen this many Web API requests of the job.
    pub revoke_all_after: Option<u64>,
    /// How many times the run is killed (SIGKILL) before it may finish.
    pub kills: u32,
    /// True when the job avoids everything whose outcome depends on how rows fall into batches
    /// (`--atomic` with kills: the resumed runs batch other rows together).
    pub clean: bool,
    /// Where the job meets the service and the machine beyond a plain run (issue 22).
    pub seams: Seams,
}

/// The seams of issue 22 a job may include, drawn from a stream of their own (8) so that the
/// rest of every seed's job is what it was before they were added.
#[derive(Debug, Clone, Default)]
pub struct Seams {
    /// The source is JSON Lines whose rows carry long numbers (revenue, Money, every digit).
    pub json: bool,
    /// Runs of the chain, before the last, started with the state directory full: each file
    /// may grow only a few kilobytes past the ledger's size (`ulimit -f`), so the ledger fails
    /// mid-run; the next run resumes.
    pub disk_full: u32,
    /// After the chain, the job is pointed at another environment (`--resume`,
    /// `--changed-only` and `undo`): each is refused, and nothing is written there.
    pub switch_env: bool,
    /// After the chain and its checks, `undo` is killed this many times, then run to its end:
    /// every record the chain created is gone, every other record is as it was.
    pub undo_kills: Option<u32>,
    /// Keys another job creates by key with the same application user (its own state
    /// directory, no faults) after the first run of the chain, which is then killed: the job
    /// must reject its rows of the keys the other job took, never count its records as its own,
    /// and its `undo` must leave them. Non-`--atomic` creates and upserts only.
    pub neighbour: Vec<String>,
    /// The mapping says `empty = "keep"` (an empty parent or revenue leaves the record's as it
    /// is) rather than `empty = "clear"` (sent as null), drawn from a stream of its own (13).
    pub keep_empty: bool,
}

impl Seams {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.keep_empty {
            parts.push("empty values keep".to_string());
        }
        if self.json {
            parts.push("JSON Lines with long numbers".to_string());
        }
        if self.disk_full > 0 {
            parts.push(format!("{} run(s) on a full disk", self.disk_full));
        }
        if self.switch_env {
            parts.push("then another environment".into());
        }
        if let Some(k) = self.undo_kills {
            parts.push(format!("then undo killed {k} time(s)"));
        }
        if !self.neighbour.is_empty() {
            parts.push(format!(
                "another job of the same user creates {} of its keys",
                self.neighbour.len()
            ));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {}", parts.join(", "))
        }
    }

    fn generate(seed: u64) -> Seams {
        let mut r = Rng::new(seed, 8);
        Seams {
            keep_empty: Rng::new(seed, 13).chance(0.5),
            json: r.chance(0.25),
            disk_full: if r.chance(0.15) {
                1 + r.below(2) as u32
            } else {
                0
            },
            switch_env: r.chance(0.15),
            undo_kills: r.chance(0.2).then(|| r.below(3) as u32),
            // Which keys: drawn once the rows are known (Job::generate).
            neighbour: if r.chance(0.4) {
                vec![String::new()]
            } else {
                Vec::new()
            },
        }
    }
}

impl Job {
    /// The job of `seed`.
    pub fn generate(seed: u64) -> Job {
        let mut r = Rng::new(seed, 1);
        let op = match r.below(10) {
            0..=2 => Op::Upsert,
            3..=4 => Op::Create,
            5 => Op::Keyless,
            6..=7 => Op::Update,
            _ => Op::Delete,
        };
        let atomic = r.chance(0.4);
        let kills = if r.chance(0.5) {
            0
        } else {
            1 + r.below(3) as u32
        };
        let clean = atomic && kills > 0;
        let n_rows = 24 + r.below(177);
        let batch_size = r.pick(&[1u16, 2, 3, 5, 7, 10, 16, 25, 50]);
        let p_dup = r.pick(&[0.0, 0.1, 0.25, 0.4]);
        let p_pre = r.pick(&[0.0, 0.2, 0.5, 0.8]);
        let p_parent = if op == Op::Delete {
            0.0
        } else {
            r.pick(&[0.0, 0.2, 0.5])
        };
        let p_invalid = r.pick(&[0.0, 0.03, 0.08]);
        let p_refused = if clean || op == Op::Delete {
            0.0
        } else {
            r.pick(&[0.0, 0.03, 0.08])
        };
        let p_skip = r.pick(&[0.0, 0.03]);
        // Parent keys (rows of these never look anything up) and the others.
        let n_parents = 2 + n_rows / 10;
        let parent_key = |i: u64| format!("P-{i:03}");
        let mut pre: Vec<(String, Rec)> = Vec::new();
        let mut pre_keys = BTreeSet::new();
        // Parents in the emulator before the run that no row touches: lookups may point at them.
        for i in 0..2 {
            let key = format!("E-{i:03}");
            pre_keys.insert(key.clone());
            pre.push((key.clone(), pre_rec(&key, 900 + i)));
        }
        let mut used: Vec<String> = Vec::new();
        let mut used_set = BTreeSet::new();
        let mut rows = Vec::new();
        let mut next_child = 0u64;
        // Keys with a Valid row so far (clean jobs look up only those, or pre-existing ones).
        let mut valid_so_far: BTreeSet<String> = BTreeSet::new();
        for n in 1..=n_rows {
            let is_parent_row = r.chance(0.25);
            let dup = !clean_unique(op, clean) && !used.is_empty() && r.chance(p_dup);
            let key = if op == Op::Keyless {
                format!("R-{n:04}")
            } else if dup {
                used[r.below(used.len() as u64) as usize].clone()
            } else if is_parent_row {
                let mut k = parent_key(r.below(n_parents));
                if clean_unique(op, clean) {
                    // A fresh one.
                    let mut i = 0;
                    while used_set.contains(&k) {
                        k = parent_key(n_parents + i);
                        i += 1;
                    }
                }
                k
            } else {
                next_child += 1;
                format!("C-{next_child:04}")
            };
            if op != Op::Keyless && !used_set.contains(&key) {
                used_set.insert(key.clone());
                used.push(key.clone());
                // Whether the record is there before the run.
                let must_pre = clean && matches!(op, Op::Update | Op::Delete);
                let must_not = clean && op == Op::Create;
                if must_pre || (!must_not && r.chance(p_pre)) {
                    pre_keys.insert(key.clone());
                    pre.push((key.clone(), pre_rec(&key, 1000 + n)));
                }
            }
            let mut kind = Kind::Valid;
            if r.chance(p_invalid) {
                kind = Kind::Invalid;
            } else if r.chance(p_refused) {
                kind = Kind::Refused;
            } else if r.chance(p_skip) {
                kind = Kind::Skip;
            }
            let parent = if !key.starts_with("P-") && !key.starts_with("E-") && r.chance(p_parent) {
                pick_parent(&mut r, op, clean, n_parents, &pre_keys, &valid_so_far)
            } else {
                String::new()
            };
            let (name, employees) = match kind {
                Kind::Valid => (format!("N{n}"), n.to_string()),
                Kind::Invalid => (format!("N{n}"), format!("e{n}")),
                // Out of the column's range: only the service refuses it (the mapping takes the
                // column's length from the metadata, not its range).
                Kind::Refused => (format!("N{n}"), format!("-{n}")),
                Kind::Skip => ("SKIP".into(), n.to_string()),
            };
            let key = if op == Op::Delete && kind == Kind::Invalid {
                String::new()
            } else {
                key
            };
            if kind == Kind::Valid {
                valid_so_far.insert(key.clone());
            }
            rows.push(Row {
                n,
                spelled: key.clone(),
                parent_spelled: parent.clone(),
                key,
                name,
                employees,
                parent,
                revenue: String::new(),
                kind,
            });
        }
        // Other spellings of the same keys (issue 22: keys compared as the service compares
        // them), drawn from a stream of their own so that every seed's job is otherwise the same.
        let mut spell = Rng::new(seed, 7);
        let p_respell = spell.pick(&[0.0, 0.0, 0.3, 0.6]);
        let mut respell = |key: &str| -> String {
            if key.is_empty() || !spell.chance(p_respell) {
                return key.to_string();
            }
            match spell.below(4) {
                0 => key.to_lowercase(),
                1 => format!("{key}  "),
                2 => format!("{} ", key.to_lowercase()),
                // Accents the emulator's English (`_CI_AI`) collation ignores.
                _ => key.replacen('C', "Ç", 1).replacen('E', "É", 1),
            }
        };
        for row in &mut rows {
            row.spelled = respell(&row.key);
            row.parent_spelled = respell(&row.parent);
        }
        let mut seams = Seams::generate(seed);
        if atomic && !clean {
            // A run stopped by a full disk is resumed like a killed one: its rows are batched
            // otherwise, which only a clean job's oracle allows for.
            seams.disk_full = 0;
        }
        let mut kills = kills;
        if !seams.neighbour.is_empty() {
            seams.neighbour.clear();
            if !atomic && matches!(op, Op::Create | Op::Upsert) {
                // Keys of the job that are not there before it: about a third.
                let mut pick = Rng::new(seed, 12);
                let keys: BTreeSet<&str> = rows
                    .iter()
                    .map(|r| r.key.as_str())
                    .filter(|k| !k.is_empty() && !pre_keys.contains(*k))
                    .collect();
                seams.neighbour = keys
                    .into_iter()
                    .filter(|_| pick.chance(0.35))
                    .map(str::to_string)
                    .collect();
                // It writes while the job is stopped between two runs.
                kills = kills.max(1);
            }
        }
        if seams.json {
            // Long numbers (issue 22: no f64 on the way): up to 14 whole digits and 4 decimals,
            // beyond f64's 15-16 significant digits. Half the rows the service refuses carry an
            // amount beyond Money's range as well.
            let mut digits = Rng::new(seed, 9);
            for row in &mut rows {
                let whole = 1 + digits.below(99_999_999_999_999);
                row.revenue = match digits.below(3) {
                    0 => whole.to_string(),
                    _ => format!("{whole}.{:0width$}", digits.below(10_000), width = 4),
                };
                if row.kind == Kind::Refused && digits.chance(0.5) {
                    row.name = format!("N{}", row.n);
                    row.revenue = "99999999999999999999.99".into();
                }
            }
        }
        let faults = fault_mix(&mut r);
        let token_lifetime = r.chance(0.2).then_some(2);
        let revoke_all_after = r.chance(0.2).then(|| 2 + r.below(8));
        let in_file_lookups = rows
            .iter()
            .any(|row| !row.parent.is_empty() && !row.parent.starts_with("E-"));
        // --atomic outcomes depend on which change set is applied first when rows depend on
        // each other (a lookup to a row of the file, a second create or delete of a key, a
        // refused row): one batch at a time keeps them what the oracle computes.
        let order_dependent = in_file_lookups || p_refused > 0.0 || p_dup > 0.0;
        let concurrency = if atomic && order_dependent {
            Some(1)
        } else if r.chance(0.5) {
            None
        } else {
            Some(1 + r.below(4) as u16)
        };
        Job {
            seed,
            op,
            atomic,
            batch_size,
            concurrency,
            rows,
            pre,
            faults,
            token_lifetime,
            revoke_all_after,
            kills,
            clean,
            seams,
        }
    }

    /// One line that says what the job is.
    pub fn describe(&self) -> String {
        let count = |k: Kind| self.rows.iter().filter(|r| r.kind == k).count();
        let keys: BTreeSet<&str> = self.rows.iter().map(|r| r.key.as_str()).collect();
        let f = &self.faults;
        let mut faults = Vec::new();
        for (name, rate) in [
            ("5xx", f.fail_rate),
            ("reset", f.reset_rate),
            ("429", f.throttle_rate),
            ("storm", f.storm_rate),
            ("slow", f.slow_rate),
            ("revoke", f.revoke_rate),
        ] {
            if rate > 0.0 {
                faults.push(format!("{name} {rate}"));
            }
        }
        if let Some(l) = self.token_lifetime {
            faults.push(format!("tokens live {l} s"));
        }
        if let Some(n) = self.revoke_all_after {
            faults.push(format!("all tokens revoked after {n} requests"));
        }
        format!(
            "seed {}: {} {} rows ({} keys, {} invalid, {} refused, {} skipped, {} lookups, {} pre-existing), {}--batch-size {}{}, faults [{}], {} kill(s){}{}",
            self.seed,
            if self.op == Op::Keyless {
                "keyless create"
            } else {
                self.op.name()
            },
            self.rows.len(),
            keys.len(),
            count(Kind::Invalid),
            count(Kind::Refused),
            count(Kind::Skip),
            self.rows.iter().filter(|r| !r.parent.is_empty()).count(),
            self.pre.len(),
            if self.atomic { "--atomic " } else { "" },
            self.batch_size,
            self.concurrency
                .map_or(String::new(), |c| format!(" --concurrency {c}")),
            faults.join(", "),
            self.kills,
            if self.clean { " (clean)" } else { "" },
            self.seams.describe(),
        )
    }

    /// The source file's name.
    pub fn source_name(&self) -> &'static str {
        if self.seams.json {
            "job.jsonl"
        } else {
            "job.csv"
        }
    }

    /// The rejects file's name (JSON Lines for a JSON source).
    pub fn rejects_name(&self) -> &'static str {
        if self.seams.json {
            "rejects.jsonl"
        } else {
            "rejects.csv"
        }
    }

    /// The source file: [`Job::csv`], or JSON Lines whose numbers are JSON numbers.
    pub fn source(&self) -> String {
        if !self.seams.json {
            return self.csv();
        }
        let mut s = String::new();
        for r in &self.rows {
            let text = |t: &str| serde_json::Value::from(t).to_string();
            // A valid whole number is a JSON number; an invalid one stays text.
            let employees = if r.employees.parse::<i64>().is_ok() {
                r.employees.clone()
            } else {
                text(&r.employees)
            };
            writeln!(
                s,
                "{{\"Key\":{},\"Name\":{},\"Employees\":{employees},\"Parent\":{},\"Revenue\":{}}}",
                text(&r.spelled),
                text(&r.name),
                text(&r.parent_spelled),
                r.revenue
            )
            .unwrap();
        }
        s
    }

    /// The source file as CSV.
    pub fn csv(&self) -> String {
        let mut s = String::from("Key,Name,Employees,Parent\n");
        for r in &self.rows {
            writeln!(
                s,
                "\"{}\",{},{},\"{}\"",
                r.spelled, r.name, r.employees, r.parent_spelled
            )
            .unwrap();
        }
        s
    }

    /// The mapping file.
    pub fn mapping(&self) -> String {
        let key = if self.op == Op::Keyless {
            ""
        } else {
            "key = { accountnumber = \"Key\" }\n"
        };
        let format = if self.seams.json {
            "format = \"jsonl\"\n"
        } else {
            ""
        };
        let mut m = format!(
            "[source]\n{format}path = \"{}\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"{}\"\n{key}\
             empty = \"{}\"\n\n[filter]\nskip_equal = {{ Name = \"SKIP\" }}\n",
            self.source_name(),
            self.op.name(),
            if self.seams.keep_empty {
                "keep"
            } else {
                "clear"
            }
        );
        if self.op != Op::Delete {
            m.push_str(
                "\n[fields]\nname = \"Name\"\nnumberofemployees = { from = \"Employees\", type = \"int\" }\n\
                 parentaccountid = { lookup = \"accounts\", key = { accountnumber = \"Parent\" } }\n",
            );
            if self.op == Op::Keyless {
                // Not the alternate key column: nothing stops a second record of the same row.
                m.push_str("description = \"Key\"\n");
            }
            if self.seams.json {
                m.push_str("revenue = { from = \"Revenue\", type = \"money\" }\n");
            }
        }
        m
    }

    /// The command-line options of every run of the chain.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "job.toml",
            "--resume",
            "--report",
            "report.json",
            "--rejects",
            self.rejects_name(),
            "--retry-base-ms",
            "1",
            "--max-attempts",
            "40",
            // Backoff from 1 ms doubling reaches a minute after 16 failures in a row; a second is
            // enough between attempts (and still honours the emulator's 1 s Retry-After).
            "--max-delay-ms",
            "1000",
            "--batch-size",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(self.batch_size.to_string());
        if self.atomic {
            a.push("--atomic".into());
        }
        if let Some(c) = self.concurrency {
            a.push("--concurrency".into());
            a.push(c.to_string());
        }
        a
    }
}

fn pre_rec(key: &str, employees: u64) -> Rec {
    Rec {
        name: format!("Old {key}"),
        employees: Some(employees as i64),
        parent: None,
        revenue: None,
    }
}

/// Clean creates and deletes use each key once (a second create or delete of a key is refused).
fn clean_unique(op: Op, clean: bool) -> bool {
    clean && matches!(op, Op::Create | Op::Delete)
}

fn pick_parent(
    r: &mut Rng,
    op: Op,
    clean: bool,
    n_parents: u64,
    pre_keys: &BTreeSet<String>,
    valid_so_far: &BTreeSet<String>,
) -> String {
    let existing: Vec<&String> = pre_keys.iter().filter(|k| k.starts_with("E-")).collect();
    if clean {
        // Only parents that exist whatever the batching: before the run, or a valid row
        // earlier in the file.
        let earlier: Vec<&String> = valid_so_far
            .iter()
            .filter(|k| k.starts_with("P-") && (op != Op::Update || pre_keys.contains(*k)))
            .collect();
        if !earlier.is_empty() && r.chance(0.6) {
            return earlier[r.below(earlier.len() as u64) as usize].clone();
        }
        return existing[r.below(existing.len() as u64) as usize].clone();
    }
    match r.below(10) {
        0 => format!("M-{:03}", r.below(5)), // never exists
        1..=2 => existing[r.below(existing.len() as u64) as usize].clone(),
        _ if op == Op::Keyless => existing[r.below(existing.len() as u64) as usize].clone(),
        _ => format!("P-{:03}", r.below(n_parents)),
    }
}

/// A fault mix whose transient faults are all retried through within `--max-attempts 40`.
fn fault_mix(r: &mut Rng) -> FaultsConfig {
    let mut f = FaultsConfig {
        latency_jitter_ms: r.pick(&[0, 3, 10]),
        fail_rate: r.pick(&[0.0, 0.0, 0.05, 0.15, 0.3]),
        reset_rate: r.pick(&[0.0, 0.05, 0.15, 0.25]),
        ..FaultsConfig::default()
    };
    if r.chance(0.15) {
        // Each 429 costs a real second (Retry-After is whole seconds): a few only.
        f.throttle_rate = 0.02;
        f.storm_rate = 0.01;
        f.storm_length = 2 + r.below(3);
        f.throttle_retry_after_secs = 1;
    }
    if r.chance(0.3) {
        f.slow_rate = 0.1;
        f.slow_ms = 20 + r.below(130);
    }
    if r.chance(0.25) {
        f.revoke_rate = 0.03;
    }
    f
}

// ---------------------------------------------------------------------------------------------
// The oracle.

/// What a row may end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Written,
    /// Rejected; `true`: by the mapping, before anything was sent.
    Rejected(bool),
    Skipped,
    /// Written, or rejected (a delete that finds nothing, a keyless create whose outcome is
    /// unknown, the create of a key that another row of the file created).
    Either,
}

/// What a keyed record must be afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateExp {
    Absent,
    Is(Rec),
    /// Created by exactly one of these rows (creates of a key that several rows create).
    OneOf(Vec<(u64, Rec)>),
}

/// What the job must come to, computed from the job alone.
#[derive(Debug)]
pub struct Oracle {
    /// Per row (index `n - 1`).
    pub expect: Vec<Expect>,
    /// Per key.
    pub state: BTreeMap<String, StateExp>,
    /// Creates by key: exactly one of these rows is written (and created the record).
    pub create_groups: BTreeMap<String, Vec<u64>>,
    /// Deletes of a key that was there: at least one of these rows is written.
    pub delete_groups: BTreeMap<String, Vec<u64>>,
    /// `--atomic` keyless creates without kills: each change set is all or nothing.
    pub keyless_sets: Vec<Vec<u64>>,
    /// Rows that created their record (expected `created = 1` in the ledger), where known.
    pub creators: BTreeSet<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sim {
    Written,
    Rejected,
    Skipped,
}

/// One operation applied to the model, as Dataverse would: `Err(true)` is a 404 for a lookup (or
/// an update's record) that a later attempt may find, `Err(false)` any other refusal.
fn apply(op: Op, keep_empty: bool, row: &Row, m: &mut HashMap<String, Rec>) -> Result<(), bool> {
    // What an update or upsert leaves: with `empty = "keep"` an empty value leaves the column.
    let merged = |m: &HashMap<String, Rec>| {
        let mut new = Rec::of(row);
        if let (true, Some(old)) = (keep_empty, m.get(&row.key)) {
            if new.parent.is_none() {
                new.parent = old.parent.clone();
            }
            if new.revenue.is_none() {
                new.revenue = old.revenue.clone();
            }
        }
        new
    };
    let body = |m: &HashMap<String, Rec>| -> Result<(), bool> {
        if row.kind == Kind::Refused {
            return Err(false);
        }
        if !row.parent.is_empty() && !m.contains_key(&row.parent) {
            return Err(true);
        }
        Ok(())
    };
    match op {
        Op::Delete => m.remove(&row.key).map(|_| ()).ok_or(false),
        Op::Create => {
            if m.contains_key(&row.key) {
                return Err(false);
            }
            body(m)?;
            m.insert(row.key.clone(), Rec::of(row));
            Ok(())
        }
        Op::Update => {
            if !m.contains_key(&row.key) {
                return Err(!row.parent.is_empty());
            }
            body(m)?;
            let new = merged(m);
            m.insert(row.key.clone(), new);
            Ok(())
        }
        Op::Upsert => {
            body(m)?;
            let new = merged(m);
            m.insert(row.key.clone(), new);
            Ok(())
        }
        Op::Keyless => body(m),
    }
}

/// dvload's documented semantics, one batch at a time: rows in source order; a row (with
/// `--atomic`: its change set) whose lookup target is missing is sent once more after the rest.
/// Also returns the rows of `--atomic` change sets of deletes whose every record never existed:
/// refused without faults, but after a lost attempt nothing tells them from a change set
/// that attempt applied, and dvload counts them done (their records are gone, as they asked).
/// What [`simulate`] gives: each row's outcome, the change sets, the records afterwards, and the
/// rows of change sets of deletes whose records never existed.
type Simulation = (Vec<Sim>, Vec<Vec<u64>>, HashMap<String, Rec>, Vec<u64>);

fn simulate(job: &Job) -> Simulation {
    let mut m: HashMap<String, Rec> = job.pre.iter().cloned().collect();
    let mut out = vec![Sim::Rejected; job.rows.len()];
    let mut ops = Vec::new();
    for row in &job.rows {
        match row.kind {
            Kind::Invalid => out[row.n as usize - 1] = Sim::Rejected,
            Kind::Skip => out[row.n as usize - 1] = Sim::Skipped,
            _ => ops.push(row),
        }
    }
    let mut sets = Vec::new();
    let mut all_absent = Vec::new();
    let mut deferred_keys: std::collections::HashSet<String> = Default::default();
    if job.atomic {
        let mut deferred = Vec::new();
        let try_set = |set: &[&Row], m: &mut HashMap<String, Rec>| -> Result<(), bool> {
            let mut copy = m.clone();
            for row in set {
                apply(job.op, job.seams.keep_empty, row, &mut copy)?;
            }
            *m = copy;
            Ok(())
        };
        for set in ops.chunks(job.batch_size as usize) {
            sets.push(set.iter().map(|r| r.n).collect());
            // Absent from the start (an earlier row's delete is one dvload knows of).
            if job.op == Op::Delete
                && set
                    .iter()
                    .all(|r| !job.pre.iter().any(|(k, _)| *k == r.key))
            {
                all_absent.extend(set.iter().map(|r| r.n));
            }
            // A change set with a key whose earlier row waits for the second pass follows it
            // there, whole (the later row wins).
            if job.op != Op::Keyless && set.iter().any(|r| deferred_keys.contains(&r.key)) {
                deferred_keys.extend(set.iter().map(|r| r.key.clone()));
                deferred.push(set);
                continue;
            }
            match try_set(set, &mut m) {
                Ok(()) => set
                    .iter()
                    .for_each(|r| out[r.n as usize - 1] = Sim::Written),
                Err(true) => {
                    deferred_keys.extend(set.iter().map(|r| r.key.clone()));
                    deferred.push(set)
                }
                Err(false) => {}
            }
        }
        for set in deferred {
            if try_set(set, &mut m).is_ok() {
                set.iter()
                    .for_each(|r| out[r.n as usize - 1] = Sim::Written);
            }
        }
    } else {
        let mut deferred = Vec::new();
        for row in ops {
            // A row whose key's earlier row waits for the second pass follows it there.
            if job.op != Op::Keyless && deferred_keys.contains(&row.key) {
                deferred.push(row);
                continue;
            }
            match apply(job.op, job.seams.keep_empty, row, &mut m) {
                Ok(()) => out[row.n as usize - 1] = Sim::Written,
                Err(true) => {
                    deferred_keys.insert(row.key.clone());
                    deferred.push(row)
                }
                Err(false) => {}
            }
        }
        for row in deferred {
            if apply(job.op, job.seams.keep_empty, row, &mut m).is_ok() {
                out[row.n as usize - 1] = Sim::Written;
            }
        }
    }
    (out, sets, m, all_absent)
}

impl Oracle {
    /// The oracle of `job`.
    pub fn of(job: &Job) -> Oracle {
        let (sim, sets, model, all_absent) = simulate(job);
        let pre: BTreeMap<&str, &Rec> = job.pre.iter().map(|(k, r)| (k.as_str(), r)).collect();
        let mut expect = Vec::with_capacity(job.rows.len());
        let mut create_groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut delete_groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for row in &job.rows {
            let s = sim[row.n as usize - 1];
            let e = match (row.kind, s) {
                (Kind::Invalid, _) => Expect::Rejected(true),
                (_, Sim::Skipped) => Expect::Skipped,
                _ => match job.op {
                    Op::Keyless if s == Sim::Written => Expect::Either,
                    Op::Create if !job.atomic && s == Sim::Written => Expect::Either,
                    Op::Delete if !job.atomic => Expect::Either,
                    _ if s == Sim::Written => Expect::Written,
                    _ => Expect::Rejected(false),
                },
            };
            expect.push(e);
        }
        for n in &all_absent {
            if expect[*n as usize - 1] == Expect::Rejected(false) {
                expect[*n as usize - 1] = Expect::Either;
            }
        }
        // Creates by key without --atomic: which of the rows of a key that could create it
        // does so depends on which batch lands first. The model's run says which can.
        if job.op == Op::Create && !job.atomic {
            for row in &job.rows {
                if sim[row.n as usize - 1] == Sim::Written {
                    create_groups.entry(row.key.clone()).or_default();
                }
            }
            for row in &job.rows {
                let could = row.kind == Kind::Valid
                    && !pre.contains_key(row.key.as_str())
                    && (row.parent.is_empty()
                        || pre.contains_key(row.parent.as_str())
                        || model.contains_key(&row.parent));
                if let Some(g) = create_groups.get_mut(&row.key) {
                    if could {
                        g.push(row.n);
                    }
                }
            }
            for (key, rows) in &create_groups {
                for n in rows {
                    expect[*n as usize - 1] = Expect::Either;
                }
                let _ = key;
            }
            // Rows of a key that could not create it stay rejected.
            for row in &job.rows {
                let e = &mut expect[row.n as usize - 1];
                if *e == Expect::Either
                    && !create_groups
                        .get(&row.key)
                        .is_some_and(|g| g.contains(&row.n))
                {
                    *e = Expect::Rejected(false);
                }
            }
        }
        if job.op == Op::Delete && !job.atomic {
            for row in &job.rows {
                if pre.contains_key(row.key.as_str()) && row.kind != Kind::Skip {
                    delete_groups
                        .entry(row.key.clone())
                        .or_default()
                        .push(row.n);
                }
            }
        }
        // The records afterwards.
        let mut state: BTreeMap<String, StateExp> = BTreeMap::new();
        for (k, r) in &job.pre {
            state.insert(k.clone(), StateExp::Is(r.clone()));
        }
        if job.op != Op::Keyless {
            let keys: BTreeSet<&str> = job
                .rows
                .iter()
                .filter(|r| !r.key.is_empty())
                .map(|r| r.key.as_str())
                .collect();
            for key in keys {
                let rows: Vec<&Row> = job.rows.iter().filter(|r| r.key == key).collect();
                let before = pre
                    .get(key)
                    .map_or(StateExp::Absent, |r| StateExp::Is((*r).clone()));
                let exp = match job.op {
                    // The key's written rows in source order (a deferred key's rows are
                    // deferred together): the last wins, except that with `empty = "keep"` an
                    // empty parent or revenue leaves the one before.
                    Op::Upsert | Op::Update => rows
                        .iter()
                        .filter(|r| expect[r.n as usize - 1] == Expect::Written)
                        .fold(before, |cur, r| {
                            let mut new = Rec::of(r);
                            if let (true, StateExp::Is(old)) = (job.seams.keep_empty, &cur) {
                                if new.parent.is_none() {
                                    new.parent = old.parent.clone();
                                }
                                if new.revenue.is_none() {
                                    new.revenue = old.revenue.clone();
                                }
                            }
                            StateExp::Is(new)
                        }),
                    Op::Create if job.atomic => rows
                        .iter()
                        .find(|r| expect[r.n as usize - 1] == Expect::Written)
                        .map_or(before, |r| StateExp::Is(Rec::of(r))),
                    Op::Create => match create_groups.get(key) {
                        Some(g) if !g.is_empty() => StateExp::OneOf(
                            g.iter()
                                .map(|n| (*n, Rec::of(&job.rows[*n as usize - 1])))
                                .collect(),
                        ),
                        _ => before,
                    },
                    Op::Delete if job.atomic => model
                        .get(key)
                        .map_or(StateExp::Absent, |r| StateExp::Is(r.clone())),
                    Op::Delete => {
                        if rows.iter().all(|r| r.kind == Kind::Skip) {
                            before
                        } else {
                            StateExp::Absent
                        }
                    }
                    Op::Keyless => unreachable!(),
                };
                state.insert(key.to_string(), exp);
            }
        }
        let keyless_sets = if job.op == Op::Keyless && job.atomic && job.kills == 0 {
            sets
        } else {
            Vec::new()
        };
        let mut creators = BTreeSet::new();
        if job.op == Op::Create && job.atomic {
            for row in &job.rows {
                if expect[row.n as usize - 1] == Expect::Written {
                    creators.insert(row.n);
                }
            }
        }
        Oracle {
            expect,
            state,
            create_groups,
            delete_groups,
            keyless_sets,
            creators,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the chain.

/// How one run of the chain ended.
#[derive(Debug)]
pub struct RunEnd {
    /// The exit code; `None`: killed.
    pub code: Option<i32>,
    pub stderr_tail: String,
}

/// What the chain of runs came to.
#[derive(Debug)]
pub struct ChainEnd {
    pub runs: Vec<RunEnd>,
    /// A kill landed after the run had recorded its end: no report, no rejects file to check.
    pub ended_at_kill: bool,
    /// Problems of the runner itself (a run that hung, an unexpected exit code).
    pub trouble: Vec<String>,
    /// The keys the neighbour job (see [`Seams::neighbour`]) created.
    pub neighbour_created: Vec<String>,
}

/// The neighbour job: creates `keys` by key with the same application user, its own state
/// directory and no faults; returns the keys it created (those the job had not yet created).
fn run_neighbour(w: &Workdir, emu: &Emu, job: &Job) -> Vec<String> {
    let rows = job
        .seams
        .neighbour
        .iter()
        .map(|k| (k, format!("B {k}"), 7777));
    emu.set_faults(FaultsConfig::default());
    let out = side_job(w, emu, "b", "create", rows, &["--state", "b/.dvload"]);
    emu.set_faults(job.faults.clone());
    assert!(
        matches!(out.code, 0 | 1),
        "the neighbour job: {}\n{}",
        out.stdout,
        out.stderr
    );
    records(emu)
        .into_iter()
        .filter(|f| f.rec.name.starts_with("B "))
        .map(|f| f.key)
        .collect()
}

/// Starts run `i`; with `max_file`, on a full disk: no file may grow past that many bytes
/// (`ulimit -f`, SIGXFSZ ignored, so that a write past it fails with EFBIG as on a full disk).
fn spawn(dir: &Path, emu: &Emu, args: &[String], i: usize, max_file: Option<u64>) -> Child {
    let out = std::fs::File::create(dir.join(format!("run-{i}.out"))).unwrap();
    let err = std::fs::File::create(dir.join(format!("run-{i}.err"))).unwrap();
    let bin = env!("CARGO_BIN_EXE_dvload");
    let mut cmd = match max_file {
        Some(bytes) => {
            let mut c = Command::new("sh");
            c.args(["-c", "trap '' XFSZ; ulimit -f \"$0\"; exec \"$@\""])
                // dash counts in 512-byte blocks.
                .arg(bytes.div_ceil(512).to_string())
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).current_dir(dir);
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    cmd.env_remove("RUST_LOG")
        .env_remove("DATAVERSE_ACCESS_TOKEN")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run dvload")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Writes `DIR/DIR.csv` (key, name, employees) and a mapping that writes it into accounts by
/// key with `operation`, and runs it against `emu` with `args`, faults as they are.
fn side_job<'a>(
    w: &Workdir,
    emu: &Emu,
    dir: &str,
    operation: &str,
    rows: impl Iterator<Item = (&'a String, String, i64)>,
    args: &[&str],
) -> crate::support::Output {
    let mut csv = String::from("Key,Name,Employees\n");
    for (k, name, employees) in rows {
        writeln!(csv, "{k},{name},{employees}").unwrap();
    }
    w.write(&format!("{dir}/{dir}.csv"), csv);
    w.write(
        &format!("{dir}/{dir}.toml"),
        format!(
            "[source]\npath = \"{dir}.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"{operation}\"\n\
             key = {{ accountnumber = \"Key\" }}\n[fields]\nname = \"Name\"\n\
             numberofemployees = {{ from = \"Employees\", type = \"int\" }}\n"
        ),
    );
    let mapping = format!("{dir}/{dir}.toml");
    let mut all = vec!["run", mapping.as_str()];
    all.extend_from_slice(args);
    w.dvload_env(&all, &emu.env())
}

/// Loads the records that are there before the run, without faults and without a ledger.
fn load_pre(w: &Workdir, emu: &Emu, job: &Job) {
    let rows = job
        .pre
        .iter()
        .map(|(k, r)| (k, r.name.clone(), r.employees.unwrap()));
    let out = side_job(w, emu, "pre", "upsert", rows, &["--no-ledger"]);
    out.expect_code(0);
    assert_eq!(
        emu.state.count("account"),
        job.pre.len(),
        "pre-existing records"
    );
}

/// Runs the job: `dvload run ... --resume`, killed `job.kills` times at random moments, resumed
/// until a run ends on its own.
pub fn run_chain(w: &Workdir, emu: &Emu, job: &Job) -> ChainEnd {
    let mut r = Rng::new(job.seed, 2);
    let args = job.args();
    let mut kills_left = job.kills;
    let mut runs = Vec::new();
    let mut trouble = Vec::new();
    let mut ended_at_kill = false;
    let ops = job.rows.len() as u64;
    let expected_requests = ops / job.batch_size as u64 + 2;
    let base = emu.stats().requests;
    let mut revoke_pending = job.revoke_all_after;
    // Full-disk runs draw from a stream of their own: the kills of every seed stay where they were.
    let mut disk = Rng::new(job.seed, 10);
    let mut full_left = job.seams.disk_full;
    let mut neighbour_created = Vec::new();
    let mut neighbour_pending = !job.seams.neighbour.is_empty();
    for i in 0..30 {
        if neighbour_pending && i == 1 {
            neighbour_pending = false;
            neighbour_created = run_neighbour(w, emu, job);
        }
        let _ = std::fs::remove_file(w.path().join("report.json"));
        let before = emu.stats().requests;
        // In the first half of what the run would send, so that the kill lands mid-run.
        let kill_at =
            (kills_left > 0).then(|| before + 1 + r.below((expected_requests / 2).max(1)));
        let extra = Duration::from_millis(r.below(5));
        // A run on a full disk: its ledger may grow a few kilobytes (a new ledger, some more).
        let full = full_left > 0 && (kills_left == 0 || disk.chance(0.5));
        let max_file = full.then(|| {
            full_left -= 1;
            let size = |name: &str| {
                std::fs::metadata(w.path().join(".dvload").join(name)).map_or(0, |m| m.len())
            };
            let now = size("ledger.sqlite").max(size("ledger.sqlite-wal"));
            // A new ledger's schema takes about 230 KB.
            now.max(232 * 1024) + 1024 * (2 + disk.below(48))
        });
        let kill_at = kill_at.filter(|_| !full);
        let mut child = spawn(w.path(), emu, &args, i, max_file);
        let start = Instant::now();
        let mut killed = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let now = emu.stats().requests;
            if let Some(at) = revoke_pending {
                if now >= base + at {
                    emu.revoke_all_tokens();
                    revoke_pending = None;
                }
            }
            if kill_at.is_some_and(|at| now >= at) {
                std::thread::sleep(extra);
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                }
                break child.wait().ok();
            }
            if start.elapsed() > Duration::from_secs(120) {
                child.kill().unwrap();
                let _ = child.wait();
                trouble.push(format!("run {i} made no end in 120 s: killed"));
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stderr =
            std::fs::read_to_string(w.path().join(format!("run-{i}.err"))).unwrap_or_default();
        let code = if killed {
            None
        } else {
            status.and_then(|s| s.code())
        };
        runs.push(RunEnd {
            code,
            stderr_tail: tail(&stderr, 6),
        });
        if !trouble.is_empty() {
            break;
        }
        if killed {
            kills_left -= 1;
            if last_run_ended(w.path()) {
                ended_at_kill = true;
                break;
            }
            continue;
        }
        match code {
            Some(0 | 1) => break,
            // Stopped (a set-up failure such as tokens refused again and again, or too many
            // errors): resumable, and resumed.
            Some(3 | 4) => continue,
            // On a full disk a run may not even open its ledger (exit 2, nothing sent).
            Some(2) if full => continue,
            other => {
                trouble.push(format!(
                    "run {i} exited with {other:?}\n{}",
                    tail(&stderr, 10)
                ));
                break;
            }
        }
    }
    if neighbour_pending {
        neighbour_created = run_neighbour(w, emu, job);
    }
    ChainEnd {
        runs,
        ended_at_kill,
        trouble,
        neighbour_created,
    }
}

/// The rejects file at `path` (none: no rows): CSV, or JSON Lines (`{"row","error","record"}`)
/// whose record's values are compared as text (a number as written, every digit).
fn read_rejects(path: &Path) -> Vec<RejectRow> {
    if path.extension().is_some_and(|e| e == "csv") || !path.exists() {
        return read_rejects_csv(path, b',');
    }
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("rejects line {line:?}: {e}"));
            let fields = v["record"]
                .as_object()
                .unwrap_or_else(|| panic!("rejects line without a record: {line}"))
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            RejectRow {
                row: v["row"].as_u64().expect("row"),
                error: v["error"].as_str().unwrap_or_default().to_string(),
                fields,
            }
        })
        .collect()
}

fn ledger(dir: &Path) -> Option<rusqlite::Connection> {
    let path = dir.join(".dvload/ledger.sqlite");
    path.exists()
        .then(|| rusqlite::Connection::open(path).expect("ledger opens"))
}

fn last_run_ended(dir: &Path) -> bool {
    ledger(dir).is_some_and(|db| {
        db.query_row(
            "SELECT ended_at IS NOT NULL FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, bool>(0),
        )
        .unwrap_or(false)
    })
}

// ---------------------------------------------------------------------------------------------
// Checking.

/// The known defects of main that the chaos finds (see the seed lists in chaos.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// `--atomic`: a change set whose first attempt was lost and whose first operation then gets
    /// 412 (create by key, record there before) or 404 (delete, already absent) is counted
    /// written whole.
    AtomicLostThen412Or404,
    /// Duplicate keys in one file end with the older row's values (retries, deferred lookups).
    DuplicateKeyOlderWins,
    /// After `--resume`, the rejects file (and the exit code) lacks the earlier runs' rejects.
    ResumeRejectsForgotten,
    /// A create by key whose answer was lost, then 412, is recorded as not created (undo).
    CreateAfterLost412NotCreated,
    /// Without `--atomic`: a create by key that finds its key taken (412) after a lost attempt,
    /// or in a resumed run, is counted written although the record was there before the row
    /// (another row of the file, or before the run): its values are not in Dataverse. Not in
    /// the known list as such; the non-atomic sibling of [`Class::AtomicLostThen412Or404`]
    /// (DESIGN: such an answer "is uncertain, and is resolved, never assumed").
    Lost412CountedWritten,
    /// Not one of the known defects: a new finding.
    New,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::AtomicLostThen412Or404 => {
                "known defect: --atomic lost attempt then 412/404 counted written whole"
            }
            Class::DuplicateKeyOlderWins => {
                "known defect: duplicate keys end with the older row's values"
            }
            Class::ResumeRejectsForgotten => {
                "known defect: after --resume the rejects file lacks the earlier runs' rejects"
            }
            Class::CreateAfterLost412NotCreated => {
                "known defect: create by key after a lost answer + 412 recorded as not created"
            }
            Class::Lost412CountedWritten => {
                "NEW (sibling of the --atomic known defect): without --atomic, a 412 after a lost attempt or in a resumed run is counted written though the record was there before"
            }
            Class::New => "NEW: not a known defect",
        }
    }
}

/// One way the run broke the promise.
#[derive(Debug, Clone)]
pub struct Violation {
    pub class: Class,
    pub text: String,
}

/// What a row ended as in the ledger, across the chain.
#[derive(Debug, Clone)]
struct Outcome {
    run: i64,
    outcome: String,
    created: i64,
    error: Option<String>,
}

/// A record in the emulator.
#[derive(Debug)]
struct Found {
    key: String,
    rec: Rec,
}

fn records(emu: &Emu) -> Vec<Found> {
    let rows = emu.state.rows("account");
    let by_id: HashMap<uuid::Uuid, String> = rows
        .iter()
        .filter_map(|r| {
            r.fields
                .get("accountnumber")
                .and_then(|v| v.as_str())
                .map(|k| (r.id, k.to_string()))
        })
        .collect();
    rows.iter()
        .map(|r| Found {
            // As the service compares keys: the oracle's spelling (upper case, no trailing space).
            key: service_key(
                r.fields
                    .get("accountnumber")
                    .or_else(|| r.fields.get("description"))
                    .and_then(|v| v.as_str())
                    .unwrap_or(""),
            ),
            rec: Rec {
                name: r
                    .fields
                    .get("name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                employees: r.fields.get("numberofemployees").and_then(|v| v.as_i64()),
                revenue: match r.fields.get("revenue") {
                    Some(serde_json::Value::Number(n)) => Some(canon_decimal(&n.to_string())),
                    Some(serde_json::Value::String(t)) => Some(canon_decimal(t)),
                    _ => None,
                },
                parent: r.lookup("parentaccountid").map(|(id, _)| {
                    by_id
                        .get(&id)
                        .map(|k| service_key(k))
                        .unwrap_or_else(|| id.to_string())
                }),
            },
        })
        .collect()
}

/// A key as the emulator's English collation (`_CI_AI`) compares it, in the oracle's spelling:
/// trailing spaces dropped, upper case, the accents the source may add removed.
fn service_key(key: &str) -> String {
    key.trim_end_matches(' ')
        .to_uppercase()
        .replace('Ç', "C")
        .replace('É', "E")
}

/// What one seed came to.
pub struct SeedResult {
    pub job: Job,
    pub violations: Vec<Violation>,
    /// Runs in the chain, and how many of them were killed.
    pub runs: usize,
    pub killed: usize,
}

/// Runs `job` against a fresh emulator and returns what broke.
pub fn run_seed(seed: u64) -> SeedResult {
    run_seed_tampered(seed, |_, _| {})
}

/// [`run_seed`], with `tamper` run on the emulator after the chain and before the checks (to
/// prove that the checks see a broken promise).
pub fn run_seed_tampered(seed: u64, tamper: impl FnOnce(&Workdir, &Emu)) -> SeedResult {
    let mut job = Job::generate(seed);
    let emu = Emu::start_with(Config {
        seed,
        ..Config::default()
    });
    let w = Workdir::new();
    load_pre(&w, &emu, &job);
    w.write(job.source_name(), job.source());
    w.write("job.toml", job.mapping());
    emu.set_faults(job.faults.clone());
    if let Some(l) = job.token_lifetime {
        emu.set_token_lifetime(l);
    }
    let chain = run_chain(&w, &emu, &job);
    emu.set_faults(FaultsConfig::default());
    // The keys another job took before this one could are, for this job, records that were
    // there before its rows came to them.
    for k in &chain.neighbour_created {
        let rec = Rec {
            name: format!("B {k}"),
            employees: Some(7777),
            parent: None,
            revenue: None,
        };
        job.pre.push((k.clone(), rec));
    }
    let oracle = Oracle::of(&job);
    tamper(&w, &emu);
    let mut v = check(&w, &emu, &job, &oracle, &chain);
    if v.is_empty() && chain.trouble.is_empty() {
        // The seams after the chain, on a chain that kept the promise (a broken one would
        // only repeat its violations).
        if job.seams.switch_env {
            v.extend(check_switch(&w, &job));
        }
        if let Some(kills) = job.seams.undo_kills {
            v.extend(check_undo(&w, &emu, &job, kills));
        }
    }
    if std::env::var_os("DVLOAD_CHAOS_KEEP").is_some() {
        let kept = w.path().to_path_buf();
        std::mem::forget(w);
        eprintln!(
            "seed {seed}: work directory kept in {}\n  {}",
            kept.display(),
            job.describe()
        );
    }
    SeedResult {
        job,
        violations: v,
        runs: chain.runs.len(),
        killed: chain.runs.iter().filter(|r| r.code.is_none()).count(),
    }
}

/// The job pointed at another environment (same state directory): `--resume`,
/// `--changed-only` and `undo` are each refused (exit 2, both environments named), write
/// nothing there, and leave the rejects file and the report as they were.
fn check_switch(w: &Workdir, job: &Job) -> Vec<Violation> {
    let mut config = Config {
        seed: job.seed,
        ..Config::default()
    };
    config.organization.id = "0e0e0e0e-1111-2222-3333-444444444444".into();
    let other = Emu::start_with(config);
    // The report tells of the last invocation (a refused one included); the rejects file
    // keeps telling of the rows.
    let files = |w: &Workdir| [job.rejects_name()].map(|f| std::fs::read(w.path().join(f)).ok());
    let before = files(w);
    let mut v = Vec::new();
    let changed_only: Vec<String> = job
        .args()
        .into_iter()
        .map(|a| {
            if a == "--resume" {
                "--changed-only".into()
            } else {
                a
            }
        })
        .collect();
    let undo: Vec<String> = ["undo", "1", "--yes"].map(String::from).to_vec();
    for args in [job.args(), changed_only, undo] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = std::fs::remove_file(w.path().join("report.json"));
        let out = w.dvload_env(&args, &other.env());
        let report = std::fs::read_to_string(w.path().join("report.json")).unwrap_or_default();
        if args[0] == "run" && !report.contains("\"exit_code\": 2") {
            v.push(Violation {
                class: Class::New,
                text: format!("a run refused for another environment reported otherwise: {report}"),
            });
        }
        let named = out.stderr.contains("another Dataverse environment")
            && out.stderr.contains("0e0e0e0e-1111-2222-3333-444444444444");
        // An undo with nothing to delete does not connect: nothing to refuse.
        let nothing = args[0] == "undo"
            && out.code == 0
            && out
                .stdout
                .contains("created 0 records that are still there");
        if !nothing && (out.code != 2 || !named) {
            v.push(Violation {
                class: Class::New,
                text: format!(
                    "`dvload {}` against another environment exited {} (expected 2, naming both environments)\n{}",
                    args.join(" "),
                    out.code,
                    tail(&out.stderr, 4)
                ),
            });
        }
    }
    let stats = other.stats();
    if stats.batches > 0 || other.state.count("account") > 0 {
        v.push(Violation {
            class: Class::New,
            text: format!(
                "the other environment was written to: {} $batch requests, {} accounts",
                stats.batches,
                other.state.count("account")
            ),
        });
    }
    let names = [job.rejects_name()];
    for ((name, was), now) in names.iter().zip(&before).zip(&files(w)) {
        if was != now {
            let show = |b: &Option<Vec<u8>>| {
                b.as_ref().map_or("(none)".to_string(), |b| {
                    String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned()
                })
            };
            v.push(Violation {
                class: Class::New,
                text: format!(
                    "a run refused for another environment changed {name}: was {}, now {}",
                    show(was),
                    show(now)
                ),
            });
        }
    }
    v
}

/// Every account in the emulator by id: its name and employees.
fn held(emu: &Emu) -> BTreeMap<uuid::Uuid, (String, Option<i64>)> {
    emu.state
        .rows("account")
        .into_iter()
        .map(|rec| {
            let text = |k: &str| rec.fields.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let employees = rec.fields.get("numberofemployees").and_then(|e| e.as_i64());
            (rec.id, (text("name").to_string(), employees))
        })
        .collect()
}

/// `undo` of every run of the chain, last first, under the job's faults, killed `kills` times
/// at random moments (SIGKILL or SIGTERM) and run again until each ends: every record the
/// ledger says the chain created is gone, every other record is there as it was, and the ledger
/// marks each created row undone.
fn check_undo(w: &Workdir, emu: &Emu, job: &Job, kills: u32) -> Vec<Violation> {
    let mut r = Rng::new(job.seed, 11);
    let mut v = Vec::new();
    let db = ledger(w.path()).expect("a ledger");
    let runs: Vec<i64> = {
        let mut q = db.prepare("SELECT id FROM runs ORDER BY id DESC").unwrap();
        q.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let created: BTreeSet<uuid::Uuid> = {
        let mut q = db
            .prepare("SELECT record_url FROM rows WHERE created = 1")
            .unwrap();
        q.query_map([], |row| row.get::<_, Option<String>>(0))
            .unwrap()
            .map(Result::unwrap)
            .map(|url| {
                let url = url.unwrap_or_default();
                let id = url
                    .split_once('(')
                    .and_then(|(_, rest)| rest.strip_suffix(')'))
                    .and_then(|id| id.parse().ok());
                id.unwrap_or_else(|| panic!("a created row's record_url is not set(<id>): {url:?}"))
            })
            .collect()
    };
    drop(db);
    let before = held(emu);
    emu.set_faults(job.faults.clone());
    let mut kills_left = kills;
    let mut i = 100;
    for run in &runs {
        let mut tries = 0;
        loop {
            i += 1;
            let run = run.to_string();
            let mut args: Vec<String> = ["undo", run.as_str(), "--yes"].map(String::from).to_vec();
            args.extend(
                [
                    "--retry-base-ms",
                    "1",
                    "--max-attempts",
                    "40",
                    "--max-delay-ms",
                    "1000",
                ]
                .map(String::from),
            );
            args.extend(["--batch-size".into(), job.batch_size.to_string()]);
            let kill_at = (kills_left > 0).then(|| emu.stats().requests + 1 + r.below(6));
            let sigterm = r.chance(0.5);
            let mut child = spawn(w.path(), emu, &args, i, None);
            let start = Instant::now();
            let mut killed = false;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if kill_at.is_some_and(|at| emu.stats().requests >= at) && !killed {
                    killed = true;
                    kills_left -= 1;
                    if sigterm {
                        // SAFETY: kill(2) on our own child's pid.
                        unsafe { crate::attack::libc_kill(child.id() as i32, 15) };
                    } else {
                        child.kill().unwrap();
                    }
                }
                if start.elapsed() > Duration::from_secs(120) {
                    child.kill().unwrap();
                    let _ = child.wait();
                    v.push(Violation {
                        class: Class::New,
                        text: format!("undo {run} made no end in 120 s"),
                    });
                    emu.set_faults(FaultsConfig::default());
                    return v;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            let code = status.and_then(|s| s.code());
            let stderr =
                std::fs::read_to_string(w.path().join(format!("run-{i}.err"))).unwrap_or_default();
            tries += 1;
            match code {
                Some(0) => break,
                // Stopped by a signal, or by faults it gave up on: run it again.
                Some(4) | None if tries < 20 => continue,
                other => {
                    v.push(Violation {
                        class: Class::New,
                        text: format!("undo {run} exited {other:?}\n{}", tail(&stderr, 6)),
                    });
                    emu.set_faults(FaultsConfig::default());
                    return v;
                }
            }
        }
    }
    emu.set_faults(FaultsConfig::default());
    let after = held(emu);
    let left: Vec<String> = created
        .iter()
        .filter(|id| after.contains_key(id))
        .map(|id| id.to_string())
        .collect();
    if !left.is_empty() {
        v.push(Violation {
            class: Class::New,
            text: format!(
                "undo left {} records the chain created: {}",
                left.len(),
                left.join(", ")
            ),
        });
    }
    for (id, was) in &before {
        if created.contains(id) {
            continue;
        }
        match after.get(id) {
            None => v.push(Violation {
                class: Class::New,
                text: format!(
                    "undo deleted record {id} ({}), which the chain did not create",
                    was.0
                ),
            }),
            Some(now) if now != was => v.push(Violation {
                class: Class::New,
                text: format!("undo changed record {id}: {was:?} became {now:?}"),
            }),
            Some(_) => {}
        }
    }
    if let Some(extra) = after.keys().find(|id| !before.contains_key(id)) {
        v.push(Violation {
            class: Class::New,
            text: format!("a record appeared during undo: {extra}"),
        });
    }
    let db = ledger(w.path()).expect("a ledger");
    let still: i64 = db
        .query_row("SELECT count(*) FROM rows WHERE created = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    if still > 0 {
        v.push(Violation {
            class: Class::New,
            text: format!("after undo the ledger still has {still} rows created and not undone"),
        });
    }
    v
}

fn check(w: &Workdir, emu: &Emu, job: &Job, oracle: &Oracle, chain: &ChainEnd) -> Vec<Violation> {
    let mut v = check_all(w, emu, job, oracle, chain);
    // A record counted written but missing makes its children's lookups fail (404): those
    // rejects follow from the first defect.
    if let Some(first) = v
        .iter()
        .find(|x| x.class == Class::AtomicLostThen412Or404)
        .map(|x| x.class)
    {
        for x in &mut v {
            if x.class == Class::New
                && x.text.contains("expected Written")
                && x.text.contains("404")
            {
                x.class = first;
                x.text = format!(
                    "(follows: a lookup target counted written is missing) {}",
                    x.text
                );
            }
        }
    }
    v
}

fn check_all(
    w: &Workdir,
    emu: &Emu,
    job: &Job,
    oracle: &Oracle,
    chain: &ChainEnd,
) -> Vec<Violation> {
    let mut v = Vec::new();
    let new = |v: &mut Vec<Violation>, class: Class, text: String| {
        v.push(Violation { class, text });
    };
    for t in &chain.trouble {
        new(&mut v, Class::New, format!("runner: {t}"));
    }
    let n_rows = job.rows.len() as u64;
    let kills = chain.runs.iter().filter(|r| r.code.is_none()).count() as u64;
    let Some(db) = ledger(w.path()) else {
        new(&mut v, Class::New, "no ledger".into());
        return v;
    };
    // One chain, but for runs that stopped at sign-in or before their first write (exit 2 or
    // 3 with no row recorded): the next run starts afresh, as documented.
    let runs: Vec<(i64, i64)> = db
        .prepare(
            "SELECT id, chain FROM runs u WHERE NOT (coalesce(exit_code, -1) IN (2, 3)
                 AND NOT EXISTS (SELECT 1 FROM row_outcomes o WHERE o.run_id = u.id))
             ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let last_run = runs.last().map_or(0, |r| r.0);
    if runs.iter().any(|r| r.1 != runs[0].0) {
        new(
            &mut v,
            Class::New,
            format!("the runs are not one resume chain: (id, chain) {runs:?}"),
        );
    }
    // Each row's outcome across the chain.
    let mut outcomes: BTreeMap<u64, Vec<Outcome>> = BTreeMap::new();
    let mut stmt = db
        .prepare("SELECT run_id, row, outcome, created, error FROM row_outcomes WHERE outcome <> 'unsent' ORDER BY run_id, row")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(1)? as u64,
                Outcome {
                    run: r.get(0)?,
                    outcome: r.get(2)?,
                    created: r.get(3)?,
                    error: r.get(4)?,
                },
            ))
        })
        .unwrap()
    {
        let (n, o) = row.unwrap();
        outcomes.entry(n).or_default().push(o);
    }
    let mut actual: BTreeMap<u64, Outcome> = BTreeMap::new();
    for n in 1..=n_rows {
        match outcomes.get(&n).map(Vec::as_slice) {
            None | Some([]) => new(
                &mut v,
                Class::New,
                format!("row {n}: no outcome in the ledger (lost)"),
            ),
            Some([one]) => {
                actual.insert(n, one.clone());
            }
            Some(many) => {
                new(
                    &mut v,
                    Class::New,
                    format!(
                        "row {n}: {} outcomes in the ledger across the chain: {:?}",
                        many.len(),
                        many.iter()
                            .map(|o| format!("run {} {}", o.run, o.outcome))
                            .collect::<Vec<_>>()
                    ),
                );
                actual.insert(n, many[0].clone());
            }
        }
    }
    if let Some(extra) = outcomes.keys().find(|n| **n > n_rows || **n == 0) {
        new(&mut v, Class::New, format!("the ledger has a row {extra}"));
    }
    // Each row's outcome against the oracle.
    let found = records(emu);
    for row in &job.rows {
        let Some(a) = actual.get(&row.n) else {
            continue;
        };
        let e = oracle.expect[row.n as usize - 1];
        let ok = matches!(
            (e, a.outcome.as_str()),
            (Expect::Written, "written")
                | (Expect::Skipped, "skipped")
                | (Expect::Rejected(_), "rejected")
                | (Expect::Either, "written" | "rejected")
        );
        let error = a.error.as_deref().unwrap_or("");
        if !ok {
            let class = classify_outcome(job, row, e, &a.outcome);
            new(
                &mut v,
                class,
                format!(
                    "row {} ({} {}{}): expected {e:?}, the ledger says {} in run {}{}",
                    row.n,
                    row.key,
                    row.kind_text(),
                    parent_text(row),
                    a.outcome,
                    a.run,
                    if error.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", short(error))
                    }
                ),
            );
        }
        if a.outcome == "rejected" {
            if error.starts_with("gave up after") {
                new(
                    &mut v,
                    Class::New,
                    format!(
                        "row {}: {} (the fault mix should be retried through)",
                        row.n,
                        short(error)
                    ),
                );
            } else if e == Expect::Rejected(true)
                && !(error.contains("Employees") || error.contains("key"))
            {
                new(
                    &mut v,
                    Class::New,
                    format!("row {}: rejected by the mapping, but: {error}", row.n),
                );
            } else if job.op == Op::Keyless
                && e == Expect::Either
                && !error.starts_with("outcome unknown")
            {
                new(
                    &mut v,
                    Class::New,
                    format!(
                        "row {}: a valid keyless create rejected for another reason than an unknown outcome: {}",
                        row.n,
                        short(error)
                    ),
                );
            }
        }
    }
    // Groups.
    for (key, rows) in &oracle.create_groups {
        let written: Vec<u64> = rows
            .iter()
            .copied()
            .filter(|n| actual.get(n).is_some_and(|o| o.outcome == "written"))
            .collect();
        if written.len() != 1 {
            new(
                &mut v,
                if written.len() > 1 {
                    Class::Lost412CountedWritten
                } else {
                    Class::New
                },
                format!(
                    "key {key}: exactly one of the rows {rows:?} creates it, but the ledger has {written:?} written (a 412 counted written is a record that was there before)"
                ),
            );
        }
    }
    for (key, rows) in &oracle.delete_groups {
        if !rows
            .iter()
            .any(|n| actual.get(n).is_some_and(|o| o.outcome == "written"))
        {
            new(
                &mut v,
                Class::New,
                format!("key {key} existed, but none of its delete rows {rows:?} is written"),
            );
        }
    }
    // The records.
    let mut by_key: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in &found {
        by_key.entry(f.key.as_str()).or_default().push(f);
    }
    for (key, exp) in &oracle.state {
        let there: Vec<&Rec> = by_key
            .get(key.as_str())
            .map_or(Vec::new(), |fs| fs.iter().map(|f| &f.rec).collect());
        let ok = match (exp, there.as_slice()) {
            (StateExp::Absent, []) => true,
            (StateExp::Is(r), [one]) => r == *one,
            (StateExp::OneOf(options), [one]) => {
                let creator = options.iter().find(|(_, r)| r == *one);
                // The row whose values are there is the one written.
                creator.is_some_and(|(n, _)| actual.get(n).is_none_or(|o| o.outcome == "written"))
            }
            _ => false,
        };
        if !ok {
            let class = classify_state(job, key, exp, &there, &actual);
            let why = if class == Class::DuplicateKeyOlderWins {
                let older = job
                    .rows
                    .iter()
                    .find(|r| r.key == *key && there.len() == 1 && Rec::of(r) == *there[0]);
                match older {
                    Some(r) if !r.parent.is_empty() && !r.parent.starts_with("E-") => format!(
                        " (row {}'s lookup to a row of the file was deferred to the end, and sent after the later row)",
                        r.n
                    ),
                    Some(r) => format!(
                        " (row {} was applied after the later row: retried, or sent alongside)",
                        r.n
                    ),
                    None => String::new(),
                }
            } else {
                String::new()
            };
            new(
                &mut v,
                class,
                format!(
                    "record {key}: expected {}, Dataverse has {}{why}",
                    show_exp(exp),
                    if there.is_empty() {
                        "none".to_string()
                    } else {
                        there
                            .iter()
                            .map(|r| r.show())
                            .collect::<Vec<_>>()
                            .join(" + ")
                    }
                ),
            );
        }
    }
    // Keyless creates: each row's records.
    let mut copies: BTreeMap<u64, u64> = BTreeMap::new();
    for f in &found {
        if let Some(n) = f.key.strip_prefix("R-").and_then(|n| n.parse().ok()) {
            *copies.entry(n).or_default() += 1;
        } else if !oracle.state.contains_key(&f.key) {
            new(
                &mut v,
                Class::New,
                format!(
                    "record {:?} ({}) is not one the job could make",
                    f.key,
                    f.rec.show()
                ),
            );
        }
    }
    if job.op == Op::Keyless {
        for row in &job.rows {
            let c = copies.get(&row.n).copied().unwrap_or(0);
            let a = actual.get(&row.n).map_or("", |o| o.outcome.as_str());
            let could = oracle.expect[row.n as usize - 1] == Expect::Either;
            let (lo, hi) = match (could, a) {
                (true, "written") => (1, 1 + kills),
                (true, _) => (0, 1 + kills),
                (false, _) => (0, 0),
            };
            if c < lo || c > hi {
                new(
                    &mut v,
                    Class::New,
                    format!(
                        "row {} (keyless, {}): {c} records in Dataverse, expected {lo}..={hi}",
                        row.n, a
                    ),
                );
            }
        }
        for set in &oracle.keyless_sets {
            let outs: BTreeSet<(&str, u64)> = set
                .iter()
                .map(|n| {
                    (
                        actual.get(n).map_or("", |o| o.outcome.as_str()),
                        copies.get(n).copied().unwrap_or(0),
                    )
                })
                .collect();
            if outs.len() > 1 {
                new(
                    &mut v,
                    Class::New,
                    format!(
                        "change set {set:?} is not all or nothing: (outcome, records) {outs:?}"
                    ),
                );
            }
        }
    }
    // The ledger's `created`.
    for row in &job.rows {
        let Some(a) = actual.get(&row.n) else {
            continue;
        };
        let expected = match job.op {
            Op::Keyless => Some(a.outcome == "written"),
            Op::Create if job.atomic => Some(oracle.creators.contains(&row.n)),
            Op::Create => {
                // The row whose values are in Dataverse created the record.
                let created_it = oracle.create_groups.get(&row.key).is_some_and(|g| {
                    g.contains(&row.n)
                        && by_key
                            .get(row.key.as_str())
                            .is_some_and(|fs| fs.len() == 1 && fs[0].rec == Rec::of(row))
                });
                (a.outcome == "written").then_some(created_it)
            }
            _ => Some(false),
        };
        if let Some(expected) = expected {
            if (a.created == 1) != expected {
                let class = if job.op == Op::Create && expected {
                    Class::CreateAfterLost412NotCreated
                } else {
                    Class::New
                };
                new(
                    &mut v,
                    class,
                    format!(
                        "row {} ({}): the ledger has created = {}, expected {}",
                        row.n,
                        row.key,
                        a.created,
                        u8::from(expected)
                    ),
                );
            }
        }
    }
    if !chain.trouble.is_empty() {
        return v;
    }
    // The rejects file: exactly the rows rejected across the chain, replayable.
    let rejected_rows: BTreeMap<u64, &Outcome> = actual
        .iter()
        .filter(|(_, o)| o.outcome == "rejected")
        .map(|(n, o)| (*n, o))
        .collect();
    let rejects = read_rejects(&w.path().join(job.rejects_name()));
    let in_file: BTreeMap<u64, _> = rejects.iter().map(|r| (r.row, r)).collect();
    if in_file.len() != rejects.len() {
        new(
            &mut v,
            Class::New,
            "a row is twice in the rejects file".into(),
        );
    }
    let missing: Vec<u64> = rejected_rows
        .keys()
        .copied()
        .filter(|n| !in_file.contains_key(n))
        .collect();
    if !missing.is_empty() {
        let earlier = missing.iter().all(|n| rejected_rows[n].run < last_run);
        new(
            &mut v,
            if earlier {
                Class::ResumeRejectsForgotten
            } else {
                Class::New
            },
            format!(
                "rejects file lacks rejected rows {} ({})",
                list(&missing),
                if earlier {
                    "all rejected by earlier runs of the chain"
                } else {
                    "some rejected by the last run"
                }
            ),
        );
    }
    let extra: Vec<u64> = in_file
        .keys()
        .copied()
        .filter(|n| !rejected_rows.contains_key(n))
        .collect();
    if !extra.is_empty() {
        new(
            &mut v,
            Class::New,
            format!(
                "rejects file has rows the ledger does not reject: {}",
                list(&extra)
            ),
        );
    }
    for (n, r) in &in_file {
        let Some(row) = job.rows.get((*n as usize).wrapping_sub(1)) else {
            continue;
        };
        let same = [
            ("Key", &row.spelled),
            ("Name", &row.name),
            ("Employees", &row.employees),
            ("Parent", &row.parent_spelled),
            ("Revenue", &row.revenue),
        ]
        .iter()
        .all(|(col, val)| {
            r.fields.get(*col) == Some(*val) || (col == &"Revenue" && !job.seams.json)
        });
        if !same {
            new(
                &mut v,
                Class::New,
                format!("rejects file row {n} is not the source row: {:?}", r.fields),
            );
        }
    }
    // The last run's report and exit code.
    // A kill that landed after the run recorded its end: the ledger has its exit code (the
    // rejects file was in place before that; the report may not be).
    let last_code = if chain.ended_at_kill {
        db.query_row(
            "SELECT exit_code FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<i32>>(0),
        )
        .unwrap()
    } else {
        chain.runs.last().and_then(|r| r.code)
    };
    let chain_rejected = !rejected_rows.is_empty();
    let expected_code = if chain_rejected { 1 } else { 0 };
    if last_code != Some(expected_code) {
        let earlier_only = chain_rejected && rejected_rows.values().all(|o| o.run < last_run);
        new(
            &mut v,
            if earlier_only {
                Class::ResumeRejectsForgotten
            } else {
                Class::New
            },
            format!(
                "the last run exited {last_code:?}, expected {expected_code} (rows rejected in the chain: {})\n{}",
                rejected_rows.len(),
                chain.runs.last().map_or("", |r| r.stderr_tail.as_str())
            ),
        );
    }
    let report_path = w.path().join("report.json");
    let Ok(text) = std::fs::read_to_string(&report_path) else {
        if !chain.ended_at_kill {
            new(&mut v, Class::New, "the last run wrote no report".into());
        }
        return v;
    };
    let report: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    let n = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    let count_last = |outcome: &str| {
        actual
            .values()
            .filter(|o| o.run == last_run && o.outcome == outcome)
            .count() as u64
    };
    let got = [
        n("read"),
        n("written"),
        n("rejected"),
        n("skipped"),
        n("unchanged"),
        n("passed_over"),
    ];
    let last_rows = actual.values().filter(|o| o.run == last_run).count() as u64;
    let want = [
        last_rows,
        count_last("written"),
        count_last("rejected"),
        count_last("skipped"),
        0,
        n_rows - last_rows,
    ];
    if got != want {
        new(
            &mut v,
            Class::New,
            format!(
                "report (read, written, rejected, skipped, unchanged, passed_over) = {got:?}, the ledger's last run says {want:?}"
            ),
        );
    }
    if got[0] != got[1] + got[2] + got[3] + got[4] || got[0] + got[5] != n_rows {
        new(
            &mut v,
            Class::New,
            format!("report counts do not add up to {n_rows} rows: {got:?}"),
        );
    }
    v
}

impl Row {
    fn kind_text(&self) -> &'static str {
        match self.kind {
            Kind::Valid => "valid",
            Kind::Invalid => "invalid",
            Kind::Refused => "refused",
            Kind::Skip => "skip",
        }
    }
}

fn parent_text(row: &Row) -> String {
    if row.parent.is_empty() {
        String::new()
    } else {
        format!(", parent {}", row.parent)
    }
}

fn short(s: &str) -> String {
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

fn list(rows: &[u64]) -> String {
    let shown: Vec<String> = rows.iter().take(12).map(u64::to_string).collect();
    if rows.len() > 12 {
        format!("{} … ({} in all)", shown.join(", "), rows.len())
    } else {
        shown.join(", ")
    }
}

fn show_exp(e: &StateExp) -> String {
    match e {
        StateExp::Absent => "none".into(),
        StateExp::Is(r) => r.show(),
        StateExp::OneOf(options) => format!(
            "one of {}",
            options
                .iter()
                .map(|(n, r)| format!("row {n} {}", r.show()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn classify_outcome(job: &Job, _row: &Row, e: Expect, actual: &str) -> Class {
    let faults = job.faults.fail_rate > 0.0 || job.faults.reset_rate > 0.0;
    if job.atomic
        && matches!(job.op, Op::Create | Op::Delete)
        && matches!(e, Expect::Rejected(false))
        && actual == "written"
        && faults
    {
        return Class::AtomicLostThen412Or404;
    }
    if !job.atomic && job.op == Op::Create && e == Expect::Rejected(false) && actual == "written" {
        return Class::Lost412CountedWritten;
    }
    Class::New
}

fn classify_state(
    job: &Job,
    key: &str,
    exp: &StateExp,
    there: &[&Rec],
    actual: &BTreeMap<u64, Outcome>,
) -> Class {
    let faults = job.faults.fail_rate > 0.0 || job.faults.reset_rate > 0.0;
    // The values of an older written row of the same key.
    if matches!(job.op, Op::Upsert | Op::Update) && there.len() == 1 {
        let older = job.rows.iter().any(|r| {
            r.key == key
                && Rec::of(r) == *there[0]
                && actual.get(&r.n).is_some_and(|o| o.outcome == "written")
        });
        if older {
            return Class::DuplicateKeyOlderWins;
        }
    }
    if job.atomic && faults && matches!(job.op, Op::Create | Op::Delete) {
        // The effect of a row counted written is missing.
        let missing_effect = match (job.op, exp) {
            (Op::Create, StateExp::Is(_)) => there.len() != 1,
            (Op::Delete, StateExp::Absent) => !there.is_empty(),
            _ => false,
        };
        if missing_effect {
            return Class::AtomicLostThen412Or404;
        }
    }
    Class::New
}

/// Runs each seed, prints what broke, and returns the failing seeds with their classes.
pub fn run_seeds(seeds: &[u64]) -> Vec<(u64, BTreeSet<Class>)> {
    let mut failed = Vec::new();
    for &seed in seeds {
        let start = Instant::now();
        let SeedResult {
            job,
            violations: v,
            runs,
            killed,
        } = run_seed(seed);
        let secs = start.elapsed().as_secs_f64();
        let chain = format!("{runs} run(s), {killed} killed, {secs:.1} s");
        if v.is_empty() {
            eprintln!("ok   {} ({chain})", job.describe());
            continue;
        }
        let classes: BTreeSet<Class> = v.iter().map(|x| x.class).collect();
        let mut msg = format!(
            "FAIL {} ({chain})\n  replay: DVLOAD_CHAOS_SEED={seed} cargo test --test integration chaos_soak -- --ignored --nocapture\n",
            job.describe()
        );
        for c in &classes {
            writeln!(msg, "  [{}]", c.label()).unwrap();
            for x in v.iter().filter(|x| x.class == *c).take(8) {
                writeln!(msg, "    - {}", x.text.replace('\n', "\n      ")).unwrap();
            }
            let more = v.iter().filter(|x| x.class == *c).count().saturating_sub(8);
            if more > 0 {
                writeln!(msg, "    - … and {more} more").unwrap();
            }
        }
        eprint!("{msg}");
        failed.push((seed, classes));
    }
    failed
}
