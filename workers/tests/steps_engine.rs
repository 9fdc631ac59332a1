//! The step executor on the real Docker engine: build -> cmd -> push, parallel steps, a
//! detached service reached by its step id, a step timeout, cancel and masking. Needs the
//! engine and the registry on 127.0.0.1:5000 holding `busybox:latest`.

use std::process::Command;

use bytes::Bytes;
use futures::StreamExt;
use kiln_worker::engine::Engine;
use kiln_worker::executor::{closing_table, Board};
use kiln_worker::protocol::{Outcome, OutputImage, StepStatus, StepsJob};
use kiln_worker::steps::{self, workspace, Workspace};
use kiln_worker::{DockerEngine, LogSink};
use serde_json::json;
use tokio::sync::mpsc;

const BUSYBOX: &str = "127.0.0.1:5000/busybox:latest";

fn cmd(id: &str, when: &[&str], args: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({
        "id": id,
        "when": when,
        "action": {"type": "cmd", "image": BUSYBOX, "args": args},
        "timeoutSecs": 120,
        "workingDirectory": "/workspace"
    });
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

fn job(steps: Vec<serde_json::Value>, masked: &[&str]) -> StepsJob {
    serde_json::from_value(json!({
        "context": null,
        "platforms": "linux/amd64",
        "steps": steps,
        "masked": masked
    }))
    .unwrap()
}

/// A tar holding `files` (path, content).
fn tar_of(files: &[(&str, &str)]) -> Bytes {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    Bytes::from(builder.into_inner().unwrap())
}

/// The engine's resources (containers, networks, volumes) labelled with an execution.
fn leftovers(execution: &str) -> Vec<String> {
    let filter = format!("label=kiln.execution={execution}");
    let mut found = Vec::new();
    for args in [
        vec!["ps", "-aq", "--filter", &filter],
        vec!["network", "ls", "-q", "--filter", &filter],
        vec!["volume", "ls", "-q", "--filter", &filter],
    ] {
        let out = Command::new("docker").args(&args).output().unwrap();
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    found
}

struct Ran {
    result: Result<Vec<OutputImage>, (Outcome, String)>,
    states: Vec<kiln_worker::protocol::StepState>,
    log: String,
}

async fn run(job: StepsJob, seed: Option<Bytes>) -> Ran {
    let engine = DockerEngine::new(None);
    let execution = format!("t{}", uuid::Uuid::new_v4().simple());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let log = LogSink::to_channel(tx).masking(job.masked.iter().map(|s| s.expose().to_string()));
    let ws = Workspace::create(
        &engine,
        "ca1".parse().unwrap(),
        &execution,
        ("test", "test@test"),
        &job,
        &[],
    )
    .await
    .unwrap();
    if let Some(seed) = seed {
        ws.seed(&engine, futures::stream::iter([Ok(seed)]).boxed())
            .await
            .unwrap();
    }
    let board = Board::new(&job, None);
    let result = steps::run(&engine, &ws, &job, Vec::new(), None, &board, &log).await;
    let states = board.close(StepStatus::Canceled);
    for line in closing_table(&states) {
        log.line(line);
    }
    workspace::remove(&engine, &execution).await;
    engine.forget(&steps::local_names(&job, &execution)).await;
    assert_eq!(leftovers(&execution), Vec::<String>::new());
    drop(log);
    let mut text = String::new();
    while let Some(chunk) = rx.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ran {
        result,
        states,
        log: text,
    }
}

#[tokio::test]
async fn build_then_run_the_image_then_push_it() {
    let image = format!(
        "127.0.0.1:5000/kiln-steps/app:{}",
        uuid::Uuid::new_v4().simple()
    );
    let dockerfile = format!("FROM {BUSYBOX}\nRUN echo built-in-a-step > /built.txt\n");
    let job = job(
        vec![
            json!({
                "id": "build",
                "action": {
                    "type": "build",
                    "contextDir": "app",
                    "dockerfile": "Dockerfile",
                    "platforms": "linux/amd64",
                    "images": [image]
                },
                "timeoutSecs": 300,
                "workingDirectory": "/workspace"
            }),
            {
                let mut s = cmd("test", &["build"], &["cat", "/built.txt"], json!({}));
                s["action"]["image"] = json!(image);
                s
            },
            json!({
                "id": "push",
                "when": ["test"],
                "action": {"type": "push", "images": [image]},
                "timeoutSecs": 300,
                "workingDirectory": "/workspace"
            }),
        ],
        &[],
    );
    let ran = run(job, Some(tar_of(&[("app/Dockerfile", &dockerfile)]))).await;
    let pushed = ran.result.expect(&ran.log);
    assert_eq!(pushed.len(), 1, "{}", ran.log);
    assert!(ran.log.contains("built-in-a-step"), "{}", ran.log);
    // The push step's manifest digest, and the build step's local image id.
    let manifest = format!("image: {image}@{}", pushed[0].digest);
    assert!(ran.log.contains(&manifest), "{}", ran.log);
    assert_eq!(ran.states[0].images.len(), 1, "{:?}", ran.states[0]);
    let pulled = Command::new("docker")
        .args(["pull", "-q", &image])
        .status()
        .unwrap();
    assert!(pulled.success());
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

#[tokio::test]
async fn parallel_steps_run_at_the_same_time() {
    // Each writes its file, then waits for the other's: only together can both finish.
    let wait_for = |mine: &str, other: &str| {
        format!("touch /workspace/{mine}; until [ -e /workspace/{other} ]; do sleep 0.1; done; echo {mine} saw {other}")
    };
    let job = job(
        vec![
            cmd(
                "left",
                &[],
                &["sh", "-c", &wait_for("l", "r")],
                json!({"timeoutSecs": 60}),
            ),
            cmd(
                "right",
                &[],
                &["sh", "-c", &wait_for("r", "l")],
                json!({"timeoutSecs": 60}),
            ),
        ],
        &[],
    );
    let ran = run(job, None).await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert!(ran.log.contains("[left] l saw r"), "{}", ran.log);
    assert!(ran.log.contains("[right] r saw l"), "{}", ran.log);
}

#[tokio::test]
async fn a_detached_service_is_reached_by_its_step_id() {
    let job = job(
        vec![
            cmd(
                "web",
                &[],
                &["httpd", "-f", "-p", "8080", "-h", "/workspace"],
                json!({"detach": true}),
            ),
            cmd(
                "client",
                &["web"],
                &[
                    "sh",
                    "-c",
                    "for i in $(seq 100); do wget -q -O - http://web:8080/hello.txt && exit 0; sleep 0.1; done; exit 1",
                ],
                json!({"timeoutSecs": 60}),
            ),
        ],
        &[],
    );
    let ran = run(job, Some(tar_of(&[("hello.txt", "served by a step\n")]))).await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert!(ran.log.contains("served by a step"), "{}", ran.log);
}

#[tokio::test]
async fn a_step_over_its_timeout_ends_and_its_container_is_gone() {
    let job = job(
        vec![cmd(
            "slow",
            &[],
            &["sleep", "600"],
            json!({"timeoutSecs": 1}),
        )],
        &[],
    );
    let ran = run(job, None).await;
    let (outcome, message) = ran.result.unwrap_err();
    assert_eq!(outcome, Outcome::Failed);
    assert!(message.contains("exceeded its timeout of 1s"), "{message}");
    assert_eq!(ran.states[0].status, StepStatus::Timeout);
}

#[tokio::test]
async fn canceling_during_a_step_removes_everything() {
    let engine = DockerEngine::new(None);
    let execution = format!("t{}", uuid::Uuid::new_v4().simple());
    let job = job(vec![cmd("forever", &[], &["sleep", "600"], json!({}))], &[]);
    let (tx, _rx) = mpsc::unbounded_channel();
    let log = LogSink::to_channel(tx);
    let ws = Workspace::create(
        &engine,
        "ca2".parse().unwrap(),
        &execution,
        ("test", "test@test"),
        &job,
        &[],
    )
    .await
    .unwrap();
    let board = Board::new(&job, None);
    let running = async {
        let filter = format!("label=kiln.execution={execution}");
        loop {
            let out = Command::new("docker")
                .args([
                    "ps",
                    "-q",
                    "--filter",
                    &filter,
                    "--filter",
                    "status=running",
                ])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        r = steps::run(&engine, &ws, &job, Vec::new(), None, &board, &log) => panic!("ended: {r:?}"),
        _ = running => {}
    }
    let states = board.close(StepStatus::Canceled);
    assert_eq!(states[0].status, StepStatus::Canceled);
    workspace::remove(&engine, &execution).await;
    assert_eq!(leftovers(&execution), Vec::<String>::new());
}

#[tokio::test]
async fn secrets_are_masked_in_step_output() {
    let job = job(
        vec![cmd(
            "leak",
            &[],
            &[
                "sh",
                "-c",
                "echo the token is s3cr3t-value; printf 'no newline s3cr3t-value'",
            ],
            json!({}),
        )],
        &["s3cr3t-value"],
    );
    let ran = run(job, None).await;
    assert!(ran.result.is_ok(), "{}", ran.log);
    assert!(ran.log.contains("the token is ***"), "{}", ran.log);
    assert!(ran.log.contains("no newline ***"), "{}", ran.log);
    assert!(!ran.log.contains("s3cr3t"), "{}", ran.log);
}

/// Times `steps::run` alone (the workspace is made before and removed after).
async fn time_steps(job: StepsJob) -> std::time::Duration {
    let engine = DockerEngine::new(None);
    let execution = format!("b{}", uuid::Uuid::new_v4().simple());
    let (tx, _rx) = mpsc::unbounded_channel();
    let log = LogSink::to_channel(tx);
    let ws = Workspace::create(
        &engine,
        "ca9".parse().unwrap(),
        &execution,
        ("bench", "bench@test"),
        &job,
        &[],
    )
    .await
    .unwrap();
    let board = Board::new(&job, None);
    let started = std::time::Instant::now();
    let result = steps::run(&engine, &ws, &job, Vec::new(), None, &board, &log).await;
    let took = started.elapsed();
    workspace::remove(&engine, &execution).await;
    result.unwrap();
    took
}

/// Benchmark, not a check: `cargo test -p kiln-worker --test steps_engine -- --ignored
/// --nocapture bench` prints 10 sequential `busybox true` steps against 10 sequential
/// `docker run --rm` (target: ratio <= 1.2), and 4 parallel 2 s steps (target <= 2.5 s).
#[tokio::test]
#[ignore]
async fn bench_steps() {
    let sequential: Vec<_> = (0..10)
        .map(|i| {
            let when: Vec<String> = if i == 0 {
                Vec::new()
            } else {
                vec![format!("s{}", i - 1)]
            };
            let when: Vec<&str> = when.iter().map(String::as_str).collect();
            cmd(&format!("s{i}"), &when, &["true"], json!({}))
        })
        .collect();
    // Warm up the engine's image and network paths once.
    time_steps(job(sequential.clone(), &[])).await;
    let steps = time_steps(job(sequential, &[])).await;
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let ok = Command::new("docker")
            .args(["run", "--rm", BUSYBOX, "true"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let cli = started.elapsed();
    println!(
        "10 sequential cmd steps: {:.2}s; 10 sequential docker run --rm: {:.2}s; ratio {:.2}",
        steps.as_secs_f64(),
        cli.as_secs_f64(),
        steps.as_secs_f64() / cli.as_secs_f64()
    );
    let parallel = (0..4)
        .map(|i| cmd(&format!("p{i}"), &[], &["sleep", "2"], json!({})))
        .collect();
    let took = time_steps(job(parallel, &[])).await;
    println!("4 parallel steps sleeping 2s: {:.2}s", took.as_secs_f64());
}
