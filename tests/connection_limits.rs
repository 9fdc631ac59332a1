//! The serving loop under a bounded loopback load: clients that trickle a request head or
//! never send one are cut at the header timeout, the connection cap pushes back, `/healthz`
//! keeps answering throughout, and requests in progress are never cut.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CAP: usize = 64;
/// Connections that never send a byte, on top of the trickling ones that fill the cap.
const HALF_OPEN: usize = 200;
/// A bound on waits that should end much sooner, so a broken server fails the test instead of
/// hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A server capped at `CAP` connections, with all three timeouts at `timeout`.
async fn start(timeout: Duration) -> TestServer {
    TestServer::start_with(|a| {
        a.workers = 0;
        a.max_connections = CAP;
        a.header_timeout = timeout;
        a.idle_timeout = timeout;
        a.body_timeout = timeout;
    })
    .await
}

/// Short timeouts, for tests that wait for them.
const SHORT: Duration = Duration::from_secs(1);
/// Timeouts no test step takes long enough to reach.
const LONG: Duration = Duration::from_secs(120);

/// A client that opens a fresh connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// `GET /healthz` on a connection of its own answers `200 ok`.
async fn assert_healthy(server: &TestServer) {
    let resp = fresh_client()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_at_the_header_timeout() {
    let server = start(SHORT).await;
    let addr = server.url.trim_start_matches("http://").to_string();

    // Fill the cap with clients that trickle a request head and never finish it.
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..CAP {
        let (r, mut w) = TcpStream::connect(&addr).await.unwrap().into_split();
        w.write_all(b"GET /api/runs HTTP/1.1\r\nHost: kiln\r\n")
            .await
            .unwrap();
        readers.push(r);
        writers.push(w);
    }
    let trickle = tokio::spawn(async move {
        loop {
            for w in &mut writers {
                let _ = w.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // And a crowd that connects and says nothing.
    let mut silent = Vec::new();
    for _ in 0..HALF_OPEN {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }

    // Health checks get through the crowd.
    for _ in 0..3 {
        assert_healthy(&server).await;
    }

    // Every one of them is cut at the header timeout, trickling or not; the trickling ones
    // hear nothing, not even an error page.
    for r in &mut readers {
        assert_eq!(until_closed(r).await, "");
    }
    trickle.abort();
    for s in &mut silent {
        until_closed(s).await;
    }

    // Afterwards the API works as usual.
    let resp = list_runs(&server).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_clients_are_told_to_retry_and_health_checks_answer() {
    let server = start(LONG).await;
    let addr = server.url.trim_start_matches("http://").to_string();
    // Fill the cap with connections busy in a request: uploads whose bodies are still due.
    let head = format!(
        "POST /api/contexts HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n",
        server.owner_token()
    );
    let mut busy = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        busy.push(s);
    }
    // Accepted in order, so the next connection finds the cap full.
    let resp = list_runs(&server).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
    assert_healthy(&server).await;

    // Once the cap has room again, requests are served in full.
    drop(busy);
    let resp = wait_for_room(&server).await;
    assert_eq!(resp.status(), 200);
}

/// `GET /api/runs` as the owner, on a connection of its own.
async fn list_runs(server: &TestServer) -> reqwest::Response {
    server
        .http()
        .get(format!("{}/api/runs", server.url))
        .send()
        .await
        .unwrap()
}

/// `GET /api/runs` until it is not shed.
async fn wait_for_room(server: &TestServer) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let resp = list_runs(server).await;
        if resp.status() != 503 {
            return resp;
        }
        assert!(tokio::time::Instant::now() < deadline, "still shedding");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_fails_at_the_body_timeout() {
    let server = start(SHORT).await;
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/contexts HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer {}\r\nContent-Length: 100000\r\n\r\n",
        server.owner_token()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[0x1f, 0x8b, 8, 0]).await.unwrap();
    let answer = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"code\":\"BAD_REQUEST\""), "{answer}");
    assert!(answer.contains("timeout"), "{answer}");
    assert_eq!(server.stored_contexts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_progress_outlast_the_timeouts() {
    let server = start(SHORT).await;
    let worker = server.create_token("w", &["worker"], &[]).await;
    // A lease long-poll three times as long as the header and idle timeouts, with nothing to
    // lease: it must end with its answer, not a cut connection.
    assert_eq!(server.lease_with_token(&worker, 3000).await.status(), 204);
}
