//! `$batch` multipart/mixed request parser (execute-batch-operations-using-web-api.md, OData
//! 11.7; PROTOCOL.md §7.1).
//!
//! Tolerant as the checklist asks: quoted or bare boundaries, CRLF or LF, any header order,
//! `Content-Transfer-Encoding` optional, `Content-Length` ignored, preamble/epilogue ignored.
//! Never panics: malformed input is a [`BatchError`].

/// One HTTP request inside a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `Content-ID` of the MIME part.
    pub content_id: Option<String>,
    /// Request method.
    pub method: String,
    /// Request URL as written (absolute, absolute path, relative, or `$n…`).
    pub url: String,
    /// Inner request headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A top-level item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A request outside any change set.
    Single(Part),
    /// A change set (one transaction).
    ChangeSet(Vec<Part>),
}

impl Item {
    /// Number of operations.
    pub fn len(&self) -> usize {
        match self {
            Item::Single(_) => 1,
            Item::ChangeSet(p) => p.len(),
        }
    }

    /// Whether the item has no operation (an empty change set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A malformed batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// The `boundary` parameter of a `multipart/mixed` content type (quotes optional).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// Splits a multipart body into the raw contents of its parts.
pub fn split<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, BatchError> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    // Delimiter positions: at the start of the body or after a line feed.
    let mut positions = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if (i == 0 || body[i - 1] == b'\n') && &body[i..i + d.len()] == d {
            positions.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    if positions.is_empty() {
        return Err(BatchError(format!(
            "The batch body does not contain the boundary '{boundary}'."
        )));
    }
    let mut parts = Vec::new();
    for (n, &pos) in positions.iter().enumerate() {
        let after = pos + d.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        // Rest of the delimiter line (transport padding) is skipped.
        let line_end = match body[after..].iter().position(|&c| c == b'\n') {
            Some(p) => after + p + 1,
            None => {
                return Err(BatchError(
                    "The batch body ends inside a boundary line.".into(),
                ));
            }
        };
        let Some(&next) = positions.get(n + 1) else {
            return Err(BatchError(format!(
                "The batch body is missing the end boundary '--{boundary}--'."
            )));
        };
        // The line break before the next delimiter belongs to the delimiter.
        let mut end = next;
        if end > line_end && body[end - 1] == b'\n' {
            end -= 1;
            if end > line_end && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(&body[line_end..end.max(line_end)]);
    }
    Err(BatchError(format!(
        "The batch body is missing the end boundary '--{boundary}--'."
    )))
}

/// Parsed header lines.
type Headers = Vec<(String, String)>;

/// Splits `headers CRLF CRLF body`; returns parsed headers and the body.
fn split_headers(raw: &[u8]) -> Result<(Headers, &[u8]), BatchError> {
    let mut headers = Vec::new();
    let mut pos = 0;
    loop {
        let Some(rel) = raw[pos..].iter().position(|&c| c == b'\n') else {
            // No blank line: headers only, empty body.
            let line = String::from_utf8_lossy(&raw[pos..]).trim().to_string();
            if !line.is_empty() {
                headers.push(parse_header(&line)?);
            }
            return Ok((headers, &[]));
        };
        let line = String::from_utf8_lossy(&raw[pos..pos + rel])
            .trim_end_matches('\r')
            .to_string();
        pos += rel + 1;
        if line.trim().is_empty() {
            return Ok((headers, &raw[pos..]));
        }
        headers.push(parse_header(&line)?);
    }
}

fn parse_header(line: &str) -> Result<(String, String), BatchError> {
    let (name, value) = line.split_once(':').ok_or_else(|| {
        BatchError(format!(
            "The header line '{line}' in the batch is not valid."
        ))
    })?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_http_part(raw: &[u8], in_change_set: bool) -> Result<Part, BatchError> {
    let (mime_headers, rest) = split_headers(raw)?;
    let ct = header(&mime_headers, "Content-Type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/http") {
        return Err(BatchError(if in_change_set && boundary(ct).is_some() {
            "Change sets cannot be nested.".into()
        } else {
            format!("The batch part has Content-Type '{ct}'; expected 'application/http'.")
        }));
    }
    let content_id = header(&mime_headers, "Content-ID").map(str::to_string);
    // Skip blank lines before the request line.
    let mut rest = rest;
    while rest.first().is_some_and(|c| *c == b'\r' || *c == b'\n') {
        rest = &rest[1..];
    }
    let line_len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
    let request_line = String::from_utf8_lossy(&rest[..line_len])
        .trim()
        .to_string();
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(url)) = (words.next(), words.next()) else {
        return Err(BatchError(format!(
            "The request line '{request_line}' in the batch is not valid."
        )));
    };
    if !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(BatchError(format!(
            "The request line '{request_line}' in the batch is not valid."
        )));
    }
    let after_line = (line_len + 1).min(rest.len());
    let (headers, body) = split_headers(&rest[after_line..])?;
    Ok(Part {
        content_id,
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body: body.to_vec(),
    })
}

/// Parses a whole `$batch` body given the request's `Content-Type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Item>, BatchError> {
    let Some(b) = boundary(content_type) else {
        return Err(BatchError(format!(
            "The content type '{content_type}' is not valid for a batch request; expected 'multipart/mixed' with a boundary."
        )));
    };
    let mut items = Vec::new();
    for raw in split(body, &b)? {
        let (mime_headers, rest) = split_headers(raw)?;
        let ct = header(&mime_headers, "Content-Type").unwrap_or("");
        if let Some(cs) = boundary(ct) {
            let mut parts = Vec::new();
            for p in split(rest, &cs)? {
                parts.push(parse_http_part(p, true)?);
            }
            items.push(Item::ChangeSet(parts));
        } else {
            items.push(Item::Single(parse_http_part(raw, false)?));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = "preamble\r\n--b1\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--b1\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n--cs\r\nContent-Transfer-Encoding: binary\r\nContent-Type: application/http\r\nContent-ID:1\r\n\r\nPOST /api/data/v9.2/tasks HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{\"subject\":\"a\"}\r\n--cs--\r\n--b1--\r\nepilogue";

    #[test]
    fn parses_both_shapes() {
        let items = parse("multipart/mixed; boundary=\"b1\"", BODY.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        let Item::Single(get) = &items[0] else {
            panic!()
        };
        assert_eq!((get.method.as_str(), get.url.as_str()), ("GET", "accounts"));
        let Item::ChangeSet(parts) = &items[1] else {
            panic!()
        };
        assert_eq!(parts[0].content_id.as_deref(), Some("1"));
        assert_eq!(parts[0].body, b"{\"subject\":\"a\"}");
        let lf = BODY.replace("\r\n", "\n");
        assert_eq!(
            parse("multipart/mixed;boundary=b1", lf.as_bytes()).unwrap(),
            items
        );
    }

    #[test]
    fn rejects_broken_batches() {
        assert!(parse("application/json", b"{}").is_err());
        assert!(
            parse(
                "multipart/mixed; boundary=x",
                b"--x\r\nContent-Type: application/http\r\n\r\nGET a HTTP/1.1\r\n"
            )
            .is_err()
        );
        assert!(parse("multipart/mixed; boundary=x", b"no boundary here").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), ct in ".{0,40}") {
            let _ = parse(&ct, &body);
            let _ = parse("multipart/mixed; boundary=b", &body);
        }

        #[test]
        fn parser_never_panics_on_multipart_like_input(
            pieces in proptest::collection::vec(prop_oneof![
                Just("--b".to_string()), Just("--b--".to_string()), Just("\r\n".to_string()), Just("\n".to_string()),
                Just("Content-Type: application/http".to_string()), Just("Content-Type: multipart/mixed; boundary=c".to_string()),
                Just("--c".to_string()), Just("--c--".to_string()), Just("POST tasks HTTP/1.1".to_string()),
                Just("Content-ID: 1".to_string()), Just("{}".to_string()), "[ -~]{0,10}".prop_map(|s| s)
            ], 0..40)
        ) {
            let body = pieces.concat();
            let _ = parse("multipart/mixed; boundary=b", body.as_bytes());
        }
    }
}
