//! JSON Lines reader: one object per line; a malformed line is a `BadRecord`.
//!
//! - Lines end with `\n` or `\r\n`; a line of nothing but whitespace is blank: skipped, not a
//!   record, but counted as a line. A UTF-8 byte-order mark before the first line is skipped.
//! - Record `row` = ordinal among non-blank lines (a malformed line is a row too: it is rejected,
//!   so that rows read = written + rejected + skipped); `line` = the physical line.
//! - A line that is not valid JSON, or not an object, is a `BadRecord` whose raw bytes are the
//!   line (without its terminator); reading goes on.
//! - Replaying a rejects file: a line that is an object with exactly the members `row`, `error`
//!   and `record` (an object) is a dvload reject envelope, and its `record` is the record. With
//!   `raw` (a string) instead of `record`, that string is read as the line's content (and if it
//!   is malformed again, the `BadRecord`'s raw bytes are that string, not the envelope). The
//!   position is always this file's own row and line.
//!
//! The file is read through one 64 KiB buffer and one reused line buffer.

use super::{
    BadRecord, Record, RecordData, RecordSource, RowPos, SourceError, SourceItem, SourceOptions,
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
}

impl JsonLinesSource {
    /// Opens the file.
    pub fn open(path: &Path, options: &SourceOptions) -> Result<JsonLinesSource, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        JsonLinesSource::from_reader(path, Box::new(file), options)
    }

    /// Reads JSON Lines from any reader (standard input, a decompressor); `path` names it in
    /// messages.
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn Read + Send>,
        _options: &SourceOptions,
    ) -> Result<JsonLinesSource, SourceError> {
        Ok(JsonLinesSource {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(BUF_SIZE, reader),
            buf: Vec::with_capacity(1024),
            line: 0,
            row: 0,
            done: false,
        })
    }

    /// Reads the next non-blank line into `buf` (terminator and BOM removed); false at the end.
    fn next_line(&mut self) -> io::Result<bool> {
        loop {
            self.buf.clear();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                return Ok(false);
            }
            self.line += 1;
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
            }
            if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.drain(..3);
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }
}

/// What a line holds.
fn parse_line(pos: RowPos, line: &[u8]) -> SourceItem {
    let value = match parse_object(line, "") {
        Ok(value) => value,
        Err(reason) => {
            return SourceItem::Bad(BadRecord {
                pos,
                reason,
                raw: line.to_vec(),
            });
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
                ("record", Some(Value::Object(_))) | ("raw", Some(Value::String(_)))
            )
    };
    let data = if is_envelope("record") {
        map.swap_remove("record").unwrap_or_default()
    } else if is_envelope("raw") {
        let Some(Value::String(inner)) = map.swap_remove("raw") else {
            unreachable!("checked above");
        };
        match parse_object(inner.as_bytes(), " (the 'raw' of a rejects-file line)") {
            Ok(value) => value,
            Err(reason) => {
                return SourceItem::Bad(BadRecord {
                    pos,
                    reason,
                    raw: inner.into_bytes(),
                });
            }
        }
    } else {
        Value::Object(map)
    };
    SourceItem::Record(Record {
        pos,
        data: RecordData::Json(data),
    })
}

/// Parses `text` as one JSON object; `what` qualifies the line in messages.
fn parse_object(text: &[u8], what: &str) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(text) {
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
                    source,
                }));
            }
        }
        self.row += 1;
        let pos = RowPos {
            row: self.row,
            line: self.line,
        };
        Some(Ok(parse_line(pos, &self.buf)))
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

    #[test]
    fn long_lines_cross_buffers() {
        let big = "x".repeat(3 * BUF_SIZE);
        let data = format!("{{\"s\": \"{big}\"}}\r\n{{\"s\": 1}}\n");
        let items = read_all(data.as_bytes());
        assert_eq!(record(&items[0]), (pos(1, 1), json!({ "s": big })));
        assert_eq!(record(&items[1]), (pos(2, 2), json!({"s": 1})));
    }
}
