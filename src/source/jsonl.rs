//! JSON Lines reader: one object per line; a malformed line is a `BadRecord`.
//!
//! - Lines end with `\n` or `\r\n`; a line of nothing but whitespace is blank: skipped, not a
//!   record, but counted as a line. A UTF-8 byte-order mark before the first line is skipped.
//! - Record `row` = ordinal among non-blank lines (a malformed line is a row too: it is rejected,
//!   so that rows read = written + rejected + skipped); `line` = the physical line.
//! - A line that is not valid JSON, or not an object, is a `BadRecord` whose raw bytes are the
//!   line (without its terminator); reading goes on.
//! - An object with the same member name twice (at any depth) is a `BadRecord` naming it.
//! - A line longer than `max_record_bytes` is a `BadRecord` holding its first `PREVIEW_BYTES`
//!   (`cut` set to its length); the rest of it is skipped up to the next line break, where
//!   reading goes on.
//! - Replaying a rejects file: a line that is an object with exactly the members `row`, `error`
//!   and `record` (an object) is a dvload reject envelope, and its `record` is the record. With
//!   `raw` (a string) instead of `record`, that string is read as the line's content (and if it
//!   is malformed again, the `BadRecord`'s raw bytes are that string, not the envelope). The
//!   position is always this file's own row and line; the envelope's `row` (the row in the
//!   source of the first run), when it is a positive integer, is noted in `origin_rows` for the
//!   rejects writer.
//! - A file that starts with a UTF-16 byte-order mark or has a NUL every other byte is a
//!   `SourceError::Encoding`.
//!
//! The file is read through one 64 KiB buffer and one reused line buffer, which never grows
//! past `max_record_bytes`.

use super::{
    BadRecord, OriginRows, Record, RecordData, RecordSource, RowPos, SourceError, SourceItem,
    SourceOptions, cut_at_char, keep_capped, utf16_kind, utf16_reason, value,
};
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Size of the read buffer.
const BUF_SIZE: usize = 64 * 1024;

/// Streams the records of a file.
pub struct JsonLinesSource {
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    /// The current line, reused.
    buf: Vec<u8>,
    /// Physical lines read so far.
    line: u64,
    /// Records (non-blank lines) read so far.
    row: u64,
    /// Set after the end of the file or an I/O error.
    done: bool,
    /// The longest line kept, in bytes.
    max: usize,
    /// The current line's length, kept or not (without its terminator).
    len: u64,
    /// The current line is longer than `max` (`buf` holds its start only).
    over: bool,
    /// The envelopes' original row numbers.
    origins: OriginRows,
    /// The largest capacity `buf` has had.
    #[cfg(test)]
    peak: usize,
}

impl JsonLinesSource {
    /// Opens the file.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<JsonLinesSource, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        JsonLinesSource::from_reader(path, Box::new(file), options)
    }

    /// Reads JSON Lines from any reader (standard input, a decompressor); `path` names it in
    /// messages.
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn Read + Send>,
        options: &SourceOptions,
    ) -> Result<JsonLinesSource, SourceError> {
        let mut reader = BufReader::with_capacity(BUF_SIZE, reader);
        let io_error = |source| SourceError::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        if let Some(kind) = utf16_kind(reader.fill_buf().map_err(io_error)?) {
            return Err(SourceError::Encoding {
                path: path.to_path_buf(),
                reason: utf16_reason(kind, false),
            });
        }
        Ok(JsonLinesSource {
            path: path.to_path_buf(),
            reader,
            buf: Vec::with_capacity(1024),
            line: 0,
            row: 0,
            done: false,
            max: options.max_record_bytes,
            len: 0,
            over: false,
            origins: OriginRows::default(),
            #[cfg(test)]
            peak: 0,
        })
    }

    /// Reads the next non-blank line into `buf` (terminator and BOM removed; only its start if
    /// it is over `max`); false at the end.
    fn next_line(&mut self) -> io::Result<bool> {
        loop {
            self.buf.clear();
            self.len = 0;
            self.over = false;
            // Whether the part of an over-long line that is not kept has more than whitespace.
            let mut dropped_text = false;
            let mut any = false;
            loop {
                let chunk = match self.reader.fill_buf() {
                    Ok(chunk) => chunk,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if chunk.is_empty() {
                    break;
                }
                any = true;
                let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (i, true),
                    None => (chunk.len(), false),
                };
                let bytes = &chunk[..take];
                let was_over = self.over;
                keep_capped(
                    &mut self.buf,
                    &mut self.len,
                    &mut self.over,
                    self.max,
                    bytes,
                );
                if was_over && !dropped_text {
                    dropped_text = bytes.iter().any(|b| !b.is_ascii_whitespace());
                }
                #[cfg(test)]
                {
                    self.peak = self.peak.max(self.buf.capacity());
                }
                self.reader.consume(take + usize::from(end));
                if end {
                    break;
                }
            }
            if !any {
                return Ok(false);
            }
            self.line += 1;
            if !self.over && self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.drain(..3);
            }
            if dropped_text || !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }
}

