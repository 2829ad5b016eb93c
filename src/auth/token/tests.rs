//! Tests of token requests and of how Entra ID's errors are read.

use super::*;
use crate::auth::credential::tests::{decode_and_verify, test_certificate};
use crate::auth::secret::Secret;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A vector file from shared/vectors with its first `//` line stripped.
fn vector(name: &str) -> Vec<u8> {
    let candidates = [
        std::env::var("DVLOAD_VECTORS").ok(),
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors").to_string()),
        Some("/work/shared/vectors".to_string()),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find_map(|dir| std::fs::read_to_string(Path::new(&dir).join(name)).ok());
    match found {
        Some(text) => text
            .split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
            .into_bytes(),
        None => FALLBACK
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.as_bytes().to_vec())
            .unwrap(),
    }
}

/// Copies of the vectors used here, for machines without shared/.
const FALLBACK: &[(&str, &str)] = &[
    (
        "token-error-aadsts7000215-invalid-secret.response.json",
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '4d856d1f-8648-456c-9bb2-f36273bbe4e3'.\r\nTrace ID: 6bad8289-db4a-49da-8609-0848d8d71700\r\nCorrelation ID: 63b8bb61-5ca6-4ae3-8224-15a4de11cd87\r\nTimestamp: 2023-02-20 07:21:29Z","error_codes":[7000215],"timestamp":"2023-02-20 07:21:29Z","trace_id":"6bad8289-db4a-49da-8609-0848d8d71700","correlation_id":"63b8bb61-5ca6-4ae3-8224-15a4de11cd87","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#,
    ),
    (
        "token-error-aadsts700016-app-not-found.response.json",
        r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier '11111111-1111-1111-1111-111111111111' was not found in the directory '22222222-2222-2222-2222-222222222222'.\r\nTrace ID: a5c936aa-7b30-4f6d-bdd6-c69866950600\r\nCorrelation ID: 539d8a2b-9e25-4c20-ae3d-b8ad6c42e3a5\r\nTimestamp: 2019-01-04 23:07:41Z","error_codes":[700016],"timestamp":"2019-01-04 23:07:41Z","trace_id":"a5c936aa-7b30-4f6d-bdd6-c69866950600","correlation_id":"539d8a2b-9e25-4c20-ae3d-b8ad6c42e3a5","error_uri":"https://login.microsoftonline.com/error?code=700016"}"#,
    ),
    (
        "token-v2-error-invalid-scope.response.json",
        r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope https://foo.microsoft.com/.default is not valid.\r\nTrace ID: 255d1aef-8c98-452f-ac51-23d051240864\r\nCorrelation ID: fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7\r\nTimestamp: 2016-01-09 02:02:12Z","error_codes":[70011],"timestamp":"YYYY-MM-DD HH:MM:SSZ","trace_id":"255d1aef-8c98-452f-ac51-23d051240864","correlation_id":"fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7"}"#,
    ),
    (
        "token-error-sample-with-error-uri.response.json",
        r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' isn't valid.\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2016-01-09 02:02:12Z","error_codes":[70011],"timestamp":"2016-01-09 02:02:12Z","trace_id":"0000aaaa-11bb-cccc-dd33-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code=70011"}"#,
    ),
    (
        "token-v2-success.response.json",
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP..."}"#,
    ),
    (
        "token-v1-success.response.json",
        r#"{"access_token":"eyJ0eXAiO ... 0X2tnSQLEANnSPHY0gKcgw","token_type":"Bearer","expires_in":"3599","expires_on":"1388452167","resource":"https://service.contoso.com/"}"#,
    ),
];

/// An Entra error body in the catalogue's shape (PROTOCOL.md §13.5).
fn entra_body(error: &str, code: u32, message: &str) -> String {
    serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: 00000000-0000-0000-0000-00000000000a\r\nCorrelation ID: 00000000-0000-0000-0000-00000000000b\r\nTimestamp: 2024-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2024-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-00000000000a",
        "correlation_id": "00000000-0000-0000-0000-00000000000b",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    })
    .to_string()
}

const URL: &str = "https://login.microsoftonline.com/t/oauth2/v2.0/token";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[test]
fn v2_success_with_numeric_expires_in() {
    let t =
        parse_token_response(URL, 200, &vector("token-v2-success.response.json"), now()).unwrap();
    assert!(t.access_token.expose().starts_with("eyJ0eXAi"));
    assert_eq!(t.expires_at, Some(now() + Duration::from_secs(3599)));
    assert_eq!(t.issued_at, now());
    assert!(t.refreshable);
}

