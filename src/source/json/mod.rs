//! JSON array reader: streams the elements of a top-level array or of the array at a JSON pointer.
//!
//! The document is never loaded: a byte-level scanner reads it through one 64 KiB buffer,
//! counting bytes and lines. It walks the pointer (`/data/items`, RFC 6901; `~1` is `/`, `~0` is
//! `~`, a number selects an array element) by skipping every value it does not need, checking
//! its syntax (strings and their escapes, numbers, literals, nesting). Each element of the
//! records array that opens with `{` is found by matching brackets outside strings, copied into
//! one reused buffer and parsed with serde_json, which checks it; only when serde_json refuses
//! it does the scanner check its syntax, to tell a syntax error (fatal, at its exact place) from
//! a sound object with bad content (a bad record).
//!
//! - Record `row` = element index + 1; `line` = the line on which the element starts.
//! - An element that is not an object is a `BadRecord` (its raw bytes kept); reading goes on.
//!   So is an object serde_json refuses although its structure is sound (invalid UTF-8 inside a
//!   string, a lone surrogate escape, nesting deeper than 128): its extent is known, so the next
//!   element can still be read.
//! - A syntax error anywhere else, or a document cut short, is a `SourceError::Json` naming the
//!   0-based byte offset (of the offending byte, or the file's length when it ends too soon), the
//!   line, the column (1-based, counted in bytes) and what was expected. A pointer that leads
//!   nowhere or to something other than an array is a `SourceError::Records`.
//! - After the records array, the rest of the document is read and checked too (the members
//!   after it, the closing brackets), and only whitespace may follow the document.
//! - If an object on the way to the records has the same key twice, the pointer follows the
//!   first. A record with a member name twice (at any depth) is a `BadRecord` naming it.
//! - An element longer than `max_record_bytes` is a `BadRecord` holding its first
//!   `PREVIEW_BYTES` (`cut` set to its length). An object is skipped to its end by matching
//!   brackets outside strings, not kept (its syntax inside is not checked: it is rejected
//!   anyway), and reading goes on after it; if the document ends inside it, that is a
//!   `SourceError::Json` at the end, naming where the element started.
//! - A UTF-8 byte-order mark at the start is skipped (it counts in byte offsets, not in columns).
//!   A UTF-16 byte-order mark, or a NUL every other byte, is a `SourceError::Encoding`.

use super::{
    BadRecord, Record, RecordData, RecordSource, RowPos, SourceError, SourceItem, SourceOptions,
    cut_at_char, keep_capped, utf16_kind, utf16_reason, value,
};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

mod scanner;
use scanner::{Kind, Scanner};

/// Size of the read buffer.
const BUF_SIZE: usize = 64 * 1024;

/// Streams the records of a file.
pub struct JsonArraySource {
    path: PathBuf,
    sc: Scanner,
    /// The containers around the records array, outermost first (`true` for an object).
    enclosing: Vec<bool>,
    /// Elements read so far.
    index: u64,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Just after the array's `[`.
    First,
    /// After an element.
    Next,
    /// The end of the array (and the document) was reached, or a fatal error was returned.
    Done,
}

