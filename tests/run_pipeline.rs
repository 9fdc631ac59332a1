//! `kiln run -f` end to end: the real server, its embedded worker and the real engine run a
//! task file's build -> cmd -> push pipeline, mask secret values in the log, and list the
//! steps in `run show`; a step that fails fails the run with its exit code in the table.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cmd_push_pipeline_runs_and_masks_secrets() {
    require_environment();
    let server = TestServer::start().await;
    let repo = unique_repo("pipeline");
    let folder = context(&[
        (
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n"),
        ),
        ("hello.txt", "hello from the workspace\n"),
        (
            "acb.yaml",
            &format!(
                "version: v1.1.0\n\
                 steps:\n\
                 \x20 - id: build\n\
                 \x20   build: -t $Registry/{repo}:{{{{.Run.ID}}}} .\n\
                 \x20 - id: test\n\
                 \x20   cmd: $Registry/{repo}:{{{{.Run.ID}}}} cat /hello.txt\n\
                 \x20 - id: secret\n\
                 \x20   cmd: {BASE_IMAGE} echo the password is {{{{.Values.pw}}}}\n\
                 \x20 - id: push\n\
                 \x20   push: [\"$Registry/{repo}:{{{{.Run.ID}}}}\"]\n"
            ),
        ),
    ]);
    let dir = folder.path().to_str().unwrap();
    let file = folder.path().join("acb.yaml");
    let out = server
        .kiln_output(&[
            "run",
            "-f",
            file.to_str().unwrap(),
            dir,
            "--set-secret",
            "pw=hunter2-sekrit",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let log = format!("{}{}", out.stdout, out.stderr);
    assert!(log.contains("hello from the workspace"), "{log}");
    assert!(log.contains("the password is ***"), "{log}");
    assert!(!log.contains("hunter2-sekrit"), "{log}");
    assert!(log.contains("Step ID: test marked as successful"), "{log}");

    let runs = server.get_json("/api/runs?top=1").await;
    let id = runs["runs"][0]["id"].as_str().unwrap().to_string();
    assert!(
        registry_digest(&format!("127.0.0.1:5000/{repo}:{id}"))
            .await
            .is_some(),
        "the push step's image is not in the registry"
    );
    let show = server.kiln_output(&["run", "show", &id]).await;
    assert_eq!(show.code, 0, "{show:#?}");
    for step in ["build", "test", "secret", "push"] {
        assert!(show.stdout.contains(step), "{}", show.stdout);
    }
    assert!(!show.stdout.contains("hunter2-sekrit"), "{}", show.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_fails_the_run_and_skips_what_follows() {
    require_environment();
    let server = TestServer::start().await;
    let folder = context(&[(
        "acb.yaml",
        &format!(
            "steps:\n\
             \x20 - id: fails\n\
             \x20   cmd: {BASE_IMAGE} sh -c 'echo about to fail; exit 3'\n\
             \x20 - id: after\n\
             \x20   cmd: {BASE_IMAGE} echo never-printed\n"
        ),
    )]);
    let file = folder.path().join("acb.yaml");
    let out = server
        .kiln_output(&["run", "-f", file.to_str().unwrap(), "/dev/null"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    let log = format!("{}{}", out.stdout, out.stderr);
    assert!(log.contains("about to fail"), "{log}");
    assert!(!log.contains("never-printed"), "{log}");
    let runs = server.get_json("/api/runs?top=1").await;
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "Failed", "{run:#}");
    let id = run["id"].as_str().unwrap();
    let run = server.run_json(id).await;
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "Failed", "{run:#}");
    assert_eq!(steps[0]["exitCode"], 3, "{run:#}");
    assert_eq!(steps[1]["status"], "Skipped", "{run:#}");
}
