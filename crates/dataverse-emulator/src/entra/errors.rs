//! Entra ID token-endpoint errors: the catalogue of PROTOCOL.md §13.5 and the JSON shape of §13.2.

use serde_json::json;

/// A token-endpoint error.
#[derive(Debug, Clone, PartialEq)]
pub struct EntraError {
    /// HTTP status.
    pub status: u16,
    /// OAuth `error` (`invalid_client`, …).
    pub error: &'static str,
    /// AADSTS number.
    pub code: u32,
    /// Message after `AADSTSnnnn: `.
    pub message: String,
}

impl EntraError {
    fn new(status: u16, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        EntraError {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// A required form parameter is missing (AADSTS900144).
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// Wrong secret (AADSTS7000215, 401, verbatim from Azure/sap-automation#418).
    pub fn invalid_secret(app_id: &str) -> Self {
        Self::new(
            401,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{app_id}'."
            ),
        )
    }

    /// Expired secret (AADSTS7000222; `error` and status UNVERIFIED).
    pub fn expired_secret(app_id: &str) -> Self {
        Self::new(
            401,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        )
    }

    /// Neither secret nor assertion (AADSTS7000218; status UNVERIFIED).
    pub fn no_credential() -> Self {
        Self::new(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// App not in tenant (AADSTS700016, `unauthorized_client` per Azure/azure-sdk-for-python#8314).
    pub fn unknown_app(app_id: &str, tenant: &str) -> Self {
        Self::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// Unknown tenant (AADSTS90002; `error` UNVERIFIED).
    pub fn unknown_tenant(tenant: &str) -> Self {
        Self::new(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// Client credentials on /common or /consumers (AADSTS9001023 family, reference-error-codes.md).
    pub fn multi_tenant_endpoint() -> Self {
        Self::new(
            400,
            "invalid_request",
            9001023,
            "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        )
    }

    /// Bad scope (AADSTS70011, verbatim shape from v2-oauth2-client-creds-grant-flow.md).
    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    /// Unknown resource (AADSTS500011; `error` value UNVERIFIED).
    pub fn unknown_resource(resource: &str, tenant: &str) -> Self {
        Self::new(
            400,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// v2 endpoint given `resource` (AADSTS901002).
    pub fn resource_on_v2() -> Self {
        Self::new(
            400,
            "invalid_request",
            901002,
            "The 'resource' request parameter is not supported.",
        )
    }

    /// grant_type other than client_credentials (AADSTS70003).
    pub fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            400,
            "unsupported_grant_type",
            70003,
            format!(
                "The app requested an unsupported grant type '{grant}'. The emulator supports only client_credentials."
            ),
        )
    }

    /// Malformed or unsupported client assertion (AADSTS50027; status UNVERIFIED).
    pub fn invalid_assertion(detail: &str) -> Self {
        Self::new(
            400,
            "invalid_request",
            50027,
            format!("JWT token is invalid or malformed. {detail}"),
        )
    }

    /// Assertion signed by a certificate not registered on the app (AADSTS700027).
    pub fn unknown_certificate(app_id: &str) -> Self {
        Self::new(
            401,
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.] Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{app_id}'."
            ),
        )
    }

    /// Assertion signature invalid (AADSTS700027).
    pub fn bad_signature() -> Self {
        Self::new(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        )
    }

    /// Assertion outside its validity (AADSTS700024).
    pub fn assertion_time(detail: &str) -> Self {
        Self::new(
            400,
            "invalid_client",
            700024,
            format!("Client assertion is not within its valid time range. {detail}"),
        )
    }

    /// Assertion audience wrong (AADSTS700212; wording UNVERIFIED).
    pub fn assertion_audience(aud: &str, expected: &str) -> Self {
        Self::new(
            400,
            "invalid_client",
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{aud}'. The expected audience is '{expected}'."
            ),
        )
    }

    /// Assertion iss/sub not the client id (AADSTS700021-style; UNVERIFIED).
    pub fn assertion_subject(app_id: &str) -> Self {
        Self::new(
            400,
            "invalid_client",
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. The 'iss' and 'sub' claims must both be '{app_id}'."
            ),
        )
    }

    /// Renders the JSON body: `error`, `error_description` (with trace/correlation/timestamp
    /// lines joined by `\r\n`), `error_codes`, `timestamp`, `trace_id`, `correlation_id`,
    /// `error_uri` (PROTOCOL.md §13.2, vectors/token-error-*.json).
    pub fn body(&self, authority: &str, correlation_id: &str) -> serde_json::Value {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M:%SZ")
            .to_string();
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{authority}/error?code={}", self.code),
        })
    }
}
