//! A stand-in for the server's side of the worker protocol, on a port-0 listener: it hands
//! out one lease, answers heartbeats as the test says (go on, cancel, or 409: the attempt
//! is over), keeps the log and records results. Only for unit tests of the agent's logic:
//! integration tests run the real server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use tokio::sync::Notify;

use crate::protocol::{
    Lease, LeaseRequest, ReturnRun, RunResult, StepsUpdate, WorkerInfo, STALE_ATTEMPT,
};

/// How the server answers heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Renew,
    Cancel,
    /// 409 `STALE_ATTEMPT`: the run went to someone else or ended.
    Gone,
}

#[derive(Default)]
pub struct Seen {
    pub lease_requests: usize,
    pub heartbeats: usize,
    pub log: Vec<u8>,
    pub results: Vec<RunResult>,
    pub returned: Vec<ReturnRun>,
    /// Live step states, as sent.
    pub step_updates: Vec<StepsUpdate>,
    /// The worker as its last lease request described it.
    pub worker: Option<WorkerInfo>,
}

struct Shared {
    lease: Mutex<Option<Lease>>,
    beat: Mutex<Beat>,
    context: Bytes,
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap());
        self.changed.notify_waiters();
    }
}

pub struct FakeServer {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeServer {
    /// Serves `lease` to the first lease request, and `context` as its uploaded context.
    pub async fn start(lease: Lease, context: Bytes) -> FakeServer {
        let shared = Arc::new(Shared {
            lease: Mutex::new(Some(lease)),
            beat: Mutex::new(Beat::Renew),
            context,
            seen: Mutex::new(Seen::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/api/worker/lease", post(lease_run))
            .route("/api/worker/runs/{id}/heartbeat", post(heartbeat))
            .route("/api/worker/runs/{id}/logs", post(append_log))
            .route("/api/worker/runs/{id}/result", post(result))
            .route("/api/worker/runs/{id}/return", post(give_back))
            .route("/api/worker/runs/{id}/steps", post(steps_changed))
            .route("/api/worker/runs/{id}/context", get(context_of))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeServer { url, shared }
    }

    /// Answers heartbeats from now on with `beat`.
    pub fn set_beat(&self, beat: Beat) {
        *self.shared.beat.lock().unwrap() = beat;
    }

    /// Waits until `done` holds for what the server saw, for at most a minute.
    pub async fn until(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let wait = async {
            loop {
                let changed = self.shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if done(&self.shared.seen.lock().unwrap()) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("the fake server never saw: {what}"));
    }

    /// Reads what the server saw.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.shared.seen.lock().unwrap())
    }

    /// The log as text.
    pub fn log(&self) -> String {
        self.seen(|s| String::from_utf8_lossy(&s.log).into_owned())
    }
}

async fn lease_run(State(s): State<Arc<Shared>>, Json(req): Json<LeaseRequest>) -> Response {
    s.update(|seen| {
        seen.lease_requests += 1;
        seen.worker = Some(req.worker.clone());
    });
    let lease = s.lease.lock().unwrap().take();
    match lease {
        Some(lease) => Json(lease).into_response(),
        None => {
            // Held briefly, as the real server holds a long poll, so the agent does not spin.
            tokio::time::sleep(Duration::from_millis(req.wait_ms.min(100))).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn heartbeat(State(s): State<Arc<Shared>>) -> Response {
    s.update(|seen| seen.heartbeats += 1);
    let beat = *s.beat.lock().unwrap();
    match beat {
        Beat::Renew => Json(serde_json::json!({"cancel": false})).into_response(),
        Beat::Cancel => Json(serde_json::json!({"cancel": true})).into_response(),
        Beat::Gone => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": {
                "code": STALE_ATTEMPT,
                "message": "attempt 1 is no longer current"
            }})),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct LogAt {
    offset: usize,
}

async fn append_log(
    State(s): State<Arc<Shared>>,
    Query(at): Query<LogAt>,
    body: Bytes,
) -> Json<serde_json::Value> {
    let mut size = 0;
    s.update(|seen| {
        // Idempotent at `offset`, as the real server's log.
        seen.log.truncate(at.offset);
        seen.log.extend_from_slice(&body);
        size = seen.log.len();
    });
    Json(serde_json::json!({ "size": size }))
}

async fn result(State(s): State<Arc<Shared>>, Json(result): Json<RunResult>) -> StatusCode {
    s.update(|seen| seen.results.push(result));
    StatusCode::NO_CONTENT
}

async fn give_back(State(s): State<Arc<Shared>>, Json(returned): Json<ReturnRun>) -> StatusCode {
    s.update(|seen| seen.returned.push(returned));
    StatusCode::NO_CONTENT
}

async fn steps_changed(
    State(s): State<Arc<Shared>>,
    Json(update): Json<StepsUpdate>,
) -> StatusCode {
    s.update(|seen| seen.step_updates.push(update));
    StatusCode::NO_CONTENT
}

async fn context_of(State(s): State<Arc<Shared>>, Path(_id): Path<String>) -> Bytes {
    s.context.clone()
}
