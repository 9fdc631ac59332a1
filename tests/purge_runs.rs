//! Purges as runs: `kiln purge` streaming its log and exiting with the run's result, bad
//! arguments and missing delete rights refused before anything is queued, `acr purge` in a
//! YAML `cmd` step, a `--cmd` task and a timer task running Kiln's built-in purge (no
//! container), and a garbage collection pass after a purge that deleted manifests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::oci::push_image;
use common::*;
use kiln::clock::{ManualClock, SharedClock};
use serde_json::{json, Value};

/// Pushes `repo:tag` to the server's own registry as the owner.
async fn push(server: &TestServer, repo: &str, tag: &str) -> String {
    push_image(
        &server.http(),
        &server.url,
        repo,
        tag,
        &format!("{repo}:{tag}"),
    )
    .await
}

/// The server's own registry, as image names and purge output name it.
fn own_registry(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// The tags of `repo` in the server's registry, as the owner sees them.
async fn tags(server: &TestServer, repo: &str) -> Vec<String> {
    let list = server.get_json(&format!("/v2/{repo}/tags/list")).await;
    let mut tags: Vec<String> = list["tags"]
        .as_array()
        .map(|t| t.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// `POST /api/runs/purge` with `words` as `token`: the status and the body.
async fn post_purge(server: &TestServer, token: &str, words: &[&str]) -> (u16, Value) {
    let body = json!({ "words": words });
    server.post_json_as(token, "/api/runs/purge", &body).await
}

/// The log of run `id`, as the owner reads it.
async fn log_of(server: &TestServer, id: &str) -> String {
    server.get_text(&format!("/api/runs/{id}/logs")).await
}

#[tokio::test]
async fn bad_arguments_are_a_400_and_nothing_is_queued() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let owner = server.owner_token().to_string();
    for (words, says) in [
        (&["--filter", "app:.*"][..], "--ago"),
        (
            &["--filter", "app", "--ago", "1d"][..],
            "unable to correctly parse",
        ),
        (&["--filter", "app:x", "--ago", "1h2d"][..], "--ago"),
        (&["--untagged", "--untagged-only"][..], "--untagged-only"),
        (
            &["--filter", "app:x", "--ago", "1d", "--bogus"][..],
            "--bogus",
        ),
    ] {
        let (status, body) = post_purge(&server, &owner, words).await;
        assert_eq!(status, 400, "{words:?}: {body:#}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid purge arguments:") && message.contains(says),
            "{words:?}: {message}"
        );
    }
    // The same rule for a `--cmd` and a task file step: a 400 naming the step's place.
    let out = server
        .kiln_output(&["run", "--cmd", "acr purge --filter app:x", "/dev/null"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("invalid purge command") && out.stderr.contains("--ago"),
        "{out:#?}"
    );
    // The CLI reads the flags before it sends anything.
    let out = server.kiln_output(&["purge", "--filter", "app"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("--filter"), "{out:#?}");
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test]
async fn a_caller_without_delete_where_a_filter_reaches_is_refused_before_anything() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let web = unique_repo("web");
    let api = format!("{web}-api");
    push(&server, &web, "v1").await;
    push(&server, &api, "v1").await;
    let filter = format!("{web}.*:.*");

    // Sees both repositories, may delete in neither: both are named, nothing is queued.
    let pusher = server
        .create_token("pusher", &["push"], &["kiln-test/*"])
        .await;
    let (status, body) = post_purge(&server, &pusher, &["--filter", &filter, "--ago", "0"]).await;
    assert_eq!(status, 403, "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{web}, {api}")) && message.contains("nothing was deleted"),
        "{message}"
    );
    let out = server
        .kiln_output_as(
            &pusher,
            &["purge", "--filter", &filter, "--ago", "0", "--untagged"],
        )
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains(&api), "{out:#?}");
    // The same check for a `--cmd` purge step and a task file's.
    let cmd = format!("acr purge --filter '{filter}' --ago 0");
    let out = server
        .kiln_output_as(&pusher, &["run", "--cmd", &cmd, "/dev/null"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("step acb_step_0:") && out.stderr.contains(&web),
        "{out:#?}"
    );
    // Another registry is purged with the server's credentials there: only for a caller
    // who may delete everywhere.
    let (status, body) = post_purge(
        &server,
        &pusher,
        &["--registry", REGISTRY, "--filter", &filter, "--ago", "0"],
    )
    .await;
    assert_eq!(status, 403, "{body:#}");
    assert_eq!(server.run_count().await, 0);

    // A caller who may delete where it sees: the repository it cannot see is not its concern.
    let deleter = server.create_token("deleter", &["delete"], &[&web]).await;
    let (status, body) = post_purge(&server, &deleter, &["--filter", &filter, "--ago", "0"]).await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(body["kind"], "purge", "{body:#}");
    assert_eq!(server.run_count().await, 1);
    // Nothing ran (no worker): every tag is still there.
    assert_eq!(tags(&server, &web).await, ["v1"]);
    assert_eq!(tags(&server, &api).await, ["v1"]);
}

