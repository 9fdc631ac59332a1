//! Retention: runs that ended longer ago than `--run-retention` go with their logs, and
//! contexts no remaining run uses go too; partial uploads a crash left are removed at start.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kiln::clock::ManualClock;

/// Polls until `done` holds, for at most a minute.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn context_file(server: &TestServer, run: &serde_json::Value) -> PathBuf {
    let digest = run["contextDigest"].as_str().unwrap();
    server
        .data
        .path()
        .join("contexts/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_runs_go_with_their_logs_and_unused_contexts_while_recent_and_queued_ones_stay() {
    const DAY: Duration = Duration::from_secs(86_400);
    let clock = ManualClock::new();
    let mut server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| {
        a.gc_interval = Duration::from_secs(3600);
        a.run_retention = 30 * DAY;
    })
    .await;
    let shared = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN echo old\n"))]);
    let dir = shared.path().to_str().unwrap();
    let out = server.kiln_output(&["build", "--no-push", dir]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let old = out.run_id();
    let old_run = server.run_json(&old).await;
    let shared_file = context_file(&server, &old_run);
    let old_log = server.data.path().join(format!("logs/{old}.log"));
    assert!(shared_file.is_file() && old_log.is_file());

    // A run nobody builds, without a queue limit, keeps the context it shares.
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-wait",
            "--platform",
            "linux/s390x",
            "--queue-timeout",
            "0",
            dir,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let queued = out.stdout.trim().to_string();

    // A run that ended 11 days before the collection stays, with its log.
    clock.advance(20 * DAY);
    let fresh = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo fresh\n"),
    )]);
    let out = server
        .kiln_output(&["build", "--no-push", fresh.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let recent = out.run_id();

    clock.advance(11 * DAY);
    eventually("the old run is deleted", || async {
        let out = server.kiln_output(&["run", "show", &old]).await;
        out.code != 0 && out.stderr.contains("not found")
    })
    .await;
    assert!(!old_log.exists());
    assert!(shared_file.is_file(), "a queued run still uses it");
    assert_eq!(server.run_json(&queued).await["status"], "Queued");
    let show = server.kiln_output(&["run", "show", &recent]).await;
    assert_eq!(show.code, 0, "{show:#?}");
    let logs = server.kiln_output(&["run", "logs", &recent]).await;
    assert!(logs.stdout.contains("fresh"), "{logs:#?}");

    // Once the queued run ended and its retention is over, the shared context goes too.
    let out = server.kiln_output(&["run", "cancel", &queued]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    clock.advance(31 * DAY);
    eventually("the shared context is deleted", || async {
        !shared_file.exists()
    })
    .await;

    // At start, partial uploads a crash left behind are removed.
    let leftover = server.data.path().join("contexts/tmp/.tmpPartial");
    std::fs::write(&leftover, b"half an upload").unwrap();
    server.restart_with(|_| {}).await;
    assert!(!leftover.exists());
}
