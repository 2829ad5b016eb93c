//! Application credentials ready to use: a client secret, or a certificate loaded from PEM or PFX
//! that signs client-assertion JWTs (RS256, `x5t` and `x5t#S256` headers).

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::secret::Secret;
use super::settings::ClientCredential;

/// How long a client assertion is valid (`exp` - `nbf`). Entra accepts up to 10 minutes.
pub const ASSERTION_LIFETIME_SECS: u64 = 600;

/// A certificate or its key cannot be used. Never quotes a password or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The file cannot be read.
    #[error("cannot read the certificate file {path}: {reason}")]
    Read {
        /// The file, quoted; or, when the value does not look like a path (it may be the
        /// password, set in the wrong variable), words saying so.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A PEM file without a `CERTIFICATE` block.
    #[error(
        "'{path}' holds no certificate: a PEM file needs a '-----BEGIN CERTIFICATE-----' block followed by \
         the private key (e.g. cat cert.pem key.pem > both.pem), or use a PFX file"
    )]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// A PEM file without a private key.
    #[error(
        "'{path}' holds no private key: a PEM file needs the certificate followed by its private key \
         ('-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----'), or use a PFX file"
    )]
    NoPrivateKey {
        /// The file.
        path: String,
    },
    /// The key is encrypted and no password was given.
    #[error(
        "'{path}' is protected by a password: set AZURE_CLIENT_CERTIFICATE_PASSWORD (or \
         certificate_password_env / certificate_password_file in the profile)"
    )]
    PasswordRequired {
        /// The file.
        path: String,
    },
    /// The password does not open the file.
    #[error(
        "cannot open '{path}' with the password given in AZURE_CLIENT_CERTIFICATE_PASSWORD (or the profile's \
         certificate password): {reason}"
    )]
    WrongPassword {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// Not a PEM file and not a PKCS#12 archive.
    #[error("'{path}' is neither a PEM file nor a PFX/PKCS#12 archive: {reason}")]
    UnknownFormat {
        /// The file.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// The key is not an RSA key of at least 2048 bits.
    #[error(
        "the private key in '{path}' is not usable: {reason} (dvload signs client assertions with RS256 and \
         needs an RSA key of 2048 bits or more)"
    )]
    UnsupportedKey {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The private key does not belong to the (first) certificate.
    #[error(
        "the private key in '{path}' does not belong to its certificate: put the certificate that was \
         uploaded to the app registration together with its own private key"
    )]
    KeyMismatch {
        /// The file.
        path: String,
    },
    /// Signing failed.
    #[error("cannot sign the client assertion with the key from '{path}'")]
    Sign {
        /// The file.
        path: String,
    },
}

/// A credential ready to put in a token request.
#[derive(Clone)]
pub enum Credential {
    /// A client secret's value.
    ClientSecret(Secret),
    /// A certificate with its private key.
    Certificate(Certificate),
}

impl Credential {
    /// Loads the configured credential (reads and checks the certificate file).
    pub fn load(config: &ClientCredential) -> Result<Credential, CredentialError> {
        match config {
            ClientCredential::Secret(s) => Ok(Credential::ClientSecret(s.clone())),
            ClientCredential::Certificate { path, password } => Ok(Credential::Certificate(
                Certificate::from_file(path, password.as_ref())?,
            )),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ClientSecret(_) => f.debug_struct("ClientSecret").finish_non_exhaustive(),
            Credential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

/// An X.509 certificate and its RSA private key, able to sign client assertions.
#[derive(Clone)]
pub struct Certificate {
    key: std::sync::Arc<RsaKeyPair>,
    der: Vec<u8>,
    x5t: String,
    x5t_s256: String,
    source: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("source", &self.source)
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

/// The claims of a client assertion, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AssertionClaims {
    /// The token endpoint URL.
    pub aud: String,
    /// The client ID.
    pub iss: String,
    /// The client ID.
    pub sub: String,
    /// A fresh UUID.
    pub jti: String,
    /// Not before (epoch seconds): now.
    pub nbf: u64,
    /// Issued at (epoch seconds): now.
    pub iat: u64,
    /// Expiry (epoch seconds): now + [`ASSERTION_LIFETIME_SECS`].
    pub exp: u64,
}

impl Certificate {
    /// Reads a PEM (certificate + private key, optionally an encrypted PKCS#8 key) or PFX/PKCS#12 file.
    /// The format is recognised from the content, not the file name.
    pub fn from_file(
        path: &Path,
        password: Option<&Secret>,
    ) -> Result<Certificate, CredentialError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| CredentialError::Read {
            path: shown_if_path(&shown),
            reason: e.to_string(),
        })?;
        Certificate::from_bytes(&bytes, password, &shown)
    }

    /// Parses PEM or PKCS#12 bytes; `source` names them in errors.
    pub fn from_bytes(
        bytes: &[u8],
        password: Option<&Secret>,
        source: &str,
    ) -> Result<Certificate, CredentialError> {
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            Certificate::from_pem(bytes, password, source)
        } else {
            Certificate::from_pkcs12(bytes, password, source)
        }
    }

