//! The queue deadline the reaper reads: stored at submission, and given at start to runs
//! queued before runs had their own queue timeout, from the server's default.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_without_its_own_queue_timeout_gets_the_default_at_start_and_expires() {
    let mut server = TestServer::start_with(|a| {
        a.workers = 0;
        a.queue_timeout = Duration::ZERO;
    })
    .await;
    let id = server.queue_scratch_run().await;
    assert_eq!(server.run_json(&id).await["queueTimeoutSecs"], 0);

    // As a server from before queue timeouts per run stored it: no timeout, no deadline.
    let db = format!("sqlite://{}", server.data.path().join("kiln.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let changed = sqlx::query(
        "UPDATE runs SET queue_timeout_secs = NULL, queue_deadline = NULL WHERE status = 'Queued'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    server
        .restart_with(|a| a.queue_timeout = Duration::from_secs(1))
        .await;
    let run = server
        .wait_status(&id, "Expired", Duration::from_secs(30))
        .await;
    assert_eq!(run["queueTimeoutSecs"], 1, "{run:#}");
    let message = run["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("no worker took this run in 1s: no connected worker"),
        "{run:#}"
    );
}
