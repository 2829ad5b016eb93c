//! `dvload undo RUN_ID`: deletes the records a run created (never those it only updated), in
//! `$batch` requests with the writer's limits and retries, after saying what it will do.

use crate::exit::Exit;
use crate::run::{Mode, UndoOptions};

/// Arguments of `dvload undo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload undo 12 --mapping mappings/accounts.toml --profile prod\n  \
    dvload undo 12 --state /var/lib/dvload/nightly --yes          (DATAVERSE_URL and AZURE_* set)\n  \
    dvload undo 12 --mapping mappings/accounts.toml --emulator\n\n\
    An interrupted undo is continued by running the same command again. \
    Only records the run created are deleted: rows of `create` mappings (POST, or PATCH with \
    If-None-Match), and upserts that created their record when the run had --track-creates. \
    Without it Dataverse answers 204 whether an upsert created or updated, so the ledger cannot \
    tell and upserts are left alone. A record already gone counts as deleted.")]
pub struct Args {
    /// The run whose records to delete (see `dvload runs`).
    pub run_id: i64,
    /// Where the ledger is.
    #[command(flatten)]
    pub state: super::runs::StateArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Deletes per $batch request (1 to 1000).
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Batches in flight at most (default: the server's x-ms-dop-hint).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=52))]
    pub concurrency: Option<u16>,
    /// Connection options.
    #[command(flatten)]
    pub connect: super::connect::ConnectArgs,
    /// Retry options.
    #[command(flatten)]
    pub retry: super::connect::RetryArgs,
}

/// Runs `dvload undo`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let options = UndoOptions {
        run_id: args.run_id,
        state: args.state.dir(),
        yes: args.yes,
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        connect: args.connect.options(),
        policy: args.retry.policy(),
    };
    Ok(super::finish(crate::run::execute(
        Mode::Undo(options),
        &mut super::Terminal,
    )?))
}
