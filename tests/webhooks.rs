//! Git webhooks end to end: a repository served over HTTP on loopback, the real server with
//! its embedded worker, the real CLI, Docker and the registry. A GitHub push builds exactly
//! the commit it names (not the branch's head), a pull request's run builds its head and
//! pushes nothing.

mod common;

use std::time::Duration;

use common::git_servers::{repo, GitHttpServer};
use common::webhooks::*;
use common::*;

const BUILD_LIMIT: Duration = Duration::from_secs(300);

/// Commits `svc/message.txt` = `message` and returns the commit.
fn commit_message(app: &common::git_servers::RepoBuilder, message: &str) -> String {
    app.file("svc/message.txt", message);
    app.commit(message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_push_builds_exactly_the_pushed_commit() {
    let server = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    // The pushed commit is no longer the branch's head when the run starts: the worker must
    // be able to fetch it by SHA, as GitHub and GitLab allow.
    app.server_config("uploadpack.allowAnySHA1InWant", "true");
    app.file(
        "svc/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCOPY message.txt /message.txt\n"),
    );
    let pushed = commit_message(&app, "first");
    let head = commit_message(&app, "second");
    let git = GitHttpServer::start(root.path(), None);
    let image = unique_repo("hooked");
    let (_, hook) = create_hooked_task(
        &server,
        &[
            "--name",
            "web",
            "--context",
            &format!("{}/app.git#main:svc", git.url),
            "-t",
            &format!("{image}:<<.Run.Commit>>"),
            "-t",
            &format!("{image}:<<.Run.Branch>>"),
            "--commit-trigger-enabled",
            "true",
        ],
    )
    .await;

    let answer = send_github(
        &hook,
        "push",
        "gh-1",
        &github_push("main", &pushed, &["svc/message.txt"]),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let id = answer.run_id();
    let run = server.wait_status(&id, "Succeeded", BUILD_LIMIT).await;
    assert_eq!(run["gitCommit"], pushed.as_str(), "{run}");
    assert_ne!(pushed, head);
    let by_commit = format!("{REGISTRY}/{image}:{pushed}");
    assert_eq!(run_in_image(&by_commit, "cat /message.txt").await, "first");
    assert!(
        registry_digest(&format!("{REGISTRY}/{image}:main"))
            .await
            .is_some(),
        ".Run.Branch comes from the event"
    );

    let shown = server.kiln_output(&["run", "show", &id]).await;
    assert_eq!(shown.code, 0, "{shown:#?}");
    let trigger = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("Trigger:"))
        .unwrap_or_else(|| panic!("{shown:#?}"));
    assert!(trigger.contains("Commit"), "{trigger}");
    let listed = server
        .kiln_output(&["task", "list-runs", "--name", "web"])
        .await;
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("Commit")),
        "{listed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_run_builds_its_head_and_pushes_nothing() {
    let server = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    app.file(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCOPY message.txt /message.txt\nRUN cat /message.txt\n"),
    );
    app.file("message.txt", "on main\n");
    app.commit("main");
    app.branch("feature");
    let image = unique_repo("pr");
    // Unique, so the build cache cannot skip the RUN that prints it.
    let message = format!("from the pull request {image}");
    app.file("message.txt", &message);
    let head = app.commit("feature");
    let git = GitHttpServer::start(root.path(), None);
    let (_, hook) = create_hooked_task(
        &server,
        &[
            "--name",
            "web",
            "--context",
            &format!("{}/app.git#main", git.url),
            "-t",
            &format!("{image}:<<.Run.Commit>>"),
            "--pull-request-trigger-enabled",
            "true",
        ],
    )
    .await;

    let mut pr = fixture("github_pull_request");
    pr["pull_request"]["head"]["ref"] = "feature".into();
    pr["pull_request"]["head"]["sha"] = head.clone().into();
    pr["pull_request"]["base"]["ref"] = "main".into();
    let answer = send_github(&hook, "pull_request", "pr-1", &pr).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let id = answer.run_id();
    let run = server.wait_status(&id, "Succeeded", BUILD_LIMIT).await;
    assert_eq!(run["trigger"], "PullRequest");
    assert_eq!(run["gitCommit"], head.as_str());
    assert_eq!(run["push"], false);
    let logs = server.kiln_output(&["run", "logs", &id]).await;
    assert!(logs.stdout.contains(&message), "{logs:#?}");
    assert!(
        logs.stdout.contains(&format!("Checked out commit {head}")),
        "{logs:#?}"
    );
    assert!(registry_digest(&format!("{REGISTRY}/{image}:{head}"))
        .await
        .is_none());
}
