//! Token requests to the Entra token endpoint (v2 or v1, client secret or certificate assertion),
//! parsing of its answers, and the typed [`AuthError`] that says which set-up step is wrong.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::cache::FetchToken;
use super::credential::{Credential, CredentialError};
use super::http::{HttpClientError, HttpOptions, build_http_client, error_causes};
use super::secret::AccessToken;
use super::settings::{CredentialSettings, DataverseUrl, Settings, TokenEndpoint};

/// The lifetime assumed when a token answer gives neither `expires_in` nor `expires_on`
/// (Entra always sends `expires_in`; a 401 makes the cache fetch a new token anyway).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// An access token and when it expires.
#[derive(Clone)]
pub struct Token {
    /// The bearer token.
    pub access_token: AccessToken,
    /// When it was requested (the start of its lifetime, by the injected clock).
    pub issued_at: SystemTime,
    /// When it expires; `None` for a ready token whose lifetime dvload does not know.
    pub expires_at: Option<SystemTime>,
    /// Whether asking again can give a different token (false for a ready token).
    pub refreshable: bool,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("refreshable", &self.refreshable)
            .finish_non_exhaustive()
    }
}

/// An error answer of the Entra token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntraError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth error, e.g. `invalid_client`.
    pub error: String,
    /// `error_description` (first line is the message; then trace, correlation ID and timestamp).
    pub description: String,
    /// `error_codes`, e.g. `[7000215]` (or the AADSTS number found in the description).
    pub codes: Vec<u32>,
    /// `trace_id`, for Microsoft support.
    pub trace_id: Option<String>,
    /// `correlation_id`, for Microsoft support.
    pub correlation_id: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
}

impl EntraError {
    /// Parses an error body (`{"error": ..., "error_description": ..., "error_codes": [...], ...}`).
    pub fn parse(status: u16, body: &[u8]) -> Option<EntraError> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let error = v.get("error")?.as_str()?.to_string();
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let description = text("error_description").unwrap_or_default();
        let mut codes: Vec<u32> = v
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
                    .collect()
            })
            .unwrap_or_default();
        if codes.is_empty() {
            codes.extend(aadsts_in(&description));
        }
        Some(EntraError {
            status,
            error,
            description,
            codes,
            trace_id: text("trace_id"),
            correlation_id: text("correlation_id"),
            timestamp: text("timestamp"),
            error_uri: text("error_uri"),
        })
    }

    /// The first line of the description: the message without trace and correlation IDs.
    pub fn message(&self) -> &str {
        self.description.lines().next().unwrap_or("").trim()
    }

    /// Whether Entra answered with this AADSTS code.
    pub fn has_code(&self, code: u32) -> bool {
        self.codes.contains(&code)
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message();
        if message.is_empty() {
            write!(f, "{}", self.error)?;
        } else {
            write!(f, "{message}")?;
        }
        write!(f, " ({}, HTTP {}", self.error, self.status)?;
        if let Some(t) = &self.trace_id {
            write!(f, ", trace ID {t}")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, ", correlation ID {c}")?;
        }
        write!(f, ")")
    }
}

