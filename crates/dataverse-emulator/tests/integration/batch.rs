//! Conformance: the documented `$batch` examples sent byte for byte, responses compared part by part.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn seeded() -> (dataverse_emulator::RunningEmulator, Api) {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let r = api
        .req(
            Method::PATCH,
            "accounts(00000000-0000-0000-0000-000000000001)",
        )
        .json(&json!({"name": "Seed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    (emu, api)
}

/// Sends `<name>.request.http` and compares with `<name>.response.http`: outer status, then per
/// part Content-ID, status and header names (ids and trace ids aside).
async fn conformance(name: &str) {
    let (emu, api) = seeded().await;
    let Some(req) = vector(&format!("{name}.request.http"), &api.base) else {
        eprintln!("vectors not found; skipping {name}");
        return;
    };
    let expected = vector(&format!("{name}.response.http"), &api.base).unwrap();
    let resp = raw(&emu, &wire_request(&req, &api.base, &api.token))
        .await
        .unwrap();
    let exp_status: u16 = expected.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        resp.status,
        exp_status,
        "{name}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let ct = resp.header("Content-Type").unwrap().to_string();
    assert!(
        ct.starts_with("multipart/mixed; boundary=batchresponse_"),
        "{ct}"
    );
    let actual = response_parts(&ct, &resp.body);
    let exp_body = expected.split_once("\r\n\r\n").unwrap().1;
    let exp_boundary = exp_body
        .trim_start()
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("--")
        .to_string();
    let expected_parts = response_parts(
        &format!("multipart/mixed; boundary={exp_boundary}"),
        exp_body.trim_start().as_bytes(),
    );
    assert_eq!(
        actual.len(),
        expected_parts.len(),
        "{name}: parts {actual:?}"
    );
    for (a, e) in actual.iter().zip(&expected_parts) {
        assert_eq!((&a.0, a.1), (&e.0, e.1), "{name}: part {a:?} vs {e:?}");
        for h in &e.2 {
            assert!(
                a.2.iter().any(|x| x.eq_ignore_ascii_case(h)),
                "{name}: header {h} missing in {a:?}"
            );
        }
        if e.3.starts_with("{\"error\"") {
            assert_eq!(a.3, e.3, "{name}");
        } else if e.3.starts_with('{') {
            let ev: serde_json::Value = serde_json::from_str(&e.3).unwrap();
            let av: serde_json::Value = serde_json::from_str(&a.3).unwrap();
            let subjects = |v: &serde_json::Value| {
                v["value"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x["subject"].clone()).collect::<Vec<_>>())
            };
            assert_eq!(subjects(&av), subjects(&ev), "{name}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn batch_simple_no_changeset() {
    conformance("batch-simple-no-changeset").await;
}

#[tokio::test]
async fn batch_changeset_with_contentid() {
    conformance("batch-changeset-with-contentid").await;
}

#[tokio::test]
async fn batch_continue_on_error() {
    conformance("batch-continue-on-error").await;
}

#[tokio::test]
async fn batch_error_stops_at_first_failure() {
    conformance("batch-error-stops-at-first-failure").await;
}

#[tokio::test]
async fn batch_contentid_references() {
    conformance("batch-contentid-ref-in-url-put-property").await;
    conformance("batch-contentid-ref-put-ref-odata-id").await;
    conformance("batch-contentid-patch-dollar1-navprop-bind").await;
    conformance("batch-contentid-ref-in-body").await;
}

#[tokio::test]
async fn forward_reference_is_400_and_rolls_back() {
    let (emu, api) = seeded().await;
    let Some(body) = vector(
        "batch-contentid-forward-reference-400.request-body.txt",
        &api.base,
    ) else {
        return;
    };
    let r = api
        .req(Method::POST, "$batch")
        .header("Content-Type", "multipart/mixed; boundary=batch_AAA123")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Content-ID Reference: '$1' does not exist in the batch context."),
        "{text}"
    );
    assert_eq!(emu.state.count("account"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn failing_changeset_rolls_back_and_over_1000_is_refused() {
    let (emu, api) = seeded().await;
    let body = "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"ok\"}\r\n--c\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nPOST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"bogus\":1}\r\n--c--\r\n--b--\r\n";
    let r = api
        .req(Method::POST, "$batch")
        .header("Content-Type", "multipart/mixed; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let parts = response_parts(&ct, &r.bytes().await.unwrap());
    assert_eq!(parts.len(), 1);
    assert_eq!((parts[0].0.as_deref(), parts[0].1), (Some("2"), 400));
    assert_eq!(emu.state.count("account"), 1);
    let mut big = String::new();
    for _ in 0..1001 {
        big.push_str(
            "--b\r\nContent-Type: application/http\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n\r\n",
        );
    }
    big.push_str("--b--\r\n");
    let r = api
        .req(Method::POST, "$batch")
        .header("Content-Type", "multipart/mixed; boundary=b")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("A maximum number of '1000' operations")
    );
    let r = api
        .req(Method::POST, "$batch")
        .header("Content-Type", "application/json")
        .body("{\"requests\":[]}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    emu.shutdown().await;
}
