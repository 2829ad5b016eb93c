//! Test harness: start the emulator, get tokens, send raw bytes, load documentation vectors.

use std::path::PathBuf;

use dataverse_emulator::{Config, RunningEmulator, StartOptions, defaults, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn emulator() -> RunningEmulator {
    emulator_with(Config::default()).await
}

pub async fn emulator_with(config: Config) -> RunningEmulator {
    start(config, StartOptions::default())
        .await
        .expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    // In a workspace build reqwest's features are unified with dvload's (`rustls-no-provider`),
    // which needs a process-wide crypto provider before a client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn token(base: &str) -> String {
    let resp = client()
        .post(format!("{base}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            defaults::CLIENT_ID,
            defaults::CLIENT_SECRET,
            urlencode(&format!("{base}/.default"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded_byte_serialize(s)
}

fn form_urlencoded_byte_serialize(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An authenticated Web API request builder.
pub struct Api {
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn new(emu: &RunningEmulator) -> Self {
        Api {
            base: emu.base_url().to_string(),
            token: token(emu.base_url()).await,
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{}/api/data/v9.2/{path}", self.base))
            .bearer_auth(&self.token)
            .header("OData-Version", "4.0")
            .header("OData-MaxVersion", "4.0")
            .header("Accept", "application/json")
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

/// A raw HTTP/1.1 response.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends bytes as-is on a fresh connection and reads until the server closes it.
pub async fn raw(emu: &RunningEmulator, bytes: &[u8]) -> std::io::Result<RawResponse> {
    let mut s = tokio::net::TcpStream::connect(emu.addr()).await?;
    s.write_all(bytes).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&buf[..text_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .collect();
    Ok(RawResponse {
        status,
        headers,
        body: buf[text_end + 4..].to_vec(),
    })
}

/// The documented examples, copied into the crate (`tests/vectors/`, see its README), or
/// `$DVLOAD_VECTORS`.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("DVLOAD_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"))
}

/// A vector file without its source line, `[Organization Uri]` replaced, LF → CRLF.
pub fn vector(name: &str, base: &str) -> Option<String> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vector {}: {e}", path.display()));
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    Some(
        body.replace("[Organization Uri]", base)
            .replace("[Organization URI]", base)
            .replace("[organization uri]", base)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n"),
    )
}

/// Turns a vector HTTP request (request line, headers, blank line, body) into wire bytes with
/// Host, Authorization, Content-Length and Connection: close added (documented Content-Length
/// values are dropped: they do not match the documented bodies).
pub fn wire_request(vector_text: &str, base: &str, token: &str) -> Vec<u8> {
    let (head, body) = vector_text
        .split_once("\r\n\r\n")
        .unwrap_or((vector_text, ""));
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().replacen(base, "", 1);
    let mut out = format!(
        "{request_line}\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n",
        base.trim_start_matches("http://")
    );
    for l in lines {
        if !l.to_ascii_lowercase().starts_with("content-length") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Response parts: (Content-ID, status, header names, body) per operation, flattening change sets.
pub fn response_parts(
    content_type: &str,
    body: &[u8],
) -> Vec<(Option<String>, u16, Vec<String>, String)> {
    use dataverse_emulator::batch::parser::{boundary, split};
    let mut out = Vec::new();
    let b = boundary(content_type).expect("multipart response");
    for part in split(body, &b).expect("valid multipart") {
        let text = String::from_utf8_lossy(part).replace("\r\n", "\n");
        let (mime, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
        let ct = mime
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type:"))
            .unwrap_or("")
            .trim()
            .to_string();
        if ct.starts_with("multipart/mixed") {
            out.extend(response_parts(&ct, rest.replace('\n', "\r\n").as_bytes()));
            continue;
        }
        let content_id = mime
            .lines()
            .find_map(|l| l.strip_prefix("Content-ID:"))
            .map(|s| s.trim().to_string());
        let (head, body) = rest.split_once("\n\n").unwrap_or((rest, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap_or("")
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let names = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, _)| n.trim().to_string())
            .collect();
        out.push((content_id, status, names, body.trim().to_string()));
    }
    out
}
