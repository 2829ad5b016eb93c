//! The HTTP client for Entra (and reusable for Dataverse): rustls with the `ring` provider, the
//! system's root certificates plus optional extra roots (`--ca-cert`), and timeouts.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

/// How the HTTP client is built.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The whole request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Establishing the TCP and TLS connection.
    pub connect_timeout: Duration,
    /// A PEM file of extra root certificates to trust besides the system's (a corporate TLS proxy).
    pub ca_cert: Option<PathBuf>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Keep cookies, such as Dataverse's server-affinity cookie (`ARRAffinity`): requests then
    /// stay on one web server. Off, the load spreads across servers, whose limits are separate
    /// (PROTOCOL.md §10.3).
    pub cookies: bool,
}

impl Default for HttpOptions {
    /// 30 s per request (Entra answers in well under a second; a stuck proxy should not hang a
    /// nightly job), 10 s to connect, the system's roots only, `dvload/<version>`.
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            ca_cert: None,
            user_agent: concat!("dvload/", env!("CARGO_PKG_VERSION")).to_string(),
            cookies: false,
        }
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The extra root certificates file cannot be read.
    #[error("cannot read the CA certificate file '{path}' (--ca-cert): {reason}")]
    ReadCaCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The extra root certificates file holds no usable certificate.
    #[error(
        "'{path}' (--ca-cert) holds no PEM certificate ('-----BEGIN CERTIFICATE-----'): {reason}"
    )]
    BadCaCert {
        /// The file.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
}

/// Installs rustls' `ring` crypto provider as the process default, once. Harmless if another part of
/// the program installed one first (that one stays).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds an HTTP client: TLS certificate checks on (system roots + `ca_cert`), timeouts, user agent.
pub fn build_http_client(options: &HttpOptions) -> Result<reqwest::Client, HttpClientError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .user_agent(options.user_agent.clone())
        .cookie_store(options.cookies);
    if let Some(path) = &options.ca_cert {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| HttpClientError::ReadCaCert {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            HttpClientError::BadCaCert {
                path: shown.clone(),
                reason: e.to_string(),
            }
        })?;
        if certs.is_empty() {
            return Err(HttpClientError::BadCaCert {
                path: shown,
                reason: "no certificates found".into(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| HttpClientError::Build(error_chain(&e)))
}

/// The causes of an error (or the error itself when it has none), joined with `: `. reqwest's own
/// message repeats the URL and omits the cause.
pub(crate) fn error_causes(error: &dyn std::error::Error) -> String {
    match error.source() {
        Some(source) => error_chain(source),
        None => error.to_string(),
    }
}

/// An error and its sources, joined with `: ` (reqwest's own message omits the cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credential::tests::testdata;

    #[test]
    fn builds_with_and_without_extra_roots() {
        build_http_client(&HttpOptions::default()).unwrap();
        let options = HttpOptions {
            ca_cert: Some(testdata("cert.pem")),
            ..HttpOptions::default()
        };
        build_http_client(&options).unwrap();
    }

    /// A TLS server on 127.0.0.1 with a certificate from the test CA, answering one token per connection.
    async fn tls_server() -> (String, tokio::task::JoinHandle<()>) {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        install_crypto_provider();
        let certs = CertificateDer::pem_file_iter(testdata("tls-server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(testdata("tls-server-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 8192];
                    let mut got = Vec::new();
                    while !String::from_utf8_lossy(&got).contains("grant_type") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body =
                        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"tls-token"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (base, task)
    }

    fn request(base: &str, options: &HttpOptions) -> crate::auth::EntraTokenRequest {
        crate::auth::EntraTokenRequest::new(
            build_http_client(options).unwrap(),
            format!("{base}/t/oauth2/v2.0/token"),
            crate::auth::TokenEndpoint::V2,
            "c".into(),
            crate::auth::Credential::ClientSecret(crate::auth::Secret::new("s3cret-value")),
            crate::auth::DataverseUrl::parse("https://x.crm.dynamics.com").unwrap(),
            options.timeout,
        )
    }

    #[tokio::test]
    async fn tls_certificates_are_checked_and_extra_roots_trusted() {
        let (base, task) = tls_server().await;
        let now = std::time::SystemTime::now();
        // Unknown issuer: refused.
        let e = request(&base, &HttpOptions::default())
            .request(now)
            .await
            .unwrap_err();
        assert!(
            matches!(e, crate::auth::AuthError::Unreachable { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with(": invalid peer certificate: UnknownIssuer"),
            "{e}"
        );
        // Trusted through --ca-cert.
        let options = HttpOptions {
            ca_cert: Some(testdata("tls-ca.pem")),
            ..HttpOptions::default()
        };
        let token = request(&base, &options).request(now).await.unwrap();
        assert_eq!(token.access_token.expose(), "tls-token");
        task.abort();
    }

    #[test]
    fn bad_extra_roots_are_named() {
        let options = HttpOptions {
            ca_cert: Some(testdata("nope.pem")),
            ..HttpOptions::default()
        };
        let e = build_http_client(&options).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read the CA certificate file '"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let options = HttpOptions {
            ca_cert: Some(empty.clone()),
            ..HttpOptions::default()
        };
        let e = build_http_client(&options).unwrap_err();
        assert!(matches!(e, HttpClientError::BadCaCert { .. }), "{e:?}");
    }
}
