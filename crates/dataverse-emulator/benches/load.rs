//! Load benchmark: 100,000 creates in `$batch`es of 100 over 32 concurrent connections; prints
//! ops/s and checks that nothing is lost or duplicated. Run: `cargo bench -p dataverse-emulator`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dataverse_emulator::{Config, StartOptions, defaults, start};

const OPS: usize = 100_000;
const BATCH: usize = 100;
const CONNECTIONS: usize = 32;

fn batch_body(first: usize) -> String {
    let mut b = String::with_capacity(BATCH * 300);
    for i in first..first + BATCH {
        b.push_str("--batch_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPOST accounts HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n");
        b.push_str(&format!(
            "{{\"name\":\"Account {i}\",\"accountnumber\":\"N-{i}\",\"revenue\":{i}}}\r\n"
        ));
    }
    b.push_str("--batch_x--\r\n");
    b
}

#[tokio::main]
async fn main() {
    let mut config = Config::default();
    config.limits.enabled = false;
    let emu = start(config, StartOptions::default()).await.expect("start");
    let base = emu.base_url().to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let scope = format!("{base}/.default");
    let token: serde_json::Value = http
        .post(format!("{base}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            defaults::CLIENT_ID,
            defaults::CLIENT_SECRET,
            scope.replace(':', "%3A").replace('/', "%2F")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (http, base, token, next) = (http.clone(), base.clone(), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(BATCH, Ordering::Relaxed);
                if first >= OPS {
                    break;
                }
                let r = http
                    .post(format!("{base}/api/data/v9.2/$batch"))
                    .bearer_auth(&token)
                    .header("Content-Type", "multipart/mixed; boundary=\"batch_x\"")
                    .header("Prefer", "odata.continue-on-error")
                    .body(batch_body(first))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let text = r.text().await.unwrap();
                assert_eq!(
                    text.matches("HTTP/1.1 204").count(),
                    BATCH,
                    "every operation succeeded"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rows = emu.state.rows("account");
    let unique: std::collections::HashSet<_> = rows
        .iter()
        .map(|r| r.fields["accountnumber"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rows.len(), OPS, "no record lost or duplicated");
    assert_eq!(unique.len(), OPS, "every key present once");
    println!(
        "{OPS} operations in batches of {BATCH} over {CONNECTIONS} connections: {:.2} s, {:.0} ops/s",
        elapsed.as_secs_f64(),
        OPS as f64 / elapsed.as_secs_f64()
    );
    emu.shutdown().await;
}
