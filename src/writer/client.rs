//! The Dataverse Web API client: sends `$batch` requests and `WhoAmI` with a cached bearer token,
//! and tells a request that never left from one whose answer was lost.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::auth::{AccessToken, AuthError, TokenProvider};
use crate::odata::EncodedBatch;

/// A Web API answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Retry-After`, parsed (seconds, possibly decimal).
    pub retry_after: Option<Duration>,
    /// `x-ms-dop-hint`: the degree of parallelism the server recommends.
    pub dop_hint: Option<usize>,
    /// `Date`: the server's clock when it answered (whole seconds).
    pub date: Option<jiff::Timestamp>,
    /// The body.
    pub body: Vec<u8>,
    /// The token the request carried (to refresh it once if it was refused).
    pub token: AccessToken,
}

impl Reply {
    /// The body as JSON when the answer is 200; otherwise what Dataverse said, explained.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if self.status != 200 {
            let error = crate::odata::ODataError::from_response(self.status, &self.body);
            return Err(super::decide::describe(self.status, &error));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON: {e}"))
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// Nothing reached the server (connection refused, name not resolved, TLS refused).
    #[error("{0}")]
    NotSent(String),
    /// The request went out but no complete answer came back (timeout, connection reset).
    #[error("{0}")]
    Lost(String),
    /// No token could be had.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// What `WhoAmI` says.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct WhoAmI {
    /// The application user's `systemuserid`.
    #[serde(rename = "UserId")]
    pub user_id: String,
    /// Its business unit.
    #[serde(rename = "BusinessUnitId")]
    pub business_unit_id: String,
    /// The organization.
    #[serde(rename = "OrganizationId")]
    pub organization_id: String,
}

/// Sends requests to one Dataverse environment.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    api_base: String,
    tokens: Arc<TokenProvider>,
    headers: HeaderMap,
}

impl Client {
    /// A client for `api_base` (`https://org.crm.dynamics.com/api/data/v9.2/`); `headers` go on
    /// every request (`MSCRM.*` options).
    pub fn new(
        http: reqwest::Client,
        api_base: String,
        tokens: Arc<TokenProvider>,
        headers: &[(String, String)],
    ) -> crate::Result<Client> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| crate::Error::Unusable(format!("header {name}: {e}")))?,
                HeaderValue::from_str(value)
                    .map_err(|e| crate::Error::Unusable(format!("header {name}: {e}")))?,
            );
        }
        Ok(Client {
            http,
            api_base,
            tokens,
            headers: map,
        })
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }

    /// The Web API root.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// Sends one `$batch` request and reads its answer whole.
    pub async fn post_batch(&self, batch: &EncodedBatch) -> Result<Reply, SendFailure> {
        let token = self.tokens.get().await?;
        let mut request = self
            .http
            .post(format!("{}$batch", self.api_base))
            .bearer_auth(token.expose())
            .header(reqwest::header::CONTENT_TYPE, &batch.content_type)
            .headers(self.headers.clone());
        for (name, value) in &batch.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .body(batch.body.clone())
            .send()
            .await
            .map_err(classify)?;
        read_reply(response, token).await
    }

    /// GETs `path` by the one set of retry rules ([`super::retry::Retry`]): a throttle is
    /// waited out as asked, a transient failure (no answer, 408, 5xx) is tried again with
    /// backoff, a refused token is replaced at once a few times. The last answer is the result;
    /// a failure to get any answer after the last attempt is the error.
    pub async fn get_retrying(
        &self,
        path: &str,
        policy: &super::RetryPolicy,
    ) -> Result<Reply, SendFailure> {
        use super::retry::{Next, Retry, retryable};
        let what = path.split(['(', '?']).next().unwrap_or(path);
        let mut retry = Retry::new(policy);
        loop {
            let reply = self.get(path).await;
            let next = match &reply {
                Err(SendFailure::Lost(why)) => {
                    let next = retry.failed(None);
                    if next != Next::GiveUp {
                        tracing::warn!(failures = retry.failures(), reason = %why, request = what, "got no answer; trying again");
                    }
                    next
                }
                Err(_) => Next::GiveUp,
                Ok(r) if r.status == 401 => match retry.token_refused() {
                    Next::Now => {
                        self.tokens.invalidate(&r.token).await;
                        if self.tokens.get().await.is_err() {
                            // No new token to be had (a ready token cannot be refreshed).
                            Next::GiveUp
                        } else {
                            tracing::warn!(
                                request = what,
                                "the token was refused (401); trying with a new one"
                            );
                            Next::Now
                        }
                    }
                    other => other,
                },
                Ok(r) if r.status == 429 => {
                    tracing::warn!(request = what, "throttled (429); waiting as asked");
                    retry.throttled(r.retry_after)
                }
                Ok(r) if retryable(r.status) => {
                    let next = retry.failed(r.retry_after);
                    if next != Next::GiveUp {
                        tracing::warn!(
                            failures = retry.failures(),
                            status = r.status,
                            request = what,
                            "a transient error; trying again"
                        );
                    }
                    next
                }
                Ok(_) => Next::GiveUp,
            };
            match next {
                Next::GiveUp => return reply,
                Next::Now => {}
                Next::Wait(pause) => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Calls `WhoAmI`.
    pub async fn get(&self, path: &str) -> Result<Reply, SendFailure> {
        let token = self.tokens.get().await?;
        let response = self
            .http
            .get(format!("{}{path}", self.api_base))
            .bearer_auth(token.expose())
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(classify)?;
        read_reply(response, token).await
    }
}

async fn read_reply(response: reqwest::Response, token: AccessToken) -> Result<Reply, SendFailure> {
    let status = response.status().as_u16();
    let headers = response.headers();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = text("content-type");
    let dop_hint = text("x-ms-dop-hint").and_then(|v| v.trim().parse().ok());
    let date = text("date").and_then(|v| crate::odata::parse_http_date(&v));
    // Seconds, or an HTTP date counted from the answer's own Date (the client's clock when
    // it has none).
    let now = date.unwrap_or_else(jiff::Timestamp::now);
    let retry_after = text("retry-after").and_then(|v| crate::odata::retry_after_at(&v, now));
    let body = response
        .bytes()
        .await
        .map_err(|e| SendFailure::Lost(format!("the answer was cut off: {}", reason(&e))))?
        .to_vec();
    Ok(Reply {
        status,
        content_type,
        retry_after,
        dop_hint,
        date,
        body,
        token,
    })
}

/// A connection that could not be made means nothing was sent; anything later (a timeout, a
/// reset while waiting) means the request may have been applied.
fn classify(e: reqwest::Error) -> SendFailure {
    if e.is_connect() {
        SendFailure::NotSent(format!("cannot connect: {}", reason(&e)))
    } else if e.is_timeout() {
        SendFailure::Lost("no answer within the timeout".to_string())
    } else {
        SendFailure::Lost(reason(&e))
    }
}

/// The error and its causes, without the URL (which reqwest repeats) and never a header.
fn reason(e: &reqwest::Error) -> String {
    let mut parts = vec![without_url(e)];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The error's own text with its URL taken out.
fn without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "the server"),
        None => text,
    }
}
