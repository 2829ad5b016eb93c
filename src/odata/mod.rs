//! The OData protocol as Dataverse speaks it, without I/O: operations, `$batch` multipart
//! encoding and decoding, key literals and URL encoding, error bodies.

pub mod batch;
pub mod error;
pub mod key;
mod multipart;
pub mod operation;

pub use batch::{
    BatchOptions, BatchOptionsError, BatchRejection, BatchResponse, DecodeError, EncodedBatch,
    NotProcessed, PartOutcome, PartResponse, decode_batch_response, encode_batch,
};
pub use error::{ODataError, parse_http_date, parse_retry_after, retry_after_at};
pub use key::{
    KeyValue, UnaddressableKey, alternate_key_bind, alternate_key_url, check_addressable,
    key_display, primary_key_bind, primary_key_url,
};
pub use operation::{Method, Operation, Precondition};
