//! The OData protocol as Dataverse speaks it, without I/O: operations, `$batch` multipart
//! encoding and decoding, key literals and URL encoding, error bodies.

pub mod batch;
pub mod error;
pub mod key;
mod multipart;
pub mod operation;

pub use batch::{
    BatchOptions, BatchResponse, EncodedBatch, NotProcessed, PartOutcome, decode_batch_response,
    encode_batch,
};
pub use error::{ODataError, parse_http_date, retry_after_at};
pub use key::KeyValue;
pub use operation::{Method, Operation, Precondition, Unresolved};
