//! The scheduler examples in `examples/`: every dvload command they hold names only commands and
//! options that exist (the parser accepts it; a missing file or connection later is expected).

use crate::support::{Workdir, repo};

/// dvload's commands, as an example would start one.
const COMMANDS: [&str; 7] = [
    "run", "validate", "whoami", "runs", "undo", "metadata", "init",
];

/// The dvload command lines of `text`: shell lines from `dvload ` to the end of the command,
/// with YAML folded scalars (`>-`) joined, and a Kubernetes container's `args:` list.
fn commands(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.starts_with('#') {
            continue;
        }
        if line == "args:" {
            // A Kubernetes container's arguments, one `- item` per line.
            let mut args = Vec::new();
            while i < lines.len() && lines[i].trim().starts_with("- ") {
                args.push(lines[i].trim()[2..].trim().trim_matches('"').to_string());
                i += 1;
            }
            out.push(args);
            continue;
        }
        let mut cmd = if line.ends_with(">-") {
            // A folded scalar: the following more-indented lines make one line.
            let mut joined = String::new();
            while i < lines.len() && lines[i].starts_with("      ") {
                joined.push_str(lines[i].trim());
                joined.push(' ');
                i += 1;
            }
            joined
        } else {
            line.to_string()
        };
        // The occurrence of `dvload ` that starts a command (not `/srv/dvload `).
        let Some(at) = cmd.match_indices("dvload ").map(|(at, _)| at).find(|&at| {
            (at == 0 || matches!(cmd.as_bytes()[at - 1], b' ' | b'/' | b'=' | b'\t'))
                && COMMANDS
                    .iter()
                    .any(|c| cmd[at + "dvload ".len()..].starts_with(&format!("{c} ")))
        }) else {
            continue;
        };
        cmd = cmd[at + "dvload ".len()..].to_string();
        // The command ends at a redirection, a pipe or a list operator.
        for end in [" >", " 2>", " ||", " &&", ";", " |"] {
            if let Some(e) = cmd.find(end) {
                cmd.truncate(e);
            }
        }
        out.push(cmd.split_whitespace().map(str::to_string).collect());
    }
    out
}

/// The parser's complaint in `stderr`, if it refused the command line.
fn parse_error(stderr: &str) -> Option<&'static str> {
    [
        "unexpected argument",
        "invalid value",
        "unrecognized subcommand",
        "required arguments were not provided",
        "cannot be used with",
    ]
    .into_iter()
    .find(|e| stderr.contains(e))
}

#[test]
fn every_dvload_command_in_the_scheduler_examples_names_options_that_exist() {
    let w = Workdir::new();
    // The check itself: an option that does not exist is caught.
    let bogus = w.dvload(&["run", "m.toml", "--no-such-option"]);
    assert_eq!(
        parse_error(&bogus.stderr),
        Some("unexpected argument"),
        "{}",
        bogus.stderr
    );
    let mut checked = 0;
    for dir in [
        "cron",
        "systemd",
        "kubernetes",
        "github-actions",
        "azure-devops",
    ] {
        for entry in std::fs::read_dir(repo().join("examples").join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for args in commands(&text) {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = w.dvload(&args);
                assert!(
                    parse_error(&out.stderr).is_none(),
                    "{}: dvload {}: {}",
                    path.display(),
                    args.join(" "),
                    out.stderr
                );
                checked += 1;
            }
        }
    }
    // cron, systemd, kubernetes, GitHub Actions, Azure DevOps: one command each at least.
    assert!(checked >= 5, "only {checked} commands found");
}

#[test]
fn commands_are_found_in_each_form_the_examples_use() {
    let text = "30 2 * * * cd /srv && dvload run a.toml --report r.json > log 2>&1 || true\n\
                ExecStart=/usr/local/bin/dvload run a.toml --rejects rejects/\n\
                  - script: >-\n      dvload run a.toml\n      --report-html x.html\n    displayName: Load\n\
                args:\n  - run\n  - a.toml\n";
    let found = commands(text);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0], ["run", "a.toml", "--report", "r.json"]);
    assert_eq!(found[1], ["run", "a.toml", "--rejects", "rejects/"]);
    assert_eq!(found[2], ["run", "a.toml", "--report-html", "x.html"]);
    assert_eq!(found[3], ["run", "a.toml"]);
}
