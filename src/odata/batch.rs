//! `$batch` multipart/mixed request encoding and response decoding (PROTOCOL.md §7), no I/O.
//!
//! [`encode_batch`] turns [`Operation`]s into the request body dvload sends (and
//! `run --dry-run --emit-batches` writes); [`decode_batch_response`] reads what Dataverse answers,
//! and [`BatchResponse::outcomes`] gives every operation its own result.
//!
//! Decisions (PROTOCOL.md §7, §15, §16):
//! - Every part carries `Content-ID: n` (its 1-based index), top-level parts too, so that a
//!   server that echoes them can be correlated by id; top-level parts are still matched by order
//!   when it does not (Dataverse's documented top-level responses echo none).
//! - The change-set boundary reuses the batch id (`changeset_<id>` inside `batch_<id>`): unique,
//!   deterministic for snapshots, and neither delimiter is a prefix of the other.
//! - Part headers that dvload sets itself or that must not be inside a part (`Authorization`,
//!   `Content-ID`, `If-Match`, …) are never written; [`BatchOptions::check`] reports them.
//! - Decoding never trusts `Content-Length` and reads status codes numerically. A response it
//!   cannot read is a [`DecodeError`]: the operations' fate is then unknown, and the writer
//!   decides (resending idempotent upserts is safe, creates are not).

use std::collections::HashMap;
use std::time::Duration;

use uuid::Uuid;

use super::error::{ODataError, parse_retry_after};
use super::multipart::{
    MediaType, header, sniff_boundary, split_headers, split_multipart, split_status_line,
};
use super::operation::{Method, Operation, Precondition};

/// Headers that must never appear inside a batch part (RFC 7230 hop/auth headers, OData §11.7:
/// the outer request's token applies to every part).
const FORBIDDEN_PART_HEADERS: &[&str] = &[
    "authorization",
    "expect",
    "from",
    "max-forwards",
    "range",
    "te",
    "content-type",
    "content-length",
    "content-id",
    "if-match",
    "if-none-match",
];

/// How a batch is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// Send `Prefer: odata.continue-on-error` so that Dataverse runs every part even after a
    /// failure. Ignored when `atomic` is set: a change set is one transaction.
    pub continue_on_error: bool,
    /// Put all operations into one change set: they commit together or not at all.
    pub atomic: bool,
    /// The Web API path, `/api/data/v9.2/`; part request lines are `{api_path}{op.url}`.
    /// A missing trailing `/` is added.
    pub api_path: String,
    /// Headers added to every part, in this order, for example
    /// `MSCRM.BypassCustomPluginExecution: true` (whether headers on the outer request reach the
    /// inner ones is UNVERIFIED, PROTOCOL.md §16, so they go on each part). Headers that must not
    /// be in a part (`Authorization`, …, see [`BatchOptions::check`]) are left out.
    pub part_headers: Vec<(String, String)>,
    /// Ask each upsert (a `PATCH` without precondition) for its record back, with only this
    /// column (`?$select=col` + `Prefer: return=representation`), so that its status tells a
    /// created record (`201`) from an updated one (`200`); a plain upsert answers `204` either
    /// way (PROTOCOL.md §3 item 6, from Microsoft's "Use Upsert to Create or Update a record":
    /// "only with `Prefer: return=representation` do you get `201` (created) vs `200` (updated)").
    /// It costs Dataverse a read per upsert, hence an option.
    pub upsert_select: Option<String>,
}

impl Default for BatchOptions {
    /// Independent parts that all run (`continue_on_error`), no change set, Web API v9.2, no
    /// extra headers: the safe choice for idempotent upserts, where one bad row must not stop
    /// the rest.
    fn default() -> Self {
        BatchOptions {
            continue_on_error: true,
            atomic: false,
            api_path: "/api/data/v9.2/".to_owned(),
            part_headers: Vec::new(),
            upsert_select: None,
        }
    }
}

/// Why [`BatchOptions`] cannot be used as given.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchOptionsError {
    /// A part header that the batch sets itself or that must not be inside a part.
    #[error(
        "header '{0}' cannot be set on batch parts (dvload sets it, or it is not allowed inside a $batch part)"
    )]
    ForbiddenHeader(String),
    /// A header name or value that would break the multipart framing.
    #[error(
        "header '{0}' has an empty name or contains a line break, a colon in its name, or a control character"
    )]
    InvalidHeader(String),
    /// The API path is not an absolute path.
    #[error("api path '{0}' must start with '/' and contain no spaces, line breaks or '?'")]
    InvalidApiPath(String),
    /// The column named for upserts to return is not a column name.
    #[error("'{0}' is not a column name (letters, digits and '_')")]
    InvalidSelect(String),
}

