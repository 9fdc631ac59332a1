//! Steps runs on the server: leasing by job kind and step type, the worker protocol check,
//! steps reported by a worker and shown by `kiln run show`, a build run's one step, and
//! `POST /api/runs/steps` refusing bad input. A fake worker speaks the real HTTP protocol.

mod common;

use common::*;
use serde_json::{json, Value};

/// A server without embedded workers, and a client with a worker token.
async fn server_and_worker() -> (TestServer, reqwest::Client) {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let token = server.create_token("fake", &["worker"], &[]).await;
    let worker = server.http_as(&token);
    (server, worker)
}

fn worker_info(name: &str, jobs: &[&str], step_types: &[&str]) -> Value {
    json!({
        "id": format!("{name}-1"), "name": name, "platforms": ["linux/amd64"],
        "protocol": 2, "jobs": jobs, "stepTypes": step_types,
    })
}

/// Queues `--cmd` through the API as the owner: the response status and body.
async fn queue_cmd(server: &TestServer, body: Value) -> (u16, Value) {
    let resp = server
        .http()
        .post(format!("{}/api/runs/steps", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Posts a worker's result for run `id`: the status code.
async fn report(server: &TestServer, worker: &reqwest::Client, id: &str, result: Value) -> u16 {
    let url = format!("{}/api/worker/runs/{id}/result", server.url);
    post(worker, url, result).await
}

/// `kiln run show ID`, which must succeed, and the line of its output starting with `prefix`.
async fn shown_line(server: &TestServer, id: &str, prefix: &str) -> String {
    let shown = server.kiln_output(&["run", "show", id]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let line = shown.stdout.lines().find(|l| l.starts_with(prefix));
    line.unwrap_or_else(|| panic!("no line starting {prefix:?}: {}", shown.stdout))
        .to_string()
}

/// A lease `worker` must get within 5s, as JSON.
async fn lease_json(server: &TestServer, worker: &reqwest::Client, info: Value) -> Value {
    let resp = server.lease_raw(worker, info, 5000).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn post(worker: &reqwest::Client, url: String, body: Value) -> u16 {
    let resp = worker.post(url).json(&body).send().await.unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn a_build_only_worker_never_gets_a_steps_run_and_the_run_says_why_it_waits() {
    let (server, worker) = server_and_worker().await;
    let (status, run) = queue_cmd(&server, json!({"cmd": "busybox echo hi"})).await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["kind"], "steps");

    let builder = worker_info("builder", &["build"], &[]);
    let resp = server.lease_raw(&worker, builder, 300).await;
    assert_eq!(resp.status(), 204, "a build-only worker took a steps run");

    // The build-only worker is connected now: the run says no worker runs its kind.
    let run = server.run_json(&id).await;
    assert_eq!(run["status"], "Queued");
    let waiting = run["waitingFor"].as_str().unwrap();
    assert_eq!(
        waiting, "no connected worker runs multi-step jobs",
        "{run:#}"
    );

    // A worker that runs steps jobs but not `cmd` steps does not get it either.
    let pusher = worker_info("pusher", &["build", "steps"], &["build", "push"]);
    let resp = server.lease_raw(&worker, pusher, 300).await;
    assert_eq!(
        resp.status(),
        204,
        "a worker without cmd steps took a cmd run"
    );

    let runner = worker_info("runner", &["steps"], &["cmd"]);
    let resp = server.lease_raw(&worker, runner, 5000).await;
    assert_eq!(resp.status(), 200);
    let lease: Value = resp.json().await.unwrap();
    assert_eq!(lease["runId"], id.as_str());
    assert_eq!(lease["job"]["kind"], "steps");
    assert_eq!(lease["job"]["steps"][0]["action"]["image"], "busybox");
    assert_eq!(
        lease["job"]["steps"][0]["action"]["args"],
        json!(["echo", "hi"])
    );
}

#[tokio::test]
async fn a_steps_worker_that_runs_no_builds_never_gets_a_build_run() {
    let (server, worker) = server_and_worker().await;
    let id = server.queue_scratch_run().await;
    let runner = worker_info("runner", &["steps"], &["build", "cmd", "push"]);
    let resp = server.lease_raw(&worker, runner, 300).await;
    assert_eq!(resp.status(), 204);
    let builder = worker_info("builder", &["build"], &[]);
    let lease: Value = lease_json(&server, &worker, builder).await;
    assert_eq!(lease["runId"], id.as_str());
    assert_eq!(lease["job"]["kind"], "build");
}

#[tokio::test]
async fn a_protocol_1_worker_is_told_to_upgrade_at_its_first_lease() {
    let (server, worker) = server_and_worker().await;
    server.queue_scratch_run().await;
    // An old kiln-worker sends no protocol, jobs or step types.
    let old = json!({"id": "old-1", "name": "old", "platforms": ["linux/amd64"]});
    let resp = server.lease_raw(&worker, old, 1000).await;
    assert_eq!(resp.status(), 426);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UPGRADE_REQUIRED");
    assert_eq!(
        body["error"]["message"],
        "kiln-worker speaks protocol 1; this server needs 2: upgrade kiln-worker"
    );
    // It took nothing: the run still waits.
    let runs = server.get_json("/api/runs").await;
    assert_eq!(runs["runs"][0]["status"], "Queued");
}

#[tokio::test]
async fn steps_a_worker_reports_are_stored_and_shown_by_run_show() {
    let (server, worker) = server_and_worker().await;
    let (status, run) = queue_cmd(&server, json!({"cmd": "busybox echo hi"})).await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    // Listed before any worker reports, queued.
    assert_eq!(run["steps"][0]["id"], "acb_step_0");
    assert_eq!(run["steps"][0]["status"], "Queued");

    let runner = worker_info("runner", &["steps"], &["cmd"]);
    let lease: Value = lease_json(&server, &worker, runner).await;
    let attempt = lease["attempt"].as_u64().unwrap();
    let steps_url = format!("{}/api/worker/runs/{id}/steps", server.url);
    let running = json!({"id": "acb_step_0", "stepType": "cmd", "status": "Running",
                         "startedAt": 1_700_000_000_000_i64});
    let code = post(
        &worker,
        steps_url.clone(),
        json!({"attempt": attempt, "steps": [running]}),
    )
    .await;
    assert_eq!(code, 204);
    let run = server.run_json(&id).await;
    assert_eq!(run["steps"][0]["status"], "Running", "{run:#}");

    // A stale attempt writes nothing.
    let stale = json!({"id": "acb_step_0", "stepType": "cmd", "status": "Failed"});
    let code = post(
        &worker,
        steps_url,
        json!({"attempt": attempt + 1, "steps": [stale]}),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(server.run_json(&id).await["steps"][0]["status"], "Running");

    let done = json!({"id": "acb_step_0", "stepType": "cmd", "status": "Succeeded",
                      "startedAt": 1_700_000_000_000_i64, "finishedAt": 1_700_000_002_500_i64,
                      "exitCode": 0});
    let result = json!({"attempt": attempt, "outcome": "Succeeded", "errorMessage": null,
                        "outputImages": [], "steps": [done]});
    assert_eq!(report(&server, &worker, &id, result).await, 204);

    let header = shown_line(&server, &id, "ID").await;
    for column in ["TYPE", "STATUS", "STARTED", "DURATION", "EXIT", "IMAGES"] {
        assert!(header.contains(column), "{header}");
    }
    let row = shown_line(&server, &id, "acb_step_0").await;
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1..3], ["cmd", "Succeeded"], "{row}");
    assert!(row.contains(" 2s "), "{row}");
    assert_eq!(cells[5], "0", "{row}");

    let json = server
        .kiln_output(&["run", "show", &id, "-o", "json"])
        .await;
    let run: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(run["kind"], "steps");
    assert_eq!(run["trigger"], "Manual");
    assert_eq!(run["steps"][0]["exitCode"], 0);
    assert_eq!(run["steps"][0]["type"], "cmd");
}

#[tokio::test]
async fn a_build_run_shows_its_one_build_step_with_its_images() {
    let (server, worker) = server_and_worker().await;
    let id = server.queue_scratch_run().await;
    let run = server.run_json(&id).await;
    assert_eq!(run["kind"], "build");
    assert_eq!(run["steps"][0]["id"], "build");
    assert_eq!(run["steps"][0]["status"], "Queued");

    let builder = worker_info("builder", &["build"], &[]);
    let lease: Value = lease_json(&server, &worker, builder).await;
    assert_eq!(server.run_json(&id).await["steps"][0]["status"], "Running");
    let digest = format!("sha256:{}", "b".repeat(64));
    let image = json!({"registry": REGISTRY, "repository": "app", "tag": "v1",
                       "digest": digest});
    let result = json!({"attempt": lease["attempt"], "outcome": "Succeeded",
                        "errorMessage": null, "outputImages": [image]});
    assert_eq!(report(&server, &worker, &id, result).await, 204);

    let row = shown_line(&server, &id, "build ").await;
    assert!(row.contains("Succeeded"), "{row}");
    assert!(
        row.contains(&format!("{REGISTRY}/app:v1@{digest}")),
        "{row}"
    );
}

#[tokio::test]
async fn bad_steps_requests_get_a_400_and_queue_nothing() {
    let (server, _worker) = server_and_worker().await;
    let cases = [
        (json!({"cmd": "   "}), "a cmd step needs an image"),
        (
            json!({"taskFile": "steps:\n  - cmd: busybox true\n    stepz: 1\n", "fileName": "ci.yaml"}),
            "ci.yaml:3:5: unknown key 'stepz'",
        ),
        (
            json!({"cmd": "busybox true", "taskFile": "steps: []"}),
            "not both",
        ),
        (json!({}), "give a task file or a cmd"),
        (
            json!({"cmd": "busybox true", "context": {"kind": "tarball", "url": "file:///etc"}}),
            "invalid tarball context",
        ),
        (
            json!({"cmd": "busybox true", "gitAccessToken": "t"}),
            "only goes with a git context",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = queue_cmd(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test]
async fn set_secret_values_are_sealed_and_masked_at_rest() {
    let (server, worker) = server_and_worker().await;
    let body = json!({"cmd": "busybox echo s3cret-value", "secretValues": {"pw": "s3cret-value"}});
    let (status, run) = queue_cmd(&server, body).await;
    assert_eq!(status, 201, "{run}");
    let db = std::fs::read(server.data.path().join("kiln.db")).unwrap_or_default();
    let wal = std::fs::read(server.data.path().join("kiln.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("s3cret-value"),
            "a secret is stored in plain text"
        );
    }
    // The worker still gets it whole.
    let runner = worker_info("runner", &["steps"], &["cmd"]);
    let lease: Value = lease_json(&server, &worker, runner).await;
    assert_eq!(
        lease["job"]["steps"][0]["action"]["args"][1],
        "s3cret-value"
    );
    assert_eq!(lease["job"]["masked"], json!(["s3cret-value"]));
}

/// `kiln run --cmd` against the embedded worker and the real engine.
#[tokio::test]
async fn kiln_run_cmd_runs_one_step_and_exits_with_its_result() {
    require_environment();
    let server = TestServer::start().await;
    let out = server
        .kiln_output(&[
            "run",
            "--cmd",
            &format!("{BASE_IMAGE} echo hello-steps"),
            "/dev/null",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("hello-steps"), "{out:?}");
    let failing = server
        .kiln_output(&["run", "--cmd", &format!("{BASE_IMAGE} false"), "/dev/null"])
        .await;
    assert_ne!(failing.code, 0, "{failing:?}");
}

#[tokio::test]
async fn kiln_run_cmd_no_wait_queues_a_steps_run_with_its_context_and_values() {
    let (server, worker) = server_and_worker().await;
    let folder = context(&[("data.txt", "workspace file")]);
    let folder = folder.path().to_str().unwrap();
    let out = server
        .kiln_output(&[
            "run",
            "--cmd",
            "busybox cat data.txt",
            folder,
            "--set",
            "env=prod",
            "--set-secret",
            "pw=hunter22",
            "--no-wait",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim().to_string();
    let run = server.run_json(&id).await;
    assert_eq!(run["kind"], "steps");
    assert!(run["contextDigest"].is_string(), "{run:#}");
    let runner = worker_info("runner", &["steps"], &["cmd"]);
    let lease: Value = lease_json(&server, &worker, runner).await;
    assert_eq!(lease["runId"], id.as_str());
    assert_eq!(lease["job"]["context"]["kind"], "upload");
    assert_eq!(lease["job"]["masked"], json!(["hunter22"]));

    // `run list` and `run show` keep working beside -f/--cmd.
    let list = server.kiln_output(&["run", "list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains(&id), "{list:?}");
}

#[tokio::test]
async fn kiln_run_with_bad_input_exits_2_with_the_reason_and_queues_nothing() {
    let (server, _worker) = server_and_worker().await;
    let dir = context(&[(
        "acb.yaml",
        "version: v1.1.0\nsteps:\n  - cmd: busybox true\n    stepz: 1\n",
    )]);
    let folder = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        // The server compiles the file: its error comes back as it is.
        (
            &["-f", "acb.yaml", folder],
            "acb.yaml:4:5: unknown key 'stepz'",
        ),
        // -f defaults to acb.yaml, found in the context folder.
        (&[folder], "unknown key 'stepz'"),
        (
            &["-f", "missing.yaml", "/dev/null"],
            "cannot read task file 'missing.yaml'",
        ),
        (&["--cmd", " ", "/dev/null"], "a cmd step needs an image"),
        (
            &["--cmd", "busybox true", "/dev/null", "--set", "novalue"],
            "invalid --set 'novalue'",
        ),
    ];
    for (args, expected) in cases {
        let out = server.kiln_output(&[&["run"], args].concat()).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(expected), "{args:?}: {out:?}");
    }
    assert_eq!(server.run_count().await, 0);
}

/// A server that refuses every lease as one too new for this worker would: the real
/// `kiln-worker` must say why and exit, not ask again forever.
#[tokio::test]
async fn a_worker_refused_for_its_protocol_logs_why_and_exits_non_zero() {
    require_environment();
    const REFUSAL: &str = "kiln-worker speaks protocol 2; this server needs 3: upgrade kiln-worker";
    let app = axum::Router::new()
        .route(
            "/api/whoami",
            axum::routing::get(|| async { axum::Json(json!({"name": "w", "roles": ["worker"]})) }),
        )
        .route(
            "/api/worker/lease",
            axum::routing::post(|| async {
                let body = json!({"error": {"code": "UPGRADE_REQUIRED", "message": REFUSAL}});
                (axum::http::StatusCode::UPGRADE_REQUIRED, axum::Json(body))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let worker = tokio::process::Command::new(worker_binary())
        .args(["--server", &url, "--name", "old"])
        .env("KILN_WORKER_TOKEN", "kiln_w_token")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), worker)
        .await
        .expect("the refused worker kept running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(REFUSAL), "{stderr}");
}

#[tokio::test]
async fn a_build_run_from_before_steps_were_stored_shows_its_step_from_the_run() {
    let (server, worker) = server_and_worker().await;
    let id = server.queue_scratch_run().await;
    let builder = worker_info("builder", &["build"], &[]);
    let lease = lease_json(&server, &worker, builder).await;
    let result = json!({"attempt": lease["attempt"], "outcome": "Failed",
                        "errorMessage": "step 2/3 failed", "outputImages": []});
    assert_eq!(report(&server, &worker, &id, result).await, 204);

    // As a run stored before migration 0011: no step rows at all.
    let db = format!("sqlite://{}", server.data.path().join("kiln.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let deleted = sqlx::query("DELETE FROM run_steps")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    pool.close().await;

    let run = server.run_json(&id).await;
    assert_eq!(run["kind"], "build");
    assert_eq!(run["steps"][0]["id"], "build", "{run:#}");
    assert_eq!(run["steps"][0]["status"], "Failed");
    assert_eq!(run["steps"][0]["error"], "step 2/3 failed");
}
