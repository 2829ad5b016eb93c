//! The library's error: what stopped a command before or after its run, by kind. The kind, not
//! the text, chooses the exit code (`exit::Exit::for_error`); `anyhow` is used only by the
//! command line around it.

use crate::auth::SettingsError;
use crate::ledger::db::LedgerError;
use crate::ledger::lock::LockError;
use crate::mapping::spec::MappingError;
use crate::source::SourceError;

/// Why a command could not run, or could not finish what it records.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line, a mapping, a source or the state directory cannot be used as given;
    /// nothing was sent.
    #[error("{0}")]
    Unusable(String),
    /// Signing in, the application user or its privileges are wrong; the message says which and
    /// how to fix it.
    #[error("{0}")]
    Setup(String),
    /// A mapping file that cannot be read or is not valid.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A source that cannot be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Connection settings that cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The run ledger cannot be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The state directory's lock: held by another run, or not to be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The HTTP client cannot be built (a CA certificate that cannot be read).
    #[error(transparent)]
    Http(#[from] crate::auth::HttpClientError),
    /// A task of the run panicked (a defect): what it had recorded stays recorded.
    #[error("a task of the run failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A file or folder the command reads or writes (`what` says which and why).
    #[error("{what}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// A result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
