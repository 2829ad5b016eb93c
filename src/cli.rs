//! The command line: the top-level parser and its subcommands (each defined in `commands/`).

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::commands;

/// dvload loads CSV and JSON data into Microsoft Dataverse through its Web API.
#[derive(Debug, Parser)]
#[command(
    name = "dvload",
    version,
    about = "Load CSV and JSON data into Microsoft Dataverse through its Web API",
    after_help = "Exit codes: 0 every row written (or mapped), 1 some rows rejected, 2 mapping/source/command line \
                  unusable, 3 authentication failed, 4 stopped early (resumable), 5 another run holds the job's state directory.\n\nStart with:\n  dvload validate mappings/accounts.toml\n  \
                  dvload run mappings/accounts.toml --dry-run --emit-batches out/\n  \
                  dvload whoami --emulator --check mappings/accounts.toml"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log detail: error, warn, info, debug or trace (RUST_LOG overrides it). Logs go to stderr.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    /// Log format for stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Cli {
    /// Parses the process's arguments with [`Cli::command_line`]; on an error, prints clap's
    /// message and exits 2.
    pub fn parse_args() -> Cli {
        let matches = Cli::command_line().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The command line: the derived definitions, with `run --bypass-logic` taking a value only
    /// as `--bypass-logic=WHAT`. With an optional value given after a space, clap took the next
    /// word, so `--bypass-logic accounts.toml` sent the mapping's path as the header's value and
    /// ran no mapping. (Set here rather than on the field in `commands/run.rs`, which belongs to
    /// the run command's owners; the attribute `require_equals = true` there would do the same.)
    pub fn command_line() -> clap::Command {
        Cli::command().mut_subcommand("run", |run| {
            run.mut_arg("bypass_logic", |arg| {
                arg.require_equals(true)
                    .value_parser(["CustomSync", "CustomAsync", "CustomSync,CustomAsync"])
                    .help(
                        "Skip custom business logic (MSCRM.BypassBusinessLogicExecution): \
                         --bypass-logic skips both, --bypass-logic=CustomSync or =CustomAsync one",
                    )
            })
        })
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a mapping and its source: map every row, report what would be rejected. No network.
    Validate(commands::validate::Args),
    /// Load rows into Dataverse (with --dry-run: build the $batch requests without sending them).
    Run(commands::run::Args),
    /// Check the connection set-up and show who dvload is in the environment (--check: a mapping's privileges).
    Whoami(commands::whoami::Args),
    /// List the runs of a job from its ledger; `runs show RUN_ID` prints one run and its rejects.
    Runs(commands::runs::Args),
    /// Delete the records a run created (asks first, or --yes).
    Undo(commands::undo::Args),
    /// Serve the local Dataverse + Entra ID emulator on 127.0.0.1 (for rehearsals and tests).
    Emulator(commands::emulator::Args),
}
