//! Connecting to Dataverse, shared by `run` and `whoami`: settings (environment, profile or the
//! built-in emulator), the HTTP client, the token cache, and a first `WhoAmI` that proves the
//! set-up works before any row is sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{
    AuthError, AuthorityHost, ClientCredential, CredentialSettings, DataverseUrl, EntraSettings,
    EnvLookup, HttpOptions, Secret, Settings, SettingsError, SettingsSource, TokenEndpoint,
    TokenProvider, build_http_client, process_env,
};
use crate::keys::Collation;
use crate::writer::{Client, RetryPolicy, SendFailure, WhoAmI};

/// Where and how to connect (the command line's `--emulator`, `--profile`, `--config`,
/// `--timeout`, `--ca-cert`, `--no-affinity`).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Start the built-in emulator on a free loopback port and use its default credentials.
    pub emulator: bool,
    /// The profile of the config file to read instead of the environment.
    pub profile: Option<String>,
    /// The profile file (default: dvload.toml in the current directory).
    pub config: Option<PathBuf>,
    /// Seconds to wait for each request's answer.
    pub timeout: u64,
    /// Extra root certificates (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Do not keep Dataverse's server-affinity cookie.
    pub no_affinity: bool,
}

impl ConnectOptions {
    /// The connection settings these options name (environment variables or `--profile`),
    /// resolved and checked without any network: `None` with `--emulator`, whose settings exist
    /// once it has started. Every problem is reported at once; as an error it is a usage error
    /// (exit 2, like a bad mapping). Commands call this before they lock or record anything.
    pub fn settings(&self) -> Result<Option<Settings>, SettingsError> {
        self.settings_from(&process_env)
    }

    /// [`ConnectOptions::settings`] with the environment read through `env`.
    pub fn settings_from(&self, env: EnvLookup<'_>) -> Result<Option<Settings>, SettingsError> {
        if self.emulator {
            return Ok(None);
        }
        let source = SettingsSource {
            profile: self.profile.clone(),
            config: self.config.clone(),
        };
        Settings::resolve(&source, env).map(Some)
    }
}

/// A working connection.
pub struct Connection {
    /// The Web API client.
    pub client: Client,
    /// The environment URL.
    pub url: String,
    /// Where the settings came from.
    pub origin: String,
    /// What `WhoAmI` said.
    pub whoami: WhoAmI,
    /// The server's recommended parallelism (`x-ms-dop-hint`).
    pub dop_hint: Option<usize>,
    /// The emulator, when `--emulator` started one (it stops when this is dropped).
    pub emulator: Option<dataverse_emulator::RunningEmulator>,
    /// The profile's `fail_on`, when it has one.
    pub fail_on: Option<crate::exit::FailOn>,
    /// The environment's base language (`organization.languagecode`), when it could be read.
    pub language: Option<u32>,
}

impl Connection {
    /// How the environment compares keys: `chosen` (`--key-collation`) when given, else the
    /// collation of its base language, else (the organization could not be read) `_CI_AI`, the
    /// collation of most languages. The text says which and why, for the run's output.
    pub fn collation(&self, chosen: Option<Collation>) -> (Collation, String) {
        match (chosen, self.language) {
            (Some(c), _) => (c, format!("keys compared {} (--key-collation)", c.name())),
            (None, Some(lcid)) => {
                let c = Collation::for_language(lcid);
                (
                    c,
                    format!("keys compared {} (base language {lcid})", c.name()),
                )
            }
            (None, None) => {
                let c = Collation::default();
                (
                    c,
                    format!(
                        "keys compared {} (the organization's base language could not be read; --key-collation sets it)",
                        c.name()
                    ),
                )
            }
        }
    }
}

