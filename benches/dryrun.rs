//! Dry-run throughput benchmark.
fn main() {}
