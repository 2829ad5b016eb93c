//! The byte-level JSON scanner under the array reader: reads through one buffer, counting bytes
//! and lines, checks syntax (strings and escapes, numbers, literals, nesting) while it skips
//! values, and captures the bytes of a record for serde_json.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::*;

/// The kinds of JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
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
pub(super) struct Scanner {
    pub(super) path: PathBuf,
    pub(super) reader: Box<dyn Read + Send>,
    pub(super) buf: Box<[u8]>,
    pub(super) pos: usize,
    pub(super) len: usize,
    /// Absolute offset of `buf[0]`.
    pub(super) consumed: u64,
    /// Current line (1-based) and the absolute offset where it starts.
    pub(super) line: u64,
    pub(super) line_start: u64,
    /// Bytes of a UTF-8 byte-order mark skipped at the start (0 or 3).
    pub(super) bom: u64,
    /// While capturing, the bytes consumed since `start_capture` go into `cap`: those before
    /// `cap_start` in `buf` are already there.
    pub(super) capturing: bool,
    pub(super) cap_start: usize,
    pub(super) cap: Vec<u8>,
    /// The longest capture kept; past it, `cap` holds the first `PREVIEW_BYTES` only and
    /// `cap_over` is set. `cap_len` counts the capture's bytes, kept or not.
    pub(super) cap_max: usize,
    pub(super) cap_len: u64,
    pub(super) cap_over: bool,
    /// The largest capacity `cap` has had.
    #[cfg(test)]
    pub(super) peak: usize,
    /// Reused stack of open containers for `skip_value` (`true` for an object).
    pub(super) stack: Vec<bool>,
}

impl Scanner {
    pub(super) fn new(path: &Path, reader: Box<dyn Read + Send>, cap_max: usize) -> Scanner {
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

    pub(super) fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    pub(super) fn column(&self) -> u64 {
        self.offset() - self.line_start + 1
    }

    pub(super) fn bom_len(&self) -> u64 {
        self.bom
    }

    /// An error at the current position.
    #[cold]
    pub(super) fn error_here(&self, reason: String) -> SourceError {
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
    pub(super) fn eof_error(&self, expected: &str) -> SourceError {
        self.error_here(format!(
            "the document ends too soon (is the file cut short?): expected {expected}"
        ))
    }

    /// An error for the unexpected byte at the current position.
    #[cold]
    pub(super) fn unexpected(&self, b: u8, expected: &str) -> SourceError {
        let hint = if b == b'\'' {
            " (JSON strings use double quotes)"
        } else {
            ""
        };
        self.error_here(format!("expected {expected}, found {}{hint}", describe(b)))
    }

    /// Reads more of the file once the buffer is consumed; false at its end.
    pub(super) fn fill(&mut self) -> Result<bool, SourceError> {
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
    pub(super) fn peek(&mut self) -> Result<Option<u8>, SourceError> {
        if self.pos == self.len && !self.fill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// The next byte, which must exist (`expected` says what should be there).
    #[inline]
    pub(super) fn peek_some(&mut self, expected: &str) -> Result<u8, SourceError> {
        match self.peek()? {
            Some(b) => Ok(b),
            None => Err(self.eof_error(expected)),
        }
    }

    /// Consumes the byte just peeked.
    #[inline]
    pub(super) fn bump(&mut self) {
        self.pos += 1;
    }

    pub(super) fn expect(&mut self, byte: u8, expected: &str) -> Result<(), SourceError> {
        match self.peek_some(expected)? {
            b if b == byte => {
                self.bump();
                Ok(())
            }
            b => Err(self.unexpected(b, expected)),
        }
    }

    pub(super) fn start_capture(&mut self) {
        self.cap.clear();
        self.cap_len = 0;
        self.cap_over = false;
        self.capturing = true;
        self.cap_start = self.pos;
    }

    pub(super) fn end_capture(&mut self) {
        self.keep(self.cap_start, self.pos);
        self.capturing = false;
    }

    /// Adds `buf[from..to]` to the capture, within `cap_max`.
    pub(super) fn keep(&mut self, from: usize, to: usize) {
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

    pub(super) fn skip_bom(&mut self) -> Result<(), SourceError> {
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
    pub(super) fn skip_ws(&mut self) -> Result<(), SourceError> {
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
    pub(super) fn skip_string_body(&mut self) -> Result<(), SourceError> {
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
    pub(super) fn skip_digits(&mut self, expected: &str) -> Result<(), SourceError> {
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

    pub(super) fn skip_number(&mut self) -> Result<(), SourceError> {
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

    pub(super) fn skip_literal(&mut self, word: &'static str) -> Result<(), SourceError> {
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
    pub(super) fn scalar_or_open(&mut self, expected: &str) -> Result<Kind, SourceError> {
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
    pub(super) fn skip_member_name(&mut self) -> Result<(), SourceError> {
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
    pub(super) fn skip_container_fast(&mut self) -> Result<bool, SourceError> {
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
    pub(super) fn skip_value(&mut self, expected: &str) -> Result<Kind, SourceError> {
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
    pub(super) fn skip_comma(&mut self, expected: &str) -> Result<(), SourceError> {
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
    pub(super) fn unexpected_in_container(&self, b: u8, expected: &str) -> SourceError {
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
    pub(super) fn find_member(&mut self, key: &str) -> Result<bool, SourceError> {
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
    pub(super) fn read_member_name(&mut self) -> Result<String, SourceError> {
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
    pub(super) fn find_element(&mut self, index: u64) -> Result<Option<u64>, SourceError> {
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
    pub(super) fn close_container(&mut self, is_object: bool) -> Result<(), SourceError> {
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
    pub(super) fn array_members(&mut self) -> Vec<String> {
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
