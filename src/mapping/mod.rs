//! Mapping files: their TOML shape (`spec`), compilation into a `Plan` (`plan`), per-row value
//! conversion (`convert`), and the mapping `dvload init` writes from a source and metadata
//! (`generate`).

pub mod convert;
pub mod generate;
pub mod plan;
pub mod spec;

pub use plan::{Mapped, MatchLookup, Plan, RowError};
pub use spec::{MappingSpec, OperationKind};

#[cfg(test)]
mod tests;
