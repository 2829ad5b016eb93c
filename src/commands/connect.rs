//! The connection and retry options of the commands that talk to Dataverse, as the command line
//! takes them; `environment::connect` connects with what they name.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{Settings, SettingsError};
use crate::environment::connect::ConnectOptions;
use crate::writer::RetryPolicy;

/// Retry options of the commands that write (`run`, `undo`); hidden, for the tests.
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// Attempts per operation before it is given up (tests lower it).
    #[arg(long, value_name = "N", default_value_t = 8, hide = true)]
    pub max_attempts: u32,
    /// First retry delay in milliseconds (tests lower it).
    #[arg(long, value_name = "MS", default_value_t = 1000, hide = true)]
    pub retry_base_ms: u64,
    /// Longest pause in milliseconds, a `Retry-After` included (tests lower it; by default a
    /// `Retry-After` is honoured up to 300 s).
    #[arg(long, value_name = "MS", default_value_t = 60_000, hide = true)]
    pub max_delay_ms: u64,
}

impl RetryArgs {
    /// The retry policy these options make (the rest as [`RetryPolicy::default`]).
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: Duration::from_millis(self.retry_base_ms),
            max_delay: Duration::from_millis(self.max_delay_ms.max(1)),
            max_throttle: RetryPolicy::default()
                .max_throttle
                .min(Duration::from_millis(self.max_delay_ms.max(1))),
            ..RetryPolicy::default()
        }
    }
}

/// Connection options common to the commands that talk to Dataverse.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Start the built-in emulator on a free loopback port and use it with its default
    /// credentials (ignores DATAVERSE_URL and AZURE_*).
    #[arg(long)]
    pub emulator: bool,
    /// Read the connection from this profile of the config file instead of the environment
    /// variables (--emulator wins over it).
    #[arg(long, env = "DVLOAD_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// The profile file. Default: ./dvload.toml, else $XDG_CONFIG_HOME/dvload/dvload.toml
    /// (~/.config/dvload/dvload.toml).
    #[arg(long, env = "DVLOAD_CONFIG", value_name = "FILE", requires = "profile")]
    pub config: Option<PathBuf>,
    /// Seconds to wait for each request's answer.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Extra root certificates (PEM) to trust, for a corporate TLS proxy.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not keep Dataverse's server-affinity cookie, so that requests spread across web servers.
    #[arg(long)]
    pub no_affinity: bool,
}

impl ConnectArgs {
    /// The library's options for these arguments.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            emulator: self.emulator,
            profile: self.profile.clone(),
            config: self.config.clone(),
            timeout: self.timeout,
            ca_cert: self.ca_cert.clone(),
            no_affinity: self.no_affinity,
        }
    }

    /// The settings these arguments name, checked without any network
    /// ([`ConnectOptions::settings`]).
    pub fn settings(&self) -> Result<Option<Settings>, SettingsError> {
        self.options().settings()
    }
}
