//! The agent running `Steps` jobs on the fake engine: what it advertises, live step states,
//! the result's steps, masking, cancel, and that the run's resources are gone at the end.

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::fake_server::{Beat, FakeServer};
use super::*;
use crate::fake_engine::{FakeEngine, Journal, Script};
use crate::protocol::StepStatus;

/// A lease of run ca1 running `steps` (cmd steps of the fake engine) on an uploaded context.
fn lease(steps: serde_json::Value) -> Lease {
    serde_json::from_value(serde_json::json!({
        "runId": "ca1",
        "attempt": 1,
        "job": {
            "kind": "steps",
            "context": {"kind": "upload", "digest": format!("sha256:{}", "a".repeat(64))},
            "platforms": "linux/amd64",
            "steps": steps,
            "masked": ["set-secret-value"]
        },
        "heartbeatIntervalMs": 100,
        "timeoutMs": 3_600_000,
        "logOffset": 0,
        "credentials": [{"registry": "127.0.0.1:8080", "username": "run-ca1", "password": "registry-password"}]
    }))
    .unwrap()
}

fn cmd(id: &str, script: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "action": {"type": "cmd", "image": "busybox", "args": script},
        "timeoutSecs": 600,
        "workingDirectory": "/workspace"
    })
}

fn start_agent(server: &FakeServer) -> (CancellationToken, Arc<Journal>) {
    super::tests::start_agent(server, FakeEngine::new(Script::Succeed))
}

async fn reported(server: &FakeServer) -> RunResult {
    server.until("a result", |s| !s.results.is_empty()).await;
    server.seen(|seen| seen.results[0].clone())
}

#[tokio::test]
async fn a_steps_job_runs_reports_its_steps_and_leaves_nothing_behind() {
    let mut second = cmd("second", &["echo:two"]);
    second["when"] = serde_json::json!(["first"]);
    let steps = serde_json::json!([
        cmd(
            "first",
            &["echo:secret set-secret-value and registry-password"]
        ),
        second
    ]);
    let server = FakeServer::start(lease(steps), Bytes::from_static(b"context")).await;
    let (stop, journal) = start_agent(&server);
    let result = reported(&server).await;
    stop.cancel();
    assert_eq!(result.outcome, Outcome::Succeeded, "{}", server.log());
    let statuses: Vec<_> = result
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("first", StepStatus::Succeeded),
            ("second", StepStatus::Succeeded)
        ]
    );
    let worker = server.seen(|s| s.worker.clone()).unwrap();
    assert_eq!(
        worker.jobs,
        [
            JobKind::Build,
            JobKind::Steps,
            JobKind::Purge,
            JobKind::Scan
        ]
    );
    assert_eq!(
        worker.step_types,
        [
            StepType::Build,
            StepType::Push,
            StepType::Cmd,
            StepType::Purge,
            StepType::Scan
        ]
    );
    let live = server.seen(|s| {
        s.step_updates
            .iter()
            .flat_map(|u| u.steps.iter().map(|st| (st.id.clone(), st.status)))
            .collect::<Vec<_>>()
    });
    assert!(
        live.contains(&("first".into(), StepStatus::Succeeded)),
        "{live:?}"
    );
    assert!(
        live.contains(&("second".into(), StepStatus::Succeeded)),
        "{live:?}"
    );
    let log = server.log();
    assert!(log.contains("secret *** and ***"), "{log}");
    assert!(!log.contains("set-secret-value") && !log.contains("registry-password"));
    assert!(
        log.contains("Step ID: second marked as successful"),
        "{log}"
    );
    assert!(log.contains("STEP"), "the closing table: {log}");
    journal.read(|r| assert!(r.live.is_empty() && r.networks.is_empty() && r.volumes.is_empty()));
}

#[tokio::test]
async fn canceling_a_steps_run_stops_its_containers() {
    let server = FakeServer::start(
        lease(serde_json::json!([cmd("forever", &["hang"])])),
        Bytes::from_static(b"context"),
    )
    .await;
    let (stop, journal) = start_agent(&server);
    journal.until(|r| !r.running.is_empty()).await;
    server.set_beat(Beat::Cancel);
    let result = reported(&server).await;
    stop.cancel();
    assert_eq!(result.outcome, Outcome::Canceled);
    assert_eq!(result.steps[0].status, StepStatus::Canceled);
    journal.read(|r| assert!(r.live.is_empty() && r.networks.is_empty() && r.volumes.is_empty()));
}

#[tokio::test]
async fn a_starting_worker_removes_what_its_earlier_self_left() {
    let server = FakeServer::start(
        lease(serde_json::json!([cmd("only", &["echo:x"])])),
        Bytes::from_static(b"context"),
    )
    .await;
    let engine = FakeEngine::new(Script::Succeed);
    let labelled = |name: &str, owner: &str| crate::engine::ContainerSpec {
        name: name.into(),
        labels: [(
            crate::steps::workspace::OWNER_LABEL.to_string(),
            owner.to_string(),
        )]
        .into(),
        ..Default::default()
    };
    let mine = labelled("left-behind", &format!("unit@{}", server.url));
    let other = labelled("someone-elses", "unit@http://another-server");
    engine.create_container(&mine).await.unwrap();
    engine.create_container(&other).await.unwrap();
    let (stop, journal) = super::tests::start_agent(&server, engine);
    reported(&server).await;
    stop.cancel();
    journal.read(|r| {
        assert!(!r.live.contains("left-behind"));
        assert!(r.live.contains("someone-elses"));
    });
}
