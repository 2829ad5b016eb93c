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
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("credential", &self.credential)
            .field("ca_cert", &self.ca_cert)
            .field("origin", &self.origin)
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
                let path = source
                    .config
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
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
            what: format!("the profile file (--config) '{}'", path.display()),
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

/// The profile file: only `[profiles.NAME]` tables are read here; other tables are left to others.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileSpec>,
}

/// One `[profiles.NAME]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSpec {
    url: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    certificate_path: Option<String>,
    certificate_password_env: Option<String>,
    certificate_password_file: Option<String>,
    access_token_env: Option<String>,
    authority_host: Option<String>,
    token_endpoint: Option<String>,
    ca_cert: Option<String>,
    // Refused with an explanation: secrets never go inline.
    client_secret: Option<toml::Spanned<toml::Value>>,
    certificate_password: Option<toml::Spanned<toml::Value>>,
    access_token: Option<toml::Spanned<toml::Value>>,
}

struct ProfileContext<'a> {
    text: &'a str,
    path: &'a str,
    profile: &'a str,
    base_dir: &'a Path,
    env: EnvLookup<'a>,
}

impl ProfileContext<'_> {
    fn key(&self, key: &str) -> String {
        format!("{key} in profile '{}' ({})", self.profile, self.path)
    }

    /// Resolves a profile, reporting every problem at once (as [`Settings::from_env`] does).
    fn resolve(&self, spec: &ProfileSpec) -> Result<Settings, SettingsError> {
        let mut problems = Problems::default();
        let mut inline = false;
        for (key, value, hint) in [
            (
                "client_secret",
                &spec.client_secret,
                "put the secret in an environment variable and write client_secret_env = \"ITS_NAME\", \
                 or in a file readable only by you and write client_secret_file = \"/path/to/file\"",
            ),
            (
                "certificate_password",
                &spec.certificate_password,
                "use certificate_password_env = \"ITS_NAME\" or certificate_password_file = \"/path\"",
            ),
            (
                "access_token",
                &spec.access_token,
                "put the token in an environment variable and write access_token_env = \"ITS_NAME\"",
            ),
        ] {
            if let Some(v) = value {
                let line = self.text[..v.span().start.min(self.text.len())]
                    .matches('\n')
                    .count()
                    + 1;
                inline = true;
                problems.push(SettingsError::InlineSecret {
                    path: self.path.into(),
                    line,
                    profile: self.profile.into(),
                    key: key.into(),
                    hint: hint.into(),
                });
            }
        }
        let url = match &spec.url {
            Some(v) => {
                problems.take(DataverseUrl::parse(v).map_err(|r| invalid(&self.key("url"), r)))
            }
            None => {
                problems.push(missing(
                    &self.key("url"),
                    "add url = \"https://contoso.crm4.dynamics.com\" (the environment URL)",
                ));
                None
            }
        };
        let ca_cert = spec.ca_cert.as_deref().map(|p| self.base_dir.join(p));
        let origin = format!("profile '{}' in {}", self.profile, self.path);
        if let Some(name) = &spec.access_token_env {
            if spec.client_secret_env.is_some()
                || spec.client_secret_file.is_some()
                || spec.certificate_path.is_some()
            {
                problems.push(SettingsError::ConflictingCredentials {
                    first: self.key("access_token_env"),
                    second: "a client secret or certificate".into(),
                });
            }
            let token = problems.take(self.env_secret("access_token_env", name));
            let settings = url.zip(token).map(|(url, token)| Settings {
                url,
                credential: CredentialSettings::AccessToken(AccessToken::new(
                    token.expose().trim(),
                )),
                ca_cert,
                origin,
            });
            return problems.finish(settings);
        }
        let tenant_id = match spec.tenant_id.as_deref() {
            Some(v) => {
                problems.take(check_tenant(v).map_err(|r| invalid(&self.key("tenant_id"), r)))
            }
            None => {
                problems.push(missing(
                    &self.key("tenant_id"),
                    &TENANT_HINT.replacen("set it", "set tenant_id", 1),
                ));
                None
            }
        };
        let client_id = match spec.client_id.as_deref() {
            Some(v) => {
                problems.take(check_client_id(v).map_err(|r| invalid(&self.key("client_id"), r)))
            }
            None => {
                problems.push(missing(
                    &self.key("client_id"),
                    &CLIENT_HINT.replacen("set it", "set client_id", 1),
                ));
                None
            }
        };
        let secret = match self.credential(spec) {
            // An inline secret's own message already says where the credential goes.
            Err(SettingsError::NoCredential { .. }) if inline => None,
            result => problems.take(result),
        };
        let authority_host = match &spec.authority_host {
            Some(v) => problems
                .take(AuthorityHost::parse(v).map_err(|r| invalid(&self.key("authority_host"), r))),
            None => Some(AuthorityHost::default()),
        };
        let token_endpoint = match &spec.token_endpoint {
            Some(v) => problems
                .take(TokenEndpoint::parse(v).map_err(|r| invalid(&self.key("token_endpoint"), r))),
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
            })
        })();
        problems.finish(settings)
    }

    fn credential(&self, spec: &ProfileSpec) -> Result<ClientCredential, SettingsError> {
        let given: Vec<&str> = [
            ("client_secret_env", spec.client_secret_env.is_some()),
            ("client_secret_file", spec.client_secret_file.is_some()),
            ("certificate_path", spec.certificate_path.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect();
        if given.len() > 1 {
            return Err(SettingsError::ConflictingCredentials {
                first: self.key(given[0]),
                second: given[1].into(),
            });
        }
        if let Some(name) = &spec.client_secret_env {
            return Ok(ClientCredential::Secret(
                self.env_secret("client_secret_env", name)?,
            ));
        }
        if let Some(file) = &spec.client_secret_file {
            return Ok(ClientCredential::Secret(
                self.file_secret("client_secret_file", file)?,
            ));
        }
        if let Some(path) = &spec.certificate_path {
            let password = match (
                &spec.certificate_password_env,
                &spec.certificate_password_file,
            ) {
                (Some(_), Some(_)) => {
                    return Err(SettingsError::ConflictingCredentials {
                        first: self.key("certificate_password_env"),
                        second: "certificate_password_file".into(),
                    });
                }
                (Some(name), None) => Some(self.env_secret("certificate_password_env", name)?),
                (None, Some(file)) => Some(self.file_secret("certificate_password_file", file)?),
                (None, None) => None,
            };
            return Ok(ClientCredential::Certificate {
                path: self.base_dir.join(path),
                password,
            });
        }
        Err(SettingsError::NoCredential {
            hint: format!(
                "profile '{}' in {} needs one of client_secret_env = \"VARIABLE_NAME\", \
                 client_secret_file = \"/path/to/secret\", certificate_path = \"cert.pfx\" \
                 or access_token_env = \"VARIABLE_NAME\"",
                self.profile, self.path
            ),
        })
    }

    /// Reads a secret from the environment variable a profile key names.
    fn env_secret(&self, key: &str, name: &str) -> Result<Secret, SettingsError> {
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            // Do not quote the value: it may be the secret itself, written in the wrong key.
            return Err(invalid(
                &self.key(key),
                format!(
                    "{key} must be the NAME of an environment variable (letters, digits and _), not the secret itself"
                ),
            ));
        }
        // Nor here: a secret that happens to look like a name would be printed.
        match (self.env)(name).filter(|v| !v.is_empty()) {
            Some(v) => Ok(Secret::new(v)),
            None => Err(missing(
                &format!("the environment variable named by {}", self.key(key)),
                "export it with the secret's value before running dvload (its name is not \
                 printed, in case the secret itself was written in its place)",
            )),
        }
    }

    /// Reads a secret from the file a profile key names (trailing line breaks are dropped).
    /// Errors never quote the path: it may be the secret itself, written in the wrong key.
    fn file_secret(&self, key: &str, file: &str) -> Result<Secret, SettingsError> {
        let path = self.base_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Read {
            what: format!(
                "the file named by {} (it should be the path of a file holding the secret; \
                 the path is not printed, in case the secret itself was written in its place)",
                self.key(key)
            ),
            source,
        })?;
        let value = text.trim_end_matches(['\r', '\n']);
        if value.trim().is_empty() {
            return Err(invalid(
                &self.key(key),
                "the file it names is empty; write the secret in it".into(),
            ));
        }
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    const URL: (&str, &str) = ("DATAVERSE_URL", "https://contoso.crm4.dynamics.com");
    const TENANT: (&str, &str) = ("AZURE_TENANT_ID", "22222222-2222-2222-2222-222222222222");
    const CLIENT: (&str, &str) = ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111");
    const SECRET: (&str, &str) = ("AZURE_CLIENT_SECRET", "abc~SECRETVALUE.123");

    fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_env(&env_of(pairs))
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        from_env(pairs).unwrap_err().to_string()
    }

    #[test]
    fn env_client_secret() {
        let s = from_env(&[URL, TENANT, CLIENT, SECRET]).unwrap();
        assert_eq!(s.url.as_str(), "https://contoso.crm4.dynamics.com");
        assert_eq!(s.url.scope(), "https://contoso.crm4.dynamics.com/.default");
        assert_eq!(
            s.url.api_base(),
            "https://contoso.crm4.dynamics.com/api/data/v9.2/"
        );
        assert_eq!(s.origin, "environment");
        let CredentialSettings::Entra(e) = &s.credential else {
            panic!("not entra")
        };
        assert_eq!(e.tenant_id, TENANT.1);
        assert_eq!(e.client_id, CLIENT.1);
        assert_eq!(
            e.authority_host.as_str(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(e.token_endpoint, TokenEndpoint::V2);
        assert_eq!(
            e.token_url(),
            "https://login.microsoftonline.com/22222222-2222-2222-2222-222222222222/oauth2/v2.0/token"
        );
        let ClientCredential::Secret(secret) = &e.secret else {
            panic!("not a secret")
        };
        assert_eq!(secret.expose(), SECRET.1);
    }

    #[test]
    fn env_certificate_authority_and_v1() {
        let s = from_env(&[
            URL,
            TENANT,
            CLIENT,
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/dvload/app.pfx"),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pass"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
            ("DVLOAD_TOKEN_ENDPOINT", "v1"),
            ("DVLOAD_CA_CERT", "/etc/ssl/corp.pem"),
        ])
        .unwrap();
        let CredentialSettings::Entra(e) = &s.credential else {
            panic!()
        };
        let ClientCredential::Certificate { path, password } = &e.secret else {
            panic!()
        };
        assert_eq!(path, Path::new("/etc/dvload/app.pfx"));
        assert_eq!(password.as_ref().unwrap().expose(), "pfx-pass");
        assert_eq!(
            e.token_url(),
            "https://login.microsoftonline.us/22222222-2222-2222-2222-222222222222/oauth2/token"
        );
        assert_eq!(s.ca_cert.as_deref(), Some(Path::new("/etc/ssl/corp.pem")));
    }

    #[test]
    fn env_access_token_needs_no_app() {
        let s = from_env(&[URL, ("DATAVERSE_ACCESS_TOKEN", "eyJ.ready.token\n")]).unwrap();
        let CredentialSettings::AccessToken(t) = &s.credential else {
            panic!()
        };
        assert_eq!(t.expose(), "eyJ.ready.token");
    }

    #[test]
    fn env_missing_settings_name_themselves() {
        assert_eq!(
            err(&[TENANT, CLIENT, SECRET]),
            "DATAVERSE_URL is not set: set it to the environment URL, e.g. export \
             DATAVERSE_URL=https://contoso.crm4.dynamics.com (Power Platform admin center > Environments > \
             your environment > Environment URL)"
        );
        assert_eq!(
            err(&[URL, CLIENT, SECRET]),
            format!("AZURE_TENANT_ID is not set: {TENANT_HINT}")
        );
        assert_eq!(
            err(&[URL, TENANT, SECRET]),
            format!("AZURE_CLIENT_ID is not set: {CLIENT_HINT}")
        );
        assert_eq!(
            err(&[URL, TENANT, CLIENT]),
            "no credential is set: set AZURE_CLIENT_SECRET to the client secret's value, or \
             AZURE_CLIENT_CERTIFICATE_PATH to a PEM or PFX file holding the certificate and its private key \
             (or DATAVERSE_ACCESS_TOKEN to a ready bearer token)"
        );
        // An empty variable counts as unset.
        assert!(
            err(&[URL, ("AZURE_TENANT_ID", " "), CLIENT, SECRET])
                .starts_with("AZURE_TENANT_ID is not set")
        );
        assert!(matches!(
            from_env(&[URL, TENANT, CLIENT]).unwrap_err(),
            SettingsError::NoCredential { .. }
        ));
    }

    #[test]
    fn env_invalid_values() {
        assert_eq!(
            err(&[
                URL,
                TENANT,
                CLIENT,
                SECRET,
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/x.pem")
            ]),
            "both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set: keep only the one you mean to use"
        );
        assert_eq!(
            err(&[URL, ("AZURE_TENANT_ID", "common"), CLIENT, SECRET]),
            "AZURE_TENANT_ID is not usable: 'common' is not a tenant: the client credentials grant needs your \
             own tenant's ID or domain (Entra refuses /common for applications)"
        );
        assert_eq!(
            err(&[URL, ("AZURE_TENANT_ID", "contoso/evil"), CLIENT, SECRET]),
            "AZURE_TENANT_ID is not usable: the value has characters no tenant ID or domain has \
             (expected e.g. 22222222-2222-2222-2222-222222222222 or contoso.onmicrosoft.com)"
        );
        assert_eq!(
            err(&[URL, TENANT, CLIENT, SECRET, ("DVLOAD_TOKEN_ENDPOINT", "v3")]),
            "DVLOAD_TOKEN_ENDPOINT is not usable: 'v3' is neither 'v2' (recommended) nor 'v1' (legacy)"
        );
        assert_eq!(
            err(&[
                URL,
                TENANT,
                CLIENT,
                SECRET,
                ("AZURE_AUTHORITY_HOST", "http://login.example.com")
            ]),
            "AZURE_AUTHORITY_HOST is not usable: 'http://login.example.com/' uses http; use https (plain http \
             is allowed only for loopback hosts such as 127.0.0.1, localhost or [::1], e.g. the emulator)"
        );
    }

    fn url_err(v: &str) -> String {
        err(&[("DATAVERSE_URL", v), TENANT, CLIENT, SECRET])
    }

    fn url_ok(v: &str) -> String {
        from_env(&[("DATAVERSE_URL", v), TENANT, CLIENT, SECRET])
            .unwrap()
            .url
            .as_str()
            .to_string()
    }

    #[test]
    fn dataverse_url_normalised() {
        for v in [
            "https://contoso.crm4.dynamics.com",
            "https://contoso.crm4.dynamics.com/",
            "https://contoso.crm4.dynamics.com/api/data/v9.2",
            "https://contoso.crm4.dynamics.com/api/data/v9.2/",
            "  https://CONTOSO.crm4.dynamics.com:443/API/data/v9.2/ ",
        ] {
            assert_eq!(url_ok(v), "https://contoso.crm4.dynamics.com", "{v}");
        }
        assert_eq!(url_ok("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(url_ok("http://127.1.2.3:9"), "http://127.1.2.3:9");
        assert_eq!(
            url_ok("http://localhost:3000/api/data/v9.2"),
            "http://localhost:3000"
        );
        assert_eq!(url_ok("http://LOCALHOST"), "http://localhost");
        assert_eq!(url_ok("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(url_ok("https://127.0.0.1:8443"), "https://127.0.0.1:8443");
    }

    #[test]
    fn dataverse_url_refused() {
        assert_eq!(
            url_err("http://contoso.crm4.dynamics.com"),
            "DATAVERSE_URL is not usable: 'http://contoso.crm4.dynamics.com/' uses http; use https (plain http \
             is allowed only for loopback hosts such as 127.0.0.1, localhost or [::1], e.g. the emulator)"
        );
        for v in [
            "http://10.0.0.1:8080",
            "http://192.168.1.5",
            "http://[::2]",
            "http://localhost.example.com",
        ] {
            assert!(url_err(v).contains("uses http; use https"), "{v}");
        }
        assert_eq!(
            url_err("contoso.crm4.dynamics.com"),
            "DATAVERSE_URL is not usable: 'contoso.crm4.dynamics.com' is not a URL (relative URL without a \
             base); expected an environment URL such as https://contoso.crm4.dynamics.com"
        );
        assert_eq!(
            url_err("ftp://contoso.crm4.dynamics.com"),
            "DATAVERSE_URL is not usable: 'ftp://contoso.crm4.dynamics.com/' uses 'ftp'; expected an \
             environment URL such as https://contoso.crm4.dynamics.com"
        );
        assert_eq!(
            url_err("https://contoso.crm4.dynamics.com/api/data/v9.1/"),
            "DATAVERSE_URL is not usable: 'https://contoso.crm4.dynamics.com/api/data/v9.1/' points at another \
             Web API version; dvload speaks /api/data/v9.2: give the environment URL alone, e.g. \
             https://contoso.crm4.dynamics.com"
        );
        assert_eq!(
            url_err("https://contoso.crm.dynamics.com/?x=1"),
            "DATAVERSE_URL is not usable: 'https://contoso.crm.dynamics.com/' has a query (?...) or \
             fragment (#...), not shown here as it may hold a secret; expected an environment URL such as \
             https://contoso.crm4.dynamics.com"
        );
        let e = url_err("https://me:hunter2@contoso.crm.dynamics.com");
        assert!(e.contains("has a user name or password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    const PROFILE: &str = r#"
[profiles.prod]
url = "https://contoso.crm4.dynamics.com/"
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret_env = "PROD_SECRET"

[profiles.cert]
url = "https://contoso-test.crm4.dynamics.com"
tenant_id = "22222222-2222-2222-2222-222222222222"
client_id = "33333333-3333-3333-3333-333333333333"
certificate_path = "certs/app.pfx"
certificate_password_env = "CERT_PASS"
authority_host = "https://login.partner.microsoftonline.cn"
token_endpoint = "v1"
ca_cert = "corp-root.pem"

[profiles.pipeline]
url = "http://127.0.0.1:8080"
access_token_env = "PIPELINE_TOKEN"

[run]
other = "tables are left to others"
"#;

    fn profile(text: &str, name: &str, pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_profile_str(
            text,
            Path::new("/etc/dvload/dvload.toml"),
            name,
            &env_of(pairs),
        )
    }

    #[test]
    fn profile_secret_from_env() {
        let s = profile(PROFILE, "prod", &[("PROD_SECRET", "s3cr3t~value"), SECRET]).unwrap();
        assert_eq!(s.url.as_str(), "https://contoso.crm4.dynamics.com");
        assert_eq!(s.origin, "profile 'prod' in /etc/dvload/dvload.toml");
        let CredentialSettings::Entra(e) = &s.credential else {
            panic!()
        };
        let ClientCredential::Secret(secret) = &e.secret else {
            panic!()
        };
        assert_eq!(secret.expose(), "s3cr3t~value");
        assert_eq!(e.tenant_id, "contoso.onmicrosoft.com");
    }

    #[test]
    fn profile_certificate_with_relative_paths() {
        let s = profile(PROFILE, "cert", &[("CERT_PASS", "pw")]).unwrap();
        let CredentialSettings::Entra(e) = &s.credential else {
            panic!()
        };
        let ClientCredential::Certificate { path, password } = &e.secret else {
            panic!()
        };
        assert_eq!(path, Path::new("/etc/dvload/certs/app.pfx"));
        assert_eq!(password.as_ref().unwrap().expose(), "pw");
        assert_eq!(e.token_endpoint, TokenEndpoint::V1);
        assert_eq!(
            e.token_url(),
            "https://login.partner.microsoftonline.cn/22222222-2222-2222-2222-222222222222/oauth2/token"
        );
        assert_eq!(
            s.ca_cert.as_deref(),
            Some(Path::new("/etc/dvload/corp-root.pem"))
        );
    }

    #[test]
    fn profile_access_token() {
        let s = profile(PROFILE, "pipeline", &[("PIPELINE_TOKEN", "tok")]).unwrap();
        let CredentialSettings::AccessToken(t) = &s.credential else {
            panic!()
        };
        assert_eq!(t.expose(), "tok");
        assert_eq!(
            profile(PROFILE, "pipeline", &[]).unwrap_err().to_string(),
            "the environment variable named by access_token_env in profile 'pipeline' \
             (/etc/dvload/dvload.toml) is not set: export it with the secret's value before running dvload \
             (its name is not printed, in case the secret itself was written in its place)"
        );
    }

    #[test]
    fn profile_secret_env_missing() {
        assert_eq!(
            profile(PROFILE, "prod", &[]).unwrap_err().to_string(),
            "the environment variable named by client_secret_env in profile 'prod' \
             (/etc/dvload/dvload.toml) is not set: export it with the secret's value before running dvload \
             (its name is not printed, in case the secret itself was written in its place)"
        );
    }

    #[test]
    fn profile_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "file~secret\n").unwrap();
        let text = r#"[profiles.p]
url = "https://x.crm.dynamics.com"
tenant_id = "t.onmicrosoft.com"
client_id = "c"
client_secret_file = "secret.txt"
"#;
        let path = dir.path().join("dvload.toml");
        std::fs::write(&path, text).unwrap();
        let s = Settings::resolve(
            &SettingsSource {
                profile: Some("p".into()),
                config: Some(path.clone()),
            },
            &env_of(&[]),
        )
        .unwrap();
        let CredentialSettings::Entra(e) = &s.credential else {
            panic!()
        };
        let ClientCredential::Secret(secret) = &e.secret else {
            panic!()
        };
        assert_eq!(secret.expose(), "file~secret");

        std::fs::write(dir.path().join("secret.txt"), "\n").unwrap();
        let e = Settings::from_profile_file(&path, "p", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "client_secret_file in profile 'p' ({}) is not usable: the file it names is empty; \
                 write the secret in it",
                path.display(),
            )
        );
        std::fs::remove_file(dir.path().join("secret.txt")).unwrap();
        let e = Settings::from_profile_file(&path, "p", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read the file named by client_secret_file in profile 'p'"),
            "{e}"
        );
    }

    #[test]
    fn inline_secret_refused_with_reason() {
        let text = "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"abc~INLINE\"\n";
        let e = profile(text, "prod", &[]).unwrap_err();
        assert!(
            matches!(e, SettingsError::InlineSecret { line: 5, .. }),
            "{e:?}"
        );
        let msg = e.to_string();
        assert_eq!(
            msg,
            "/etc/dvload/dvload.toml:5: profile 'prod' has 'client_secret' written inline; secrets never go in \
             the file (it gets copied, committed and shown on screens): put the secret in an environment \
             variable and write client_secret_env = \"ITS_NAME\", or in a file readable only by you and write \
             client_secret_file = \"/path/to/file\""
        );
        assert!(!msg.contains("abc~INLINE"));
        assert!(!format!("{e:?}").contains("abc~INLINE"));
        let text = "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ncertificate_password = \"pw\"\n";
        assert!(
            profile(text, "prod", &[])
                .unwrap_err()
                .to_string()
                .contains("'certificate_password' written inline")
        );
        let text = "[profiles.prod]\naccess_token = \"t\"\n";
        assert!(
            profile(text, "prod", &[])
                .unwrap_err()
                .to_string()
                .contains("'access_token' written inline")
        );
    }

    #[test]
    fn secret_in_env_key_not_echoed() {
        let text = "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"abc~Oops.This-is-the-secret\"\n";
        let e = profile(text, "p", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "client_secret_env in profile 'p' (/etc/dvload/dvload.toml) is not usable: client_secret_env must \
             be the NAME of an environment variable (letters, digits and _), not the secret itself"
        );
    }

    #[test]
    fn a_malformed_profile_file_never_quotes_its_lines() {
        // The bug this guards against: the TOML parser's message quotes the offending line,
        // which printed a secret pasted without quotes (or under a misspelt key).
        for text in [
            "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclient_secret_env = S3CR3T~abc\n",
            "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclientsecret = \"S3CR3T~abc\"\n",
        ] {
            let e = profile(text, "p", &[]).unwrap_err();
            let msg = e.to_string();
            assert!(!msg.contains("S3CR3T"), "{msg}");
            assert!(!format!("{e:?}").contains("S3CR3T"), "{e:?}");
            assert!(
                msg.starts_with("/etc/dvload/dvload.toml: line 3, column "),
                "{msg}"
            );
        }
    }

    #[test]
    fn profile_errors() {
        assert_eq!(
            profile(PROFILE, "staging", &[]).unwrap_err().to_string(),
            "profile 'staging' is not in /etc/dvload/dvload.toml (it has cert, pipeline, prod)"
        );
        assert_eq!(
            profile("[profile.prod]\nurl = \"x\"\n", "prod", &[])
                .unwrap_err()
                .to_string(),
            "profile 'prod' is not in /etc/dvload/dvload.toml (it has no [profiles.NAME] tables)"
        );
        let e = profile(
            "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ntenant = \"t\"\n",
            "prod",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/etc/dvload/dvload.toml: line 3, column 1: unknown field `tenant`"),
            "{e}"
        );
        assert!(e.contains("unknown field `tenant`"), "{e}");
        assert_eq!(
            profile(
                "[profiles.p]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"A\"\n",
                "p",
                &[("A", "x")]
            )
            .unwrap_err()
            .to_string(),
            "url in profile 'p' (/etc/dvload/dvload.toml) is not set: add url = \
             \"https://contoso.crm4.dynamics.com\" (the environment URL)"
        );
        assert_eq!(
            profile(
                "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclient_id = \"c\"\nclient_secret_env = \"A\"\n",
                "p",
                &[("A", "x")]
            )
            .unwrap_err()
            .to_string(),
            format!(
                "tenant_id in profile 'p' (/etc/dvload/dvload.toml) is not set: {}",
                TENANT_HINT.replacen("set it", "set tenant_id", 1)
            )
        );
        assert_eq!(
            profile(
                "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n",
                "p",
                &[]
            )
            .unwrap_err()
            .to_string(),
            "no credential is set: profile 'p' in /etc/dvload/dvload.toml needs one of client_secret_env = \
             \"VARIABLE_NAME\", client_secret_file = \"/path/to/secret\", certificate_path = \"cert.pfx\" or \
             access_token_env = \"VARIABLE_NAME\""
        );
        assert_eq!(
            profile(
                "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
                 client_secret_env = \"A\"\ncertificate_path = \"c.pem\"\n",
                "p",
                &[("A", "x")]
            )
            .unwrap_err()
            .to_string(),
            "both client_secret_env in profile 'p' (/etc/dvload/dvload.toml) and certificate_path are set: keep \
             only the one you mean to use"
        );
        assert_eq!(
            profile(
                "[profiles.p]\nurl = \"http://contoso.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
                 client_secret_env = \"A\"\n",
                "p",
                &[("A", "x")]
            )
            .unwrap_err()
            .to_string(),
            "url in profile 'p' (/etc/dvload/dvload.toml) is not usable: 'http://contoso.crm.dynamics.com/' uses \
             http; use https (plain http is allowed only for loopback hosts such as 127.0.0.1, localhost or \
             [::1], e.g. the emulator)"
        );
    }

    #[test]
    fn resolve_without_profile_reads_env_and_missing_config_file_is_named() {
        let s = Settings::resolve(
            &SettingsSource::default(),
            &env_of(&[URL, TENANT, CLIENT, SECRET]),
        )
        .unwrap();
        assert_eq!(s.origin, "environment");
        let e = Settings::resolve(
            &SettingsSource {
                profile: Some("p".into()),
                config: Some("/nonexistent/dvload.toml".into()),
            },
            &env_of(&[]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "cannot read the profile file (--config) '/nonexistent/dvload.toml'"
        );
    }

    #[test]
    fn every_missing_environment_variable_is_listed_at_once() {
        let e = from_env(&[]).unwrap_err();
        let SettingsError::Several { problems } = &e else {
            panic!("not several: {e:?}")
        };
        assert_eq!(problems.len(), 4, "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "the connection settings have 4 problems:\n  DATAVERSE_URL is not set: "
            ),
            "{msg}"
        );
        for line in [
            "\n  AZURE_TENANT_ID is not set: ",
            "\n  AZURE_CLIENT_ID is not set: ",
            "\n  no credential is set: set AZURE_CLIENT_SECRET",
        ] {
            assert!(msg.contains(line), "{line:?} in {msg}");
        }
        // Missing and unusable together; a ready token needs only the URL.
        let msg = err(&[("DATAVERSE_URL", "http://x.crm.dynamics.com"), CLIENT]);
        assert!(
            msg.starts_with("the connection settings have 3 problems:"),
            "{msg}"
        );
        assert!(msg.contains("\n  DATAVERSE_URL is not usable: "), "{msg}");
        assert!(
            err(&[("DATAVERSE_ACCESS_TOKEN", "t")]).starts_with("DATAVERSE_URL is not set: "),
            "one problem is reported alone"
        );
    }

    #[test]
    fn every_problem_of_a_profile_is_listed_at_once() {
        let text = "[profiles.p]\nclient_secret_env = \"A\"\ntoken_endpoint = \"v9\"\n";
        let msg = profile(text, "p", &[]).unwrap_err().to_string();
        assert!(
            msg.starts_with("the connection settings have 5 problems:"),
            "{msg}"
        );
        for key in [
            "url",
            "tenant_id",
            "client_id",
            "the environment variable named by client_secret_env",
            "token_endpoint",
        ] {
            assert!(
                msg.contains(&format!("\n  {key} in profile 'p'")),
                "{key} in {msg}"
            );
        }
        // An unreadable secret file keeps its reason in the list.
        let text = "[profiles.p]\nclient_secret_file = \"/nonexistent/secret\"\n";
        let msg = profile(text, "p", &[]).unwrap_err().to_string();
        assert!(
            msg.contains("No such file or directory (os error 2)"),
            "{msg}"
        );
    }

    #[test]
    fn a_secret_written_in_a_key_that_names_it_is_never_printed() {
        let base = "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
        // Each would print the value if quoted: a file path, or a name valid as a variable's.
        for tail in [
            "client_secret_file = \"abc~S3CR3T.value\"\n",
            "client_secret_file = \"S3CR3Tvalue\"\n",
            "client_secret_env = \"S3CR3Tvalue\"\n",
            "access_token_env = \"S3CR3Tvalue\"\n",
            "certificate_path = \"c.pfx\"\ncertificate_password_env = \"S3CR3Tvalue\"\n",
            "certificate_password_env = \"S3CR3T~value\"\ncertificate_path = \"c.pfx\"\n",
            "certificate_path = \"c.pfx\"\ncertificate_password_file = \"S3CR3T~value\"\n",
        ] {
            let e = profile(&format!("{base}{tail}"), "p", &[]).unwrap_err();
            let full = format!("{e} {e:?} {}", list(std::slice::from_ref(&e)));
            assert!(!full.contains("S3CR3T"), "{tail}: {full}");
            let key = tail
                .split_whitespace()
                .find(|k| k.contains("_env") || k.contains("_file"))
                .unwrap();
            assert!(e.to_string().contains(key), "{tail}: names {key}: {e}");
        }
        // A secret set in AZURE_TENANT_ID by mistake.
        let e = err(&[URL, ("AZURE_TENANT_ID", "abc~S3CR3T.value"), CLIENT, SECRET]);
        assert!(!e.contains("S3CR3T"), "{e}");
        let e = err(&[
            URL,
            TENANT,
            CLIENT,
            SECRET,
            ("DVLOAD_TOKEN_ENDPOINT", "abc~S3CR3T.value"),
        ]);
        assert!(
            !e.contains("S3CR3T") && e.contains("DVLOAD_TOKEN_ENDPOINT"),
            "{e}"
        );
    }

    #[test]
    fn a_url_never_prints_its_query_fragment_or_user_info() {
        for v in [
            "https://contoso.crm.dynamics.com/?sig=S3CR3T",
            "https://contoso.crm.dynamics.com/api/data/v9.2?code=S3CR3T",
            "https://contoso.crm.dynamics.com/#S3CR3T",
            "https://me:S3CR3T@contoso.crm.dynamics.com/?x=S3CR3T",
            "http://contoso.crm.dynamics.com/?sig=S3CR3T",
            "ftp://contoso.crm.dynamics.com/?sig=S3CR3T",
            "https://me:S3CR3T@[bad/?x=S3CR3T",
            "https://contoso.crm.dynamics.com:99999/?x=S3CR3T",
            "abc~S3CR3T.value",
            "S3CR3T",
        ] {
            let e = url_err(v);
            assert!(!e.contains("S3CR3T"), "{v}: {e}");
            assert!(e.starts_with("DATAVERSE_URL is not usable: "), "{v}: {e}");
            let e = err(&[URL, TENANT, CLIENT, SECRET, ("AZURE_AUTHORITY_HOST", v)]);
            assert!(!e.contains("S3CR3T"), "{v}: {e}");
        }
        // A host and its path are shown.
        assert!(
            url_err("contoso.crm4.dynamics.com")
                .contains("'contoso.crm4.dynamics.com' is not a URL")
        );
        assert!(
            url_err("https://contoso.crm.dynamics.com/api/data/v9.1?x=S3CR3T")
                .contains("'https://contoso.crm.dynamics.com/api/data/v9.1'")
        );
    }
}
