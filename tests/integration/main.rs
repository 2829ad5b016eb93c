//! Integration tests: the built binary against sources, mappings and the emulator.
