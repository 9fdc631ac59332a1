//! A purge job on the agent: run by the worker itself (the engine never builds), reported as
//! the run's one step, `purge`, with what it deleted; bad words fail the run with the reason.

use bytes::Bytes;

use super::fake_server::FakeServer;
use super::tests::start_agent;
use super::*;
use crate::fake_engine::{FakeEngine, Script};

/// A lease of purge run ca1 with `words`, in a registry nobody serves (it deletes nothing).
fn purge_lease(words: &[&str]) -> Lease {
    serde_json::from_value(serde_json::json!({
        "runId": "ca1",
        "attempt": 1,
        "job": {"kind": "purge", "words": words, "registry": "127.0.0.1:9", "kiln": false},
        "heartbeatIntervalMs": 100,
        "timeoutMs": 60_000,
        "logOffset": 0,
        "credentials": []
    }))
    .unwrap()
}

async fn result_of(words: &[&str]) -> (RunResult, String, usize) {
    let server = FakeServer::start(purge_lease(words), Bytes::new()).await;
    let (stop, journal) = start_agent(&server, FakeEngine::new(Script::Hang));
    server.until("a result", |s| !s.results.is_empty()).await;
    stop.cancel();
    let result = server.seen(|s| s.results[0].clone());
    (result, server.log(), journal.read(|r| r.builds_started))
}

#[tokio::test]
async fn unreadable_words_fail_the_run_with_the_reason_and_no_build() {
    let (result, log, builds) = result_of(&["--filter", "a:b"]).await;
    assert_eq!(builds, 0);
    assert_eq!(result.outcome, Outcome::Failed, "{result:?}");
    let message = result.error_message.clone().unwrap();
    assert!(
        message.starts_with("invalid purge arguments:") && message.contains("--ago"),
        "{message}"
    );
    assert!(log.contains("invalid purge arguments:"), "{log}");
    let [step] = &result.steps[..] else {
        panic!("one step: {result:?}")
    };
    assert_eq!(
        (step.id.as_str(), step.step_type, step.status),
        ("purge", StepType::Purge, StepStatus::Failed)
    );
    assert_eq!(step.exit_code, Some(1));
    assert_eq!(step.purged, Some(PurgeCounts::default()));
}
