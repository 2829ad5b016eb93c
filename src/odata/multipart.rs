//! Tolerant MIME helpers for `$batch` bodies: media-type parameters, boundary splitting, header
//! blocks and HTTP status lines (RFC 2046 §5.1 as PROTOCOL.md §7.4 and §15 want it read).

/// A parsed media type: `multipart/mixed; boundary="x"` → essence `multipart/mixed`, parameters
/// `[("boundary", "x")]`. Names are lower-cased; values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// `type/subtype`, lower case, trimmed.
    pub essence: String,
    /// Parameters in order, names lower case, values with quotes and escapes removed.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses a `Content-Type` value, tolerating any parameter order, whitespace around `;`
    /// and `=`, quoted or bare values, and parameters without a value (ignored).
    pub fn parse(value: &str) -> MediaType {
        let essence_end = value.find(';').unwrap_or(value.len());
        let essence = value[..essence_end].trim().to_ascii_lowercase();
        let mut params = Vec::new();
        let mut chars = value[essence_end..].chars().peekable();
        loop {
            // At a ';' or the end.
            if chars.next().is_none() {
                break;
            }
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c == ';' {
                    break;
                }
                name.push(c);
                chars.next();
            }
            let name = name.trim().to_ascii_lowercase();
            if !matches!(chars.peek(), Some(&'=')) {
                continue; // a parameter without value, or the end
            }
            chars.next(); // '='
            while matches!(chars.peek(), Some(&(' ' | '\t'))) {
                chars.next();
            }
            let mut val = String::new();
            if matches!(chars.peek(), Some(&'"')) {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                val.push(escaped);
                            }
                        }
                        c => val.push(c),
                    }
                }
                // Skip anything up to the next ';'.
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
                val = val.trim().to_owned();
            }
            if !name.is_empty() {
                params.push((name, val));
            }
        }
        MediaType { essence, params }
    }

    /// The first value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is any `multipart/*` type.
    pub fn is_multipart(&self) -> bool {
        self.essence.starts_with("multipart/")
    }

    /// The non-empty `boundary` parameter.
    pub fn boundary(&self) -> Option<&str> {
        self.param("boundary").filter(|b| !b.is_empty())
    }
}

/// Iterates over the lines of `bytes` as `(start, end_of_content, next_line_start)`, where the
/// content excludes the `\n` or `\r\n` terminator. A last line without terminator is included.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let (mut end, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1),
            None => (bytes.len(), bytes.len()),
        };
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        pos = next;
        Some((start, end, next))
    })
}

/// What a line is with respect to a boundary.
#[derive(Debug, PartialEq, Eq)]
enum Delimiter {
    /// `--boundary` followed only by transport padding.
    Part,
    /// `--boundary--` (anything after the second `--` is tolerated, as in the OData spec's
    /// `---` typo).
    Close,
}

fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        Some(Delimiter::Close)
    } else if rest.iter().all(|&b| b == b' ' || b == b'\t') {
        Some(Delimiter::Part)
    } else {
        None
    }
}

/// Splits a multipart body into its parts' raw bytes (headers + content), ignoring the preamble
/// and epilogue. The line break before each delimiter belongs to the delimiter (RFC 2046), so
/// it is not part of the preceding part. Lines may end in CRLF or bare LF. A body whose close
/// delimiter is missing ends its last part at the end of input. Returns `None` when no
/// delimiter is found at all.
pub(crate) fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
    let boundary = boundary.as_bytes();
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut found = false;
    for (start, end, next) in lines(body) {
        let Some(kind) = delimiter(&body[start..end], boundary) else {
            continue;
        };
        found = true;
        if let Some(ps) = part_start {
            // Drop the line break that precedes the delimiter.
            let mut pe = start;
            if pe > 0 && body[pe - 1] == b'\n' {
                pe -= 1;
                if pe > 0 && body[pe - 1] == b'\r' {
                    pe -= 1;
                }
            }
            parts.push(&body[ps..pe.max(ps)]);
        }
        match kind {
            Delimiter::Part => part_start = Some(next),
            Delimiter::Close => {
                part_start = None;
                break;
            }
        }
    }
    if let Some(ps) = part_start {
        parts.push(&body[ps..]);
    }
    found.then_some(parts)
}

/// Finds a boundary when the Content-Type does not give one: the first line of the body (after
/// blank lines) that starts with `--`, minus a trailing `--`.
pub(crate) fn sniff_boundary(body: &[u8]) -> Option<String> {
    let (start, end, _) = lines(body).find(|&(s, e, _)| !body[s..e].trim_ascii().is_empty())?;
    let line = body[start..end].trim_ascii_end();
    let b = line.strip_prefix(b"--")?;
    let b = b.strip_suffix(b"--").unwrap_or(b);
    if b.is_empty() || b.len() > 200 || !b.iter().all(|&c| c.is_ascii_graphic() || c == b' ') {
        return None;
    }
    Some(String::from_utf8_lossy(b).into_owned())
}

/// Headers as `(name, value)` pairs, names as sent.
pub(crate) type Headers = Vec<(String, String)>;

/// Reads a header block up to the first empty line and returns the headers and what follows.
/// Tolerates LF or CRLF, no space after `:`, folded continuation lines (appended with a space),
/// lines without a colon (ignored) and a block that runs to the end of input.
pub(crate) fn split_headers(bytes: &[u8]) -> (Headers, &[u8]) {
    let mut headers: Headers = Vec::new();
    for (start, end, next) in lines(bytes) {
        let line = &bytes[start..end];
        if line.is_empty() {
            return (headers, &bytes[next..]);
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_owned();
            if !name.is_empty() {
                headers.push((name, value));
            }
        }
    }
    (headers, &bytes[bytes.len()..])
}

