//! `$batch` multipart/mixed request encoding and response decoding (PROTOCOL.md §7), no I/O.
