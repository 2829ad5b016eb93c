//! CSV reader: header row, delimiters, quotes, BOM, CRLF/LF, windows-1252; a bad row is a `BadRecord`.
//!
//! A small byte-level tokenizer (not the `csv` crate) so that every record knows its exact first
//! physical line and keeps its original bytes for the rejects file. The rules it follows:
//!
//! - Lines end with `\n`, `\r\n` or a lone `\r` (mixed endings are fine); each counts as one line.
//!   A terminator is never part of a field or of a record's raw bytes.
//! - A line with nothing but its terminator is blank: it is not a record and is not counted as a
//!   row, but it is counted as a line. A line of spaces is a record.
//! - A field that starts with the quote character is quoted: it may hold delimiters, line breaks
//!   and doubled quotes (`""` is one `"`). A quote anywhere else in an unquoted field is kept
//!   literally (`ab"c` is `ab"c`). Text after a closing quote (`"ab"c`) makes the record a
//!   `BadRecord` naming the column and line: the `csv` crate would silently read it as `abc`,
//!   which is rarely what the writer of the file meant (a quote that should have been doubled).
//! - A quote that is never closed runs to the end of the file: that last record is a `BadRecord`
//!   holding every byte from its start to the end of the file (less one final line terminator),
//!   so that nothing is lost and the rejects file can be fixed and replayed. The header row with
//!   an unterminated quote is a `SourceError::Header`.
//! - A record longer than `max_record_bytes` is a `BadRecord` holding its first `PREVIEW_BYTES`
//!   (`cut` set to its length): the rest of it is scanned (quotes and line breaks still followed,
//!   so the next record starts where it really does) but not kept. A quote never closed whose
//!   rest of the file is longer than that cannot be kept whole for the rejects file, so it is a
//!   `SourceError::Csv` (the run stops there) rather than a reject that would lose those lines.
//! - A file that starts with a UTF-16 byte-order mark, or whose first bytes have a NUL every
//!   other byte, is UTF-16: a header error that says so and what is accepted.
//! - A UTF-8 byte-order mark at the very start of the file is skipped (it is never part of the
//!   first column's name). With `encoding = windows-1252` a UTF-8 BOM is a header error: the file
//!   is UTF-8 and decoding it as windows-1252 would silently garble every accented letter.
//! - The header names the columns: names are kept as written (not trimmed) but must not be blank
//!   and must be unique (compared exactly).
//! - A record with more or fewer fields than the header is a `BadRecord`; so is a field that is
//!   not valid UTF-8 in a UTF-8 source. Windows-1252 decoding cannot fail (encoding_rs maps the
//!   five unassigned bytes to the C1 controls, as browsers do).
//!
//! The file is read through one 64 KiB buffer and each byte is copied once into the record's raw
//! bytes, once into its text; the only allocations per record are the three of the `CsvRow` it
//! yields (text, field ends, raw). The raw buffer never grows past `max_record_bytes`, nor the
//! field ends past the header's column count + 1, whatever the file holds.

use super::{
    BadRecord, CsvRow, Encoding, Record, RecordData, RecordSource, RowPos, SourceError, SourceItem,
    SourceOptions, cut_at_char, keep_capped, utf16_kind, utf16_reason,
};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Size of the read buffer.
const BUF_SIZE: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streams the records of a CSV file.
pub struct CsvSource {
    path: PathBuf,
    columns: Vec<String>,
    encoding: Encoding,
    tok: Tokenizer,
    input: Input,
    /// Data rows read so far (the ordinal of the last record yielded).
    row: u64,
    /// Set after the end of the file or a fatal error: the iterator then yields `None`.
    done: bool,
    /// Reused buffer for windows-1252 field bytes before decoding.
    scratch: Vec<u8>,
    /// The header line's terminator (`\r\n`, `\n` or `\r`; `\n` when it has none).
    eol: &'static [u8],
}

