//! One module per subcommand: its arguments and its `run` function.

pub mod connect;
pub mod emulator;
pub mod init;
pub mod metadata;
pub mod run;
pub mod runs;
pub mod shell;
pub mod undo;
pub mod validate;
pub mod whoami;

use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::path::Path;

use std::time::{Duration, Instant};

use crate::cli::LogFormat;
use crate::exit::Exit;
use crate::outcome::{Counts, Progress};

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

pub use crate::run::thousands;

/// Ends a command that ran: its exit code from how the run ended (`exit.rs`); the message of a
/// run that stopped is printed as the command's error.
pub fn finish(finished: crate::run::Finished) -> Exit {
    if let Some(message) = &finished.message {
        crate::output::stderr(format_args!("error: {message}\n"));
    }
    Exit::of(&finished.ending)
}

/// The console of a command run by a person or a scheduler: lines on stdout, a progress bar on
/// stderr when it is a terminal, questions asked only at a terminal.
#[derive(Default)]
pub struct Terminal;

impl crate::run::Console for Terminal {
    fn line(&mut self, text: &str) {
        println!("{text}");
    }

    fn progress(&mut self, source: &Path) -> Box<dyn Progress> {
        Box::new(TerminalProgress::new(source))
    }

    fn confirm(&mut self, question: &str) -> std::io::Result<Option<bool>> {
        use std::io::{BufRead as _, Write as _};
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        print!("{question} [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(Some(matches!(answer.trim(), "y" | "Y" | "yes")))
    }
}

/// A progress bar on stderr when it is a terminal; nothing otherwise (cron, CI, pipes).
struct TerminalProgress {
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
    start: Instant,
}

impl TerminalProgress {
    fn new(source: &std::path::Path) -> TerminalProgress {
        if !std::io::stderr().is_terminal() || !crate::ledger::db::is_regular_file(source) {
            return TerminalProgress {
                bar: None,
                last: Instant::now(),
                start: Instant::now(),
            };
        }
        // The bar goes by the file's physical lines (counted fast, through a fixed buffer): the
        // furthest line settled against the lines there are, so that rows with quoted line
        // breaks do not stop it short; the message counts rows, at a rate rounded for people.
        // A pipe is never read twice: no bar.
        let total = count_lines(source).unwrap_or(0);
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr_with_hz(5),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}%  {msg}  ETA {eta}")
                .expect("valid template"),
        );
        TerminalProgress {
            bar: Some(bar),
            last: Instant::now(),
            start: Instant::now(),
        }
    }
}

impl Progress for TerminalProgress {
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn update(&mut self, counts: &Counts, line: u64) {
        if let Some(bar) = &self.bar {
            if self.last.elapsed() >= Duration::from_millis(100) {
                self.last = Instant::now();
                bar.set_position(line);
                let secs = self.start.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "{} rows  {} rows/s  rejected {}",
                    crate::run::text::thousands(counts.read),
                    crate::run::text::rate(counts.read as f64 / secs.max(0.001)),
                    crate::run::text::thousands(counts.rejected)
                ));
            }
        }
    }
}

/// Counts `\n` bytes through a fixed buffer (never the whole file in memory).
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&c| c == b'\n').count() as u64;
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
}
