//! Source readers: CSV, JSON array and JSON Lines files streamed into `Record`s, one at a time.
//! A bad row becomes a `BadRecord` (the run goes on); a broken document is a `SourceError` (it stops).

mod csv;
mod json;
mod jsonl;
mod value;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// The longest record read, in bytes (a CSV row, a JSON Lines line, a JSON array element);
    /// a longer one is rejected without being held in memory.
    pub max_record_bytes: usize,
}

/// The default `max_record_bytes`: 8 MiB. The longest value Dataverse stores is a multiple lines
/// of text column of 1,048,576 characters, at most 4 MiB in UTF-8; twice that leaves room for the
/// rest of the row and for quoting or escaping. A longer record could not be written anyway, and
/// a reader holds at most this much of one record (plus one 64 KiB read buffer).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// The smallest `max_record_bytes` a mapping may set.
pub const MIN_MAX_RECORD_BYTES: usize = 1024;

/// How much of an over-long record is kept (for the rejects file, to recognise the row by).
pub const PREVIEW_BYTES: usize = 1024;

impl Default for SourceOptions {
    /// CSV, comma-separated, double-quoted, UTF-8; JSON records at the top level; records of at
    /// most [`DEFAULT_MAX_RECORD_BYTES`].
    fn default() -> Self {
        SourceOptions {
            format: Format::Csv,
            delimiter: b',',
            quote: b'"',
            encoding: Encoding::Utf8,
            records: String::new(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
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

/// One CSV record: decoded fields in header order.
#[derive(Debug, Clone, Default)]
pub struct CsvRow {
    /// The fields' text; it may hold more than the fields (a record's delimiters and quotes).
    text: String,
    /// Start and end offsets in `text` of each field, at character boundaries.
    spans: Vec<(usize, usize)>,
}

impl CsvRow {
    /// The row of `fields`, whose text is in `text` at `spans`.
    pub fn new(text: String, spans: Vec<(usize, usize)>) -> CsvRow {
        CsvRow { text, spans }
    }

    /// A row of decoded `fields` (tests build rows this way).
    #[cfg(test)]
    pub fn of<S: AsRef<str>>(fields: &[S]) -> CsvRow {
        let mut row = CsvRow::default();
        for f in fields {
            let start = row.text.len();
            row.text.push_str(f.as_ref());
            row.spans.push((start, row.text.len()));
        }
        row
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
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
    /// The record's original bytes (without line terminator), for the rejects file; only the
    /// first [`PREVIEW_BYTES`] of them when `cut` is set.
    pub raw: Vec<u8>,
    /// Set when the record was longer than `max_record_bytes`: its full length in bytes (`raw`
    /// then holds only its start).
    pub cut: Option<u64>,
}

impl BadRecord {
    /// A bad record whose raw bytes are all there.
    pub fn new(pos: RowPos, reason: String, raw: Vec<u8>) -> BadRecord {
        BadRecord {
            pos,
            reason,
            raw,
            cut: None,
        }
    }

    /// A record longer than `max` bytes (`len` in all), of which `preview` is the start.
    pub fn over_long(pos: RowPos, len: u64, max: usize, preview: Vec<u8>, what: &str) -> BadRecord {
        BadRecord {
            pos,
            reason: format!(
                "{what} is {len} bytes long, more than the limit of {max} bytes \
                 (max_record_bytes in the mapping's [source]); it was not read"
            ),
            raw: preview,
            cut: Some(len),
        }
    }
}

/// What a source yields for each record.
#[derive(Debug, Clone)]
pub enum SourceItem {
    /// A readable record.
    Record(Record),
    /// An unreadable record, to be rejected.
    Bad(BadRecord),
}

/// An error that makes the whole source unusable (the run stops).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file cannot be opened or read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not a `source`: it is said once).
        cause: std::io::Error,
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
    /// A CSV file that cannot be read on from a given line (a quote never closed, longer than
    /// `max_record_bytes`).
    #[error("{path}: line {line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The physical line where the problem starts.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file is in an encoding dvload does not read (UTF-16).
    #[error("{path}: {reason}")]
    Encoding {
        /// The file.
        path: PathBuf,
        /// What the file is and what would be accepted.
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
    /// The line terminator of the file (of a CSV header line); `\n` when it has none.
    fn line_ending(&self) -> &'static [u8] {
        b"\n"
    }
    /// The row numbers that a replayed rejects file gives its records, when the source can have
    /// them (JSON Lines envelopes); a CSV rejects file has them in its `dvload_row` column.
    fn origin_rows(&self) -> Option<OriginRows> {
        None
    }
}

/// The original row numbers of the records of a replayed rejects file (the `row` of each JSON
/// Lines envelope: the record's row in the source of the first run), by this file's row number.
///
/// Shared between the reader, which notes them, and the rejects writer, which puts them back, so
/// that a row rejected again keeps its first number however late its reject comes. It holds 8
/// bytes for each row from the first envelope on (nothing for a file without envelopes).
#[derive(Debug, Clone, Default)]
pub struct OriginRows(Arc<Mutex<Vec<u64>>>);

impl OriginRows {
    /// Notes the original row of row `row` (rows are noted in increasing order; `None` for a
    /// record that has none).
    pub fn note(&self, row: u64, origin: Option<u64>) {
        let mut rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if origin.is_none() && rows.is_empty() {
            return;
        }
        let index = (row as usize).saturating_sub(1);
        if rows.len() < index {
            rows.resize(index, 0);
        }
        rows.truncate(index);
        rows.push(origin.unwrap_or(0));
    }

    /// The original row of row `row`, if it had one.
    pub fn get(&self, row: u64) -> Option<u64> {
        let rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let index = (row as usize).checked_sub(1)?;
        rows.get(index).copied().filter(|&r| r > 0)
    }
}

/// The UTF-16 encoding the start of a file shows (a UTF-16 byte-order mark, or a NUL in every
/// other byte), named for a message.
pub(crate) fn utf16_kind(start: &[u8]) -> Option<&'static str> {
    match start {
        [0xFF, 0xFE, ..] => return Some("UTF-16 (little-endian, with a byte-order mark FF FE)"),
        [0xFE, 0xFF, ..] => return Some("UTF-16 (big-endian, with a byte-order mark FE FF)"),
        _ => {}
    }
    let sample = &start[..start.len().min(256) & !1];
    if sample.len() < 4 {
        return None;
    }
    // Text in UTF-8 or windows-1252 has no NUL at all; UTF-16 has one in the high byte of
    // every ASCII character (and of most Latin letters), always on the same side of the pair.
    let pairs = sample.len() / 2;
    let nul_at = |side: usize| sample.chunks_exact(2).filter(|p| p[side] == 0).count();
    let (low, high) = (nul_at(0), nul_at(1));
    if low == 0 && high * 2 >= pairs {
        Some("UTF-16 (little-endian: every other byte is NUL)")
    } else if high == 0 && low * 2 >= pairs {
        Some("UTF-16 (big-endian: every other byte is NUL)")
    } else {
        None
    }
}

/// The message for a UTF-16 file; `csv` adds the windows-1252 alternative.
pub(crate) fn utf16_reason(kind: &str, csv: bool) -> String {
    if csv {
        format!(
            "the file is {kind}; dvload reads UTF-8 and windows-1252 only: save it as UTF-8 \
             (Excel: \"CSV UTF-8\"), or as windows-1252 and set encoding = \"windows-1252\" \
             in the mapping's [source]"
        )
    } else {
        format!("the file is {kind}; JSON is read as UTF-8 only: save it as UTF-8")
    }
}

/// Opens `path` for reading with `options`; for CSV, reads the header row.
pub fn open(path: &Path, options: &SourceOptions) -> Result<Box<dyn RecordSource>, SourceError> {
    Ok(match options.format {
        Format::Csv => Box::new(CsvSource::open(path, options)?),
        Format::Json => Box::new(JsonArraySource::open(path, options)?),
        Format::JsonLines => Box::new(JsonLinesSource::open(path, options)?),
    })
}

/// Shortens a preview of UTF-8 text that ends inside a character to the last whole one.
pub(crate) fn cut_at_char(bytes: &mut Vec<u8>) {
    if let Err(e) = std::str::from_utf8(bytes) {
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
}

/// Appends `bytes`, the next bytes of a record, to `buf`, which holds the record's first bytes
/// while it is at most `max` bytes long (`len` counts them all, kept or not). The record that
/// passes `max` keeps only its first [`PREVIEW_BYTES`] (the buffer is freed) and sets `over`;
/// that call returns true. `buf` grows as a `Vec` would, but never past `max`.
pub(crate) fn keep_capped(
    buf: &mut Vec<u8>,
    len: &mut u64,
    over: &mut bool,
    max: usize,
    bytes: &[u8],
) -> bool {
    *len += bytes.len() as u64;
    if *over {
        return false;
    }
    if *len > max as u64 {
        *over = true;
        let room = PREVIEW_BYTES.saturating_sub(buf.len()).min(bytes.len());
        buf.extend_from_slice(&bytes[..room]);
        buf.truncate(PREVIEW_BYTES);
        buf.shrink_to_fit();
        return true;
    }
    if buf.capacity() - buf.len() < bytes.len() {
        let want = (buf.capacity() * 2).max(buf.len() + bytes.len()).min(max);
        buf.reserve_exact(want - buf.len());
    }
    buf.extend_from_slice(bytes);
    false
}

/// A reader of generated bytes, for tests of inputs too big to hold.
#[cfg(test)]
pub(crate) struct Generated {
    /// Parts still to read: bytes, how many times, and how much of the current time is read.
    parts: std::collections::VecDeque<(Vec<u8>, u64, usize)>,
}

#[cfg(test)]
impl Generated {
    /// A reader of nothing yet.
    pub(crate) fn new() -> Generated {
        Generated {
            parts: Default::default(),
        }
    }

    /// Then `bytes`.
    pub(crate) fn then(self, bytes: &[u8]) -> Generated {
        self.repeat(bytes, 1)
    }

    /// Then `bytes` `times` times over.
    pub(crate) fn repeat(mut self, bytes: &[u8], times: u64) -> Generated {
        if !bytes.is_empty() && times > 0 {
            self.parts.push_back((bytes.to_vec(), times, 0));
        }
        self
    }
}

#[cfg(test)]
impl std::io::Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some((bytes, times, at)) = self.parts.front_mut() else {
                break;
            };
            let k = (bytes.len() - *at).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&bytes[*at..*at + k]);
            n += k;
            *at += k;
            if *at == bytes.len() {
                *at = 0;
                *times -= 1;
                if *times == 0 {
                    self.parts.pop_front();
                }
            }
        }
        Ok(n)
    }
}
