//! `dvload emulator` arguments and `run_cli`, which serves until Ctrl-C.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::server::{StartOptions, TlsFiles, start};

/// Arguments of `dvload emulator` (flatten them into a clap command).
#[derive(Debug, Clone, Default, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// TOML configuration file (default: the built-in configuration, see --print-config).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed of fault injection and generated ids.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Keep rows in FILE across restarts.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Latency added to every Web API request, in milliseconds.
    #[arg(long, value_name = "N")]
    pub latency_ms: Option<u64>,
    /// Probability (0–1) of a 500/502/503 answer.
    #[arg(long, value_name = "P")]
    pub fail_rate: Option<f64>,
    /// Probability (0–1) of a 429 with Retry-After.
    #[arg(long, value_name = "P")]
    pub throttle_rate: Option<f64>,
    /// Probability (0–1) of dropping the connection (half before, half after applying).
    #[arg(long, value_name = "P")]
    pub reset_rate: Option<f64>,
    /// Lifetime of issued tokens in seconds.
    #[arg(long, value_name = "SECS")]
    pub token_lifetime: Option<u64>,
    /// Simulated execution cost per operation in milliseconds.
    #[arg(long, value_name = "N")]
    pub op_cost_ms: Option<u64>,
    /// Value of x-ms-dop-hint.
    #[arg(long, value_name = "N")]
    pub dop_hint: Option<u32>,
    /// Service protection window in seconds.
    #[arg(long, value_name = "N")]
    pub window_secs: Option<f64>,
    /// Requests per user per window.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Execution time per user per window, in milliseconds.
    #[arg(long, value_name = "N")]
    pub max_exec_ms: Option<u64>,
    /// Concurrent requests per user.
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u64>,
}

impl EmulatorArgs {
    /// The configuration: file or built-in, with the flags applied on top.
    pub fn effective_config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_toml_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = self.latency_ms {
            c.faults.latency_ms = v;
        }
        for (flag, value, slot) in [
            ("--fail-rate", self.fail_rate, &mut c.faults.fail_rate),
            (
                "--throttle-rate",
                self.throttle_rate,
                &mut c.faults.throttle_rate,
            ),
            ("--reset-rate", self.reset_rate, &mut c.faults.reset_rate),
        ] {
            if let Some(v) = value {
                anyhow::ensure!(
                    (0.0..=1.0).contains(&v),
                    "{flag} must be between 0 and 1, not {v}"
                );
                *slot = v;
            }
        }
        if let Some(v) = self.token_lifetime {
            c.tokens.lifetime_secs = v;
        }
        if let Some(v) = self.op_cost_ms {
            c.limits.op_cost_ms = v;
        }
        if let Some(v) = self.dop_hint {
            c.limits.dop_hint = v;
        }
        if let Some(v) = self.window_secs {
            anyhow::ensure!(v > 0.0, "--window-secs must be positive, not {v}");
            c.limits.window_secs = v;
        }
        if let Some(v) = self.max_requests {
            c.limits.max_requests = v;
        }
        if let Some(v) = self.max_exec_ms {
            c.limits.max_exec_ms = v;
        }
        if let Some(v) = self.max_concurrent {
            c.limits.max_concurrent = v;
        }
        crate::catalog::Catalog::build(&c).map_err(|e| anyhow::anyhow!("invalid config: {e}"))?;
        Ok(c)
    }
}

/// Runs the emulator: prints `listening on http://127.0.0.1:PORT` on stdout when ready and
/// serves until Ctrl-C (then shuts down gracefully). `--print-config` prints the TOML instead.
pub async fn run_cli(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.effective_config()?;
    if args.print_config {
        print!("{}", config.to_toml_string());
        return Ok(());
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let running = start(
        config,
        StartOptions {
            port: args.port,
            tls,
            data_file: args.data.clone(),
        },
    )
    .await
    .context("starting the emulator")?;
    println!("listening on {}", running.base_url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    running.shutdown().await;
    Ok(())
}
