//! CSV reader: header row, delimiters, quotes, BOM, CRLF/LF, windows-1252; a bad row is a `BadRecord`.

use super::{RecordSource, SourceError, SourceItem, SourceOptions};
use std::path::{Path, PathBuf};

/// Streams the records of a CSV file.
pub struct CsvSource {
    path: PathBuf,
    columns: Vec<String>,
}

impl CsvSource {
    /// Opens the file and reads its header row.
    pub fn open(path: &Path, _options: &SourceOptions) -> Result<CsvSource, SourceError> {
        Err(SourceError::Records {
            path: path.to_path_buf(),
            reason: "CSV reader not built yet".into(),
        })
    }
}

impl Iterator for CsvSource {
    type Item = Result<SourceItem, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl RecordSource for CsvSource {
    fn columns(&self) -> Option<&[String]> {
        Some(&self.columns)
    }
    fn path(&self) -> &Path {
        &self.path
    }
}
