//! `dvload metadata pull TABLE... --out DIR`: saves what dvload needs of each table (columns and
//! their types, lengths, ranges, date behaviour, lookup targets and navigation properties, option
//! sets with their labels, alternate keys and their index status) as `DIR/TABLE.json`, one
//! readable file per table whose members are always in the same order; the tables named, every
//! custom table (`--all-custom`), or those of a solution (`--solution`).

use std::path::PathBuf;

use super::connect::{ConnectArgs, RetryArgs};
use crate::environment::metadata;
use crate::exit::Exit;

/// Arguments of `dvload metadata`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `metadata` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Save each table's metadata as DIR/TABLE.json (commit them: a diff shows what changed).
    #[command(
        after_help = "Examples:\n  dvload metadata pull account contact --out metadata/ --emulator\n  \
                      dvload metadata pull account contact --out metadata/ --profile prod\n  \
                      dvload metadata pull --all-custom --out metadata/ --profile prod\n  \
                      dvload metadata pull --solution ContosoProjects --out metadata/ --profile prod\n  \
                      dvload metadata pull account --out metadata/          (DATAVERSE_URL and AZURE_* set)"
    )]
    Pull(PullArgs),
}

/// Arguments of `dvload metadata pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Tables by logical name (`account`, `new_project`).
    #[arg(required_unless_present_any = ["all_custom", "solution"], value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Also every custom table of the environment (`IsCustomEntity`), as the environment lists
    /// them.
    #[arg(long)]
    pub all_custom: bool,
    /// Also every table of the solution with this unique name (repeatable).
    #[arg(long, value_name = "UNIQUE_NAME")]
    pub solution: Vec<String>,
    /// The folder the files go to (made when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Connection options.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Retry options.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// Runs `dvload metadata`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Action::Pull(args) = args.action;
    // Names that cannot be a table's logical name are refused before anything is asked.
    for t in &args.tables {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(crate::Error::Unusable(format!(
                "'{t}' is not a table's logical name (lower-case letters, digits and _, such as account or new_project)"
            ))
            .into());
        }
    }
    args.connect.settings()?;
    std::fs::create_dir_all(&args.out).map_err(crate::Error::io(format!(
        "cannot make the folder {}",
        args.out.display()
    )))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(pull(args))
}

async fn pull(args: PullArgs) -> anyhow::Result<Exit> {
    let policy = args.retry.policy();
    let conn = crate::environment::connect::connect(&args.connect.options(), &policy).await?;
    println!("connected to {} ({})", conn.url, conn.origin);
    let mut tables: Vec<String> = args.tables.iter().map(|t| t.to_ascii_lowercase()).collect();
    if args.all_custom {
        let custom = metadata::custom_tables(&conn, &policy)
            .await
            .map_err(|e| crate::Error::Unusable(format!("cannot list the custom tables: {e}")))?;
        println!("{} custom tables: {}", custom.len(), custom.join(", "));
        for t in custom {
            if !tables.contains(&t) {
                tables.push(t);
            }
        }
    }
    for name in &args.solution {
        let (held, unmatched) = metadata::solution_tables(&conn, &policy, name)
            .await
            .map_err(|e| crate::Error::Unusable(format!("solution '{name}': {e}")))?;
        println!(
            "solution {name}: {} tables: {}{}",
            held.len(),
            held.join(", "),
            if unmatched > 0 {
                format!(" ({unmatched} of its table components name no table the environment has)")
            } else {
                String::new()
            }
        );
        for t in held {
            if !tables.contains(&t) {
                tables.push(t);
            }
        }
    }
    for logical in tables {
        let table = metadata::pull(&conn, &policy, &logical)
            .await
            .map_err(|e| crate::Error::Unusable(format!("table '{logical}': {e}")))?;
        let mut text = serde_json::to_string_pretty(&table)?;
        text.push('\n');
        let path = args.out.join(format!("{logical}.json"));
        crate::ledger::report::write_atomically(&path, text.as_bytes())
            .map_err(crate::Error::io(format!("cannot write {}", path.display())))?;
        println!(
            "{logical}: {} columns, {} alternate keys -> {}",
            table.columns.len(),
            table.keys.len(),
            path.display()
        );
    }
    Ok(Exit::Success)
}