#[test]
fn v1_success_with_string_expires_in() {
    let t =
        parse_token_response(URL, 200, &vector("token-v1-success.response.json"), now()).unwrap();
    assert_eq!(t.expires_at, Some(now() + Duration::from_secs(3599)));
    // Only expires_on (a string, absolute).
    let body = br#"{"access_token":"a","token_type":"Bearer","expires_on":"1700000900"}"#;
    let t = parse_token_response(URL, 200, body, now()).unwrap();
    assert_eq!(
        t.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_900))
    );
    // Neither: the default lifetime.
    let t = parse_token_response(URL, 200, br#"{"access_token":"a"}"#, now()).unwrap();
    assert_eq!(t.expires_at, Some(now() + DEFAULT_TOKEN_LIFETIME));
    // A lifetime past the clock's range (it used to panic): the default lifetime.
    for body in [
        &br#"{"access_token":"a","expires_in":1e20}"#[..],
        br#"{"access_token":"a","expires_in":18446744073709551615}"#,
        br#"{"access_token":"a","expires_on":"18446744073709551615"}"#,
    ] {
        let t = parse_token_response(URL, 200, body, now()).unwrap();
        assert_eq!(t.expires_at, Some(now() + DEFAULT_TOKEN_LIFETIME));
    }
}

#[test]
fn bad_success_bodies_never_quote_the_token() {
    let cases: &[(&[u8], &str)] = &[
        (b"<html>SECRET-TOKEN</html>", "the answer is not JSON"),
        (
            br#"{"token":"SECRET-TOKEN"}"#,
            "the answer has no access_token",
        ),
        (
            br#"{"access_token":"SECRET-TOKEN","token_type":"mac"}"#,
            "token_type is 'mac', not 'Bearer'",
        ),
    ];
    for (body, detail) in cases {
        let e = parse_token_response(URL, 200, body, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("unexpected answer from the token endpoint {URL}: HTTP 200: {detail}")
        );
        assert!(!format!("{e:?}").contains("SECRET-TOKEN"));
    }
}

fn classify(status: u16, body: &[u8]) -> AuthError {
    parse_token_response(URL, status, body, now()).unwrap_err()
}

#[test]
fn entra_errors_from_vectors() {
    let e = classify(
        401,
        &vector("token-error-aadsts7000215-invalid-secret.response.json"),
    );
    let AuthError::InvalidClientSecret(entra) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(entra.status, 401);
    assert_eq!(entra.error, "invalid_client");
    assert_eq!(entra.codes, vec![7000215]);
    assert_eq!(
        entra.trace_id.as_deref(),
        Some("6bad8289-db4a-49da-8609-0848d8d71700")
    );
    assert_eq!(
        entra.correlation_id.as_deref(),
        Some("63b8bb61-5ca6-4ae3-8224-15a4de11cd87")
    );
    assert_eq!(entra.timestamp.as_deref(), Some("2023-02-20 07:21:29Z"));
    assert_eq!(
        entra.error_uri.as_deref(),
        Some("https://login.microsoftonline.com/error?code=7000215")
    );
    assert_eq!(
        e.to_string(),
        "the client secret was refused: AADSTS7000215: Invalid client secret provided. Ensure the secret being \
         sent in the request is the client secret value, not the client secret ID, for a secret added to app \
         '4d856d1f-8648-456c-9bb2-f36273bbe4e3'. (invalid_client, HTTP 401, trace ID \
         6bad8289-db4a-49da-8609-0848d8d71700, correlation ID 63b8bb61-5ca6-4ae3-8224-15a4de11cd87)"
    );
    assert!(e.explain().contains("VALUE, not its Secret ID"));

    let e = classify(
        400,
        &vector("token-error-aadsts700016-app-not-found.response.json"),
    );
    assert!(matches!(e, AuthError::UnknownApplication(_)), "{e:?}");
    assert!(e.explain().contains("AZURE_CLIENT_ID"));
    let e = classify(400, &vector("token-v2-error-invalid-scope.response.json"));
    assert!(matches!(e, AuthError::InvalidScope(_)), "{e:?}");
    let e = classify(
        400,
        &vector("token-error-sample-with-error-uri.response.json"),
    );
    assert!(matches!(e, AuthError::InvalidScope(_)), "{e:?}");
}

