//! A delivery whose server died after recording it and before acting on it: the host's retry
//! (same delivery ID) is acted on once the record is clearly abandoned, not dropped as a
//! duplicate forever.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::webhooks::*;
use common::*;
use kiln::clock::ManualClock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_delivery_left_pending_by_a_dead_process_runs() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| a.workers = 0).await;
    let (_, hook) = create_hooked_task(
        &server,
        &[
            "--name",
            "web",
            "--context",
            "https://git.example.com/org/app.git#main",
            "--commit-trigger-enabled",
            "true",
        ],
    )
    .await;
    let push = github_push("main", "1111111111111111111111111111111111111111", &["a"]);
    let first = send_github(&hook, "push", "crash-1", &push).await;
    assert_eq!(first.status, 202, "{first:?}");

    // As the database is when the process dies between recording a delivery and acting on it.
    let db = format!("sqlite://{}", server.data.path().join("kiln.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let changed = sqlx::query(
        "INSERT INTO hook_deliveries (task_id, provider, delivery_id, event, authentic, received_at, verdict)
         SELECT task_id, provider, 'crash-2', event, 1, received_at, 'pending' FROM hook_deliveries",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    // Soon after, the record may still be being acted on: a retry is a duplicate.
    let soon = send_github(&hook, "push", "crash-2", &push).await;
    assert_eq!(soon.status, 200, "{soon:?}");
    assert!(soon.verdict().contains("duplicate"), "{soon:?}");

    clock.advance(Duration::from_secs(61));
    let later = send_github(&hook, "push", "crash-2", &push).await;
    assert_eq!(later.status, 202, "{later:?}");
    let log = server.get_json("/api/tasks/web/deliveries").await;
    let rows = log["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{log}");
    assert!(
        rows[0]["verdict"].as_str().unwrap().contains("coalesced"),
        "{log}"
    );
    // And once acted on, it is a duplicate again, however late.
    clock.advance(Duration::from_secs(600));
    let again = send_github(&hook, "push", "crash-2", &push).await;
    assert_eq!(again.status, 200, "{again:?}");
}
