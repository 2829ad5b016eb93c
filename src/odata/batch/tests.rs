//! Tests of `$batch` encoding and decoding: Microsoft's documented responses, a byte-exact
//! request snapshot, encode → fake server → decode round trips, and property tests.

use super::*;
use crate::odata::multipart::{self, MediaType};
use crate::odata::operation::Method;
use crate::source::RowPos;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// helpers

/// Splits a vector file (`# source` line, status line, headers, blank line, body) into the
/// outer status, `Content-Type` and body; `crlf` converts LF to CRLF first.
fn load(text: &str, crlf: bool) -> (u16, Option<String>, Vec<u8>) {
    let text = text.split_once('\n').expect("source line").1;
    let text = if crlf {
        text.replace('\n', "\r\n")
    } else {
        text.to_owned()
    };
    let (status, rest) = multipart::split_status_line(text.as_bytes()).unwrap();
    let (headers, body) = multipart::split_headers(rest);
    let ct = multipart::header(&headers, "Content-Type").map(str::to_owned);
    (status, ct, body.to_vec())
}

/// Decodes a vector both with LF and CRLF, with its own `Content-Type` (or none when the
/// documentation does not print one, so the boundary is sniffed), and checks both agree.
fn decode_vector(text: &str) -> BatchResponse {
    let (status, ct, body) = load(text, false);
    let lf = decode_batch_response(status, ct.as_deref(), &body).unwrap();
    let (status, ct, body) = load(text, true);
    let crlf = decode_batch_response(status, ct.as_deref(), &body).unwrap();
    assert_eq!(normalise(&lf), normalise(&crlf));
    // An explicit Content-Type built from the first delimiter decodes the same.
    if ct.is_none() {
        let boundary = multipart::sniff_boundary(&body).unwrap();
        let explicit = decode_batch_response(
            status,
            Some(&format!("multipart/mixed; boundary={boundary}")),
            &body,
        )
        .unwrap();
        assert_eq!(explicit, crlf);
    }
    crlf
}

