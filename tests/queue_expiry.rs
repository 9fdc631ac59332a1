//! The queue timeout: a run no worker can take ends as Expired with a message naming what it
//! waited for, and `kiln build` says at once when nothing can take it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use kiln::clock::ManualClock;

fn trivial_context() -> tempfile::TempDir {
    context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))])
}

/// Runs `kiln <args>` until it exits, moving `clock` just past `wait` once the run is
/// queued: the queue timeout passes on the server's clock, not the test's.
async fn queued_then_waited(
    server: &TestServer,
    clock: &ManualClock,
    wait: Duration,
    args: &[&str],
) -> CliRun {
    let before = server.run_count().await;
    let live = Live::spawn(server.kiln(args));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.run_count().await == before {
        assert!(tokio::time::Instant::now() < deadline, "no run was queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.advance(wait + Duration::from_millis(1));
    let (code, stdout, stderr) = tokio::time::timeout(Duration::from_secs(120), live.finish())
        .await
        .expect("kiln build did not end once its run expired");
    CliRun {
        code: code.unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_for_a_platform_no_worker_builds_expires_and_says_what_it_needed() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |_| {}).await;
    let ctx = trivial_context();
    let dir = ctx.path().to_str().unwrap();
    let out = queued_then_waited(
        &server,
        &clock,
        Duration::from_secs(3),
        &[
            "build",
            "--no-push",
            "--platform",
            "linux/s390x",
            "--queue-timeout",
            "3s",
            dir,
        ],
    )
    .await;
    assert_eq!(out.code, 6, "{out:#?}");
    // The embedded worker may also build arm64 by emulation: it is named after amd64.
    let warning = "warning: no connected worker builds linux/s390x; \
                   the connected workers build linux/amd64";
    assert!(out.stderr.contains(warning), "{out:#?}");
    assert!(
        out.stderr.contains("; the run waits up to 3s for one"),
        "{out:#?}"
    );
    let expected = "no worker took this run in 3s: no connected worker builds linux/s390x; \
                    the connected workers build linux/amd64";
    assert!(
        out.stderr.contains("finished with status Expired"),
        "{out:#?}"
    );
    // Once, in the log's closing line.
    assert_eq!(out.stdout.matches(expected).count(), 1, "{out:#?}");
    assert!(!out.stderr.contains(expected), "{out:#?}");

    let id = out.run_id();
    let show = server
        .kiln_output(&["run", "show", &id, "-o", "json"])
        .await;
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(run["status"], "Expired", "{run:#}");
    assert_eq!(run["queueTimeoutSecs"], 3, "{run:#}");
    assert!(
        run["errorMessage"].as_str().unwrap().contains(expected),
        "{run:#}"
    );
    assert!(run["startedAt"].is_null(), "{run:#}");
    let log = server.kiln_output(&["run", "logs", &id]).await.stdout;
    assert!(
        log.contains(&format!("Run ID: {id} expired in the queue: {expected}")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_workers_kiln_build_warns_at_once_and_the_server_default_applies() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| {
        a.workers = 0;
        a.queue_timeout = Duration::from_secs(2);
    })
    .await;
    let ctx = trivial_context();
    let dir = ctx.path().to_str().unwrap();

    // A queue timeout past the limit is bad input and queues nothing.
    let out = server
        .kiln_output(&["build", "--no-push", "--queue-timeout", "8d", dir])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("invalid queue timeout"), "{out:#?}");
    assert_eq!(server.run_count().await, 0);

    let two = Duration::from_secs(2);
    let out = queued_then_waited(&server, &clock, two, &["build", "--no-push", dir]).await;
    assert_eq!(out.code, 6, "{out:#?}");
    let warning = "warning: no connected worker builds linux/amd64; the run waits up to 2s for one";
    let queued = out.stderr.find("Queued a build with ID").unwrap();
    let warned = out
        .stderr
        .find(warning)
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(warned > queued, "{out:#?}");
    assert!(
        out.stdout
            .contains("no worker took this run in 2s: no connected worker builds linux/amd64"),
        "{out:#?}"
    );

    // With no limit, the run stays queued and says it waits until a worker connects.
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-wait",
            "--queue-timeout",
            "0",
            dir,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains(
            "warning: no connected worker builds linux/amd64; the run waits until one connects"
        ),
        "{out:#?}"
    );
    let unlimited = out.stdout.trim().to_string();
    // A run queued after it expires under the server's default; the one without a limit,
    // older still, stays.
    let out = server
        .kiln_output(&["build", "--no-push", "--no-wait", dir])
        .await;
    let limited = out.stdout.trim();
    clock.advance(two + Duration::from_millis(1));
    server
        .wait_status(limited, "Expired", Duration::from_secs(30))
        .await;
    assert_eq!(server.run_json(&unlimited).await["status"], "Queued");
}
