//! What dvload knows of the environment it writes into: signing in and `WhoAmI` (`connect`),
//! the check of every mapping against its tables, columns, keys and privileges (`check`), and
//! each table's metadata as a file (`metadata`).

pub(crate) mod check;
pub(crate) mod connect;
pub(crate) mod metadata;
