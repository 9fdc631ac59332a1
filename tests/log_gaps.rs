//! A gap in a log upload and a stale attempt are told apart: a gap answers with the offset the
//! server's log ends at and the worker's shipper resends from there, so no line is lost;
//! a stale attempt still ends shipping.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use kiln_worker::client::{ClientError, ServerClient};
use kiln_worker::logship::{self, LogUpload};
use kiln_worker::protocol::{Lease, RunId, Secret};
use serde_json::Value;

/// Queues a run nobody builds and leases it with a worker token: the lease and the token.
async fn leased_run(server: &TestServer) -> (Lease, String) {
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let out = server
        .kiln_output(&[
            "build",
            "--no-wait",
            "--no-push",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let worker = server.create_token("w", &["worker"], &[]).await;
    let lease: Lease = server
        .lease_with_token(&worker, 5000)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lease.run_id.to_string(), out.stdout.trim());
    (lease, worker)
}

async fn upload(
    server: &TestServer,
    worker: &str,
    run: RunId,
    attempt: u32,
    offset: u64,
) -> (u16, Value) {
    let resp = server
        .http_as(worker)
        .post(format!(
            "{}/api/worker/runs/{run}/logs?attempt={attempt}&offset={offset}",
            server.url
        ))
        .body("a line\n")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_and_a_stale_attempt_get_distinct_answers() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let (lease, worker) = leased_run(&server).await;
    let (run, attempt, offset) = (lease.run_id, lease.attempt, lease.log_offset);

    let (status, body) = upload(&server, &worker, run, attempt, offset).await;
    assert_eq!(status, 200, "{body}");
    let size = body["size"].as_u64().unwrap();

    let (status, body) = upload(&server, &worker, run, attempt, size + 100).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "LOG_GAP", "{body}");
    assert_eq!(body["error"]["offset"], size, "{body}");

    let (status, body) = upload(&server, &worker, run, attempt + 1, size).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "STALE_ATTEMPT", "{body}");
    assert!(body["error"].get("offset").is_none(), "{body}");
}

/// The real server's log, with one upload lost on the way as if it never happened, while
/// the shipper is told it went through.
struct LosingOne {
    client: ServerClient,
    run: RunId,
    attempt: u32,
    uploads: AtomicUsize,
    answered: AtomicUsize,
}

impl LogUpload for LosingOne {
    async fn append(&self, offset: u64, data: Bytes) -> Result<u64, ClientError> {
        let result = if self.uploads.fetch_add(1, Ordering::SeqCst) == 1 {
            Ok(offset + data.len() as u64)
        } else {
            self.client
                .append_logs(self.run, self.attempt, offset, data)
                .await
        };
        self.answered.fetch_add(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipper_fills_a_gap_and_no_line_is_lost() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let (lease, worker) = leased_run(&server).await;
    let losing = Arc::new(LosingOne {
        client: ServerClient::new(&server.url, Some(Secret::new(worker))).unwrap(),
        run: lease.run_id,
        attempt: lease.attempt,
        uploads: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    });
    let (sink, shipper) =
        logship::start_with(losing.clone(), lease.log_offset, tracing::Span::none());
    let lines: Vec<String> = (0..200).map(|i| format!("step {i:03}")).collect();
    for burst in lines.chunks(20) {
        for line in burst {
            sink.line(line);
        }
        // One upload per burst, so there are several and the lost one is not the last.
        let before = losing.answered.load(Ordering::SeqCst);
        while losing.answered.load(Ordering::SeqCst) == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(losing.uploads.load(Ordering::SeqCst) > 3);
    drop(sink);
    shipper.await.unwrap().unwrap();

    let log = server
        .get_text(&format!("/api/runs/{}/logs", lease.run_id))
        .await;
    let shipped = &log[lease.log_offset as usize..];
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(shipped, expected);
}
