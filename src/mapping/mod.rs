//! Mapping files: their TOML shape, compilation into a `Plan`, and per-row value conversion.
