//! The connection settings of a benchmark's `dvload` run against an emulator it started: the
//! emulator's URL and the built-in app registration. Shared by `benches/writer.rs` and
//! `benches/lookups.rs`.

use std::process::Command;

use dataverse_emulator::defaults;

/// `dvload ARGS` in `dir`, signed in to the emulator at `base` as the built-in application.
pub fn dvload(dir: &std::path::Path, base: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvload"));
    cmd.args(args)
        .current_dir(dir)
        .env("DATAVERSE_URL", base)
        .env("AZURE_AUTHORITY_HOST", base)
        .env("AZURE_TENANT_ID", defaults::TENANT_ID)
        .env("AZURE_CLIENT_ID", defaults::CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", defaults::CLIENT_SECRET)
        .env("NO_PROXY", "127.0.0.1");
    cmd
}
