//! The executor on the fake engine: order, parallelism, retries, repeats, exit codes,
//! timeouts, cancel, fail-fast and masking.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::{closing_table, execute, Board};
use crate::engine::Engine;
use crate::fake_engine::{FakeEngine, Script};
use crate::logship::LogSink;
use crate::protocol::{Outcome, StepState, StepStatus, StepsJob};
use crate::steps::{workspace, EngineSteps, Workspace};

/// A cmd step running the fake engine's `script`, with `extra` properties.
fn step(id: &str, when: &[&str], script: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({
        "id": id,
        "when": when,
        "action": {"type": "cmd", "image": "busybox", "args": script},
        "timeoutSecs": 600,
        "workingDirectory": "/workspace"
    });
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

fn job(steps: Vec<serde_json::Value>) -> StepsJob {
    serde_json::from_value(json!({
        "context": null,
        "platforms": "linux/amd64",
        "steps": steps,
        "masked": ["hunter2"]
    }))
    .unwrap()
}

struct Ran {
    result: Result<(), (Outcome, String)>,
    states: Vec<StepState>,
    log: String,
    engine: FakeEngine,
}

impl Ran {
    fn status(&self, id: &str) -> StepStatus {
        self.states.iter().find(|s| s.id == id).unwrap().status
    }

    fn containers_of(&self, id: &str) -> usize {
        self.engine.journal.read(|r| {
            r.created
                .iter()
                .filter(|c| c.name.starts_with(&format!("{id}-")))
                .count()
        })
    }
}

fn log_text(rx: &mut mpsc::UnboundedReceiver<Bytes>) -> String {
    let mut text = String::new();
    while let Ok(chunk) = rx.try_recv() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

async fn run(job: StepsJob) -> Ran {
    let engine = FakeEngine::new(Script::Succeed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let log = LogSink::to_channel(tx).masking(job.masked.iter().map(|s| s.expose().to_string()));
    let ws = Workspace::create(
        &engine,
        "ca1".parse().unwrap(),
        "ca1-x",
        ("w", "w@test"),
        &job,
        &[],
    )
    .await
    .unwrap();
    let board = Board::new(&job, None);
    let result = execute(
        &job,
        &EngineSteps::new(&engine, &ws, Vec::new()),
        &board,
        &log,
    )
    .await;
    let states = board.snapshot();
    for line in closing_table(&states) {
        log.line(line);
    }
    Ran {
        result,
        states,
        log: log_text(&mut rx),
        engine,
    }
}

#[tokio::test]
async fn steps_without_when_run_one_after_the_other() {
    let ran = run(job(vec![
        step("a", &[], &["echo:one"], json!({})),
        step("b", &["a"], &["echo:two"], json!({})),
        step("c", &["b"], &["echo:three"], json!({})),
    ]))
    .await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    let order: Vec<String> = ran.engine.journal.read(|r| {
        r.created
            .iter()
            .filter(|c| c.image == "busybox")
            .map(|c| c.name.clone())
            .collect()
    });
    assert_eq!(order, ["a-ca1-x", "b-ca1-x", "c-ca1-x"]);
    assert_eq!(ran.engine.journal.read(|r| r.max_running), 1);
    assert!(
        ran.log.contains("\none\n"),
        "no prefix in a chain: {}",
        ran.log
    );
    assert!(ran.log.contains(
        "Executing step ID: a. Timeout(sec): 600, Working directory: '/workspace', Network: 'kiln-ca1-x'"
    ));
    assert!(
        ran.log.contains("Step ID: c marked as successful"),
        "{}",
        ran.log
    );
    // Every container was removed when its step ended.
    assert!(ran.engine.journal.read(|r| r.live.is_empty()));
}

#[tokio::test]
async fn steps_started_together_run_at_the_same_time() {
    // Each waits for the other's file: they finish only if they run at once.
    let ran = run(job(vec![
        step("a", &[], &["touch:a", "await:b", "echo:a done"], json!({})),
        step("b", &[], &["touch:b", "await:a", "echo:b done"], json!({})),
        step("c", &["a", "b"], &["echo:after"], json!({})),
    ]))
    .await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert_eq!(ran.engine.journal.read(|r| r.max_running), 2);
    assert!(ran.log.contains("[a] a done"), "{}", ran.log);
    assert!(ran.log.contains("[c] after"), "{}", ran.log);
}

#[tokio::test]
async fn failures_are_retried_as_often_as_asked() {
    let ran = run(job(vec![step(
        "flaky",
        &[],
        &["succeed-from:3"],
        json!({"retries": 2}),
    )]))
    .await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert_eq!(ran.containers_of("flaky"), 3);
    assert!(ran
        .log
        .contains("Container failed during run: flaky, waiting 0 seconds before retrying..."));

    let ran = run(job(vec![step(
        "flaky",
        &[],
        &["succeed-from:3"],
        json!({"retries": 1}),
    )]))
    .await;
    assert_eq!(ran.result.clone().unwrap_err().0, Outcome::Failed);
    assert_eq!(ran.containers_of("flaky"), 2);
    assert!(ran.log.contains("No retries remaining."), "{}", ran.log);
}

#[tokio::test]
async fn retry_on_errors_retries_only_matching_output() {
    let flaky = |needle: &str| {
        job(vec![step(
            "s",
            &[],
            &["echo:connection reset by peer", "succeed-from:2"],
            json!({"retries": 3, "retryOnErrors": [needle]}),
        )])
    };
    let ran = run(flaky("reset by peer")).await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert_eq!(ran.containers_of("s"), 2);
    let ran = run(flaky("disk full")).await;
    assert!(ran.result.is_err());
    assert_eq!(ran.containers_of("s"), 1);
}

#[tokio::test]
async fn repeat_runs_every_time_and_fails_if_any_failed() {
    let ran = run(job(vec![step("r", &[], &["echo:x"], json!({"repeat": 2}))])).await;
    assert!(ran.result.is_ok());
    assert_eq!(ran.containers_of("r"), 3);
    // The first run fails, the later ones succeed: still a failure, and all three ran.
    let ran = run(job(vec![step(
        "r",
        &[],
        &["succeed-from:2"],
        json!({"repeat": 2}),
    )]))
    .await;
    assert!(ran.result.is_err());
    assert_eq!(ran.containers_of("r"), 3);
    assert_eq!(ran.status("r"), StepStatus::Failed);
}

#[tokio::test]
async fn ignored_errors_let_the_next_steps_run() {
    let ran = run(job(vec![
        step("bad", &[], &["exit:4"], json!({"ignoreErrors": true})),
        step("next", &["bad"], &["echo:went on"], json!({})),
    ]))
    .await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert_eq!(ran.status("bad"), StepStatus::Failed);
    assert_eq!(ran.status("next"), StepStatus::Succeeded);
    assert_eq!(ran.states[0].exit_code, Some(4));
}

#[tokio::test]
async fn exit_code_rules_are_enforced() {
    let ran = run(job(vec![step(
        "s",
        &[],
        &["exit:3"],
        json!({"exitedWith": [0, 3]}),
    )]))
    .await;
    assert!(ran.result.is_ok());
    let ran = run(job(vec![step(
        "s",
        &[],
        &["exit:0"],
        json!({"exitedWithout": [0]}),
    )]))
    .await;
    assert!(ran.result.is_err());
    let ran = run(job(vec![step(
        "s",
        &[],
        &["exit:2"],
        json!({"exitedWithout": [1]}),
    )]))
    .await;
    assert!(ran.result.is_ok());
    let ran = run(job(vec![step("s", &[], &["exit:1"], json!({}))])).await;
    let (outcome, message) = ran.result.clone().unwrap_err();
    assert_eq!(outcome, Outcome::Failed);
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(
        ran.log.contains("Step ID: s marked as failed"),
        "{}",
        ran.log
    );
}

#[tokio::test]
async fn a_step_over_its_timeout_is_stopped_and_fails_the_run() {
    let ran = run(job(vec![
        step("slow", &[], &["hang"], json!({"timeoutSecs": 1})),
        step("after", &["slow"], &["echo:never"], json!({})),
    ]))
    .await;
    let (outcome, message) = ran.result.clone().unwrap_err();
    assert_eq!(outcome, Outcome::Failed);
    assert!(message.contains("exceeded its timeout of 1s"), "{message}");
    assert_eq!(ran.status("slow"), StepStatus::Timeout);
    assert_eq!(ran.status("after"), StepStatus::Skipped);
    assert!(
        ran.engine.journal.read(|r| r.live.is_empty()),
        "the container is gone"
    );
}

#[tokio::test]
async fn the_first_failure_cancels_parallel_steps_and_skips_dependants() {
    let ran = run(job(vec![
        step("fails", &[], &["await:long", "exit:1"], json!({})),
        step("long", &[], &["touch:long", "hang"], json!({})),
        step("child", &["fails"], &["echo:never"], json!({})),
    ]))
    .await;
    assert_eq!(ran.result.as_ref().unwrap_err().0, Outcome::Failed);
    assert_eq!(ran.status("fails"), StepStatus::Failed);
    assert_eq!(ran.status("long"), StepStatus::Canceled);
    assert_eq!(ran.status("child"), StepStatus::Skipped);
    assert!(ran.engine.journal.read(|r| r.live.is_empty()));
    assert!(
        ran.log.contains("Step ID: child marked as skipped"),
        "{}",
        ran.log
    );
    assert!(!ran.log.contains("never"));
}

#[tokio::test]
async fn detached_steps_are_done_once_started() {
    let ran = run(job(vec![
        step("db", &[], &["hang"], json!({"detach": true})),
        step("client", &["db"], &["echo:used it"], json!({})),
    ]))
    .await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    // The service runs until the run's resources are removed.
    assert!(ran.engine.journal.read(|r| r.live.contains("db-ca1-x")));
    workspace::remove(&ran.engine, "ca1-x").await;
    assert!(ran
        .engine
        .journal
        .read(|r| r.live.is_empty() && r.networks.is_empty()));
}

#[tokio::test]
async fn canceling_the_run_stops_every_container() {
    let job = job(vec![
        step("a", &[], &["hang"], json!({})),
        step("b", &[], &["hang"], json!({})),
    ]);
    let engine = FakeEngine::new(Script::Succeed);
    let (tx, _rx) = mpsc::unbounded_channel();
    let log = LogSink::to_channel(tx);
    let ws = Workspace::create(
        &engine,
        "ca2".parse().unwrap(),
        "ca2-x",
        ("w", "w@test"),
        &job,
        &[],
    )
    .await
    .unwrap();
    let board = Board::new(&job, None);
    let runner = EngineSteps::new(&engine, &ws, Vec::new());
    tokio::select! {
        _ = execute(&job, &runner, &board, &log) => panic!("hanging steps ended"),
        _ = engine.journal.until(|r| r.running.len() == 2) => {}
    }
    let states = board.close(StepStatus::Canceled);
    assert!(states.iter().all(|s| s.status == StepStatus::Canceled));
    workspace::remove(&engine, "ca2-x").await;
    engine
        .journal
        .read(|r| assert!(r.live.is_empty() && r.volumes.is_empty() && r.networks.is_empty()));
}

#[tokio::test]
async fn secrets_are_masked_in_the_log() {
    let ran = run(job(vec![step(
        "leak",
        &[],
        &["echo:the password is hunter2!"],
        json!({}),
    )]))
    .await;
    assert!(ran.log.contains("the password is ***!"), "{}", ran.log);
    assert!(!ran.log.contains("hunter2"));
}

#[tokio::test]
async fn start_delay_waits_before_the_step() {
    let started = std::time::Instant::now();
    let ran = run(job(vec![step(
        "late",
        &[],
        &["echo:x"],
        json!({"startDelaySecs": 1}),
    )]))
    .await;
    assert!(ran.result.is_ok());
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_missing_image_fails_the_step_naming_it() {
    let mut j = job(vec![step("s", &[], &["echo:x"], json!({}))]);
    if let crate::protocol::StepAction::Cmd(c) = &mut j.steps[0].action {
        c.image = "missing/image:1".into();
    }
    let ran = run(j).await;
    let (outcome, message) = ran.result.clone().unwrap_err();
    assert_eq!(outcome, Outcome::Failed);
    assert!(message.contains("missing/image:1"), "{message}");
    assert!(ran.engine.ping().await.is_ok());
}
