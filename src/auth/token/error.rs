//! What Entra ID (or the way to it) answered when no token came: each AADSTS error as the set-up
//! step it points to, transient or not, with secrets redacted from every message.

use super::*;

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
pub(super) fn aadsts_in(description: &str) -> Option<u32> {
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
pub(super) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        out = out
            .replace(*secret, "[redacted]")
            .replace(&encoded, "[redacted]");
    }
    out
}
