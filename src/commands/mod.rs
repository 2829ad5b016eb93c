//! One module per subcommand: its arguments and its `run` function.

pub mod check;
pub mod connect;
pub mod emulator;
pub mod run;
pub mod runs;
pub mod signals;
pub mod undo;
pub mod validate;
pub mod whoami;
pub mod write;

use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::path::Path;

use crate::cli::LogFormat;
use crate::outcome::Counts;

/// Sets up logging to stderr at `level` (`RUST_LOG` overrides it) in `format`. Text lines are
/// coloured only when stderr is a terminal, never in a file or a pipe (cron, CI) and never with
/// `NO_COLOR`: see [`use_colour`].
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether log lines get ANSI colour codes: only when stderr is a `terminal`, and not when
/// `NO_COLOR` is set to anything but the empty string (<https://no-color.org>).
pub fn use_colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The one-line summary of a job's counts.
pub fn summary_line(counts: &Counts, written_word: &str, secs: f64) -> String {
    let rate = if secs > 0.0 {
        counts.read as f64 / secs
    } else {
        0.0
    };
    format!(
        "read {}  {written_word} {}  rejected {}  skipped {}{}  in {secs:.2} s ({} rows/s)",
        thousands(counts.read),
        thousands(counts.written),
        thousands(counts.rejected),
        thousands(counts.skipped),
        if counts.unchanged > 0 {
            format!("  unchanged {}", thousands(counts.unchanged))
        } else {
            String::new()
        },
        thousands(rate as u64)
    )
}

/// Prints where a job reads from and writes to.
pub fn describe_job(job: &crate::job::Job) -> String {
    let key: Vec<String> = job
        .spec
        .target
        .key
        .iter()
        .map(|k| k.column.clone())
        .collect();
    let key = if key.is_empty() {
        String::new()
    } else {
        format!(" by {}", key.join(", "))
    };
    let columns = job
        .reader
        .columns()
        .map(|c| format!(", {} columns", c.len()))
        .unwrap_or_default();
    format!(
        "{} -> {} ({}{key})\nsource {} ({}{columns})",
        job.mapping.display(),
        job.plan.entity_set,
        job.plan.operation.name(),
        job.source_path.display(),
        job.options.format.name()
    )
}

/// The current time in RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes the report when asked to.
pub fn write_report(path: Option<&Path>, report: &crate::ledger::RunReport) -> anyhow::Result<()> {
    if let Some(path) = path {
        use anyhow::Context as _;
        report
            .write(path)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(())
}

/// Where a job's rejects go: `--rejects FILE`, a directory when several mappings run, or the
/// default `<source name>.rejects.csv|jsonl` in the current directory. `taken` holds the paths
/// of the run's earlier jobs: two jobs whose sources share a name get `<name>.rejects.csv` and
/// `<name>-2.rejects.csv` (the second would otherwise replace the first).
pub fn rejects_path(
    rejects: Option<&Path>,
    several: bool,
    job: &crate::job::Job,
    taken: &mut Vec<std::path::PathBuf>,
) -> std::path::PathBuf {
    let path = match rejects {
        Some(p) if several => p.join(job.default_rejects_path()),
        Some(p) => p.to_path_buf(),
        None => job.default_rejects_path(),
    };
    let path = unique_path(path, taken);
    taken.push(path.clone());
    path
}

/// `path`, or `stem-N.rejects.ext` for the first N from 2 not in `taken`.
fn unique_path(path: std::path::PathBuf, taken: &[std::path::PathBuf]) -> std::path::PathBuf {
    if !taken.contains(&path) {
        return path;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, tail) = match name.find(".rejects.") {
        Some(i) => name.split_at(i),
        None => match name.rfind('.') {
            Some(i) => name.split_at(i),
            None => (name.as_str(), ""),
        },
    };
    (2..)
        .map(|n| path.with_file_name(format!("{stem}-{n}{tail}")))
        .find(|p| !taken.contains(p))
        .expect("a free name")
}

/// Prints a job's first row errors (up to five) and where its rejects went.
pub fn print_rejects(first_errors: &[String], rejects_file: Option<&Path>) {
    if !first_errors.is_empty() {
        println!("first row errors:");
        for e in first_errors.iter().take(5) {
            println!("  {e}");
        }
    }
    if let Some(p) = rejects_file {
        println!("rejected rows written to {}", p.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(
            !use_colour(false, None),
            "a file or a pipe gets no colour codes"
        );
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn two_jobs_never_share_a_rejects_file() {
        let taken = vec![
            std::path::PathBuf::from("out/accounts.rejects.csv"),
            std::path::PathBuf::from("out/accounts-2.rejects.csv"),
        ];
        assert_eq!(
            unique_path("out/accounts.rejects.csv".into(), &taken),
            Path::new("out/accounts-3.rejects.csv")
        );
        assert_eq!(
            unique_path("leads.rejects.jsonl".into(), &taken),
            Path::new("leads.rejects.jsonl")
        );
        let taken = vec![std::path::PathBuf::from("bad.csv")];
        assert_eq!(
            unique_path("bad.csv".into(), &taken),
            Path::new("bad-2.csv")
        );
    }
}