impl BatchOptions {
    /// Checks the options once, before any row is encoded, so that a bad configuration is an
    /// error instead of a silently dropped header.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), BatchOptionsError> {
        let p = &self.api_path;
        if !p.starts_with('/') || p.contains([' ', '\r', '\n', '?', '#']) {
            return Err(BatchOptionsError::InvalidApiPath(p.clone()));
        }
        if let Some(col) = &self.upsert_select {
            if col.is_empty() || !col.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(BatchOptionsError::InvalidSelect(col.clone()));
            }
        }
        for (name, value) in &self.part_headers {
            if !valid_header(name, value) {
                return Err(BatchOptionsError::InvalidHeader(name.clone()));
            }
            if is_forbidden(name) {
                return Err(BatchOptionsError::ForbiddenHeader(name.clone()));
            }
        }
        Ok(())
    }
}

fn is_forbidden(name: &str) -> bool {
    FORBIDDEN_PART_HEADERS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name.trim()))
}

fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && value.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

/// An encoded `$batch` request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// The request's `Content-Type`: `multipart/mixed; boundary="batch_<uuid>"`.
    pub content_type: String,
    /// The other outer headers, in order: `OData-MaxVersion`, `OData-Version`, `Accept`,
    /// `If-None-Match: null` and, with continue-on-error, `Prefer: odata.continue-on-error`.
    /// Not included: `Content-Type` (above), `Content-Length` and `Authorization`, which the
    /// sender adds.
    pub headers: Vec<(String, String)>,
    /// The multipart body, CRLF line endings.
    pub body: Vec<u8>,
    /// The `Content-ID` of each operation, in operation order (`"1"`, `"2"`, …); pass them to
    /// [`BatchResponse::outcomes`].
    pub content_ids: Vec<String>,
    /// Whether the operations are in one change set; pass it to [`BatchResponse::outcomes`].
    pub atomic: bool,
    /// The request path, `/api/data/v9.2/$batch`.
    pub path: String,
}

