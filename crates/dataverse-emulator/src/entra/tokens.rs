//! Access tokens: RS256 JWTs signed with the emulator's key, and the JWKS that publishes it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The emulator's token-signing key (a test key, generated for this crate; never a real secret).
const SIGNING_KEY_PEM: &str = include_str!("signing_key.pem");

/// Claims of an issued access token (v1 access tokens, as Dataverse receives them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Audience: the organization URL.
    pub aud: String,
    /// Issuer: `{authority}/{tenant}/`.
    pub iss: String,
    /// Issued at (epoch seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Application (client) id.
    pub appid: String,
    /// How the app authenticated: "1" secret, "2" certificate.
    pub appidacr: String,
    /// Service principal object id.
    pub oid: String,
    /// Subject (= oid for app tokens).
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Unique token id (used for revocation).
    pub uti: String,
    /// Identity type.
    pub idtyp: String,
    /// Token version.
    pub ver: String,
}

/// Signs and verifies access tokens.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    n: String,
    e: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// The issuer with the built-in key.
    pub fn new() -> Self {
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(SIGNING_KEY_PEM)
            .expect("embedded signing key is valid");
        let public = private.to_public_key();
        let n_bytes = public.n().to_bytes_be();
        let e_bytes = public.e().to_bytes_be();
        let digest = <sha1::Sha1 as sha1::Digest>::digest(&n_bytes);
        TokenIssuer {
            encoding: EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes())
                .expect("embedded signing key is valid"),
            decoding: DecodingKey::from_rsa_raw_components(&n_bytes, &e_bytes),
            kid: URL_SAFE_NO_PAD.encode(digest),
            n: URL_SAFE_NO_PAD.encode(&n_bytes),
            e: URL_SAFE_NO_PAD.encode(&e_bytes),
        }
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }

    /// Checks the signature and decodes; time claims are checked by the caller's clock.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }

    /// The JWKS document (`/{tenant}/discovery/v2.0/keys`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": self.n, "e": self.e, "alg": "RS256"}]})
    }
}

impl Default for TokenIssuer {
    fn default() -> Self {
        Self::new()
    }
}
