//! Service protection limits on a scaled-down window.

use dataverse_emulator::{Config, LimitsConfig};
use reqwest::Method;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn request_count_limit_returns_429_with_retry_after() {
    let c = Config {
        limits: LimitsConfig {
            window_secs: 60.0,
            max_requests: 3,
            dop_hint: 7,
            ..Default::default()
        },
        ..Config::default()
    };
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    for _ in 0..3 {
        let r = api.req(Method::GET, "WhoAmI").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ms-dop-hint"], "7");
        assert!(
            r.headers()
                .contains_key("x-ms-ratelimit-burst-remaining-xrm-requests")
        );
    }
    let r = api.req(Method::GET, "WhoAmI").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let ra: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&ra));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "0x80072322");
    assert_eq!(
        v["error"]["message"],
        "Number of requests exceeded the limit of 3 over time window of 60 seconds."
    );
    assert_eq!(emu.stats().throttled_requests, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn execution_time_limit_binds_with_op_cost() {
    let c = Config {
        limits: LimitsConfig {
            window_secs: 60.0,
            max_exec_ms: 30,
            op_cost_ms: 40,
            ..Default::default()
        },
        ..Config::default()
    };
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    assert_eq!(
        api.req(Method::GET, "accounts")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = api.req(Method::GET, "accounts").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "0x80072321");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded limit of 30  milliseconds")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit() {
    let c = Config {
        limits: LimitsConfig {
            max_concurrent: 1,
            op_cost_ms: 300,
            ..Default::default()
        },
        ..Config::default()
    };
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    let slow = api.req(Method::GET, "accounts").send();
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        api.req(Method::GET, "accounts").send().await.unwrap()
    };
    let (a, b) = tokio::join!(slow, second);
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.status(), 429);
    let v: Value = b.json().await.unwrap();
    assert_eq!(v["error"]["code"], "0x80072326");
    emu.shutdown().await;
}
