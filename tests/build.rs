//! `kiln build` end to end: real server, real Docker engine with BuildKit, real registry.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stage_build_with_args_and_target_is_pushed_with_templated_tags() {
    let server = TestServer::start().await;
    let repo = unique_repo("multistage");
    let ctx = context(&[
        (
            "Dockerfile",
            &format!(
                "FROM {BASE_IMAGE} AS builder\n\
                 ARG GREETING=hello\n\
                 RUN echo \"$GREETING from the builder\" > /greeting\n\
                 FROM {BASE_IMAGE} AS runtime\n\
                 COPY --from=builder /greeting /greeting\n\
                 COPY app.txt /app.txt\n\
                 FROM runtime AS debug\n\
                 RUN echo debug > /debug\n"
            ),
        ),
        ("app.txt", "the app\n"),
    ]);
    let by_id = format!("{repo}:<<.Run.ID>>");
    let latest = format!("{repo}:latest");
    let out = server
        .kiln_output(&[
            "build",
            "-t",
            &by_id,
            "-t",
            &latest,
            "--build-arg",
            "GREETING=bonjour",
            "--target",
            "runtime",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    // The plain BuildKit progress, then the closing line.
    assert!(
        out.stdout.contains("RUN echo \"bonjour from the builder\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" DONE "), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("Run ID: {id} was successful after")),
        "{}",
        out.stdout
    );

    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Summary: "))
        .unwrap_or_else(|| panic!("no summary line: {}", out.stdout));
    for part in [
        "steps (",
        "cached)",
        " uploaded;",
        "build ",
        "push ",
        "total ",
    ] {
        assert!(summary.contains(part), "{summary}");
    }

    let tagged = format!("{REGISTRY}/{repo}:{id}");
    let digest_by_id = registry_digest(&tagged)
        .await
        .expect("run-ID tag in registry");
    let digest_latest = registry_digest(&format!("{REGISTRY}/{latest}"))
        .await
        .expect("latest tag in registry");
    assert_eq!(digest_by_id, digest_latest);

    let contents = run_in_image(&tagged, "cat /greeting /app.txt; ls /debug 2>&1 || true").await;
    assert!(contents.contains("bonjour from the builder"), "{contents}");
    assert!(contents.contains("the app"), "{contents}");
    assert!(
        contents.contains("No such file"),
        "target stage must stop before debug: {contents}"
    );

    let run = server.run_json(&id).await;
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["platform"], "linux/amd64");
    let outputs = run["outputImages"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    assert!(outputs.iter().all(|o| o["digest"] == digest_by_id.as_str()));
    assert!(outputs
        .iter()
        .any(|o| o["tag"] == id.as_str() && o["registry"] == REGISTRY));
    let history: Vec<&str> = run["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["Queued", "Running", "Succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerignore_exceptions_decide_what_reaches_the_image() {
    let server = TestServer::start().await;
    let repo = unique_repo("dockerignore");
    let ctx = context(&[
        ("Dockerfile", &format!("FROM {BASE_IMAGE}\nCOPY . /ctx\n")),
        (
            ".dockerignore",
            "# build junk\n*.log\n!keep.log\ndocs\n!docs/README.md\nsecret?.txt\n",
        ),
        ("main.c", "int main;\n"),
        ("debug.log", "noise\n"),
        ("keep.log", "kept\n"),
        ("docs/guide.md", "guide\n"),
        ("docs/README.md", "readme\n"),
        ("secret1.txt", "s\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        ("sub/.git/HEAD", "nested\n"),
    ]);
    let image = format!("{repo}:v1");
    let out = server
        .kiln_output(&["build", "-t", &image, ctx.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains("Excluding '.git' based on default ignore rules"),
        "{}",
        out.stderr
    );
    let files = run_in_image(
        &format!("{REGISTRY}/{image}"),
        "cd /ctx && find . -type f | sort",
    )
    .await;
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(
        files,
        [
            "./.dockerignore",
            "./Dockerfile",
            "./docs/README.md",
            "./keep.log",
            "./main.c",
            "./sub/.git/HEAD",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfile_outside_the_context_is_used() {
    let server = TestServer::start().await;
    let repo = unique_repo("outside");
    let ctx = context(&[("app/hello.txt", "hi from the context\n")]);
    let elsewhere = context(&[(
        "docker/api.Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCOPY app/hello.txt /hello.txt\nRUN cat /hello.txt\n"),
    )]);
    let dockerfile = elsewhere.path().join("docker/api.Dockerfile");
    let image = format!("{repo}:v1");
    let out = server
        .kiln_output(&[
            "build",
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            &image,
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let hello = run_in_image(&format!("{REGISTRY}/{image}"), "cat /hello.txt").await;
    assert_eq!(hello, "hi from the context\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_exits_non_zero_with_the_step_output_in_the_logs() {
    let server = TestServer::start().await;
    let repo = unique_repo("failing");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nRUN echo about to fail && echo oops-on-stderr >&2 && exit 3\n"
        ),
    )]);
    let out = server
        .kiln_output(&[
            "build",
            "-t",
            &format!("{repo}:v1"),
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    let id = out.run_id();
    assert!(out.stdout.contains("about to fail"), "{}", out.stdout);
    assert!(out.stdout.contains("oops-on-stderr"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("Run ID: {id} failed after")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("finished with status Failed"),
        "{}",
        out.stderr
    );

    let run = server.run_json(&id).await;
    assert_eq!(run["status"], "Failed");
    assert!(
        run["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit code: 3"),
        "{run:#}"
    );
    assert!(registry_digest(&format!("{REGISTRY}/{repo}:v1"))
        .await
        .is_none());

    // The stored log says the same to a later reader, with the same exit code on --follow.
    let logs = server.kiln_output(&["run", "logs", &id, "--follow"]).await;
    assert_eq!(logs.code, 1);
    assert!(logs.stdout.contains("oops-on-stderr"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_list_and_show_describe_finished_runs() {
    let server = TestServer::start().await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN true\n"))]);
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "-t",
            "local/only:x",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();

    let list = server.kiln_output(&["run", "list"]).await;
    assert_eq!(list.code, 0);
    let header = list.stdout.lines().next().unwrap();
    for col in [
        "RUN ID", "STATUS", "TRIGGER", "IMAGES", "STARTED", "DURATION",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = list.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&id) && row.contains("Succeeded") && row.contains("Manual"),
        "{row}"
    );

    let show = server
        .kiln_output(&["run", "show", &id, "--output", "json"])
        .await;
    assert_eq!(show.code, 0);
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    for key in [
        "id",
        "status",
        "createdAt",
        "startedAt",
        "finishedAt",
        "platform",
        "images",
        "outputImages",
        "errorMessage",
    ] {
        assert!(run.get(key).is_some(), "missing {key}: {run:#}");
    }
    assert_eq!(run["push"], false);
    assert_eq!(run["outputImages"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilds_are_cached_and_the_worker_keeps_no_tags() {
    let server = TestServer::start().await;
    let repo = unique_repo("rebuild");
    let marker = unique_repo("marker").replace('/', "-");
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo {marker} > /m\n"),
    )]);
    let image = format!("{repo}:v1");
    let dir = ctx.path().to_str().unwrap();
    let first = server.kiln_output(&["build", "-t", &image, dir]).await;
    assert_eq!(first.code, 0, "{first:#?}");
    let second = server.kiln_output(&["build", "-t", &image, dir]).await;
    assert_eq!(second.code, 0, "{second:#?}");
    let run_step = second
        .stdout
        .lines()
        .position(|l| l.contains(&format!("RUN echo {marker}")))
        .expect("the RUN step is in the log");
    assert_eq!(
        second
            .stdout
            .lines()
            .nth(run_step + 1)
            .map(|l| l.ends_with(" CACHED")),
        Some(true),
        "{}",
        second.stdout
    );
    // Pushed and gone from the worker's engine: no tag per run piles up there.
    let listed = tokio::process::Command::new("docker")
        .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains(&repo), "{listed}");
    assert!(registry_digest(&format!("{REGISTRY}/{image}"))
        .await
        .is_some());
}
