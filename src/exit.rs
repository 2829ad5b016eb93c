//! Exit codes a cron wrapper can act on (DESIGN.md), and how an error chooses one.

use std::process::ExitCode;

use crate::error::Error;
use crate::ledger::lock::LockError;
use crate::outcome::Ending;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every row written (or, for validate, every row maps).
    Success = 0,
    /// 1: some rows rejected (see the rejects file).
    Rejected = 1,
    /// 2: the mapping, the source or the command line is unusable; nothing sent.
    Unusable = 2,
    /// 3: authentication or authorisation failed.
    Auth = 3,
    /// 4: the run stopped early (too many errors, interrupted) and can be resumed.
    Stopped = 4,
    /// 5: another run holds the job's state directory (an overlapping cron); nothing was done.
    Busy = 5,
}

impl Exit {
    /// The exit code of a run that ended as `ending`.
    pub fn of(ending: &Ending) -> Exit {
        match ending {
            Ending::Complete { rejected: false } => Exit::Success,
            Ending::Complete { rejected: true } => Exit::Rejected,
            Ending::Interrupted | Ending::TooManyErrors | Ending::OutputFailed => Exit::Stopped,
            Ending::MappingRefused | Ending::SourceBroken => Exit::Unusable,
            Ending::SetupRefused => Exit::Auth,
        }
    }

    /// The exit code of a command the library refused with `error`: 3 for the set-up, 5 for a
    /// state directory another run holds, 2 for everything else (nothing was sent).
    pub fn for_error(error: &Error) -> Exit {
        match error {
            Error::Setup(_) => Exit::Auth,
            Error::Lock(LockError::Busy { .. }) => Exit::Busy,
            _ => Exit::Unusable,
        }
    }

    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// Which rejects fail a run (exit 1): `--fail-on`, `DVLOAD_FAIL_ON`, a mapping's
/// `[run] fail_on`, else [`FailOn::DEFAULT`]. Terms joined by commas, any of which fails the run:
/// `rejects` (any reject), `new-rejects` (a reject no earlier run of the job had: the same row,
/// for the same reason), `rejects>N` (more than N rejected rows), `rejects>P%` (more than P% of
/// the rows read); or `never` alone (rejects never fail the run; a stopped run still does).
#[derive(Debug, Clone, PartialEq)]
pub struct FailOn {
    terms: Vec<FailTerm>,
    /// The policy as written, for messages.
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FailTerm {
    Any,
    New,
    Over(u64),
    OverPercent(f64),
}

/// A job's rejects, told apart by the run ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectHistory {
    /// Rejected rows an earlier run of the job rejected too (same row, same reason).
    pub known: u64,
    /// The others (all of them without a ledger).
    pub new: u64,
}

impl FailOn {
    /// The default: a reject no earlier night had, or more than a tenth of the rows rejected
    /// even if known (a night that breaks the way the last one did stays loud).
    pub const DEFAULT: &'static str = "new-rejects,rejects>10%";

    /// Reads a policy; the error says what is accepted.
    pub fn parse(text: &str) -> Result<FailOn, String> {
        let accepted = "accepted: rejects, new-rejects, rejects>N, rejects>P%, joined by commas, or never alone";
        let mut terms = Vec::new();
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts == ["never"] {
            return Ok(FailOn {
                terms,
                text: "never".into(),
            });
        }
        for part in &parts {
            let term = match *part {
                "rejects" => FailTerm::Any,
                "new-rejects" => FailTerm::New,
                "never" => {
                    return Err(format!(
                        "'never' cannot be joined with other terms; {accepted}"
                    ));
                }
                other => {
                    let Some(limit) = other.strip_prefix("rejects>") else {
                        return Err(format!("'{other}' is not a fail-on term; {accepted}"));
                    };
                    let limit = limit.trim();
                    match limit.strip_suffix('%') {
                        Some(p) => match p.trim().parse::<f64>() {
                            Ok(p) if (0.0..=100.0).contains(&p) => FailTerm::OverPercent(p),
                            _ => {
                                return Err(format!(
                                    "'{other}': the percentage must be a number from 0 to 100; {accepted}"
                                ));
                            }
                        },
                        None => match limit.parse::<u64>() {
                            Ok(n) => FailTerm::Over(n),
                            Err(_) => {
                                return Err(format!(
                                    "'{other}': the limit must be a whole number of rows or a percentage; {accepted}"
                                ));
                            }
                        },
                    }
                }
            };
            terms.push(term);
        }
        Ok(FailOn {
            terms,
            text: parts.join(","),
        })
    }

