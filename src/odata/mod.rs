//! The OData protocol as Dataverse speaks it, without I/O: operations, `$batch` multipart
//! encoding and decoding, key literals and URL encoding, error bodies.

pub mod batch;
pub mod key;
pub mod operation;

pub use operation::{Method, Operation, Precondition};
