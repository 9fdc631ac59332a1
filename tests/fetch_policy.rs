//! The workers' fetch policy as users meet it: what a git context, its submodules and a
//! tarball may be fetched from, where credentials go, and `--deny-private-addresses`.
//!
//! Every server here is on loopback. "Another host" means another `scheme://host:port`,
//! so two servers on 127.0.0.1 with different ports are different hosts, as for browsers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use common::git_servers::{repo, GitHttpServer};
use common::*;
use kiln_worker::fetch_policy::{http_client, refusal, AddressClass, FetchPolicy, PolicyError};
use kiln_worker::git::{fetch, GitError, GitSource};
use kiln_worker::protocol::Secret;

const SECRET: &str = "the-build-hosts-secret-7d2e";
const TOKEN: &str = "kiln-policy-token-52c1";
const LOOPBACK_REFUSED: &str =
    "refused: 127.0.0.1 is a loopback address and this worker denies private addresses";

/// `<root>/secret.git`, a repository no one serves: it sits on the build host's disk.
fn secret_repo(root: &Path) -> PathBuf {
    let secret = repo(root, "secret");
    secret.file("secret.txt", SECRET);
    secret.commit("secret");
    root.join("secret.git")
}

/// Serves `app.git`, whose `lib` submodule is the repository at `submodule` (its commit is
/// the one checked out) but whose `.gitmodules` gives `url` as its URL. The Dockerfile
/// prints the submodule's `secret.txt`.
fn app_with_submodule(submodule: &Path, url: &str) -> (tempfile::TempDir, GitHttpServer) {
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    app.submodule(submodule.to_str().unwrap(), "lib")
        .file(
            ".gitmodules",
            &format!("[submodule \"lib\"]\n\tpath = lib\n\turl = {url}\n"),
        )
        .file(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nCOPY lib /lib\nRUN cat /lib/secret.txt\n"),
        );
    app.commit("app");
    let server = GitHttpServer::start(root.path(), None);
    (root, server)
}

