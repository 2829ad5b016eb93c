//! A local emulator of the Dataverse Web API and the Entra ID token endpoint.
//!
//! Start it in-process with [`start`] (port 0 = ephemeral) or from the command line through
//! [`EmulatorArgs`] and [`run_cli`]. The built-in [`Config::default`] has one tenant, one app
//! registration (see [`defaults`]) and the tables account, contact, lead and task.
//!
//! Behaviour follows `shared/PROTOCOL.md` and the Microsoft documentation it cites; where no
//! source confirms a detail, the code says UNVERIFIED next to it.

pub mod auth;
pub mod batch;
pub mod builtin;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod config;
pub mod defaults;
pub mod entra;
pub mod error;
pub mod faults;
pub mod keys;
pub mod limits;
pub mod persist;
pub mod records;
pub mod server;
pub mod shared;
pub mod state;
pub mod stats;
pub mod values;
pub mod webapi;

pub use cli::{EmulatorArgs, run_cli};
pub use config::{Config, ConfigError, FaultsConfig, LimitsConfig};
pub use server::{RunningEmulator, StartError, StartOptions, StateView, TlsFiles, start};
pub use state::Record;
pub use stats::StatsSnapshot;

/// Namespace alias so that callers can write `Emulator::start(…)`.
pub struct Emulator;

impl Emulator {
    /// Same as [`start`].
    pub async fn start(config: Config, opts: StartOptions) -> Result<RunningEmulator, StartError> {
        start(config, opts).await
    }
}
