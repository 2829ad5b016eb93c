//! Dataverse's OData error (`{"error":{"code":"0x…","message":"…"}}`) and the operation response.

use serde_json::json;

/// A response to one Web API operation, independent of the transport (plain HTTP or a `$batch`
/// part). Headers are kept in the order the documentation prints them.
#[derive(Debug, Clone)]
pub struct OpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Canonical URL of the entity created or addressed (`{base}/api/data/v9.2/set(guid)`), used
    /// for `Location` in batches and for `$n` Content-ID references.
    pub entity_id: Option<String>,
}

impl OpResponse {
    /// `204 No Content` with `OData-Version`.
    pub fn no_content() -> Self {
        OpResponse {
            status: 204,
            headers: vec![("OData-Version".into(), "4.0".into())],
            body: Vec::new(),
            entity_id: None,
        }
    }

    /// A JSON body with `Content-Type: application/json; odata.metadata=minimal`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        OpResponse {
            status,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; odata.metadata=minimal".into(),
                ),
                ("OData-Version".into(), "4.0".into()),
            ],
            body: serde_json::to_vec(value).unwrap_or_default(),
            entity_id: None,
        }
    }

    /// Value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the operation failed (status ≥ 400).
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// An error answered as `{"error":{"code":…,"message":…}}` (compose-http-requests-handle-errors.md,
/// PROTOCOL.md §2): `code` is unrelated to the HTTP status and may be empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Dataverse error code (`0x80044331`, `""`, `0x0`, …).
    pub code: String,
    /// Message.
    pub message: String,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    /// An error with status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// 400 with code `0x0`, used for OData-level (URL, payload) validation errors [I6][I7].
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "0x0", message)
    }

    /// 400 with `0x80040203` (the service's InvalidArgument): a parameter, header value or query
    /// document it cannot use.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        ApiError::new(400, "0x80040203", message)
    }

    /// 400 `0x0` for what the service answers and the emulator does not implement, saying so
    /// (`what` names it: "the element link-entity in fetchXml"). See docs/emulator.md.
    pub fn emulator_limit(what: impl std::fmt::Display) -> Self {
        ApiError::bad_request(format!(
            "{what} is not supported by the emulator (see docs/emulator.md)"
        ))
    }

    /// 400 with OData's code for malformed URLs/queries (`0x80060888`, seen for URI literal
    /// errors in microsoft/PowerAppsCodeApps#395).
    pub fn bad_uri(message: impl Into<String>) -> Self {
        ApiError::new(400, "0x80060888", message)
    }

    /// 404 for an unknown segment of the URL.
    pub fn resource_not_found(segment: &str) -> Self {
        ApiError::new(
            404,
            "0x80060888",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// 405 for a method the resource does not support.
    pub fn method_not_allowed(method: &str) -> Self {
        ApiError::new(
            405,
            "0x80060888",
            format!("The requested resource does not support http method '{method}'."),
        )
    }

    /// Renders the error as an operation response: `REQ_ID`, `Content-Type`, `OData-Version`
    /// as in the documented batch error parts (execute-batch-operations-using-web-api.md).
    pub fn into_response(self) -> OpResponse {
        let mut headers = vec![("REQ_ID".to_string(), uuid::Uuid::new_v4().to_string())];
        headers.push((
            "Content-Type".into(),
            "application/json; odata.metadata=minimal".into(),
        ));
        headers.push(("OData-Version".into(), "4.0".into()));
        headers.extend(self.headers);
        let body = json!({"error": {"code": self.code, "message": self.message}});
        OpResponse {
            status: self.status,
            headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            entity_id: None,
        }
    }
}

/// Reason phrase for a status line.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
