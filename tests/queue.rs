//! Queue transparency (position and reason of a queued run) and `run list` filters, against
//! the real server and engine.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts `kiln build --no-wait` and returns the run ID.
async fn queue(server: &TestServer, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--no-wait"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = server.kiln_output(&args).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out.stdout.trim().to_string()
}

/// `kiln run show ID -o json`.
async fn show(server: &TestServer, id: &str) -> Value {
    let out = server.kiln_output(&["run", "show", id, "-o", "json"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// The IDs `kiln run list -o json <args>` prints, in its order.
async fn listed(server: &TestServer, args: &[&str]) -> Vec<String> {
    let mut all = vec!["run", "list", "-o", "json"];
    all.extend_from_slice(args);
    let out = server.kiln_output(&all).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn log(server: &TestServer, id: &str) -> String {
    let out = server.kiln_output(&["run", "logs", id]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out.stdout
}

fn trivial_context() -> tempfile::TempDir {
    context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_nobody_can_build_says_no_worker_is_connected() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let ctx = trivial_context();
    let id = queue(&server, ctx.path(), &["--no-push"]).await;

    let run = show(&server, &id).await;
    assert_eq!(run["status"], "Queued", "{run:#}");
    assert_eq!(run["queuePosition"], 1, "{run:#}");
    let waiting = run["waitingFor"].as_str().unwrap_or_default();
    assert!(
        waiting.contains("no connected worker builds linux/amd64"),
        "{run:#}"
    );
    let table = server.kiln_output(&["run", "show", &id]).await.stdout;
    assert!(table.contains("position 1 for linux/amd64"), "{table}");
    assert!(table.contains("no connected worker"), "{table}");
    let list = server.kiln_output(&["run", "list"]).await.stdout;
    assert!(list.contains("Queued (1)"), "{list}");
    let text = log(&server, &id).await;
    assert!(
        text.contains(
            "Waiting in the queue: position 1 for linux/amd64 \
             (no connected worker builds linux/amd64)"
        ),
        "{text}"
    );

    let out = server.kiln_output(&["run", "cancel", &id]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let run = show(&server, &id).await;
    assert_eq!(run["status"], "Canceled", "{run:#}");
    assert!(run["queuePosition"].is_null(), "{run:#}");
    assert!(run["waitingFor"].is_null(), "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_behind_a_busy_worker_show_their_place_in_the_queue() {
    let server = TestServer::start().await;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let sleeper = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo queue-busy-{nanos:x} && sleep 600\n"),
    )]);
    let busy = queue(&server, sleeper.path(), &["--no-push", "--no-cache"]).await;
    server
        .wait_status(&busy, "Running", Duration::from_secs(60))
        .await;

    let ctx = trivial_context();
    let second = queue(&server, ctx.path(), &["--no-push"]).await;
    // `kiln build` shows why it waits right after it says it does.
    let mut build = server
        .kiln(&["build", "--no-push", ctx.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(build.stderr.take().unwrap()).lines();
    let mut third = None;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if let Some(id) = line.strip_prefix("Queued a build with ID: ") {
            third = Some(id.trim().to_string());
        }
        if line == "Waiting for an agent..." {
            break;
        }
    }
    let third = third.expect("kiln build printed no run ID");
    let mut stdout = BufReader::new(build.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .expect("no log line from kiln build")
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some("Waiting in the queue: position 2 for linux/amd64 (all 1 workers for linux/amd64 are busy)")
    );
    build.kill().await.unwrap();

    for (id, position) in [(&second, 1), (&third, 2)] {
        let run = show(&server, id).await;
        assert_eq!(run["status"], "Queued", "{run:#}");
        assert_eq!(run["queuePosition"], position, "{run:#}");
        assert_eq!(
            run["waitingFor"], "all 1 workers for linux/amd64 are busy",
            "{run:#}"
        );
    }
    let text = log(&server, &second).await;
    assert!(
        text.contains("Waiting in the queue: position 1 for linux/amd64 (all 1 workers for linux/amd64 are busy)"),
        "{text}"
    );
    let out = server.kiln_output(&["run", "list", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let positions: Vec<&Value> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["queuePosition"])
        .collect();
    assert_eq!(positions, [&Value::from(2), &Value::from(1), &Value::Null]);
    let table = server.kiln_output(&["run", "list"]).await.stdout;
    assert!(table.contains("Queued (1)"), "{table}");
    assert!(table.contains("Queued (2)"), "{table}");

    // The queued runs first, so the worker does not take them once it is free.
    for id in [&third, &second, &busy] {
        let out = server.kiln_output(&["run", "cancel", id]).await;
        assert_eq!(out.code, 0, "{out:#?}");
    }
    let run = server
        .wait_status(&busy, "Canceled", Duration::from_secs(30))
        .await;
    assert!(run["queuePosition"].is_null(), "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_list_filters_by_image_status_and_top() {
    let server = TestServer::start().await;
    let ctx = context(&[
        ("Dockerfile", &format!("FROM {BASE_IMAGE}\n")),
        (
            "fail.Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN exit 3\n"),
        ),
    ]);
    let failing = ctx.path().join("fail.Dockerfile");
    let a1 = queue(
        &server,
        ctx.path(),
        &["--no-push", "-t", "kiln-test/list-a:one"],
    )
    .await;
    let a2 = queue(
        &server,
        ctx.path(),
        &[
            "--no-push",
            "-t",
            "kiln-test/list-a:two",
            "-t",
            "kiln-test/list-c",
        ],
    )
    .await;
    let b = queue(
        &server,
        ctx.path(),
        &[
            "--no-push",
            "-t",
            "kiln-test/list-b:one",
            "-f",
            failing.to_str().unwrap(),
        ],
    )
    .await;
    let limit = Duration::from_secs(60);
    server.wait_status(&a1, "Succeeded", limit).await;
    server.wait_status(&a2, "Succeeded", limit).await;
    server.wait_status(&b, "Failed", limit).await;

    assert_eq!(listed(&server, &[]).await, [&*b, &*a2, &*a1]);
    assert_eq!(listed(&server, &["--top", "2"]).await, [&*b, &*a2]);
    assert_eq!(
        listed(&server, &["--image", "kiln-test/list-a"]).await,
        [&*a2, &*a1]
    );
    assert_eq!(
        listed(&server, &["--image", "kiln-test/list-a:two"]).await,
        [&*a2]
    );
    assert!(listed(&server, &["--image", "kiln-test/list-a:three"])
        .await
        .is_empty());
    // A repository whose name merely starts the same is another repository.
    assert!(listed(&server, &["--image", "kiln-test/list"])
        .await
        .is_empty());
    assert_eq!(
        listed(
            &server,
            &["--image", &format!("{REGISTRY}/kiln-test/list-b:one")]
        )
        .await,
        [&*b]
    );
    assert!(listed(
        &server,
        &["--image", "elsewhere.example.com/kiln-test/list-b"]
    )
    .await
    .is_empty());
    // An untagged name is the latest tag.
    assert_eq!(
        listed(&server, &["--image", "kiln-test/list-c:latest"]).await,
        [&*a2]
    );
    assert_eq!(listed(&server, &["--status", "Failed"]).await, [&*b]);
    assert_eq!(
        listed(
            &server,
            &[
                "--status",
                "Succeeded",
                "--image",
                "kiln-test/list-a",
                "--top",
                "1"
            ]
        )
        .await,
        [&*a2]
    );

    let table = server
        .kiln_output(&["run", "list", "--image", "kiln-test/list-b"])
        .await;
    assert_eq!(table.code, 0, "{table:#?}");
    assert!(
        table
            .stdout
            .contains(&format!("{REGISTRY}/kiln-test/list-b:one")),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains("list-a"), "{}", table.stdout);

    let bad = server
        .kiln_output(&["run", "list", "--image", "Kiln-Test/App"])
        .await;
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("must be lowercase"), "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilds_go_to_the_worker_that_built_them_last() {
    let server = TestServer::start_with(|a| a.workers = 2).await;
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo affinity > /a\n"),
    )]);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let out = server
            .kiln_output(&[
                "build",
                "--no-push",
                "-t",
                "affinity/app:v1",
                ctx.path().to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.code, 0, "{out:#?}");
        let run = server.run_json(&out.run_id()).await;
        workers.push(run["worker"].as_str().unwrap().to_string());
    }
    assert!(
        workers.iter().all(|w| w == &workers[0]),
        "each rebuild should follow the warm cache: {workers:?}"
    );
}
