//! A worker whose engine does not answer takes no runs, says so in its own log, and queued
//! runs say why they wait, while a healthy worker beside it builds everything.

mod common;

use std::process::Stdio;

use common::log_lines::{log_lines, wait_for_line};
use common::*;
use tokio::sync::mpsc::UnboundedReceiver;

/// A `kiln-worker` whose engine is a socket nobody listens on, and its log.
fn spawn_broken_worker(
    server: &TestServer,
    token: &str,
) -> (tokio::process::Child, UnboundedReceiver<String>) {
    let mut child = tokio::process::Command::new(worker_binary())
        .args(["--server", &server.url, "--name", "broken"])
        .args(["--docker-host", "unix:///nonexistent.sock"])
        .args(["--platform", "linux/amd64,linux/riscv64"])
        .env("KILN_WORKER_TOKEN", token)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = log_lines(child.stderr.take().unwrap());
    (child, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_an_engine_takes_no_run_and_a_healthy_one_builds_them_all() {
    let server = TestServer::start().await;
    let token = server.create_token("hosts", &["worker"], &[]).await;
    let (_broken, mut log) = spawn_broken_worker(&server, &token);
    let line = wait_for_line(&mut log, "engine unreachable").await;
    assert!(line.contains("/nonexistent.sock"), "{line}");

    // A platform only the broken worker claims: the run says why it waits, and `kiln build`
    // warns that nothing can take it now.
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let dir = ctx.path().to_str().unwrap();
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-wait",
            "--platform",
            "linux/riscv64",
            dir,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let waits =
        "no healthy worker builds linux/riscv64: the engine of worker 'broken' is unreachable";
    assert!(
        out.stderr.contains(&format!("warning: {waits}")),
        "{out:#?}"
    );
    let stuck = out.stdout.trim().to_string();
    let run = server.run_json(&stuck).await;
    assert_eq!(run["status"], "Queued", "{run:#}");
    assert_eq!(run["waitingFor"], waits, "{run:#}");

    // Runs both could take all go to the healthy embedded worker; none fails on the broken one.
    let mut ids = Vec::new();
    for i in 0..6 {
        let ctx = context(&[(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN echo run-{i}\n"),
        )]);
        let out = server
            .kiln_output(&[
                "build",
                "--no-push",
                "--no-wait",
                ctx.path().to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.code, 0, "{out:#?}");
        ids.push(out.stdout.trim().to_string());
    }
    for id in &ids {
        // Follows the log until the run ends, whichever way.
        server.kiln_output(&["run", "logs", id, "--follow"]).await;
        let run = server.run_json(id).await;
        assert_eq!(run["status"], "Succeeded", "{run:#}");
        assert_eq!(run["worker"], "embedded-0", "{run:#}");
    }
    assert_eq!(server.run_json(&stuck).await["status"], "Queued");
}
