//! Fault injection: each kind observable and counted at /_emulator/stats.

use dataverse_emulator::{Config, FaultsConfig};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn with_faults(f: FaultsConfig) -> (dataverse_emulator::RunningEmulator, Api) {
    let emu = emulator_with(Config::default()).await;
    let api = Api::new(&emu).await;
    emu.set_faults(f);
    (emu, api)
}

#[tokio::test]
async fn fail_throttle_and_storms() {
    let (emu, api) = with_faults(FaultsConfig {
        fail_rate: 1.0,
        ..Default::default()
    })
    .await;
    let s = api
        .req(Method::GET, "WhoAmI")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert!([500, 502, 503].contains(&s));
    emu.set_faults(FaultsConfig {
        throttle_rate: 1.0,
        throttle_retry_after_secs: 2,
        ..Default::default()
    });
    let r = api.req(Method::GET, "WhoAmI").send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "2")
    );
    emu.set_faults(FaultsConfig {
        storm_rate: 1.0,
        storm_length: 3,
        ..Default::default()
    });
    for _ in 0..3 {
        assert_eq!(
            api.req(Method::GET, "WhoAmI")
                .send()
                .await
                .unwrap()
                .status(),
            429
        );
    }
    let stats: serde_json::Value = client()
        .get(format!("{}/_emulator/stats", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["fault_throttle"], 1);
    assert_eq!(stats["fault_storm_429"], 3);
    assert_eq!(
        stats["fault_500"].as_u64().unwrap()
            + stats["fault_502"].as_u64().unwrap()
            + stats["fault_503"].as_u64().unwrap(),
        1
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn resets_drop_the_connection_before_or_after_applying() {
    let (emu, api) = with_faults(FaultsConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    for i in 0..10 {
        let r = api
            .req(Method::POST, "accounts")
            .json(&json!({"name": format!("r{i}")}))
            .send()
            .await;
        assert!(r.is_err(), "connection should be dropped");
    }
    let s = emu.stats();
    assert_eq!(s.fault_reset_before + s.fault_reset_after, 10);
    assert!(s.fault_reset_before > 0 && s.fault_reset_after > 0);
    assert_eq!(emu.state.count("account") as u64, s.fault_reset_after);
    emu.shutdown().await;
}

#[tokio::test]
async fn slow_responses_latency_and_revocation() {
    let (emu, api) = with_faults(FaultsConfig {
        slow_rate: 1.0,
        slow_ms: 2000,
        ..Default::default()
    })
    .await;
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({"name": "slow"}))
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err(), "client times out");
    emu.set_faults(FaultsConfig {
        latency_ms: 20,
        ..Default::default()
    });
    assert_eq!(
        api.req(Method::GET, "WhoAmI")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    emu.set_faults(FaultsConfig {
        revoke_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(
        api.req(Method::GET, "WhoAmI")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    emu.set_faults(FaultsConfig::default());
    assert_eq!(
        api.req(Method::GET, "WhoAmI")
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "revoked stays revoked"
    );
    let s = emu.stats();
    assert_eq!((s.fault_slow, s.fault_latency, s.fault_revoked), (1, 1, 1));
    assert_eq!(emu.state.count("account"), 1, "slow request was applied");
    emu.shutdown().await;
}
