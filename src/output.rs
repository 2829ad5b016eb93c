//! Printing that never panics: the crate's `print!`, `println!`, `eprint!` and `eprintln!`,
//! which shadow std's in every module (they are defined before the other modules in `lib.rs`).
//!
//! std's macros panic when the stream is gone: `dvload runs | head -1` ended with "failed
//! printing to stdout: Broken pipe" and exit 101. Here a closed stdout (`EPIPE`) makes further
//! output go nowhere, quietly, while the command carries on to its own end and exit code: a load
//! is not cut short because whoever read its summary stopped reading, and its outcome is in the
//! ledger and the report. Any other failure to write stdout (a full disk) is said once on stderr.
//! A failure to write stderr has nowhere to be reported and is ignored.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; after a failure, writes nothing more (see the module docs).
pub fn stdout(args: std::fmt::Arguments<'_>) {
    // Unit tests: std's macro, whose output the test harness captures.
    if cfg!(test) {
        std::print!("{args}");
        return;
    }
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            stderr(format_args!(
                "warning: cannot write to stdout ({e}); the rest of the output is dropped\n"
            ));
        }
    }
}

/// Writes to stderr, ignoring a failure.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    if cfg!(test) {
        std::eprint!("{args}");
        return;
    }
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics (see the module docs).
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))
    };
}

/// `println!` that never panics (see the module docs).
macro_rules! println {
    () => {
        $crate::output::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics (see the module docs).
#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module docs).
macro_rules! eprintln {
    () => {
        $crate::output::stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
