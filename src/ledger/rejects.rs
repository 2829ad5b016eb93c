//! The rejects file: every rejected row in the source's own format, with its row number and
//! reason, so that a fixed file replays with the same mapping.
//!
//! CSV sources give CSV (same delimiter, quote, encoding and line ending) with the header plus
//! `dvload_row` and `dvload_error` columns, which a mapping ignores on replay (a source that
//! already has them, such as a rejects file being replayed, has their values replaced rather than
//! added again). JSON and JSON Lines sources give JSON Lines: `{"row":..,"error":"..","record":{..}}`,
//! or `"raw":".."` instead of `record` for a line that was not valid JSON (`"raw_base64":".."`
//! when its bytes are not UTF-8, kept exactly); the JSON Lines reader unwraps all three.
//!
//! Every rejected row replays as its own row: a CSV row whose bytes leave a quote open (an
//! unterminated quoted field) is written as one quoted field, so that it cannot swallow the
//! lines after it; an invalid row replayed unfixed is rejected again, never written altered.
//!
//! The row number is the row in the source of the first run: a replayed rejects file keeps the
//! number its `dvload_row` column (CSV) or envelope `row` (JSON Lines) gives, when that is a
//! positive integer; otherwise (missing, edited, garbled) the row in the file being read.
//!
//! A record longer than `max_record_bytes` is not written whole: its first bytes are, as one
//! quoted field (CSV) or the `raw` string (JSON Lines), followed by a note of how much was cut, so
//! that the line can never be read back as a good record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::outcome::Reject;
use crate::source::{CsvRow, Encoding, Format, OriginRows, Record, RecordData, RowPos};

/// Column names added to a CSV rejects file.
pub const ROW_COLUMN: &str = "dvload_row";
/// Column names added to a CSV rejects file.
pub const ERROR_COLUMN: &str = "dvload_error";

