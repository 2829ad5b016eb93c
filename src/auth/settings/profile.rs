//! The profile file (`dvload.toml`, `[profiles.NAME]`): read with serde, each problem placed at
//! its line and column, every problem of a profile reported at once.

use super::*;

/// The profile file: only `[profiles.NAME]` tables are read here; other tables are left to others.
#[derive(Deserialize)]
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, ProfileSpec>,
}

/// One `[profiles.NAME]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileSpec {
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
    fail_on: Option<String>,
    // Refused with an explanation: secrets never go inline.
    client_secret: Option<toml::Spanned<toml::Value>>,
    certificate_password: Option<toml::Spanned<toml::Value>>,
    access_token: Option<toml::Spanned<toml::Value>>,
}

pub(super) struct ProfileContext<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a str,
    pub(super) profile: &'a str,
    pub(super) base_dir: &'a Path,
    pub(super) env: EnvLookup<'a>,
}

impl ProfileContext<'_> {
    pub(super) fn key(&self, key: &str) -> String {
        format!("{key} in profile '{}' ({})", self.profile, self.path)
    }

    /// Resolves a profile, reporting every problem at once (as [`Settings::from_env`] does).
    pub(super) fn resolve(&self, spec: &ProfileSpec) -> Result<Settings, SettingsError> {
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
        let fail_on = match spec.fail_on.as_deref() {
            Some(v) => problems
                .take(crate::exit::FailOn::parse(v).map_err(|r| invalid(&self.key("fail_on"), r))),
            None => None,
        };
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
                fail_on: fail_on.clone(),
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
                fail_on,
            })
        })();
        problems.finish(settings)
    }

    pub(super) fn credential(&self, spec: &ProfileSpec) -> Result<ClientCredential, SettingsError> {
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
    pub(super) fn env_secret(&self, key: &str, name: &str) -> Result<Secret, SettingsError> {
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
    pub(super) fn file_secret(&self, key: &str, file: &str) -> Result<Secret, SettingsError> {
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
