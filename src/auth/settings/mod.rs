//! Connection settings: where the Dataverse environment is and how to sign in, resolved from the
//! Azure SDK's environment variables or from a named profile in a TOML file (`dvload.toml`).
//!
//! Secrets come only from environment variables or files: a profile names the variable or the file,
//! and a secret written inline in the file is refused. The process environment is read through a
//! lookup closure ([`EnvLookup`]) so that tests never touch the real one.
//!
//! Environment variables (the Azure SDK's names, plus three of dvload's own):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `DATAVERSE_URL` | environment URL, e.g. `https://contoso.crm4.dynamics.com` |
//! | `DATAVERSE_ACCESS_TOKEN` | a ready bearer token (pipelines); takes precedence over the `AZURE_*` credential |
//! | `AZURE_TENANT_ID` | directory (tenant) ID or domain |
//! | `AZURE_CLIENT_ID` | application (client) ID |
//! | `AZURE_CLIENT_SECRET` | the client secret's value |
//! | `AZURE_CLIENT_CERTIFICATE_PATH` | PEM (certificate + private key) or PFX/PKCS#12 file |
//! | `AZURE_CLIENT_CERTIFICATE_PASSWORD` | password of the PFX file or of an encrypted PEM key |
//! | `AZURE_AUTHORITY_HOST` | default `https://login.microsoftonline.com` |
//! | `DVLOAD_TOKEN_ENDPOINT` | `v2` (default) or `v1` (legacy `/oauth2/token` with `resource=`) |
//! | `DVLOAD_CA_CERT` | PEM file of extra root certificates (corporate TLS proxies) |
//!
//! A profile file looks like this (relative paths are relative to the file):
//!
//! ```toml
//! [profiles.prod]
//! url = "https://contoso.crm4.dynamics.com"
//! tenant_id = "contoso.onmicrosoft.com"
//! client_id = "11111111-2222-3333-4444-555555555555"
//! client_secret_env = "PROD_DATAVERSE_SECRET"     # or client_secret_file = "/run/secrets/dataverse"
//! # certificate_path = "certs/prod.pfx"           # instead of a secret
//! # certificate_password_env = "PROD_PFX_PASSWORD" # or certificate_password_file
//! # access_token_env = "PIPELINE_TOKEN"           # a ready token instead of a credential
//! # authority_host = "https://login.microsoftonline.us"
//! # token_endpoint = "v1"
//! # ca_cert = "/etc/ssl/certs/corporate-root.pem"
//! ```

mod profile;
use profile::{ConfigFile, ProfileContext};

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use std::collections::BTreeMap;
use url::{Host, Url};

use super::secret::{AccessToken, Secret};

/// Looks up one environment variable by name (`None` when unset). The seam through which settings
/// read the environment; production passes [`process_env`].
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the real process environment (the production [`EnvLookup`]).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The default authority host (public cloud).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The Web API version dvload speaks.
pub const API_PATH: &str = "/api/data/v9.2";

/// The default name of the profile file, looked for in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "dvload.toml";

