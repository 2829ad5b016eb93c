//! Source readers: CSV, JSON array and JSON Lines files streamed into `Record`s, one at a time.
//! A bad row becomes a `BadRecord` (the run goes on); a broken document is a `SourceError` (it stops).

mod csv;
mod json;
mod jsonl;

use std::fmt;
use std::path::{Path, PathBuf};

pub use self::csv::CsvSource;
pub use self::json::JsonArraySource;
pub use self::jsonl::JsonLinesSource;

/// The file formats dvload reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma (or other delimiter) separated values with a header row.
    Csv,
    /// One JSON document holding an array of objects (at the top, or at a JSON pointer).
    Json,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    JsonLines,
}

impl Format {
    /// The format a file name's extension implies, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The name used in mapping files.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::JsonLines => "jsonl",
        }
    }
}

/// Text encodings a CSV source may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    Utf8,
    /// Windows code page 1252 (also accepted as `latin1`/`iso-8859-1`, as browsers do).
    Windows1252,
}

/// How to read a source: everything the mapping's `[source]` table says, resolved.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The file format.
    pub format: Format,
    /// CSV field delimiter (`,` `;` `\t` `|`).
    pub delimiter: u8,
    /// CSV quote character.
    pub quote: u8,
    /// CSV text encoding.
    pub encoding: Encoding,
    /// JSON pointer to the array of records (`/value`); empty for a top-level array.
    pub records: String,
}

impl Default for SourceOptions {
    /// CSV, comma-separated, double-quoted, UTF-8; JSON records at the top level.
    fn default() -> Self {
        SourceOptions {
            format: Format::Csv,
            delimiter: b',',
            quote: b'"',
            encoding: Encoding::Utf8,
            records: String::new(),
        }
    }
}

/// Where a record is in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowPos {
    /// 1-based ordinal of the record: CSV data row (header excluded), JSON array element
    /// (index + 1), JSON Lines record (blank lines are not records).
    pub row: u64,
    /// 1-based physical line on which the record starts.
    pub line: u64,
}

impl fmt::Display for RowPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} (line {})", self.row, self.line)
    }
}

/// One CSV record: decoded fields in header order, plus the record's original bytes.
#[derive(Debug, Clone, Default)]
pub struct CsvRow {
    /// The fields' text; it may hold more than the fields (a record's delimiters and quotes).
    text: String,
    /// Start and end offsets in `text` of each field, at character boundaries.
    spans: Vec<(usize, usize)>,
    /// The record exactly as it was in the file (without its line terminator), in the source's
    /// encoding; written back verbatim to the rejects file.
    pub raw: Vec<u8>,
}

impl CsvRow {
    /// Builds a row from decoded fields and the raw bytes they came from.
    pub fn new<S: AsRef<str>>(fields: &[S], raw: Vec<u8>) -> CsvRow {
        let mut row = CsvRow {
            raw,
            ..CsvRow::default()
        };
        for f in fields {
            row.push_field(f.as_ref());
        }
        row
    }

    /// Appends one decoded field.
    pub fn push_field(&mut self, field: &str) {
        let start = self.text.len();
        self.text.push_str(field);
        self.spans.push((start, self.text.len()));
    }

    /// Empties the row, keeping its allocations.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.raw.clear();
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i`, if the row has it.
    pub fn get(&self, i: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(i)?;
        Some(&self.text[start..end])
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }
}

/// The content of a record.
#[derive(Debug, Clone)]
pub enum RecordData {
    /// A CSV row; field `i` belongs to header column `i`.
    Csv(CsvRow),
    /// A JSON object (from an array element or a JSON Lines line).
    Json(serde_json::Value),
}

/// One record read from a source.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where it is.
    pub pos: RowPos,
    /// What it holds.
    pub data: RecordData,
}

/// A record that could not be read (ragged row, invalid bytes, malformed JSON line). It is
/// rejected with its reason; reading goes on with the next record.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// Where it is.
    pub pos: RowPos,
    /// What is wrong, and what would be accepted.
    pub reason: String,
    /// The record's original bytes (without line terminator), for the rejects file.
    pub raw: Vec<u8>,
}

/// What a source yields for each record.
#[derive(Debug, Clone)]
pub enum SourceItem {
    /// A readable record.
    Record(Record),
    /// An unreadable record, to be rejected.
    Bad(BadRecord),
}

impl SourceItem {
    /// The position of the record, readable or not.
    pub fn pos(&self) -> RowPos {
        match self {
            SourceItem::Record(r) => r.pos,
            SourceItem::Bad(b) => b.pos,
        }
    }
}

/// An error that makes the whole source unusable (the run stops).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CSV file has no header row (it is empty).
    #[error("{path}: the file is empty; a CSV source needs a header row naming its columns")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header row is unusable (empty or duplicate names, invalid bytes).
    #[error("{path}: line {line}: {reason}")]
    Header {
        /// The file.
        path: PathBuf,
        /// The header's physical line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The JSON document is malformed or cut short.
    #[error("{path}: byte offset {offset} (line {line}, column {column}): {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 0-based byte offset of the problem.
        offset: u64,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The JSON pointer does not lead to an array.
    #[error("{path}: {reason}")]
    Records {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A streaming reader of records.
pub trait RecordSource: Iterator<Item = Result<SourceItem, SourceError>> + Send {
    /// The CSV header's column names (BOM removed), or `None` for JSON sources.
    fn columns(&self) -> Option<&[String]>;
    /// The file being read.
    fn path(&self) -> &Path;
}

/// Opens `path` for reading with `options`; for CSV, reads the header row.
pub fn open(path: &Path, options: &SourceOptions) -> Result<Box<dyn RecordSource>, SourceError> {
    Ok(match options.format {
        Format::Csv => Box::new(CsvSource::open(path, options)?),
        Format::Json => Box::new(JsonArraySource::open(path, options)?),
        Format::JsonLines => Box::new(JsonLinesSource::open(path, options)?),
    })
}