impl JsonArraySource {
    /// Opens the file and finds the records array (`options.records`, a JSON pointer).
    pub fn open(path: &Path, options: &SourceOptions) -> Result<JsonArraySource, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        JsonArraySource::from_reader(path, Box::new(file), options)
    }

    /// Reads JSON from any reader (standard input, a decompressor); `path` names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn Read + Send>,
        options: &SourceOptions,
    ) -> Result<JsonArraySource, SourceError> {
        let mut src = JsonArraySource {
            path: path.to_path_buf(),
            sc: Scanner::new(path, reader, options.max_record_bytes),
            enclosing: Vec::new(),
            index: 0,
            state: State::First,
        };
        src.find_records(&options.records)?;
        Ok(src)
    }

    fn records_error(&self, reason: String) -> SourceError {
        SourceError::Records {
            path: self.path.clone(),
            reason,
        }
    }

    /// Walks the pointer from the top of the document and consumes the records array's `[`.
    fn find_records(&mut self, pointer: &str) -> Result<(), SourceError> {
        let tokens = parse_pointer(pointer).map_err(|reason| self.records_error(reason))?;
        self.sc.peek()?;
        if let Some(kind) = utf16_kind(&self.sc.buf[..self.sc.len]) {
            return Err(SourceError::Encoding {
                path: self.path.clone(),
                reason: utf16_reason(kind, false),
            });
        }
        self.sc.skip_bom()?;
        let mut here = String::new();
        for token in &tokens {
            self.sc.skip_ws()?;
            let Some(b) = self.sc.peek()? else {
                return Err(self.sc.eof_error(if here.is_empty() {
                    "a JSON value"
                } else {
                    "a value"
                }));
            };
            match b {
                b'{' => {
                    self.sc.bump();
                    self.enclosing.push(true);
                    if !self.sc.find_member(token)? {
                        return Err(self.records_error(format!(
                            "the records pointer '{pointer}' leads nowhere: the object at '{}' \
                             has no member '{token}'",
                            show_pointer(&here)
                        )));
                    }
                }
                b'[' => {
                    let Some(index) = array_index(token) else {
                        return Err(self.records_error(format!(
                            "the records pointer '{pointer}' leads nowhere: '{}' is an array and \
                             '{token}' is not an element index",
                            show_pointer(&here)
                        )));
                    };
                    self.sc.bump();
                    self.enclosing.push(false);
                    if let Some(len) = self.sc.find_element(index)? {
                        return Err(self.records_error(format!(
                            "the records pointer '{pointer}' leads nowhere: the array at '{}' \
                             has {len} element{}",
                            show_pointer(&here),
                            if len == 1 { "" } else { "s" }
                        )));
                    }
                }
                _ => {
                    let kind = self.sc.skip_value("a value")?;
                    return Err(self.records_error(format!(
                        "the records pointer '{pointer}' leads nowhere: '{}' is {}, not an \
                         object or an array",
                        show_pointer(&here),
                        kind.name()
                    )));
                }
            }
            here.push('/');
            here.push_str(&escape_token(token));
        }
        self.sc.skip_ws()?;
        match self.sc.peek()? {
            Some(b'[') => {
                self.sc.bump();
                Ok(())
            }
            None if self.sc.offset() == self.sc.bom_len() => Err(self.sc.error_here(
                "the file is empty; expected a JSON array of records (or an object holding one)"
                    .into(),
            )),
            None => Err(self.sc.eof_error(if pointer.is_empty() {
                "a JSON value"
            } else {
                "a value"
            })),
            Some(b'{') => {
                self.sc.bump();
                let keys = self.sc.array_members();
                let hint = match keys.as_slice() {
                    [] => String::new(),
                    [key] => format!(
                        "; its member '{key}' is an array: set records = \"{here}/{}\" in the \
                         mapping's [source]",
                        escape_token(key)
                    ),
                    keys => format!(
                        "; these members are arrays: {}; set records to the JSON pointer of the \
                         one to read in the mapping's [source]",
                        keys.iter()
                            .map(|k| format!("\"{here}/{}\"", escape_token(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                Err(self.records_error(if pointer.is_empty() {
                    format!(
                        "the document is an object, not an array of records{}",
                        if hint.is_empty() {
                            "; set records = \"/name\" (a JSON pointer to the array of records) \
                             in the mapping's [source]"
                                .to_string()
                        } else {
                            hint
                        }
                    )
                } else {
                    format!(
                        "the records pointer '{pointer}' leads to an object, not an array of \
                         records{hint}"
                    )
                }))
            }
            Some(_) => {
                let kind = self.sc.skip_value("a JSON value")?;
                Err(self.records_error(if pointer.is_empty() {
                    format!("the document is {}, not an array of records", kind.name())
                } else {
                    format!(
                        "the records pointer '{pointer}' leads to {}, not an array of records",
                        kind.name()
                    )
                }))
            }
        }
    }

    /// Reads the next element of the records array, or reaches its end.
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        self.sc.skip_ws()?;
        let after = self.index;
        match (self.state, self.sc.peek()?) {
            (_, Some(b']')) => {
                self.sc.bump();
                self.finish()?;
                return Ok(None);
            }
            (_, None) => {
                return Err(self.sc.eof_error(&if after == 0 {
                    "the first record or ']'".to_string()
                } else {
                    format!("',' or ']' after element {after} of the records array")
                }));
            }
            (State::Next, Some(b',')) => {
                self.sc.bump();
                self.sc.skip_ws()?;
                match self.sc.peek()? {
                    Some(b']') => {
                        return Err(self.sc.error_here(format!(
                            "expected element {} after ',', found ']' (JSON does not allow a \
                             trailing comma)",
                            after + 1
                        )));
                    }
                    None => return Err(self.sc.eof_error(&format!("element {}", after + 1))),
                    Some(_) => {}
                }
            }
            (State::Next, Some(b)) => {
                return Err(self.sc.error_here(format!(
                    "expected ',' or ']' after element {after} of the records array, found {}",
                    describe(b)
                )));
            }
            (_, Some(_)) => {}
        }
        self.state = State::Next;
        self.index += 1;
        let pos = RowPos {
            row: self.index,
            line: self.sc.line,
        };
        let (start, column) = (self.sc.offset(), self.sc.column());
        self.sc.start_capture();
        let kind = if self.sc.peek()? == Some(b'{') {
            // The fast path: find the object's end by its brackets; serde_json checks the rest.
            let complete = self.sc.skip_container_fast()?;
            self.sc.end_capture();
            if !complete && self.sc.cap_over {
                return Err(self.sc.eof_error(&format!(
                    "the end of element {}, which starts at byte offset {start} (line {}) and \
                     is already longer than the limit of {} bytes (max_record_bytes in the \
                     mapping's [source]); is a closing bracket or quote missing?",
                    self.index, pos.line, self.sc.cap_max
                )));
            }
            if !complete {
                return Err(self
                    .check_capture(start, pos.line, column)
                    .unwrap_or_else(|| self.sc.eof_error("the end of the record")));
            }
            Kind::Object
        } else {
            let kind = self.sc.skip_value("a record")?;
            self.sc.end_capture();
            kind
        };
        if self.sc.cap_over {
            let mut preview = std::mem::take(&mut self.sc.cap);
            cut_at_char(&mut preview);
            self.sc.cap = Vec::with_capacity(1024);
            return Ok(Some(SourceItem::Bad(BadRecord::over_long(
                pos,
                self.sc.cap_len,
                self.sc.cap_max,
                preview,
                &format!("element {} (from byte offset {start})", self.index),
            ))));
        }
        if kind != Kind::Object {
            return Ok(Some(SourceItem::Bad(BadRecord::new(
                pos,
                format!(
                    "element {} is {}; each record must be a JSON object",
                    self.index,
                    kind.name()
                ),
                self.sc.cap.clone(),
            ))));
        }
        let e = match value::from_slice(&self.sc.cap) {
            Ok(value) => {
                return Ok(Some(SourceItem::Record(Record {
                    pos,
                    data: RecordData::Json(value),
                })));
            }
            Err(e) => e,
        };
        // A syntax error stops the source; a sound object serde_json refuses is a bad record.
        if let Some(err) = self.check_capture(start, pos.line, column) {
            return Err(err);
        }
        let raw = &self.sc.cap;
        // Locate serde's line/column (within the element) in the file.
        let (rel, nl) = locate(raw, e.line(), e.column());
        let (line, column) = match nl {
            0 => (pos.line, column + rel as u64),
            n => {
                let line_start = raw[..rel].iter().rposition(|&b| b == b'\n').unwrap_or(0);
                (pos.line + n, (rel - line_start) as u64)
            }
        };
        let at = format!(
            "at byte offset {} (line {line}, column {column})",
            start + rel as u64
        );
        let reason = match value::duplicate_member(&e) {
            Some(msg) => format!(
                "element {}: {msg}, {at}; a record may have each member name once",
                self.index
            ),
            None => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg);
                format!("element {} is not valid JSON: {msg} {at}", self.index)
            }
        };
        Ok(Some(SourceItem::Bad(BadRecord::new(
            pos,
            reason,
            raw.clone(),
        ))))
    }

    /// Checks the syntax of the captured element, which started at byte `start`, on `line`, in
    /// `column`: the first syntax error in it, placed in the file, if any.
    #[cold]
    fn check_capture(&self, start: u64, line: u64, column: u64) -> Option<SourceError> {
        let bytes = io::Cursor::new(self.sc.cap.clone());
        let mut check = Scanner::new(&self.path, Box::new(bytes), usize::MAX);
        match check.skip_value("a record") {
            Ok(_) => None,
            Err(SourceError::Json {
                path,
                offset,
                line: l,
                column: c,
                reason,
            }) => Some(SourceError::Json {
                path,
                offset: start + offset,
                line: line + l - 1,
                column: if l == 1 { column + c - 1 } else { c },
                reason,
            }),
            Err(other) => Some(other),
        }
    }

    /// Reads and checks the rest of the document after the records array.
    fn finish(&mut self) -> Result<(), SourceError> {
        while let Some(is_object) = self.enclosing.pop() {
            self.sc.close_container(is_object)?;
        }
        self.sc.skip_ws()?;
        if let Some(b) = self.sc.peek()? {
            let hint = if matches!(b, b'{' | b'[') {
                " (a file of one JSON object per line is JSON Lines: name it .jsonl or set \
                 format = \"jsonl\" in the mapping's [source])"
            } else {
                ""
            };
            return Err(self.sc.error_here(format!(
                "unexpected {} after the end of the JSON document; only whitespace may follow \
                 it{hint}",
                describe(b)
            )));
        }
        Ok(())
    }
}

impl Iterator for JsonArraySource {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        match self.next_item() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

impl RecordSource for JsonArraySource {
    fn columns(&self) -> Option<&[String]> {
        None
    }
}

/// The reference tokens of a JSON pointer.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "the records pointer '{pointer}' must start with '/' (a JSON pointer, such as \
             '/{pointer}')"
        ));
    };
    rest.split('/')
        .map(|t| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(format!(
                                "the records pointer '{pointer}' has a '~' not followed by 0 or 1 \
                                 (write '~0' for '~' and '~1' for '/')"
                            ));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn show_pointer(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

/// A pointer token as an array index (`0`, `17`; not `01`, not `-`).
fn array_index(token: &str) -> Option<u64> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

/// The byte index in `raw` of serde_json's 1-based `line` and `column`, and how many newlines
/// precede it.
fn locate(raw: &[u8], line: usize, column: usize) -> (usize, u64) {
    let mut start = 0;
    let mut newlines = 0;
    for _ in 1..line {
        match raw[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                start += i + 1;
                newlines += 1;
            }
            None => break,
        }
    }
    ((start + column.saturating_sub(1)).min(raw.len()), newlines)
}

/// A byte as a reader would like to see it in a message.
fn describe(b: u8) -> String {
    match b {
        b'\'' => "\"'\"".into(),
        0x21..=0x7E => format!("'{}'", b as char),
        b' ' => "a space".into(),
        b'\t' => "a tab".into(),
        b'\n' => "a line break".into(),
        b'\r' => "a carriage return".into(),
        _ => format!("byte 0x{b:02X}"),
    }
}

#[cfg(test)]
mod tests;