    fn from_pem(
        bytes: &[u8],
        password: Option<&Secret>,
        source: &str,
    ) -> Result<Certificate, CredentialError> {
        let path = source.to_string();
        let cert = CertificateDer::pem_slice_iter(bytes)
            .find_map(Result::ok)
            .ok_or_else(|| CredentialError::NoCertificate { path: path.clone() })?;
        if let Some(encrypted) = pem_block(bytes, "ENCRYPTED PRIVATE KEY") {
            let password =
                password.ok_or_else(|| CredentialError::PasswordRequired { path: path.clone() })?;
            let info =
                pkcs8::EncryptedPrivateKeyInfo::try_from(encrypted.as_slice()).map_err(|e| {
                    CredentialError::UnsupportedKey {
                        path: path.clone(),
                        reason: format!("encrypted key: {e}"),
                    }
                })?;
            let doc =
                info.decrypt(password.expose())
                    .map_err(|e| CredentialError::WrongPassword {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            let key = RsaKeyPair::from_pkcs8(doc.as_bytes()).map_err(|e| unsupported(&path, e))?;
            return Certificate::new(key, cert.to_vec(), source);
        }
        let key = match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            Ok(_) => {
                return Err(CredentialError::UnsupportedKey {
                    path,
                    reason: "it is an EC key".into(),
                });
            }
            Err(_) => return Err(CredentialError::NoPrivateKey { path }),
        }
        .map_err(|e| unsupported(&path, e))?;
        Certificate::new(key, cert.to_vec(), source)
    }

    fn from_pkcs12(
        bytes: &[u8],
        password: Option<&Secret>,
        source: &str,
    ) -> Result<Certificate, CredentialError> {
        let path = source.to_string();
        let pass = password.map(Secret::expose).unwrap_or("");
        if !looks_like_der(bytes) {
            return Err(CredentialError::UnknownFormat {
                path,
                reason: "it has no PEM blocks and does not start like DER".into(),
            });
        }
        let store = match p12_keystore::KeyStore::from_pkcs12(bytes, pass) {
            Ok(store) => store,
            Err(e) => {
                return Err(match password {
                    None => CredentialError::PasswordRequired { path },
                    Some(_) => CredentialError::WrongPassword {
                        path,
                        reason: e.to_string(),
                    },
                });
            }
        };
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| CredentialError::NoPrivateKey { path: path.clone() })?;
        let cert = chain
            .chain()
            .first()
            .ok_or_else(|| CredentialError::NoCertificate { path: path.clone() })?;
        let key = RsaKeyPair::from_pkcs8(chain.key()).map_err(|e| unsupported(&path, e))?;
        Certificate::new(key, cert.as_der().to_vec(), source)
    }

