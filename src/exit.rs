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
