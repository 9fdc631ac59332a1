//! `kiln-worker` processes on their own, as on a separate build host: they reach the server
//! only over HTTP, and a worker that dies mid-build loses its run without blocking others.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kiln::clock::ManualClock;

fn spawn_worker(server: &TestServer, token: &str, name: &str) -> tokio::process::Child {
    tokio::process::Command::new(worker_binary())
        .args(["--server", &server.url, "--name", name])
        .env("KILN_WORKER_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn remote_only_server(clock: &ManualClock) -> TestServer {
    TestServer::start_with_clock(Arc::new(clock.clone()), |a| {
        a.workers = 0;
        a.lease_ttl = 30;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_mid_build_loses_its_run_and_a_fresh_one_carries_on() {
    let clock = ManualClock::new();
    let server = remote_only_server(&clock).await;
    let token = server.create_token("build-hosts", &["worker"], &[]).await;
    let mut worker = spawn_worker(&server, &token, "remote-1");
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo doomed-build && sleep 4444\n"),
    )]);
    let dir = ctx.path().to_str().unwrap();
    let mut build = Live::spawn(server.kiln(&["build", "--no-push", "--no-cache", dir]));
    let seen = build.until(|l| l.ends_with(" doomed-build")).await;
    assert!(
        seen.iter()
            .any(|l| l.contains("started on worker remote-1")),
        "{seen:#?}"
    );
    worker.kill().await.unwrap();

    // The follower sees the run end as Error once the lease (30 s) runs out on the server's
    // clock, which from here moves 31 s a second: a heartbeat sent just before the kill and
    // answered after a single move would have renewed the lease past it.
    let ticking = tokio::spawn({
        let clock = clock.clone();
        async move {
            loop {
                clock.advance(Duration::from_secs(31));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let (code, rest, _) = build.finish().await;
    ticking.abort();
    assert_eq!(code, Some(5));
    assert!(rest.contains("ended with an error"), "{rest}");
    assert!(rest.contains("worker lost: worker 'remote-1'"), "{rest}");

    let _fresh = spawn_worker(&server, &token, "remote-2");
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo fresh\n"),
    )]);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        server
            .kiln(&["build", "--no-push", ctx.path().to_str().unwrap()])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("started on worker remote-2"), "{stdout}");
}
