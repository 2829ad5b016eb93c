//! Mapping files: their TOML shape (`spec`), compilation into a `Plan` (`plan`), and per-row value
//! conversion (`convert`).

pub mod convert;
pub mod plan;
pub mod spec;

pub use plan::{Mapped, Plan, RowError};
pub use spec::{MappingSpec, OperationKind};

#[cfg(test)]
mod tests;