    /// The policy as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why a job whose `read` rows left `rejects` fails the run, or `None` when it does not.
    pub fn fails(&self, read: u64, rejects: RejectHistory) -> Option<String> {
        let all = rejects.known + rejects.new;
        self.terms.iter().find_map(|t| match *t {
            FailTerm::Any if all > 0 => Some(format!("{all} rows rejected")),
            FailTerm::New if rejects.new > 0 => Some(format!(
                "{} new reject{} (no earlier run rejected {} for the same reason)",
                rejects.new,
                if rejects.new == 1 { "" } else { "s" },
                if rejects.new == 1 {
                    "that row"
                } else {
                    "those rows"
                }
            )),
            FailTerm::Over(n) if all > n => Some(format!("{all} rows rejected, more than {n}")),
            FailTerm::OverPercent(p) if read > 0 && (all as f64) * 100.0 > p * read as f64 => {
                Some(format!(
                    "{all} of {read} rows rejected ({:.1}%), more than {p}%",
                    all as f64 * 100.0 / read as f64
                ))
            }
            _ => None,
        })
    }
}

impl Default for FailOn {
    fn default() -> FailOn {
        FailOn::parse(FailOn::DEFAULT).expect("the default parses")
    }
}

/// The exit code for an error that ended a command: the library's [`Error`] by its kind
/// (anything else is a usage error, 2).
pub fn exit_for(error: &anyhow::Error) -> Exit {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Error>().map(Exit::for_error))
        .unwrap_or(Exit::Unusable)
}

/// The text of an error and its causes, as `{:#}` joins them (`outer: inner: os reason`), except
/// that a cause whose text already ends the message is not repeated. Error types that put their
/// source in their own message (`#[error("{path}: {source}")]`) would otherwise print the OS
/// reason twice: `somedir/: Is a directory (os error 21): Is a directory (os error 21)`.
pub fn render(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_policies_judge_known_and_new_rejects() {
        let h = |known, new| RejectHistory { known, new };
        let default = FailOn::default();
        assert_eq!(default.fails(100, h(5, 0)), None, "known rejects pass");
        assert!(
            default
                .fails(100, h(5, 1))
                .unwrap()
                .contains("1 new reject")
        );
        assert!(
            default
                .fails(100, h(11, 0))
                .unwrap()
                .contains("11 of 100 rows rejected (11.0%), more than 10%")
        );
        assert_eq!(default.fails(0, h(0, 0)), None);
        let any = FailOn::parse("rejects").unwrap();
        assert!(any.fails(100, h(1, 0)).is_some());
        let never = FailOn::parse("never").unwrap();
        assert_eq!(never.fails(10, h(0, 10)), None);
        let over = FailOn::parse(" rejects>3 ").unwrap();
        assert_eq!(over.fails(10, h(2, 1)), None);
        assert!(over.fails(10, h(2, 2)).is_some());
        for (bad, wanted) in [
            (
                "sometimes",
                "'sometimes' is not a fail-on term; accepted: rejects, new-rejects",
            ),
            ("never,rejects", "'never' cannot be joined"),
            ("rejects>ten", "the limit must be a whole number"),
            ("rejects>150%", "from 0 to 100"),
        ] {
            let e = FailOn::parse(bad).unwrap_err();
            assert!(e.contains(wanted), "{bad}: {e}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: String,
        source: std::io::Error,
    }

    fn is_a_directory() -> std::io::Error {
        std::io::Error::from_raw_os_error(21)
    }

    #[test]
    fn every_ending_and_error_kind_has_its_exit_code() {
        let endings = [
            (Ending::Complete { rejected: false }, 0),
            (Ending::Complete { rejected: true }, 1),
            (Ending::MappingRefused, 2),
            (Ending::SourceBroken, 2),
            (Ending::SetupRefused, 3),
            (Ending::Interrupted, 4),
            (Ending::TooManyErrors, 4),
            (Ending::OutputFailed, 4),
        ];
        for (ending, code) in endings {
            assert_eq!(Exit::of(&ending).code(), code, "{ending:?}");
        }
        let busy = LockError::Busy {
            dir: "state".into(),
            holder: "pid 1".into(),
        };
        let errors = [
            (Error::Unusable("bad".into()), 2),
            (Error::Setup("no role".into()), 3),
            (Error::Lock(busy), 5),
            (Error::io("cannot write r.csv")(is_a_directory()), 2),
        ];
        for (error, code) in errors {
            assert_eq!(Exit::for_error(&error).code(), code, "{error:?}");
            // Through the command line's anyhow, the kind still decides.
            let e = anyhow::Error::from(error).context("while running");
            assert_eq!(exit_for(&e).code(), code);
        }
        assert_eq!(exit_for(&anyhow::anyhow!("clap said no")), Exit::Unusable);
    }

    #[test]
    fn an_os_reason_is_printed_once() {
        let e = anyhow::Error::from(Repeats {
            path: "somedir/".into(),
            source: is_a_directory(),
        });
        assert_eq!(render(&e), "somedir/: Is a directory (os error 21)");
        let e = e.context("cannot open the source");
        assert_eq!(
            render(&e),
            "cannot open the source: somedir/: Is a directory (os error 21)"
        );
        // A chain whose links do not repeat each other is printed as `{:#}` prints it.
        let e = anyhow::Error::from(is_a_directory()).context("cannot read m.toml");
        assert_eq!(render(&e), format!("{e:#}"));
        assert_eq!(
            render(&e),
            "cannot read m.toml: Is a directory (os error 21)"
        );
    }
}
