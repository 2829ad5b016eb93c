//! OData error bodies (`{"error":{"code","message"}}`, PROTOCOL.md §2) and the `Retry-After` value.

use std::fmt;
use std::time::Duration;

/// The error a Dataverse response carries in `{"error":{"code":"…","message":"…"}}`.
///
/// `code` is unrelated to the HTTP status and is often `""` or `"0x0"`; numeric codes (the
/// decimal form some clients see) are kept as their text. Extra members such as
/// `@Microsoft.PowerApps.CDS.ErrorDetails.*` or the pre-2020 `innererror` are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ODataError {
    /// The error code, for example `0x80044331`; may be empty.
    pub code: String,
    /// The message, verbatim.
    pub message: String,
}

impl ODataError {
    /// Parses an OData error body. Returns `None` when the body is not JSON or has no `error`
    /// object; a missing `code` or `message` becomes `""`. A leading UTF-8 byte-order mark and
    /// surrounding whitespace are tolerated, and so is an OData v3-style
    /// `"message":{"value":"…"}`.
    pub fn parse(body: &[u8]) -> Option<ODataError> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let error = value.get("error")?.as_object()?;
        let code = match error.get("code") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let message = match error.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => o
                .get("value")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        Some(ODataError { code, message })
    }

    /// An error for a failed response whose body is not an OData error: the body's text,
    /// trimmed and cut to 500 characters, or `HTTP {status}` when the body is empty.
    pub fn from_text(status: u16, body: &[u8]) -> ODataError {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("HTTP {status}")
        } else if text.chars().count() > 500 {
            let cut: String = text.chars().take(500).collect();
            format!("{cut}…")
        } else {
            text.to_owned()
        };
        ODataError {
            code: String::new(),
            message,
        }
    }

    /// The error of a failed response: the parsed OData error, or else [`ODataError::from_text`].
    pub fn from_response(status: u16, body: &[u8]) -> ODataError {
        ODataError::parse(body).unwrap_or_else(|| ODataError::from_text(status, body))
    }
}

impl fmt::Display for ODataError {
    /// `message (code 0x80044331)`, or only the message when the code is empty or `0x0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() || self.code == "0x0" {
            f.write_str(&self.message)
        } else {
            write!(f, "{} (code {})", self.message, self.code)
        }
    }
}

/// Parses a `Retry-After` value given in seconds, integer or decimal (`27`, `1.5`).
///
/// The HTTP-date form returns `None` here: turning it into a delay needs a clock, which this
/// module does not read; [`retry_after_at`] takes one.
/// Negative, non-finite or absurd (> 1 day) values also return `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds: f64 = value.parse().ok()?;
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return None;
    }
    Some(Duration::from_secs_f64(seconds))
}

/// A `Retry-After` value in either form RFC 9110 §10.2.3 allows: seconds ([`parse_retry_after`]),
/// or an HTTP date, taken as the time from `now` until then (`now`: the answer's own `Date`
/// when it has one, so that the client's clock does not matter; a date already past is no
/// wait). `None` for anything else.
pub fn retry_after_at(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    if let Some(delay) = parse_retry_after(value) {
        return Some(delay);
    }
    let until = parse_http_date(value)?;
    let wait = now.duration_until(until);
    if wait.is_negative() {
        return Some(Duration::ZERO);
    }
    let wait = Duration::try_from(wait).ok()?;
    (wait.as_secs() <= 86_400).then_some(wait)
}

/// Parses an HTTP date (`Date`, RFC 9110 §5.6.7: `Fri, 04 Dec 2026 10:00:00 GMT`), as servers
/// send it; `None` for anything else.
pub fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::rfc2822::parse(value.trim())
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = parse_http_date("Fri, 04 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after_at("27", now), Some(Duration::from_secs(27)));
        assert_eq!(
            retry_after_at("Fri, 04 Dec 2026 10:00:45 GMT", now),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            retry_after_at("Fri, 04 Dec 2026 09:59:00 GMT", now),
            Some(Duration::ZERO),
            "a date already past is no wait"
        );
        assert_eq!(retry_after_at("Sat, 05 Dec 2026 10:00:01 GMT", now), None);
        assert_eq!(retry_after_at("soon", now), None);
    }

    #[test]
    fn http_dates_parse_to_their_instant() {
        let t = parse_http_date("Fri, 04 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(t.to_string(), "2026-12-04T10:00:00Z");
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn parses_dataverse_error() {
        let e = ODataError::parse(
            br#"{"error":{"code":"0x80044331","message":"A validation error occurred."}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "0x80044331");
        assert_eq!(e.message, "A validation error occurred.");
        assert_eq!(
            e.to_string(),
            "A validation error occurred. (code 0x80044331)"
        );
    }

    #[test]
    fn tolerates_empty_zero_and_numeric_codes_and_annotations() {
        let e = ODataError::parse(
            br#"{"error":{"code":"","message":"account With Id = 1 Does Not Exist"}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "");
        assert_eq!(e.to_string(), "account With Id = 1 Does Not Exist");
        let e = ODataError::parse(br#"{"error":{"code":"0x0","message":"m"}}"#).unwrap();
        assert_eq!(e.to_string(), "m");
        let e = ODataError::parse(br#"{"error":{"code":-2147015902,"message":"m"}}"#).unwrap();
        assert_eq!(e.code, "-2147015902");
        let e = ODataError::parse(
            br#"{"error":{"code":"0x80040265","message":"plugin","@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus":"0","@Microsoft.PowerApps.CDS.HelpLink":"http://x","innererror":{"message":"m","type":"t","stacktrace":"s"}}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "0x80040265");
        assert_eq!(e.message, "plugin");
        let e = ODataError::parse(
            b"\xEF\xBB\xBF {\"error\":{\"message\":{\"lang\":\"en\",\"value\":\"v3\"}}}\r\n",
        )
        .unwrap();
        assert_eq!(
            e,
            ODataError {
                code: String::new(),
                message: "v3".into()
            }
        );
    }

    #[test]
    fn non_errors_are_none() {
        assert!(ODataError::parse(b"").is_none());
        assert!(ODataError::parse(b"<Error message>").is_none());
        assert!(ODataError::parse(br#"{"value":[]}"#).is_none());
        assert!(ODataError::parse(br#"{"error":"x"}"#).is_none());
    }

    #[test]
    fn text_fallback() {
        assert_eq!(ODataError::from_text(502, b"  ").message, "HTTP 502");
        assert_eq!(
            ODataError::from_response(404, b"<Error message>\n").message,
            "<Error message>"
        );
        let long = vec![b'x'; 600];
        assert_eq!(
            ODataError::from_text(400, &long).message.chars().count(),
            501
        );
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("27"), Some(Duration::from_secs(27)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("1e9"), None);
        assert_eq!(parse_retry_after("999999999"), None);
        assert_eq!(parse_retry_after("."), None);
    }
}