impl CsvSource {
    /// Opens the file and reads its header row.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<CsvSource, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        CsvSource::from_reader(path, Box::new(file), options)
    }

    /// Reads CSV from any reader (standard input, a decompressor); `path` names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn Read + Send>,
        options: &SourceOptions,
    ) -> Result<CsvSource, SourceError> {
        let path = path.to_path_buf();
        let (delim, quote) = (options.delimiter, options.quote);
        if delim == quote || matches!(delim, b'\r' | b'\n') || matches!(quote, b'\r' | b'\n') {
            return Err(SourceError::Records {
                path,
                reason: format!(
                    "the CSV delimiter ({}) and quote ({}) must be two different characters, \
                     neither of them a line break",
                    show_byte(delim),
                    show_byte(quote)
                ),
            });
        }
        let mut src = CsvSource {
            path,
            columns: Vec::new(),
            encoding: options.encoding,
            tok: Tokenizer::new(delim, quote, options.max_record_bytes),
            input: Input::new(reader),
            row: 0,
            done: false,
            scratch: Vec::new(),
            eol: b"\n",
        };
        src.read_header()?;
        Ok(src)
    }

    fn io_error(&self, source: io::Error) -> SourceError {
        SourceError::Io {
            path: self.path.clone(),
            cause: source,
        }
    }

    fn header_error(&self, reason: String) -> SourceError {
        SourceError::Header {
            path: self.path.clone(),
            line: self.tok.start_line,
            reason,
        }
    }

    fn read_header(&mut self) -> Result<(), SourceError> {
        let (utf16, has_bom) = match self.input.fill_start(256) {
            Ok(start) => (utf16_kind(start), start.starts_with(BOM)),
            Err(e) => return Err(self.io_error(e)),
        };
        if let Some(kind) = utf16 {
            return Err(self.header_error(utf16_reason(kind, true)));
        }
        if has_bom {
            self.input.pos += BOM.len();
        }
        let end = self
            .tok
            .read_record(&mut self.input)
            .map_err(|e| self.io_error(e))?;
        match end {
            RecordEnd::Eof => {
                return Err(SourceError::Empty {
                    path: self.path.clone(),
                });
            }
            RecordEnd::Unterminated => {
                return Err(self.header_error(format!(
                    "unterminated quoted field in the header: the quote opened on line {} is \
                     never closed",
                    self.tok.quote_line
                )));
            }
            RecordEnd::Record => {}
        }
        if self.tok.over {
            return Err(self.header_error(format!(
                "the header row is {} bytes long, more than the limit of {} bytes \
                 (max_record_bytes in the mapping's [source]); is this a CSV file?",
                self.tok.len, self.tok.max
            )));
        }
        if let Some((field, line, b)) = self.tok.stray {
            return Err(self.header_error(format!(
                "the name of column {} has text after its closing quote ({} on line {line}); \
                 a quoted name ends at its closing quote",
                field + 1,
                show_byte(b)
            )));
        }
        self.eol = match self.tok.last_end {
            b'\r' => {
                let next = if self.input.pos == self.input.len {
                    self.input.fill().map_err(|e| self.io_error(e))?
                } else {
                    true
                };
                if next && self.input.buf[self.input.pos] == b'\n' {
                    b"\r\n"
                } else {
                    b"\r"
                }
            }
            _ => b"\n",
        };
        if has_bom && self.encoding == Encoding::Windows1252 {
            return Err(self.header_error(
                "the file starts with a UTF-8 byte-order mark, so it is UTF-8, but the mapping \
                 says encoding = \"windows-1252\"; remove that line from the mapping's [source]"
                    .into(),
            ));
        }
        let mut values = Vec::new();
        let mut ends = Vec::new();
        self.tok.decode_fields(&mut values, &mut ends);
        let mut columns = Vec::with_capacity(ends.len());
        for i in 0..ends.len() {
            let bytes = &values[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
            let name = match self.encoding {
                Encoding::Utf8 => match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_owned(),
                    Err(e) => {
                        let at = e.valid_up_to();
                        return Err(self.header_error(format!(
                            "the name of column {} is not valid UTF-8 (byte {} of the name is \
                             {}); the file may be windows-1252: set encoding = \"windows-1252\" \
                             in the mapping's [source]",
                            i + 1,
                            at + 1,
                            show_byte(bytes[at])
                        )));
                    }
                },
                Encoding::Windows1252 => decode_1252(bytes).into_owned(),
            };
            columns.push(name);
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(self.header_error(format!(
                    "column {} of the header has no name; every column needs one (is there a \
                     stray delimiter at the end of the header?)",
                    i + 1
                )));
            }
            if let Some(first) = seen.insert(name.as_str(), i) {
                return Err(self.header_error(format!(
                    "column '{name}' appears twice, at positions {} and {}; column names must be \
                     unique",
                    first + 1,
                    i + 1
                )));
            }
        }
        self.columns = columns;
        // Data rows keep the ends of one field more than the header has (enough to tell a
        // ragged row); the header's own may have been many.
        self.tok.max_fields = self.columns.len() + 1;
        self.tok.ends = Vec::with_capacity(self.tok.max_fields.min(1024));
        Ok(())
    }

    /// The name of field `i` for a message: the column, or its place beyond the header.
    fn field_name(&self, i: usize) -> String {
        match self.columns.get(i) {
            Some(name) => format!("column '{name}'"),
            None => format!(
                "field {}, beyond the header's {} columns",
                i + 1,
                self.columns.len()
            ),
        }
    }

    /// Turns the tokenizer's current record into an item.
    fn make_item(&mut self, pos: RowPos) -> SourceItem {
        if self.tok.over {
            let mut preview = std::mem::take(&mut self.tok.raw);
            if self.encoding == Encoding::Utf8 {
                cut_at_char(&mut preview);
            }
            return SourceItem::Bad(BadRecord::over_long(
                pos,
                self.tok.len,
                self.tok.max,
                preview,
                "the row",
            ));
        }
        if let Some((field, line, b)) = self.tok.stray {
            return SourceItem::Bad(BadRecord::new(
                pos,
                format!(
                    "{}: text after the closing quote ({} on line {line}); a quoted field \
                     ends at its closing quote: write a quote inside it twice (\"\"), or \
                     quote the whole field",
                    self.field_name(field),
                    show_byte(b)
                ),
                self.tok.take_raw(),
            ));
        }
        let fields = self.tok.nfields;
        if fields != self.columns.len() {
            return SourceItem::Bad(BadRecord::new(
                pos,
                format!(
                    "the row has {fields} field{}, the header has {} column{}",
                    plural(fields),
                    self.columns.len(),
                    plural(self.columns.len())
                ),
                self.tok.take_raw(),
            ));
        }
        let (text, spans) = match self.encoding {
            Encoding::Utf8 if self.tok.delim.is_ascii() && self.tok.quote.is_ascii() => {
                // Fields are the raw bytes between ASCII delimiters and quotes, so when the
                // record is valid UTF-8, every field is too and begins and ends at character
                // boundaries. One check of the whole record then does.
                if self.tok.complex {
                    // Doubled quotes or text after a closing quote: the values are rebuilt.
                    if std::str::from_utf8(&self.tok.raw).is_err() {
                        return self.invalid_utf8(pos);
                    }
                    let mut values = Vec::with_capacity(self.tok.raw.len());
                    let mut ends = Vec::with_capacity(fields);
                    self.tok.decode_fields(&mut values, &mut ends);
                    return self.record(pos, values, &ends);
                }
                // A simple record: the text is the raw record, the fields spans of it.
                match String::from_utf8(self.tok.raw.clone()) {
                    Ok(text) => (text, self.tok.spans()),
                    Err(_) => return self.invalid_utf8(pos),
                }
            }
            Encoding::Utf8 => {
                let mut values = Vec::with_capacity(self.tok.raw.len());
                let mut ends = Vec::with_capacity(fields);
                self.tok.decode_fields(&mut values, &mut ends);
                return self.record(pos, values, &ends);
            }
            Encoding::Windows1252 => {
                let values = &mut self.scratch;
                values.clear();
                let mut ends = Vec::with_capacity(fields);
                self.tok.decode_fields(values, &mut ends);
                let text = if values.is_ascii() {
                    // ASCII is the same in windows-1252 and UTF-8.
                    String::from_utf8(values.clone()).unwrap_or_default()
                } else {
                    let mut text = String::with_capacity(values.len() + 16);
                    let mut start = 0;
                    for end in ends.iter_mut() {
                        text.push_str(&decode_1252(&values[start..*end]));
                        start = *end;
                        *end = text.len();
                    }
                    text
                };
                (text, contiguous_spans(&ends))
            }
        };
        SourceItem::Record(Record {
            pos,
            data: RecordData::Csv(CsvRow::new(text, spans)),
        })
    }

    /// The record whose decoded UTF-8 field values are `values`, field `i` ending at `ends[i]`;
    /// a `BadRecord` naming the column and byte when they are not valid UTF-8.
    fn record(&mut self, pos: RowPos, values: Vec<u8>, ends: &[usize]) -> SourceItem {
        match String::from_utf8(values) {
            Ok(text) => SourceItem::Record(Record {
                pos,
                data: RecordData::Csv(CsvRow::new(text, contiguous_spans(ends))),
            }),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                self.utf8_bad_record(pos, e.as_bytes(), ends, at)
            }
        }
    }

    /// The `BadRecord` of a record whose raw bytes are not valid UTF-8.
    fn invalid_utf8(&mut self, pos: RowPos) -> SourceItem {
        let mut values = Vec::with_capacity(self.tok.raw.len());
        let mut ends = Vec::with_capacity(self.tok.ends.len());
        self.tok.decode_fields(&mut values, &mut ends);
        if let Err(e) = std::str::from_utf8(&values) {
            // Named in the field values, as they would be read.
            return self.utf8_bad_record(pos, &values, &ends, e.valid_up_to());
        }
        // Each field's value is invalid alone but the values happen to join into valid text
        // (a character cut in two by a delimiter): the first invalid byte of the raw record is
        // named, in its field.
        let at = std::str::from_utf8(&self.tok.raw)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let i = self.tok.ends.partition_point(|&end| end <= at);
        let start = if i == 0 { 0 } else { self.tok.ends[i - 1] + 1 };
        let quoted = self.tok.raw.get(start) == Some(&self.tok.quote);
        let offset = at - start - usize::from(quoted);
        let byte = self.tok.raw[at];
        self.utf8_bad_field(pos, i, offset, byte)
    }

    /// The `BadRecord` for the invalid byte `values[at]` of decoded field values.
    fn utf8_bad_record(
        &mut self,
        pos: RowPos,
        values: &[u8],
        ends: &[usize],
        at: usize,
    ) -> SourceItem {
        let i = ends.partition_point(|&end| end <= at);
        let start = if i == 0 { 0 } else { ends[i - 1] };
        self.utf8_bad_field(pos, i, at - start, values[at])
    }

    /// The `BadRecord` for byte `offset` (0-based), `byte`, of field `i`, which is not UTF-8.
    fn utf8_bad_field(&mut self, pos: RowPos, i: usize, offset: usize, byte: u8) -> SourceItem {
        SourceItem::Bad(BadRecord::new(
            pos,
            format!(
                "column '{}': not valid UTF-8 (byte {} of the field is {}); the file may be \
                 windows-1252: set encoding = \"windows-1252\" in the mapping's [source]",
                self.columns[i],
                offset + 1,
                show_byte(byte)
            ),
            self.tok.take_raw(),
        ))
    }

    /// The unterminated quote's record, with all it swallowed; an error when that is more than
    /// `max_record_bytes` (the rejects file could not hold it, and those lines would be lost).
    fn unterminated(&mut self, pos: RowPos) -> Result<SourceItem, SourceError> {
        let column = self.field_name(self.tok.nfields);
        if self.tok.over {
            return Err(SourceError::Csv {
                path: self.path.clone(),
                line: self.tok.quote_line,
                reason: format!(
                    "unterminated quoted field: the quote opened on line {} ({column}) is never \
                     closed, so the rest of the file ({} bytes from line {}) would be one row, \
                     more than the limit of {} bytes (max_record_bytes in the mapping's \
                     [source]); nothing after line {} was read. Close the quote (a quote inside \
                     a quoted field is written twice: \"\") and run again",
                    self.tok.quote_line,
                    self.tok.len,
                    pos.line,
                    self.tok.max,
                    pos.line.saturating_sub(1)
                ),
            });
        }
        let tok = &mut self.tok;
        // The file's final line terminator ends the record, as it would any other.
        let mut last_line = tok.line;
        if tok.raw.ends_with(b"\r\n") {
            tok.raw.truncate(tok.raw.len() - 2);
            last_line -= 1;
        } else if tok.raw.ends_with(b"\n") || tok.raw.ends_with(b"\r") {
            tok.raw.pop();
            last_line -= 1;
        }
        let lines = last_line + 1 - tok.quote_line;
        Ok(SourceItem::Bad(BadRecord::new(
            pos,
            format!(
                "unterminated quoted field: the quote opened on line {} ({column}) is \
                 never closed; the rest of the file (lines {} to {last_line}, {lines} line{}) \
                 was read into it",
                tok.quote_line,
                tok.quote_line,
                plural(lines as usize)
            ),
            std::mem::take(&mut tok.raw),
        )))
    }
}

