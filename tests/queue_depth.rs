//! The queue at depth, against the real server with workers speaking the raw protocol: no
//! worker is starved by runs for other platforms, queue positions count what goes first for
//! multi-platform runs, reasons never name a worker that is gone, and `startedAt` is when the
//! run was handed over.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A server without embedded workers, a stored context and a worker token.
struct Queue {
    server: TestServer,
    digest: String,
    worker_token: String,
}

impl Queue {
    async fn start(configure: impl FnOnce(&mut kiln::config::ServeArgs)) -> Queue {
        let server = TestServer::start_with(|a| {
            a.workers = 0;
            configure(a);
        })
        .await;
        let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
        let out = server
            .kiln_output(&[
                "build",
                "--no-wait",
                "--no-push",
                "-o",
                "json",
                ctx.path().to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.code, 0, "{out:#?}");
        let first: Value = serde_json::from_str(&out.stdout).unwrap();
        let id = first["id"].as_str().unwrap();
        let canceled = server.kiln_output(&["run", "cancel", id]).await;
        assert_eq!(canceled.code, 0, "{canceled:#?}");
        let worker_token = server.create_token("hosts", &["worker"], &[]).await;
        Queue {
            digest: first["contextDigest"].as_str().unwrap().to_string(),
            server,
            worker_token,
        }
    }

    /// Queues a run for `platform`: its ID.
    async fn queue(&self, platform: &str) -> String {
        let body = json!({
            "context": {"kind": "upload", "digest": self.digest},
            "push": false,
            "platform": platform,
        });
        self.server
            .queue_run_as(self.server.owner_token(), &body)
            .await
    }

    /// A lease request of worker `name` building `platforms`, waiting up to `wait_ms`, sent
    /// in the background: aborting the task drops the request, as a worker that stops does.
    fn spawn_lease(
        &self,
        name: &str,
        platforms: &[&str],
        wait_ms: u64,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let request = self
            .server
            .http_as(&self.worker_token)
            .post(format!("{}/api/worker/lease", self.server.url))
            .json(&json!({
                "worker": {"id": format!("{name}-1"), "name": name, "platforms": platforms, "protocol": 2},
                "waitMs": wait_ms
            }))
            .send();
        tokio::spawn(request)
    }

    /// A lease request as `spawn_lease` sends it: the lease, or `None` when the server had
    /// nothing for the worker.
    async fn lease(&self, name: &str, platforms: &[&str], wait_ms: u64) -> Option<Value> {
        let resp = self
            .spawn_lease(name, platforms, wait_ms)
            .await
            .unwrap()
            .unwrap();
        match resp.status().as_u16() {
            204 => None,
            200 => Some(resp.json().await.unwrap()),
            other => panic!("lease answered {other}: {}", resp.text().await.unwrap()),
        }
    }

    async fn waiting_for(&self, id: &str) -> String {
        let run = self.server.run_json(id).await;
        run["waitingFor"].as_str().unwrap_or_default().to_string()
    }

    /// Polls the run's `waitingFor` until it is `expected`, for at most 3 s (a worker that
    /// is gone must stop counting at once; before, it counted for a minute).
    async fn wait_until_waiting_for(&self, id: &str, expected: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let now = self.waiting_for(id).await;
            if now == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} still waits for: {now:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_gets_its_platform_behind_hundreds_of_runs_for_others() {
    let q = Queue::start(|_| {}).await;
    for _ in 0..250 {
        q.queue("linux/s390x").await;
    }
    let mine = q.queue("linux/amd64").await;
    let lease = q
        .lease("amd64", &["linux/amd64"], 2000)
        .await
        .expect("the amd64 run behind 250 s390x runs was not leased");
    assert_eq!(lease["runId"], mine.as_str(), "{lease:#}");
    let run = q.server.run_json(&mine).await;
    assert_eq!(run["status"], "Running", "{run:#}");
}

/// Positions are counted from whichever end of the queue is nearer (a page of the newest runs
/// from the top, the head of the queue from the bottom): both give the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_agree_from_either_end_of_a_deep_queue() {
    let q = Queue::start(|_| {}).await;
    let mut queued = Vec::new();
    for i in 0..40 {
        let platform = if i % 3 == 0 {
            "linux/arm64"
        } else {
            "linux/amd64"
        };
        queued.push((q.queue(platform).await, platform));
    }
    // What each run's position must be: 1 + the older runs of its own platform.
    let expected: Vec<(String, u64)> = queued
        .iter()
        .enumerate()
        .map(|(i, (id, platform))| {
            let older = queued[..i].iter().filter(|(_, p)| p == platform).count();
            (id.clone(), older as u64 + 1)
        })
        .collect();
    // The newest five (counted from the top), then one run at a time near the head, the middle
    // and the tail.
    let page = q.server.get_json("/api/runs?top=5").await;
    for run in page["runs"].as_array().unwrap() {
        let (_, position) = expected
            .iter()
            .find(|(id, _)| run["id"] == id.as_str())
            .unwrap();
        assert_eq!(run["queuePosition"], *position, "{run:#}");
    }
    for i in [0, 1, 2, 19, 20, 38, 39] {
        let (id, position) = &expected[i];
        let run = q.server.run_json(id).await;
        assert_eq!(run["queuePosition"], *position, "run {i}: {run:#}");
    }
    // A new run counts every queued run of its platform.
    let newest = q.queue("linux/arm64").await;
    let log = q.server.kiln_output(&["run", "logs", &newest]).await.stdout;
    assert!(
        log.contains("Waiting in the queue: position 15 for linux/arm64"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_count_what_goes_first_for_multi_platform_runs() {
    let q = Queue::start(|_| {}).await;
    let amd64 = q.queue("linux/amd64").await;
    let arm64 = q.queue("linux/arm64").await;
    let both = q.queue("linux/amd64,linux/arm64").await;
    let amd64_again = q.queue("linux/amd64").await;
    // With no worker connected, a run waits for the runs within its own platforms: a worker
    // that builds both takes the older single-platform runs first.
    let expected = [(&amd64, 1), (&arm64, 1), (&both, 3), (&amd64_again, 2)];
    for (id, position) in expected {
        let run = q.server.run_json(id).await;
        assert_eq!(run["queuePosition"], position, "{run:#}");
    }
    let list = q.server.get_json("/api/runs?top=4").await;
    let listed: Vec<(String, Value)> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["queuePosition"].clone(),
            )
        })
        .collect();
    for (id, position) in expected {
        assert!(
            listed.contains(&(id.clone(), Value::from(position))),
            "{id} at {position} in {listed:?}"
        );
    }
    let log = q.server.kiln_output(&["run", "logs", &both]).await.stdout;
    assert!(
        log.contains(
            "Waiting in the queue: position 3 for linux/amd64,linux/arm64 \
             (no connected worker builds linux/amd64,linux/arm64)"
        ),
        "{log}"
    );

    // A run no connected worker builds says what they do build.
    let waiter = q.spawn_lease("s390x", &["linux/s390x"], 30000);
    let nobody = q.queue("linux/riscv64").await;
    q.wait_until_waiting_for(
        &nobody,
        "no connected worker builds linux/riscv64; the connected workers build linux/s390x",
    )
    .await;
    waiter.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stopped_asking_is_not_named_by_any_reason() {
    let q = Queue::start(|_| {}).await;
    let waiting = q.spawn_lease("arm", &["linux/arm64"], 30000);
    let run = q.queue("linux/s390x").await;
    q.wait_until_waiting_for(
        &run,
        "no connected worker builds linux/s390x; the connected workers build linux/arm64",
    )
    .await;
    // The worker stops: its lease request is dropped unanswered.
    waiting.abort();
    q.wait_until_waiting_for(&run, "no connected worker builds linux/s390x")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_is_not_counted_as_busy() {
    let q = Queue::start(|a| a.lease_ttl = 1).await;
    let held = q.queue("linux/amd64").await;
    let lease = q.lease("gone", &["linux/amd64"], 1000).await.unwrap();
    assert_eq!(lease["runId"], held.as_str());
    let second = q.queue("linux/amd64").await;
    assert_eq!(
        q.waiting_for(&second).await,
        "all 1 workers for linux/amd64 are busy"
    );
    // No heartbeat: the run is lost, and so is its worker.
    let ended = q
        .server
        .wait_status(&held, "Error", Duration::from_secs(30))
        .await;
    assert!(
        ended["errorMessage"]
            .as_str()
            .unwrap()
            .contains("worker lost"),
        "{ended:#}"
    );
    assert_eq!(
        q.waiting_for(&second).await,
        "no connected worker builds linux/amd64"
    );
    let third = q.queue("linux/amd64").await;
    let run = q.server.run_json(&third).await;
    assert_eq!(
        run["waitingFor"], "no connected worker builds linux/amd64",
        "{run:#}"
    );
    assert_eq!(run["queuePosition"], 2, "{run:#}");
}

fn ms(time: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_at_is_when_the_run_was_handed_to_the_worker() {
    let q = Queue::start(|_| {}).await;
    // A worker that waits for work, then a run: it is handed over after it was queued.
    let waiting = q.spawn_lease("w", &["linux/amd64"], 20000);
    let id = q.queue("linux/amd64").await;
    let resp = waiting.await.unwrap().unwrap();
    let after = chrono::Utc::now().timestamp_millis();
    assert_eq!(resp.status(), 200);
    let run = q.server.run_json(&id).await;
    let started = ms(&run["startedAt"]);
    assert!(started >= ms(&run["createdAt"]), "{run:#}");
    assert!(started <= after, "{run:#}");
    let history = run["statusHistory"].as_array().unwrap();
    let running = history.iter().find(|c| c["status"] == "Running").unwrap();
    assert_eq!(ms(&running["at"]), started, "{run:#}");

    // Queued first, leased later: started when leased, not when queued.
    let id = q.queue("linux/amd64").await;
    let before = chrono::Utc::now().timestamp_millis();
    q.lease("w2", &["linux/amd64"], 1000).await.unwrap();
    let run = q.server.run_json(&id).await;
    let started = ms(&run["startedAt"]);
    assert!(started >= before, "{run:#}");
}
