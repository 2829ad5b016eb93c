//! The JSON run report (`--report FILE`): counts per job and in total, timings, where rejects went.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::outcome::Counts;

/// One mapping file's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The mapping file.
    pub mapping: PathBuf,
    /// The source file.
    pub source: PathBuf,
    /// Target entity set.
    pub entity_set: String,
    /// Operation name.
    pub operation: String,
    /// Row counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// `$batch` requests built (dry run) or sent.
    pub batches: u64,
    /// `--resume`: rows an earlier run of the resumed chain already did, not read again (outside
    /// `read` and its invariant).
    pub passed_over: u64,
    /// Where rejected rows were written, if any were.
    pub rejects_file: Option<PathBuf>,
    /// Wall time of this job.
    pub duration_ms: u64,
    /// The first few row errors, for a quick look.
    pub first_errors: Vec<String>,
    /// Rejected rows an earlier run of the job rejected too (same row, same reason); `None`
    /// without a ledger to ask, and in validate and the dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects_known: Option<u64>,
    /// The other rejected rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects_new: Option<u64>,
}

/// The whole run: totals at the top, one entry per mapping.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The command (`validate` or `run`).
    pub command: String,
    /// True when nothing was sent.
    pub dry_run: bool,
    /// Totals over all jobs.
    #[serde(flatten)]
    pub counts: Counts,
    /// Total `$batch` requests.
    pub batches: u64,
    /// Total rows passed over by `--resume` (see [`JobReport::passed_over`]).
    pub passed_over: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// The process exit code.
    pub exit_code: u8,
    /// Operations sent again after a failed attempt (0 in a dry run).
    pub retries: u64,
    /// Times a 429 paused the run (0 in a dry run).
    pub throttle_waits: u64,
    /// Time workers spent waiting for throttling pauses and the rate limit, in milliseconds.
    pub waited_ms: u64,
    /// Queries sent to find the targets of lookups by match (0 in a dry run).
    pub lookup_queries: u64,
    /// Per mapping file, in the order run.
    pub jobs: Vec<JobReport>,
}

impl RunReport {
    /// Builds the totals from the jobs.
    pub fn new(
        command: &str,
        dry_run: bool,
        started_at: String,
        duration_ms: u64,
        exit_code: u8,
        jobs: Vec<JobReport>,
    ) -> RunReport {
        let mut counts = Counts::default();
        let mut batches = 0;
        let mut passed_over = 0;
        for j in &jobs {
            counts.add(&j.counts);
            batches += j.batches;
            passed_over += j.passed_over;
        }
        RunReport {
            command: command.into(),
            dry_run,
            counts,
            batches,
            passed_over,
            duration_ms,
            started_at,
            exit_code,
            retries: 0,
            throttle_waits: 0,
            waited_ms: 0,
            lookup_queries: 0,
            jobs,
        }
    }

    /// Adds the writer's counters.
    pub fn with_writer_stats(
        mut self,
        retries: u64,
        throttle_waits: u64,
        waited_ms: u64,
    ) -> RunReport {
        self.retries = retries;
        self.throttle_waits = throttle_waits;
        self.waited_ms = waited_ms;
        self
    }

    /// Writes the report as pretty JSON, atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(path, &json)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so that a reader
/// never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_the_documented_fields_and_adds_up() {
        let job = JobReport {
            mapping: "m.toml".into(),
            source: "s.csv".into(),
            entity_set: "accounts".into(),
            operation: "upsert".into(),
            counts: Counts {
                read: 10,
                written: 7,
                rejected: 2,
                skipped: 1,
                unchanged: 0,
            },
            batches: 1,
            passed_over: 3,
            rejects_file: None,
            rejects_known: Some(1),
            rejects_new: Some(1),
            duration_ms: 5,
            first_errors: vec![],
        };
        let report = RunReport::new(
            "run",
            true,
            "2026-01-01T00:00:00Z".into(),
            6,
            1,
            vec![job.clone(), job],
        );
        assert!(report.counts.balanced());
        let v = serde_json::to_value(&report).unwrap();
        for (k, n) in [
            ("read", 20),
            ("written", 14),
            ("rejected", 4),
            ("skipped", 2),
            ("duration_ms", 6),
            ("batches", 2),
            ("passed_over", 6),
        ] {
            assert_eq!(v[k], n, "{k}");
        }
        assert_eq!(v["dry_run"], true);
        assert_eq!(v["jobs"][0]["read"], 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        report.write(&path).unwrap();
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
    }
}
