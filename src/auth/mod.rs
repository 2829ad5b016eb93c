//! Entra ID server-to-server authentication: connection settings, credentials (client secret,
//! certificate, ready token), token requests, and the shared token cache that workers ask for tokens.
//!
//! The usual path: [`Settings::resolve`] → [`TokenProvider::from_settings`] → [`TokenProvider::get`]
//! before each request, [`TokenProvider::invalidate`] after a 401. On failure, branch on
//! [`AuthError`] and show [`AuthError::explain`].

pub mod cache;
pub mod credential;
pub mod http;
pub mod secret;
pub mod settings;
pub mod token;

pub use cache::{Clock, FetchToken, SystemClock, TokenProvider};
pub use credential::{Certificate, Credential, CredentialError};
pub use http::{HttpClientError, HttpOptions, build_http_client, install_crypto_provider};
pub use secret::{AccessToken, Secret};
pub use settings::{
    AuthorityHost, ClientCredential, CredentialSettings, DataverseUrl, EntraSettings, EnvLookup,
    Settings, SettingsError, SettingsSource, TokenEndpoint, process_env,
};
pub use token::{
    AuthError, EntraError, EntraTokenRequest, Token, TokenSource, parse_token_response,
};

#[cfg(test)]
mod tests {
    //! Every public type that holds a secret or a token, formatted with `{:?}` and `{:#?}`, must not show it.
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    const SECRET: &str = "SUPER-SECRET-VALUE-42";
    const PASSWORD: &str = "test-pfx-password";

    fn assert_hidden(what: &str, debug: String, pretty: String, hidden: &[&str]) {
        for text in [&debug, &pretty] {
            for h in hidden {
                assert!(!text.contains(h), "{what} shows a secret: {text}");
            }
        }
    }

    #[tokio::test]
    async fn debug_output_never_shows_secrets() {
        let cert_path = credential::tests::testdata("cert.pfx");
        let certificate = Certificate::from_file(&cert_path, Some(&Secret::new(PASSWORD))).unwrap();
        let assertion = certificate
            .client_assertion("c", "https://a/t/oauth2/v2.0/token", SystemTime::now())
            .unwrap();
        let assertion_text = assertion.expose().to_string();
        let hidden = [SECRET, PASSWORD, &assertion_text[..60]];
        macro_rules! check {
            ($($e:expr),* $(,)?) => {$(
                let v = &$e;
                assert_hidden(stringify!($e), format!("{v:?}"), format!("{v:#?}"), &hidden);
            )*};
        }

        let env_secret = |k: &str| match k {
            "DATAVERSE_URL" => Some("https://x.crm.dynamics.com".to_string()),
            "AZURE_TENANT_ID" => Some("t".into()),
            "AZURE_CLIENT_ID" => Some("c".into()),
            "AZURE_CLIENT_SECRET" => Some(SECRET.into()),
            _ => None,
        };
        let secret_settings = Settings::from_env(&env_secret).unwrap();
        let env_cert = |k: &str| match k {
            "AZURE_CLIENT_SECRET" => None,
            "AZURE_CLIENT_CERTIFICATE_PATH" => Some(cert_path.display().to_string()),
            "AZURE_CLIENT_CERTIFICATE_PASSWORD" => Some(PASSWORD.into()),
            other => env_secret(other),
        };
        let cert_settings = Settings::from_env(&env_cert).unwrap();
        let env_token = |k: &str| match k {
            "DATAVERSE_URL" => Some("https://x.crm.dynamics.com".to_string()),
            "DATAVERSE_ACCESS_TOKEN" => Some(SECRET.into()),
            _ => None,
        };
        let token_settings = Settings::from_env(&env_token).unwrap();
        let CredentialSettings::Entra(entra_settings) = secret_settings.credential.clone() else {
            panic!()
        };

        let secret_source =
            TokenSource::from_settings(&secret_settings, &HttpOptions::default()).unwrap();
        let cert_source =
            TokenSource::from_settings(&cert_settings, &HttpOptions::default()).unwrap();
        let static_source =
            TokenSource::from_settings(&token_settings, &HttpOptions::default()).unwrap();
        let TokenSource::Entra(request) = secret_source.clone() else {
            panic!()
        };
        let provider = TokenProvider::new(static_source.clone());
        provider.get().await.unwrap();
        let token = Token {
            access_token: AccessToken::new(SECRET),
            issued_at: SystemTime::now(),
            expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
            refreshable: true,
        };

        check!(
            Secret::new(SECRET),
            AccessToken::new(SECRET),
            assertion,
            ClientCredential::Secret(Secret::new(SECRET)),
            ClientCredential::Certificate {
                path: PathBuf::from("/x.pfx"),
                password: Some(Secret::new(PASSWORD))
            },
            CredentialSettings::AccessToken(AccessToken::new(SECRET)),
            entra_settings,
            secret_settings,
            cert_settings,
            token_settings,
            Credential::ClientSecret(Secret::new(SECRET)),
            Credential::Certificate(certificate.clone()),
            certificate,
            secret_source,
            cert_source,
            static_source,
            request,
            Arc::clone(&request),
            provider,
            token,
            Ok::<Token, AuthError>(Token {
                access_token: AccessToken::new(SECRET),
                issued_at: SystemTime::now(),
                expires_at: None,
                refreshable: false,
            }),
        );
    }
}