/// Bodies with CRLF turned into LF, so that LF and CRLF decodes compare equal.
fn normalise(r: &BatchResponse) -> BatchResponse {
    let mut r = r.clone();
    for p in &mut r.parts {
        p.body = String::from_utf8_lossy(&p.body)
            .replace("\r\n", "\n")
            .into_bytes();
    }
    r
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

fn statuses(r: &BatchResponse) -> Vec<u16> {
    r.parts.iter().map(|p| p.status).collect()
}

fn op(method: Method, url: &str, precondition: Precondition, body: Option<&str>) -> Operation {
    Operation {
        row: RowPos { row: 1, line: 2 },
        method,
        url: url.to_owned(),
        precondition,
        body: body.map(str::to_owned),
        key: String::new(),
        lookups: Vec::new(),
    }
}

const BATCH_ID: &str = "11111111-2222-3333-4444-555555555555";

fn batch_id() -> Uuid {
    Uuid::parse_str(BATCH_ID).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Microsoft's documented responses

const SIMPLE: &str = include_str!("../testdata/batch-simple-no-changeset.response.http");
const CHANGESET: &str = include_str!("../testdata/batch-changeset-with-contentid.response.http");
const REF_IN_BODY: &str = include_str!("../testdata/batch-contentid-ref-in-body.response.http");
const REF_PUT_PROPERTY: &str =
    include_str!("../testdata/batch-contentid-ref-in-url-put-property.response.http");
const REF_PUT_REF: &str =
    include_str!("../testdata/batch-contentid-ref-put-ref-odata-id.response.http");
const PATCH_DOLLAR1: &str =
    include_str!("../testdata/batch-contentid-patch-dollar1-navprop-bind.response.http");
const CONTINUE_ON_ERROR: &str = include_str!("../testdata/batch-continue-on-error.response.http");
const STOPS_AT_FAILURE: &str =
    include_str!("../testdata/batch-error-stops-at-first-failure.response.http");
const SPEC_EXAMPLE: &str = include_str!("../testdata/odata-spec-batch-response-example.http");
const FORWARD_REF: &str =
    include_str!("../testdata/batch-contentid-forward-reference-400.response.txt");
const CHANGESET_FAILURE: &str =
    include_str!("../testdata/DERIVED-batch-changeset-failure.response.http");
const THROTTLED: &str = include_str!("../testdata/DERIVED-429-service-protection.response.http");

#[test]
fn vector_simple_no_changeset() {
    let r = decode_vector(SIMPLE);
    assert_eq!(r.status, 200);
    assert!(!r.is_rejected());
    assert_eq!(statuses(&r), [204, 204, 204, 200]);
    assert!(
        r.parts
            .iter()
            .all(|p| !p.in_changeset && p.content_id.is_none())
    );
    assert_eq!(
        r.parts[0].entity_id(),
        Some("[Organization Uri]/api/data/v9.2/tasks(d31ba648-c592-ed11-aad1-000d3a993550)")
    );
    assert_eq!(
        r.parts[0].entity_guid(),
        Some(Uuid::parse_str("d31ba648-c592-ed11-aad1-000d3a993550").unwrap())
    );
    assert!(r.parts[0].body.is_empty());
    let json: serde_json::Value = serde_json::from_slice(&r.parts[3].body).unwrap();
    assert_eq!(json["value"].as_array().unwrap().len(), 3);
    assert_eq!(
        r.parts[3].header("content-type"),
        Some("application/json; odata.metadata=minimal; odata.streaming=true")
    );
    // Top-level parts map by order.
    let out = r.outcomes(&ids(4), false);
    assert!(out.iter().all(PartOutcome::is_success));
    assert_eq!(
        out[1],
        PartOutcome::Succeeded {
            status: 204,
            entity_id: Some(
                "[Organization Uri]/api/data/v9.2/tasks(d41ba648-c592-ed11-aad1-000d3a993550)"
                    .into()
            )
        }
    );
}

#[test]
fn vector_changeset_with_content_ids() {
    let r = decode_vector(CHANGESET);
    assert_eq!(statuses(&r), [204, 204, 204, 200]);
    let cids: Vec<_> = r.parts.iter().map(|p| p.content_id.as_deref()).collect();
    assert_eq!(cids, [Some("1"), Some("2"), Some("3"), None]);
    let inside: Vec<_> = r.parts.iter().map(|p| p.in_changeset).collect();
    assert_eq!(inside, [true, true, true, false]);
    assert!(
        r.parts[2]
            .entity_id()
            .unwrap()
            .ends_with("tasks(e93ffc82-e292-ed11-aad1-000d3a9933c9)")
    );
}

#[test]
fn vector_content_id_references() {
    for (text, expect_entity) in [
        (REF_IN_BODY, [true, true, true]),
        (PATCH_DOLLAR1, [true, true, true]),
        (REF_PUT_REF, [true, true, false]),
    ] {
        let r = decode_vector(text);
        assert_eq!(r.status, 200);
        assert_eq!(statuses(&r), [204, 204, 204]);
        for (p, entity) in r.parts.iter().zip(expect_entity) {
            assert!(p.in_changeset);
            assert_eq!(p.entity_id().is_some(), entity);
            assert!(p.body.is_empty());
        }
        let out = r.outcomes(&ids(3), true);
        assert!(out.iter().all(PartOutcome::is_success), "{out:?}");
    }
    // "Location:[Organization URI]…" without a space after the colon.
    let r = decode_vector(REF_PUT_PROPERTY);
    assert_eq!(statuses(&r), [204, 204]);
    assert_eq!(
        r.parts[0].header("LOCATION"),
        Some("[Organization URI]/api/data/v9.2/contacts(f8ea5d2c-8c75-e911-a97a-000d3a34a1bd)")
    );
    assert_eq!(r.parts[1].entity_id(), None);
}

#[test]
fn vector_continue_on_error() {
    let r = decode_vector(CONTINUE_ON_ERROR);
    assert_eq!(r.status, 200);
    assert_eq!(statuses(&r), [400, 204, 204]);
    let e = r.parts[0].error().unwrap();
    assert_eq!(e.code, "0x80044331");
    assert!(
        e.message
            .starts_with("A validation error occurred.  The length")
    );
    assert_eq!(
        r.parts[0].header("REQ_ID"),
        Some("de4c5227-4a28-4ebd-8ced-3392ece1697b")
    );
    assert_eq!(r.parts[1].error(), None);
    let out = r.outcomes(&ids(3), false);
    assert!(
        matches!(&out[0], PartOutcome::Failed { status: 400, error, retry_after: None } if error.code == "0x80044331")
    );
    assert!(out[1].is_success() && out[2].is_success());
}

#[test]
fn vector_stops_at_first_failure() {
    let r = decode_vector(STOPS_AT_FAILURE);
    assert_eq!(r.status, 400);
    assert!(!r.is_rejected());
    assert_eq!(statuses(&r), [400]);
    let out = r.outcomes(&ids(3), false);
    assert!(matches!(out[0], PartOutcome::Failed { status: 400, .. }));
    let after = PartOutcome::NotProcessed(NotProcessed::AfterFailure { failed_op: Some(0) });
    assert_eq!(out[1], after);
    assert_eq!(out[2], after);
}

#[test]
fn vector_dataverse_changeset_failure() {
    let r = decode_vector(CHANGESET_FAILURE);
    assert_eq!(r.status, 400);
    assert_eq!(r.parts.len(), 1);
    assert!(r.parts[0].in_changeset);
    assert_eq!(r.parts[0].content_id.as_deref(), Some("2"));
    let out = r.outcomes(&ids(3), true);
    let rolled_back = PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op: Some(1) });
    assert_eq!(out[0], rolled_back);
    assert!(
        matches!(&out[1], PartOutcome::Failed { status: 400, error, .. } if error.message.contains("'name' attribute"))
    );
    assert_eq!(out[2], rolled_back);
}

#[test]
fn vector_odata_spec_example() {
    // Unquoted boundary, parts without Content-Transfer-Encoding, the "---" close typo.
    let r = decode_vector(SPEC_EXAMPLE);
    assert_eq!(statuses(&r), [200, 201, 204, 404]);
    assert_eq!(
        r.parts[1].header("Location"),
        Some("http://host/service.svc/Customer('POIUY')")
    );
    assert_eq!(r.parts[1].content_id.as_deref(), Some("1"));
    assert_eq!(r.parts[3].error(), None);
    assert_eq!(r.parts[3].failure().unwrap().message, "<Error message>");
}

