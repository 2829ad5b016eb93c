//! JSON Lines reader: one object per line; a malformed line is a `BadRecord`.

use super::{RecordSource, SourceError, SourceItem, SourceOptions};
use std::path::{Path, PathBuf};

/// Streams the records of a file.
pub struct JsonLinesSource {
    path: PathBuf,
}

impl JsonLinesSource {
    /// Opens the file.
    pub fn open(path: &Path, _options: &SourceOptions) -> Result<JsonLinesSource, SourceError> {
        Err(SourceError::Records {
            path: path.to_path_buf(),
            reason: "reader not built yet".into(),
        })
    }
}

impl Iterator for JsonLinesSource {
    type Item = Result<SourceItem, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl RecordSource for JsonLinesSource {
    fn columns(&self) -> Option<&[String]> {
        None
    }
    fn path(&self) -> &Path {
        &self.path
    }
}
