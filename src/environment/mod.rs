//! What dvload knows of the environment it writes into: signing in and `WhoAmI` (`connect`),
//! and the check of every mapping against its tables, columns, keys and privileges (`check`).

pub(crate) mod check;
pub(crate) mod connect;