/// What a line holds, and the original row of a reject envelope.
fn parse_line(pos: RowPos, line: &[u8]) -> (SourceItem, Option<u64>) {
    let value = match parse_object(line, "") {
        Ok(value) => value,
        Err(reason) => {
            return (
                SourceItem::Bad(BadRecord::new(pos, reason, line.to_vec())),
                None,
            );
        }
    };
    let Value::Object(mut map) = value else {
        unreachable!("parse_object returns objects");
    };
    let is_envelope = |other: &str| {
        map.len() == 3
            && map.contains_key("row")
            && map.contains_key("error")
            && matches!(
                (other, map.get(other)),
                ("record", Some(Value::Object(_))) | ("raw" | "raw_base64", Some(Value::String(_)))
            )
    };
    // The first run's row number; a missing or garbled one is left out (the rejects writer
    // then gives this file's own).
    let origin = |map: &serde_json::Map<String, Value>| {
        map.get("row")
            .and_then(Value::as_u64)
            .filter(|&row| row > 0)
    };
    let (data, origin) = if is_envelope("record") {
        let origin = origin(&map);
        (map.swap_remove("record").unwrap_or_default(), origin)
    } else if is_envelope("raw") {
        let origin = origin(&map);
        let Some(Value::String(inner)) = map.swap_remove("raw") else {
            unreachable!("checked above");
        };
        match parse_object(inner.as_bytes(), " (the 'raw' of a rejects-file line)") {
            Ok(value) => (value, origin),
            Err(reason) => {
                return (
                    SourceItem::Bad(BadRecord::new(pos, reason, inner.into_bytes())),
                    origin,
                );
            }
        }
    } else if is_envelope("raw_base64") {
        // Bytes that were not UTF-8, kept exactly: read again, they are rejected again.
        let origin = origin(&map);
        let Some(Value::String(inner)) = map.swap_remove("raw_base64") else {
            unreachable!("checked above");
        };
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inner.as_bytes())
            .unwrap_or_else(|_| inner.into_bytes());
        match parse_object(&bytes, " (the 'raw_base64' of a rejects-file line)") {
            Ok(value) => (value, origin),
            Err(reason) => {
                return (SourceItem::Bad(BadRecord::new(pos, reason, bytes)), origin);
            }
        }
    } else {
        (Value::Object(map), None)
    };
    (
        SourceItem::Record(Record {
            pos,
            data: RecordData::Json(data),
        }),
        origin,
    )
}

/// Parses `text` as one JSON object; `what` qualifies the line in messages.
fn parse_object(text: &[u8], what: &str) -> Result<Value, String> {
    match value::from_slice(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(format!(
            "the line{what} is {}; each line must be a JSON object",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) if value::duplicate_member(&e).is_some() => Err(format!(
            "{}{what} (column {}); a record may have each member name once",
            value::duplicate_member(&e).unwrap_or_default(),
            e.column()
        )),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            Err(format!(
                "not valid JSON{what} at column {}: {msg}",
                e.column()
            ))
        }
    }
}

impl Iterator for JsonLinesSource {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_line() {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(source) => {
                self.done = true;
                return Some(Err(SourceError::Io {
                    path: self.path.clone(),
                    cause: source,
                }));
            }
        }
        self.row += 1;
        let pos = RowPos {
            row: self.row,
            line: self.line,
        };
        if self.over {
            let mut preview = std::mem::take(&mut self.buf);
            cut_at_char(&mut preview);
            self.buf = Vec::with_capacity(1024);
            self.origins.note(self.row, None);
            return Some(Ok(SourceItem::Bad(BadRecord::over_long(
                pos, self.len, self.max, preview, "the line",
            ))));
        }
        let (item, origin) = parse_line(pos, &self.buf);
        self.origins.note(self.row, origin);
        Some(Ok(item))
    }
}