#[test]
fn vector_throttled_batch_is_a_rejection() {
    let (status, ct, body) = load(THROTTLED, true);
    let r = decode_batch_response(status, ct.as_deref(), &body).unwrap();
    assert_eq!(r.status, 429);
    assert!(r.parts.is_empty());
    let rejection = r.rejection.as_ref().unwrap();
    assert_eq!(rejection.error.as_ref().unwrap().code, "0x80072322");
    assert_eq!(
        r.outcomes(&ids(2), false),
        vec![PartOutcome::NotProcessed(NotProcessed::BatchRejected); 2]
    );
    // The writer reads the outer Retry-After itself.
    let (_, rest) =
        multipart::split_status_line(THROTTLED.split_once('\n').unwrap().1.as_bytes()).unwrap();
    let (headers, _) = multipart::split_headers(rest);
    assert_eq!(
        multipart::header(&headers, "retry-after").and_then(parse_retry_after),
        Some(Duration::from_secs(27))
    );
}

#[test]
fn vector_forward_reference_plain_text_400() {
    // Documented only as a status and a message line; served as text it is a rejection.
    let message = FORWARD_REF.lines().nth(2).unwrap();
    let r = decode_batch_response(400, Some("text/plain"), message.as_bytes()).unwrap();
    let rejection = r.rejection.unwrap();
    assert_eq!(rejection.error, None);
    assert_eq!(
        rejection.failure(400).message,
        "Content-ID Reference: '$1' does not exist in the batch context."
    );
}

// ---------------------------------------------------------------------------------------------
// decoding edge cases

#[test]
fn boundary_from_content_type_in_any_form() {
    let body = b"--abc\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n--abc--\r\n";
    for ct in [
        "multipart/mixed; boundary=abc",
        "multipart/mixed; boundary=\"abc\"",
        "Multipart/Mixed;BOUNDARY=abc;charset=utf-8",
        "multipart/mixed; charset=utf-8; Boundary = \"abc\"",
        "multipart/mixed",
    ] {
        let r = decode_batch_response(200, Some(ct), body).unwrap();
        assert_eq!(statuses(&r), [204], "{ct}");
    }
    assert_eq!(
        decode_batch_response(200, Some("multipart/mixed; boundary=zzz"), body),
        Err(DecodeError::BoundaryNotFound("zzz".into()))
    );
    assert!(matches!(
        decode_batch_response(200, Some("multipart/mixed"), b"no delimiter"),
        Err(DecodeError::NoBoundary(_))
    ));
}

#[test]
fn non_multipart_responses() {
    let r = decode_batch_response(
        401,
        Some("application/json"),
        br#"{"error":{"code":"","message":"token expired"}}"#,
    )
    .unwrap();
    assert_eq!(r.rejection.unwrap().error.unwrap().message, "token expired");
    let r = decode_batch_response(503, None, b"").unwrap();
    assert_eq!(
        r.rejection.as_ref().unwrap().failure(503).message,
        "HTTP 503"
    );
    assert!(matches!(
        decode_batch_response(200, Some("text/html"), b"<html>"),
        Err(DecodeError::NotMultipart { status: 200, .. })
    ));
    assert!(matches!(
        decode_batch_response(200, None, b""),
        Err(DecodeError::NotMultipart { .. })
    ));
    // A multipart type whose body lost its boundary, with an error status: a rejection.
    let r =
        decode_batch_response(502, Some("multipart/mixed; boundary=x"), b"Bad Gateway").unwrap();
    assert!(r.is_rejected());
}

#[test]
fn bad_parts_are_errors() {
    let body = b"--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--";
    assert_eq!(
        decode_batch_response(200, Some("multipart/mixed; boundary=b"), body),
        Err(DecodeError::BadPart {
            part: 1,
            reason: "expected an HTTP status line, found 'not http'".into()
        })
    );
    let nested = b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n\r\nHTTP/1.1 204 x\r\n--d--\r\n--c--\r\n--b--";
    assert!(matches!(
        decode_batch_response(200, Some("multipart/mixed; boundary=b"), nested),
        Err(DecodeError::BadPart { .. })
    ));
}