/// What is known of a rejected row's content.
#[derive(Debug, Clone, Copy)]
pub enum RejectContent<'a> {
    /// A readable CSV row.
    Csv(&'a CsvRow),
    /// A JSON record.
    Json(&'a serde_json::Value),
    /// Bytes that could not be read as a record (ragged row, invalid bytes, malformed JSON).
    Raw(&'a [u8]),
    /// The first bytes of a record too long to read, `len` bytes in all.
    Cut {
        /// The record's first bytes.
        preview: &'a [u8],
        /// The record's full length.
        len: u64,
    },
}

/// How the CSV rejects file is laid out.
#[derive(Debug, Clone)]
struct CsvLayout {
    delimiter: u8,
    quote: u8,
    encoding: Encoding,
    /// Indexes of the source's own `dvload_row` / `dvload_error` columns, if it has them.
    existing: Option<(usize, usize)>,
    header: Vec<String>,
    /// The line terminator (the source's).
    eol: &'static [u8],
}

impl CsvLayout {
    /// The number of fields of a line of the rejects file.
    fn width(&self) -> usize {
        self.header.len() + if self.existing.is_some() { 0 } else { 2 }
    }
}

/// Writes rejected rows to a file, created on the first reject.
pub struct RejectsWriter {
    path: PathBuf,
    csv: Option<CsvLayout>,
    /// The temporary file and its path, once the first reject came.
    out: Option<(BufWriter<File>, PathBuf)>,
    count: u64,
    line: Vec<u8>,
    /// The original row numbers of a replayed JSON Lines rejects file.
    origins: Option<OriginRows>,
}

impl RejectsWriter {
    /// A writer for a source of `format`; `columns` is the CSV header.
    pub fn new(
        path: PathBuf,
        format: Format,
        columns: Option<&[String]>,
        delimiter: u8,
        quote: u8,
        encoding: Encoding,
    ) -> RejectsWriter {
        let csv = (format == Format::Csv).then(|| {
            let header: Vec<String> = columns.unwrap_or_default().to_vec();
            let row = header.iter().position(|c| c == ROW_COLUMN);
            let err = header.iter().position(|c| c == ERROR_COLUMN);
            CsvLayout {
                delimiter,
                quote,
                encoding,
                existing: row.zip(err),
                header,
                eol: b"\n",
            }
        });
        RejectsWriter {
            path,
            csv,
            out: None,
            count: 0,
            line: Vec::with_capacity(256),
            origins: None,
        }
    }

    /// Ends CSV lines with `eol` (the source's line terminator) instead of `\n`.
    pub fn with_line_ending(mut self, eol: &'static [u8]) -> RejectsWriter {
        if let Some(layout) = &mut self.csv {
            layout.eol = eol;
        }
        self
    }

    /// Takes the row numbers of rejected rows from `origins` when it has them (a replayed JSON
    /// Lines rejects file).
    pub fn with_origin_rows(mut self, origins: Option<OriginRows>) -> RejectsWriter {
        self.origins = origins;
        self
    }

    /// The default rejects file for a source: `<source stem>.rejects.csv` (or `.jsonl`) in the
    /// current directory.
    pub fn default_path(source: &Path, format: Format) -> PathBuf {
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "source".into());
        let stem = stem.strip_suffix(".rejects").unwrap_or(&stem).to_string();
        PathBuf::from(format!(
            "{stem}.rejects.{}",
            if format == Format::Csv {
                "csv"
            } else {
                "jsonl"
            }
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a rejected row: its content (as read, or the raw bytes of a row that could not
    /// be read) and its reason.
    pub fn write_reject(&mut self, reject: &Reject) -> std::io::Result<()> {
        let reason = reject.reason();
        match reject {
            Reject::Mapping(record, _) | Reject::Service(record, _) | Reject::Unsent(record, _) => {
                self.write(record.pos, &reason, record_content(record))
            }
            Reject::Unreadable(b) => {
                let content = match b.cut {
                    Some(len) => RejectContent::Cut {
                        preview: &b.raw,
                        len,
                    },
                    None => RejectContent::Raw(&b.raw),
                };
                self.write(b.pos, &reason, content)
            }
        }
    }

    /// Writes one rejected row.
    pub fn write(
        &mut self,
        pos: RowPos,
        error: &str,
        content: RejectContent<'_>,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = temporary_path(&self.path);
            let mut out = BufWriter::new(File::create(&tmp)?);
            if let Some(layout) = &self.csv {
                let mut header: Vec<String> = layout.header.clone();
                if layout.existing.is_none() {
                    header.push(ROW_COLUMN.into());
                    header.push(ERROR_COLUMN.into());
                }
                let mut line = Vec::new();
                csv_line(layout, header.iter().map(String::as_str), &mut line);
                out.write_all(&encode(layout.encoding, &line))?;
            }
            self.out = Some((out, tmp));
        }
        let (out, _) = self.out.as_mut().expect("opened above");
        self.line.clear();
        match (&self.csv, content) {
            (Some(layout), RejectContent::Csv(row)) => {
                // A replayed rejects file keeps its first run's row numbers.
                let row_text = match layout.existing {
                    Some((r, _)) => original_row(row.get(r).unwrap_or_default().as_bytes()),
                    None => None,
                }
                .unwrap_or(pos.row)
                .to_string();
                let fields: Vec<&str> = match layout.existing {
                    Some((r, e)) => row
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            if i == r {
                                row_text.as_str()
                            } else if i == e {
                                error
                            } else {
                                f
                            }
                        })
                        .collect(),
                    None => row.iter().chain([row_text.as_str(), error]).collect(),
                };
                csv_line(layout, fields.into_iter(), &mut self.line);
                out.write_all(&encode(layout.encoding, &self.line))?;
            }
            (Some(layout), RejectContent::Raw(raw)) => {
                // The bytes are written as they were (they may not even decode), then the two
                // columns are appended; a row of a replayed rejects file that still ends with
                // its two (ragged, or with invalid bytes) has them replaced instead. Bytes that
                // leave a quote open (an unterminated quoted field) would swallow the lines after
                // them on replay: they are written as one quoted field (quotes doubled) instead,
                // a row read back as ragged, rejected again with these bytes.
                let (kept, row) = match replayed_tail(layout, raw) {
                    Some((start, row)) => (&raw[..start], row),
                    None => (raw, pos.row),
                };
                let stripped = kept.len() != raw.len();
                let quoted;
                let kept = if field_starts(kept, layout.delimiter, layout.quote).is_none() {
                    let mut q = Vec::with_capacity(kept.len() + 8);
                    q.push(layout.quote);
                    for &b in kept {
                        if b == layout.quote {
                            q.push(layout.quote);
                        }
                        q.push(b);
                    }
                    q.push(layout.quote);
                    if layout.width() == 3 {
                        // One field more, so that it never reads back as a good row.
                        q.push(layout.delimiter);
                    }
                    quoted = q;
                    &quoted[..]
                } else {
                    kept
                };
                out.write_all(kept)?;
                let row_text = row.to_string();
                let mut tail = Vec::new();
                if !stripped {
                    tail.push(layout.delimiter);
                }
                csv_line(layout, [row_text.as_str(), error].into_iter(), &mut tail);
                out.write_all(&encode(layout.encoding, &tail))?;
            }
            (Some(layout), RejectContent::Cut { preview, len }) => {
                // The first bytes, quoted as one field (the bytes as they were, quotes
                // doubled), and a note of the cut; one empty field more if that made the line
                // as wide as a good row, so that it is read back as ragged.
                self.line.push(layout.quote);
                for &b in preview {
                    if b == layout.quote {
                        self.line.push(layout.quote);
                    }
                    self.line.push(b);
                }
                self.line.extend_from_slice(&cut_note(preview.len(), len));
                self.line.push(layout.quote);
                self.line.push(layout.delimiter);
                if layout.width() == 3 {
                    self.line.push(layout.delimiter);
                }
                out.write_all(&self.line)?;
                let row_text = pos.row.to_string();
                let mut tail = Vec::new();
                csv_line(layout, [row_text.as_str(), error].into_iter(), &mut tail);
                out.write_all(&encode(layout.encoding, &tail))?;
            }
            (Some(_), RejectContent::Json(_)) | (None, RejectContent::Csv(_)) => {
                unreachable!("the rejects writer is made for the source's format")
            }
            (None, content) => {
                let row = self
                    .origins
                    .as_ref()
                    .and_then(|o| o.get(pos.row))
                    .unwrap_or(pos.row);
                let mut obj = serde_json::Map::new();
                obj.insert("row".into(), row.into());
                obj.insert("error".into(), error.into());
                match content {
                    RejectContent::Json(v) => obj.insert("record".into(), v.clone()),
                    // Bytes that are not UTF-8 cannot be a JSON string: they are kept exactly,
                    // in base64, so that the line replays as the same invalid bytes (rejected
                    // again) and is never written with U+FFFD in their place.
                    RejectContent::Raw(raw) => match std::str::from_utf8(raw) {
                        Ok(text) => obj.insert("raw".into(), text.into()),
                        Err(_) => {
                            use base64::Engine as _;
                            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                            obj.insert("raw_base64".into(), encoded.into())
                        }
                    },
                    RejectContent::Cut { preview, len } => {
                        let mut text = String::from_utf8_lossy(preview).into_owned();
                        text.push_str(&String::from_utf8_lossy(&cut_note(preview.len(), len)));
                        obj.insert("raw".into(), text.into())
                    }
                    RejectContent::Csv(_) => unreachable!(),
                };
                serde_json::to_writer(&mut *out, &obj)?;
                out.write_all(b"\n")?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes the file and puts it in place; returns its path when anything was written.
    pub fn finish(mut self) -> std::io::Result<Option<PathBuf>> {
        match self.out.take() {
            Some((out, tmp)) => {
                settle(out, &tmp, &self.path)?;
                Ok(Some(self.path.clone()))
            }
            None => Ok(None),
        }
    }
}

impl Drop for RejectsWriter {
    /// A writer dropped without `finish` (the run failed) still puts what it has in place:
    /// rejected rows are never left behind in a temporary file.
    fn drop(&mut self) {
        if let Some((out, tmp)) = self.out.take() {
            if settle(out, &tmp, &self.path).is_err() {
                tracing::error!(
                    "rejected rows are in {} (could not be renamed to {})",
                    tmp.display(),
                    self.path.display()
                );
            }
        }
    }
}

/// `.NAME.PID.tmp` beside `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rejects".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Removes the temporary files a killed run left beside `path` (`.NAME.PID.tmp` whose process
/// is gone: a kill -9 gives no chance to put them in place). Their rows are in the ledger, and a
/// resume writes them to its rejects file again. Returns how many were removed.
pub fn remove_stale_temporaries(path: &Path) -> usize {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 != std::process::id() && !process_alive(pid) {
            removed += usize::from(std::fs::remove_file(entry.path()).is_ok());
        }
    }
    removed
}

/// True when process `pid` exists (signal 0 reaches it, or it belongs to someone else).
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Flushes and syncs `out` (written at `tmp`) and renames it to `path`.
fn settle(mut out: BufWriter<File>, tmp: &Path, path: &Path) -> std::io::Result<()> {
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

/// The note after the first `kept` bytes of a record `len` bytes long.
fn cut_note(kept: usize, len: u64) -> Vec<u8> {
    format!("...[cut by dvload: the first {kept} of {len} bytes]").into_bytes()
}

/// A positive row number written in a `dvload_row` field.
fn original_row(field: &[u8]) -> Option<u64> {
    std::str::from_utf8(field)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&row| row > 0)
}

/// When `raw`, an unreadable row of a replayed rejects file (whose header ends with
/// `dvload_row`, `dvload_error`), still ends with those two fields as dvload wrote them (a row
/// number, then the reason): where they start, and the row number.
fn replayed_tail(layout: &CsvLayout, raw: &[u8]) -> Option<(usize, u64)> {
    let (r, e) = layout.existing?;
    let n = layout.header.len();
    if (r, e) != (n - 2, n - 1) {
        return None;
    }
    let starts = field_starts(raw, layout.delimiter, layout.quote)?;
    if starts.len() < 3 {
        return None;
    }
    let (row_start, err_start) = (starts[starts.len() - 2], starts[starts.len() - 1]);
    let row = original_row(&raw[row_start..err_start - 1])?;
    Some((row_start, row))
}

/// The offset where each field of the one CSV record `raw` starts (the reader's rules: a field
/// that starts with the quote is quoted); `None` if a quote is left open.
fn field_starts(raw: &[u8], delimiter: u8, quote: u8) -> Option<Vec<usize>> {
    #[derive(PartialEq)]
    enum S {
        Start,
        Unquoted,
        Quoted,
        AfterQuote,
    }
    let mut starts = vec![0];
    let mut state = S::Start;
    for (i, &b) in raw.iter().enumerate() {
        state = match state {
            S::Start if b == quote => S::Quoted,
            S::Quoted if b == quote => S::AfterQuote,
            S::Quoted => S::Quoted,
            S::AfterQuote if b == quote => S::Quoted,
            S::Start | S::Unquoted | S::AfterQuote if b == delimiter => {
                starts.push(i + 1);
                S::Start
            }
            _ => S::Unquoted,
        };
    }
    (state != S::Quoted).then_some(starts)
}

/// One CSV line (ended with the layout's terminator), quoting fields that need it.
fn csv_line<'a>(layout: &CsvLayout, fields: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(layout.delimiter);
        }
        let needs_quotes = f
            .bytes()
            .any(|b| b == layout.delimiter || b == layout.quote || b == b'\n' || b == b'\r')
            || f.starts_with(' ')
            || f.ends_with(' ');
        if needs_quotes {
            out.push(layout.quote);
            for b in f.bytes() {
                if b == layout.quote {
                    out.push(layout.quote);
                }
                out.push(b);
            }
            out.push(layout.quote);
        } else {
            out.extend_from_slice(f.as_bytes());
        }
    }
    out.extend_from_slice(layout.eol);
}

fn encode(encoding: Encoding, utf8: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match encoding {
        Encoding::Utf8 => std::borrow::Cow::Borrowed(utf8),
        Encoding::Windows1252 => {
            let text = String::from_utf8_lossy(utf8);
            let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
            std::borrow::Cow::Owned(bytes.into_owned())
        }
    }
}

/// The reject content of a record.
fn record_content(record: &Record) -> RejectContent<'_> {
    match &record.data {
        RecordData::Csv(row) => RejectContent::Csv(row),
        RecordData::Json(v) => RejectContent::Json(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_temporary_rejects_file_is_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.rejects.csv");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".accounts.rejects.csv.{gone}.tmp"));
        let live = dir
            .path()
            .join(format!(".accounts.rejects.csv.{}.tmp", std::process::id()));
        let other = dir.path().join(format!(".leads.rejects.csv.{gone}.tmp"));
        for p in [&stale, &live, &other] {
            std::fs::write(p, "").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&path), 1);
        assert!(!stale.exists() && live.exists() && other.exists());
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csv_rejects_keep_the_header_and_add_two_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.rejects.csv");
        let header = cols(&["Id", "Name"]);
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&header),
            b';',
            b'"',
            Encoding::Utf8,
        );
        let row = CsvRow::of(&["1", "Smith; \"Jo\""]);
        w.write(
            RowPos { row: 3, line: 4 },
            "unknown label 'x'",
            RejectContent::Csv(&row),
        )
        .unwrap();
        w.write(
            RowPos { row: 4, line: 5 },
            "ragged",
            RejectContent::Raw(b"2;a;b"),
        )
        .unwrap();
        assert_eq!(w.finish().unwrap(), Some(path.clone()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Id;Name;dvload_row;dvload_error\n1;\"Smith; \"\"Jo\"\"\";3;unknown label 'x'\n2;a;b;4;ragged\n"
        );
    }

    #[test]
    fn replayed_csv_rejects_replace_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let header = cols(&["Id", "dvload_row", "dvload_error"]);
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&header),
            b',',
            b'"',
            Encoding::Utf8,
        );
        let row = CsvRow::of(&["1", "3", "old reason"]);
        w.write(
            RowPos { row: 1, line: 2 },
            "new, reason",
            RejectContent::Csv(&row),
        )
        .unwrap();
        // A missing or garbled row number: the replay's own row.
        for (i, garbled) in ["", "x7", "0", "-2"].into_iter().enumerate() {
            let row = CsvRow::of(&["2", garbled, "old"]);
            let pos = RowPos {
                row: 2 + i as u64,
                line: 3 + i as u64,
            };
            w.write(pos, "again", RejectContent::Csv(&row)).unwrap();
        }
        w.finish().unwrap();
        // The first run's row number (3) is kept, not the replay's (1).
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Id,dvload_row,dvload_error\n1,3,\"new, reason\"\n2,2,again\n2,3,again\n2,4,again\n\
             2,5,again\n"
        );
    }

    #[test]
    fn windows_1252_sources_get_windows_1252_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let header = cols(&["Name"]);
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&header),
            b',',
            b'"',
            Encoding::Windows1252,
        );
        let row = CsvRow::of(&["Café €"]);
        w.write(RowPos { row: 1, line: 2 }, "x", RejectContent::Csv(&row))
            .unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.ends_with(b"Caf\xe9 \x80,1,x\n"), "{bytes:?}");
    }

    #[test]
    fn json_rejects_are_json_lines_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::JsonLines,
            None,
            b',',
            b'"',
            Encoding::Utf8,
        );
        let rec = serde_json::json!({"id": "L-1"});
        w.write(RowPos { row: 2, line: 2 }, "bad", RejectContent::Json(&rec))
            .unwrap();
        w.write(
            RowPos { row: 3, line: 3 },
            "not JSON",
            RejectContent::Raw(b"{\"id\":"),
        )
        .unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"row\":2,\"error\":\"bad\",\"record\":{\"id\":\"L-1\"}}\n{\"row\":3,\"error\":\"not JSON\",\"raw\":\"{\\\"id\\\":\"}\n"
        );
    }

    #[test]
    fn csv_rejects_use_the_sources_line_ending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let header = cols(&["Id", "Name"]);
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&header),
            b',',
            b'"',
            Encoding::Utf8,
        )
        .with_line_ending(b"\r\n");
        let row = CsvRow::of(&["1", "two\nlines"]);
        w.write(RowPos { row: 1, line: 2 }, "bad", RejectContent::Csv(&row))
            .unwrap();
        w.write(
            RowPos { row: 2, line: 4 },
            "ragged",
            RejectContent::Raw(b"2"),
        )
        .unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Id,Name,dvload_row,dvload_error\r\n1,\"two\nlines\",1,bad\r\n2,2,ragged\r\n"
        );
    }

    #[test]
    fn over_long_records_leave_their_start_and_a_note_that_reads_back_as_bad() {
        let dir = tempfile::tempdir().unwrap();
        // CSV: one quoted field (quotes doubled), one more empty field where that would be as
        // wide as a good row (a one-column source), then the two columns.
        for (columns, expected) in [
            (
                &["Id", "Name"][..],
                "Id,Name,dvload_row,dvload_error\n\"1,\"\"Bo...[cut by dvload: the first 5 of 9000 \
                 bytes]\",7,too long\n",
            ),
            (
                &["Id"][..],
                "Id,dvload_row,dvload_error\n\"1,\"\"Bo...[cut by dvload: the first 5 of 9000 \
                 bytes]\",,7,too long\n",
            ),
        ] {
            let path = dir.path().join("r.csv");
            let mut w = RejectsWriter::new(
                path.clone(),
                Format::Csv,
                Some(&cols(columns)),
                b',',
                b'"',
                Encoding::Utf8,
            );
            let cut = RejectContent::Cut {
                preview: b"1,\"Bo",
                len: 9000,
            };
            w.write(RowPos { row: 7, line: 8 }, "too long", cut)
                .unwrap();
            w.finish().unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text, expected);
            // Read back, the line is ragged: the reader rejects it again.
            let options = crate::source::SourceOptions::default();
            let mut src = crate::source::open(&path, &options).unwrap();
            match src.next() {
                Some(Ok(crate::source::SourceItem::Bad(b))) => {
                    assert!(b.reason.starts_with("the row has "), "{}", b.reason)
                }
                other => panic!("expected a bad row, got {other:?}"),
            }
        }
        // JSON Lines: the start in `raw`, with the note, so that it never parses.
        let path = dir.path().join("r.jsonl");
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::JsonLines,
            None,
            b',',
            b'"',
            Encoding::Utf8,
        );
        let cut = RejectContent::Cut {
            preview: b"{\"a\":1}",
            len: 20_000_000,
        };
        w.write(RowPos { row: 2, line: 2 }, "too long", cut)
            .unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"row\":2,\"error\":\"too long\",\"raw\":\"{\\\"a\\\":1}...[cut by dvload: the \
             first 7 of 20000000 bytes]\"}\n"
        );
    }

    #[test]
    fn replayed_unreadable_csv_rows_keep_their_row_and_do_not_grow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let header = cols(&["Id", "Name", "dvload_row", "dvload_error"]);
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&header),
            b',',
            b'"',
            Encoding::Utf8,
        );
        // A ragged row as a first run wrote it, then one whose number was garbled, then one
        // that lost its two fields.
        for (row, raw) in [
            (1, &b"A-2,12,\"had 1 field, 2 columns\""[..]),
            (2, b"A-3,x,y,zz,err"),
            (3, b"A-4"),
        ] {
            let pos = RowPos { row, line: row + 1 };
            w.write(pos, "ragged again", RejectContent::Raw(raw))
                .unwrap();
        }
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Id,Name,dvload_row,dvload_error\nA-2,12,ragged again\nA-3,x,y,zz,err,2,ragged again\n\
             A-4,3,ragged again\n"
        );
    }

    #[test]
    fn replayed_json_lines_rejects_keep_their_original_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let origins = crate::source::OriginRows::default();
        origins.note(1, Some(40));
        origins.note(2, None);
        origins.note(3, Some(97));
        let mut w = RejectsWriter::new(
            path.clone(),
            Format::JsonLines,
            None,
            b',',
            b'"',
            Encoding::Utf8,
        )
        .with_origin_rows(Some(origins));
        let rec = serde_json::json!({"id": 1});
        // Out of order, as a writer's rejects come.
        w.write(RowPos { row: 3, line: 3 }, "x", RejectContent::Json(&rec))
            .unwrap();
        w.write(RowPos { row: 2, line: 2 }, "y", RejectContent::Raw(b"{"))
            .unwrap();
        w.write(RowPos { row: 1, line: 1 }, "z", RejectContent::Json(&rec))
            .unwrap();
        w.finish().unwrap();
        let rows: Vec<u64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["row"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(rows, [97, 2, 40]);
    }

    #[test]
    fn nothing_rejected_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let w = RejectsWriter::new(
            path.clone(),
            Format::Csv,
            Some(&cols(&["a"])),
            b',',
            b'"',
            Encoding::Utf8,
        );
        assert_eq!(w.finish().unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn default_paths() {
        assert_eq!(
            RejectsWriter::default_path(Path::new("samples/accounts.csv"), Format::Csv),
            PathBuf::from("accounts.rejects.csv")
        );
        assert_eq!(
            RejectsWriter::default_path(Path::new("accounts.rejects.csv"), Format::Csv),
            PathBuf::from("accounts.rejects.csv")
        );
        assert_eq!(
            RejectsWriter::default_path(Path::new("x/leads.json"), Format::Json),
            PathBuf::from("leads.rejects.jsonl")
        );
    }
}
