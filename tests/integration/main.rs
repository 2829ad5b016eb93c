//! Integration tests: the built `dvload` binary run on files in a temporary directory.
//!
//! `support.rs` hides the set-up; each other file holds the tests of one command or concern.
//! Bad input of every kind gets a test in `bad_input.rs` asserting the exact outcome.

mod attack;
mod bad_input;
#[path = "../../benches/common/bench_file.rs"]
mod bench_file;
mod chaos;
mod chaos_support;
mod docs;
mod dry_run;
mod examples;
mod golden;
mod guarantee;
mod hygiene;
mod input_limits;
mod ledger;
mod lookup_match;
mod mapping_checks;
mod metadata;
mod owners;
mod preflight;
mod seams;
mod support;
mod validate;
mod whoami;
mod writer;
