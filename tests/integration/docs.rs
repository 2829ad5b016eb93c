//! The README's and docs/'s `sh` blocks run as written: in a copy of the repository's mappings
//! and samples, with the built dvload on PATH, each command ending 0 or 1 (1: rows rejected, as
//! the samples' deliberately bad rows are). `cargo` lines are CI's own (`.ci/run` runs them).

use std::path::Path;
use std::process::Command;

use crate::support::{CLEARED_ENV, Workdir, repo};

/// The `sh` blocks of a Markdown text, each as its lines.
fn sh_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().expect("open")),
            (Some(lines), _) => lines.push(line.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// A bash script that runs `lines` and stops at the first command that ends with more than 1.
fn script(lines: &[String]) -> String {
    let mut s = String::from("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n");
    let mut lines = lines.iter();
    while let Some(line) = lines.next() {
        let t = line.trim();
        // A here-document (`cat >> f <<'EOF'`): its lines as they are, up to its delimiter.
        if let Some((_, word)) = t.split_once("<<") {
            let delimiter = word.trim().trim_matches('\'').trim_matches('"').to_string();
            s.push_str(t);
            s.push('\n');
            for body in lines.by_ref() {
                s.push_str(body);
                s.push('\n');
                if body.trim() == delimiter {
                    break;
                }
            }
            let shown = t.replace('\'', "'\\''");
            s.push_str(&format!(
                "rc=$?; if [ $rc -gt 1 ]; then echo 'FAILED (exit '$rc'): {shown}' >&2; exit 1; fi\n"
            ));
            continue;
        }
        if t.is_empty() || t.starts_with('#') || t.starts_with("cargo ") {
            continue;
        }
        if t.ends_with('&') || t.starts_with("export ") || t.starts_with("kill ") {
            s.push_str(t);
            s.push('\n');
            continue;
        }
        let shown = t.replace('\'', "'\\''");
        // `command  # exit N` documents a command that ends with N on purpose.
        let check = match t.rsplit_once("# exit ") {
            Some((_, n)) if n.trim().parse::<u8>().is_ok() => format!("[ $rc -ne {} ]", n.trim()),
            _ => "[ $rc -gt 1 ]".to_string(),
        };
        s.push_str(&format!(
            "{t}\nrc=$?; if {check}; then echo 'FAILED (exit '$rc'): {shown}' >&2; exit 1; fi\n"
        ));
    }
    s
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

#[test]
fn the_sh_blocks_of_the_readme_and_the_docs_run_as_written() {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_dvload")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for block in sh_blocks(&text) {
            let w = Workdir::new();
            copy_dir(&repo().join("mappings"), &w.path().join("mappings"));
            copy_dir(&repo().join("samples"), &w.path().join("samples"));
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(script(&block)).current_dir(w.path());
            for name in CLEARED_ENV {
                cmd.env_remove(name);
            }
            cmd.env("PATH", &path)
                .env("NO_PROXY", "127.0.0.1,localhost");
            let out = cmd.output().expect("bash runs");
            assert!(
                out.status.success(),
                "{}: a block failed:\n{}\n--- stdout\n{}\n--- stderr\n{}",
                file.display(),
                block.join("\n"),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // The tour's read-back gets the loaded accounts (it once answered 401).
            if block.iter().any(|l| l.starts_with("curl ")) {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    stdout.contains("\"accountnumber\":\"ACC-"),
                    "the read-back: {stdout}"
                );
            }
            ran += 1;
        }
    }
    assert!(
        ran >= 2,
        "the README's tour and first mapping at least: {ran}"
    );
}

#[test]
fn a_here_document_is_kept_whole_and_checked_once() {
    let lines: Vec<String> = ["cat > f <<'EOF'", "a = 1", "  # kept", "EOF", "ls f"]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let s = script(&lines);
    assert!(
        s.contains("cat > f <<'EOF'\na = 1\n  # kept\nEOF\nrc=$?"),
        "{s}"
    );
    assert_eq!(s.matches("rc=$?").count(), 2, "{s}");
}

#[test]
fn a_command_that_fails_fails_its_block() {
    let s = script(&[
        "dvload nothing".to_string(),
        "# a comment".to_string(),
        "cargo test".to_string(),
    ]);
    assert!(s.contains("dvload nothing\nrc=$?"));
    assert!(!s.contains("cargo test"));
    assert_eq!(
        sh_blocks("text\n```sh\na\nb\n```\n```text\nc\n```\n"),
        [vec!["a".to_string(), "b".to_string()]]
    );
}