#[test]
fn every_catalogued_code_is_classified_and_explained() {
    type Check = fn(&AuthError) -> bool;
    let cases: &[(&str, u32, u16, Check, &str)] = &[
        (
            "invalid_request",
            90002,
            400,
            |e| matches!(e, AuthError::UnknownTenant(_)),
            "AZURE_TENANT_ID",
        ),
        (
            "unauthorized_client",
            700016,
            400,
            |e| matches!(e, AuthError::UnknownApplication(_)),
            "AZURE_CLIENT_ID",
        ),
        (
            "invalid_client",
            7000215,
            401,
            |e| matches!(e, AuthError::InvalidClientSecret(_)),
            "not its Secret ID",
        ),
        (
            "invalid_client",
            7000222,
            401,
            |e| matches!(e, AuthError::ExpiredClientSecret(_)),
            "Create a new one",
        ),
        (
            "invalid_client",
            700027,
            401,
            |e| matches!(e, AuthError::CertificateRejected(_)),
            "Upload the certificate",
        ),
        (
            "invalid_client",
            50012,
            401,
            |e| matches!(e, AuthError::CertificateRejected(_)),
            "Upload the certificate",
        ),
        (
            "invalid_client",
            500133,
            400,
            |e| matches!(e, AuthError::AssertionTime(_)),
            "clock",
        ),
        (
            "invalid_resource",
            500011,
            400,
            |e| matches!(e, AuthError::ResourceNotFound(_)),
            "DATAVERSE_URL",
        ),
        (
            "invalid_scope",
            70011,
            400,
            |e| matches!(e, AuthError::InvalidScope(_)),
            "DATAVERSE_URL",
        ),
        (
            "invalid_request",
            900144,
            400,
            |e| matches!(e, AuthError::Entra(_)),
            "AADSTS code",
        ),
        (
            "temporarily_unavailable",
            90055,
            429,
            |e| e.is_transient(),
            "Try again",
        ),
    ];
    for (error, code, status, check, hint) in cases {
        let e = classify(*status, entra_body(error, *code, "Something.").as_bytes());
        assert!(check(&e), "AADSTS{code}: {e:?}");
        assert!(e.explain().contains(hint), "AADSTS{code}: {}", e.explain());
        let entra = e.entra().unwrap();
        assert_eq!(entra.codes, vec![*code]);
        assert_eq!(entra.message(), format!("AADSTS{code}: Something."));
        assert!(e.to_string().contains(&format!("AADSTS{code}")));
    }
    // Without error_codes, the AADSTS number in the description is used.
    let body = br#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired."}"#;
    assert!(matches!(
        classify(401, body),
        AuthError::ExpiredClientSecret(_)
    ));
    assert!(!classify(401, body).is_transient());
}

#[test]
fn non_entra_error_answers() {
    let e = classify(502, b"<html><body>Bad   gateway\n from proxy</body></html>");
    assert_eq!(
        e.to_string(),
        format!(
            "unexpected answer from the token endpoint {URL}: HTTP 502: <html><body>Bad gateway from proxy</body></html>"
        )
    );
    assert!(e.is_transient());
    assert_eq!(
        classify(404, b"").to_string(),
        format!("unexpected answer from the token endpoint {URL}: HTTP 404: empty body")
    );
    assert!(!classify(404, b"").is_transient());
}

/// What the test server received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that records each request and answers with canned responses in
/// order (the last one repeats). `echo` answers with the request body instead.
pub(crate) struct TestServer {
    pub base: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) enum Answer {
    Canned(u16, String),
    Echo(u16),
    Hang,
}