/// A problem with the connection settings, naming the setting and how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A required setting is absent.
    #[error("{setting} is not set: {hint}")]
    Missing {
        /// The variable or profile key, as the user would write it.
        setting: String,
        /// What to set it to.
        hint: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{setting} is not usable: {reason}")]
    Invalid {
        /// The variable or profile key.
        setting: String,
        /// Why, quoting the value when it is not secret.
        reason: String,
    },
    /// Neither a secret, a certificate nor a ready token was given.
    #[error("no credential is set: {hint}")]
    NoCredential {
        /// Which settings would supply one.
        hint: String,
    },
    /// Two credentials were given and dvload will not guess which one is meant.
    #[error("both {first} and {second} are set: keep only the one you mean to use")]
    ConflictingCredentials {
        /// The first setting.
        first: String,
        /// The second setting.
        second: String,
    },
    /// A secret was written inline in the profile file.
    #[error(
        "{path}:{line}: profile '{profile}' has '{key}' written inline; secrets never go in the file \
         (it gets copied, committed and shown on screens): {hint}"
    )]
    InlineSecret {
        /// The profile file.
        path: String,
        /// The line of the offending key.
        line: usize,
        /// The profile.
        profile: String,
        /// The offending key.
        key: String,
        /// Where the secret should go instead.
        hint: String,
    },
    /// The profile file is not valid TOML or has unknown keys.
    #[error("{path}: {message}")]
    Syntax {
        /// The profile file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The requested profile is not in the file.
    #[error("profile '{name}' is not in {path} ({available})")]
    UnknownProfile {
        /// The requested profile.
        name: String,
        /// The profile file.
        path: String,
        /// The profiles it has.
        available: String,
    },
    /// More than one of the above, all reported at once (one per line).
    #[error("the connection settings have {} problems:{}", problems.len(), list(problems))]
    Several {
        /// Each problem.
        problems: Vec<SettingsError>,
    },
    /// A file named by a setting cannot be read. The reason is the source (not repeated in the
    /// message, which `{:#}` would print twice).
    #[error("cannot read {what}")]
    Read {
        /// Which file: the setting that names it, and its path when that cannot be a secret.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The problems of [`SettingsError::Several`], one per line, each with its causes.
fn list(problems: &[SettingsError]) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
        let mut source = std::error::Error::source(p);
        while let Some(s) = source {
            out.push_str(&format!(": {s}"));
            source = s.source();
        }
    }
    out
}

/// The Dataverse environment URL, normalised to scheme + host (+ port), without a trailing `/`,
/// e.g. `https://contoso.crm4.dynamics.com`.
#[derive(Clone, PartialEq, Eq)]
pub struct DataverseUrl(String);

impl DataverseUrl {
    /// Validates an environment URL. It must be `https`, except that `http` is allowed for loopback
    /// hosts (127.0.0.0/8, `localhost`, `[::1]`, e.g. the emulator). A trailing `/` and a trailing
    /// `/api/data/v9.2` are accepted and removed. The error is the reason, for [`SettingsError::Invalid`].
    pub fn parse(value: &str) -> Result<Self, String> {
        let base = parse_base_url(
            value,
            "an environment URL such as https://contoso.crm4.dynamics.com",
        )?;
        let mut path = base.path().trim_end_matches('/').to_string();
        if path.to_ascii_lowercase().ends_with(API_PATH) {
            path.truncate(path.len() - API_PATH.len());
        }
        let path = path.trim_end_matches('/');
        if path.to_ascii_lowercase().contains("/api/data") {
            return Err(format!(
                "'{}' points at another Web API version; dvload speaks {API_PATH}: give the environment \
                 URL alone, e.g. {}",
                shown(&base),
                origin(&base)
            ));
        }
        Ok(DataverseUrl(format!("{}{path}", origin(&base))))
    }

    /// The environment URL, e.g. `https://contoso.crm4.dynamics.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Web API base, ending in `/`: `https://contoso.crm4.dynamics.com/api/data/v9.2/`.
    pub fn api_base(&self) -> String {
        format!("{}{API_PATH}/", self.0)
    }

    /// The v2 token scope: `https://contoso.crm4.dynamics.com/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.0)
    }

    /// The v1 token resource: the environment URL itself.
    pub fn resource(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DataverseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DataverseUrl").field(&self.0).finish()
    }
}

impl fmt::Display for DataverseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Entra authority host, e.g. `https://login.microsoftonline.com`, without a trailing `/`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorityHost(String);

impl AuthorityHost {
    /// Validates an authority host (`https`, or `http` on loopback for the emulator).
    pub fn parse(value: &str) -> Result<Self, String> {
        let base = parse_base_url(
            value,
            "an authority such as https://login.microsoftonline.com (public), \
             https://login.microsoftonline.us (US Government) or \
             https://login.partner.microsoftonline.cn (China)",
        )?;
        let path = base.path().trim_end_matches('/');
        Ok(AuthorityHost(format!("{}{path}", origin(&base))))
    }

