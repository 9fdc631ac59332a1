//! Saved multi-step tasks whose task file lives in their git repository (`task create
//! --file ci/acb.yaml`): the worker fetches the repository, the server compiles the file it
//! sends with the task's values and the commit, and the run goes on with those steps.

mod common;

use common::git_servers::{repo, GitHttpServer};
use common::*;

/// A repository with `svc/ci/acb.yaml` (and whatever else `files` adds), served over HTTP.
fn served(files: &[(&str, &str)]) -> (tempfile::TempDir, GitHttpServer, String) {
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    for (path, text) in files {
        app.file(path, text);
    }
    let commit = app.commit("first");
    let git = GitHttpServer::start(root.path(), None);
    (root, git, commit)
}

/// `kiln task create --name NAME --context CONTEXT --file FILE` and `extra`.
async fn create_task(server: &TestServer, name: &str, context: &str, file: &str, extra: &[&str]) {
    let mut args = vec![
        "task",
        "create",
        "--name",
        name,
        "--context",
        context,
        "--file",
        file,
    ];
    args.extend_from_slice(extra);
    kiln_ok(server, &args).await;
}

async fn kiln_ok(server: &TestServer, args: &[&str]) -> CliRun {
    let out = server.kiln_output(args).await;
    assert_eq!(out.code, 0, "{args:?}: {out:#?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_file_in_the_repository_runs_with_the_tasks_values_and_commit() {
    let server = TestServer::start().await;
    let image = unique_repo("infile");
    let acb = format!(
        "version: v1.1.0\n\
         steps:\n\
         \x20 - id: hello\n\
         \x20   cmd: {BASE_IMAGE} sh -c 'echo {{{{.Values.greeting}}}} from {{{{.Run.TaskName}}}} at {{{{.Run.Commit}}}}; cat message.txt'\n\
         \x20 - id: image\n\
         \x20   build: -t {image}:{{{{.Run.Commit}}}} -f Dockerfile .\n\
         \x20 - push: ['{image}:{{{{.Run.Commit}}}}']\n"
    );
    let dockerfile = format!("FROM {BASE_IMAGE}\nCOPY message.txt /message.txt\n");
    let (_root, git, commit) = served(&[
        ("svc/ci/acb.yaml", &acb),
        ("svc/Dockerfile", &dockerfile),
        ("svc/message.txt", "in the workspace\n"),
    ]);
    let context = format!("{}/app.git#main:svc", git.url);
    create_task(
        &server,
        "ci",
        &context,
        "ci/acb.yaml",
        &["--set", "greeting=hello"],
    )
    .await;

    let out = kiln_ok(&server, &["task", "run", "--name", "ci"]).await;
    assert!(
        out.stdout.contains(&format!("hello from ci at {commit}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("in the workspace"), "{}", out.stdout);
    let pushed = format!("{REGISTRY}/{image}:{commit}");
    assert!(
        registry_digest(&pushed).await.is_some(),
        "{pushed} not pushed"
    );

    // `run show` lists the file's steps, as for a file sent by `kiln run -f`.
    let show = kiln_ok(&server, &["run", "show", &out.run_id()]).await;
    for step in ["hello", "image", "Succeeded"] {
        assert!(show.stdout.contains(step), "{step}: {}", show.stdout);
    }
    let task_line = show.stdout.lines().find(|l| l.starts_with("Task:"));
    assert_eq!(
        task_line.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["Task:", "ci"]),
        "{}",
        show.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_file_that_does_not_compile_or_is_missing_fails_its_run_saying_why() {
    let server = TestServer::start().await;
    let (_root, git, commit) = served(&[(
        "ci/acb.yaml",
        "version: v1.1.0\nsteps:\n  - cmd: busybox true\n    colour: blue\n",
    )]);
    let context = format!("{}/app.git#main", git.url);
    for (name, file) in [("bad", "ci/acb.yaml"), ("missing", "ci/nope.yaml")] {
        create_task(&server, name, &context, file, &[]).await;
    }

    let out = server.kiln_output(&["task", "run", "--name", "bad"]).await;
    assert_ne!(out.code, 0, "{out:#?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("ci/acb.yaml:4:5"), "{all}");
    assert!(all.contains("colour"), "{all}");

    let out = server
        .kiln_output(&["task", "run", "--name", "missing"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!(
            "task file ci/nope.yaml: not found in the context at commit {commit}"
        )),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_given_to_task_run_brings_its_own_task_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ci")).unwrap();
    std::fs::write(
        dir.path().join("ci/acb.yaml"),
        format!(
            "version: v1.1.0\nsteps:\n  - cmd: {BASE_IMAGE} sh -c 'echo from the folder; cat note.txt'\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("note.txt"), "a note beside it\n").unwrap();
    let context = "https://git.example.com/app.git#main";
    create_task(&server, "ci", context, "ci/acb.yaml", &[]).await;
    let folder = dir.path().to_str().unwrap();
    let out = kiln_ok(&server, &["task", "run", "--name", "ci", "-c", folder]).await;
    assert!(out.stdout.contains("from the folder"), "{}", out.stdout);
    assert!(out.stdout.contains("a note beside it"), "{}", out.stdout);

    // A folder without the file queues nothing.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("other.txt"), "x").unwrap();
    let out = server
        .kiln_output(&[
            "task",
            "run",
            "--name",
            "ci",
            "-c",
            empty.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("task file ci/acb.yaml is not in the uploaded folder"),
        "{}",
        out.stderr
    );
    assert_eq!(server.run_count().await, 1);
}
