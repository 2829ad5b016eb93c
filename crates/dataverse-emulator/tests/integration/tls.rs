//! HTTPS: the server certificate from `tests/fixtures/`, trusted through the test CA.

use std::path::PathBuf;

use dataverse_emulator::{Config, StartOptions, TlsFiles, defaults, start};
use serde_json::Value;

use crate::support::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn client_trusting_ca() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_token_whoami_discovery_and_untrusted_client_refused() {
    let emu = start(
        Config::default(),
        StartOptions {
            tls: Some(TlsFiles {
                cert: fixture("server.pem"),
                key: fixture("server.key"),
            }),
            ..StartOptions::default()
        },
    )
    .await
    .expect("emulator starts with TLS");
    let b = emu.base_url().to_string();
    assert!(b.starts_with("https://127.0.0.1:"), "{b}");
    let c = client_trusting_ca();

    // Token over HTTPS.
    let r = c
        .post(format!("{b}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            defaults::CLIENT_ID,
            defaults::CLIENT_SECRET,
            urlencode(&format!("{b}/.default"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let token = v["access_token"].as_str().unwrap().to_string();

    // WhoAmI twice on the same client (the second may reuse the kept-alive connection).
    for _ in 0..2 {
        let r = c
            .get(format!("{b}/api/data/v9.2/WhoAmI"))
            .bearer_auth(&token)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let w: Value = r.json().await.unwrap();
        assert_eq!(w["UserId"], defaults::APP_USER_ID, "{w}");
    }

    // Discovery served over TLS names https endpoints.
    let d: Value = c
        .get(format!(
            "{b}/{}/v2.0/.well-known/openid-configuration",
            defaults::TENANT_ID
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["token_endpoint"],
        format!("{b}/{}/oauth2/v2.0/token", defaults::TENANT_ID)
    );
    for k in [
        "token_endpoint",
        "authorization_endpoint",
        "jwks_uri",
        "issuer",
    ] {
        if let Some(u) = d[k].as_str() {
            assert!(u.starts_with("https://"), "{k} = {u}");
        }
    }
    assert!(
        d["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    // A client without the test CA is refused at the handshake.
    let err = client()
        .get(format!("{b}/api/data/v9.2/WhoAmI"))
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("an untrusted server certificate is refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Plain HTTP on the TLS port gets no HTTP response.
    let plain = client()
        .get(format!("http://{}/api/data/v9.2/WhoAmI", emu.addr()))
        .bearer_auth(&token)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    emu.shutdown().await;
}