/// The AADSTS number at the start of a description (`AADSTS70011: ...`).
fn aadsts_in(description: &str) -> Option<u32> {
    let rest = &description[description.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Why no token could be had. Branch on the variant; show [`AuthError::explain`] to the user.
/// No variant ever holds the secret, the client assertion or a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// AADSTS90002: the tenant does not exist (in this cloud).
    #[error("Entra ID does not know the tenant: {0}")]
    UnknownTenant(Box<EntraError>),
    /// AADSTS700016: no application with this client ID in the tenant.
    #[error("the application is not registered in this tenant: {0}")]
    UnknownApplication(Box<EntraError>),
    /// AADSTS7000215: wrong client secret.
    #[error("the client secret was refused: {0}")]
    InvalidClientSecret(Box<EntraError>),
    /// AADSTS7000222: the client secret has expired.
    #[error("the client secret has expired: {0}")]
    ExpiredClientSecret(Box<EntraError>),
    /// AADSTS700027 / AADSTS50012: the certificate is not registered or the signature is invalid.
    #[error("the certificate was refused: {0}")]
    CertificateRejected(Box<EntraError>),
    /// AADSTS500133 / AADSTS700024: the assertion's time range was refused.
    #[error("the client assertion's time range was refused: {0}")]
    AssertionTime(Box<EntraError>),
    /// AADSTS500011: the Dataverse environment (resource) is not in the tenant.
    #[error("Entra ID does not know this Dataverse environment: {0}")]
    ResourceNotFound(Box<EntraError>),
    /// AADSTS70011: the scope was refused.
    #[error("the token scope was refused: {0}")]
    InvalidScope(Box<EntraError>),
    /// Entra answered with another error.
    #[error("Entra ID refused the token request: {0}")]
    Entra(Box<EntraError>),
    /// The authority host cannot be reached (DNS, connection, TLS).
    #[error("cannot reach the token endpoint {url}: {reason}")]
    Unreachable {
        /// The token URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// No answer in time.
    #[error("the token endpoint {url} did not answer within {timeout:?}")]
    Timeout {
        /// The token URL.
        url: String,
        /// The configured request timeout.
        timeout: Duration,
    },
    /// An answer that is neither a token nor an Entra error (a proxy's page, a wrong URL).
    #[error("unexpected answer from the token endpoint {url}: HTTP {status}: {detail}")]
    UnexpectedResponse {
        /// The token URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong (never quotes a token).
        detail: String,
    },
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The HTTP client cannot be built.
    #[error(transparent)]
    HttpClient(#[from] HttpClientError),
    /// A ready token (`DATAVERSE_ACCESS_TOKEN`) was refused by Dataverse and cannot be refreshed.
    #[error("the ready access token was refused by Dataverse and dvload cannot refresh it")]
    StaticTokenRejected,
}

impl AuthError {
    /// The Entra error answer behind this error, if Entra answered.
    pub fn entra(&self) -> Option<&EntraError> {
        match self {
            AuthError::UnknownTenant(e)
            | AuthError::UnknownApplication(e)
            | AuthError::InvalidClientSecret(e)
            | AuthError::ExpiredClientSecret(e)
            | AuthError::CertificateRejected(e)
            | AuthError::AssertionTime(e)
            | AuthError::ResourceNotFound(e)
            | AuthError::InvalidScope(e)
            | AuthError::Entra(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (network trouble, 5xx, throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Unreachable { .. } | AuthError::Timeout { .. } => true,
            AuthError::UnexpectedResponse { status, .. } => *status >= 500 || *status == 429,
            AuthError::Entra(e) => {
                e.status >= 500 || e.status == 429 || e.error == "temporarily_unavailable"
            }
            _ => false,
        }
    }

    /// True for Entra's throttling answer (429): transient, and waited out without counting as a
    /// failed attempt.
    pub fn is_throttled(&self) -> bool {
        match self {
            AuthError::UnexpectedResponse { status, .. } => *status == 429,
            AuthError::Entra(e) => e.status == 429,
            _ => false,
        }
    }

    /// Classifies an Entra error answer by its AADSTS codes (then by its `error`).
    pub fn from_entra(e: EntraError) -> AuthError {
        let e = Box::new(e);
        const TABLE: &[(u32, MakeError)] = &[
            (90002, AuthError::UnknownTenant),
            (700016, AuthError::UnknownApplication),
            (7000215, AuthError::InvalidClientSecret),
            (7000222, AuthError::ExpiredClientSecret),
            (700027, AuthError::CertificateRejected),
            (50012, AuthError::CertificateRejected),
            (500133, AuthError::AssertionTime),
            (700024, AuthError::AssertionTime),
            (500011, AuthError::ResourceNotFound),
            (70011, AuthError::InvalidScope),
        ];
        for code in e.codes.clone() {
            if let Some((_, make)) = TABLE.iter().find(|(c, _)| *c == code) {
                return make(e);
            }
        }
        match e.error.as_str() {
            "invalid_scope" => AuthError::InvalidScope(e),
            _ => AuthError::Entra(e),
        }
    }

    /// Which set-up step is wrong and how to fix it, in a few sentences for the user.
    pub fn explain(&self) -> String {
        let text = match self {
            AuthError::UnknownTenant(_) => {
                "The tenant is wrong. Check AZURE_TENANT_ID (tenant_id in a profile): it is the Directory \
                 (tenant) ID on the app registration's Overview page, or a verified domain such as \
                 contoso.onmicrosoft.com. For a national cloud also set AZURE_AUTHORITY_HOST (e.g. \
                 https://login.microsoftonline.us)."
            }
            AuthError::UnknownApplication(_) => {
                "The application (client) ID is not registered in this tenant. Check AZURE_CLIENT_ID (client_id) \
                 against the Application (client) ID on the app registration's Overview page, and check that \
                 AZURE_TENANT_ID is the tenant where the app is registered."
            }
            AuthError::InvalidClientSecret(_) => {
                "The client secret is wrong. Use the secret's VALUE, not its Secret ID: in the app registration \
                 under Certificates & secrets the value is shown only once, when the secret is created; if it \
                 was not saved, create a new secret and put its value in AZURE_CLIENT_SECRET (or the variable \
                 or file the profile names)."
            }
            AuthError::ExpiredClientSecret(_) => {
                "The client secret has expired. Create a new one in the app registration under Certificates & \
                 secrets, put its value in AZURE_CLIENT_SECRET (or the variable or file the profile names), and \
                 delete the expired one."
            }
            AuthError::CertificateRejected(_) => {
                "Entra does not accept the certificate. Upload the certificate (its public part, .cer/.pem/.crt) \
                 to the app registration under Certificates & secrets > Certificates, and check that \
                 AZURE_CLIENT_CERTIFICATE_PATH holds that certificate with its own private key and that \
                 AZURE_CLIENT_ID is that app's ID."
            }
            AuthError::AssertionTime(_) => {
                "Entra refused the client assertion's validity period. Check that this machine's clock is right \
                 (it signs the assertion with the current time; use NTP)."
            }
            AuthError::ResourceNotFound(_) => {
                "Entra does not know the Dataverse environment in this tenant. Check DATAVERSE_URL (url in a \
                 profile): it must be the environment URL from the Power Platform admin center, e.g. \
                 https://contoso.crm4.dynamics.com, in the same tenant (and cloud) as the application."
            }
            AuthError::InvalidScope(_) => {
                "The scope built from DATAVERSE_URL was refused (dvload asks for '<url>/.default'). Check \
                 DATAVERSE_URL: it must be the environment URL only, e.g. https://contoso.crm4.dynamics.com."
            }
            AuthError::Entra(e) if e.has_code(7000218) => {
                "Entra received neither a secret nor an assertion. Set AZURE_CLIENT_SECRET or \
                 AZURE_CLIENT_CERTIFICATE_PATH."
            }
            AuthError::Entra(e) if e.status == 429 || e.error == "temporarily_unavailable" => {
                "Entra is throttling or temporarily unavailable. Try again in a few minutes."
            }
            AuthError::Entra(_) => {
                "Entra refused the request for another reason; its message and trace ID above tell more \
                 (search the AADSTS code in Microsoft's Entra error code reference)."
            }
            AuthError::Unreachable { .. } => {
                "dvload cannot reach the authority host. Check the network, DNS and proxy (HTTPS_PROXY), and \
                 AZURE_AUTHORITY_HOST if it is set. Behind a TLS-inspecting proxy, pass its root certificate \
                 with --ca-cert (or DVLOAD_CA_CERT)."
            }
            AuthError::Timeout { .. } => {
                "The authority host did not answer in time. Check the network and proxy, or try again."
            }
            AuthError::UnexpectedResponse { .. } => {
                "Something other than Entra answered, or the authority URL is wrong. Check AZURE_AUTHORITY_HOST \
                 (default https://login.microsoftonline.com) and any proxy in between."
            }
            AuthError::Credential(_) => {
                "The certificate file cannot be used; see the message above. AZURE_CLIENT_CERTIFICATE_PATH must \
                 name a PEM file with the certificate and its RSA private key, or a PFX file (with \
                 AZURE_CLIENT_CERTIFICATE_PASSWORD)."
            }
            AuthError::HttpClient(_) => "Check the --ca-cert file: it must hold PEM certificates.",
            AuthError::StaticTokenRejected => {
                "The token in DATAVERSE_ACCESS_TOKEN (or the profile's access_token_env) has expired or is for \
                 another environment. Get a new token for DATAVERSE_URL's environment, or configure an \
                 application credential instead so that dvload can refresh tokens itself."
            }
        };
        text.to_string()
    }
}

/// Builds the [`AuthError`] variant for one AADSTS code.
type MakeError = fn(Box<EntraError>) -> AuthError;

/// Replaces each secret, raw or form-encoded, with `[redacted]`.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        out = out
            .replace(*secret, "[redacted]")
            .replace(&encoded, "[redacted]");
    }
    out
}

/// Parses the token endpoint's answer: a token on 2xx, else an [`AuthError`]. `now` is when the request
/// was sent; `expires_in` (a number, or a string from v1) counts from it.
pub fn parse_token_response(
    url: &str,
    status: u16,
    body: &[u8],
    now: SystemTime,
) -> Result<Token, AuthError> {
    let unexpected = |detail: String| AuthError::UnexpectedResponse {
        url: url.into(),
        status,
        detail,
    };
    if !(200..300).contains(&status) {
        if let Some(e) = EntraError::parse(status, body) {
            return Err(AuthError::from_entra(e));
        }
        return Err(unexpected(snippet(body)));
    }
    // Never quote a success body: it holds the token.
    let v: Value =
        serde_json::from_slice(body).map_err(|_| unexpected("the answer is not JSON".into()))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unexpected("the answer has no access_token".into()))?;
    if let Some(kind) = v.get("token_type").and_then(Value::as_str) {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(unexpected(format!(
                "token_type is '{}', not 'Bearer'",
                kind.chars().take(40).collect::<String>()
            )));
        }
    }
    // A lifetime past what the clock can hold (a proxy's nonsense) counts as the default one.
    let expires_at = if let Some(secs) = seconds(v.get("expires_in")) {
        now.checked_add(Duration::from_secs(secs))
    } else if let Some(at) = seconds(v.get("expires_on")) {
        UNIX_EPOCH.checked_add(Duration::from_secs(at))
    } else {
        None
    }
    .unwrap_or(now + DEFAULT_TOKEN_LIFETIME);
    Ok(Token {
        access_token: AccessToken::new(token),
        issued_at: now,
        expires_at: Some(expires_at),
        refreshable: true,
    })
}

/// A whole number of seconds given as a JSON number (v2) or a string (v1: `"3599"`).
fn seconds(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The start of a body for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".into();
    }
    let short: String = text.chars().take(300).collect();
    let short = short.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 300 {
        format!("{short}…")
    } else {
        short
    }
}