    /// The authority, e.g. `https://login.microsoftonline.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for AuthorityHost {
    /// The public cloud's authority, [`DEFAULT_AUTHORITY_HOST`].
    fn default() -> Self {
        AuthorityHost(DEFAULT_AUTHORITY_HOST.to_string())
    }
}

impl fmt::Debug for AuthorityHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AuthorityHost").field(&self.0).finish()
    }
}

impl fmt::Display for AuthorityHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which Entra token endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `{authority}/{tenant}/oauth2/v2.0/token` with `scope={url}/.default` (recommended).
    #[default]
    V2,
    /// The legacy `{authority}/{tenant}/oauth2/token` with `resource={url}`.
    V1,
}

impl TokenEndpoint {
    /// Parses `v2` or `v1` (case-insensitive).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "v2" | "v2.0" => Ok(TokenEndpoint::V2),
            "v1" | "v1.0" => Ok(TokenEndpoint::V1),
            _ if value.len() <= 8
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') =>
            {
                Err(format!(
                    "'{value}' is neither 'v2' (recommended) nor 'v1' (legacy)"
                ))
            }
            // Longer or odd values are not quoted: they may be a secret in the wrong variable.
            _ => Err("the value is neither 'v2' (recommended) nor 'v1' (legacy)".into()),
        }
    }

    /// The token URL for a tenant.
    pub fn token_url(self, authority: &AuthorityHost, tenant: &str) -> String {
        match self {
            TokenEndpoint::V2 => format!("{authority}/{tenant}/oauth2/v2.0/token"),
            TokenEndpoint::V1 => format!("{authority}/{tenant}/oauth2/token"),
        }
    }
}

/// Everything needed to reach one Dataverse environment.
#[derive(Clone)]
pub struct Settings {
    /// The environment URL.
    pub url: DataverseUrl,
    /// How to get a token.
    pub credential: CredentialSettings,
    /// A PEM file of extra root certificates to trust (corporate TLS proxies).
    pub ca_cert: Option<PathBuf>,
    /// Where the settings came from, for messages: `environment` or `profile 'prod' in dvload.toml`.
    pub origin: String,
    /// Which rejects fail a run, when a profile says (`fail_on`): under `--fail-on` and a
    /// mapping's `[run] fail_on`, over the default.
    pub fail_on: Option<crate::exit::FailOn>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("credential", &self.credential)
            .field("ca_cert", &self.ca_cert)
            .field("origin", &self.origin)
            .field("fail_on", &self.fail_on)
            .finish()
    }
}

/// How a token is obtained.
#[derive(Clone)]
pub enum CredentialSettings {
    /// A ready bearer token, used as is and never refreshed.
    AccessToken(AccessToken),
    /// An Entra application credential (client credentials grant).
    Entra(EntraSettings),
}

impl fmt::Debug for CredentialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSettings::AccessToken(_) => {
                f.debug_struct("AccessToken").finish_non_exhaustive()
            }
            CredentialSettings::Entra(e) => f.debug_tuple("Entra").field(e).finish(),
        }
    }
}

/// An Entra application and its credential.
#[derive(Clone)]
pub struct EntraSettings {
    /// The authority host.
    pub authority_host: AuthorityHost,
    /// The directory (tenant) ID or domain.
    pub tenant_id: String,
    /// The application (client) ID.
    pub client_id: String,
    /// The secret or certificate.
    pub secret: ClientCredential,
    /// v2 or v1 token endpoint.
    pub token_endpoint: TokenEndpoint,
}

impl EntraSettings {
    /// The token URL these settings call.
    pub fn token_url(&self) -> String {
        self.token_endpoint
            .token_url(&self.authority_host, &self.tenant_id)
    }
}

impl fmt::Debug for EntraSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraSettings")
            .field("authority_host", &self.authority_host)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("token_endpoint", &self.token_endpoint)
            .finish()
    }
}