    fn new(key: RsaKeyPair, der: Vec<u8>, source: &str) -> Result<Certificate, CredentialError> {
        // The RSAPublicKey DER sits inside the certificate's SubjectPublicKeyInfo bit string.
        let public = key.public_key().as_ref();
        if !der.windows(public.len()).any(|w| w == public) {
            return Err(CredentialError::KeyMismatch {
                path: source.into(),
            });
        }
        let x5t = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der));
        let x5t_s256 = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der));
        Ok(Certificate {
            key: std::sync::Arc::new(key),
            der,
            x5t,
            x5t_s256,
            source: source.into(),
        })
    }

    /// base64url(SHA-1(certificate DER)): the `x5t` header, Entra's certificate thumbprint.
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// base64url(SHA-256(certificate DER)): the `x5t#S256` header.
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The claims of an assertion for `client_id` at `audience` (the token URL), issued at `now`.
    pub fn claims(
        client_id: &str,
        audience: &str,
        now: SystemTime,
        jti: uuid::Uuid,
    ) -> AssertionClaims {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        AssertionClaims {
            aud: audience.into(),
            iss: client_id.into(),
            sub: client_id.into(),
            jti: jti.to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        }
    }

    /// Signs a client assertion JWT (RS256) with these claims.
    pub fn sign_assertion(&self, claims: &AssertionClaims) -> Result<Secret, CredentialError> {
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::to_vec(claims).expect("claims serialise");
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|_| CredentialError::Sign {
                path: self.source.clone(),
            })?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(Secret::new(jwt))
    }

    /// A fresh client assertion: [`Certificate::claims`] with a new `jti`, signed.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<Secret, CredentialError> {
        self.sign_assertion(&Certificate::claims(
            client_id,
            audience,
            now,
            uuid::Uuid::new_v4(),
        ))
    }
}

/// A certificate path for an error, quoted when it looks like one (a folder separator, or a
/// file extension such as `.pem` or `.pfx`); otherwise not quoted, as it may be a password or a
/// secret written in the wrong variable. A file that was read is always named.
fn shown_if_path(path: &str) -> String {
    let extension = path.rsplit_once('.').is_some_and(|(_, ext)| {
        (1..=4).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if path.contains(['/', '\\']) || extension {
        format!("'{path}'")
    } else {
        "(AZURE_CLIENT_CERTIFICATE_PATH or certificate_path: not quoted, as it does not look like a path)"
            .into()
    }
}

fn unsupported(path: &str, e: ring::error::KeyRejected) -> CredentialError {
    CredentialError::UnsupportedKey {
        path: path.into(),
        reason: format!("ring rejected it ({e})"),
    }
}

/// A DER SEQUENCE (what a PFX starts with).
fn looks_like_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30)
}

