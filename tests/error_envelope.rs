//! Every /api route answers an error in the one JSON envelope, `{"error":{"code","message"}}`,
//! whatever went wrong: a malformed or oversized body, an unknown path, a wrong method, a
//! body that is not an archive. Authorisation comes before the body is read.

mod common;

use common::*;
use serde_json::Value;

/// Status and envelope of a response, failing when the body is not the envelope.
async fn envelope(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text:?}"));
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!code.is_empty() && !message.is_empty(), "{status}: {text}");
    (status, code.to_string(), message.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_worker_requests_get_the_envelope_after_authorisation() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let worker = server.create_token("w", &["worker"], &[]).await;
    let reader = server.create_token("r", &["pull"], &["*"]).await;
    let lease = format!("{}/api/worker/lease", server.url);
    let malformed = |client: reqwest::Client| {
        client
            .post(&lease)
            .header("content-type", "application/json")
            .body("{\"worker\": 42")
            .send()
    };

    let (status, code, message) = envelope(malformed(server.http_as(&worker)).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "BAD_REQUEST"), "{message}");
    assert!(message.contains("JSON"), "{message}");

    // Wrong shape rather than broken JSON: still the envelope, not axum's plain 422.
    let resp = server
        .http_as(&worker)
        .post(&lease)
        .json(&serde_json::json!({"worker": "me"}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(resp).await;
    assert_eq!((status, code.as_str()), (400, "BAD_REQUEST"));

    // Callers who may not use the route learn that before anything about their body.
    let (status, code, _) = envelope(malformed(reqwest::Client::new()).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "UNAUTHORIZED"));
    let (status, code, _) = envelope(malformed(server.http_as(&reader)).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    let resp = server
        .http_as(&reader)
        .post(format!("{}/api/tokens", server.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(resp).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_get_the_envelope() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let resp = server
        .http()
        .get(format!("{}/api/no-such-thing", server.url))
        .send()
        .await
        .unwrap();
    let (status, code, message) = envelope(resp).await;
    assert_eq!((status, code.as_str()), (404, "NOT_FOUND"));
    assert!(message.contains("/api/no-such-thing"), "{message}");

    let resp = server
        .http()
        .delete(format!("{}/api/runs", server.url))
        .send()
        .await
        .unwrap();
    let (status, code, message) = envelope(resp).await;
    assert_eq!((status, code.as_str()), (405, "METHOD_NOT_ALLOWED"));
    assert!(message.contains("DELETE"), "{message}");

    // The registry keeps its own envelope.
    let resp = server
        .http()
        .delete(format!("{}/v2/", server.url))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("\"error\":{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_mib_json_body_is_413() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let huge = serde_json::json!({ "dockerfile": "x".repeat(10 << 20) });
    for path in ["/api/runs", "/api/tokens"] {
        let resp = server
            .http()
            .post(format!("{}{path}", server.url))
            .json(&huge)
            .send()
            .await
            .unwrap();
        let (status, code, message) = envelope(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (413, "TOO_LARGE"),
            "{path}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_bytes_archive_is_described_not_echoed() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let marker = "ECHO-ME-IF-YOU-CAN";
    let mut data: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    data[..marker.len()].copy_from_slice(marker.as_bytes());
    let resp = server
        .http()
        .post(format!("{}/api/contexts", server.url))
        .body(data)
        .send()
        .await
        .unwrap();
    let (status, code, message) = envelope(resp).await;
    assert_eq!((status, code.as_str()), (400, "BAD_REQUEST"), "{message}");
    assert!(message.contains("not a tar archive"), "{message}");
    assert!(!message.contains(marker), "{message}");
    assert!(
        message.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{message:?}"
    );
    assert_eq!(server.stored_contexts(), 0);
}