/// The application's credential as configured (the certificate file is read later).
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret's value.
    Secret(Secret),
    /// A certificate with its private key: PEM or PFX/PKCS#12.
    Certificate {
        /// The file.
        path: PathBuf,
        /// The PFX password, or the password of an encrypted PEM key.
        password: Option<Secret>,
    },
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.debug_struct("Secret").finish_non_exhaustive(),
            ClientCredential::Certificate { path, password } => f
                .debug_struct("Certificate")
                .field("path", path)
                .field("has_password", &password.is_some())
                .finish_non_exhaustive(),
        }
    }
}

/// The profile file when none is named: `./dvload.toml` when there is one, else the user's
/// (`$XDG_CONFIG_HOME/dvload/dvload.toml`, `$XDG_CONFIG_HOME` defaulting to `~/.config`, as the
/// XDG base directory specification has it) when there is one, else `./dvload.toml` (whose
/// absence the error then names).
pub fn default_config_file(env: EnvLookup<'_>) -> PathBuf {
    let here = PathBuf::from(DEFAULT_CONFIG_FILE);
    if here.exists() {
        return here;
    }
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| std::path::Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")));
    match base.map(|b| b.join("dvload").join(DEFAULT_CONFIG_FILE)) {
        Some(user) if user.exists() => user,
        _ => here,
    }
}

/// Where to take the settings from.
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    /// A profile name (`--profile`); `None` reads the environment variables.
    pub profile: Option<String>,
    /// The profile file (`--config`); default [`DEFAULT_CONFIG_FILE`] in the current directory.
    pub config: Option<PathBuf>,
}

impl Settings {
    /// Resolves settings from a profile when one is named, else from the environment variables.
    pub fn resolve(source: &SettingsSource, env: EnvLookup<'_>) -> Result<Settings, SettingsError> {
        match &source.profile {
            None => Settings::from_env(env),
            Some(name) => {
                let path = match &source.config {
                    Some(p) => p.clone(),
                    None => default_config_file(env),
                };
                Settings::from_profile_file(&path, name, env)
            }
        }
    }

