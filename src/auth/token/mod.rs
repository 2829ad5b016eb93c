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

mod error;
pub use error::*;

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
pub(crate) mod tests;
