//! What dvload knows of the environment it writes into: signing in and `WhoAmI` (`connect`),
//! the check of every mapping against its tables, columns, keys and privileges (`check`), each
//! table's metadata as a file (`metadata`), and what a mapping takes from it (`complete`).

pub(crate) mod check;
pub(crate) mod complete;
pub(crate) mod connect;
pub(crate) mod metadata;
