//! `--data FILE`: rows survive a graceful restart; the file is replaced by rename.

use dataverse_emulator::{Config, StartOptions, start};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn data_file_survives_restart_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.json");
    let opts = StartOptions {
        data_file: Some(path.clone()),
        ..StartOptions::default()
    };

    // First run: nothing to load; create a record, shut down gracefully.
    let emu = start(Config::default(), opts.clone()).await.unwrap();
    let api = Api::new(&emu).await;
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({"name": "Persisted", "accountnumber": "P-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let entity_id = r.headers()["odata-entityid"].to_str().unwrap().to_string();
    let id = entity_id
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap()
        .to_string();
    emu.shutdown().await;

    // The file is complete JSON and is the only entry: no temporary file left beside it.
    let bytes = std::fs::read(&path).expect("data file written at shutdown");
    serde_json::from_slice::<Value>(&bytes).expect("data file is whole JSON");
    assert_eq!(dir_entries(dir.path()), vec!["rows.json".to_string()]);

    // Second run on the same file: the record is there, readable by id and by key.
    let emu = start(Config::default(), opts.clone()).await.unwrap();
    assert_eq!(emu.state.count("account"), 1);
    let api = Api::new(&emu).await;
    let r = api
        .req(
            Method::GET,
            &format!("accounts({id})?$select=name,accountnumber"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["name"].as_str(), v["accountnumber"].as_str()),
        (Some("Persisted"), Some("P-1"))
    );
    let r = api
        .req(Method::GET, "accounts(accountnumber='P-1')?$select=name")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A change in the second run replaces the file (again by rename), keeping both rows.
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    emu.shutdown().await;
    assert_eq!(dir_entries(dir.path()), vec!["rows.json".to_string()]);
    let emu = start(Config::default(), opts).await.unwrap();
    assert_eq!(emu.state.count("account"), 2);
    emu.shutdown().await;
}

/// Rows the configuration seeds (users, teams, `[[records]]`) are the file's once it exists: a
/// seeded row a client deleted stays deleted, and its key may be taken by a new row; a row
/// added to the configuration later is seeded.
#[tokio::test]
async fn a_deleted_seeded_row_stays_deleted_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StartOptions {
        data_file: Some(dir.path().join("rows.json")),
        ..StartOptions::default()
    };
    let mut config = Config::default();
    config
        .records
        .push(dataverse_emulator::config::RecordConfig {
            table: "account".into(),
            id: "c0000000-0000-4000-8000-000000000001".into(),
            fields: [
                ("name".to_string(), json!("Seeded")),
                ("accountnumber".to_string(), json!("S-1")),
            ]
            .into_iter()
            .collect(),
        });
    let emu = start(config.clone(), opts.clone()).await.unwrap();
    let api = Api::new(&emu).await;
    let sales = "teams(b2e3d4c5-0002-4f6a-9b8c-000000000001)";
    let r = api.req(Method::DELETE, sales).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api
        .req(Method::DELETE, "accounts(accountnumber='S-1')")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({"name": "Taken over", "accountnumber": "S-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    emu.shutdown().await;

    // A row the configuration seeds since the file was written is there too.
    let mut config = config;
    config
        .records
        .push(dataverse_emulator::config::RecordConfig {
            table: "team".into(),
            id: "c0000000-0000-4000-8000-0000000000f1".into(),
            fields: [("name".to_string(), json!("Field Sales"))]
                .into_iter()
                .collect(),
        });
    let emu = start(config, opts)
        .await
        .expect("restarts over its own file");
    assert_eq!(
        emu.state.count("team"),
        2,
        "the deleted team stays deleted, the one added to the configuration is there"
    );
    let api = Api::new(&emu).await;
    let (status, v) = api.get("accounts(accountnumber='S-1')?$select=name").await;
    assert_eq!((status, v["name"].as_str()), (200, Some("Taken over")));
    emu.shutdown().await;
}

#[tokio::test]
async fn corrupt_data_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.json");
    std::fs::write(&path, b"{\"half\": ").unwrap();
    let err = start(
        Config::default(),
        StartOptions {
            data_file: Some(path.clone()),
            ..StartOptions::default()
        },
    )
    .await
    .expect_err("a truncated data file is refused");
    assert!(err.to_string().contains("rows.json"), "{err}");
    // The bad file is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"half\": ");
}