#[test]
fn part_details() {
    let body = "preamble\n--b\nContent-Type: multipart/mixed; boundary=\"c\"\n\n--c\nContent-ID: <7>\n\nHTTP/1.1 429 Too Many Requests\nretry-after: 3\nContent-Type: application/json\n\n{\"error\":{\"code\":\"0x80072326\",\"message\":\"Number of concurrent requests exceeded the limit of 52.\"}}\n--c--\n--b\n\n--b--\nepilogue";
    let r =
        decode_batch_response(200, Some("multipart/mixed;boundary=b"), body.as_bytes()).unwrap();
    assert_eq!(r.parts.len(), 1);
    let p = &r.parts[0];
    assert_eq!(p.content_id.as_deref(), Some("7"));
    assert_eq!(p.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(p.error().unwrap().code, "0x80072326");
    let out = r.outcomes(&["7".to_owned()], true);
    assert!(matches!(
        out[0],
        PartOutcome::Failed {
            status: 429,
            retry_after: Some(d),
            ..
        } if d == Duration::from_secs(3)
    ));
}

// ---------------------------------------------------------------------------------------------
// correlation

fn part(status: u16, content_id: Option<&str>, in_changeset: bool) -> PartResponse {
    PartResponse {
        content_id: content_id.map(str::to_owned),
        status,
        headers: Vec::new(),
        body: Vec::new(),
        in_changeset,
    }
}

fn response(status: u16, parts: Vec<PartResponse>) -> BatchResponse {
    BatchResponse {
        status,
        parts,
        rejection: None,
    }
}

fn kinds(out: &[PartOutcome]) -> Vec<String> {
    out.iter()
        .map(|o| match o {
            PartOutcome::Succeeded { .. } => "ok".to_owned(),
            PartOutcome::Failed { status, .. } => format!("failed {status}"),
            PartOutcome::ChangeSetFailed { .. } => "changeset failed".to_owned(),
            PartOutcome::NotProcessed(NotProcessed::AfterFailure { failed_op }) => {
                format!("after {failed_op:?}")
            }
            PartOutcome::NotProcessed(NotProcessed::RolledBack { failed_op }) => {
                format!("rolled back {failed_op:?}")
            }
            PartOutcome::NotProcessed(NotProcessed::BatchRejected) => "rejected".to_owned(),
            PartOutcome::NotProcessed(NotProcessed::Missing) => "missing".to_owned(),
        })
        .collect()
}

#[test]
fn correlation_table() {
    let cases: Vec<(&str, BatchResponse, bool, Vec<&str>)> = vec![
        (
            "top-level by order",
            response(
                200,
                vec![
                    part(204, None, false),
                    part(404, None, false),
                    part(204, None, false),
                ],
            ),
            false,
            vec!["ok", "failed 404", "ok"],
        ),
        (
            "top-level echoed Content-IDs win over order",
            response(
                200,
                vec![part(204, Some("2"), false), part(400, Some("1"), false)],
            ),
            false,
            vec!["failed 400", "ok"],
        ),
        (
            "stopped at the second op",
            response(400, vec![part(204, None, false), part(412, None, false)]),
            false,
            vec!["ok", "failed 412", "after Some(1)", "after Some(1)"],
        ),
        (
            "fewer parts, no failure",
            response(200, vec![part(204, None, false)]),
            false,
            vec!["ok", "missing"],
        ),
        (
            "no parts at all",
            response(200, vec![]),
            true,
            vec!["missing", "missing"],
        ),
        (
            "change set committed, parts out of order",
            response(
                200,
                vec![part(204, Some("2"), true), part(201, Some("1"), true)],
            ),
            true,
            vec!["ok", "ok"],
        ),
        (
            "Dataverse shape: only the failing part",
            response(400, vec![part(404, Some("3"), true)]),
            true,
            vec!["rolled back Some(2)", "rolled back Some(2)", "failed 404"],
        ),
        (
            "successful parts of a failed change set are rolled back",
            response(
                400,
                vec![part(204, Some("1"), true), part(400, Some("2"), true)],
            ),
            true,
            vec!["rolled back Some(1)", "failed 400", "rolled back Some(1)"],
        ),
        (
            "spec shape without Content-ID",
            response(400, vec![part(400, None, false)]),
            true,
            vec!["changeset failed", "changeset failed"],
        ),
        (
            "spec shape naming the op",
            response(400, vec![part(412, Some("2"), false)]),
            true,
            vec!["rolled back Some(1)", "failed 412"],
        ),
        (
            "single-op change set, error part without Content-ID",
            response(400, vec![part(400, None, false)]),
            true,
            vec!["failed 400"],
        ),
        (
            "unknown Content-ID is ignored",
            response(
                200,
                vec![part(204, Some("99"), true), part(204, Some("1"), true)],
            ),
            true,
            vec!["ok", "missing"],
        ),
    ];
    for (name, r, atomic, expected) in cases {
        let out = r.outcomes(&ids(expected.len()), atomic);
        assert_eq!(kinds(&out), expected, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// encoding

fn two_ops() -> Vec<Operation> {
    vec![
        op(
            Method::Patch,
            "accounts(accountnumber='A-1')",
            Precondition::None,
            Some(r#"{"name":"Contoso"}"#),
        ),
        op(
            Method::Delete,
            "accounts(00000000-0000-0000-0000-000000000001)",
            Precondition::IfMatchAny,
            None,
        ),
    ]
}

fn bypass_options() -> BatchOptions {
    BatchOptions {
        part_headers: vec![("MSCRM.BypassCustomPluginExecution".into(), "true".into())],
        ..BatchOptions::default()
    }
}

#[test]
fn snapshot_two_ops_continue_on_error() {
    let encoded = encode_batch(&two_ops(), &bypass_options(), batch_id());
    let expected = "\
--batch_11111111-2222-3333-4444-555555555555\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 1\r\n\
\r\n\
PATCH /api/data/v9.2/accounts(accountnumber='A-1') HTTP/1.1\r\n\
Content-Type: application/json; type=entry\r\n\
MSCRM.BypassCustomPluginExecution: true\r\n\
\r\n\
{\"name\":\"Contoso\"}\r\n\
--batch_11111111-2222-3333-4444-555555555555\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 2\r\n\
\r\n\
DELETE /api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001) HTTP/1.1\r\n\
If-Match: *\r\n\
MSCRM.BypassCustomPluginExecution: true\r\n\
\r\n\
\r\n\
--batch_11111111-2222-3333-4444-555555555555--\r\n";
    assert_eq!(String::from_utf8(encoded.body.clone()).unwrap(), expected);
    assert_eq!(
        encoded.content_type,
        "multipart/mixed; boundary=\"batch_11111111-2222-3333-4444-555555555555\""
    );
    let headers: Vec<(&str, &str)> = encoded
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("OData-MaxVersion", "4.0"),
            ("OData-Version", "4.0"),
            ("Accept", "application/json"),
            ("If-None-Match", "null"),
            ("Prefer", "odata.continue-on-error"),
        ]
    );
    assert_eq!(encoded.content_ids, ["1", "2"]);
    assert_eq!(encoded.path, "/api/data/v9.2/$batch");
    assert!(!encoded.atomic);
}

#[test]
fn atomic_batch_is_one_changeset() {
    let ops = vec![
        op(Method::Post, "accounts", Precondition::None, Some("{}")),
        op(
            Method::Patch,
            "contacts(emailaddress1='a%40b.c')",
            Precondition::IfNoneMatchAny,
            Some("{\"x\":1}"),
        ),
    ];
    let opts = BatchOptions {
        atomic: true,
        continue_on_error: true,
        api_path: "/api/data/v9.2".into(), // trailing slash added
        part_headers: Vec::new(),
        upsert_select: None,
    };
    let encoded = encode_batch(&ops, &opts, batch_id());
    let expected = "\
--batch_11111111-2222-3333-4444-555555555555\r\n\
Content-Type: multipart/mixed; boundary=\"changeset_11111111-2222-3333-4444-555555555555\"\r\n\
\r\n\
--changeset_11111111-2222-3333-4444-555555555555\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 1\r\n\
\r\n\
POST /api/data/v9.2/accounts HTTP/1.1\r\n\
Content-Type: application/json; type=entry\r\n\
\r\n\
{}\r\n\
--changeset_11111111-2222-3333-4444-555555555555\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 2\r\n\
\r\n\
PATCH /api/data/v9.2/contacts(emailaddress1='a%40b.c') HTTP/1.1\r\n\
Content-Type: application/json; type=entry\r\n\
If-None-Match: *\r\n\
\r\n\
{\"x\":1}\r\n\
--changeset_11111111-2222-3333-4444-555555555555--\r\n\
--batch_11111111-2222-3333-4444-555555555555--\r\n";
    assert_eq!(String::from_utf8(encoded.body.clone()).unwrap(), expected);
    // A change set is a transaction: no continue-on-error.
    assert!(encoded.headers.iter().all(|(n, _)| n != "Prefer"));
    assert!(encoded.atomic);
}

#[test]
fn unencoded_url_bytes_cannot_break_the_request_line() {
    let ops = vec![op(
        Method::Delete,
        "accounts(name='a b\r\nAuthorization: x\u{e9}')",
        Precondition::None,
        None,
    )];
    let encoded = encode_batch(&ops, &BatchOptions::default(), batch_id());
    let text = String::from_utf8(encoded.body).unwrap();
    assert!(text.contains(
        "DELETE /api/data/v9.2/accounts(name='a%20b%0D%0AAuthorization:%20x%C3%A9') HTTP/1.1\r\n"
    ));
}

#[test]
fn empty_batch() {
    let encoded = encode_batch(
        &[] as &[Operation],
        &BatchOptions {
            atomic: true,
            ..BatchOptions::default()
        },
        batch_id(),
    );
    assert_eq!(
        encoded.body,
        b"--batch_11111111-2222-3333-4444-555555555555--\r\n"
    );
    assert!(encoded.content_ids.is_empty());
}

#[test]
fn no_prefer_without_continue_on_error() {
    let opts = BatchOptions {
        continue_on_error: false,
        ..BatchOptions::default()
    };
    let encoded = encode_batch(&two_ops(), &opts, batch_id());
    assert!(encoded.headers.iter().all(|(n, _)| n != "Prefer"));
}

#[test]
fn forbidden_and_invalid_part_headers() {
    let mut opts = bypass_options();
    assert_eq!(opts.check(), Ok(()));
    for (name, value) in [
        ("Authorization", "Bearer secret"),
        ("authorization", "Bearer secret"),
        ("Content-ID", "9"),
        ("If-Match", "*"),
        ("X-Bad", "a\r\nAuthorization: Bearer x"),
        ("Bad Name", "v"),
        ("", "v"),
    ] {
        opts.part_headers.push((name.into(), value.into()));
        assert!(opts.check().is_err(), "{name}");
        let encoded = encode_batch(&two_ops(), &opts, batch_id());
        let text = String::from_utf8(encoded.body).unwrap();
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "{text}"
        );
        assert!(!text.contains("Bearer"));
        assert_eq!(text.matches("Content-ID:").count(), 2);
        assert_eq!(
            text.matches("MSCRM.BypassCustomPluginExecution: true")
                .count(),
            2
        );
        opts.part_headers.pop();
    }
    let err = BatchOptions {
        part_headers: vec![("Authorization".into(), "x".into())],
        ..BatchOptions::default()
    }
    .check()
    .unwrap_err();
    assert_eq!(
        err,
        BatchOptionsError::ForbiddenHeader("Authorization".into())
    );
    assert!(
        BatchOptions {
            api_path: "api/data".into(),
            ..BatchOptions::default()
        }
        .check()
        .is_err()
    );
}

#[test]
fn http_file() {
    let encoded = encode_batch(&two_ops(), &bypass_options(), batch_id());
    let file = encoded.to_http_file("https://org.crm.dynamics.com/");
    let text = String::from_utf8(file).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(
        head,
        format!(
            "POST https://org.crm.dynamics.com/api/data/v9.2/$batch HTTP/1.1\r\n\
             OData-MaxVersion: 4.0\r\n\
             OData-Version: 4.0\r\n\
             Accept: application/json\r\n\
             If-None-Match: null\r\n\
             Prefer: odata.continue-on-error\r\n\
             Content-Type: multipart/mixed; boundary=\"batch_{BATCH_ID}\"\r\n\
             Content-Length: {}",
            encoded.body.len()
        )
    );
    assert_eq!(body.as_bytes(), encoded.body);
}

// ---------------------------------------------------------------------------------------------
// encode → fake Dataverse → decode

/// A request part as a server reads it.
#[derive(Debug)]
struct ReadPart {
    content_id: Option<String>,
    in_changeset: bool,
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads an encoded batch back the way a server would, with the decoder's own MIME helpers.
fn read_request(encoded: &EncodedBatch) -> Vec<ReadPart> {
    let boundary = MediaType::parse(&encoded.content_type)
        .boundary()
        .unwrap()
        .to_owned();
    let mut out = Vec::new();
    read_parts(&encoded.body, &boundary, false, &mut out);
    out
}

fn read_parts(body: &[u8], boundary: &str, in_changeset: bool, out: &mut Vec<ReadPart>) {
    for raw in multipart::split_multipart(body, boundary).unwrap() {
        let (mime, content) = multipart::split_headers(raw);
        let ct = MediaType::parse(multipart::header(&mime, "Content-Type").unwrap());
        if ct.is_multipart() {
            read_parts(content, ct.boundary().unwrap(), true, out);
            continue;
        }
        assert_eq!(ct.essence, "application/http");
        assert_eq!(
            multipart::header(&mime, "Content-Transfer-Encoding"),
            Some("binary")
        );
        let text = std::str::from_utf8(content).unwrap();
        let (request_line, rest) = text.split_once("\r\n").unwrap();
        let (headers, body) = multipart::split_headers(rest.as_bytes());
        out.push(ReadPart {
            content_id: multipart::header(&mime, "Content-ID").map(str::to_owned),
            in_changeset,
            request_line: request_line.to_owned(),
            headers,
            body: body.to_vec(),
        });
    }
}

/// How the fake server answers a failed change set.
#[derive(Clone, Copy)]
enum Shape {
    Dataverse,
    SpecWithoutContentId,
}

/// Answers a batch like Dataverse: parts in order, failures for the listed 0-based ops, the
/// batch stopping at the first failure without continue-on-error, change sets all-or-nothing.
fn fake_dataverse(encoded: &EncodedBatch, fail: &[usize], shape: Shape) -> (u16, String, Vec<u8>) {
    let parts = read_request(encoded);
    let continue_on_error = encoded
        .headers
        .iter()
        .any(|(n, v)| n == "Prefer" && v == "odata.continue-on-error");
    let mut body = String::from("--batchresponse_r\r\n");
    let answer = |i: usize, p: &ReadPart, with_cid: bool| {
        let mut s =
            String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
        if with_cid {
            s += &format!("Content-ID: {}\r\n", p.content_id.as_deref().unwrap());
        }
        if fail.contains(&i) {
            s += "\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n";
            s += &format!("{{\"error\":{{\"code\":\"0x0\",\"message\":\"op {i} is bad\"}}}}");
        } else {
            s += &format!(
                "\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nOData-EntityId: https://org/api/data/v9.2/accounts(00000000-0000-0000-0000-{i:012})\r\n\r\n"
            );
        }
        s
    };
    let mut status = 200;
    if encoded.atomic {
        let failed = parts.iter().enumerate().find(|(i, _)| fail.contains(i));
        match (failed, shape) {
            (None, _) => {
                body += "Content-Type: multipart/mixed; boundary=changesetresponse_c\r\n\r\n";
                for (i, p) in parts.iter().enumerate() {
                    assert!(p.in_changeset);
                    body += "--changesetresponse_c\r\n";
                    body += &answer(i, p, true);
                    body += "\r\n";
                }
                body += "--changesetresponse_c--\r\n";
            }
            (Some((i, p)), Shape::Dataverse) => {
                status = 400;
                body += "Content-Type: multipart/mixed; boundary=changesetresponse_c\r\n\r\n--changesetresponse_c\r\n";
                body += &answer(i, p, true);
                body += "\r\n--changesetresponse_c--\r\n";
            }
            (Some((i, p)), Shape::SpecWithoutContentId) => {
                status = 400;
                body += &answer(i, p, false);
                body += "\r\n";
            }
        }
    } else {
        for (i, p) in parts.iter().enumerate() {
            assert!(!p.in_changeset);
            if i > 0 {
                body += "--batchresponse_r\r\n";
            }
            body += &answer(i, p, false);
            body += "\r\n";
            if fail.contains(&i) && !continue_on_error {
                status = 400;
                break;
            }
        }
    }
    body += "--batchresponse_r--\r\n";
    (
        status,
        "multipart/mixed; boundary=batchresponse_r".to_owned(),
        body.into_bytes(),
    )
}

fn many_ops(n: usize) -> Vec<Operation> {
    (0..n)
        .map(|i| {
            op(
                Method::Patch,
                &format!("accounts(accountnumber='A-{i}')"),
                Precondition::None,
                Some(&format!("{{\"name\":\"N{i}\"}}")),
            )
        })
        .collect()
}

fn round_trip(n: usize, opts: &BatchOptions, fail: &[usize], shape: Shape) -> Vec<String> {
    let encoded = encode_batch(&many_ops(n), opts, Uuid::new_v4());
    let (status, ct, body) = fake_dataverse(&encoded, fail, shape);
    let r = decode_batch_response(status, Some(&ct), &body).unwrap();
    let out = r.outcomes_of(&encoded);
    assert_eq!(out.len(), n);
    kinds(&out)
}

#[test]
fn request_reads_back() {
    let encoded = encode_batch(&two_ops(), &bypass_options(), batch_id());
    let parts = read_request(&encoded);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].content_id.as_deref(), Some("1"));
    assert_eq!(
        parts[0].request_line,
        "PATCH /api/data/v9.2/accounts(accountnumber='A-1') HTTP/1.1"
    );
    assert_eq!(parts[0].body, br#"{"name":"Contoso"}"#);
    assert_eq!(multipart::header(&parts[1].headers, "if-match"), Some("*"));
    assert!(parts[1].body.is_empty());
    assert!(
        parts
            .iter()
            .all(|p| multipart::header(&p.headers, "Authorization").is_none())
    );
}

#[test]
fn round_trips() {
    let independent = BatchOptions::default();
    let stop = BatchOptions {
        continue_on_error: false,
        ..BatchOptions::default()
    };
    let atomic = BatchOptions {
        atomic: true,
        ..BatchOptions::default()
    };
    assert_eq!(
        round_trip(3, &independent, &[], Shape::Dataverse),
        ["ok", "ok", "ok"]
    );
    assert_eq!(
        round_trip(3, &independent, &[1], Shape::Dataverse),
        ["ok", "failed 400", "ok"]
    );
    assert_eq!(
        round_trip(4, &stop, &[1, 2], Shape::Dataverse),
        ["ok", "failed 400", "after Some(1)", "after Some(1)"]
    );
    assert_eq!(
        round_trip(3, &atomic, &[], Shape::Dataverse),
        ["ok", "ok", "ok"]
    );
    assert_eq!(
        round_trip(3, &atomic, &[2], Shape::Dataverse),
        ["rolled back Some(2)", "rolled back Some(2)", "failed 400"]
    );
    assert_eq!(
        round_trip(3, &atomic, &[0], Shape::SpecWithoutContentId),
        ["changeset failed", "changeset failed", "changeset failed"]
    );
    // Entity ids come through.
    let encoded = encode_batch(&many_ops(2), &independent, batch_id());
    let (status, ct, body) = fake_dataverse(&encoded, &[], Shape::Dataverse);
    let r = decode_batch_response(status, Some(&ct), &body).unwrap();
    assert_eq!(
        r.parts[1].entity_guid(),
        Some(Uuid::parse_str("00000000-0000-0000-0000-000000000001").unwrap())
    );
}

// ---------------------------------------------------------------------------------------------
// properties

fn arb_op() -> impl Strategy<Value = Operation> {
    (
        prop_oneof![
            Just(Method::Post),
            Just(Method::Patch),
            Just(Method::Delete)
        ],
        "[a-z]{1,10}",
        any::<String>(),
        prop_oneof![
            Just(Precondition::None),
            Just(Precondition::IfMatchAny),
            Just(Precondition::IfNoneMatchAny)
        ],
        proptest::option::of(any::<String>()),
    )
        .prop_map(|(method, set, key, precondition, value)| {
            let url = crate::odata::key::alternate_key_url(
                &set,
                &[("k", crate::odata::key::KeyValue::String(key))],
            );
            let body = value.map(|v| serde_json::json!({ "name": v, "n": [1, 2] }).to_string());
            op(method, &url, precondition, body.as_deref())
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn encoded_batches_read_back(ops in proptest::collection::vec(arb_op(), 0..8), atomic in any::<bool>()) {
        let opts = BatchOptions { atomic, ..bypass_options() };
        let encoded = encode_batch(&ops, &opts, Uuid::new_v4());
        let parts = read_request(&encoded);
        prop_assert_eq!(parts.len(), ops.len());
        for (i, (p, op)) in parts.iter().zip(&ops).enumerate() {
            prop_assert_eq!(p.content_id.clone(), Some((i + 1).to_string()));
            prop_assert_eq!(p.in_changeset, atomic);
            prop_assert_eq!(&p.request_line, &format!("{} /api/data/v9.2/{} HTTP/1.1", op.method.as_str(), op.url));
            prop_assert_eq!(&p.body, &op.body.clone().unwrap_or_default().into_bytes());
            prop_assert_eq!(multipart::header(&p.headers, "MSCRM.BypassCustomPluginExecution"), Some("true"));
        }
    }

    #[test]
    fn decode_never_panics_on_bytes(
        status in 100u16..600,
        ct in proptest::option::of("[ -~]{0,60}"),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(r) = decode_batch_response(status, ct.as_deref(), &body) {
            prop_assert_eq!(r.outcomes(&ids(5), false).len(), 5);
            prop_assert_eq!(r.outcomes(&ids(5), true).len(), 5);
        }
    }

    #[test]
    fn decode_never_panics_on_multipart_noise(
        lines in proptest::collection::vec(prop_oneof![
            Just("--b".to_owned()),
            Just("--b--".to_owned()),
            Just("--c".to_owned()),
            Just("Content-Type: multipart/mixed; boundary=c".to_owned()),
            Just("Content-Type: application/http".to_owned()),
            Just("Content-ID: 1".to_owned()),
            Just("HTTP/1.1 204 No Content".to_owned()),
            Just("HTTP/1.1 400 Bad Request".to_owned()),
            Just(String::new()),
            "[ -~]{0,20}",
        ], 0..40),
        crlf in any::<bool>(),
    ) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        if let Ok(r) = decode_batch_response(200, Some("multipart/mixed; boundary=b"), body.as_bytes()) {
            prop_assert_eq!(r.outcomes(&ids(3), false).len(), 3);
            prop_assert_eq!(r.outcomes(&ids(3), true).len(), 3);
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_vectors(
        which in 0usize..9,
        crlf in any::<bool>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, any::<u8>()), 1..8),
        truncate in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let text = [SIMPLE, CHANGESET, REF_IN_BODY, REF_PUT_PROPERTY, REF_PUT_REF, PATCH_DOLLAR1,
            CONTINUE_ON_ERROR, STOPS_AT_FAILURE, CHANGESET_FAILURE][which];
        let (status, ct, mut body) = load(text, crlf);
        for (at, kind, byte) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        if let Some(t) = truncate {
            let len = t.index(body.len() + 1);
            body.truncate(len);
        }
        if let Ok(r) = decode_batch_response(status, ct.as_deref(), &body) {
            prop_assert_eq!(r.outcomes(&ids(4), false).len(), 4);
            prop_assert_eq!(r.outcomes(&ids(4), true).len(), 4);
        }
    }
}

#[test]
fn upsert_select_asks_only_plain_upserts_for_their_record() {
    let ops = vec![
        op(
            Method::Patch,
            "accounts(accountnumber='A 1')",
            Precondition::None,
            Some("{}"),
        ),
        op(
            Method::Patch,
            "accounts(accountnumber='A2')",
            Precondition::IfNoneMatchAny,
            Some("{}"),
        ),
        op(
            Method::Patch,
            "accounts(accountnumber='A3')",
            Precondition::IfMatchAny,
            Some("{}"),
        ),
        op(Method::Post, "accounts", Precondition::None, Some("{}")),
    ];
    let opts = BatchOptions {
        upsert_select: Some("accountnumber".into()),
        ..BatchOptions::default()
    };
    assert_eq!(opts.check(), Ok(()));
    let body = String::from_utf8(encode_batch(&ops, &opts, batch_id()).body).unwrap();
    assert!(body.contains(
        "PATCH /api/data/v9.2/accounts(accountnumber='A%201')?$select=accountnumber HTTP/1.1\r\n\
         Content-Type: application/json; type=entry\r\n\
         Prefer: return=representation\r\n\r\n"
    ));
    assert_eq!(body.matches("$select").count(), 1, "{body}");
    assert_eq!(body.matches("return=representation").count(), 1);
    for bad in ["", "name,accountid", "a b", "x&$expand=y"] {
        let opts = BatchOptions {
            upsert_select: Some(bad.into()),
            ..BatchOptions::default()
        };
        assert_eq!(
            opts.check(),
            Err(BatchOptionsError::InvalidSelect(bad.into()))
        );
    }
}

proptest! {
    #[test]
    fn the_word_url_check_agrees_with_the_byte_one(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'!'), Just(b'~'), Just(0x7F), Just(0x80), Just(0xFF), Just(0x00), Just(b'a'), Just(b'\r')],
            0..40,
        )
    ) {
        prop_assert_eq!(all_graphic(&bytes), bytes.iter().all(u8::is_ascii_graphic));
    }
}
