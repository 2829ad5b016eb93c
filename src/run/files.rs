//! The files a run writes beside the ledger: where each job's rejects go, whether a path can
//! take a file before anything is sent, and the JSON report.

use std::path::{Path, PathBuf};

/// Writes the report when asked to.
pub fn write_report(path: Option<&Path>, report: &crate::ledger::RunReport) -> crate::Result<()> {
    if let Some(path) = path {
        report.write(path).map_err(crate::Error::io(format!(
            "cannot write the report {}",
            path.display()
        )))?;
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

/// True when `a` and `b` name one existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Checks that `path` can be written as the run will write it (a temporary file beside it,
/// renamed into place): its folder exists or can be made, and takes a new file. `what` names
/// the option in the message. Nothing is left behind but the folder.
pub fn check_writable(path: &Path, what: &str) -> crate::Result<()> {
    let unusable = |why: String| {
        crate::Error::Unusable(format!(
            "{what} {}: {why}; nothing was sent",
            path.display()
        ))
    };
    if path.is_dir() {
        return Err(unusable("is a directory, not a file".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        let why = match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                format!("{} is not a folder", first_file_on_the_way(dir).display())
            }
            _ => format!(
                "cannot make its folder {}: {}",
                dir.display(),
                io_reason(&e)
            ),
        };
        return Err(unusable(why));
    }
    let probe = dir.join(format!(".dvload-probe.{}.tmp", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(unusable(format!(
            "cannot write in {}: {}",
            dir.display(),
            io_reason(&e)
        ))),
    }
}

/// The first ancestor of `dir` that exists and is not a folder (the file that blocks the path).
fn first_file_on_the_way(dir: &Path) -> PathBuf {
    dir.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|a| a.exists() && !a.is_dir())
        .unwrap_or(dir)
        .to_path_buf()
}

/// An I/O error's reason without Rust's "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
