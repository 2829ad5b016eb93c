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

/// The kinds of JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// A validating, position-tracking reader of JSON syntax over a buffered file.
struct Scanner {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Absolute offset of `buf[0]`.
    consumed: u64,
    /// Current line (1-based) and the absolute offset where it starts.
    line: u64,
    line_start: u64,
    /// Bytes of a UTF-8 byte-order mark skipped at the start (0 or 3).
    bom: u64,
    /// While capturing, the bytes consumed since `start_capture` go into `cap`: those before
    /// `cap_start` in `buf` are already there.
    capturing: bool,
    cap_start: usize,
    cap: Vec<u8>,
    /// The longest capture kept; past it, `cap` holds the first `PREVIEW_BYTES` only and
    /// `cap_over` is set. `cap_len` counts the capture's bytes, kept or not.
    cap_max: usize,
    cap_len: u64,
    cap_over: bool,
    /// The largest capacity `cap` has had.
    #[cfg(test)]
    peak: usize,
    /// Reused stack of open containers for `skip_value` (`true` for an object).
    stack: Vec<bool>,
}

impl Scanner {
    fn new(path: &Path, reader: Box<dyn Read + Send>, cap_max: usize) -> Scanner {
        Scanner {
            path: path.to_path_buf(),
            reader,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            consumed: 0,
            line: 1,
            line_start: 0,
            bom: 0,
            capturing: false,
            cap_start: 0,
            cap: Vec::with_capacity(1024),
            cap_max,
            cap_len: 0,
            cap_over: false,
            #[cfg(test)]
            peak: 0,
            stack: Vec::with_capacity(16),
        }
    }

    fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    fn column(&self) -> u64 {
        self.offset() - self.line_start + 1
    }

    fn bom_len(&self) -> u64 {
        self.bom
    }

    /// An error at the current position.
    #[cold]
    fn error_here(&self, reason: String) -> SourceError {
        SourceError::Json {
            path: self.path.clone(),
            offset: self.offset(),
            line: self.line,
            column: self.column(),
            reason,
        }
    }

    /// The error for a document that ends where `expected` was due.
    #[cold]
    fn eof_error(&self, expected: &str) -> SourceError {
        self.error_here(format!(
            "the document ends too soon (is the file cut short?): expected {expected}"
        ))
    }

    /// An error for the unexpected byte at the current position.
    #[cold]
    fn unexpected(&self, b: u8, expected: &str) -> SourceError {
        let hint = if b == b'\'' {
            " (JSON strings use double quotes)"
        } else {
            ""
        };
        self.error_here(format!("expected {expected}, found {}{hint}", describe(b)))
    }