impl EncodedBatch {
    /// The request as a `.http` file: `POST {org_url}/api/data/v9.2/$batch HTTP/1.1`, the outer
    /// headers, `Content-Type`, `Content-Length`, a blank line and the body, all CRLF, so that
    /// the file is the exact request (without `Authorization`).
    pub fn to_http_file(&self, org_url: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        push(&mut out, "POST ");
        push(&mut out, org_url.trim_end_matches('/'));
        push(&mut out, &self.path);
        push(&mut out, " HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        push_header(&mut out, "Content-Type", &self.content_type);
        push_header(
            &mut out,
            "Content-Length",
            itoa::Buffer::new().format(self.body.len()),
        );
        push(&mut out, "\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

#[inline]
fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Appends a URL to a request line. URLs come percent-encoded (`Operation::url`); should one
/// still hold a space, a control character or a non-ASCII byte, that byte is percent-encoded
/// here so that it cannot break the request line or the multipart framing.
#[inline]
fn push_url(out: &mut Vec<u8>, url: &str) {
    let safe = |b: u8| b.is_ascii_graphic();
    if all_graphic(url.as_bytes()) {
        push(out, url);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in url.bytes() {
        if safe(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// True when every byte is printable ASCII (`!` to `~`); eight bytes at a time, as every URL
/// of every batch is checked.
fn all_graphic(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // A byte below `!` borrows, one above `~` carries into its high bit, one above 0x7F
        // has it set; a borrow or carry crossing into the next byte only follows one of those.
        if (x.wrapping_sub(ONES * 0x21) | x.wrapping_add(ONES) | x) & HIGHS != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|b| b.is_ascii_graphic())
}

#[inline]
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    push(out, name);
    push(out, ": ");
    push(out, value);
    push(out, "\r\n");
}

/// Encodes operations as one `$batch` request (PROTOCOL.md §7.1, §15).
///
/// Every operation becomes one `application/http` part with `Content-ID: n` (its 1-based
/// index, unique in the batch), the request line `METHOD {api_path}{url} HTTP/1.1`,
/// `Content-Type: application/json; type=entry` when it has a body, `If-Match: *` or
/// `If-None-Match: *` from its precondition, then the extra part headers. With `atomic`, all
/// parts go into one change set `changeset_<batch_id>`. The boundary is `batch_<batch_id>`;
/// pass a random id in production and a fixed one in tests.
///
/// Callers keep batches within Dataverse's limit of 1000 operations (PROTOCOL.md §7.2).
pub fn encode_batch<O: std::borrow::Borrow<Operation>>(
    ops: &[O],
    opts: &BatchOptions,
    batch_id: Uuid,
) -> EncodedBatch {
    let mut id_buf = Uuid::encode_buffer();
    let id = batch_id.hyphenated().encode_lower(&mut id_buf);
    let batch_delim = format!("--batch_{id}");
    let changeset_delim = format!("--changeset_{id}");
    let mut api_path = opts.api_path.clone();
    if !api_path.ends_with('/') {
        api_path.push('/');
    }
    let part_headers: Vec<(&str, &str)> = opts
        .part_headers
        .iter()
        .filter(|(n, v)| valid_header(n, v) && !is_forbidden(n))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let atomic = opts.atomic && !ops.is_empty();
    let delim = if atomic {
        &changeset_delim
    } else {
        &batch_delim
    };

    // Size the buffer once: fixed text per part plus the variable parts.
    let extra: usize = part_headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    let per_part = delim.len() + 2 + 102 + 8 + api_path.len() + 11 + 45 + 18 + extra + 4;
    let variable: usize = ops
        .iter()
        .map(|op| {
            let op = op.borrow();
            op.url.len() + op.body.as_ref().map_or(0, String::len)
        })
        .sum();
    let mut out = Vec::with_capacity(variable + ops.len() * per_part + 3 * batch_delim.len() + 96);
    let mut content_ids = Vec::with_capacity(ops.len());
    let mut n = itoa::Buffer::new();

    if atomic {
        push(&mut out, &batch_delim);
        push(
            &mut out,
            "\r\nContent-Type: multipart/mixed; boundary=\"changeset_",
        );
        push(&mut out, id);
        push(&mut out, "\"\r\n\r\n");
    }
    // The fixed text of a part, built once per batch: what comes before its Content-ID, what
    // comes between the Content-ID and the URL (per method), and what follows the URL up to the
    // body (per body presence and precondition).
    let mut part_start = String::with_capacity(delim.len() + 96);
    part_start.push_str(delim);
    part_start.push_str(
        "\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: ",
    );
    let methods = [Method::Post, Method::Patch, Method::Delete];
    let line_starts = methods.map(|m| format!("\r\n\r\n{} {api_path}", m.as_str()));
    let preconditions = [
        Precondition::None,
        Precondition::IfMatchAny,
        Precondition::IfNoneMatchAny,
    ];
    // The options' part headers and the blank line that ends a part's headers.
    let mut extra_headers = String::with_capacity(extra + 2);
    for (name, value) in &part_headers {
        extra_headers.push_str(name);
        extra_headers.push_str(": ");
        extra_headers.push_str(value);
        extra_headers.push_str("\r\n");
    }
    extra_headers.push_str("\r\n");
    let line_ends = [false, true].map(|has_body| {
        preconditions.map(|precondition| {
            let mut end = String::from(" HTTP/1.1\r\n");
            if has_body {
                end.push_str("Content-Type: application/json; type=entry\r\n");
            }
            match precondition {
                Precondition::None => {}
                Precondition::IfMatchAny => end.push_str("If-Match: *\r\n"),
                Precondition::IfNoneMatchAny => end.push_str("If-None-Match: *\r\n"),
            }
            end.push_str(&extra_headers);
            end
        })
    });
    // An upsert asked for its record back (`upsert_select`): `?$select=col` after its URL and
    // `Prefer: return=representation` among its headers (the column was checked to need no
    // encoding).
    let upsert_select = opts.upsert_select.as_deref().map(|col| {
        let mut end = String::from(
            " HTTP/1.1\r\nContent-Type: application/json; type=entry\r\nPrefer: return=representation\r\n",
        );
        end.push_str(&extra_headers);
        (format!("?$select={col}"), end)
    });
    for (i, op) in ops.iter().enumerate() {
        let op: &Operation = op.borrow();
        let cid = n.format(i + 1);
        push(&mut out, &part_start);
        push(&mut out, cid);
        let method = match op.method {
            Method::Post => 0,
            Method::Patch => 1,
            Method::Delete => 2,
        };
        push(&mut out, &line_starts[method]);
        push_url(&mut out, &op.url);
        let precondition = match op.precondition {
            Precondition::None => 0,
            Precondition::IfMatchAny => 1,
            Precondition::IfNoneMatchAny => 2,
        };
        match &upsert_select {
            Some((query, end))
                if op.method == Method::Patch
                    && op.precondition == Precondition::None
                    && op.body.is_some() =>
            {
                push(&mut out, query);
                push(&mut out, end);
            }
            _ => push(
                &mut out,
                &line_ends[usize::from(op.body.is_some())][precondition],
            ),
        }
        if let Some(body) = &op.body {
            push(&mut out, body);
        }
        push(&mut out, "\r\n");
        content_ids.push(cid.to_owned());
    }
    if atomic {
        push(&mut out, &changeset_delim);
        push(&mut out, "--\r\n");
    }
    push(&mut out, &batch_delim);
    push(&mut out, "--\r\n");

    let mut headers = vec![
        ("OData-MaxVersion".to_owned(), "4.0".to_owned()),
        ("OData-Version".to_owned(), "4.0".to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
        ("If-None-Match".to_owned(), "null".to_owned()),
    ];
    if opts.continue_on_error && !opts.atomic {
        headers.push(("Prefer".to_owned(), "odata.continue-on-error".to_owned()));
    }
    EncodedBatch {
        content_type: format!("multipart/mixed; boundary=\"batch_{id}\""),
        headers,
        body: out,
        content_ids,
        atomic: opts.atomic,
        path: format!("{api_path}$batch"),
    }
}

/// One response part: the answer to one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartResponse {
    /// The `Content-ID` the part echoes (Dataverse echoes it inside change sets), without
    /// surrounding `<>`.
    pub content_id: Option<String>,
    /// The part's HTTP status.
    pub status: u16,
    /// The part's HTTP headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The part's body; empty when there is none.
    pub body: Vec<u8>,
    /// Whether the part came inside a change-set (nested multipart) response.
    pub in_changeset: bool,
}

impl PartResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The OData error in the body, when the part failed and the body is
    /// `{"error":{"code","message"}}`.
    #[cfg(test)]
    pub fn error(&self) -> Option<ODataError> {
        if self.is_success() {
            None
        } else {
            ODataError::parse(&self.body)
        }
    }

    /// The error of a failed part: the OData error, or else the body's text (or `HTTP {status}`)
    /// as the message. `None` for a success.
    #[cfg(test)]
    pub fn failure(&self) -> Option<ODataError> {
        (!self.is_success()).then(|| ODataError::from_response(self.status, &self.body))
    }

    /// The URI of the record the part created or updated, from `OData-EntityId` or else
    /// `Location`.
    pub fn entity_id(&self) -> Option<&str> {
        self.header("OData-EntityId")
            .or_else(|| self.header("Location"))
            .filter(|v| !v.is_empty())
    }

    /// The record id in [`PartResponse::entity_id`], when its key is a bare GUID
    /// (`…/accounts(00000000-…)`); `None` for alternate-key URIs.
    #[cfg(test)]
    pub fn entity_guid(&self) -> Option<Uuid> {
        let uri = self.entity_id()?;
        let inner = uri.strip_suffix(')')?;
        let open = inner.rfind('(')?;
        Uuid::try_parse(&inner[open + 1..]).ok()
    }

    /// `Retry-After`, when the part carries one in seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("Retry-After").and_then(parse_retry_after)
    }
}

/// A `$batch` response that was not multipart: the batch as a whole was refused (throttled,
/// unauthorised, malformed) and no operation in it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRejection {
    /// The OData error in the body, when it is one.
    pub error: Option<ODataError>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl BatchRejection {
    /// The error to report: the OData error, or else the body's text (or `HTTP {status}`).
    pub fn failure(&self, status: u16) -> ODataError {
        self.error
            .clone()
            .unwrap_or_else(|| ODataError::from_text(status, self.body.as_bytes()))
    }
}

/// A decoded `$batch` response.
///
/// Either per-part results (`rejection` is `None`; `parts` may still be short when the batch
/// stopped at a failure) or a whole-batch failure (`rejection` is set, `parts` is empty), for
/// example a top-level `429` or `401` with a JSON error. The caller reads `Retry-After` for a
/// whole-batch failure from the outer headers with [`parse_retry_after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResponse {
    /// The outer HTTP status (`200` with continue-on-error; `400` when the batch stopped at a
    /// failing part; `429`, `401`, … when it was refused).
    pub status: u16,
    /// The parts in response order; parts of a change set follow each other with
    /// `in_changeset` set.
    pub parts: Vec<PartResponse>,
    /// Set when the response was not multipart: the batch as a whole failed.
    pub rejection: Option<BatchRejection>,
}

/// Why a `$batch` response could not be read. The operations' fate is then unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A successful status with a body that is not multipart.
    #[error(
        "$batch answered {status} with content type '{content_type}' instead of multipart/mixed"
    )]
    NotMultipart {
        /// The outer status.
        status: u16,
        /// The `Content-Type` received (empty when absent).
        content_type: String,
    },
    /// A multipart content type without a boundary, and none found in the body.
    #[error("$batch response content type '{0}' has no boundary")]
    NoBoundary(String),
    /// The boundary never occurs in the body.
    #[error("$batch response body does not contain its boundary '{0}'")]
    BoundaryNotFound(String),
    /// A part that is not an HTTP response.
    #[error("$batch response part {part}: {reason}")]
    BadPart {
        /// The 1-based index of the part, counting change-set parts.
        part: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Decodes a `$batch` response from its outer status, `Content-Type` and body (PROTOCOL.md
/// §7.4, §7.5, §15).
///
/// Tolerant: the boundary comes from the response's `Content-Type` (quoted or not, any
/// parameter order and case) or, when that is absent, from the body's first delimiter; CRLF or
/// LF; preamble, epilogue and a missing close delimiter; nested `multipart/mixed` change-set
/// responses (one level, as OData allows); `Content-ID` in the MIME headers or the inner ones;
/// reason phrases ignored. A non-multipart response with an error status becomes a
/// [`BatchResponse`] with a [`BatchRejection`].
pub fn decode_batch_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BatchResponse, DecodeError> {
    let media = content_type.map(MediaType::parse);
    let boundary = match &media {
        Some(m) if m.is_multipart() => match m.boundary() {
            Some(b) => Some(b.to_owned()),
            None => Some(sniff_boundary(body).ok_or_else(|| {
                DecodeError::NoBoundary(content_type.unwrap_or_default().to_owned())
            })?),
        },
        Some(m) if !m.essence.is_empty() => None,
        _ => sniff_boundary(body),
    };
    let success = (200..300).contains(&status);
    let rejection = || BatchResponse {
        status,
        parts: Vec::new(),
        rejection: Some(BatchRejection {
            error: ODataError::parse(body),
            body: String::from_utf8_lossy(body).into_owned(),
        }),
    };
    let Some(boundary) = boundary else {
        if success {
            return Err(DecodeError::NotMultipart {
                status,
                content_type: content_type.unwrap_or_default().to_owned(),
            });
        }
        return Ok(rejection());
    };
    let Some(raw_parts) = split_multipart(body, &boundary) else {
        if success {
            return Err(DecodeError::BoundaryNotFound(boundary));
        }
        return Ok(rejection());
    };
    let mut parts = Vec::with_capacity(raw_parts.len());
    for raw in raw_parts {
        decode_part(raw, false, &mut parts)?;
    }
    Ok(BatchResponse {
        status,
        parts,
        rejection: None,
    })
}

/// Decodes one MIME part into `parts`: an HTTP response, or (top level only) a change set.
fn decode_part(
    raw: &[u8],
    in_changeset: bool,
    parts: &mut Vec<PartResponse>,
) -> Result<(), DecodeError> {
    if raw.trim_ascii().is_empty() {
        return Ok(()); // an empty part (stray delimiter): nothing to read
    }
    let index = parts.len() + 1;
    let bad = |reason: String| DecodeError::BadPart {
        part: index,
        reason,
    };
    let (mime, content) = split_headers(raw);
    let media = header(&mime, "Content-Type").map(MediaType::parse);
    if let Some(m) = media.as_ref().filter(|m| m.is_multipart()) {
        if in_changeset {
            return Err(bad("a change set nested inside a change set".to_owned()));
        }
        let boundary = match m.boundary() {
            Some(b) => b.to_owned(),
            None => sniff_boundary(content)
                .ok_or_else(|| bad("nested multipart part without a boundary".to_owned()))?,
        };
        let inner = split_multipart(content, &boundary).ok_or_else(|| {
            bad(format!(
                "nested multipart part does not contain its boundary '{boundary}'"
            ))
        })?;
        for raw in inner {
            decode_part(raw, true, parts)?;
        }
        return Ok(());
    }
    let (status, rest) = split_status_line(content).map_err(bad)?;
    let (headers, body) = split_headers(rest);
    let content_id = header(&mime, "Content-ID")
        .or_else(|| header(&headers, "Content-ID"))
        .map(|c| c.trim_start_matches('<').trim_end_matches('>').to_owned());
    let body = if body.trim_ascii().is_empty() {
        Vec::new()
    } else {
        body.to_vec()
    };
    parts.push(PartResponse {
        content_id,
        status,
        headers,
        body,
        in_changeset,
    });
    Ok(())
}

/// The result of one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Its part came back 2xx (and, in a change set, the change set committed).
    Succeeded {
        /// The part's status (`204`, `201`, `200`).
        status: u16,
        /// `OData-EntityId` (or `Location`) of the record, when given.
        entity_id: Option<String>,
    },
    /// Its own part came back with an error status: this operation failed.
    Failed {
        /// The part's status (`400`, `404`, `412`, `429`, …).
        status: u16,
        /// The error; a non-JSON body becomes the message (see [`PartResponse::failure`]).
        error: ODataError,
        /// The part's `Retry-After`, if any (a `429` part).
        retry_after: Option<Duration>,
    },
    /// The change set holding it failed as a whole and the response does not say which
    /// operation caused it (the OData-spec shape: one `application/http` error part without
    /// `Content-ID` in place of the change set). Nothing in the change set was committed.
    ChangeSetFailed {
        /// The status of the error part.
        status: u16,
        /// The error of the change set.
        error: ODataError,
    },
    /// It did not run, or ran and was rolled back: nothing was written for it.
    NotProcessed(NotProcessed),
}

impl PartOutcome {
    /// Whether the operation's change is committed.
    #[cfg(test)]
    pub fn is_success(&self) -> bool {
        matches!(self, PartOutcome::Succeeded { .. })
    }
}

/// Why an operation has no result of its own. In every case nothing was written for it, so it
/// can be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotProcessed {
    /// The batch stopped at an earlier failing operation (no continue-on-error).
    AfterFailure {
        /// The index of the operation that failed.
        failed_op: Option<usize>,
    },
    /// It was in a change set that another operation made fail, so it was rolled back.
    RolledBack {
        /// The index of the operation that failed, when the response names it.
        failed_op: Option<usize>,
    },
    /// The whole batch was refused ([`BatchResponse::rejection`]).
    BatchRejected,
    /// The response has no part for it and gives no reason (fewer parts than operations).
    Missing,
}

impl BatchResponse {
    /// Whether the batch as a whole was refused (see [`BatchResponse::rejection`]).
    #[cfg(test)]
    pub fn is_rejected(&self) -> bool {
        self.rejection.is_some()
    }