/// Everything the run shows a user: the build's output, its log and its error.
async fn everything_shown(server: &TestServer, out: &CliRun) -> (serde_json::Value, String) {
    let id = out.run_id();
    let run = server.run_json(&id).await;
    let logs = server.kiln_output(&["run", "logs", &id]).await;
    let shown = format!("{}\n{}\n{}\n{run}", out.stdout, out.stderr, logs.stdout);
    (run, shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submodule_on_the_build_hosts_disk_fails_the_run_unread() {
    let server = TestServer::start().await;
    let disk = tempfile::tempdir().unwrap();
    let secret = secret_repo(disk.path());
    for url in [
        format!("file://{}", secret.display()),
        secret.display().to_string(),
    ] {
        let (_root, git) = app_with_submodule(&secret, &url);
        let context = format!("{}/app.git#main", git.url);
        let out = server
            .kiln_output(&["build", "--no-push", "--no-cache", &context])
            .await;
        assert_eq!(out.code, 1, "{url}: {out:#?}");
        let (run, shown) = everything_shown(&server, &out).await;
        assert_eq!(run["status"], "Failed", "{url}: {run:#}");
        let message = run["errorMessage"].as_str().unwrap();
        assert!(message.contains("submodule 'lib'"), "{url}: {message}");
        assert!(message.contains("refused"), "{url}: {message}");
        assert!(!shown.contains(SECRET), "{url}: the secret leaked: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_denying_private_addresses_refuses_loopback_contexts_unasked() {
    let server = TestServer::start_with(|a| a.deny_private_addresses = true).await;
    let disk = tempfile::tempdir().unwrap();
    let secret = secret_repo(disk.path());
    let (_root, git) = app_with_submodule(&secret, "../secret.git");
    let (tarballs, seen) = tarball_server(Some("never-to-be-seen-body")).await;
    let port = tarballs.rsplit(':').next().unwrap();
    for (context, refused) in [
        (format!("{}/app.git#main", git.url), LOOPBACK_REFUSED),
        (format!("{tarballs}/ctx.tar.gz"), LOOPBACK_REFUSED),
        (
            format!("http://localhost:{port}/ctx.tar.gz"),
            "is a loopback address and this worker denies private addresses",
        ),
    ] {
        let out = server.kiln_output(&["build", "--no-push", &context]).await;
        assert_eq!(out.code, 1, "{context}: {out:#?}");
        let (run, shown) = everything_shown(&server, &out).await;
        let message = run["errorMessage"].as_str().unwrap();
        assert!(message.contains(refused), "{context}: {message}");
        for answer in ["never-to-be-seen-body", "answered HTTP", "404"] {
            assert!(!shown.contains(answer), "{context}: {shown}");
        }
    }
    assert_eq!(seen.lock().unwrap().len(), 0, "nothing was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_worker_denies_private_addresses_when_its_environment_says_so() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let token = server.create_token("strict-host", &["worker"], &[]).await;
    let _worker = tokio::process::Command::new(worker_binary())
        .args(["--server", &server.url, "--name", "strict"])
        .env("KILN_WORKER_TOKEN", &token)
        .env("KILN_DENY_PRIVATE_ADDRESSES", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (tarballs, seen) = tarball_server(Some("never-to-be-seen-body")).await;
    let context = format!("{tarballs}/ctx.tar.gz");
    let out = server.kiln_output(&["build", "--no-push", &context]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    let (run, _) = everything_shown(&server, &out).await;
    let message = run["errorMessage"].as_str().unwrap();
    assert!(message.contains(LOOPBACK_REFUSED), "{message}");
    assert_eq!(seen.lock().unwrap().len(), 0, "nothing was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarball_redirects_are_checked_and_lose_credentials_on_another_host() {
    let server = TestServer::start().await;
    let (other, other_seen) = tarball_server(None).await;
    let (first, first_seen) = tarball_server(None).await;
    let first = first.replace("http://", &format!("http://user:{TOKEN}@"));

    // To the build host's disk: refused, whoever redirects there.
    let to_file = format!("{first}/redirect?to=file:///etc/passwd");
    let out = server.kiln_output(&["build", "--no-push", &to_file]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    let (run, shown) = everything_shown(&server, &out).await;
    let message = run["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("refused: 'file:///etc/passwd'"),
        "{message}"
    );
    assert!(!shown.contains("root:"), "{shown}");

    // To another host: followed, without the first host's credentials.
    let to_other = format!("{first}/redirect?to={other}/ctx.tar.gz");
    let out = server.kiln_output(&["build", "--no-push", &to_other]).await;
    assert_eq!(out.code, 1, "the other host has no tarball: {out:#?}");
    let first_seen = first_seen.lock().unwrap().clone();
    let other_seen = other_seen.lock().unwrap().clone();
    assert_eq!(first_seen.len(), 2, "{first_seen:?}");
    assert!(
        first_seen.iter().all(Option::is_some),
        "the URL's own host gets its credentials: {first_seen:?}"
    );
    assert_eq!(other_seen, vec![None], "another host gets none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_names_leading_to_private_addresses_are_refused() {
    // The first URL's address is the caller's to check (it is, before the client is
    // built), so a loopback server stands in here for a public host that redirects.
    let (target, _) = tarball_server(Some("private")).await;
    let (first, _) = tarball_server(None).await;
    let port = target.rsplit(':').next().unwrap();
    let deny = FetchPolicy {
        deny_private_addresses: true,
    };
    let client = |policy| {
        http_client(reqwest::Client::builder(), policy)
            .build()
            .unwrap()
    };

    for (url, expected) in [
        (
            format!("{first}/redirect?to={target}/ctx.tar.gz"),
            LOOPBACK_REFUSED.to_string(),
        ),
        (
            format!("{first}/redirect?to=http://[::ffff:127.0.0.1]:{port}/ctx.tar.gz"),
            "refused: ::ffff:127.0.0.1 is a loopback address".to_string(),
        ),
        (
            format!("{first}/redirect?to=http://localhost:{port}/ctx.tar.gz"),
            "refused: localhost (".to_string(),
        ),
        (
            format!("http://localhost:{port}/ctx.tar.gz"),
            "refused: localhost (".to_string(),
        ),
    ] {
        let err = client(deny).get(&url).send().await.unwrap_err();
        let refused = refusal(&err).unwrap_or_else(|| panic!("{url}: {err:?}"));
        assert!(
            matches!(
                refused,
                PolicyError::Address {
                    class: AddressClass::Loopback,
                    ..
                }
            ),
            "{url}: {refused:?}"
        );
        assert!(refused.to_string().contains(&expected), "{url}: {refused}");

        let allowed = client(FetchPolicy::default())
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.text().await.unwrap(), "private", "{url}");
    }
}

#[test]
fn the_git_token_goes_to_the_contexts_own_host_only() {
    // lib.git on another host (another port) that wants the very same token.
    let lib_root = tempfile::tempdir().unwrap();
    let lib = repo(lib_root.path(), "lib");
    lib.file("lib.txt", "lib");
    lib.commit("lib");
    let other = GitHttpServer::start(lib_root.path(), Some(TOKEN));

    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    let lib_path = lib_root.path().join("lib.git");
    app.submodule(lib_path.to_str().unwrap(), "lib").file(
        ".gitmodules",
        &format!(
            "[submodule \"lib\"]\n\tpath = lib\n\turl = {}/lib.git\n",
            other.url
        ),
    );
    app.commit("app");
    let own = GitHttpServer::start(root.path(), Some(TOKEN));
    let own_url = format!("{}/app.git", own.url);
    let with_userinfo = own_url.replace("http://", &format!("http://user:{TOKEN}@"));

    let token = Secret::new(TOKEN);
    for (url, token) in [(own_url, Some(&token)), (with_userinfo, None)] {
        let source = GitSource {
            url: url.clone(),
            reference: None,
            subdir: None,
        };
        let dest = tempfile::tempdir().unwrap();
        let err = fetch(&source, token, &FetchPolicy::default(), dest.path()).unwrap_err();
        match &err {
            GitError::AuthenticationFailed { url: failed } => {
                assert!(failed.starts_with(&other.url), "{failed}")
            }
            other => panic!("{url}: the submodule must fail to authenticate: {other:?}"),
        }
        assert!(!err.to_string().contains(TOKEN), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_refuses_urls_no_worker_would_fetch() {
    let server = TestServer::start().await;
    for context in [
        serde_json::json!({"kind": "git", "url": "file:///srv/secret.git"}),
        serde_json::json!({"kind": "git", "url": "ssh://host/org/repo.git"}),
        serde_json::json!({"kind": "tarball", "url": "file:///etc/passwd"}),
        serde_json::json!({"kind": "tarball", "url": "git://host/ctx.tar.gz"}),
        serde_json::json!({"kind": "tarball", "url": "http:///ctx.tar.gz"}),
    ] {
        let resp = server
            .http()
            .post(format!("{}/api/runs", server.url))
            .json(&serde_json::json!({"context": context, "push": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{context}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("refused"), "{context}: {body}");
    }
    assert_eq!(server.run_count().await, 0);
}

/// A loopback server: `/ctx.tar.gz` answers `body` (404 without one), `/redirect?to=URL`
/// redirects. It records each request's `Authorization` header, in order.
async fn tarball_server(body: Option<&'static str>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/ctx.tar.gz",
            axum::routing::get(move || async move {
                match body {
                    Some(body) => body.into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| async move {
                    let to = q.into_iter().find(|(k, _)| k == "to").unwrap().1;
                    Redirect::temporary(&to)
                },
            ),
        )
        .layer(axum::middleware::from_fn(
            move |headers: HeaderMap,
                  request: axum::extract::Request,
                  next: axum::middleware::Next| {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_string());
                record.lock().unwrap().push(auth);
                next.run(request)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}
