//! Changes to the environment mid-run (`config.changes`), and the user's roles
//! (`systemuserroles_association`).

use dataverse_emulator::Config;
use dataverse_emulator::config::{ChangeConfig, Right, TableColumnsConfig, TablePrivilegesConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// A `$batch` of one create of `body` into `set`; returns the part's status line and body.
async fn batch_create(api: &Api, set: &str, body: &Value) -> String {
    let text = format!(
        "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPOST {set} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{body}\r\n--b--\r\n"
    );
    api.req(Method::POST, "$batch")
        .header("Content-Type", "multipart/mixed; boundary=b")
        .header("Prefer", "odata.continue-on-error")
        .body(text)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_table_dropped_a_column_dropped_and_a_right_revoked_after_n_batches() {
    let config = Config {
        changes: vec![
            ChangeConfig {
                after_batches: 1,
                drop_columns: vec![TableColumnsConfig {
                    table: "account".into(),
                    columns: vec!["telephone1".into()],
                }],
                revoke: vec![TablePrivilegesConfig {
                    table: "task".into(),
                    rights: vec![Right::Create],
                }],
                ..ChangeConfig::default()
            },
            ChangeConfig {
                after_batches: 2,
                drop_tables: vec!["lead".into()],
                ..ChangeConfig::default()
            },
        ],
        ..Config::default()
    };
    let emu = emulator_with(config).await;
    let api = Api::new(&emu).await;
    let phone = json!({"name": "a", "telephone1": "1"});
    let first = batch_create(&api, "accounts", &phone).await;
    assert!(first.contains("HTTP/1.1 204"), "before any change: {first}");
    // From the second batch: telephone1 is gone, tasks cannot be created.
    let second = batch_create(&api, "accounts", &phone).await;
    assert!(
        second.contains("HTTP/1.1 400") && second.contains("Invalid property 'telephone1'"),
        "{second}"
    );
    let r = api
        .req(
            Method::GET,
            "EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName",
        )
        .send()
        .await
        .unwrap();
    let attrs: Value = r.json().await.unwrap();
    assert!(
        !attrs["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["LogicalName"] == "telephone1"),
        "the metadata no longer lists it"
    );
    let r = api
        .req(Method::POST, "tasks")
        .json(&json!({"subject": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // From the third batch: leads are gone.
    let third = batch_create(&api, "leads", &json!({"lastname": "x"})).await;
    assert!(
        third.contains("HTTP/1.1 404")
            && third.contains("Resource not found for the segment 'leads'"),
        "{third}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_user_lists_its_roles_and_a_user_without_roles_lists_none() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let path = format!(
        "systemusers({})/systemuserroles_association?$select=name",
        dataverse_emulator::defaults::APP_USER_ID
    );
    let v: Value = api
        .req(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["value"][0]["name"],
        dataverse_emulator::defaults::ROLE_NAME,
        "{v}"
    );
    emu.shutdown().await;

    let mut config = Config::default();
    config.application_users[0].roles.clear();
    let emu = emulator_with(config).await;
    let api = Api::new(&emu).await;
    let v: Value = api
        .req(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["value"], json!([]), "{v}");
    let r = api.req(Method::GET, "WhoAmI").send().await.unwrap();
    assert_eq!(r.status(), 200, "WhoAmI works without a role");
    emu.shutdown().await;
}