    /// [`BatchResponse::outcomes`] for the batch this response answers.
    pub fn outcomes_of(&self, batch: &EncodedBatch) -> Vec<PartOutcome> {
        self.outcomes(&batch.content_ids, batch.atomic)
    }

    /// Maps the response back to the operations: one outcome per entry of `content_ids` (the
    /// [`EncodedBatch::content_ids`]), in the same order. `atomic` is
    /// [`EncodedBatch::atomic`].
    ///
    /// Top-level parts are matched by `Content-ID` when echoed and otherwise by order;
    /// change-set parts by `Content-ID`. Both change-set failure shapes are understood:
    /// Dataverse's (a nested multipart holding only the failing operation's part, with its
    /// `Content-ID`: that operation is `Failed`, the others `RolledBack`) and the OData spec's
    /// (one error part replacing the change set: `ChangeSetFailed` for all, or `Failed` for the
    /// operation it names by `Content-ID`).
    pub fn outcomes(&self, content_ids: &[String], atomic: bool) -> Vec<PartOutcome> {
        let n = content_ids.len();
        if self.rejection.is_some() {
            return vec![PartOutcome::NotProcessed(NotProcessed::BatchRejected); n];
        }
        let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, id) in content_ids.iter().enumerate() {
            by_id.entry(id.as_str()).or_insert(i);
        }
        let lookup = |part: &PartResponse, result: &[Option<PartOutcome>]| {
            part.content_id
                .as_deref()
                .and_then(|id| by_id.get(id).copied())
                .filter(|&j| result[j].is_none())
        };
        let mut result: Vec<Option<PartOutcome>> = vec![None; n];
        if atomic {
            self.atomic_outcomes(&mut result, lookup)
        } else {
            self.independent_outcomes(&mut result, lookup)
        }
        .into_iter()
        .collect()
    }

