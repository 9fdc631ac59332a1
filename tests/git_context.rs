//! `kiln build` from git repositories and remote tarballs: the worker fetches the context,
//! the run records the commit, and tags can name it.

mod common;

use std::io::Write;

use common::git_servers::{repo, GitHttpServer};
use common::*;

const TOKEN: &str = "kiln-git-token-91ab";

/// An `app` repository whose `service/` folder holds a Dockerfile, served over smart HTTP.
fn app_repo(password: Option<&str>) -> (tempfile::TempDir, GitHttpServer, String) {
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    app.file(
        "service/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCOPY message.txt /message.txt\nRUN cat /message.txt\n"),
    )
    .file("service/message.txt", "built from git\n")
    .file("README.md", "top level\n");
    let commit = app.commit("first");
    let server = GitHttpServer::start(root.path(), password);
    (root, server, commit)
}

/// A steps run's workspace is the whole checkout as it is (with `.git`), whether or not the
/// repository holds a Dockerfile at the top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steps_run_gets_the_checkout_as_its_workspace() {
    let server = TestServer::start().await;
    let (_root, git, commit) = app_repo(None);
    let context = format!("{}/app.git#main", git.url);
    let out = server
        .kiln_output(&[
            "run",
            "--cmd",
            &format!("{BASE_IMAGE} sh -c 'cat README.md service/message.txt; ls -d .git'"),
            &context,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("top level"), "{}", out.stdout);
    assert!(out.stdout.contains("built from git"), "{}", out.stdout);
    assert!(out.stdout.contains(".git"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("Checked out commit {commit}")),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_subdir_is_built_and_tagged_with_its_commit() {
    let server = TestServer::start().await;
    let (_root, git, commit) = app_repo(None);
    let repo_name = unique_repo("git");
    let context = format!("{}/app.git#main:service", git.url);
    let out = server
        .kiln_output(&[
            "build",
            "--no-cache",
            "-t",
            &format!("{repo_name}:<<.Run.Commit>>"),
            "-t",
            &format!("{repo_name}:<<.Run.Branch>>-<<.Run.ID>>"),
            &context,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    assert!(
        out.stdout
            .contains(&format!("Checked out commit {commit} (branch main)")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("built from git"), "{}", out.stdout);
    let by_commit = format!("{REGISTRY}/{repo_name}:{commit}");
    assert!(registry_digest(&by_commit).await.is_some());
    assert!(
        registry_digest(&format!("{REGISTRY}/{repo_name}:main-{id}"))
            .await
            .is_some()
    );
    assert_eq!(
        run_in_image(&by_commit, "cat /message.txt").await,
        "built from git\n"
    );

    let run = server.run_json(&id).await;
    assert_eq!(run["gitCommit"], commit.as_str());
    assert_eq!(run["gitBranch"], "main");
    assert_eq!(run["context"], format!("{}/app.git#main:service", git.url));
    assert!(run["contextDigest"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_needs_its_token_which_is_never_shown() {
    let server = TestServer::start().await;
    let (_root, git, _) = app_repo(Some(TOKEN));
    let context = format!("{}/app.git#main:service", git.url);

    let out = server.kiln_output(&["build", "--no-push", &context]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stdout.to_lowercase().contains("authentication"),
        "{}",
        out.stdout
    );

    let out = server
        .kiln_output(&["build", "--no-push", "--git-access-token", TOKEN, &context])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    let shown = server
        .kiln_output(&["run", "show", &id, "-o", "json"])
        .await;
    let logs = server.kiln_output(&["run", "logs", &id]).await;
    for text in [&out.stdout, &out.stderr, &shown.stdout, &logs.stdout] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_problems_fail_the_run_with_a_specific_message() {
    let server = TestServer::start().await;
    let (_root, git, _) = app_repo(None);
    let cases = [
        (
            format!("{}/app.git#no-such-branch:service", git.url),
            "no-such-branch",
        ),
        (format!("{}/app.git#main:missing", git.url), "missing"),
        (format!("{}/nothing-here.git", git.url), "not found"),
    ];
    for (context, named) in cases {
        let out = server.kiln_output(&["build", "--no-push", &context]).await;
        assert_eq!(out.code, 1, "{context}: {out:#?}");
        let run = server.run_json(&out.run_id()).await;
        assert_eq!(run["status"], "Failed");
        let message = run["errorMessage"].as_str().unwrap();
        assert!(message.contains(named), "{context}: {message}");
    }
    // A template that needs a branch fails at submission for a non-git context.
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let out = server
        .kiln_output(&[
            "build",
            "-t",
            "x:<<.Run.Commit>>",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains(".Run.Commit"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_tarball_is_downloaded_checked_and_built() {
    let server = TestServer::start().await;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [
        (
            "Dockerfile",
            format!("FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n"),
        ),
        ("hello.txt", "from a tarball\n".to_string()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    let base = serve_tarball(gz.finish().unwrap()).await;

    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-cache",
            &format!("{base}/ctx.tar.gz"),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("from a tarball"), "{}", out.stdout);

    let out = server
        .kiln_output(&["build", "--no-push", &format!("{base}/missing.tar.gz")])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    let run = server.run_json(&out.run_id()).await;
    assert!(
        run["errorMessage"].as_str().unwrap().contains("404"),
        "{run:#}"
    );
}
