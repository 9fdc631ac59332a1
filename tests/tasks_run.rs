//! Running saved tasks end to end: the real server with its embedded worker, the real CLI,
//! Docker and the registry. A build task's run pushes its images, shows up in
//! `task list-runs` with trigger Manual, and `task logs` prints its log; a disabled task, a
//! missing value and a multi-step task are refused with nothing queued.

mod common;

use common::*;

/// The run ID from "Queued a run of task 'x' with ID: ca1".
fn queued_id(out: &CliRun) -> String {
    out.stderr
        .lines()
        .find_map(|l| {
            l.split_once("with ID: ")
                .map(|(_, id)| id.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no run ID in output: {out:#?}"))
}

async fn create(server: &TestServer, args: &[&str]) {
    let mut full = vec!["task", "create"];
    full.extend_from_slice(args);
    let out = server.kiln_output(&full).await;
    assert_eq!(out.code, 0, "{out:#?}");
}

#[tokio::test]
async fn a_build_task_runs_pushes_and_is_listed_with_its_log() {
    let server = TestServer::start().await;
    let dockerfile = format!("FROM {BASE_IMAGE}\nRUN echo built-by-task > /built\n");
    let url = serve_tarball(tar_gz(&[("Dockerfile", &dockerfile)])).await;
    let repo = unique_repo("task");
    let by_value = format!("{repo}:{{{{.Values.tag}}}}");
    let by_run = format!("{repo}:<<.Run.ID>>");
    let tarball = format!("{url}/ctx.tar.gz");
    create(
        &server,
        &[
            "--name",
            "web",
            "--context",
            &tarball,
            "-t",
            &by_value,
            "-t",
            &by_run,
            "--set",
            "tag=v1",
        ],
    )
    .await;

    // A run's --set wins over the task's.
    let out = server
        .kiln_output(&["task", "run", "--name", "web", "--set", "tag=v2"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = queued_id(&out);
    assert!(out.stdout.contains("built-by-task"), "{}", out.stdout);
    assert!(registry_digest(&format!("{REGISTRY}/{repo}:v2"))
        .await
        .is_some());
    assert!(registry_digest(&format!("{REGISTRY}/{repo}:{id}"))
        .await
        .is_some());
    assert!(registry_digest(&format!("{REGISTRY}/{repo}:v1"))
        .await
        .is_none());

    // A local folder replaces the task's context for one run.
    let copy = format!("FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n");
    let dir = context(&[
        ("Dockerfile", copy.as_str()),
        ("hello.txt", "from-the-folder\n"),
    ]);
    let folder = dir.path().to_str().unwrap();
    let out = server
        .kiln_output(&["task", "run", "--name", "web", "-c", folder, "--no-logs"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let second = queued_id(&out);
    let hello = run_in_image(&format!("{REGISTRY}/{repo}:v1"), "cat /hello.txt").await;
    assert_eq!(hello, "from-the-folder\n");

    let out = server
        .kiln_output(&["task", "list-runs", "--name", "web"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("RUN ID") && lines[0].contains("TRIGGER"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with(&second) && lines[2].starts_with(&id),
        "{}",
        out.stdout
    );
    for line in &lines[1..] {
        assert!(
            line.contains("Succeeded") && line.contains("Manual"),
            "{line}"
        );
    }
    let json = server
        .kiln_output(&["task", "list-runs", "--name", "web", "-o", "json"])
        .await;
    let runs: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);

    // The latest run's log by default; any run's with --run-id.
    let out = server.kiln_output(&["task", "logs", "--name", "web"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains(&format!("Run ID: {second}")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("COPY hello.txt"), "{}", out.stdout);
    let out = server
        .kiln_output(&["task", "logs", "--name", "web", "--run-id", &id])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("built-by-task"), "{}", out.stdout);

    // Runs outlive their task, unlinked.
    let out = server
        .kiln_output(&["task", "delete", "--name", "web"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(server.run_json(&id).await["status"], "Succeeded");
}

#[tokio::test]
async fn tasks_that_cannot_run_queue_nothing() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let context = "http://127.0.0.1:9/ctx.tar.gz";
    create(
        &server,
        &[
            "--name",
            "needs-tag",
            "--context",
            context,
            "-t",
            "app:{{.Values.tag}}",
        ],
    )
    .await;
    create(
        &server,
        &[
            "--name",
            "off",
            "--context",
            context,
            "--status",
            "Disabled",
        ],
    )
    .await;
    create(
        &server,
        &[
            "--name",
            "ci",
            "--context",
            "https://git.example.com/app.git#main",
            "-f",
            "acb.yaml",
        ],
    )
    .await;
    create(
        &server,
        &[
            "--name",
            "hello",
            "--cmd",
            "busybox echo hi",
            "--context",
            "/dev/null",
        ],
    )
    .await;

    let cases: &[(&[&str], &str)] = &[
        (&["--name", "needs-tag"], "value 'tag' is not set"),
        (
            &["--name", "needs-tag", "--set", "other=1"],
            "value 'tag' is not set",
        ),
        (&["--name", "off"], "task 'off' is disabled"),
        (&["--name", "nope"], "task 'nope' not found"),
        (&["--name", "off", "--set", "bad"], "invalid --set 'bad'"),
    ];
    for (args, message) in cases {
        let mut full = vec!["task", "run"];
        full.extend_from_slice(args);
        let out = server.kiln_output(&full).await;
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    assert_eq!(server.run_count().await, 0);

    // Enabled again, the same task queues.
    let out = server
        .kiln_output(&["task", "update", "--name", "off", "--status", "Enabled"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output(&["task", "run", "--name", "off", "--no-wait"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stdout.trim(), queued_id(&out));
    assert_eq!(server.run_count().await, 1);
    let out = server
        .kiln_output(&["task", "logs", "--name", "needs-tag"])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("has no runs yet"), "{}", out.stderr);
}

/// A `--cmd` task runs its one step on the embedded worker, with the task's value and the
/// run's override, and its run is listed under the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmd_task_runs_its_step_with_its_values() {
    require_environment();
    let server = TestServer::start().await;
    create(
        &server,
        &[
            "--name",
            "hello",
            "--cmd",
            &format!("{BASE_IMAGE} echo greeting={{{{.Values.who}}}}"),
            "--context",
            "/dev/null",
            "--set",
            "who=task",
        ],
    )
    .await;
    let out = server
        .kiln_output(&["task", "run", "--name", "hello", "--set", "who=run"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("greeting=run"), "{out:#?}");
    let runs = server
        .kiln_output(&["task", "list-runs", "--name", "hello"])
        .await;
    assert_eq!(runs.code, 0, "{runs:#?}");
    assert!(runs.stdout.contains("Succeeded"), "{}", runs.stdout);
}
