//! `dvload emulator`: serve the built-in Dataverse + Entra ID emulator on 127.0.0.1 until Ctrl-C.

use crate::exit::Exit;

/// Arguments of `dvload emulator` (defined by the emulator crate).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload emulator --port 8085\n  \
    dvload emulator --print-config > emulator.toml\n  \
    dvload emulator --config emulator.toml --seed 7 --throttle-rate 0.05 --latency-ms 20\n\n\
    It prints `listening on http://127.0.0.1:PORT` when ready. Point dvload at it with\n  \
    DATAVERSE_URL=http://127.0.0.1:PORT AZURE_AUTHORITY_HOST=http://127.0.0.1:PORT\n  \
    AZURE_TENANT_ID=11111111-1111-1111-1111-111111111111 AZURE_CLIENT_ID=22222222-2222-2222-2222-222222222222\n  \
    AZURE_CLIENT_SECRET=emulator-secret")]
pub struct Args {
    /// The emulator's options.
    #[command(flatten)]
    pub emulator: dataverse_emulator::EmulatorArgs,
}

/// Runs `dvload emulator`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dataverse_emulator::run_cli(args.emulator))?;
    Ok(Exit::Success)
}