    /// Resolves settings from the Azure SDK's environment variables (see the module docs). Every
    /// problem is reported at once ([`SettingsError::Several`] when there is more than one), so that
    /// a set-up is fixed in one go rather than one variable per try.
    pub fn from_env(env: EnvLookup<'_>) -> Result<Settings, SettingsError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut problems = Problems::default();
        let url = match get("DATAVERSE_URL") {
            Some(v) => problems
                .take(DataverseUrl::parse(&v).map_err(|reason| invalid("DATAVERSE_URL", reason))),
            None => {
                problems.push(missing(
                    "DATAVERSE_URL",
                    "set it to the environment URL, e.g. export DATAVERSE_URL=https://contoso.crm4.dynamics.com \
                     (Power Platform admin center > Environments > your environment > Environment URL)",
                ));
                None
            }
        };
        let ca_cert = get("DVLOAD_CA_CERT").map(PathBuf::from);
        let origin = "environment".to_string();
        if let Some(token) = get("DATAVERSE_ACCESS_TOKEN") {
            let credential = CredentialSettings::AccessToken(AccessToken::new(token.trim()));
            return problems.finish(url.map(|url| Settings {
                url,
                credential,
                ca_cert,
                origin,
                fail_on: None,
            }));
        }
        let tenant_id = match get("AZURE_TENANT_ID") {
            Some(v) => problems.take(check_tenant(&v).map_err(|r| invalid("AZURE_TENANT_ID", r))),
            None => {
                problems.push(missing("AZURE_TENANT_ID", TENANT_HINT));
                None
            }
        };
        let client_id = match get("AZURE_CLIENT_ID") {
            Some(v) => {
                problems.take(check_client_id(&v).map_err(|r| invalid("AZURE_CLIENT_ID", r)))
            }
            None => {
                problems.push(missing("AZURE_CLIENT_ID", CLIENT_HINT));
                None
            }
        };
        let secret = match (
            get("AZURE_CLIENT_SECRET"),
            get("AZURE_CLIENT_CERTIFICATE_PATH"),
        ) {
            (Some(_), Some(_)) => {
                problems.push(SettingsError::ConflictingCredentials {
                    first: "AZURE_CLIENT_SECRET".into(),
                    second: "AZURE_CLIENT_CERTIFICATE_PATH".into(),
                });
                None
            }
            (Some(secret), None) => Some(ClientCredential::Secret(Secret::new(secret))),
            (None, Some(path)) => Some(ClientCredential::Certificate {
                path: PathBuf::from(path),
                password: env("AZURE_CLIENT_CERTIFICATE_PASSWORD")
                    .filter(|v| !v.is_empty())
                    .map(Secret::new),
            }),
            (None, None) => {
                problems.push(SettingsError::NoCredential {
                    hint: "set AZURE_CLIENT_SECRET to the client secret's value, or \
                           AZURE_CLIENT_CERTIFICATE_PATH to a PEM or PFX file holding the certificate and \
                           its private key (or DATAVERSE_ACCESS_TOKEN to a ready bearer token)"
                        .into(),
                });
                None
            }
        };
        let authority_host = match get("AZURE_AUTHORITY_HOST") {
            Some(v) => problems
                .take(AuthorityHost::parse(&v).map_err(|r| invalid("AZURE_AUTHORITY_HOST", r))),
            None => Some(AuthorityHost::default()),
        };
        let token_endpoint = match get("DVLOAD_TOKEN_ENDPOINT") {
            Some(v) => problems
                .take(TokenEndpoint::parse(&v).map_err(|r| invalid("DVLOAD_TOKEN_ENDPOINT", r))),
            None => Some(TokenEndpoint::V2),
        };
        let settings = (|| {
            Some(Settings {
                url: url?,
                credential: CredentialSettings::Entra(EntraSettings {
                    authority_host: authority_host?,
                    tenant_id: tenant_id?,
                    client_id: client_id?,
                    secret: secret?,
                    token_endpoint: token_endpoint?,
                }),
                ca_cert,
                origin,
                fail_on: None,
            })
        })();
        problems.finish(settings)
    }

    /// Resolves a named profile from a profile file (secrets from `env` or from files it names).
    pub fn from_profile_file(
        path: &Path,
        profile: &str,
        env: EnvLookup<'_>,
    ) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            what: format!(
                "the profile file (--config, DVLOAD_CONFIG; else ./dvload.toml or ~/.config/dvload/dvload.toml) '{}'",
                path.display()
            ),
            source,
        })?;
        Settings::from_profile_str(&text, path, profile, env)
    }

    /// Resolves a named profile from the text of a profile file read from `path` (used for messages
    /// and as the base of relative paths).
    pub fn from_profile_str(
        text: &str,
        path: &Path,
        profile: &str,
        env: EnvLookup<'_>,
    ) -> Result<Settings, SettingsError> {
        let shown_path = path.display().to_string();
        // The parser's own Display quotes the offending line, which may hold a secret pasted by
        // mistake: only its message and position are shown.
        let file: ConfigFile = toml::from_str(text).map_err(|e| SettingsError::Syntax {
            path: shown_path.clone(),
            message: match e.span() {
                Some(span) => {
                    let (line, col) = crate::toml_reader::line_col(text, span.start);
                    format!("line {line}, column {col}: {}", e.message().trim_end())
                }
                None => e.message().trim_end().to_string(),
            },
        })?;
        let Some(spec) = file.profiles.get(profile) else {
            let available = if file.profiles.is_empty() {
                "it has no [profiles.NAME] tables".to_string()
            } else {
                let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                format!("it has {}", names.join(", "))
            };
            return Err(SettingsError::UnknownProfile {
                name: profile.into(),
                path: shown_path,
                available,
            });
        };
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let ctx = ProfileContext {
            text,
            path: &shown_path,
            profile,
            base_dir,
            env,
        };
        ctx.resolve(spec)
    }
}

