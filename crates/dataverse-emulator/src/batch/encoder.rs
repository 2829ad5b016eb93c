//! `$batch` response encoder: `batchresponse_<guid>` / `changesetresponse_<guid>` boundaries,
//! one part per operation in request order, `Content-ID` echoed (PROTOCOL.md §7.4), CRLF.

use crate::error::{OpResponse, reason};

/// A response part: a single operation, or a change set's operations with their Content-IDs.
#[derive(Debug)]
pub enum ItemResponse {
    /// Outside change sets.
    Single(OpResponse),
    /// A change set: (Content-ID, response) per part returned.
    ChangeSet(Vec<(Option<String>, OpResponse)>),
}

fn http_message(out: &mut Vec<u8>, r: &OpResponse) {
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status)).as_bytes());
    for (n, v) in &r.headers {
        if n.eq_ignore_ascii_case("OData-EntityId") {
            // Creates inside a batch carry Location as well (execute-batch-operations…md).
            out.extend_from_slice(format!("Location: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out.extend_from_slice(b"\r\n");
}

fn part_headers(out: &mut Vec<u8>, content_id: Option<&str>) {
    out.extend_from_slice(
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n",
    );
    if let Some(id) = content_id {
        out.extend_from_slice(format!("Content-ID: {id}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Encodes the responses; returns the `Content-Type` header value and the body.
pub fn encode(items: &[ItemResponse]) -> (String, Vec<u8>) {
    let boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match item {
            ItemResponse::Single(r) => {
                part_headers(&mut out, None);
                http_message(&mut out, r);
            }
            ItemResponse::ChangeSet(parts) => {
                let cs = format!("changesetresponse_{}", uuid::Uuid::new_v4());
                out.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary={cs}\r\n\r\n").as_bytes(),
                );
                for (id, r) in parts {
                    out.extend_from_slice(format!("--{cs}\r\n").as_bytes());
                    part_headers(&mut out, id.as_deref());
                    http_message(&mut out, r);
                }
                out.extend_from_slice(format!("--{cs}--\r\n").as_bytes());
            }
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), out)
}
