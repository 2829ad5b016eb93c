//! Connecting to Dataverse, shared by `run` and `whoami`: settings (environment, profile or the
//! built-in emulator), the HTTP client, the token cache, and a first `WhoAmI` that proves the
//! set-up works before any row is sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{
    AuthError, AuthorityHost, ClientCredential, CredentialSettings, DataverseUrl, EntraSettings,
    HttpOptions, Secret, Settings, SettingsSource, TokenEndpoint, TokenProvider, build_http_client,
    process_env,
};
use crate::exit::{Exit, ExitError};
use crate::writer::decide::retryable;
use crate::writer::{Client, RetryPolicy, SendFailure, WhoAmI};

/// Connection options common to the commands that talk to Dataverse.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Start the built-in emulator on a free loopback port and use it with its default
    /// credentials (ignores DATAVERSE_URL and AZURE_*).
    #[arg(long)]
    pub emulator: bool,
    /// Read the connection from this profile of the config file instead of the environment.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The profile file (default: dvload.toml in the current directory).
    #[arg(long, value_name = "FILE", requires = "profile")]
    pub config: Option<PathBuf>,
    /// Seconds to wait for each request's answer.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Extra root certificates (PEM) to trust, for a corporate TLS proxy.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not keep Dataverse's server-affinity cookie, so that requests spread across web servers.
    #[arg(long)]
    pub no_affinity: bool,
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
}

/// Resolves the settings, gets a token and calls `WhoAmI`. Every failure of the set-up is an
/// exit-3 error that says which step is wrong and how to fix it.
/// A transient failure of the first request (a 5xx, a 429, a lost answer, a token that expired
/// or was revoked in between) is retried within `policy`, as the writer retries batches: one
/// unlucky answer must not fail a nightly run as if its set-up were wrong.
pub async fn connect(args: &ConnectArgs, policy: &RetryPolicy) -> anyhow::Result<Connection> {
    let (settings, emulator) = if args.emulator {
        let running =
            dataverse_emulator::start(dataverse_emulator::Config::default(), Default::default())
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the built-in emulator: {e}"))?;
        let base = running.base_url().to_string();
        let settings = Settings {
            url: DataverseUrl::parse(&base).map_err(anyhow::Error::msg)?,
            credential: CredentialSettings::Entra(EntraSettings {
                authority_host: AuthorityHost::parse(&base).map_err(anyhow::Error::msg)?,
                tenant_id: dataverse_emulator::defaults::TENANT_ID.into(),
                client_id: dataverse_emulator::defaults::CLIENT_ID.into(),
                secret: ClientCredential::Secret(Secret::new(
                    dataverse_emulator::defaults::CLIENT_SECRET,
                )),
                token_endpoint: TokenEndpoint::V2,
            }),
            ca_cert: None,
            origin: format!("the built-in emulator at {base}"),
        };
        (settings, Some(running))
    } else {
        let source = SettingsSource {
            profile: args.profile.clone(),
            config: args.config.clone(),
        };
        let settings =
            Settings::resolve(&source, &process_env).map_err(|e| auth_exit(format!("{e}")))?;
        (settings, None)
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
    let client = Client::new(http, settings.url.api_base(), Arc::new(tokens), &[])?;
    client
        .tokens()
        .get()
        .await
        .map_err(|e| auth_exit(explain(&e)))?;
    let reply = whoami(&client, &url, policy).await?;
    if reply.status != 200 {
        let error = crate::odata::ODataError::from_response(reply.status, &reply.body);
        return Err(auth_exit(explain_dataverse(reply.status, &error, &url)));
    }
    let whoami: WhoAmI = serde_json::from_slice(&reply.body)
        .map_err(|e| auth_exit(format!("WhoAmI at {url} did not answer as Dataverse does ({e}); is DATAVERSE_URL a Dataverse environment?")))?;
    Ok(Connection {
        client,
        url,
        origin: settings.origin,
        whoami,
        dop_hint: reply.dop_hint,
        emulator,
    })
}

/// Calls `WhoAmI`, retrying what is transient: a lost answer (timeout, reset), 408/429/5xx
/// (waiting `Retry-After` when given), and one 401 with a refreshed token. A connection that
/// cannot be made at all is not retried: the URL is most likely wrong.
async fn whoami(
    client: &Client,
    url: &str,
    policy: &RetryPolicy,
) -> anyhow::Result<crate::writer::client::Reply> {
    let unreachable = |why: &dyn std::fmt::Display| {
        auth_exit(format!(
            "cannot reach Dataverse at {url}: {why}\n  check DATAVERSE_URL (the environment URL, e.g. https://contoso.crm4.dynamics.com) and the network"
        ))
    };
    let mut refreshed = false;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = attempt >= policy.max_attempts.max(1);
        let pause = match client.get("WhoAmI").await {
            Err(SendFailure::Auth(e)) => return Err(auth_exit(explain(&e))),
            Err(SendFailure::NotSent(why)) => return Err(unreachable(&why)),
            Err(SendFailure::Lost(why)) if last => return Err(unreachable(&why)),
            Err(SendFailure::Lost(why)) => {
                tracing::warn!(attempt, reason = %why, "WhoAmI got no answer; trying again");
                None
            }
            Ok(reply) if reply.status == 401 && !refreshed => {
                tracing::warn!("WhoAmI refused the token (401); trying once with a new one");
                client.tokens().invalidate(&reply.token).await;
                refreshed = true;
                continue;
            }
            Ok(reply) if retryable(reply.status) && !last => {
                tracing::warn!(
                    attempt,
                    status = reply.status,
                    "WhoAmI answered a transient error; trying again"
                );
                reply.retry_after.map(|d| d.min(policy.max_delay))
            }
            Ok(reply) => return Ok(reply),
        };
        let delay = pause.unwrap_or_else(|| policy.backoff(attempt - 1, rand::random::<f64>()));
        tokio::time::sleep(delay).await;
    }
}

fn auth_exit(message: String) -> anyhow::Error {
    ExitError {
        exit: Exit::Auth,
        message,
    }
    .into()
}

/// An Entra error with its explanation of which set-up step to fix.
fn explain(e: &AuthError) -> String {
    format!("{e}\n  {}", e.explain())
}

/// What a Dataverse refusal of `WhoAmI` means for the set-up.
fn explain_dataverse(status: u16, error: &crate::odata::ODataError, url: &str) -> String {
    let hint = match status {
        401 => {
            "Dataverse refused the token: check that DATAVERSE_URL is the environment the token was issued for (the scope is <DATAVERSE_URL>/.default), and that the tenant is the environment's"
        }
        403 if error.code == "0x80072560"
            || error.message.contains("not a member of the organization") =>
        {
            "the application has no application user in this environment: in the Power Platform admin centre, \
             Environments > <environment> > Settings > Users + permissions > Application users, add the app and give it a security role"
        }
        403 if error.message.to_lowercase().contains("disabled") => {
            "the application user is disabled: enable it under Settings > Users + permissions > Application users"
        }
        403 => {
            "the application user lacks a privilege: give its security role the privileges the mappings need (create, read, write, append, append to on each table)"
        }
        404 => {
            "no Web API at this address: check DATAVERSE_URL (e.g. https://contoso.crm4.dynamics.com, without /api/data)"
        }
        _ => "Dataverse refused the first request; see the message above",
    };
    format!(
        "WhoAmI at {url} answered {status}: {}\n  {hint}",
        crate::writer::decide::describe(status, error)
    )
}