impl TestServer {
    pub async fn start(answers: Vec<Answer>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let answers = Arc::new(answers);
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let answer_index = n.min(answers.len() - 1);
                n += 1;
                let log = log.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let read = stream.read(&mut chunk).await.unwrap_or(0);
                        if read == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_string();
                    let path = first.next().unwrap_or("").to_string();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let read = stream.read(&mut chunk).await.unwrap_or(0);
                        if read == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    log.lock().unwrap().push(Received {
                        method,
                        path,
                        headers,
                        body: body.clone(),
                    });
                    let (status, text) = match &answers[answer_index] {
                        Answer::Canned(s, t) => (*s, t.clone()),
                        Answer::Echo(s) => (*s, body),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        TestServer {
            base,
            received,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

pub(crate) const TEST_SECRET: &str = "abc~Secret+Value=/&%";

pub(crate) fn request_for(
    server: &TestServer,
    endpoint: TokenEndpoint,
    credential: Credential,
) -> EntraTokenRequest {
    let path = match endpoint {
        TokenEndpoint::V2 => "oauth2/v2.0/token",
        TokenEndpoint::V1 => "oauth2/token",
    };
    let options = HttpOptions {
        timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    };
    EntraTokenRequest::new(
        build_http_client(&options).unwrap(),
        format!("{}/my-tenant/{path}", server.base),
        endpoint,
        "my-client".into(),
        credential,
        DataverseUrl::parse("https://contoso.crm4.dynamics.com").unwrap(),
        options.timeout,
    )
}

fn success(token: &str) -> Answer {
    Answer::Canned(
        200,
        format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{token}"}}"#),
    )
}

#[tokio::test]
async fn v2_client_secret_form() {
    let server = TestServer::start(vec![success("tok-1")]).await;
    let request = request_for(
        &server,
        TokenEndpoint::V2,
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
    );
    let token = request.request(now()).await.unwrap();
    assert_eq!(token.access_token.expose(), "tok-1");
    assert_eq!(token.expires_at, Some(now() + Duration::from_secs(3599)));
    let got = server.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/my-tenant/oauth2/v2.0/token");
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(r.headers["accept"], "application/json");
    assert!(r.headers["user-agent"].starts_with("dvload/"));
    let form = r.form();
    let expected: HashMap<String, String> = [
        ("grant_type", "client_credentials"),
        ("client_id", "my-client"),
        ("scope", "https://contoso.crm4.dynamics.com/.default"),
        ("client_secret", TEST_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, expected);
    // The secret is percent-encoded in the body, and appears nowhere else in the request.
    assert!(!r.body.contains(TEST_SECRET));
    let encoded: String = url::form_urlencoded::byte_serialize(TEST_SECRET.as_bytes()).collect();
    assert_eq!(r.body.matches(&encoded).count(), 1);
    assert!(!r.path.contains("Secret") && r.headers.values().all(|v| !v.contains("Secret")));
}

#[tokio::test]
async fn v1_client_secret_form_and_string_expiry() {
    let server = TestServer::start(vec![Answer::Canned(
        200,
        r#"{"access_token":"tok-v1","token_type":"Bearer","expires_in":"1200","expires_on":"1700001200","resource":"https://contoso.crm4.dynamics.com"}"#.into(),
    )])
    .await;
    let request = request_for(
        &server,
        TokenEndpoint::V1,
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
    );
    let token = request.request(now()).await.unwrap();
    assert_eq!(token.expires_at, Some(now() + Duration::from_secs(1200)));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/my-tenant/oauth2/token");
    let form = r.form();
    assert_eq!(form["resource"], "https://contoso.crm4.dynamics.com");
    assert!(!form.contains_key("scope"));
    assert_eq!(form["client_secret"], TEST_SECRET);
}

#[tokio::test]
async fn v2_certificate_assertion_form() {
    let server = TestServer::start(vec![success("tok-cert")]).await;
    let request = request_for(
        &server,
        TokenEndpoint::V2,
        Credential::Certificate(test_certificate()),
    );
    request.request(SystemTime::now()).await.unwrap();
    let r = &server.requests()[0];
    let form = r.form();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    assert_eq!(form.len(), 5);
    let (header, claims) = decode_and_verify(&form["client_assertion"]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        claims["aud"],
        format!("{}/my-tenant/oauth2/v2.0/token", server.base)
    );
    assert_eq!(claims["iss"], "my-client");
    assert_eq!(claims["sub"], "my-client");
}

#[tokio::test]
async fn entra_error_over_http_is_typed_and_never_holds_the_secret() {
    let server = TestServer::start(vec![Answer::Canned(
        401,
        entra_body("invalid_client", 7000215, "Invalid client secret provided."),
    )])
    .await;
    let request = request_for(
        &server,
        TokenEndpoint::V2,
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
    );
    let e = request.request(now()).await.unwrap_err();
    assert!(matches!(e, AuthError::InvalidClientSecret(_)), "{e:?}");
}

#[tokio::test]
async fn echoed_secret_and_assertion_are_redacted() {
    let server = TestServer::start(vec![Answer::Echo(500)]).await;
    let request = request_for(
        &server,
        TokenEndpoint::V2,
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
    );
    let e = request.request(now()).await.unwrap_err();
    let encoded: String = url::form_urlencoded::byte_serialize(TEST_SECRET.as_bytes()).collect();
    for text in [e.to_string(), format!("{e:?}"), e.explain()] {
        assert!(
            !text.contains(TEST_SECRET) && !text.contains(&encoded),
            "{text}"
        );
    }
    assert!(e.to_string().contains("client_secret=[redacted]"), "{e}");

    let request = request_for(
        &server,
        TokenEndpoint::V2,
        Credential::Certificate(test_certificate()),
    );
    let e = request.request(now()).await.unwrap_err();
    let form = server.requests()[1].form();
    let assertion = &form["client_assertion"];
    assert!(!e.to_string().contains(&assertion[..40]), "{e}");
    assert!(e.to_string().contains("client_assertion=[redacted]"), "{e}");
}

#[tokio::test]
async fn unreachable_and_timeout() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = build_http_client(&HttpOptions::default()).unwrap();
    let request = EntraTokenRequest::new(
        http,
        format!("http://127.0.0.1:{port}/t/oauth2/v2.0/token"),
        TokenEndpoint::V2,
        "c".into(),
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
        DataverseUrl::parse("https://x.crm.dynamics.com").unwrap(),
        Duration::from_secs(30),
    );
    let e = request.request(now()).await.unwrap_err();
    assert!(matches!(e, AuthError::Unreachable { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.explain().contains("cannot reach the authority host"));
    assert!(!e.to_string().contains(TEST_SECRET));
    assert!(e.to_string().contains("Connection refused"), "{e}");

    let server = TestServer::start(vec![Answer::Hang]).await;
    let options = HttpOptions {
        timeout: Duration::from_millis(200),
        ..HttpOptions::default()
    };
    let request = EntraTokenRequest::new(
        build_http_client(&options).unwrap(),
        format!("{}/t/oauth2/v2.0/token", server.base),
        TokenEndpoint::V2,
        "c".into(),
        Credential::ClientSecret(Secret::new(TEST_SECRET)),
        DataverseUrl::parse("https://x.crm.dynamics.com").unwrap(),
        options.timeout,
    );
    let e = request.request(now()).await.unwrap_err();
    assert!(matches!(e, AuthError::Timeout { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "the token endpoint {}/t/oauth2/v2.0/token did not answer within 200ms",
            server.base
        )
    );
}

#[tokio::test]
async fn source_from_settings() {
    let server = TestServer::start(vec![success("tok-s")]).await;
    let env = |k: &str| match k {
        "DATAVERSE_URL" => Some("https://contoso.crm4.dynamics.com".to_string()),
        "AZURE_TENANT_ID" => Some("my-tenant".into()),
        "AZURE_CLIENT_ID" => Some("my-client".into()),
        "AZURE_CLIENT_CERTIFICATE_PATH" => Some(
            crate::auth::credential::tests::testdata("cert.pfx")
                .display()
                .to_string(),
        ),
        "AZURE_CLIENT_CERTIFICATE_PASSWORD" => Some("test-pfx-password".into()),
        "AZURE_AUTHORITY_HOST" => Some(server.base.clone()),
        _ => None,
    };
    let settings = Settings::from_env(&env).unwrap();
    let source = TokenSource::from_settings(&settings, &HttpOptions::default()).unwrap();
    let token = source.fetch(now()).await.unwrap();
    assert_eq!(token.access_token.expose(), "tok-s");
    assert_eq!(server.requests()[0].path, "/my-tenant/oauth2/v2.0/token");
    assert!(server.requests()[0].form().contains_key("client_assertion"));

    let env = |k: &str| match k {
        "DATAVERSE_URL" => Some("https://contoso.crm4.dynamics.com".to_string()),
        "DATAVERSE_ACCESS_TOKEN" => Some("ready".into()),
        _ => None,
    };
    let source =
        TokenSource::from_settings(&Settings::from_env(&env).unwrap(), &HttpOptions::default())
            .unwrap();
    let token = source.fetch(now()).await.unwrap();
    assert_eq!(token.access_token.expose(), "ready");
    assert_eq!(token.expires_at, None);
    assert!(!token.refreshable);
}
