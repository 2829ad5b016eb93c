//! `$batch`: the emulator's own multipart parser, executor and encoder (not dvload's codec, so
//! that the two check each other).

pub mod encoder;
pub mod executor;
pub mod parser;
