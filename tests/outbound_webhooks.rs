//! Outbound webhooks end to end: the real server, the real CLI, skopeo pushing to Kiln's
//! registry, and a receiver on a port-0 listener that fails its first request. A push in the
//! webhook's scope is delivered, signed with the secret `webhook create` printed, after a
//! retry; the delivery log shows both attempts; a push outside the scope is not sent; ping
//! and redeliver send again.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::skopeo::{push_base, Variant};
use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver that answers 500 to its first request and 200 to the rest.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body));
                match seen.len() {
                    1 => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// Waits until the receiver got a request `matching`, returning its headers and body JSON.
async fn wait_for(
    got: &Received,
    matching: impl Fn(&serde_json::Value) -> bool,
    count: usize,
) -> Vec<(HeaderMap, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap()))
            .filter(|(_, b)| matching(b))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(Instant::now() < deadline, "no such delivery: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_push_in_scope_is_delivered_signed_after_a_retry() {
    let server = TestServer::start().await;
    let (uri, got) = receiver().await;
    let out = server
        .kiln_output(&[
            "webhook",
            "create",
            "--name",
            "ci",
            "--uri",
            &uri,
            "--actions",
            "push,delete,run-succeeded,run-failed",
            "--scope",
            "app/*",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let secret = out.stdout.trim().to_string();
    assert_eq!(secret.len(), 64, "{out:#?}");
    let listed = server.kiln_output(&["webhook", "list"]).await;
    assert!(listed.stdout.contains("app/*"), "{}", listed.stdout);
    assert!(!listed.stdout.contains(&secret), "{}", listed.stdout);

    let own = server.url.trim_start_matches("http://").to_string();
    let creds = format!("owner:{}", server.owner_token());
    push_base(&format!("{own}/other/x:1"), Variant::Amd64, Some(&creds)).await;
    push_base(&format!("{own}/app/web:1"), Variant::Amd64, Some(&creds)).await;
    let delivered = wait_for(&got, |b| b["action"] == "push", 2).await;
    // The first attempt got 500; the retry carries the same body and signature.
    let (headers, body) = &delivered[1];
    assert_eq!(body, &delivered[0].1);
    assert_eq!(body["event"]["repository"], "app/web");
    assert_eq!(body["event"]["tag"], "1");
    assert_eq!(headers["x-kiln-event"], "push");
    let raw = got.lock().unwrap()[1].1.clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(raw.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-kiln-signature-256"], expected.as_str());
    // Events are sent in order: the push outside the scope, before it, was not sent.
    assert!(got
        .lock()
        .unwrap()
        .iter()
        .all(|(_, b)| !b.contains("other/x")));

    let log = server
        .kiln_output(&["webhook", "list-events", "--name", "ci", "-o", "json"])
        .await;
    assert_eq!(log.code, 0, "{log:#?}");
    let log: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    let first = &log["deliveries"][0];
    assert_eq!(first["status"], "Delivered", "{log:#}");
    assert_eq!(first["attempts"], 2, "{log:#}");
    assert_eq!(first["responseCode"], 200, "{log:#}");

    let ping = server
        .kiln_output(&["webhook", "ping", "--name", "ci"])
        .await;
    assert_eq!(ping.code, 0, "{ping:#?}");
    wait_for(&got, |b| b["action"] == "ping", 1).await;
    let id = first["id"].to_string();
    let again = server
        .kiln_output(&["webhook", "redeliver", "--name", "ci", "--id", &id])
        .await;
    assert_eq!(again.code, 0, "{again:#?}");
    wait_for(&got, |b| b["action"] == "push", 3).await;

    let bad = server
        .kiln_output(&[
            "webhook",
            "create",
            "--name",
            "bad",
            "--uri",
            &uri,
            "--actions",
            "pull",
        ])
        .await;
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(
        bad.stderr.contains("unknown action 'pull'"),
        "{}",
        bad.stderr
    );
}
