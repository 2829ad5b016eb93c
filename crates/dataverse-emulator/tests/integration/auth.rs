//! Entra token endpoint, discovery, bearer validation, privileges.

use dataverse_emulator::config::Right;
use dataverse_emulator::{Config, defaults};
use serde_json::Value;

use crate::support::*;

async fn post_token(base: &str, path: &str, body: String) -> (u16, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn token_errors_follow_entra_catalogue() {
    let emu = emulator().await;
    let b = emu.base_url();
    let scope = urlencode(&format!("{b}/.default"));
    let v2 = format!("/{}/oauth2/v2.0/token", defaults::TENANT_ID);
    let cases = [
        (
            v2.clone(),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=wrong&scope={scope}",
                defaults::CLIENT_ID
            ),
            401,
            "invalid_client",
            7000215,
        ),
        (
            v2.clone(),
            format!(
                "grant_type=client_credentials&client_id=99999999-9999-9999-9999-999999999999&client_secret=x&scope={scope}"
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            "/00000000-1111-2222-3333-444444444444/oauth2/v2.0/token".into(),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=x&scope={scope}",
                defaults::CLIENT_ID
            ),
            400,
            "invalid_request",
            90002,
        ),
        (
            v2.clone(),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fother.crm.dynamics.com%2F.default",
                defaults::CLIENT_ID,
                defaults::CLIENT_SECRET
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            v2.clone(),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                defaults::CLIENT_ID,
                defaults::CLIENT_SECRET,
                urlencode(b)
            ),
            400,
            "invalid_scope",
            70011,
        ),
        (
            v2.clone(),
            format!(
                "grant_type=client_credentials&client_id={}&scope={scope}",
                defaults::CLIENT_ID
            ),
            401,
            "invalid_client",
            7000218,
        ),
        (
            v2.clone(),
            format!(
                "client_id={}&client_secret=x&scope={scope}",
                defaults::CLIENT_ID
            ),
            400,
            "invalid_request",
            900144,
        ),
        (
            "/common/oauth2/v2.0/token".into(),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=x&scope={scope}",
                defaults::CLIENT_ID
            ),
            400,
            "invalid_request",
            9001023,
        ),
    ];
    for (path, body, status, error, code) in cases {
        let (s, v) = post_token(b, &path, body.clone()).await;
        assert_eq!(
            (s, v["error"].as_str().unwrap()),
            (status, error),
            "{body}: {v}"
        );
        assert_eq!(v["error_codes"][0], code, "{v}");
        let desc = v["error_description"].as_str().unwrap();
        assert!(
            desc.starts_with(&format!("AADSTS{code}: "))
                && desc.contains("\r\nTrace ID: ")
                && desc.contains("\r\nCorrelation ID: "),
            "{desc}"
        );
        for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(v[k].is_string(), "{k} missing in {v}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_secret_is_7000222() {
    let mut c = Config::default();
    c.apps[0].secrets[0].expires = Some("2020-01-01T00:00:00Z".into());
    let emu = emulator_with(c).await;
    let b = emu.base_url();
    let (s, v) = post_token(
        b,
        &format!("/{}/oauth2/v2.0/token", defaults::TENANT_ID),
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            defaults::CLIENT_ID,
            defaults::CLIENT_SECRET,
            urlencode(&format!("{b}/.default"))
        ),
    )
    .await;
    assert_eq!((s, v["error_codes"][0].as_u64()), (401, Some(7000222)));
    emu.shutdown().await;
}

#[tokio::test]
async fn v1_token_has_string_numbers_and_discovery_names_own_endpoints() {
    let emu = emulator().await;
    let b = emu.base_url();
    let (s, v) = post_token(
        b,
        &format!("/{}/oauth2/token", defaults::TENANT_ID),
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&resource={}",
            defaults::CLIENT_ID,
            defaults::CLIENT_SECRET,
            urlencode(b)
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], "3599");
    assert!(v["expires_on"].is_string());
    let d: Value = client()
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
    let i: Value = client().get(format!("{b}/common/discovery/instance?api-version=1.1&authorization_endpoint={b}/{}/oauth2/v2.0/authorize", defaults::TENANT_ID)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        i["tenant_discovery_endpoint"],
        format!(
            "{b}/{}/v2.0/.well-known/openid-configuration",
            defaults::TENANT_ID
        )
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bearer_validation_and_whoami() {
    let emu = emulator().await;
    let b = emu.base_url().to_string();
    let r = client()
        .get(format!("{b}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer authorization_uri={b}/{}/oauth2/authorize, resource_id={b}/",
            defaults::TENANT_ID
        )
    );
    assert_eq!(r.headers()["x-ms-dop-hint"], "4");
    let r = client()
        .get(format!("{b}/api/data/v9.2/WhoAmI"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let api = Api::new(&emu).await;
    let r = api
        .req(reqwest::Method::GET, "WhoAmI()")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ms-dop-hint"], "4");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["UserId"], defaults::APP_USER_ID);
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    );
    emu.revoke_all_tokens();
    assert_eq!(
        api.req(reqwest::Method::GET, "WhoAmI")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let mut c = Config::default();
    c.tokens.lifetime_secs = 0;
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    assert_eq!(
        api.req(reqwest::Method::GET, "WhoAmI")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_application_user_and_missing_privilege_are_403() {
    let mut c = Config::default();
    c.roles[0].privileges.retain(|p| p.table != "lead");
    c.roles[0]
        .privileges
        .iter_mut()
        .find(|p| p.table == "account")
        .unwrap()
        .rights
        .retain(|r| *r != Right::Create);
    let mut other = c.apps[0].clone();
    other.client_id = "77777777-7777-7777-7777-777777777777".into();
    c.apps.push(other);
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    let r = api
        .req(reqwest::Method::POST, "accounts")
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "0x80040220");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is missing prvCreateAccount privilege"),
        "{v}"
    );
    let r = api.req(reqwest::Method::GET, "leads").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let b = emu.base_url();
    let body = format!(
        "grant_type=client_credentials&client_id=77777777-7777-7777-7777-777777777777&client_secret={}&scope={}",
        defaults::CLIENT_SECRET,
        urlencode(&format!("{b}/.default"))
    );
    let (_, t) = post_token(
        b,
        &format!("/{}/oauth2/v2.0/token", defaults::TENANT_ID),
        body,
    )
    .await;
    let r = client()
        .get(format!("{b}/api/data/v9.2/WhoAmI"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "0x80072560");
    emu.shutdown().await;
}

#[tokio::test]
async fn print_config_round_trips() {
    let text = Config::default().to_toml_string();
    let back = Config::from_toml_str(&text, "printed").unwrap();
    assert_eq!(back, Config::default());
    let err = Config::from_toml_str("seed = 1\nbogus = 2\n", "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
}
