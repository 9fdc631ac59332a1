//! Where `kiln-worker` gets its token: `--token`/`KILN_WORKER_TOKEN`, the deprecated
//! `KILN_TOKEN`, or the credentials file `kiln login` writes; without a usable one it stops
//! at once and says what to do.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::log_lines::{log_lines, wait_for_line};
use common::*;

/// `kiln-worker` against `server` with `env`, no token variable inherited, and a credentials
/// file of its own.
fn worker(
    server: &TestServer,
    credentials: &Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(worker_binary());
    cmd.args(["--server", &server.url, "--name", "token-test"])
        .env_remove("KILN_TOKEN")
        .env_remove("KILN_WORKER_TOKEN")
        .env("KILN_CREDENTIALS_FILE", credentials)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a worker that must stop by itself: its exit code and stderr.
async fn worker_exit(mut cmd: tokio::process::Command) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the worker stops by itself")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_a_token_stops_at_once_and_says_how_to_get_one() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let empty = server.home.path().join("none.json");
    let (code, stderr) = worker_exit(worker(&server, &empty, &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no worker token for"), "{stderr}");
    assert!(stderr.contains("KILN_WORKER_TOKEN"), "{stderr}");
    assert!(
        stderr.contains("kiln token create --name <host> --role worker"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("kiln login {}", server.url)),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_refused_or_non_worker_token_stops_and_says_why() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let empty = server.home.path().join("none.json");
    let cmd = worker(
        &server,
        &empty,
        &[("KILN_WORKER_TOKEN", "kiln_nosuchtoken")],
    );
    let (code, stderr) = worker_exit(cmd).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("refused the worker token"), "{stderr}");
    assert!(stderr.contains("unknown or revoked token"), "{stderr}");
    assert!(!stderr.contains("kiln login"), "{stderr}");

    // On the server's machine the credentials file holds the owner token: not for workers.
    let (code, stderr) = worker_exit(worker(&server, &server.credentials_file(), &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("token 'owner' from") && stderr.contains("has the role owner, not worker"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_builds_with_the_token_kiln_login_stored() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let token = server.create_token("build-host", &["worker"], &[]).await;
    let build_host = tempfile::tempdir().unwrap();
    let credentials = build_host.path().join("credentials.json");
    // As on the build host: `kiln login` with the worker token, typed as for `docker login`.
    let host = server.url.trim_start_matches("http://");
    let login = server
        .kiln(&["login", host, "--token", &token])
        .env("KILN_CREDENTIALS_FILE", &credentials)
        .output()
        .await
        .unwrap();
    assert!(login.status.success(), "{login:?}");

    let _worker = worker(&server, &credentials, &[]).spawn().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo built\n"),
    )]);
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        server.kiln_output(&["build", "--no-push", ctx.path().to_str().unwrap()]),
    )
    .await
    .expect("the run ends");
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains("started on worker token-test"),
        "{out:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_token_still_works_for_a_worker_with_a_deprecation_warning() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let token = server.create_token("old-host", &["worker"], &[]).await;
    let empty = server.home.path().join("none.json");
    let mut child = worker(&server, &empty, &[("KILN_TOKEN", &token)])
        .spawn()
        .unwrap();
    let mut log = log_lines(child.stderr.take().unwrap());
    let warning = wait_for_line(&mut log, "KILN_TOKEN is deprecated").await;
    assert!(warning.contains("set KILN_WORKER_TOKEN"), "{warning}");
    wait_for_line(&mut log, "worker ready").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_token_says_how_to_start_a_worker() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let out = server
        .kiln_output(&["token", "create", "--name", "host1", "--role", "worker"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let hint = format!(
        "KILN_WORKER_TOKEN=<the secret> kiln-worker --server {}",
        server.url
    );
    assert!(out.stderr.contains(&hint), "{out:#?}");
    assert!(!out.stderr.contains("docker login"), "{out:#?}");

    let out = server
        .kiln_output(&[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "push",
            "--repository",
            "app/*",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("kiln login {} --token-stdin", server.url))
            && out.stderr.contains("kiln registry login"),
        "{out:#?}"
    );
}