#[tokio::test]
async fn kiln_purge_streams_its_log_and_exits_with_the_run() {
    let server = TestServer::start().await;
    let repo = unique_repo("app/web");
    for tag in ["dev-1", "dev-2", "dev-3", "v1"] {
        push(&server, &repo, tag).await;
    }
    let filter = format!("{repo}:^dev-");
    let out = server
        .kiln_output(&["purge", "--filter", &filter, "--ago", "0", "--dry-run"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("Queued a purge run with ID: "),
        "{out:#?}"
    );
    let id = out.run_id();
    let run = server.run_json(&id).await;
    assert_eq!(run["kind"], "purge", "{run:#}");
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let steps = server.steps_of(&id).await;
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["id"], "purge");
    assert_eq!(steps[0]["type"], "purge");
    assert_eq!(steps[0]["status"], "Succeeded");
    let list = server.kiln_output(&["run", "list"]).await;
    let row = list.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("purge"), "{}", list.stdout);
    // A dry run deletes nothing.
    assert_eq!(
        tags(&server, &repo).await,
        ["dev-1", "dev-2", "dev-3", "v1"]
    );
}

#[tokio::test]
async fn kiln_purge_prints_acrs_lines_and_deletes_what_the_dry_run_listed() {
    let server = TestServer::start().await;
    let repo = unique_repo("app/web");
    for tag in ["dev-1", "dev-2", "dev-3", "v1"] {
        push(&server, &repo, tag).await;
    }
    let filter = format!("{repo}:^dev-");
    let out = server
        .kiln_output(&["purge", "--filter", &filter, "--ago", "0", "--dry-run"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let reg = own_registry(&server);
    for line in [
        "DRY RUN: The following output shows what WOULD be deleted if the purge command was executed. Nothing is deleted.".to_string(),
        format!("Would delete tags for repository: {repo}"),
        format!("Would delete: {reg}/{repo}:dev-1"),
        format!("Would delete: {reg}/{repo}:dev-3"),
        "Number of tags to be deleted: 3".to_string(),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{out:#?}");
    }
    assert!(!out.stdout.contains(&format!("{repo}:v1")), "{out:#?}");

    // The real run deletes exactly those, and keeps the newest with --keep.
    let out = server
        .kiln_output(&["purge", "--filter", &filter, "--ago", "0", "--keep", "1"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    for line in [
        format!("Deleting tags for repository: {repo}"),
        format!("Deleted {reg}/{repo}:dev-1"),
        format!("Deleted {reg}/{repo}:dev-2"),
        "Number of deleted tags: 2".to_string(),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{out:#?}");
    }
    assert_eq!(tags(&server, &repo).await, ["dev-3", "v1"]);
    let steps = server.steps_of(&out.run_id()).await;
    assert_eq!(steps[0]["purged"]["deletedTags"], 2, "{steps:#?}");
}

#[tokio::test]
async fn acr_purge_in_a_task_file_is_a_built_in_step() {
    let server = TestServer::start().await;
    let repo = unique_repo("yaml");
    push(&server, &repo, "old").await;
    let dir = context(&[(
        "acb.yaml",
        &format!(
            "version: v1.1.0\nsteps:\n  - cmd: acr purge --filter '{repo}:.*' --ago 0 --dry-run\n"
        ),
    )]);
    let file = dir.path().join("acb.yaml");
    let out = server
        .kiln_output(&["run", "-f", file.to_str().unwrap(), "/dev/null"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    let steps = server.steps_of(&id).await;
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["type"], "purge", "{steps:#?}");
    assert_eq!(steps[0]["status"], "Succeeded", "{steps:#?}");
    assert_eq!(steps[0]["exitCode"], 0, "{steps:#?}");
    let log = log_of(&server, &id).await;
    // No container: nothing pulled, no image named.
    assert!(log.contains("Executing step ID: acb_step_0"), "{log}");
    assert!(!log.contains("Pulling") && !log.contains("acr:"), "{log}");
    assert_eq!(tags(&server, &repo).await, ["old"]);
}

#[tokio::test]
async fn an_acr_purge_step_prints_acrs_lines_in_the_run_log() {
    let server = TestServer::start().await;
    let repo = unique_repo("yaml");
    push(&server, &repo, "old").await;
    let out = server
        .kiln_output(&[
            "run",
            "--cmd",
            &format!("acr purge --filter '{repo}:.*' --ago 0 --dry-run"),
            "/dev/null",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let log = log_of(&server, &out.run_id()).await;
    let reg = own_registry(&server);
    for line in [
        format!("Would delete tags for repository: {repo}"),
        format!("Would delete: {reg}/{repo}:old"),
        "Number of tags to be deleted: 1".to_string(),
    ] {
        assert!(log.contains(&line), "{line}\n{log}");
    }
    assert_eq!(tags(&server, &repo).await, ["old"]);
}

#[tokio::test]
async fn a_cmd_task_runs_acr_purge_unchanged() {
    let server = TestServer::start().await;
    let repo = unique_repo("task");
    push(&server, &repo, "keep").await;
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "nightly-purge",
            "--context",
            "/dev/null",
            "--schedule",
            "0 1 * * *",
            "--cmd",
            "acr purge --filter 'app/.*:.*' --ago 30d --untagged",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output(&["task", "run", "--name", "nightly-purge"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    let steps = server.steps_of(&id).await;
    assert_eq!(steps[0]["type"], "purge", "{steps:#?}");
    assert_eq!(steps[0]["status"], "Succeeded", "{steps:#?}");
    // The filter reaches no repository of this test: nothing of it goes.
    assert_eq!(tags(&server, &repo).await, ["keep"]);
}

#[tokio::test]
async fn a_task_purge_is_checked_against_who_runs_it() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let repo = unique_repo("locked");
    push(&server, &repo, "v1").await;
    let tasks = server
        .create_token("tasker", &["tasks", "push"], &["kiln-test/*"])
        .await;
    let cmd = format!("acr purge --filter '{repo}:.*' --ago 30d --untagged");
    let out = server
        .kiln_output_as(
            &tasks,
            &[
                "task",
                "create",
                "--name",
                "cleanup",
                "--context",
                "/dev/null",
                "--cmd",
                &cmd,
            ],
        )
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    // It may push there, not delete: its run of the task is refused, naming the repository.
    let out = server
        .kiln_output_as(&tasks, &["task", "run", "--name", "cleanup"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains(&repo) && out.stderr.contains("nothing was deleted"),
        "{out:#?}"
    );
    assert_eq!(server.run_count().await, 0);
    // The owner may: the run is queued.
    let out = server
        .kiln_output(&["task", "run", "--name", "cleanup", "--no-wait"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(server.run_count().await, 1);
    assert_eq!(tags(&server, &repo).await, ["v1"]);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_timer_task_fires_a_purge() {
    let clock = ManualClock::at(at("2030-01-01T00:59:30Z"));
    let shared: SharedClock = Arc::new(clock.clone());
    let server = TestServer::start_with_clock(shared, |_| {}).await;
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "nightly-purge",
            "--context",
            "/dev/null",
            "--schedule",
            "0 1 * * *",
            "--cmd",
            "acr purge --filter 'app/.*:.*' --ago 30d --untagged --dry-run",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    clock.set(at("2030-01-01T01:00:01Z"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let id = loop {
        let list = server.get_json("/api/tasks/nightly-purge/runs").await;
        if let Some(run) = list["runs"].as_array().and_then(|r| r.first()) {
            break run["id"].as_str().unwrap().to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no run fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run = server
        .wait_status(&id, "Succeeded", Duration::from_secs(60))
        .await;
    assert_eq!(run["trigger"], "Timer", "{run:#}");
    let steps = server.steps_of(&id).await;
    assert_eq!(steps[0]["type"], "purge", "{steps:#?}");
}

/// Waits until the server logged a collection after purge run `id`.
async fn wait_collected_after(logs: &std::sync::Mutex<Vec<u8>>, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        if text.lines().any(|l| {
            l.contains("registry garbage collected after a purge")
                && l.contains(&format!("run.id={id} "))
        }) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no collection after purge run {id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_purge_that_deleted_manifests_here_asks_for_garbage_collection() {
    let logs = captured_logs::captured_logs();
    let server = TestServer::start_with(|a| {
        a.workers = 0;
        a.gc_interval = Duration::from_secs(3600);
    })
    .await;
    let owner = server.owner_token().to_string();
    let worker = server.http_as(&server.create_token("fake", &["worker"], &[]).await);
    let info = json!({
        "id": "fake-1", "name": "fake", "platforms": ["linux/amd64"], "protocol": 2,
        "jobs": ["purge"], "stepTypes": [],
    });
    // A worker that runs no purges is not given one.
    let (status, body) = post_purge(&server, &owner, &["--untagged-only"]).await;
    assert_eq!(status, 201, "{body:#}");
    let id = body["id"].as_str().unwrap().to_string();
    let builds_only = json!({
        "id": "old-1", "name": "old", "platforms": ["linux/amd64"], "protocol": 2,
        "jobs": ["build", "steps"], "stepTypes": ["build", "push", "cmd"],
    });
    assert_eq!(
        server.lease_raw(&worker, builds_only, 200).await.status(),
        204
    );
    let resp = server.lease_raw(&worker, info, 5000).await;
    assert_eq!(resp.status(), 200);
    let lease: Value = resp.json().await.unwrap();
    assert_eq!(lease["job"]["kind"], "purge", "{lease:#}");
    assert_eq!(
        lease["job"]["words"],
        json!(["--untagged-only"]),
        "{lease:#}"
    );
    assert_eq!(lease["job"]["registry"], own_registry(&server), "{lease:#}");
    assert_eq!(lease["job"]["kiln"], true, "{lease:#}");
    let result = json!({
        "attempt": lease["attempt"], "outcome": "Succeeded", "errorMessage": null,
        "outputImages": [],
        "steps": [{
            "id": "purge", "stepType": "purge", "status": "Succeeded", "exitCode": 0,
            "purged": {"deletedTags": 0, "deletedManifests": 2},
        }],
    });
    let resp = worker
        .post(format!("{}/api/worker/runs/{id}/result", server.url))
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    wait_collected_after(&logs, &id).await;
    let steps = server.steps_of(&id).await;
    assert_eq!(steps[0]["purged"]["deletedManifests"], 2, "{steps:#?}");
    let shown = server.kiln_output(&["run", "show", &id]).await;
    assert!(
        shown.stdout.contains("deleted 0 tags, 2 manifests"),
        "{shown:#?}"
    );
}

#[tokio::test]
async fn a_real_purge_that_deleted_manifests_asks_for_garbage_collection() {
    let logs = captured_logs::captured_logs();
    let server = TestServer::start_with(|a| a.gc_interval = Duration::from_secs(3600)).await;
    let repo = unique_repo("gc");
    push(&server, &repo, "old").await;
    let out = server
        .kiln_output(&[
            "purge",
            "--filter",
            &format!("{repo}:.*"),
            "--ago",
            "0",
            "--untagged",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains("Number of deleted manifests: 1"),
        "{out:#?}"
    );
    let id = out.run_id();
    let steps = server.steps_of(&id).await;
    assert_eq!(steps[0]["purged"]["deletedManifests"], 1, "{steps:#?}");
    wait_collected_after(&logs, &id).await;
}