/// A client-credentials token request to Entra for one Dataverse environment.
#[derive(Clone)]
pub struct EntraTokenRequest {
    http: reqwest::Client,
    token_url: String,
    endpoint: TokenEndpoint,
    client_id: String,
    credential: Credential,
    dataverse: DataverseUrl,
    timeout: Duration,
}

impl fmt::Debug for EntraTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraTokenRequest")
            .field("token_url", &self.token_url)
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("dataverse", &self.dataverse)
            .finish_non_exhaustive()
    }
}

impl EntraTokenRequest {
    /// A request to `token_url` (v2 or v1 form) for `dataverse`, with this credential.
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        endpoint: TokenEndpoint,
        client_id: String,
        credential: Credential,
        dataverse: DataverseUrl,
        timeout: Duration,
    ) -> Self {
        EntraTokenRequest {
            http,
            token_url,
            endpoint,
            client_id,
            credential,
            dataverse,
            timeout,
        }
    }

    /// The token URL.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Asks Entra for a token; `now` is the injected clock's time (assertion times and expiry count from it).
    pub async fn request(&self, now: SystemTime) -> Result<Token, AuthError> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
        ];
        match self.endpoint {
            TokenEndpoint::V2 => form.push(("scope", self.dataverse.scope())),
            TokenEndpoint::V1 => form.push(("resource", self.dataverse.resource().to_string())),
        }
        let assertion;
        let secret: &str = match &self.credential {
            Credential::ClientSecret(s) => {
                form.push(("client_secret", s.expose().to_string()));
                s.expose()
            }
            Credential::Certificate(c) => {
                assertion = c.client_assertion(&self.client_id, &self.token_url, now)?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion.expose().to_string()));
                assertion.expose()
            }
        };
        self.send(&form, &[secret], now).await
    }

    /// Posts the form; an error answer is cleared of `secrets` before anything quotes it (a proxy or
    /// a broken server might echo the request).
    async fn send(
        &self,
        form: &[(&str, String)],
        secrets: &[&str],
        now: SystemTime,
    ) -> Result<Token, AuthError> {
        let network = |e: reqwest::Error| {
            if e.is_timeout() {
                AuthError::Timeout {
                    url: self.token_url.clone(),
                    timeout: self.timeout,
                }
            } else {
                AuthError::Unreachable {
                    url: self.token_url.clone(),
                    reason: error_causes(&e),
                }
            }
        };
        let response = self
            .http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(network)?;
        if (200..300).contains(&status) {
            parse_token_response(&self.token_url, status, &body, now)
        } else {
            let body = redact(&String::from_utf8_lossy(&body), secrets);
            parse_token_response(&self.token_url, status, body.as_bytes(), now)
        }
    }
}

