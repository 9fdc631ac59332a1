//! The agent's run state machine against a scripted engine and a stand-in for the server's
//! worker protocol: cancel, timeout, a lost lease and engine errors each end the run as they
//! must, and stop the engine's build where they should.

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::fake_server::{Beat, FakeServer};
use super::*;
use crate::fake_engine::{FakeEngine, Journal, Script};

/// A lease of run ca1, attempt 1, building an uploaded context without pushing.
fn lease(timeout_ms: u64) -> Lease {
    serde_json::from_value(serde_json::json!({
        "runId": "ca1",
        "attempt": 1,
        "job": {
            "kind": "build",
            "context": {"kind": "upload", "digest": format!("sha256:{}", "a".repeat(64))},
            "dockerfile": "Dockerfile",
            "buildArgs": {},
            "target": null,
            "platforms": "linux/amd64",
            "noCache": false,
            "images": [],
            "push": false
        },
        "heartbeatIntervalMs": 100,
        "timeoutMs": timeout_ms,
        "logOffset": 0,
        "credentials": []
    }))
    .unwrap()
}

/// A worker running against `server` with `engine`, until the returned token fires.
pub(super) fn start_agent(
    server: &FakeServer,
    engine: FakeEngine,
) -> (CancellationToken, Arc<Journal>) {
    let journal = engine.journal.clone();
    let config = AgentConfig {
        server: server.url.clone(),
        token: None,
        name: "unit".into(),
        platforms: vec![Platform::default()],
        fetch_policy: FetchPolicy::default(),
        drain_timeout: Duration::from_secs(60),
        shutdown_reason: "the test ended".into(),
    };
    let agent = Agent::new(config, engine).unwrap();
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    tokio::spawn(async move { agent.run(shutdown).await });
    (stop, journal)
}

const CONTEXT: &[u8] = b"a context archive";
const HOUR_MS: u64 = 3_600_000;

async fn served(timeout_ms: u64) -> FakeServer {
    FakeServer::start(lease(timeout_ms), Bytes::from_static(CONTEXT)).await
}

/// The one result the agent reported, once it did.
async fn reported(server: &FakeServer) -> RunResult {
    server.until("a result", |s| !s.results.is_empty()).await;
    server.seen(|seen| {
        assert_eq!(seen.results.len(), 1, "results: {:?}", seen.results);
        seen.results[0].clone()
    })
}

/// A worker whose build hangs, once the build started.
async fn hanging_build() -> (FakeServer, CancellationToken, Arc<Journal>) {
    let server = served(HOUR_MS).await;
    let (stop, journal) = start_agent(&server, FakeEngine::new(Script::Hang));
    journal.until(|r| r.builds_started == 1).await;
    (server, stop, journal)
}

#[tokio::test]
async fn a_successful_build_reports_success_after_its_log() {
    let server = served(HOUR_MS).await;
    let (stop, journal) = start_agent(&server, FakeEngine::new(Script::Succeed));
    let result = reported(&server).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(result.error_message, None);
    let log = server.log();
    assert!(log.contains("Run ID: ca1 started on worker unit"), "{log}");
    assert!(log.contains("Summary: 1 steps (0 cached)"), "{log}");
    journal.read(|r| {
        assert_eq!((r.builds_started, r.builds_finished), (1, 1));
        assert_eq!(r.context_bytes, CONTEXT.len());
    });
    stop.cancel();
}

#[tokio::test]
async fn cancel_during_the_build_stops_it_and_reports_canceled() {
    let (server, stop, journal) = hanging_build().await;
    server.set_beat(Beat::Cancel);
    let result = reported(&server).await;
    assert_eq!(result.outcome, Outcome::Canceled);
    assert_eq!(result.error_message.as_deref(), Some("canceled by user"));
    assert!(server.log().contains("Build stopped: the run was canceled"));
    journal.read(|r| assert_eq!((r.builds_stopped, r.builds_finished), (1, 0)));
    stop.cancel();
}

#[tokio::test]
async fn a_build_past_the_run_timeout_is_stopped_and_reported_as_timeout() {
    let server = served(1_000).await;
    let (stop, journal) = start_agent(&server, FakeEngine::new(Script::Hang));
    let result = reported(&server).await;
    assert_eq!(result.outcome, Outcome::Timeout);
    assert_eq!(
        result.error_message.as_deref(),
        Some("the run exceeded its timeout of 1s")
    );
    assert!(server
        .log()
        .contains("Build stopped: the run exceeded its timeout of 1s"));
    journal.read(|r| assert_eq!((r.builds_stopped, r.builds_finished), (1, 0)));
    stop.cancel();
}

#[tokio::test]
async fn a_lost_lease_stops_the_build_and_reports_nothing() {
    let (server, stop, journal) = hanging_build().await;
    server.set_beat(Beat::Gone);
    // Once it dropped the run, the worker asks for the next one.
    journal
        .until(|r| r.builds_stopped == 1 && !r.forgotten.is_empty())
        .await;
    server
        .until("the next lease request", |s| s.lease_requests >= 2)
        .await;
    server.seen(|s| {
        assert!(s.results.is_empty(), "reported: {:?}", s.results);
        assert!(s.returned.is_empty());
    });
    journal.read(|r| {
        assert_eq!(r.builds_finished, 0);
        assert!(
            r.forgotten.iter().any(|n| n.starts_with("kiln-build/ca1-")),
            "{:?}",
            r.forgotten
        );
    });
    stop.cancel();
}

/// A script carrying an engine error message.
type ScriptOf = fn(String) -> Script;

#[tokio::test]
async fn engine_errors_end_the_run_with_the_engine_message() {
    let cases: [(ScriptOf, Outcome, &str); 2] = [
        (Script::BuildFails, Outcome::Failed, "RUN make: exit code 2"),
        (Script::EngineBreaks, Outcome::Error, "BuildKit went away"),
    ];
    for (script, outcome, message) in cases {
        let server = served(HOUR_MS).await;
        let engine = FakeEngine::new(script(message.into()));
        let (stop, _) = start_agent(&server, engine);
        let result = reported(&server).await;
        assert_eq!(result.outcome, outcome);
        assert_eq!(result.error_message.as_deref(), Some(message));
        // The reason travels in the result, and the server closes the log with it: the
        // worker does not print it again.
        let log = server.log();
        assert!(log.matches(message).count() <= 1, "{log}");
        stop.cancel();
    }
}
