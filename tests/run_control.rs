//! Following, cancel, timeout, lost workers and restarts, against the real engine.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use kiln::clock::ManualClock;

/// A build that prints a marker, then sleeps for a long time in a RUN step.
fn sleeper(marker: &str, secs: u32) -> tempfile::TempDir {
    context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo {marker} && sleep {secs} && echo woke-up-{marker}\n"),
    )])
}

/// Starts `kiln build --no-wait` and returns the run ID.
async fn queue(server: &TestServer, ctx: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--no-wait"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = server.kiln_output(&args).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out.stdout.trim().to_string()
}

/// Whether a process with exactly this command line runs on this machine (BuildKit's RUN
/// steps are ordinary host processes in their own namespaces).
fn process_running(cmdline: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline)
            .unwrap_or(false)
    })
}

/// Waits up to 20 s for a process with this command line to appear (or to be gone).
async fn wait_for_process(cmdline: &str, present: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while process_running(cmdline) != present {
        assert!(
            tokio::time::Instant::now() < deadline,
            "'{cmdline}' should {} running",
            if present { "be" } else { "no longer be" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_follows_the_log_live() {
    let server = TestServer::start().await;
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN for i in 1 2 3; do echo tick-$i; sleep 1; done\n"),
    )]);
    let id = queue(&server, ctx.path(), &["--no-push", "--no-cache"]).await;
    let mut follower = Live::spawn(server.kiln(&["run", "logs", &id, "--follow"]));
    // tick-1 arrives while the run is still running: the follower is live, not replaying.
    let seen = follower.until(|l| l.contains("tick-1")).await;
    let run = server.run_json(&id).await;
    assert_eq!(run["status"], "Running", "{seen:#?}");
    let (code, rest, _) = follower.finish().await;
    assert_eq!(code, Some(0));
    assert!(rest.contains("tick-3"), "{rest}");
    assert!(
        rest.contains(&format!("Run ID: {id} was successful")),
        "{rest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_build_on_the_worker() {
    let server = TestServer::start().await;
    let ctx = sleeper("cancel-me", 4242);
    let dir = ctx.path().to_str().unwrap();
    let mut build = Live::spawn(server.kiln(&["build", "--no-push", "--no-cache", dir]));
    build
        .until(|l| l.contains("cancel-me") && !l.contains("RUN"))
        .await;
    // The marker is echoed just before the sleep starts.
    wait_for_process("sleep 4242", true).await;
    let list = server
        .kiln_output(&["run", "list", "--status", "Running", "-o", "json"])
        .await;
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let id = runs["runs"][0]["id"].as_str().unwrap().to_string();

    let cancel = server.kiln_output(&["run", "cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{cancel:#?}");
    let (code, rest, _) = build.finish().await;
    assert_eq!(code, Some(3), "exit code of a canceled run");
    assert!(
        rest.contains("Build stopped: the run was canceled"),
        "{rest}"
    );
    assert!(
        rest.contains(&format!("Run ID: {id} was canceled after")),
        "{rest}"
    );
    assert_eq!(server.run_json(&id).await["status"], "Canceled");
    // The build itself stopped: its RUN process is gone.
    wait_for_process("sleep 4242", false).await;
    // A finished run cannot be canceled again.
    let again = server.kiln_output(&["run", "cancel", &id]).await;
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("already finished"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_build_and_ends_the_run_as_timeout() {
    let server = TestServer::start().await;
    let ctx = sleeper("slowpoke", 4343);
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-cache",
            "--timeout",
            "3",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 4, "{out:#?}");
    let id = out.run_id();
    assert!(
        out.stdout
            .contains("Build stopped: the run exceeded its timeout of 3s"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Run ID: {id} timed out after")),
        "{}",
        out.stdout
    );
    // The step's own output never gets past the sleep (the RUN line itself names the marker).
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.ends_with(" woke-up-slowpoke") && !l.contains("RUN ")),
        "{}",
        out.stdout
    );
    assert_eq!(server.run_json(&id).await["status"], "Timeout");
    wait_for_process("sleep 4343", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_survive_a_server_restart() {
    let mut server = TestServer::start_with(|a| a.workers = 0).await;
    let repo = unique_repo("restart");
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo after-restart\n"),
    )]);
    let image = format!("{repo}:<<.Run.ID>>");
    let id = queue(&server, ctx.path(), &["-t", &image]).await;
    assert_eq!(server.run_json(&id).await["status"], "Queued");

    server.restart_with(|a| a.workers = 1).await;
    let run = server
        .wait_status(&id, "Succeeded", Duration::from_secs(120))
        .await;
    assert_eq!(run["outputImages"][0]["tag"], id.as_str());
    assert!(registry_digest(&format!("{REGISTRY}/{repo}:{id}"))
        .await
        .is_some());
    let logs = server.kiln_output(&["run", "logs", &id]).await;
    assert!(logs.stdout.contains("after-restart"), "{}", logs.stdout);

    // Finished runs and their logs survive a restart too.
    server.restart_with(|_| {}).await;
    assert_eq!(server.run_json(&id).await["status"], "Succeeded");
    let logs = server.kiln_output(&["run", "logs", &id, "--follow"]).await;
    assert_eq!(logs.code, 0);
    assert!(
        logs.stdout
            .contains(&format!("Run ID: {id} was successful")),
        "{}",
        logs.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_worker_vanishes_ends_as_error() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| {
        a.workers = 0;
        a.lease_ttl = 30;
    })
    .await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let id = queue(&server, ctx.path(), &["--no-push"]).await;
    // A worker leases the run, then dies without a word.
    let worker = server.create_token("doomed", &["worker"], &[]).await;
    let worker = server.http_as(&worker);
    let lease = server.lease_as(&worker, "doomed").await;
    assert_eq!(lease["runId"], id.as_str());
    // The lease runs out on the server's clock, without waiting for it.
    clock.advance(Duration::from_secs(31));
    let run = server
        .wait_status(&id, "Error", Duration::from_secs(15))
        .await;
    let message = run["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("worker lost") && message.contains("doomed"),
        "{message}"
    );
    let logs = server.kiln_output(&["run", "logs", &id]).await;
    assert!(
        logs.stdout
            .contains(&format!("Run ID: {id} ended with an error")),
        "{}",
        logs.stdout
    );

    // The dead worker's attempt is fenced: its late result is refused and changes nothing.
    let late = worker
        .post(format!("{}/api/worker/runs/{id}/result", server.url))
        .json(&serde_json::json!({"attempt": 1, "outcome": "Succeeded", "errorMessage": null, "outputImages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 409);
    assert_eq!(server.run_json(&id).await["status"], "Error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_following_but_not_the_run() {
    let server = TestServer::start().await;
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo interrupt-me && sleep 3 && echo still-built\n"),
    )]);
    let dir = ctx.path().to_str().unwrap();
    let mut build = Live::spawn(server.kiln(&["build", "--no-push", "--no-cache", dir]));
    build.until(|l| l.ends_with(" interrupt-me")).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &build.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (code, _, stderr) = build.finish().await;
    assert_eq!(code, Some(130), "{stderr}");
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Queued a build with ID: "))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        stderr.contains(&format!("kiln run logs {id} --follow")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("kiln run cancel {id}")),
        "{stderr}"
    );
    // The run goes on without its follower, and its log can be read from any offset.
    server
        .wait_status(&id, "Succeeded", Duration::from_secs(60))
        .await;
    let full = server.kiln_output(&["run", "logs", &id]).await.stdout;
    assert!(full.contains("still-built"), "{full}");
    let tail = server
        .get_text(&format!("/api/runs/{id}/logs?offset=10"))
        .await;
    assert_eq!(tail, full[10..]);
}