impl Iterator for CsvSource {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let end = match self.tok.read_record(&mut self.input) {
            Ok(end) => end,
            Err(e) => {
                self.done = true;
                return Some(Err(self.io_error(e)));
            }
        };
        if end == RecordEnd::Eof {
            self.done = true;
            return None;
        }
        self.row += 1;
        let pos = RowPos {
            row: self.row,
            line: self.tok.start_line,
        };
        match end {
            RecordEnd::Unterminated => {
                self.done = true;
                Some(self.unterminated(pos))
            }
            _ => Some(Ok(self.make_item(pos))),
        }
    }
}

impl RecordSource for CsvSource {
    fn columns(&self) -> Option<&[String]> {
        Some(&self.columns)
    }
    fn line_ending(&self) -> &'static [u8] {
        self.eol
    }
}

/// The spans of fields stored one after the other, field `i` ending at `ends[i]`.
fn contiguous_spans(ends: &[usize]) -> Vec<(usize, usize)> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let span = (start, end);
            start = end;
            span
        })
        .collect()
}

fn decode_1252(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    encoding_rs::WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A byte as a reader would like to see it in a message.
fn show_byte(b: u8) -> String {
    match b {
        b'\t' => "tab".into(),
        b'\r' => "'\\r'".into(),
        b'\n' => "'\\n'".into(),
        0x21..=0x7E => format!("'{}'", b as char),
        _ => format!("0x{b:02X}"),
    }
}

/// The file, read through one reusable buffer.
struct Input {
    reader: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl Input {
    fn new(reader: Box<dyn Read + Send>) -> Input {
        Input {
            reader,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// Refills the (fully consumed) buffer; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        debug_assert_eq!(self.pos, self.len);
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The first `n` bytes of the file (fewer if it is shorter), read into the buffer (used
    /// once, at the start, for the BOM and the UTF-16 check).
    fn fill_start(&mut self, n: usize) -> io::Result<&[u8]> {
        debug_assert_eq!(self.pos, 0);
        // Enough for a byte-order mark and a UTF-16 pattern; more only if one read gives it.
        while self.len < n.min(4) {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => break,
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[..self.len])
    }
}

/// How a record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordEnd {
    /// A complete record (ended by a line terminator or the end of the file).
    Record,
    /// A quoted field was still open at the end of the file.
    Unterminated,
    /// No record: the end of the file (possibly after blank lines).
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte of a record (blank lines are skipped here).
    RecordStart,
    /// Before the first byte of a field.
    FieldStart,
    /// In a field that did not start with a quote.
    Unquoted,
    /// Inside quotes.
    Quoted,
    /// Just after a quote inside a quoted field: a closing quote, or the first of a doubled one.
    QuoteInQuoted,
}

/// The byte-level CSV state machine and its reusable scratch buffers.
///
/// It only finds where records and fields end; the fields' values are cut out of the raw bytes
/// afterwards (`decode_fields`), so that the hot loop copies each byte once, in bulk.
struct Tokenizer {
    delim: u8,
    quote: u8,
    /// The current physical line (1-based).
    line: u64,
    /// The last byte consumed was a `\r` (so a following `\n` does not start another line).
    after_cr: bool,
    /// The line on which the current record starts.
    start_line: u64,
    /// The line on which the last quoted field opened.
    quote_line: u64,
    /// The current record's bytes as in the file, without its terminator. Handed over to the
    /// `CsvRow` (and replaced by an empty buffer of the same capacity). Never more than `max`
    /// bytes: past that, only the first `PREVIEW_BYTES` are kept.
    raw: Vec<u8>,
    /// End offset in `raw` of each field (the next field starts one byte, the delimiter, later);
    /// at most `max_fields` of them, none once the record is over `max`.
    ends: Vec<usize>,
    /// The number of fields the current record has ended so far.
    nfields: usize,
    /// How many field ends are kept.
    max_fields: usize,
    /// The current record's length in bytes, kept or not.
    len: u64,
    /// The longest record kept, in bytes.
    max: usize,
    /// The current record is longer than `max`.
    over: bool,
    /// The first text after a closing quote in the current record: field index, line, byte.
    stray: Option<(usize, u64, u8)>,
    /// The terminator that ended the last record (`\r` or `\n`), 0 when the file ended it.
    last_end: u8,
    /// The current record has a doubled quote or text after a closing quote, so its quoted
    /// fields need unescaping (not just their outer quotes removed).
    complex: bool,
    /// The largest capacity `raw` has had (to check that it stays within `max`).
    #[cfg(test)]
    peak: usize,
}

impl Tokenizer {
    fn new(delim: u8, quote: u8, max: usize) -> Tokenizer {
        Tokenizer {
            delim,
            quote,
            line: 1,
            after_cr: false,
            start_line: 1,
            quote_line: 0,
            raw: Vec::with_capacity(256),
            ends: Vec::with_capacity(32),
            nfields: 0,
            max_fields: usize::MAX,
            len: 0,
            max,
            over: false,
            stray: None,
            last_end: 0,
            complex: false,
            #[cfg(test)]
            peak: 0,
        }
    }

    /// Appends bytes of the current record to `raw`, up to `max` in all; past that, keeps the
    /// first `PREVIEW_BYTES` only (and no field ends) and counts the rest.
    fn keep(&mut self, bytes: &[u8]) {
        if keep_capped(
            &mut self.raw,
            &mut self.len,
            &mut self.over,
            self.max,
            bytes,
        ) {
            self.ends.clear();
        }
        #[cfg(test)]
        {
            self.peak = self.peak.max(self.raw.capacity());
        }
    }

    /// Ends a field at `raw` offset `at`.
    fn end_field(&mut self, at: usize) {
        self.nfields += 1;
        if !self.over && self.ends.len() < self.max_fields {
            self.ends.push(at);
        }
    }

    /// Takes the current record's raw bytes, leaving a buffer of the same capacity for the next.
    fn take_raw(&mut self) -> Vec<u8> {
        let capacity = self.raw.len().max(64);
        std::mem::replace(&mut self.raw, Vec::with_capacity(capacity))
    }

    /// The span in `raw` of each field's value, for a record without doubled quotes or text
    /// after a closing quote (so a quoted field's value is what is inside its quotes).
    fn spans(&self) -> Vec<(usize, usize)> {
        debug_assert!(!self.complex);
        let mut spans = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            if self.raw.get(start) == Some(&self.quote) {
                spans.push((start + 1, end - 1));
            } else {
                spans.push((start, end));
            }
            start = end + 1;
        }
        spans
    }

    /// Appends the values of the current record's fields to `out` (quotes removed, doubled
    /// quotes undoubled), pushing the end offset in `out` of each to `out_ends`.
    fn decode_fields(&self, out: &mut Vec<u8>, out_ends: &mut Vec<usize>) {
        let mut start = 0;
        for &end in &self.ends {
            let f = &self.raw[start..end];
            if f.first() == Some(&self.quote) {
                if self.complex {
                    unquote(f, self.quote, out);
                } else {
                    // A simple quoted field: `"value"`.
                    out.extend_from_slice(&f[1..f.len() - 1]);
                }
            } else {
                out.extend_from_slice(f);
            }
            out_ends.push(out.len());
            start = end + 1;
        }
    }

    /// Reads the next record into `raw` and `ends`, skipping blank lines before it.
    fn read_record(&mut self, input: &mut Input) -> io::Result<RecordEnd> {
        self.raw.clear();
        self.ends.clear();
        self.nfields = 0;
        self.len = 0;
        self.over = false;
        self.stray = None;
        self.last_end = 0;
        self.complex = false;
        let mut state = State::RecordStart;
        loop {
            if input.pos == input.len && !input.fill()? {
                return Ok(match state {
                    State::RecordStart => RecordEnd::Eof,
                    State::Quoted => RecordEnd::Unterminated,
                    State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
                        self.end_field(self.raw.len());
                        RecordEnd::Record
                    }
                });
            }
            let buf = &input.buf[..input.len];
            let n = buf.len();
            let mut i = input.pos;
            if state == State::RecordStart {
                // Skip blank lines (and the `\n` of the previous record's `\r\n`).
                while i < n {
                    match buf[i] {
                        b'\n' => {
                            if !self.after_cr {
                                self.line += 1;
                            }
                            self.after_cr = false;
                        }
                        b'\r' => {
                            self.line += 1;
                            self.after_cr = true;
                        }
                        _ => break,
                    }
                    i += 1;
                }
                if i == n {
                    input.pos = n;
                    continue;
                }
                self.after_cr = false;
                self.start_line = self.line;
                state = State::FieldStart;
            }
            // Bytes `buf[start..]` belong to the record; `buf[i]` is at `raw` offset `base + i`.
            let start = i;
            let base = self.raw.len().wrapping_sub(start);
            while i < n {
                match state {
                    State::FieldStart => {
                        if buf[i] == self.quote {
                            self.quote_line = self.line;
                            state = State::Quoted;
                            i += 1;
                        } else {
                            state = State::Unquoted;
                        }
                    }
                    State::Unquoted => {
                        i = find_stop(buf, i, self.delim);
                        if i == n {
                            break;
                        }
                        let b = buf[i];
                        self.end_field(base.wrapping_add(i));
                        if b == self.delim {
                            state = State::FieldStart;
                            i += 1;
                        } else {
                            // `\r` or `\n`: the end of the record. (A `\n` here never follows
                            // a `\r`: that would have ended the record already.)
                            return Ok(self.end_record(input, start, i));
                        }
                    }
                    State::Quoted => {
                        let run = i;
                        i = find_stop(buf, i, self.quote);
                        if i > run {
                            self.after_cr = false;
                        }
                        if i == n {
                            break;
                        }
                        match buf[i] {
                            b'\r' => {
                                // A line break inside quotes is part of the field.
                                self.line += 1;
                                self.after_cr = true;
                            }
                            b'\n' => {
                                if !self.after_cr {
                                    self.line += 1;
                                }
                                self.after_cr = false;
                            }
                            _ => {
                                self.after_cr = false;
                                state = State::QuoteInQuoted;
                            }
                        }
                        i += 1;
                    }
                    State::QuoteInQuoted => {
                        let b = buf[i];
                        if b == self.quote {
                            // A doubled quote: one literal quote.
                            self.complex = true;
                            state = State::Quoted;
                            i += 1;
                        } else if b == self.delim {
                            self.end_field(base.wrapping_add(i));
                            state = State::FieldStart;
                            i += 1;
                        } else if b == b'\r' || b == b'\n' {
                            self.end_field(base.wrapping_add(i));
                            return Ok(self.end_record(input, start, i));
                        } else {
                            // Text after the closing quote: the record is bad. The field goes
                            // on as an unquoted one, so that the record ends where it would.
                            if self.stray.is_none() {
                                self.stray = Some((self.nfields, self.line, b));
                            }
                            self.complex = true;
                            state = State::Unquoted;
                        }
                    }
                    State::RecordStart => unreachable!("handled before the loop"),
                }
            }
            // The buffer ends inside the record: keep its part and read on.
            self.keep(&buf[start..]);
            input.pos = n;
        }
    }

    /// Ends the record at the line terminator `input.buf[end]`.
    fn end_record(&mut self, input: &mut Input, start: usize, end: usize) -> RecordEnd {
        let b = input.buf[end];
        self.keep(&input.buf[start..end]);
        self.line += 1;
        self.after_cr = b == b'\r';
        self.last_end = b;
        input.pos = end + 1;
        RecordEnd::Record
    }
}

/// The index of the first byte of `buf` at or after `i` that is `stop`, `\r` or `\n`;
/// `buf.len()` when there is none. Eight bytes at a time: this scans every byte of the file.
#[inline]
fn find_stop(buf: &[u8], mut i: usize, stop: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let stops = ONES * u64::from(stop);
    let is_stop = |b: u8| b == stop || b == b'\r' || b == b'\n';
    loop {
        while let Some(word) = buf.get(i..i + 8) {
            let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            // The high bit of each byte equal to `stop`, and of each byte below 0x0E (`\r`,
            // `\n` and a few other control characters). Borrows can flag a byte above a
            // flagged one, never below: the lowest flag is exact.
            let y = x ^ stops;
            let found = (y.wrapping_sub(ONES) & !y | x.wrapping_sub(ONES * 0x0E) & !x) & HIGHS;
            if found != 0 {
                i += (found.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while i < buf.len() && !is_stop(buf[i]) {
            if buf[i] < 0x0E && i + 8 <= buf.len() {
                // A control character that does not stop the run: on with the words.
                break;
            }
            i += 1;
        }
        if i >= buf.len() || is_stop(buf[i]) {
            return i;
        }
        i += 1;
    }
}

/// Appends the value of the quoted field `f` (its raw bytes, starting with the quote).
fn unquote(f: &[u8], quote: u8, out: &mut Vec<u8>) {
    let mut rest = &f[1..];
    while let Some(i) = rest.iter().position(|&b| b == quote) {
        out.extend_from_slice(&rest[..i]);
        if rest.get(i + 1) == Some(&quote) {
            // A doubled quote is one quote.
            out.push(quote);
            rest = &rest[i + 2..];
        } else {
            // The closing quote; whatever follows it is kept literally.
            out.extend_from_slice(&rest[i + 1..]);
            return;
        }
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::super::PREVIEW_BYTES;
    use super::*;
    use std::io::Write;

    proptest::proptest! {
        #[test]
        fn word_scan_finds_the_first_stop_byte(
            buf in proptest::collection::vec(proptest::sample::select(vec![b'a', b',', b'\r', b'\n', b'"', b'-', 0x0C, 0x0E, 0x8D, 0x80, 0xFF, 0x00, 0x01, b'\t']), 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(buf.len());
            let naive = buf[from..]
                .iter()
                .position(|&b| b == b',' || b == b'\r' || b == b'\n')
                .map_or(buf.len(), |p| from + p);
            proptest::prop_assert_eq!(find_stop(&buf, from, b','), naive);
        }
    }

    #[test]
    fn a_character_cut_in_two_by_a_delimiter_is_bad_not_a_panic() {
        let f = write_file(b"a,b,c\nx\xC3,\xA9y,z\n\"\xC3\",\"\xA9\"\"\",3\n2,ok,\xC3\xA9\n");
        let src = CsvSource::open(f.path(), &opts()).unwrap();
        let items: Vec<SourceItem> = src.map(Result::unwrap).collect();
        match &items[0] {
            SourceItem::Bad(b) => {
                assert!(
                    b.reason
                        .starts_with("column 'a': not valid UTF-8 (byte 2 of the field is 0xC3)"),
                    "{}",
                    b.reason
                );
                assert_eq!(b.raw, b"x\xC3,\xA9y,z");
            }
            other => panic!("{other:?}"),
        }
        match &items[1] {
            SourceItem::Bad(b) => assert!(
                b.reason
                    .starts_with("column 'a': not valid UTF-8 (byte 1 of the field is 0xC3)"),
                "{}",
                b.reason
            ),
            other => panic!("{other:?}"),
        }
        match &items[2] {
            SourceItem::Record(r) => match &r.data {
                RecordData::Csv(row) => {
                    assert_eq!(row.iter().collect::<Vec<_>>(), ["2", "ok", "é"]);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    fn write_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn opts() -> SourceOptions {
        SourceOptions::default()
    }

    fn open_with(bytes: &[u8], options: &SourceOptions) -> Result<CsvSource, SourceError> {
        let f = write_file(bytes);
        // The file stays open (on Unix, deleting it does not matter to an open handle).
        CsvSource::open(f.path(), options)
    }

    fn read_all(bytes: &[u8], options: &SourceOptions) -> (Vec<String>, Vec<SourceItem>) {
        let src = open_with(bytes, options).unwrap();
        let columns = src.columns().unwrap().to_vec();
        let items = src.map(|r| r.unwrap()).collect();
        (columns, items)
    }

    fn record(item: &SourceItem) -> (RowPos, Vec<String>) {
        match item {
            SourceItem::Record(Record {
                pos,
                data: RecordData::Csv(row),
            }) => (*pos, row.iter().map(str::to_owned).collect()),
            other => panic!("expected a CSV record, got {other:?}"),
        }
    }

    fn bad(item: &SourceItem) -> &BadRecord {
        match item {
            SourceItem::Bad(b) => b,
            other => panic!("expected a bad record, got {other:?}"),
        }
    }

    fn pos(row: u64, line: u64) -> RowPos {
        RowPos { row, line }
    }

    /// Fields of every item, which must all be records.
    fn rows(bytes: &[u8], options: &SourceOptions) -> Vec<Vec<String>> {
        read_all(bytes, options)
            .1
            .iter()
            .map(|i| record(i).1)
            .collect()
    }

    fn header_err(bytes: &[u8], options: &SourceOptions) -> (u64, String) {
        match open_with(bytes, options) {
            Err(SourceError::Header { line, reason, .. }) => (line, reason),
            Err(other) => panic!("expected a header error, got {other}"),
            Ok(_) => panic!("expected a header error, got a source"),
        }
    }

    #[test]
    fn reads_header_and_rows_with_positions_and_raw() {
        let (cols, items) = read_all(b"Name,Email\nAda,ada@x.org\nBob,bob@x.org\n", &opts());
        assert_eq!(cols, ["Name", "Email"]);
        assert_eq!(items.len(), 2);
        assert_eq!(
            record(&items[0]),
            (pos(1, 2), vec!["Ada".into(), "ada@x.org".into()])
        );
        assert_eq!(
            record(&items[1]),
            (pos(2, 3), vec!["Bob".into(), "bob@x.org".into()])
        );
    }

    #[test]
    fn last_record_without_terminator() {
        let (_, items) = read_all(b"a,b\n1,2", &opts());
        assert_eq!(record(&items[0]), (pos(1, 2), vec!["1".into(), "2".into()]));
    }

    #[test]
    fn bom_is_removed_from_first_column_name() {
        let (cols, items) = read_all(b"\xEF\xBB\xBFId,Name\r\n1,x\r\n", &opts());
        assert_eq!(cols, ["Id", "Name"]);
        assert_eq!(record(&items[0]).0, pos(1, 2));
        // A quoted first name after the BOM is still a quoted field.
        let (cols, _) = read_all(b"\xEF\xBB\xBF\"Id\",Name\n", &opts());
        assert_eq!(cols, ["Id", "Name"]);
    }

    #[test]
    fn bom_with_windows_1252_is_a_header_error() {
        let options = SourceOptions {
            encoding: Encoding::Windows1252,
            ..opts()
        };
        let (line, reason) = header_err(b"\xEF\xBB\xBFId\n1\n", &options);
        assert_eq!(line, 1);
        assert!(
            reason.contains("UTF-8 byte-order mark") && reason.contains("windows-1252"),
            "{reason}"
        );
    }

    #[test]
    fn empty_files_have_no_header() {
        for bytes in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"\n\n",
            b"\r\n\r\n",
            b"\xEF\xBB\xBF\r\n",
        ] {
            match open_with(bytes, &opts()) {
                Err(SourceError::Empty { .. }) => {}
                Err(other) => panic!("{bytes:?}: expected Empty, got {other}"),
                Ok(_) => panic!("{bytes:?}: expected Empty, got a source"),
            }
        }
        let err = open_with(b"", &opts()).err().unwrap().to_string();
        assert!(
            err.ends_with("the file is empty; a CSV source needs a header row naming its columns"),
            "{err}"
        );
    }

    #[test]
    fn header_after_blank_lines_has_its_own_line() {
        let (cols, items) = read_all(b"\n\r\nA,B\n1,2\n", &opts());
        assert_eq!(cols, ["A", "B"]);
        assert_eq!(record(&items[0]).0, pos(1, 4));
        let (line, _) = header_err(b"\n\nA,A\n", &opts());
        assert_eq!(line, 3);
    }

    #[test]
    fn header_only_file_has_no_rows() {
        let (cols, items) = read_all(b"A,B\r\n", &opts());
        assert_eq!(cols, ["A", "B"]);
        assert!(items.is_empty());
    }

    #[test]
    fn duplicate_column_names_are_a_header_error() {
        let (line, reason) = header_err(b"Id,Name,Email,a,b,c,Email\n", &opts());
        assert_eq!(line, 1);
        assert_eq!(
            reason,
            "column 'Email' appears twice, at positions 3 and 7; column names must be unique"
        );
    }

    #[test]
    fn empty_column_name_is_a_header_error() {
        let (line, reason) = header_err(b"Id,Name,\n", &opts());
        assert_eq!(line, 1);
        assert_eq!(
            reason,
            "column 3 of the header has no name; every column needs one (is there a stray \
             delimiter at the end of the header?)"
        );
        let (_, reason) = header_err(b"Id,  ,Name\n", &opts());
        assert!(
            reason.starts_with("column 2 of the header has no name"),
            "{reason}"
        );
        let (_, reason) = header_err(b"\"\",Name\n", &opts());
        assert!(
            reason.starts_with("column 1 of the header has no name"),
            "{reason}"
        );
    }

    #[test]
    fn invalid_utf8_in_header_is_a_header_error() {
        let (line, reason) = header_err(b"Id,Pr\xE9nom\n", &opts());
        assert_eq!(line, 1);
        assert_eq!(
            reason,
            "the name of column 2 is not valid UTF-8 (byte 3 of the name is 0xE9); the file may \
             be windows-1252: set encoding = \"windows-1252\" in the mapping's [source]"
        );
    }

    #[test]
    fn unterminated_quote_in_header_is_a_header_error() {
        let (line, reason) = header_err(b"Id,\"Name\nx,y\n", &opts());
        assert_eq!(line, 1);
        assert_eq!(
            reason,
            "unterminated quoted field in the header: the quote opened on line 1 is never closed"
        );
    }

    #[test]
    fn ragged_rows_are_bad_and_reading_continues() {
        let data = b"a,b,c,d,e\n1,2,3,4,5\n\n1,2,3,4\n1,2,3,4,5,6\n1,2,3,4,5\n";
        let (_, items) = read_all(data, &opts());
        assert_eq!(items.len(), 4);
        assert_eq!(record(&items[0]).0, pos(1, 2));
        let b = bad(&items[1]);
        assert_eq!(b.pos, pos(2, 4));
        assert_eq!(b.reason, "the row has 4 fields, the header has 5 columns");
        assert_eq!(b.raw, b"1,2,3,4");
        let b = bad(&items[2]);
        assert_eq!(b.pos, pos(3, 5));
        assert_eq!(b.reason, "the row has 6 fields, the header has 5 columns");
        assert_eq!(b.raw, b"1,2,3,4,5,6");
        assert_eq!(record(&items[3]).0, pos(4, 6));
    }

    #[test]
    fn one_field_row_against_one_column_header() {
        let (_, items) = read_all(b"a,b\nx\n", &opts());
        assert_eq!(
            bad(&items[0]).reason,
            "the row has 1 field, the header has 2 columns"
        );
        // A line of spaces is a record, not a blank line.
        let (_, items) = read_all(b"a\n  \n\"\"\n", &opts());
        assert_eq!(record(&items[0]), (pos(1, 2), vec!["  ".into()]));
        assert_eq!(record(&items[1]), (pos(2, 3), vec!["".into()]));
    }

    #[test]
    fn invalid_utf8_is_bad_naming_column_and_byte() {
        let data = b"Id,Name,City\n1,Ren\xE9,Paris\n2,Ok,\"Z\xFCrich\"\n3,Fine,Rome\n";
        let (_, items) = read_all(data, &opts());
        assert_eq!(items.len(), 3);
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 2));
        assert_eq!(
            b.reason,
            "column 'Name': not valid UTF-8 (byte 4 of the field is 0xE9); the \
             file may be windows-1252: set encoding = \"windows-1252\" in the mapping's [source]"
        );
        assert_eq!(b.raw, b"1,Ren\xE9,Paris");
        let b = bad(&items[1]);
        assert!(
            b.reason
                .starts_with("column 'City': not valid UTF-8 (byte 2 of the field is 0xFC)"),
            "{}",
            b.reason
        );
        assert_eq!(b.raw, b"2,Ok,\"Z\xFCrich\"");
        assert_eq!(record(&items[2]).1, ["3", "Fine", "Rome"]);
    }

    #[test]
    fn windows_1252_is_decoded() {
        let options = SourceOptions {
            encoding: Encoding::Windows1252,
            ..opts()
        };
        let data = b"Pr\xE9nom,Prix\nRen\xE9e,\x80 5\nplain,\"a\x93b\x94\"\n";
        let (cols, items) = read_all(data, &options);
        assert_eq!(cols, ["Prénom", "Prix"]);
        assert_eq!(
            record(&items[0]),
            (pos(1, 2), vec!["Renée".into(), "€ 5".into()])
        );
        assert_eq!(record(&items[1]).1, ["plain", "a\u{201C}b\u{201D}"]);
        // Field boundaries stay right when decoding changes lengths.
        let (_, items) = read_all(b"a,b,c\n\xE9,\x80\x80,x\n", &options);
        assert_eq!(record(&items[0]).1, ["é", "€€", "x"]);
    }

    #[test]
    fn crlf_lf_and_mixed_line_endings() {
        let expected = vec![
            vec!["1".to_string(), "x".into()],
            vec!["2".into(), "y".into()],
        ];
        for data in [
            &b"a,b\n1,x\n2,y\n"[..],
            b"a,b\r\n1,x\r\n2,y\r\n",
            b"a,b\r\n1,x\n2,y\r\n",
            b"a,b\r1,x\r2,y\r",
            b"a,b\r\n1,x\r\n2,y",
        ] {
            let (cols, items) = read_all(data, &opts());
            assert_eq!(cols, ["a", "b"], "{data:?}");
            let got: Vec<_> = items.iter().map(record).collect();
            assert_eq!(got.len(), 2, "{data:?}");
            assert_eq!(got[0].0, pos(1, 2), "{data:?}");
            assert_eq!(got[1].0, pos(2, 3), "{data:?}");
            assert_eq!(
                vec![got[0].1.clone(), got[1].1.clone()],
                expected,
                "{data:?}"
            );
        }
        // A quoted last field before CRLF keeps no `\r` either.
        let (_, items) = read_all(b"a,b\r\n1,\"x\"\r\n", &opts());
        assert_eq!(record(&items[0]).1, ["1", "x"]);
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let (_, items) = read_all(b"a\r\n\r\n1\n\n\n2\r\r\n3\n", &opts());
        let got: Vec<_> = items.iter().map(record).collect();
        assert_eq!(got[0].0, pos(1, 3));
        assert_eq!(got[1].0, pos(2, 6));
        assert_eq!(got[2].0, pos(3, 8));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn quoted_fields_with_newlines_delimiters_and_quotes() {
        let data = b"id,text,n\n1,\"a,b\",x\n2,\"line1\nline2\r\nline3\",y\n3,\"say \"\"hi\"\"\",z\n4,\"\",\"\"\"\"\n";
        let (_, items) = read_all(data, &opts());
        let got: Vec<_> = items.iter().map(record).collect();
        assert_eq!(
            got[0],
            (pos(1, 2), vec!["1".into(), "a,b".into(), "x".into()])
        );
        assert_eq!(got[1].0, pos(2, 3));
        assert_eq!(got[1].1, ["2", "line1\nline2\r\nline3", "y"]);
        // The record after a multi-line one starts on the right line.
        assert_eq!(got[2].0, pos(3, 6));
        assert_eq!(got[2].1, ["3", "say \"hi\"", "z"]);
        assert_eq!(got[3].0, pos(4, 7));
        assert_eq!(got[3].1, ["4", "", "\""]);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_kept_literally() {
        let data = b"a,b\nab\"c,x\n \"q\",z\n";
        assert_eq!(rows(data, &opts()), [["ab\"c", "x"], [" \"q\"", "z"]]);
    }

    #[test]
    fn text_after_a_closing_quote_rejects_the_row_naming_column_and_line() {
        let data = b"a,b\n1,\"B\"x\n\"ab\"c\"d\",w\n2,\"multi\nline\" \n3,ok\n";
        let (_, items) = read_all(data, &opts());
        assert_eq!(items.len(), 4);
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 2));
        assert_eq!(
            b.reason,
            "column 'b': text after the closing quote ('x' on line 2); a quoted field ends at \
             its closing quote: write a quote inside it twice (\"\"), or quote the whole field"
        );
        assert_eq!(b.raw, b"1,\"B\"x");
        let b = bad(&items[1]);
        assert!(
            b.reason
                .starts_with("column 'a': text after the closing quote ('c' on line 3)")
        );
        // The line is the one the stray text is on, in a multi-line field.
        let b = bad(&items[2]);
        assert_eq!(b.pos, pos(3, 4));
        assert!(
            b.reason
                .starts_with("column 'b': text after the closing quote (0x20 on line 5)"),
            "{}",
            b.reason
        );
        assert_eq!(b.raw, b"2,\"multi\nline\" ");
        // Reading goes on.
        assert_eq!(
            record(&items[3]),
            (pos(4, 6), vec!["3".into(), "ok".into()])
        );
        // In the header, it is a header error.
        let (line, reason) = header_err(b"\"a\"x,b\n", &opts());
        assert_eq!(line, 1);
        assert!(reason.starts_with("the name of column 1 has text after its closing quote"));
    }

    #[test]
    fn empty_fields() {
        assert_eq!(
            rows(b"a,b,c\n,,\n\"\",,\"\"\n", &opts()),
            [["", "", ""], ["", "", ""]]
        );
    }

    #[test]
    fn unterminated_quote_swallows_the_rest_of_the_file() {
        let data = b"id,name,note\n1,ok,fine\n2,\"Bob\n3,x,y\n4,z,w\n";
        let (_, items) = read_all(data, &opts());
        assert_eq!(items.len(), 2);
        assert_eq!(record(&items[0]).0, pos(1, 2));
        let b = bad(&items[1]);
        assert_eq!(b.pos, pos(2, 3));
        assert_eq!(
            b.reason,
            "unterminated quoted field: the quote opened on line 3 (column \
             'name') is never closed; the rest of the file (lines 3 to 5, 3 lines) was read \
             into it"
        );
        assert_eq!(b.raw, b"2,\"Bob\n3,x,y\n4,z,w");
    }

    #[test]
    fn unterminated_quote_without_final_newline_and_beyond_header() {
        let (_, items) = read_all(b"a\r\n1,\"x\r\ny", &opts());
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 2));
        assert_eq!(
            b.reason,
            "unterminated quoted field: the quote opened on line 2 (field 2, \
             beyond the header's 1 columns) is never closed; the rest of the file (lines 2 to \
             3, 2 lines) was read into it"
        );
        assert_eq!(b.raw, b"1,\"x\r\ny");
        // A quote closed and reopened on a later line of a record.
        let (_, items) = read_all(b"a,b\n\"x\ny\",\"z\n", &opts());
        let b = bad(&items[0]);
        assert!(
            b.reason.contains("the quote opened on line 3 (column 'b')")
                && b.reason.contains("(lines 3 to 3, 1 line)"),
            "{}",
            b.reason
        );
        assert_eq!(b.raw, b"\"x\ny\",\"z");
    }

    #[test]
    fn other_delimiters() {
        for (d, data) in [
            (b';', &b"a;b\n1,5;\"x;y\"\n"[..]),
            (b'\t', b"a\tb\n1,5\t\"x\ty\"\n"),
            (b'|', b"a|b\n1,5|\"x|y\"\n"),
        ] {
            let options = SourceOptions {
                delimiter: d,
                ..opts()
            };
            let (cols, items) = read_all(data, &options);
            assert_eq!(cols, ["a", "b"]);
            assert_eq!(record(&items[0]).1, ["1,5", &format!("x{}y", d as char)]);
        }
    }

    #[test]
    fn custom_quote_character() {
        let options = SourceOptions {
            quote: b'\'',
            ..opts()
        };
        assert_eq!(
            rows(b"a,b\n'x,y','it''s'\n\"q\",z\n", &options),
            [["x,y", "it's"], ["\"q\"", "z"]]
        );
    }

    #[test]
    fn delimiter_equal_to_quote_is_refused() {
        let options = SourceOptions {
            delimiter: b'"',
            ..opts()
        };
        match open_with(b"a\n", &options) {
            Err(SourceError::Records { reason, .. }) => {
                assert!(reason.contains("must be two different"))
            }
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn long_records_cross_buffer_boundaries() {
        // Records and quoted fields spanning several 64 KiB buffers, CRLF split across buffers.
        let long = "x".repeat(BUF_SIZE + 17);
        let quoted = format!("\"{}\r\n{}\"", "q".repeat(BUF_SIZE - 3), "r".repeat(10));
        let mut data = String::from("a,b\r\n");
        for i in 0..50 {
            data.push_str(&format!("{i},{long}\r\n{i},{quoted}\r\n"));
        }
        let (_, items) = read_all(data.as_bytes(), &opts());
        assert_eq!(items.len(), 100);
        for (k, item) in items.iter().enumerate() {
            let (p, fields) = record(item);
            let i = k / 2;
            let line = 2 + (k as u64 / 2) * 3 + (k as u64 % 2);
            assert_eq!(p, pos(k as u64 + 1, line));
            assert_eq!(fields[0], i.to_string());
            if k % 2 == 0 {
                assert_eq!(fields[1], long);
            } else {
                assert_eq!(
                    fields[1],
                    format!("{}\r\n{}", "q".repeat(BUF_SIZE - 3), "r".repeat(10))
                );
            }
        }
    }

    #[test]
    fn crlf_split_across_reads() {
        // A reader that hands out one byte at a time exercises every buffer boundary.
        struct OneByte(Vec<u8>, usize);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 == self.0.len() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let data = b"\xEF\xBB\xBFa,b\r\n\r\n1,\"x\r\ny\"\r\n2,\"\"\"\"\r\n3,z";
        let src = CsvSource::from_reader(
            Path::new("mem.csv"),
            Box::new(OneByte(data.to_vec(), 0)),
            &opts(),
        )
        .unwrap();
        assert_eq!(src.columns().unwrap(), ["a", "b"]);
        let got: Vec<_> = src.map(|i| record(&i.unwrap())).collect();
        assert_eq!(got[0], (pos(1, 3), vec!["1".into(), "x\r\ny".into()]));
        assert_eq!(got[1].0, pos(2, 5));
        assert_eq!(got[1].1, ["2", "\""]);
        assert_eq!(got[2], (pos(3, 6), vec!["3".into(), "z".into()]));
    }

    #[test]
    fn read_error_stops_the_source() {
        struct Failing(Option<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.take() {
                    Some(data) => {
                        buf[..data.len()].copy_from_slice(&data);
                        Ok(data.len())
                    }
                    None => Err(io::Error::other("disk on fire")),
                }
            }
        }
        let reader = Failing(Some(b"a,b\n1,2\n3,".to_vec()));
        let mut src =
            CsvSource::from_reader(Path::new("x.csv"), Box::new(reader), &opts()).unwrap();
        assert_eq!(record(&src.next().unwrap().unwrap()).1, ["1", "2"]);
        match src.next() {
            Some(Err(SourceError::Io {
                path,
                cause: source,
            })) => {
                assert_eq!(path, Path::new("x.csv"));
                assert_eq!(source.to_string(), "disk on fire");
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(src.next().is_none());
    }

    #[test]
    fn open_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.csv");
        match CsvSource::open(&path, &opts()) {
            Err(SourceError::Io { path: p, .. }) => assert_eq!(p, path),
            _ => panic!("expected an I/O error"),
        }
    }

    fn capped(max: usize) -> SourceOptions {
        SourceOptions {
            max_record_bytes: max,
            ..opts()
        }
    }

    fn generated(data: super::super::Generated, options: &SourceOptions) -> CsvSource {
        CsvSource::from_reader(Path::new("big.csv"), Box::new(data), options).unwrap()
    }

    const MIB: usize = 1024 * 1024;

    #[test]
    fn an_over_long_row_is_rejected_with_its_start_and_memory_stays_within_the_cap() {
        // 20 MiB of one row, read with a 1 MiB cap: rejected, the next row read, and the raw
        // buffer never grew past the cap.
        let data = super::super::Generated::new()
            .then(b"id,text\n1,short\n2,")
            .repeat("é".repeat(512).as_bytes(), 20 * 1024)
            .then(b"\n3,after\n");
        let mut src = generated(data, &capped(MIB));
        assert_eq!(record(&src.next().unwrap().unwrap()).1, ["1", "short"]);
        let item = src.next().unwrap().unwrap();
        let b = bad(&item);
        assert_eq!(b.pos, pos(2, 3));
        let len = 2 + 20 * MIB as u64;
        assert_eq!(
            b.reason,
            format!(
                "the row is {len} bytes long, more than the limit of 1048576 bytes \
                 (max_record_bytes in the mapping's [source]); it was not read"
            )
        );
        assert_eq!(b.cut, Some(len));
        // The start is kept, cut at a character boundary.
        assert!(b.raw.len() <= PREVIEW_BYTES && b.raw.len() > PREVIEW_BYTES - 4);
        assert!(b.raw.starts_with("2,é".as_bytes()));
        assert!(std::str::from_utf8(&b.raw).is_ok());
        assert_eq!(
            record(&src.next().unwrap().unwrap()),
            (pos(3, 4), vec!["3".into(), "after".into()])
        );
        assert!(src.next().is_none());
        assert!(src.tok.peak <= MIB, "peak {} > cap", src.tok.peak);
    }

    #[test]
    fn an_over_long_quoted_field_that_closes_rejects_its_row_and_the_next_line_is_read() {
        // The field holds line breaks and delimiters: the next record starts where it really
        // does, not at the first line break after the cap.
        let data = super::super::Generated::new()
            .then(b"id,text\r\n1,\"")
            .repeat(b"a,b\r\nc\"\"d\n", 300_000)
            .then(b"\"\r\n2,ok\r\n");
        let mut src = generated(data, &capped(MIB));
        let item = src.next().unwrap().unwrap();
        let b = bad(&item);
        assert_eq!(b.pos, pos(1, 2));
        assert_eq!(b.cut, Some(3 + 3_000_000 + 1));
        let item = src.next().unwrap().unwrap();
        assert_eq!(record(&item).0, pos(2, 2 + 600_001));
        assert_eq!(record(&item).1, ["2", "ok"]);
        assert!(src.tok.peak <= MIB);
    }

    #[test]
    fn an_unterminated_quote_longer_than_the_cap_stops_with_an_error_naming_its_line() {
        let data = super::super::Generated::new()
            .then(b"id,name\n1,ok\n2,\"Bob\n")
            .repeat(b"3,x\n", 1_000_000);
        let mut src = generated(data, &capped(MIB));
        assert_eq!(record(&src.next().unwrap().unwrap()).1, ["1", "ok"]);
        match src.next() {
            Some(Err(SourceError::Csv { line, reason, .. })) => {
                assert_eq!(line, 3);
                assert_eq!(
                    reason,
                    "unterminated quoted field: the quote opened on line 3 (column 'name') is \
                     never closed, so the rest of the file (4000007 bytes from line 3) would be \
                     one row, more than the limit of 1048576 bytes (max_record_bytes in the \
                     mapping's [source]); nothing after line 2 was read. Close the quote (a \
                     quote inside a quoted field is written twice: \"\") and run again"
                );
            }
            other => panic!("expected a CSV error, got {other:?}"),
        }
        assert!(src.next().is_none());
        assert!(src.tok.peak <= MIB);
    }

    #[test]
    fn a_row_of_many_fields_keeps_only_enough_field_ends_to_be_ragged() {
        let data = super::super::Generated::new()
            .then(b"a,b\n")
            .repeat(b",", 500_000)
            .then(b"\n1,2\n");
        let mut src = generated(data, &opts());
        let item = src.next().unwrap().unwrap();
        assert_eq!(
            bad(&item).reason,
            "the row has 500001 fields, the header has 2 columns"
        );
        assert!(
            src.tok.ends.capacity() < 1024,
            "{}",
            src.tok.ends.capacity()
        );
        assert_eq!(record(&src.next().unwrap().unwrap()).1, ["1", "2"]);
    }

    #[test]
    fn an_over_long_header_is_a_header_error() {
        let data = super::super::Generated::new().repeat(b"abcdefgh", 300);
        match CsvSource::from_reader(Path::new("h.csv"), Box::new(data), &capped(2048)) {
            Err(SourceError::Header {
                line: 1, reason, ..
            }) => assert_eq!(
                reason,
                "the header row is 2400 bytes long, more than the limit of 2048 bytes \
                 (max_record_bytes in the mapping's [source]); is this a CSV file?"
            ),
            other => panic!("expected a header error, got {:?}", other.err()),
        }
    }

    #[test]
    fn utf16_files_are_named_as_such_with_what_is_accepted() {
        let utf16le: Vec<u8> = "Id,Name\r\n1,x\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "Id,Name\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let cases: [(Vec<u8>, &str); 4] = [
            (
                [&[0xFF, 0xFE][..], &utf16le].concat(),
                "UTF-16 (little-endian, with a byte-order mark FF FE)",
            ),
            (
                [&[0xFE, 0xFF][..], &utf16be].concat(),
                "UTF-16 (big-endian, with a byte-order mark FE FF)",
            ),
            (
                utf16le.clone(),
                "UTF-16 (little-endian: every other byte is NUL)",
            ),
            (
                utf16be.clone(),
                "UTF-16 (big-endian: every other byte is NUL)",
            ),
        ];
        for (bytes, kind) in cases {
            for encoding in [Encoding::Utf8, Encoding::Windows1252] {
                let options = SourceOptions { encoding, ..opts() };
                let (line, reason) = header_err(&bytes, &options);
                assert_eq!(line, 1);
                assert_eq!(
                    reason,
                    format!(
                        "the file is {kind}; dvload reads UTF-8 and windows-1252 only: save it \
                         as UTF-8 (Excel: \"CSV UTF-8\"), or as windows-1252 and set encoding = \
                         \"windows-1252\" in the mapping's [source]"
                    )
                );
            }
        }
        // Ordinary text with accents is not taken for UTF-16.
        assert_eq!(rows("Nom\nRené\n".as_bytes(), &opts()), [["René"]]);
    }

    #[test]
    fn the_line_ending_is_the_header_lines() {
        for (data, eol) in [
            (&b"a,b\r\n1,2\n"[..], &b"\r\n"[..]),
            (b"a,b\n1,2\r\n", b"\n"),
            (b"a,b\r1,2\r", b"\r"),
            (b"a,b", b"\n"),
        ] {
            let src = open_with(data, &opts()).unwrap();
            assert_eq!(src.line_ending(), eol, "{data:?}");
            assert_eq!(src.count(), usize::from(data.len() > 3), "{data:?}");
        }
        // `\r\n` split across reads.
        struct Two(Vec<Vec<u8>>);
        impl Read for Two {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                let part = self.0.remove(0);
                buf[..part.len()].copy_from_slice(&part);
                Ok(part.len())
            }
        }
        let reader = Two(vec![b"a,b\r".to_vec(), b"\n1,2\r\n".to_vec()]);
        let src = CsvSource::from_reader(Path::new("x.csv"), Box::new(reader), &opts()).unwrap();
        assert_eq!(src.line_ending(), b"\r\n");
        assert_eq!(
            src.map(|i| record(&i.unwrap()).1).collect::<Vec<_>>(),
            [["1", "2"]]
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Writes a field as a careful CSV writer would.
        fn quote_field(f: &str, delim: char, quote: char) -> String {
            if f.is_empty() || f.contains([delim, quote, '\r', '\n']) {
                let doubled = f.replace(quote, &format!("{quote}{quote}"));
                format!("{quote}{doubled}{quote}")
            } else {
                f.to_owned()
            }
        }

        fn field() -> impl Strategy<Value = String> {
            proptest::string::string_regex("(?s)[a-z,;\"'\r\n |\t é€日😀]{0,8}").unwrap()
        }

        fn table() -> impl Strategy<Value = (usize, Vec<Vec<String>>)> {
            (1usize..5).prop_flat_map(|cols| {
                (
                    Just(cols),
                    proptest::collection::vec(proptest::collection::vec(field(), cols), 0..12),
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn written_tables_read_back_identically(
                (cols, table) in table(),
                crlf in any::<bool>(),
                delim in prop_oneof![Just(','), Just(';'), Just('\t'), Just('|')],
                quote in prop_oneof![Just('"'), Just('\'')],
                final_eol in any::<bool>(),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let header: Vec<String> = (1..=cols).map(|i| format!("c{i}")).collect();
                let mut text = header.join(&delim.to_string());
                text.push_str(eol);
                let mut expected_raw = Vec::new();
                let mut expected_line = Vec::new();
                for row in &table {
                    let line = text.bytes().filter(|&b| b == b'\n').count() as u64
                        + 1
                        // lone `\r`s count as line breaks too
                        + text.as_bytes().windows(2).filter(|w| w[0] == b'\r' && w[1] != b'\n').count() as u64
                        + u64::from(text.ends_with('\r'));
                    let raw = row.iter().map(|f| quote_field(f, delim, quote)).collect::<Vec<_>>().join(&delim.to_string());
                    expected_line.push(line);
                    text.push_str(&raw);
                    text.push_str(eol);
                    expected_raw.push(raw);
                }
                if !final_eol {
                    text.truncate(text.len() - eol.len());
                }
                let options = SourceOptions {
                    delimiter: delim as u8,
                    quote: quote as u8,
                    ..SourceOptions::default()
                };
                let (got_cols, items) = read_all(text.as_bytes(), &options);
                prop_assert_eq!(&got_cols, &header);
                prop_assert_eq!(items.len(), table.len());
                for (i, item) in items.iter().enumerate() {
                    let (p, fields) = record(item);
                    prop_assert_eq!(p, pos(i as u64 + 1, expected_line[i]));
                    prop_assert_eq!(&fields, &table[i]);
                    // The record's bytes, read as a file of their own, give the same fields.
                    let mut again = header.join(&delim.to_string()).into_bytes();
                    again.push(b'\n');
                    again.extend_from_slice(expected_raw[i].as_bytes());
                    let (_, reread) = super::read_all(&again, &options);
                    prop_assert_eq!(reread.len(), 1);
                    prop_assert_eq!(record(&reread[0]).1, fields);
                }
            }
        }
    }
}
