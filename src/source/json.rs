//! JSON array reader: streams the elements of a top-level array or of the array at a JSON pointer.

use super::{RecordSource, SourceError, SourceItem, SourceOptions};
use std::path::{Path, PathBuf};

/// Streams the records of a file.
pub struct JsonArraySource {
    path: PathBuf,
}

impl JsonArraySource {
    /// Opens the file.
    pub fn open(path: &Path, _options: &SourceOptions) -> Result<JsonArraySource, SourceError> {
        Err(SourceError::Records {
            path: path.to_path_buf(),
            reason: "reader not built yet".into(),
        })
    }
}

impl Iterator for JsonArraySource {
    type Item = Result<SourceItem, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl RecordSource for JsonArraySource {
    fn columns(&self) -> Option<&[String]> {
        None
    }
    fn path(&self) -> &Path {
        &self.path
    }
}