const TENANT_HINT: &str = "set it to the Directory (tenant) ID shown on the app registration's Overview page \
     in the Microsoft Entra admin center, or to the tenant's domain such as contoso.onmicrosoft.com";
const CLIENT_HINT: &str =
    "set it to the Application (client) ID shown on the app registration's Overview page";

fn missing(setting: &str, hint: &str) -> SettingsError {
    SettingsError::Missing {
        setting: setting.into(),
        hint: hint.into(),
    }
}

fn invalid(setting: &str, reason: String) -> SettingsError {
    SettingsError::Invalid {
        setting: setting.into(),
        reason,
    }
}

/// The problems found while resolving settings, kept so that all of them are reported at once.
#[derive(Default)]
struct Problems(Vec<SettingsError>);

impl Problems {
    fn push(&mut self, problem: SettingsError) {
        self.0.push(problem);
    }

    /// The value, or `None` with its problem kept.
    fn take<T>(&mut self, result: Result<T, SettingsError>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// The settings when nothing was wrong; else the one problem, or all of them.
    fn finish(mut self, settings: Option<Settings>) -> Result<Settings, SettingsError> {
        match settings {
            Some(settings) if self.0.is_empty() => Ok(settings),
            _ if self.0.len() == 1 => Err(self.0.remove(0)),
            _ => Err(SettingsError::Several { problems: self.0 }),
        }
    }
}

/// Parses an absolute http(s) URL that must be https unless its host is a loopback address.
fn parse_base_url(value: &str, example: &str) -> Result<Url, String> {
    let value = value.trim();
    let url = Url::parse(value).map_err(|e| match host_like(value) {
        Some(v) => format!("'{v}' is not a URL ({e}); expected {example}"),
        None => format!("the value is not a URL ({e}); expected {example}"),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{}' has a user name or password in it; remove it (credentials never go in URLs)",
            shown(&url)
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "'{}' has a query (?...) or fragment (#...), not shown here as it may hold a secret; \
             expected {example}",
            shown(&url)
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "'{}' uses http; use https (plain http is allowed only for loopback hosts such as \
                 127.0.0.1, localhost or [::1], e.g. the emulator)",
                shown(&url)
            ));
        }
        other => {
            return Err(format!(
                "'{}' uses '{other}'; expected {example}",
                shown(&url)
            ));
        }
    }
    if url.host().is_none() {
        return Err(format!("'{}' has no host; expected {example}", shown(&url)));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Scheme, host and port, without a trailing `/`.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL for messages: scheme, host, port and path, never the user name, password, query or
/// fragment (any of them may carry a secret, e.g. a SAS signature).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A value that failed to parse as a URL, when it can be quoted: a bare host name such as
/// `contoso.crm4.dynamics.com` (dotted labels of letters, digits and `-`, 63 characters at most,
/// as in DNS). Anything else may be a secret pasted into the wrong variable and is not quoted.
fn host_like(value: &str) -> Option<&str> {
    let labels: Vec<&str> = value.split('.').collect();
    let ok = labels.len() >= 2
        && value.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then_some(value)
}

fn check_tenant(value: &str) -> Result<String, String> {
    let v = value.trim();
    if ["common", "organizations", "consumers"].contains(&v.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "'{v}' is not a tenant: the client credentials grant needs your own tenant's ID or domain \
             (Entra refuses /{v} for applications)"
        ));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        // Not quoted: a value that is no tenant may be a secret set in the wrong variable.
        return Err(
            "the value has characters no tenant ID or domain has (expected e.g. \
             22222222-2222-2222-2222-222222222222 or contoso.onmicrosoft.com)"
                .into(),
        );
    }
    Ok(v.to_string())
}

fn check_client_id(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the client ID has spaces or control characters in it".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests;