/// Resolves the settings, gets a token and calls `WhoAmI`. Settings that cannot work are an
/// exit-2 error listing every problem ([`ConnectOptions::settings`]); every later failure of the
/// set-up is an exit-3 error that says which step is wrong and how to fix it.
/// A transient failure of the first request (a 5xx, a 429, a lost answer, a token that expired
/// or was revoked in between) is retried within `policy`, as the writer retries batches: one
/// unlucky answer must not fail a nightly run as if its set-up were wrong.
pub async fn connect(args: &ConnectOptions, policy: &RetryPolicy) -> crate::Result<Connection> {
    let (settings, emulator) = if let Some(settings) = args.settings()? {
        (settings, None)
    } else {
        let running =
            dataverse_emulator::start(dataverse_emulator::Config::default(), Default::default())
                .await
                .map_err(|e| {
                    crate::Error::Unusable(format!("cannot start the built-in emulator: {e}"))
                })?;
        let base = running.base_url().to_string();
        let settings = Settings {
            url: DataverseUrl::parse(&base).map_err(crate::Error::Unusable)?,
            credential: CredentialSettings::Entra(EntraSettings {
                authority_host: AuthorityHost::parse(&base).map_err(crate::Error::Unusable)?,
                tenant_id: dataverse_emulator::defaults::TENANT_ID.into(),
                client_id: dataverse_emulator::defaults::CLIENT_ID.into(),
                secret: ClientCredential::Secret(Secret::new(
                    dataverse_emulator::defaults::CLIENT_SECRET,
                )),
                token_endpoint: TokenEndpoint::V2,
            }),
            ca_cert: None,
            origin: format!("the built-in emulator at {base}"),
            fail_on: None,
        };
        (settings, Some(running))
    };
    let options = HttpOptions {
        timeout: Duration::from_secs(args.timeout.max(1)),
        ca_cert: args.ca_cert.clone().or_else(|| settings.ca_cert.clone()),
        cookies: !args.no_affinity,
        ..HttpOptions::default()
    };
    let http = build_http_client(&options)?;
    let tokens =
        TokenProvider::from_settings(&settings, &options).map_err(|e| auth_exit(explain(&e)))?;
    let url = settings.url.as_str().to_string();
    let tenant_id = match &settings.credential {
        CredentialSettings::Entra(e) => Some(e.tenant_id.clone()),
        CredentialSettings::AccessToken(_) => None,
    };
    let ready_token = match &settings.credential {
        CredentialSettings::AccessToken(_) => Some(ready_token_source(&settings.origin)),
        CredentialSettings::Entra(_) => None,
    };
    let client = Client::new(http.clone(), settings.url.api_base(), Arc::new(tokens), &[])?;
    if let Err(e) = first_token(&client, policy).await {
        // Entra refuses a scope naming no environment it knows: say first whether DATAVERSE_URL
        // is a Dataverse environment at all, and whose.
        if matches!(
            e,
            AuthError::ResourceNotFound(_) | AuthError::InvalidScope(_)
        ) {
            let probe = probe(&http, &client).await;
            if let Some(problem) = probe.problem(&url, tenant_id.as_deref()) {
                return Err(auth_exit(format!(
                    "{problem}
  (Entra ID refused the token too: {e})"
                )));
            }
        }
        return Err(auth_exit(explain(&e)));
    }
    let reply = whoami(&client, &url, policy).await?;
    if reply.status != 200 {
        let error = crate::odata::ODataError::from_response(reply.status, &reply.body);
        let mut message = explain_dataverse(reply.status, &error, &url, ready_token.as_deref());
        if reply.status == 401 {
            let probe = probe(&http, &client).await;
            message.push_str(&explain_401(
                &url,
                reply.token.expose(),
                &probe,
                tenant_id.as_deref(),
            ));
        }
        return Err(auth_exit(message));
    }
    let whoami: WhoAmI = serde_json::from_slice(&reply.body).map_err(|e| {
        auth_exit(format!(
            "WhoAmI at {url} did not answer as Dataverse does ({e}): DATAVERSE_URL is not a Dataverse environment\n  {URL_HINT}"
        ))
    })?;
    let language = base_language(&client, &url, &whoami.organization_id, policy).await;
    Ok(Connection {
        client,
        url,
        origin: settings.origin,
        fail_on: settings.fail_on,
        whoami,
        dop_hint: reply.dop_hint,
        emulator,
        language,
    })
}