/// Where tokens come from: Entra (client secret or certificate) or a ready token.
#[derive(Clone)]
pub enum TokenSource {
    /// Ask Entra with the application's credential.
    Entra(Arc<EntraTokenRequest>),
    /// A ready bearer token (`DATAVERSE_ACCESS_TOKEN`), used as is.
    Static(AccessToken),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Entra(r) => f.debug_tuple("Entra").field(r).finish(),
            TokenSource::Static(_) => f.debug_struct("Static").finish_non_exhaustive(),
        }
    }
}

impl TokenSource {
    /// Builds the source the settings describe (loads the certificate, builds the HTTP client).
    /// `options.ca_cert`, when set, wins over the settings' `ca_cert`.
    pub fn from_settings(
        settings: &Settings,
        options: &HttpOptions,
    ) -> Result<TokenSource, AuthError> {
        match &settings.credential {
            CredentialSettings::AccessToken(t) => Ok(TokenSource::Static(t.clone())),
            CredentialSettings::Entra(e) => {
                let credential = Credential::load(&e.secret)?;
                let mut options = options.clone();
                if options.ca_cert.is_none() {
                    options.ca_cert.clone_from(&settings.ca_cert);
                }
                let http = build_http_client(&options)?;
                Ok(TokenSource::Entra(Arc::new(EntraTokenRequest::new(
                    http,
                    e.token_url(),
                    e.token_endpoint,
                    e.client_id.clone(),
                    credential,
                    settings.url.clone(),
                    options.timeout,
                ))))
            }
        }
    }
}

impl FetchToken for TokenSource {
    async fn fetch(&self, now: SystemTime) -> Result<Token, AuthError> {
        match self {
            TokenSource::Entra(request) => request.request(now).await,
            TokenSource::Static(token) => Ok(Token {
                access_token: token.clone(),
                issued_at: now,
                expires_at: None,
                refreshable: false,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        let t = parse_token_response(URL, 200, &vector("token-v2-success.response.json"), now())
            .unwrap();
        assert!(t.access_token.expose().starts_with("eyJ0eXAi"));
        assert_eq!(t.expires_at, Some(now() + Duration::from_secs(3599)));
        assert_eq!(t.issued_at, now());
        assert!(t.refreshable);
    }

    #[test]
    fn v1_success_with_string_expires_in() {
        let t = parse_token_response(URL, 200, &vector("token-v1-success.response.json"), now())
            .unwrap();
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
        let encoded: String =
            url::form_urlencoded::byte_serialize(TEST_SECRET.as_bytes()).collect();
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
        let encoded: String =
            url::form_urlencoded::byte_serialize(TEST_SECRET.as_bytes()).collect();
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
}
