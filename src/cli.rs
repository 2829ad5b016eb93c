//! The command line: the top-level parser and its subcommands (each defined in `commands/`).

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Save what dvload needs of each table (`metadata pull TABLE... --out DIR`).
    Metadata(commands::metadata::Args),
    /// Write a mapping from a source's header and the table's metadata, to read and then run.
    Init(commands::init::Args),
    /// Print the completion script for a shell (bash, zsh, fish, powershell).
    Completions(commands::shell::CompletionsArgs),
    /// Print the manual page (roff): dvload man > dvload.1
    Man(commands::shell::ManArgs),
    /// Serve the local Dataverse + Entra ID emulator on 127.0.0.1 (for rehearsals and tests).
    Emulator(commands::emulator::Args),
}