/// Reads the organization's base language (`organizations(id)?$select=languagecode`), which
/// chose the collation its keys are compared by; `None`, with a warning, when it cannot be read
/// (a role without prvReadOrganization): the caller then assumes the common collation.
async fn base_language(
    client: &Client,
    url: &str,
    organization_id: &str,
    policy: &RetryPolicy,
) -> Option<u32> {
    let path = format!("organizations({organization_id})?$select=languagecode");
    let reply = match get_retrying(client, &path, url, policy).await {
        Ok(reply) if reply.status == 200 => reply,
        Ok(reply) => {
            tracing::warn!(
                status = reply.status,
                "cannot read the organization's base language"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot read the organization's base language");
            return None;
        }
    };
    serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()?
        .get("languagecode")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

/// Gets the first access token, retrying what is transient (Entra unreachable, 5xx, 429): a
/// throttled sign-in is waited out like any other 429 (it does not count as an attempt; the
/// policy's `max_elapsed` bounds it), so that a busy moment at Entra does not fail a nightly run
/// as if its set-up were wrong. Any other refusal is returned at once.
async fn first_token(client: &Client, policy: &RetryPolicy) -> Result<(), AuthError> {
    use crate::writer::retry::{Next, Retry};
    let mut retry = Retry::new(policy);
    loop {
        let e = match client.tokens().get().await {
            Ok(_) => return Ok(()),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        let next = if e.is_throttled() {
            retry.throttled(None)
        } else {
            retry.failed(None)
        };
        match next {
            Next::GiveUp => return Err(e),
            Next::Now => {}
            Next::Wait(pause) => {
                tracing::warn!(error = %e, "no access token yet; trying again");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Calls `WhoAmI`, retrying what is transient (see [`get_retrying`]).
async fn whoami(
    client: &Client,
    url: &str,
    policy: &RetryPolicy,
) -> crate::Result<crate::writer::client::Reply> {
    get_retrying(client, "WhoAmI", url, policy).await
}

/// GETs `path` through the one GET driver ([`Client::get_retrying`]) and turns a failure to get
/// any answer into the set-up error it means (exit 3, with what to check).
pub async fn get_retrying(
    client: &Client,
    path: &str,
    url: &str,
    policy: &RetryPolicy,
) -> crate::Result<crate::writer::client::Reply> {
    match client.get_retrying(path, policy).await {
        Ok(reply) => Ok(reply),
        Err(SendFailure::Auth(e)) => Err(auth_exit(explain(&e))),
        Err(SendFailure::NotSent(why)) => Err(auth_exit(format!(
            "nothing answers at DATAVERSE_URL {url}: {why}\n  {URL_HINT}"
        ))),
        Err(SendFailure::Lost(why)) => Err(auth_exit(format!(
            "no answer from Dataverse at {url}: {why}\n  {URL_HINT}; if the network is slow, raise --timeout"
        ))),
    }
}

fn auth_exit(message: String) -> crate::Error {
    crate::Error::Setup(message)
}

/// An Entra error with its explanation of which set-up step to fix.
fn explain(e: &AuthError) -> String {
    format!("{e}\n  {}", e.explain())
}

/// Where a ready token came from, for messages: `DATAVERSE_ACCESS_TOKEN`, or the profile's
/// `access_token_env` (whose value, a variable's name, is not printed).
fn ready_token_source(origin: &str) -> String {
    if origin == "environment" {
        "DATAVERSE_ACCESS_TOKEN".into()
    } else {
        format!("the variable named by access_token_env ({origin})")
    }
}

/// What a Dataverse refusal of `WhoAmI` means for the set-up. `ready_token` names where a ready
/// token came from (it was never fetched by dvload, so the app registration is not in question).
fn explain_dataverse(
    status: u16,
    error: &crate::odata::ODataError,
    url: &str,
    ready_token: Option<&str>,
) -> String {
    let hint = match (status, ready_token) {
        (401, Some(from)) => format!(
            "Dataverse refused the token given in {from}: a ready token is used as it is and never \
             refreshed, so it has expired or was issued for another environment; get a new one for \
             {url} (scope {url}/.default) and set it in {from}"
        ),
        (status, _) => fixed_hint(status, error).to_string(),
    };
    format!(
        "WhoAmI at {url} answered {status}: {}\n  {hint}",
        crate::writer::decide::describe(status, error)
    )
}

/// The set-up step a refusal of `WhoAmI` with a token dvload fetched points at.
fn fixed_hint(status: u16, error: &crate::odata::ODataError) -> &'static str {
    match status {
        401 => {
            "Dataverse refused the token: check that DATAVERSE_URL is the environment the token was issued for \
             (the scope is <DATAVERSE_URL>/.default), and that AZURE_TENANT_ID is the environment's tenant"
        }
        403 if error.code == "0x80072560"
            || error.message.contains("not a member of the organization") =>
        {
            "the application has no application user in this environment: in the Power Platform admin centre, \
             Environments > <environment> > Settings > Users + permissions > Application users, add the app and give it a security role"
        }
        403 if error.code == "0x80040225" || error.message.to_lowercase().contains("disabled") => {
            "the application user is disabled: in the Power Platform admin centre, Environments > <environment> > \
             Settings > Users + permissions > Application users, select the app's user and Activate it"
        }
        403 => {
            "the application user lacks a privilege: give its security role the privileges the mappings need (create, read, write, append, append to on each table)"
        }
        404 => {
            "no Dataverse Web API at this address, so DATAVERSE_URL is not a Dataverse environment: check it \
             (e.g. https://contoso.crm4.dynamics.com, without /api/data)"
        }
        _ => "Dataverse refused the first request; see the message above",
    }
}

const URL_HINT: &str = "check DATAVERSE_URL: it is the environment URL from the Power Platform admin centre \
     (e.g. https://contoso.crm4.dynamics.com, without /api/data), and the network or proxy on the way";

/// What an unauthenticated `GET` of the Web API root says about the environment URL: Dataverse
/// answers 401 with `WWW-Authenticate: Bearer authorization_uri=<authority>/<tenant>/oauth2/authorize,
/// resource_id=<url>` (PROTOCOL.md §13.1).
#[derive(Debug)]
pub enum Probe {
    /// Nothing answered (connection refused, name not resolved, TLS refused, timeout).
    Unreachable(String),
    /// Something answered, but not as Dataverse does.
    NotDataverse(String),
    /// A Dataverse challenge, with the tenant its sign-in URL names.
    Dataverse {
        /// The tenant (GUID) of the environment, when the challenge names one.
        tenant: Option<String>,
    },
}

impl Probe {
    /// The set-up problem this probe reveals, if any: the URL is wrong, or belongs to another
    /// tenant than `tenant_id` (compared only when both are GUIDs).
    pub fn problem(&self, url: &str, tenant_id: Option<&str>) -> Option<String> {
        match self {
            Probe::Unreachable(reason) => Some(format!(
                "nothing answers at DATAVERSE_URL {url}: {reason}\n  {URL_HINT}"
            )),
            Probe::NotDataverse(what) => Some(format!(
                "DATAVERSE_URL {url} is not a Dataverse environment: {what}\n  {URL_HINT}"
            )),
            Probe::Dataverse {
                tenant: Some(env_tenant),
            } => match tenant_id {
                Some(mine)
                    if uuid::Uuid::parse_str(mine).is_ok()
                        && !mine.eq_ignore_ascii_case(env_tenant) =>
                {
                    Some(format!(
                        "the environment {url} belongs to tenant {env_tenant} (its sign-in challenge says so), \
                         but AZURE_TENANT_ID is {mine}\n  use the environment's tenant, with an app registered there, \
                         or check that DATAVERSE_URL is the environment you meant"
                    ))
                }
                _ => None,
            },
            Probe::Dataverse { tenant: None } => None,
        }
    }
}

/// Probes the Web API root without a token.
pub async fn probe(http: &reqwest::Client, client: &Client) -> Probe {
    let response = match http
        .get(client.api_base())
        .header("Accept", "application/json")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Probe::Unreachable("no answer in time".into()),
        Err(e) => {
            // reqwest's own text repeats the URL; its causes say what failed.
            let mut parts: Vec<String> = Vec::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let text = s.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                source = s.source();
            }
            if parts.is_empty() {
                parts.push(e.without_url().to_string());
            }
            return Probe::Unreachable(parts.join(": "));
        }
    };
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.to_ascii_lowercase().contains("authorization_uri="))
        .map(str::to_string);
    match (status, challenge) {
        (401, Some(c)) => Probe::Dataverse {
            tenant: challenge_tenant(&c),
        },
        (status, _) => Probe::NotDataverse(format!(
            "its Web API root answered HTTP {status} without Dataverse's sign-in challenge \
             (401 with WWW-Authenticate: Bearer authorization_uri=...)"
        )),
    }
}

/// The tenant segment of `authorization_uri=https://login.microsoftonline.com/<tenant>/oauth2/authorize`.
fn challenge_tenant(header: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let start = lower.find("authorization_uri=")? + "authorization_uri=".len();
    let value = header[start..].split([',', ' ']).next()?.trim_matches('"');
    let url = url::Url::parse(value).ok()?;
    let tenant = url.path_segments()?.find(|s| !s.is_empty())?;
    Some(tenant.to_string())
}

/// The claims of a JWT, decoded without checking its signature (only to explain a refusal).
pub fn token_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why Dataverse refused the token, from the token's own claims and the environment's challenge.
fn explain_401(url: &str, token: &str, probe: &Probe, tenant_id: Option<&str>) -> String {
    let claims = token_claims(token);
    let claim = |name: &str| {
        claims
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let mut out = String::new();
    if let Some(aud) = claim("aud")
        && aud.trim_end_matches('/') != url.trim_end_matches('/')
    {
        out.push_str(&format!(
            "\n  the token is for the environment {aud}, not for DATAVERSE_URL {url}: a different environment \
             than the token's audience; get a token for {url} (or set DATAVERSE_URL to {aud})"
        ));
    }
    if let (Some(tid), Probe::Dataverse { tenant: Some(env) }) = (claim("tid"), probe)
        && uuid::Uuid::parse_str(env).is_ok()
        && !tid.eq_ignore_ascii_case(env)
    {
        out.push_str(&format!(
            "\n  the token was issued by tenant {tid}, but the environment belongs to tenant {env}"
        ));
    } else if let Some(p) = probe.problem(url, tenant_id) {
        out.push_str(&format!("\n  {p}"));
    }
    if claim("exp")
        .or_else(|| {
            claims
                .as_ref()
                .and_then(|c| c.get("exp"))
                .map(|v| v.to_string())
        })
        .and_then(|e| e.parse::<i64>().ok())
        .is_some_and(|exp| exp <= jiff::Timestamp::now().as_second())
    {
        out.push_str("\n  the token has expired: get a new one");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(emulator: bool) -> ConnectOptions {
        ConnectOptions {
            emulator,
            profile: None,
            config: None,
            timeout: 120,
            ca_cert: None,
            no_affinity: false,
        }
    }

    #[test]
    fn settings_are_resolved_without_network_and_every_problem_is_listed() {
        let nothing = |_: &str| None;
        assert!(args(true).settings_from(&nothing).unwrap().is_none());
        let e = args(false).settings_from(&nothing).unwrap_err();
        assert!(
            matches!(&e, SettingsError::Several { problems } if problems.len() == 4),
            "{e}"
        );
        // A settings problem exits 2 like any usage error.
        assert_eq!(
            crate::exit::Exit::for_error(&crate::Error::from(e)),
            crate::exit::Exit::Unusable
        );
        let env = |name: &str| match name {
            "DATAVERSE_URL" => Some("https://contoso.crm4.dynamics.com".to_string()),
            "DATAVERSE_ACCESS_TOKEN" => Some("t".to_string()),
            _ => None,
        };
        let s = args(false).settings_from(&env).unwrap().unwrap();
        assert_eq!(s.url.as_str(), "https://contoso.crm4.dynamics.com");
        assert_eq!(ready_token_source(&s.origin), "DATAVERSE_ACCESS_TOKEN");
    }
}