    /// Outcomes when every operation was a top-level part.
    fn independent_outcomes(
        &self,
        result: &mut [Option<PartOutcome>],
        lookup: impl Fn(&PartResponse, &[Option<PartOutcome>]) -> Option<usize>,
    ) -> Vec<PartOutcome> {
        let n = result.len();
        let mut cursor = 0;
        let mut last_failed: Option<Option<usize>> = None;
        for part in &self.parts {
            let target = lookup(part, result).or_else(|| {
                if part.in_changeset {
                    return None;
                }
                (cursor..n).find(|&j| result[j].is_none())
            });
            if let Some(j) = target {
                result[j] = Some(own_outcome(part));
                if !part.in_changeset {
                    cursor = j + 1;
                }
            }
            last_failed = (!part.is_success()).then_some(target);
        }
        result
            .iter_mut()
            .enumerate()
            .map(|(j, r)| {
                r.take().unwrap_or(match last_failed {
                    Some(failed_op) if j >= cursor => {
                        PartOutcome::NotProcessed(NotProcessed::AfterFailure { failed_op })
                    }
                    _ => PartOutcome::NotProcessed(NotProcessed::Missing),
                })
            })
            .collect()
    }

    /// Outcomes when all operations were in one change set.
    fn atomic_outcomes(
        &self,
        result: &mut [Option<PartOutcome>],
        lookup: impl Fn(&PartResponse, &[Option<PartOutcome>]) -> Option<usize>,
    ) -> Vec<PartOutcome> {
        let n = result.len();
        let any_failed = self.parts.iter().any(|p| !p.is_success());
        let mut failed_op = None;
        let mut unattributed: Option<&PartResponse> = None;
        let mut cursor = 0;
        for part in &self.parts {
            let target = lookup(part, result).or_else(|| {
                if part.content_id.is_some() {
                    None // names an operation we did not send: ignore it
                } else if n == 1 {
                    result[0].is_none().then_some(0)
                } else if !any_failed {
                    (cursor..n).find(|&j| result[j].is_none())
                } else {
                    None
                }
            });
            match target {
                Some(j) => {
                    cursor = j + 1;
                    if part.is_success() {
                        result[j] = Some(if any_failed {
                            PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: None })
                        } else {
                            own_outcome(part)
                        });
                    } else {
                        failed_op.get_or_insert(j);
                        result[j] = Some(own_outcome(part));
                    }
                }
                None if !part.is_success() => {
                    unattributed.get_or_insert(part);
                }
                None => {}
            }
        }
        result
            .iter_mut()
            .map(|r| match r.take() {
                Some(PartOutcome::NotProcessed(NotProcessed::RolledBack { .. })) => {
                    PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op })
                }
                Some(outcome) => outcome,
                None => match (failed_op, unattributed) {
                    (Some(_), _) => {
                        PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op })
                    }
                    (None, Some(part)) => PartOutcome::ChangeSetFailed {
                        status: part.status,
                        error: ODataError::from_response(part.status, &part.body),
                    },
                    (None, None) => PartOutcome::NotProcessed(NotProcessed::Missing),
                },
            })
            .collect()
    }
}

/// The outcome a part gives the operation it answers.
fn own_outcome(part: &PartResponse) -> PartOutcome {
    if part.is_success() {
        PartOutcome::Succeeded {
            status: part.status,
            entity_id: part.entity_id().map(str::to_owned),
        }
    } else {
        PartOutcome::Failed {
            status: part.status,
            error: ODataError::from_response(part.status, &part.body),
            retry_after: part.retry_after(),
        }
    }
}

#[cfg(test)]
mod tests;
