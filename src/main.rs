//! The `dvload` binary: parse the command line, set up logging, run one command, exit with its code.

use std::process::ExitCode;

use clap::Parser as _;
use dvload::cli::{Cli, Command};
use dvload::exit::{Exit, exit_for, render};

/// mimalloc: every row allocates a few small buffers (fields, URL, body) that live until its
/// batch is encoded; the system allocator spent a quarter of the dry run's time on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    dvload::commands::init_logging(&cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::Validate(args) => dvload::commands::validate::run(args),
        Command::Run(args) => dvload::commands::run::run(args),
        Command::Whoami(args) => dvload::commands::whoami::run(args),
        Command::Runs(args) => dvload::commands::runs::run(args),
        Command::Undo(args) => dvload::commands::undo::run(args),
        Command::Metadata(args) => dvload::commands::metadata::run(args),
        Command::Init(args) => dvload::commands::init::run(args),
        Command::Completions(args) => dvload::commands::shell::completions(args),
        Command::Man(args) => dvload::commands::shell::man(args),
        Command::Emulator(args) => dvload::commands::emulator::run(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            if is_broken_pipe(&error) {
                return Exit::Success.into();
            }
            dvload::output::stderr(format_args!("error: {}\n", render(&error)));
            exit_for(&error).into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
