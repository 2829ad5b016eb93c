//! dvload: load CSV and JSON data into Microsoft Dataverse through its Web API.
//! The stages are modules: `source` reads records, `mapping` turns them into `odata::Operation`s,
//! `odata` encodes them as `$batch` requests, `ledger` writes the outcome of every row (rejects, report).

// First, so that its `print!`, `println!`, `eprint!` and `eprintln!` (which never panic on a
// closed stdout) replace std's in every module below.
#[macro_use]
pub mod output;

pub mod auth;
pub mod batch;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod ids;
pub mod job;
pub mod keys;
pub mod ledger;
pub mod mapping;
pub mod odata;
pub mod outcome;
pub mod source;
pub mod writer;