/// The first header with this name, case-insensitively.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads an HTTP status line (`HTTP/1.1 204 No Content`, `HTTP 400 Bad Request`), skipping
/// leading blank lines, and returns the status code and what follows the line. Only the number
/// is read; the reason phrase may be anything.
pub(crate) fn split_status_line(bytes: &[u8]) -> Result<(u16, &[u8]), String> {
    for (start, end, next) in lines(bytes) {
        let line = &bytes[start..end];
        if line.trim_ascii().is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let mut tokens = text.split_ascii_whitespace();
        let version = tokens.next().unwrap_or_default();
        if !version
            .get(..4)
            .is_some_and(|v| v.eq_ignore_ascii_case("HTTP"))
        {
            return Err(format!(
                "expected an HTTP status line, found '{}'",
                cut(&text)
            ));
        }
        let code = tokens.next().unwrap_or_default();
        return match code.parse::<u16>() {
            Ok(status) if code.len() == 3 && (100..=999).contains(&status) => {
                Ok((status, &bytes[next..]))
            }
            _ => Err(format!("status line '{}' has no status code", cut(&text))),
        };
    }
    Err("the part holds no HTTP response".to_owned())
}

/// At most 80 characters of `text`, for error messages.
fn cut(text: &str) -> String {
    if text.chars().count() > 80 {
        let mut s: String = text.chars().take(80).collect();
        s.push('…');
        s
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_parameters() {
        let m = MediaType::parse("multipart/mixed; boundary=\"batch_1\"");
        assert_eq!(m.essence, "multipart/mixed");
        assert_eq!(m.boundary(), Some("batch_1"));
        let m = MediaType::parse("Multipart/Mixed;charset=utf-8;BOUNDARY=b_2 ; x");
        assert!(m.is_multipart());
        assert_eq!(m.boundary(), Some("b_2"));
        assert_eq!(m.param("Charset"), Some("utf-8"));
        let m = MediaType::parse("multipart/mixed; boundary = \"a\\\"b;c\" ; q=1");
        assert_eq!(m.boundary(), Some("a\"b;c"));
        assert_eq!(m.param("q"), Some("1"));
        let m = MediaType::parse("application/json");
        assert!(!m.is_multipart());
        assert_eq!(m.boundary(), None);
        assert_eq!(
            MediaType::parse("multipart/mixed; boundary=").boundary(),
            None
        );
        assert_eq!(MediaType::parse("").essence, "");
    }

    #[test]
    fn splits_parts_crlf_and_lf() {
        for nl in ["\n", "\r\n"] {
            let body = format!(
                "preamble{nl}--b{nl}A: 1{nl}{nl}one{nl}--b {nl}{nl}two{nl}{nl}--b--{nl}epilogue{nl}--b{nl}x"
            )
            .into_bytes();
            let parts = split_multipart(&body, "b").unwrap();
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0], format!("A: 1{nl}{nl}one").as_bytes());
            assert_eq!(parts[1], format!("{nl}two{nl}").as_bytes());
        }
    }

    #[test]
    fn boundary_prefix_lines_are_not_delimiters() {
        let body = b"--b\r\n--bc\r\n--b-x\r\nbody\r\n--b---\r\n";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(parts, vec![&b"--bc\r\n--b-x\r\nbody"[..]]);
    }

    #[test]
    fn missing_close_and_missing_boundary() {
        assert_eq!(
            split_multipart(b"--b\nx\n", "b").unwrap(),
            vec![&b"x\n"[..]]
        );
        assert_eq!(split_multipart(b"nothing here", "b"), None);
        assert_eq!(split_multipart(b"", "b"), None);
        assert_eq!(
            split_multipart(b"--b\r\n--b--", "b").unwrap(),
            vec![&b""[..]]
        );
    }

    #[test]
    fn sniffs_boundary() {
        assert_eq!(
            sniff_boundary(b"\r\n--batchresponse_1\r\nx").as_deref(),
            Some("batchresponse_1")
        );
        assert_eq!(sniff_boundary(b"--x--\n").as_deref(), Some("x"));
        assert_eq!(sniff_boundary(b"{\"error\":{}}"), None);
        assert_eq!(sniff_boundary(b"--"), None);
        assert_eq!(sniff_boundary(b""), None);
    }

    #[test]
    fn header_blocks() {
        let (h, rest) =
            split_headers(b"Content-ID:1\r\nX-A:  a\r\n  folded\r\nnocolon\r\n\r\nbody\r\n");
        assert_eq!(
            h,
            vec![
                ("Content-ID".to_owned(), "1".to_owned()),
                ("X-A".to_owned(), "a folded".to_owned())
            ]
        );
        assert_eq!(rest, b"body\r\n");
        assert_eq!(header(&h, "content-id"), Some("1"));
        let (h, rest) = split_headers(b"A: 1\nB: 2");
        assert_eq!(h.len(), 2);
        assert!(rest.is_empty());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            split_status_line(b"HTTP/1.1 204 No Content\r\nA: 1").unwrap(),
            (204, &b"A: 1"[..])
        );
        assert_eq!(
            split_status_line(b"\r\nHTTP/1.1 400 BadRequest\n")
                .unwrap()
                .0,
            400
        );
        assert_eq!(split_status_line(b"HTTP 400 Bad Request").unwrap().0, 400);
        assert_eq!(split_status_line(b"http/1.0 200").unwrap().0, 200);
        assert!(split_status_line(b"HTTP/1.1 20 No").is_err());
        assert!(split_status_line(b"HTTP/1.1 abc").is_err());
        assert!(split_status_line(b"POST /x HTTP/1.1").is_err());
        assert!(split_status_line(b"\r\n\r\n").is_err());
    }
}