impl RecordSource for JsonLinesSource {
    fn columns(&self) -> Option<&[String]> {
        None
    }
    fn origin_rows(&self) -> Option<OriginRows> {
        Some(self.origins.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn read_all(bytes: &[u8]) -> Vec<SourceItem> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        let options = SourceOptions {
            format: super::super::Format::JsonLines,
            ..SourceOptions::default()
        };
        JsonLinesSource::open(f.path(), &options)
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
    }

    fn record(item: &SourceItem) -> (RowPos, Value) {
        match item {
            SourceItem::Record(Record {
                pos,
                data: RecordData::Json(v),
            }) => (*pos, v.clone()),
            other => panic!("expected a JSON record, got {other:?}"),
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

    #[test]
    fn one_object_per_line_blank_lines_skipped() {
        let items = read_all(b"{\"a\":1}\n\n  \t\n{\"a\":2}\r\n{\"a\":3}");
        assert_eq!(items.len(), 3);
        assert_eq!(record(&items[0]), (pos(1, 1), json!({"a": 1})));
        assert_eq!(record(&items[1]), (pos(2, 4), json!({"a": 2})));
        assert_eq!(record(&items[2]), (pos(3, 5), json!({"a": 3})));
    }

    #[test]
    fn empty_file_has_no_records() {
        assert!(read_all(b"").is_empty());
        assert!(read_all(b"\n\r\n").is_empty());
    }

    #[test]
    fn bom_is_skipped() {
        let items = read_all(b"\xEF\xBB\xBF{\"a\":1}\n");
        assert_eq!(record(&items[0]), (pos(1, 1), json!({"a": 1})));
    }

    #[test]
    fn malformed_lines_are_bad_and_reading_continues() {
        let items = read_all(b"{\"a\":1}\n\n{\"a\" 2}\r\n{\"a\":\n[1,2]\n{\"a\":3}\n");
        assert_eq!(items.len(), 5);
        let b = bad(&items[1]);
        assert_eq!(b.pos, pos(2, 3));
        assert_eq!(b.reason, "not valid JSON at column 6: expected `:`");
        assert_eq!(b.raw, b"{\"a\" 2}");
        let b = bad(&items[2]);
        assert_eq!(b.pos, pos(3, 4));
        assert_eq!(
            b.reason,
            "not valid JSON at column 5: EOF while parsing a value"
        );
        assert_eq!(b.raw, b"{\"a\":");
        let b = bad(&items[3]);
        assert_eq!(
            b.reason,
            "the line is an array; each line must be a JSON object"
        );
        assert_eq!(b.raw, b"[1,2]");
        assert_eq!(record(&items[4]), (pos(5, 6), json!({"a": 3})));
    }

    #[test]
    fn reject_envelopes_are_unwrapped() {
        let data = concat!(
            r#"{"row": 4, "error": "bad date", "record": {"Name": "A", "Born": "1990-02-30"}}"#,
            "\n",
            r#"{"error": "x", "raw": "{\"Name\": \"B\"}", "row": 9}"#,
            "\n",
            r#"{"row": 5, "error": "x", "raw": "{\"Name\": "}"#,
            "\n",
            r#"{"row": 6, "error": "x", "raw": "7"}"#,
            "\n",
            // Not envelopes: a member too many, `record` not an object.
            r#"{"row": 1, "error": "x", "record": {"a": 1}, "extra": 1}"#,
            "\n",
            r#"{"row": 1, "error": "x", "record": 5}"#,
            "\n",
        );
        let items = read_all(data.as_bytes());
        assert_eq!(items.len(), 6);
        assert_eq!(
            record(&items[0]),
            (pos(1, 1), json!({"Name": "A", "Born": "1990-02-30"}))
        );
        assert_eq!(record(&items[1]), (pos(2, 2), json!({"Name": "B"})));
        let b = bad(&items[2]);
        assert_eq!(b.pos, pos(3, 3));
        assert_eq!(
            b.reason,
            "not valid JSON (the 'raw' of a rejects-file line) at column 9: EOF \
             while parsing a value"
        );
        assert_eq!(b.raw, b"{\"Name\": ");
        let b = bad(&items[3]);
        assert_eq!(
            b.reason,
            "the line (the \'raw\' of a rejects-file line) is a number; each line must be a \
             JSON object"
        );
        assert_eq!(b.raw, b"7");
        assert_eq!(
            record(&items[4]).1,
            json!({"row": 1, "error": "x", "record": {"a": 1}, "extra": 1})
        );
        assert_eq!(
            record(&items[5]).1,
            json!({"row": 1, "error": "x", "record": 5})
        );
    }

    fn generated(data: super::super::Generated, max: usize) -> JsonLinesSource {
        let options = SourceOptions {
            format: super::super::Format::JsonLines,
            max_record_bytes: max,
            ..SourceOptions::default()
        };
        JsonLinesSource::from_reader(Path::new("big.jsonl"), Box::new(data), &options).unwrap()
    }

    #[test]
    fn an_over_long_line_is_rejected_and_reading_goes_on_at_the_next_line() {
        const MIB: usize = 1024 * 1024;
        let data = super::super::Generated::new()
            .then(b"{\"a\":1}\n{\"s\":\"")
            .repeat(&[b'x'; 1000], 30_000)
            .then(b"\"}\r\n{\"a\":3}\n");
        let mut src = generated(data, MIB);
        assert_eq!(
            record(&src.next().unwrap().unwrap()),
            (pos(1, 1), json!({"a": 1}))
        );
        let item = src.next().unwrap().unwrap();
        let b = bad(&item);
        assert_eq!(b.pos, pos(2, 2));
        let len = 30_000_000 + 9;
        assert_eq!(
            b.reason,
            format!(
                "the line is {len} bytes long, more than the limit of 1048576 bytes \
                 (max_record_bytes in the mapping's [source]); it was not read"
            )
        );
        assert_eq!(b.cut, Some(len));
        assert_eq!(b.raw.len(), super::super::PREVIEW_BYTES);
        assert!(b.raw.starts_with(b"{\"s\":\"xxx"));
        assert_eq!(
            record(&src.next().unwrap().unwrap()),
            (pos(3, 3), json!({"a": 3}))
        );
        assert!(src.next().is_none());
        assert!(src.peak <= MIB, "peak {}", src.peak);
        // A line of nothing but whitespace is blank however long.
        let data = super::super::Generated::new()
            .repeat(b"    ", 1000)
            .then(b"\n{\"a\":1}\n");
        let items: Vec<_> = generated(data, 1024).map(Result::unwrap).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(record(&items[0]), (pos(1, 2), json!({"a": 1})));
    }

    #[test]
    fn a_duplicate_member_rejects_the_line_naming_it() {
        let items = read_all(b"{\"a\":1,\"a\":2}\n{\"b\":{\"c\":1,\"c\":1}}\n{\"a\":{\"a\":1}}\n");
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 1));
        assert_eq!(
            b.reason,
            "member 'a' appears twice in the same object (column 13); a record may have each \
             member name once"
        );
        assert_eq!(b.raw, b"{\"a\":1,\"a\":2}");
        assert!(
            bad(&items[1])
                .reason
                .starts_with("member 'c' appears twice")
        );
        assert_eq!(record(&items[2]).1, json!({"a": {"a": 1}}));
        // In a rejects file's `raw`, too.
        let items = read_all(br#"{"row": 4, "error": "x", "raw": "{\"a\":1,\"a\":2}"}"#);
        assert!(bad(&items[0]).reason.starts_with(
            "member 'a' appears twice in the same object (the 'raw' of a rejects-file line)"
        ));
    }

    #[test]
    fn utf16_is_an_encoding_error() {
        let text: Vec<u8> = "{\"a\":1}\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for bytes in [[&[0xFF, 0xFE][..], &text].concat(), text.clone()] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&bytes).unwrap();
            match JsonLinesSource::open(f.path(), &SourceOptions::default()) {
                Err(SourceError::Encoding { reason, .. }) => assert!(
                    reason.starts_with("the file is UTF-16 (little-endian")
                        && reason.ends_with("; JSON is read as UTF-8 only: save it as UTF-8"),
                    "{reason}"
                ),
                other => panic!("expected an encoding error, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn envelopes_note_their_original_row() {
        let data = concat!(
            "{\"plain\": 1}\n",
            r#"{"row": 17, "error": "x", "record": {"a": 1}}"#,
            "\n",
            r#"{"row": "garbled", "error": "x", "record": {"a": 2}}"#,
            "\n",
            r#"{"row": 40, "error": "x", "raw": "{\"a\": "}"#,
            "\n",
            "{\"plain\": 2}\n",
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data.as_bytes()).unwrap();
        let src = JsonLinesSource::open(f.path(), &SourceOptions::default()).unwrap();
        let origins = src.origin_rows().unwrap();
        assert_eq!(src.count(), 5);
        assert_eq!(
            (1..=6).map(|row| origins.get(row)).collect::<Vec<_>>(),
            [None, Some(17), None, Some(40), None, None]
        );
    }

    #[test]
    fn long_lines_cross_buffers() {
        let big = "x".repeat(3 * BUF_SIZE);
        let data = format!("{{\"s\": \"{big}\"}}\r\n{{\"s\": 1}}\n");
        let items = read_all(data.as_bytes());
        assert_eq!(record(&items[0]), (pos(1, 1), json!({ "s": big })));
        assert_eq!(record(&items[1]), (pos(2, 2), json!({"s": 1})));
    }
}
