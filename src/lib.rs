//! dvload: load CSV and JSON data into Microsoft Dataverse through its Web API.
//! The stages are modules: `source` reads records, `mapping` turns them into `odata::Operation`s,
//! `resolve` finds the targets of lookups by match, `odata` encodes operations as `$batch` requests,
//! `writer` sends them, `ledger` writes the outcome of every row (rejects, report).

// First, so that its `print!`, `println!`, `eprint!` and `eprintln!` (which never panic on a
// closed stdout) replace std's in every module below.
#[macro_use]
pub mod output;

pub mod auth;
pub(crate) mod batch;
pub mod cli;
pub mod commands;
pub(crate) mod environment;
pub mod error;
pub mod exit;
pub(crate) mod ids;
pub(crate) mod job;
pub(crate) mod keys;
pub(crate) mod ledger;
pub(crate) mod mapping;
pub(crate) mod odata;
pub(crate) mod outcome;
pub(crate) mod resolve;
pub(crate) mod run;
pub(crate) mod source;
pub(crate) mod toml_reader;
pub(crate) mod writer;

pub use error::{Error, Result};
