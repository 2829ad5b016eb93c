//! Exit codes a cron wrapper can act on (DESIGN.md), and how an error chooses one.

use std::process::ExitCode;

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

/// An error that carries its own exit code (anything else exits 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// The exit code.
    pub exit: Exit,
    /// What to tell the user.
    pub message: String,
}

/// The exit code for an error that ended a command.
pub fn exit_for(error: &anyhow::Error) -> Exit {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<ExitError>().map(|x| x.exit))
        .unwrap_or(Exit::Unusable)
}
