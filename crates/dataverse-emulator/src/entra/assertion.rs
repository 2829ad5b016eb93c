//! Certificate credentials: registered certificates and client-assertion JWT validation
//! (certificate-credentials.md 2024/2025, PROTOCOL.md §13.4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use sha2::Digest;
use x509_cert::der::{Decode, Encode};

use super::errors::EntraError;

/// A certificate registered on an app: its thumbprints and RSA public key.
#[derive(Clone)]
pub struct RegisteredCert {
    /// base64url(SHA-1(DER)), the `x5t` header value.
    pub x5t: String,
    /// base64url(SHA-256(DER)), the `x5t#S256` header value.
    pub x5t_s256: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RegisteredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredCert")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl RegisteredCert {
    /// Parses a PEM certificate with an RSA key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let cert = x509_cert::Certificate::from_der(der.as_ref())
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("bad public key: {e}"))?;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| format!("only RSA certificates are supported: {e}"))?;
        Ok(RegisteredCert {
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der.as_ref())),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der.as_ref())),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        })
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: serde_json::Value,
}

/// Validates a client assertion: RS256 (`x5t`) or PS256 (`x5t#S256` or `x5t`), a registered
/// certificate, the signature, `aud` = this tenant's v2 (or v1) token URL, `iss` = `sub` =
/// client id, and `exp`/`nbf` with `leeway` seconds.
pub fn validate(
    assertion: &str,
    client_id: &str,
    certs: &[RegisteredCert],
    audiences: &[String],
    leeway: u64,
) -> Result<(), EntraError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| EntraError::invalid_assertion(&e.to_string()))?;
    let alg = header.alg;
    if !matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(EntraError::invalid_assertion(&format!(
            "Unsupported signing algorithm {alg:?}; use RS256 or PS256."
        )));
    }
    let cert = match (&header.x5t, &header.x5t_s256) {
        (_, Some(s256)) => certs.iter().find(|c| &c.x5t_s256 == s256),
        (Some(x5t), None) => certs.iter().find(|c| &c.x5t == x5t),
        (None, None) => {
            return Err(EntraError::invalid_assertion(
                "The assertion header has neither 'x5t' nor 'x5t#S256'.",
            ));
        }
    };
    let Some(cert) = cert else {
        return Err(EntraError::unknown_certificate(client_id));
    };
    let key = DecodingKey::from_rsa_raw_components(&cert.n, &cert.e);
    let mut v = Validation::new(alg);
    v.leeway = leeway;
    v.validate_nbf = true;
    v.set_audience(audiences);
    v.set_issuer(&[client_id]);
    v.sub = Some(client_id.to_string());
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    match jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidAlgorithm => EntraError::bad_signature(),
            ErrorKind::ExpiredSignature => EntraError::assertion_time("The assertion has expired."),
            ErrorKind::ImmatureSignature => {
                EntraError::assertion_time("The assertion is not yet valid (nbf).")
            }
            ErrorKind::InvalidAudience => {
                let aud = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
                    .map(|d| d.claims.aud.to_string())
                    .unwrap_or_default();
                EntraError::assertion_audience(&aud, audiences.first().map_or("", String::as_str))
            }
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                EntraError::assertion_subject(client_id)
            }
            ErrorKind::MissingRequiredClaim(c) => {
                EntraError::invalid_assertion(&format!("The assertion lacks the '{c}' claim."))
            }
            other => EntraError::invalid_assertion(&format!("{other:?}")),
        }),
    }
}
