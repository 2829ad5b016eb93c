//! Certificate credentials: RS256 client assertions signed with the fixture keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dataverse_emulator::config::CertificateConfig;
use dataverse_emulator::{Config, defaults};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// base64url(SHA-256(DER)) of a PEM certificate.
fn x5t_s256(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der.as_ref()))
}

/// An RS256 client assertion for the default app, `x5t#S256` of `cert_pem`, signed with `key_pem`,
/// valid from `nbf_off` to `exp_off` seconds relative to now.
fn assertion(aud: &str, cert_pem: &str, key_pem: &str, nbf_off: i64, exp_off: i64) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.x5t_s256 = Some(x5t_s256(cert_pem));
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({
        "aud": aud,
        "iss": defaults::CLIENT_ID,
        "sub": defaults::CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now + nbf_off,
        "iat": now + nbf_off,
        "exp": now + exp_off,
    });
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn token_with_assertion(base: &str, assertion: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_assertion_type={}&client_assertion={}&scope={}",
            defaults::CLIENT_ID,
            urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            urlencode(assertion),
            urlencode(&format!("{base}/.default"))
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn certificate_assertion_accepted_wrong_key_and_expired_refused() {
    let app_pem = fixture("app.pem");
    let mut c = Config::default();
    c.apps[0].certificates.push(CertificateConfig {
        pem: Some(app_pem.clone()),
        pem_file: None,
    });
    let emu = emulator_with(c).await;
    let b = emu.base_url().to_string();
    let aud = format!("{b}/{}/oauth2/v2.0/token", defaults::TENANT_ID);

    // Signed with the registered certificate's key: a token that works on the Web API.
    let good = assertion(&aud, &app_pem, &fixture("app.key"), -10, 600);
    let (s, v) = token_with_assertion(&b, &good).await;
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap();
    let r = client()
        .get(format!("{b}/api/data/v9.2/WhoAmI"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Same header (registered thumbprint) but signed with another key: AADSTS700027.
    let forged = assertion(&aud, &app_pem, &fixture("other.key"), -10, 600);
    let (s, v) = token_with_assertion(&b, &forged).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    assert_eq!(v["error_codes"][0], 700027, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS700027: "),
        "{v}"
    );

    // An unregistered certificate (its own thumbprint and key): AADSTS700027 too.
    let unregistered = assertion(&aud, &fixture("other.pem"), &fixture("other.key"), -10, 600);
    let (s, v) = token_with_assertion(&b, &unregistered).await;
    assert_eq!(
        (s, v["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{v}"
    );

    // Expired well beyond any leeway: refused (AADSTS700024, not within its valid time range).
    let expired = assertion(&aud, &app_pem, &fixture("app.key"), -7200, -3600);
    let (s, v) = token_with_assertion(&b, &expired).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_client")),
        "{v}"
    );
    assert_eq!(v["error_codes"][0], 700024, "{v}");

    // Audience of another host: refused.
    let wrong_aud = assertion(
        "https://login.microsoftonline.com/x/oauth2/v2.0/token",
        &app_pem,
        &fixture("app.key"),
        -10,
        600,
    );
    let (s, v) = token_with_assertion(&b, &wrong_aud).await;
    assert_ne!(s, 200, "{v}");

    emu.shutdown().await;
}