    /// Reads more of the file once the buffer is consumed; false at its end.
    fn fill(&mut self) -> Result<bool, SourceError> {
        debug_assert_eq!(self.pos, self.len);
        if self.capturing {
            self.keep(self.cap_start, self.len);
            self.cap_start = 0;
        }
        self.consumed += self.len as u64;
        self.pos = 0;
        self.len = 0;
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => {
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Io {
                        path: self.path.clone(),
                        cause: source,
                    });
                }
            }
        }
    }

    /// The next byte, not consumed; `None` at the end of the file.
    #[inline]
    fn peek(&mut self) -> Result<Option<u8>, SourceError> {
        if self.pos == self.len && !self.fill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// The next byte, which must exist (`expected` says what should be there).
    #[inline]
    fn peek_some(&mut self, expected: &str) -> Result<u8, SourceError> {
        match self.peek()? {
            Some(b) => Ok(b),
            None => Err(self.eof_error(expected)),
        }
    }

    /// Consumes the byte just peeked.
    #[inline]
    fn bump(&mut self) {
        self.pos += 1;
    }

    fn expect(&mut self, byte: u8, expected: &str) -> Result<(), SourceError> {
        match self.peek_some(expected)? {
            b if b == byte => {
                self.bump();
                Ok(())
            }
            b => Err(self.unexpected(b, expected)),
        }
    }

    fn start_capture(&mut self) {
        self.cap.clear();
        self.cap_len = 0;
        self.cap_over = false;
        self.capturing = true;
        self.cap_start = self.pos;
    }

    fn end_capture(&mut self) {
        self.keep(self.cap_start, self.pos);
        self.capturing = false;
    }

    /// Adds `buf[from..to]` to the capture, within `cap_max`.
    fn keep(&mut self, from: usize, to: usize) {
        keep_capped(
            &mut self.cap,
            &mut self.cap_len,
            &mut self.cap_over,
            self.cap_max,
            &self.buf[from..to],
        );
        #[cfg(test)]
        {
            self.peak = self.peak.max(self.cap.capacity());
        }
    }

    fn skip_bom(&mut self) -> Result<(), SourceError> {
        for (i, &b) in b"\xEF\xBB\xBF".iter().enumerate() {
            if self.peek()? != Some(b) {
                if i > 0 {
                    return Err(self.error_here(
                        "the file starts with an incomplete byte-order mark; expected a JSON \
                         value"
                            .into(),
                    ));
                }
                return Ok(());
            }
            self.bump();
        }
        self.bom = 3;
        self.line_start = 3;
        Ok(())
    }

    /// Skips spaces, tabs and line breaks, counting lines.
    fn skip_ws(&mut self) -> Result<(), SourceError> {
        loop {
            while self.pos < self.len {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        self.line_start = self.offset();
                    }
                    _ => return Ok(()),
                }
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    /// Skips the rest of a string whose opening quote was consumed.
    fn skip_string_body(&mut self) -> Result<(), SourceError> {
        loop {
            if self.pos == self.len && !self.fill()? {
                return Err(self.eof_error("the end of a string ('\"')"));
            }
            let rest = &self.buf[self.pos..self.len];
            let Some(i) = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            else {
                self.pos = self.len;
                continue;
            };
            self.pos += i;
            match rest[i] {
                b'"' => {
                    self.bump();
                    return Ok(());
                }
                b'\\' => {
                    self.bump();
                    let escape = "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)";
                    match self.peek_some(escape)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.bump(),
                        b'u' => {
                            self.bump();
                            for _ in 0..4 {
                                let b = self.peek_some("a hexadecimal digit (\\uXXXX)")?;
                                if !b.is_ascii_hexdigit() {
                                    return Err(self.unexpected(b, "a hexadecimal digit (\\uXXXX)"));
                                }
                                self.bump();
                            }
                        }
                        b => {
                            return Err(self.error_here(format!(
                                "invalid escape '\\{}' in a string; expected {escape}",
                                char::from(b).escape_default()
                            )));
                        }
                    }
                }
                b => {
                    return Err(self.error_here(format!(
                        "a control character (byte 0x{b:02X}) inside a string; line breaks and \
                         tabs in strings must be written \\n and \\t (is a closing quote \
                         missing?)"
                    )));
                }
            }
        }
    }

    /// Skips one or more digits.
    fn skip_digits(&mut self, expected: &str) -> Result<(), SourceError> {
        let b = self.peek_some(expected)?;
        if !b.is_ascii_digit() {
            return Err(self.unexpected(b, expected));
        }
        while let Some(b) = self.peek()? {
            if !b.is_ascii_digit() {
                break;
            }
            self.bump();
        }
        Ok(())
    }

    fn skip_number(&mut self) -> Result<(), SourceError> {
        if self.peek()? == Some(b'-') {
            self.bump();
        }
        if self.peek()? == Some(b'0') {
            self.bump();
        } else {
            self.skip_digits("a digit")?;
        }
        if self.peek()? == Some(b'.') {
            self.bump();
            self.skip_digits("a digit after the decimal point")?;
        }
        if let Some(b'e' | b'E') = self.peek()? {
            self.bump();
            if let Some(b'+' | b'-') = self.peek()? {
                self.bump();
            }
            self.skip_digits("a digit in the exponent")?;
        }
        Ok(())
    }

    fn skip_literal(&mut self, word: &'static str) -> Result<(), SourceError> {
        for &w in word.as_bytes() {
            match self.peek()? {
                Some(b) if b == w => self.bump(),
                Some(b) => return Err(self.unexpected(b, &format!("'{word}'"))),
                None => return Err(self.eof_error(&format!("'{word}'"))),
            }
        }
        Ok(())
    }

    /// Consumes a whole scalar, or the opening bracket of an object or array.
    fn scalar_or_open(&mut self, expected: &str) -> Result<Kind, SourceError> {
        let b = self.peek_some(expected)?;
        Ok(match b {
            b'{' => {
                self.bump();
                Kind::Object
            }
            b'[' => {
                self.bump();
                Kind::Array
            }
            b'"' => {
                self.bump();
                self.skip_string_body()?;
                Kind::String
            }
            b'-' | b'0'..=b'9' => {
                self.skip_number()?;
                Kind::Number
            }
            b't' => {
                self.skip_literal("true")?;
                Kind::Bool
            }
            b'f' => {
                self.skip_literal("false")?;
                Kind::Bool
            }
            b'n' => {
                self.skip_literal("null")?;
                Kind::Null
            }
            b => return Err(self.unexpected(b, expected)),
        })
    }

    /// Consumes a member name, the colon after it and the whitespace around them.
    fn skip_member_name(&mut self) -> Result<(), SourceError> {
        let expected = "a member name (a string in double quotes)";
        self.expect(b'"', expected)?;
        self.skip_string_body()?;
        self.skip_ws()?;
        self.expect(b':', "':' after the member name")?;
        self.skip_ws()
    }

    /// Skips an object or array, at its opening bracket, by matching brackets outside strings,
    /// without checking the syntax (the caller has serde_json check the bytes captured). False
    /// if the file ends first.
    fn skip_container_fast(&mut self) -> Result<bool, SourceError> {
        let mut depth = 0u32;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            if self.pos == self.len && !self.fill()? {
                return Ok(false);
            }
            let buf = &self.buf[..self.len];
            let mut i = self.pos;
            while i < buf.len() {
                if escaped {
                    escaped = false;
                    i += 1;
                } else if in_string {
                    match buf[i..].iter().position(|&b| b == b'"' || b == b'\\') {
                        None => i = buf.len(),
                        Some(k) => {
                            i += k;
                            if buf[i] == b'\\' {
                                escaped = true;
                            } else {
                                in_string = false;
                            }
                            i += 1;
                        }
                    }
                } else {
                    match buf[i] {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos = i + 1;
                                return Ok(true);
                            }
                        }
                        b'\n' => {
                            self.line += 1;
                            self.line_start = self.consumed + i as u64 + 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            self.pos = buf.len();
        }
    }

    /// Skips one whole value (checking its syntax); whitespace before it must be skipped.
    fn skip_value(&mut self, expected: &str) -> Result<Kind, SourceError> {
        let kind = self.scalar_or_open(expected)?;
        match kind {
            Kind::Object => self.stack.push(true),
            Kind::Array => self.stack.push(false),
            _ => return Ok(kind),
        }
        let mut first = true;
        while let Some(&is_object) = self.stack.last() {
            self.skip_ws()?;
            let close = if is_object { b'}' } else { b']' };
            let b = self.peek_some(match (first, is_object) {
                (true, true) => "a member name or '}'",
                (true, false) => "a value or ']'",
                (false, true) => "',' or '}'",
                (false, false) => "',' or ']'",
            })?;
            if b == close {
                self.bump();
                self.stack.pop();
                first = false;
                continue;
            }
            if !first {
                if b != b',' {
                    let expected = if is_object {
                        "',' or '}'"
                    } else {
                        "',' or ']'"
                    };
                    return Err(self.unexpected_in_container(b, expected));
                }
                self.skip_comma(if is_object {
                    "a member name"
                } else {
                    "a value"
                })?;
            }
            if is_object {
                self.skip_member_name()?;
            }
            match self.scalar_or_open("a value")? {
                Kind::Object => {
                    self.stack.push(true);
                    first = true;
                }
                Kind::Array => {
                    self.stack.push(false);
                    first = true;
                }
                _ => first = false,
            }
        }
        Ok(kind)
    }

    /// Consumes a `,` between members or elements and the whitespace after it; a closing
    /// bracket right after it is a trailing comma.
    fn skip_comma(&mut self, expected: &str) -> Result<(), SourceError> {
        self.bump();
        self.skip_ws()?;
        match self.peek_some(expected)? {
            b @ (b']' | b'}') => Err(self.error_here(format!(
                "expected {expected} after ',', found {} (JSON does not allow a trailing comma)",
                describe(b)
            ))),
            _ => Ok(()),
        }
    }

    /// The error for a byte that is neither a separator nor a closing bracket.
    #[cold]
    fn unexpected_in_container(&self, b: u8, expected: &str) -> SourceError {
        self.error_here(format!(
            "expected {expected}, found {}{}",
            describe(b),
            if b == b'"' {
                " (is a comma missing?)"
            } else {
                ""
            }
        ))
    }

    /// In an object whose `{` was consumed, finds the member `key` and stops at its value.
    /// Returns false (having consumed the whole object) when there is no such member.
    fn find_member(&mut self, key: &str) -> Result<bool, SourceError> {
        let mut first = true;
        loop {
            self.skip_ws()?;
            let b = self.peek_some(if first {
                "a member name or '}'"
            } else {
                "',' or '}'"
            })?;
            if b == b'}' {
                self.bump();
                return Ok(false);
            }
            if !first {
                if b != b',' {
                    return Err(self.unexpected_in_container(b, "',' or '}'"));
                }
                self.skip_comma("a member name")?;
            }
            first = false;
            let name = self.read_member_name()?;
            self.skip_ws()?;
            self.expect(b':', "':' after the member name")?;
            self.skip_ws()?;
            if name == key {
                return Ok(true);
            }
            self.skip_value("a value")?;
        }
    }

    /// Reads a member name (decoded).
    fn read_member_name(&mut self) -> Result<String, SourceError> {
        let b = self.peek_some("a member name (a string in double quotes)")?;
        if b != b'"' {
            return Err(self.unexpected(b, "a member name (a string in double quotes)"));
        }
        let (offset, line, column) = (self.offset(), self.line, self.column());
        self.start_capture();
        self.bump();
        self.skip_string_body()?;
        self.end_capture();
        if self.cap_over {
            return Err(SourceError::Json {
                path: self.path.clone(),
                offset,
                line,
                column,
                reason: format!(
                    "a member name {} bytes long, more than the limit of {} bytes \
                     (max_record_bytes in the mapping's [source])",
                    self.cap_len, self.cap_max
                ),
            });
        }
        serde_json::from_slice(&self.cap).map_err(|e| SourceError::Json {
            path: self.path.clone(),
            offset,
            line,
            column,
            reason: format!("invalid member name: {e}"),
        })
    }

    /// In an array whose `[` was consumed, stops at element `index`. Returns the array's length
    /// (having consumed it all) when it is too short.
    fn find_element(&mut self, index: u64) -> Result<Option<u64>, SourceError> {
        let mut seen = 0;
        loop {
            self.skip_ws()?;
            let b = self.peek_some(if seen == 0 {
                "a value or ']'"
            } else {
                "',' or ']'"
            })?;
            if b == b']' {
                self.bump();
                return Ok(Some(seen));
            }
            if seen > 0 {
                if b != b',' {
                    return Err(self.unexpected_in_container(b, "',' or ']'"));
                }
                self.skip_comma("a value")?;
            }
            if seen == index {
                return Ok(None);
            }
            self.skip_value("a value")?;
            seen += 1;
        }
    }

    /// After a value inside a container, reads (and checks) the rest of the container.
    fn close_container(&mut self, is_object: bool) -> Result<(), SourceError> {
        let (close, expected) = if is_object {
            (b'}', "',' or '}'")
        } else {
            (b']', "',' or ']'")
        };
        loop {
            self.skip_ws()?;
            let b = self.peek_some(expected)?;
            if b == close {
                self.bump();
                return Ok(());
            }
            if b != b',' {
                return Err(self.unexpected_in_container(b, expected));
            }
            self.skip_comma(if is_object {
                "a member name"
            } else {
                "a value"
            })?;
            if is_object {
                self.skip_member_name()?;
            }
            self.skip_value("a value")?;
        }
    }

    /// In an object whose `{` was consumed, the names of the members whose values are arrays
    /// (best effort, for a hint: stops quietly at a syntax error).
    fn array_members(&mut self) -> Vec<String> {
        let mut keys = Vec::new();
        let _ = (|| -> Result<(), SourceError> {
            loop {
                self.skip_ws()?;
                if self.peek()? == Some(b',') {
                    self.bump();
                    self.skip_ws()?;
                }
                if self.peek()? != Some(b'"') {
                    return Ok(());
                }
                let name = self.read_member_name()?;
                self.skip_ws()?;
                self.expect(b':', "':'")?;
                self.skip_ws()?;
                if self.skip_value("a value")? == Kind::Array {
                    keys.push(name);
                }
            }
        })();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn write_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn with_pointer(records: &str) -> SourceOptions {
        SourceOptions {
            format: super::super::Format::Json,
            records: records.into(),
            ..SourceOptions::default()
        }
    }

    fn open_at(bytes: &[u8], records: &str) -> Result<JsonArraySource, SourceError> {
        let f = write_file(bytes);
        JsonArraySource::open(f.path(), &with_pointer(records))
    }

    fn read_all(bytes: &[u8], records: &str) -> Vec<Result<SourceItem, SourceError>> {
        open_at(bytes, records).unwrap().collect()
    }

    fn record(item: &Result<SourceItem, SourceError>) -> (RowPos, serde_json::Value) {
        match item {
            Ok(SourceItem::Record(Record {
                pos,
                data: RecordData::Json(v),
            })) => (*pos, v.clone()),
            other => panic!("expected a JSON record, got {other:?}"),
        }
    }

    fn bad(item: &Result<SourceItem, SourceError>) -> &BadRecord {
        match item {
            Ok(SourceItem::Bad(b)) => b,
            other => panic!("expected a bad record, got {other:?}"),
        }
    }

    /// (offset, line, column, reason) of a `SourceError::Json`.
    fn json_err(e: &SourceError) -> (u64, u64, u64, &str) {
        match e {
            SourceError::Json {
                offset,
                line,
                column,
                reason,
                ..
            } => (*offset, *line, *column, reason.as_str()),
            other => panic!("expected a JSON error, got {other}"),
        }
    }

    fn records_err(e: SourceError) -> String {
        match e {
            SourceError::Records { reason, .. } => reason,
            other => panic!("expected a records error, got {other}"),
        }
    }

    fn pos(row: u64, line: u64) -> RowPos {
        RowPos { row, line }
    }

    #[test]
    fn top_level_array_of_objects() {
        let items = read_all(b"[\n  {\"a\": 1, \"b\": \"x\"},\n  {\"a\": 2}\n]\n", "");
        assert_eq!(items.len(), 2);
        assert_eq!(record(&items[0]), (pos(1, 2), json!({"a": 1, "b": "x"})));
        assert_eq!(record(&items[1]), (pos(2, 3), json!({"a": 2})));
    }

    #[test]
    fn keeps_member_order() {
        let items = read_all(br#"[{"z": 1, "a": 2, "m": 3}]"#, "");
        let (_, v) = record(&items[0]);
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn empty_array_and_bom() {
        assert!(read_all(b"[]", "").is_empty());
        assert!(read_all(b"\xEF\xBB\xBF [ ] \n", "").is_empty());
        let items = read_all(b"\xEF\xBB\xBF[{\"a\":1}]", "");
        assert_eq!(record(&items[0]), (pos(1, 1), json!({"a": 1})));
    }

    #[test]
    fn array_at_a_pointer() {
        let doc = br#"{
  "@odata.context": "https://x/$metadata#accounts",
  "skip": {"value": [1, 2, {"deep": [true, false, null]}], "s": "a \"quoted\" \\ \u00e9"},
  "value": [
    {"name": "A", "n": -1.5e3},
    {"name": "B", "tags": ["x", {"y": null}]}
  ],
  "@odata.nextLink": "https://x/next"
}
"#;
        let items = read_all(doc, "/value");
        assert_eq!(items.len(), 2);
        assert_eq!(
            record(&items[0]),
            // The number as written (no f64 on the way: "Values arrive as written").
            (
                pos(1, 5),
                serde_json::from_str::<serde_json::Value>(r#"{"name": "A", "n": -1.5e3}"#).unwrap()
            )
        );
        assert_eq!(
            record(&items[1]),
            (pos(2, 6), json!({"name": "B", "tags": ["x", {"y": null}]}))
        );
    }

    #[test]
    fn nested_pointer_with_index_and_escapes() {
        let doc = br#"{"data": {"a/b": [{"x": 0}, {"items~": [{"id": 7}]}]}}"#;
        let items = read_all(doc, "/data/a~1b/1/items~0");
        assert_eq!(items.len(), 1);
        assert_eq!(record(&items[0]), (pos(1, 1), json!({"id": 7})));
    }

    #[test]
    fn first_of_duplicate_keys_is_followed() {
        let items = read_all(br#"{"v": [{"a": 1}], "v": [{"a": 2}, {"a": 3}]}"#, "/v");
        assert_eq!(items.len(), 1);
        assert_eq!(record(&items[0]).1, json!({"a": 1}));
    }

    #[test]
    fn non_object_elements_are_bad_and_reading_continues() {
        let items = read_all(
            b"[{\"a\":1},\n 2,\n \"s\", [1, 2], null, true, {\"a\":3}]",
            "",
        );
        assert_eq!(items.len(), 7);
        let b = bad(&items[1]);
        assert_eq!(b.pos, pos(2, 2));
        assert_eq!(
            b.reason,
            "element 2 is a number; each record must be a JSON object"
        );
        assert_eq!(b.raw, b"2");
        assert_eq!(
            bad(&items[2]).reason,
            "element 3 is a string; each record must be a JSON object"
        );
        assert_eq!(bad(&items[2]).raw, b"\"s\"");
        assert_eq!(
            bad(&items[3]).reason,
            "element 4 is an array; each record must be a JSON object"
        );
        assert_eq!(bad(&items[3]).raw, b"[1, 2]");
        assert_eq!(
            bad(&items[4]).reason,
            "element 5 is null; each record must be a JSON object"
        );
        assert_eq!(
            bad(&items[5]).reason,
            "element 6 is a boolean; each record must be a JSON object"
        );
        assert_eq!(record(&items[6]), (pos(7, 3), json!({"a": 3})));
    }

    #[test]
    fn invalid_utf8_inside_an_element_is_bad() {
        let items = read_all(b"[{\"a\": \"x\xFFy\"},\n{\"a\": 2}]", "");
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 1));
        assert!(
            b.reason.starts_with(
                "element 1 is not valid JSON: invalid unicode code point at byte offset"
            ),
            "{}",
            b.reason
        );
        assert_eq!(b.raw, b"{\"a\": \"x\xFFy\"}");
        assert_eq!(record(&items[1]), (pos(2, 2), json!({"a": 2})));
    }

    #[test]
    fn document_cut_short_names_the_end_offset() {
        let doc = b"[{\"a\": 1}, {\"a\": 2}, {\"a\": \"thr";
        let items = read_all(doc, "");
        assert_eq!(items.len(), 3);
        record(&items[0]);
        record(&items[1]);
        let e = items[2].as_ref().err().unwrap();
        assert_eq!(
            json_err(e),
            (
                doc.len() as u64,
                1,
                doc.len() as u64 + 1,
                "the document ends too soon (is the file cut short?): expected the end of a \
                 string ('\"')"
            )
        );
        assert_eq!(
            e.to_string().split_once(": ").unwrap().1,
            format!(
                "byte offset {} (line 1, column {}): the document ends too soon (is the file \
                 cut short?): expected the end of a string ('\"')",
                doc.len(),
                doc.len() + 1
            )
        );
        // Cut between elements.
        let doc = b"[{\"a\": 1},\n";
        let items = read_all(doc, "");
        assert_eq!(
            json_err(items[1].as_ref().err().unwrap()),
            (
                11,
                2,
                1,
                "the document ends too soon (is the file cut short?): expected element 2"
            )
        );
        let items = read_all(b"[{\"a\": 1}", "");
        assert_eq!(
            json_err(items[1].as_ref().err().unwrap()).3,
            "the document ends too soon (is the file cut short?): expected ',' or ']' after \
             element 1 of the records array"
        );
        // Cut before the array closes its enclosing object.
        let items = read_all(b"{\"value\": [{\"a\": 1}]", "/value");
        assert_eq!(items.len(), 2);
        assert_eq!(
            json_err(items[1].as_ref().err().unwrap()),
            (
                20,
                1,
                21,
                "the document ends too soon (is the file cut short?): expected ',' or '}'"
            )
        );
    }

    #[test]
    fn syntax_errors_stop_the_source() {
        let items = read_all(b"[{\"a\": 1} {\"a\": 2}]", "");
        assert_eq!(
            json_err(items[1].as_ref().err().unwrap()),
            (
                10,
                1,
                11,
                "expected ',' or ']' after element 1 of the records array, found '{'"
            )
        );
        assert_eq!(items.len(), 2);
        let items = read_all(b"[{\"a\": 1},]", "");
        assert_eq!(
            json_err(items[1].as_ref().err().unwrap()),
            (
                10,
                1,
                11,
                "expected element 2 after ',', found ']' (JSON does not allow a trailing comma)"
            )
        );
        let items = read_all(b"[\n{\"a\": tru}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()),
            (11, 2, 10, "expected 'true', found '}'")
        );
        let items = read_all(b"[{\"a\": 1 \"b\": 2}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()),
            (
                9,
                1,
                10,
                "expected ',' or '}', found '\"' (is a comma missing?)"
            )
        );
        let items = read_all(b"[{'a': 1}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()).3,
            "expected a member name (a string in double quotes), found \"'\" (JSON strings use \
             double quotes)"
        );
        let items = read_all(b"[{\"a\": \"x\ny\"}]", "");
        assert!(
            json_err(items[0].as_ref().err().unwrap())
                .3
                .starts_with("a control character (byte 0x0A) inside a string")
        );
        let items = read_all(b"[{\"a\": \"\\x\"}]", "");
        assert!(
            json_err(items[0].as_ref().err().unwrap())
                .3
                .starts_with("invalid escape '\\x' in a string")
        );
        let items = read_all(b"[{\"a\": -}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()),
            (8, 1, 9, "expected a digit, found '}'")
        );
        let items = read_all(b"[{\"a\": 1.}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()).3,
            "expected a digit after the decimal point, found '}'"
        );
    }

    #[test]
    fn pretty_printed_elements_have_exact_lines_and_errors() {
        let doc = b"[\n  {\n    \"a\": 1\n  },\n  {\n    \"a\": [1,\n 2]\n  },\n  {\n    \"b\": x\n  }\n]";
        let items = read_all(doc, "");
        assert_eq!(items.len(), 3);
        assert_eq!(record(&items[0]), (pos(1, 2), json!({"a": 1})));
        assert_eq!(record(&items[1]), (pos(2, 5), json!({"a": [1, 2]})));
        let x = doc.iter().position(|&b| b == b'x').unwrap() as u64;
        assert_eq!(
            json_err(items[2].as_ref().err().unwrap()),
            (x, 10, 10, "expected a value, found 'x'")
        );
        // Brackets in strings and escaped quotes do not confuse the search for the end.
        let items = read_all(br#"[{"s": "}]\"{["}, {"t": "\\"}]"#, "");
        assert_eq!(record(&items[0]).1, json!({"s": "}]\"{["}));
        assert_eq!(record(&items[1]).1, json!({"t": "\\"}));
        // A mismatched bracket is found by the check after serde_json refuses the element.
        let items = read_all(b"[{\"a\": [1}]", "");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()),
            (9, 1, 10, "expected ',' or ']', found '}'")
        );
    }

    #[test]
    fn content_after_the_document_is_an_error_unless_whitespace() {
        assert!(
            read_all(b"[{\"a\":1}] \r\n\t ", "")
                .iter()
                .all(|i| i.is_ok())
        );
        let items = read_all(b"[{\"a\":1}]\n[{\"a\":2}]", "");
        let (offset, line, column, reason) = json_err(items[1].as_ref().err().unwrap());
        assert_eq!((offset, line, column), (10, 2, 1));
        assert!(
            reason.starts_with("unexpected '[' after the end of the JSON document; only whitespace may follow it (a file of one JSON object per line is JSON Lines"),
            "{reason}"
        );
        let items = read_all(b"{\"value\": []} x", "/value");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()),
            (
                14,
                1,
                15,
                "unexpected 'x' after the end of the JSON document; only whitespace may follow it"
            )
        );
        // Members after the array are read and checked.
        let items = read_all(b"{\"value\": [], \"next\": [1, }", "/value");
        assert_eq!(
            json_err(items[0].as_ref().err().unwrap()).3,
            "expected a value after ',', found '}' (JSON does not allow a trailing comma)"
        );
    }

    #[test]
    fn pointer_problems_are_records_errors() {
        let e = open_at(br#"{"data": {"x": []}}"#, "/data/items")
            .err()
            .unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/data/items' leads nowhere: the object at '/data' has no member 'items'"
        );
        let e = open_at(br#"{"data": "text"}"#, "/data/items")
            .err()
            .unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/data/items' leads nowhere: '/data' is a string, not an object or an array"
        );
        let e = open_at(br#"{"value": {"a": 1}}"#, "/value").err().unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/value' leads to an object, not an array of records"
        );
        let e = open_at(br#"{"value": 3}"#, "/value").err().unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/value' leads to a number, not an array of records"
        );
        let e = open_at(br#"[[1], [2]]"#, "/5").err().unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/5' leads nowhere: the array at '/' has 2 elements"
        );
        let e = open_at(br#"[[1], [2]]"#, "/x").err().unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer '/x' leads nowhere: '/' is an array and 'x' is not an element index"
        );
        let e = open_at(b"[]", "value").err().unwrap();
        assert_eq!(
            records_err(e),
            "the records pointer 'value' must start with '/' (a JSON pointer, such as '/value')"
        );
    }

    #[test]
    fn top_level_object_suggests_a_pointer() {
        let e = open_at(
            br#"{"@odata.context": "x", "value": [{"a": 1}], "n": 2}"#,
            "",
        )
        .err()
        .unwrap();
        assert_eq!(
            records_err(e),
            "the document is an object, not an array of records; its member 'value' is an array: set records = \"/value\" in the mapping's [source]"
        );
        let e = open_at(br#"{"a": [], "b/c": []}"#, "").err().unwrap();
        assert_eq!(
            records_err(e),
            "the document is an object, not an array of records; these members are arrays: \"/a\", \"/b~1c\"; set records to the JSON pointer of the one to read in the mapping's [source]"
        );
        let e = open_at(br#"{"a": 1}"#, "").err().unwrap();
        assert!(records_err(e).starts_with(
            "the document is an object, not an array of records; set records = \"/name\""
        ));
        let e = open_at(b"\"just text\"", "").err().unwrap();
        assert_eq!(
            records_err(e),
            "the document is a string, not an array of records"
        );
    }

    #[test]
    fn empty_or_broken_start_is_a_json_error() {
        for doc in [&b""[..], b"\xEF\xBB\xBF", b"  \n "] {
            let e = open_at(doc, "").err().unwrap();
            assert!(
                json_err(&e).3.starts_with("the file is empty")
                    || json_err(&e).3.starts_with("the document ends too soon"),
                "{e}"
            );
        }
        let e = open_at(b"", "").err().unwrap();
        assert_eq!(
            json_err(&e),
            (
                0,
                1,
                1,
                "the file is empty; expected a JSON array of records (or an object holding one)"
            )
        );
        let e = open_at(b"\n  x", "").err().unwrap();
        assert_eq!(json_err(&e), (3, 2, 3, "expected a JSON value, found 'x'"));
        let e = open_at(b"{\"value\": ", "/value").err().unwrap();
        assert_eq!(
            json_err(&e),
            (
                10,
                1,
                11,
                "the document ends too soon (is the file cut short?): expected a value"
            )
        );
    }

    #[test]
    fn elements_spanning_buffers() {
        let big = "é".repeat(BUF_SIZE);
        let mut doc = String::from("{\"value\": [\n");
        for i in 0..5 {
            if i > 0 {
                doc.push_str(",\n");
            }
            doc.push_str(&format!(
                "{{\"i\": {i}, \"s\": \"{big}\", \"esc\": \"\\u00e9\\n\"}}"
            ));
        }
        doc.push_str("\n]}");
        let items = read_all(doc.as_bytes(), "/value");
        assert_eq!(items.len(), 5);
        for (i, item) in items.iter().enumerate() {
            let (p, v) = record(item);
            assert_eq!(p, pos(i as u64 + 1, i as u64 + 2));
            assert_eq!(v, json!({"i": i, "s": big, "esc": "é\n"}));
        }
    }

    fn generated(data: super::super::Generated, max: usize) -> JsonArraySource {
        let options = SourceOptions {
            max_record_bytes: max,
            ..with_pointer("")
        };
        JsonArraySource::from_reader(Path::new("big.json"), Box::new(data), &options).unwrap()
    }

    const MIB: usize = 1024 * 1024;

    #[test]
    fn an_over_long_element_is_rejected_and_the_next_one_read_within_the_cap() {
        // A 30 MB text value (with escapes and brackets inside the string), then more records.
        let data = super::super::Generated::new()
            .then(b"[{\"a\": 1},\n {\"big\": \"")
            .repeat(b"[{\\\"x\\\"}] ", 3_000_000)
            .then(b"\", \"n\": [1, {\"m\": 2}]},\n \"")
            .repeat(b"s", 2 * MIB as u64)
            .then(b"\",\n {\"a\": 3}]");
        let mut src = generated(data, MIB);
        assert_eq!(record(&src.next().unwrap()), (pos(1, 1), json!({"a": 1})));
        let item = src.next().unwrap();
        let b = bad(&item);
        assert_eq!(b.pos, pos(2, 2));
        let len = 9 + 30_000_000 + 22;
        assert_eq!(
            b.reason,
            format!(
                "element 2 (from byte offset 12) is {len} bytes long, more than the limit of \
                 1048576 bytes (max_record_bytes in the mapping's [source]); it was not read"
            )
        );
        assert_eq!(b.cut, Some(len));
        assert!(b.raw.starts_with(b"{\"big\": \"[{"));
        assert_eq!(b.raw.len(), super::super::PREVIEW_BYTES);
        // Not an object either: a string element.
        let item = src.next().unwrap();
        let b = bad(&item);
        assert_eq!(b.pos, pos(3, 3));
        assert_eq!(b.cut, Some(2 * MIB as u64 + 2));
        assert_eq!(record(&src.next().unwrap()), (pos(4, 4), json!({"a": 3})));
        assert!(src.next().is_none());
        assert!(src.sc.peak <= MIB, "peak {}", src.sc.peak);
    }

    #[test]
    fn a_document_that_ends_inside_an_over_long_element_stops_naming_where_it_started() {
        // A quote never closed: the rest of the file is inside the string.
        let data = super::super::Generated::new()
            .then(b"[{\"a\": 1}, {\"b\": \"oops}, {\"c\": 2}")
            .repeat(b", {\"c\": 2}", 200_000);
        let mut src = generated(data, MIB);
        record(&src.next().unwrap());
        let err = src.next().unwrap().unwrap_err();
        let (offset, line, _, reason) = json_err(&err);
        assert_eq!(offset, 33 + 10 * 200_000);
        assert_eq!(line, 1);
        assert_eq!(
            reason,
            "the document ends too soon (is the file cut short?): expected the end of element \
             2, which starts at byte offset 11 (line 1) and is already longer than the limit \
             of 1048576 bytes (max_record_bytes in the mapping's [source]); is a closing \
             bracket or quote missing?"
        );
        assert!(src.next().is_none());
        assert!(src.sc.peak <= MIB);
    }

    #[test]
    fn a_duplicate_member_rejects_the_element_naming_it() {
        let items = read_all(
            b"[{\"a\": 1, \"a\": 2},\n {\"x\": {\"b\": 1, \"b\": 1}}, {\"a\": 3}]",
            "",
        );
        let b = bad(&items[0]);
        assert_eq!(b.pos, pos(1, 1));
        assert_eq!(
            b.reason,
            "element 1: member 'a' appears twice in the same object, at byte offset 16 (line 1, \
             column 17); a record may have each member name once"
        );
        assert_eq!(b.raw, b"{\"a\": 1, \"a\": 2}");
        assert!(
            bad(&items[1])
                .reason
                .starts_with("element 2: member 'b' appears twice")
        );
        assert_eq!(record(&items[2]).1, json!({"a": 3}));
    }

    #[test]
    fn utf16_is_an_encoding_error() {
        let text: Vec<u8> = "[{\"a\":1}]"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        for bytes in [[&[0xFE, 0xFF][..], &text].concat(), text.clone()] {
            match open_at(&bytes, "") {
                Err(SourceError::Encoding { reason, .. }) => assert!(
                    reason.starts_with("the file is UTF-16 (big-endian")
                        && reason.ends_with("save it as UTF-8"),
                    "{reason}"
                ),
                other => panic!("expected an encoding error, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let doc = format!("{{\"skip\": {deep}, \"value\": [{{\"a\": 1}}]}}");
        let items = read_all(doc.as_bytes(), "/value");
        assert_eq!(record(&items[0]).1, json!({"a": 1}));
        // Too deep for serde_json inside a record: that record is bad, the next one is read.
        let doc = format!(
            "[{{\"a\": {}{}}}, {{\"b\": 2}}]",
            "[".repeat(200),
            "]".repeat(200)
        );
        let items = read_all(doc.as_bytes(), "");
        assert!(
            bad(&items[0])
                .reason
                .starts_with("element 1 is not valid JSON: recursion limit exceeded")
        );
        assert_eq!(record(&items[1]).1, json!({"b": 2}));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        fn text() -> impl Strategy<Value = String> {
            proptest::string::string_regex("(?s)[a-z\"\\\\/{}\\[\\],:\n\t\u{1} é€😀]{0,8}").unwrap()
        }

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                text().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
                Just(Value::Null),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    proptest::collection::vec((text(), inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn object() -> impl Strategy<Value = Value> {
            proptest::collection::vec((text(), value()), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn written_arrays_read_back_identically(
                objects in proptest::collection::vec(object(), 0..8),
                pretty in any::<bool>(),
                nested in any::<bool>(),
            ) {
                let mut doc = String::new();
                if nested {
                    doc.push_str("{\"skip\": [1, {\"value\": [2]}],\n \"value\": ");
                }
                doc.push_str("[\n");
                let mut lines = Vec::new();
                for (i, o) in objects.iter().enumerate() {
                    if i > 0 {
                        doc.push_str(",\n");
                    }
                    lines.push(doc.matches('\n').count() as u64 + 1);
                    let s = if pretty {
                        serde_json::to_string_pretty(o).unwrap()
                    } else {
                        serde_json::to_string(o).unwrap()
                    };
                    doc.push_str(&s);
                }
                doc.push_str("\n]");
                if nested {
                    doc.push_str(", \"after\": {\"x\": [null]}}");
                }
                doc.push('\n');
                let items = read_all(doc.as_bytes(), if nested { "/value" } else { "" });
                prop_assert_eq!(items.len(), objects.len());
                for (i, item) in items.iter().enumerate() {
                    let (p, v) = record(item);
                    prop_assert_eq!(p, pos(i as u64 + 1, lines[i]));
                    prop_assert_eq!(&v, &objects[i]);
                }
            }
        }
    }
}