/// The base64-decoded body of the first PEM block with this label.
fn pem_block(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use std::path::PathBuf;
    use std::time::Duration;

    pub(crate) fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/auth/testdata")
            .join(name)
    }

    pub(crate) fn test_certificate() -> Certificate {
        Certificate::from_file(&testdata("cert-and-key.pem"), None).unwrap()
    }

    /// Splits a JWT, checks its RS256 signature with the test public key and returns header and claims.
    pub(crate) fn decode_and_verify(jwt: &str) -> (serde_json::Value, serde_json::Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "three parts");
        let public = std::fs::read(testdata("public-key.der")).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .expect("signature verifies with the certificate's public key");
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        (header, claims)
    }

    const AUD: &str =
        "https://login.microsoftonline.com/22222222-2222-2222-2222-222222222222/oauth2/v2.0/token";

    #[test]
    fn assertion_header_claims_and_signature() {
        let cert = test_certificate();
        let der = std::fs::read(testdata("cert.der")).unwrap();
        assert_eq!(cert.der(), der.as_slice());
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = cert.client_assertion("my-client", AUD, now).unwrap();
        let (header, claims) = decode_and_verify(jwt.expose());
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        // Computed independently with: openssl x509 -outform DER | openssl dgst -sha256 -binary | base64url
        assert_eq!(
            header["x5t#S256"],
            "P4LvT4e2E5LOeGXHlHW2wMSKV0d9ZYGW5o-S5xRQPdY"
        );
        assert_eq!(
            header["x5t"],
            URL_SAFE_NO_PAD
                .encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der))
                .as_str()
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(header["x5t"].as_str().unwrap())
                .unwrap()
                .len(),
            20
        );
        assert_eq!(claims["aud"], AUD);
        assert_eq!(claims["iss"], "my-client");
        assert_eq!(claims["sub"], "my-client");
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_600u64);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
        // A new jti every time.
        let again = cert.client_assertion("my-client", AUD, now).unwrap();
        assert_ne!(decode_and_verify(again.expose()).1["jti"], claims["jti"]);
        assert_eq!(format!("{jwt:?}"), "Secret([redacted])");
    }

    #[test]
    fn all_key_formats_load_the_same_certificate() {
        let reference = test_certificate();
        let pass = Secret::new("test-pfx-password");
        let pem_pass = Secret::new("test-pem-password");
        for (file, password) in [
            ("cert-and-rsa-key.pem", None),
            ("cert-and-encrypted-key.pem", Some(&pem_pass)),
            ("cert.pfx", Some(&pass)),
        ] {
            let cert = Certificate::from_file(&testdata(file), password)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(cert.x5t_s256(), reference.x5t_s256(), "{file}");
            let jwt = cert.client_assertion("c", AUD, SystemTime::now()).unwrap();
            decode_and_verify(jwt.expose());
        }
    }

    #[test]
    fn a_certificate_path_that_may_be_a_secret_is_not_quoted() {
        for (value, quoted) in [
            ("/etc/dvload/missing.pfx", true),
            ("certs/app", true),
            ("app.pem", true),
            ("Q8~S3CR3T.abcdefghijklmnop", false),
            ("S3CR3Tpassword", false),
        ] {
            let e = Certificate::from_file(Path::new(value), None)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("cannot read the certificate file "), "{e}");
            assert_eq!(e.contains(value), quoted, "{value}: {e}");
            assert!(e.contains("(os error 2)"), "{e}");
        }
    }

    #[test]
    fn certificate_errors() {
        let path = |f: &str| testdata(f).display().to_string();
        let e = Certificate::from_file(&testdata("cert.pfx"), None).unwrap_err();
        assert_eq!(
            e,
            CredentialError::PasswordRequired {
                path: path("cert.pfx")
            }
        );
        let e = Certificate::from_file(&testdata("cert.pfx"), Some(&Secret::new("wrong-pw")))
            .unwrap_err();
        assert!(matches!(e, CredentialError::WrongPassword { .. }), "{e:?}");
        assert!(!e.to_string().contains("wrong-pw"));
        let e = Certificate::from_file(&testdata("cert-and-encrypted-key.pem"), None).unwrap_err();
        assert_eq!(
            e,
            CredentialError::PasswordRequired {
                path: path("cert-and-encrypted-key.pem")
            }
        );
        let e = Certificate::from_file(
            &testdata("cert-and-encrypted-key.pem"),
            Some(&Secret::new("nope")),
        )
        .unwrap_err();
        assert!(matches!(e, CredentialError::WrongPassword { .. }), "{e:?}");
        let e = Certificate::from_file(&testdata("cert.pem"), None).unwrap_err();
        assert_eq!(
            e,
            CredentialError::NoPrivateKey {
                path: path("cert.pem")
            }
        );
        assert!(
            e.to_string()
                .starts_with(&format!("'{}' holds no private key", path("cert.pem")))
        );
        let e = Certificate::from_file(&testdata("missing.pem"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read the certificate file"),
            "{e}"
        );
        let key_only = std::fs::read_to_string(testdata("cert-and-key.pem")).unwrap();
        let key_only = &key_only[key_only.find("-----BEGIN PRIVATE KEY").unwrap()..];
        let e = Certificate::from_bytes(key_only.as_bytes(), None, "k.pem").unwrap_err();
        assert_eq!(
            e,
            CredentialError::NoCertificate {
                path: "k.pem".into()
            }
        );
        let e = Certificate::from_bytes(b"not a certificate", None, "x.bin").unwrap_err();
        assert!(matches!(e, CredentialError::UnknownFormat { .. }), "{e:?}");
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let pem = std::fs::read_to_string(testdata("cert-and-key.pem")).unwrap();
        let key = &pem[pem.find("-----BEGIN PRIVATE KEY").unwrap()..];
        // A certificate that is not the key's: flip one byte of the modulus region in the DER.
        let mut der = std::fs::read(testdata("cert.der")).unwrap();
        let reference = test_certificate();
        let public = reference.key.public_key().as_ref().to_vec();
        let at = der
            .windows(public.len())
            .position(|w| w == public.as_slice())
            .unwrap();
        der[at + 20] ^= 0xff;
        let other = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n{key}",
            STANDARD.encode(&der)
        );
        let e = Certificate::from_bytes(other.as_bytes(), None, "mixed.pem").unwrap_err();
        assert_eq!(
            e,
            CredentialError::KeyMismatch {
                path: "mixed.pem".into()
            }
        );
    }
}
