//! `kiln_worker::git::fetch` against real git servers on loopback: smart HTTP through
//! `git http-backend` and the git protocol through `git daemon`.

#[path = "common/git_servers.rs"]
mod git_servers;

use std::path::Path;

use git_servers::{repo, GitDaemon, GitHttpServer};
use kiln_worker::fetch_policy::FetchPolicy;
use kiln_worker::git::{fetch, Checkout, GitError, GitSource};
use kiln_worker::protocol::Secret;
use tempfile::TempDir;

const TOKEN: &str = "kiln-test-token-4f1c9e";

/// The `app` repository on both servers, and the commits the tests look for.
struct Fixture {
    root: TempDir,
    http: GitHttpServer,
    daemon: GitDaemon,
    /// Tagged `v1` (annotated) and `light` (lightweight); `v` says "1".
    first: String,
    /// Neither a branch tip nor tagged; `v` says "2".
    old: String,
    /// The tip of `main`, with the `lib` submodule (which has `base` as its own).
    main: String,
    /// The tip of `feature`.
    feature: String,
    /// Only reachable from `refs/pull/1/head`.
    pull: String,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let base = repo(root.path(), "base");
        base.file("base.txt", "base");
        base.commit("base");
        let lib = repo(root.path(), "lib");
        lib.file("lib.txt", "lib").submodule("../base.git", "base");
        lib.commit("lib");

        let app = repo(root.path(), "app");
        app.file("v", "1")
            .file("docker/Dockerfile", "FROM scratch\n");
        let first = app.commit("first");
        app.tag("v1", Some("release 1")).tag("light", None);
        app.file("v", "2");
        let old = app.commit("second");
        app.file("v", "3")
            .symlink("outside", "../../..")
            .submodule("../lib.git", "lib");
        let main = app.commit("third");
        app.branch("feature").file("v", "feature");
        let feature = app.commit("feature");
        app.checkout(&main).file("v", "pull");
        let pull = app.commit("pull request");
        app.pull_request(1, &pull).checkout("main");

        Fixture {
            http: GitHttpServer::start(root.path(), None),
            daemon: GitDaemon::start(root.path()),
            root,
            first,
            old,
            main,
            feature,
            pull,
        }
    }

    /// `app.git` on each server, labelled for assertion messages.
    fn urls(&self) -> [(&'static str, String); 2] {
        [
            ("http", format!("{}/app.git", self.http.url)),
            ("git", format!("{}/app.git", self.daemon.url)),
        ]
    }
}

fn source(url: &str, reference: Option<&str>, subdir: Option<&str>) -> GitSource {
    GitSource {
        url: url.to_string(),
        reference: reference.map(str::to_string),
        subdir: subdir.map(str::to_string),
    }
}

/// Fetches into a fresh folder, kept as long as the returned `TempDir`.
fn fetch_into(source: &GitSource, token: Option<&Secret>) -> (TempDir, Result<Checkout, GitError>) {
    let dest = tempfile::tempdir().unwrap();
    let result = fetch(source, token, &FetchPolicy::default(), dest.path());
    (dest, result)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Asks the git CLI, not libgit2, whether the checkout has only part of the history.
fn is_shallow(dest: &Path) -> bool {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--is-shallow-repository"])
        .current_dir(dest)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim() == "true"
}

#[test]
fn fetches_a_branch_shallow_with_its_name() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        let (dest, checkout) = fetch_into(&source(&url, Some("feature"), None), None);
        let checkout = checkout.unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(checkout.commit, f.feature, "{server}");
        assert_eq!(checkout.branch.as_deref(), Some("feature"), "{server}");
        assert_eq!(checkout.context_dir, dest.path(), "{server}");
        assert_eq!(read(dest.path(), "v"), "feature", "{server}");
        assert!(
            is_shallow(dest.path()),
            "{server}: a branch is fetched at depth 1"
        );
    }
}

#[test]
fn fetches_the_default_branch_the_server_names() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        let (dest, checkout) = fetch_into(&source(&url, None, None), None);
        let checkout = checkout.unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(checkout.commit, f.main, "{server}");
        assert_eq!(checkout.branch.as_deref(), Some("main"), "{server}");
        assert_eq!(read(dest.path(), "v"), "3", "{server}");
    }

    let root = tempfile::tempdir().unwrap();
    let other = repo(root.path(), "other");
    other.commit("on main");
    other.branch("develop");
    let develop = other.commit("on develop");
    other.default_branch("develop");
    let http = GitHttpServer::start(root.path(), None);
    let (_dest, checkout) = fetch_into(
        &source(&format!("{}/other.git", http.url), None, None),
        None,
    );
    let checkout = checkout.unwrap();
    assert_eq!(checkout.commit, develop);
    assert_eq!(checkout.branch.as_deref(), Some("develop"));
}

#[test]
fn fetches_annotated_and_lightweight_tags() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        for tag in ["v1", "light"] {
            let (dest, checkout) = fetch_into(&source(&url, Some(tag), None), None);
            let checkout = checkout.unwrap_or_else(|e| panic!("{server} {tag}: {e}"));
            assert_eq!(checkout.commit, f.first, "{server} {tag}");
            assert_eq!(checkout.branch, None, "{server} {tag}");
            assert_eq!(read(dest.path(), "v"), "1", "{server} {tag}");
        }
    }
}

#[test]
fn fetches_full_and_short_shas_of_old_commits() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        for sha in [f.old.as_str(), &f.old[..8], &f.old[..8].to_uppercase()] {
            let (dest, checkout) = fetch_into(&source(&url, Some(sha), None), None);
            let checkout = checkout.unwrap_or_else(|e| panic!("{server} {sha}: {e}"));
            assert_eq!(checkout.commit, f.old, "{server} {sha}");
            assert_eq!(checkout.branch, None, "{server} {sha}");
            assert_eq!(read(dest.path(), "v"), "2", "{server} {sha}");
        }
    }
}

#[test]
fn fetches_a_commit_at_depth_one_when_the_server_allows_it() {
    let root = tempfile::tempdir().unwrap();
    let app = repo(root.path(), "app");
    let old = app.commit("old");
    app.commit("new");
    app.server_config("uploadpack.allowAnySHA1InWant", "true");
    let http = GitHttpServer::start(root.path(), None);
    let daemon = GitDaemon::start(root.path());
    for url in [&http.url, &daemon.url] {
        let (dest, checkout) =
            fetch_into(&source(&format!("{url}/app.git"), Some(&old), None), None);
        assert_eq!(checkout.unwrap().commit, old, "{url}");
        assert!(is_shallow(dest.path()), "{url}");
    }
}

#[test]
fn fetches_a_pull_request_ref() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        let (dest, checkout) = fetch_into(&source(&url, Some("pull/1/head"), None), None);
        let checkout = checkout.unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(checkout.commit, f.pull, "{server}");
        assert_eq!(checkout.branch, None, "{server}");
        assert_eq!(read(dest.path(), "v"), "pull", "{server}");
    }
}

#[test]
fn checks_out_submodules_recursively() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        let (dest, checkout) = fetch_into(&source(&url, Some("main"), None), None);
        checkout.unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(read(dest.path(), "lib/lib.txt"), "lib", "{server}");
        assert_eq!(read(dest.path(), "lib/base/base.txt"), "base", "{server}");
    }
}

#[test]
fn uses_the_subdir_as_the_context() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        let (dest, checkout) = fetch_into(&source(&url, None, Some("docker")), None);
        let checkout = checkout.unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(checkout.context_dir, dest.path().join("docker"), "{server}");
        assert!(
            checkout.context_dir.join("Dockerfile").is_file(),
            "{server}"
        );
    }
}

#[test]
fn refuses_missing_and_escaping_subdirs() {
    let f = Fixture::new();
    let [(_, url), _] = f.urls();
    let (_dest, missing) = fetch_into(&source(&url, None, Some("nope")), None);
    assert!(
        matches!(&missing, Err(GitError::SubdirNotFound { subdir }) if subdir == "nope"),
        "{missing:?}"
    );
    for escaping in ["../", "docker/../..", "outside"] {
        let (_dest, result) = fetch_into(&source(&url, None, Some(escaping)), None);
        assert!(
            matches!(result, Err(GitError::SubdirEscapes { .. })),
            "{escaping}: {result:?}"
        );
    }
}

#[test]
fn private_repositories_need_the_token() {
    let f = Fixture::new();
    let private = GitHttpServer::start(f.root.path(), Some(TOKEN));
    let url = format!("{}/app.git", private.url);
    let token = Secret::new(TOKEN);

    let (dest, checkout) = fetch_into(&source(&url, None, None), Some(&token));
    assert_eq!(checkout.unwrap().commit, f.main);
    assert_eq!(
        read(dest.path(), "lib/base/base.txt"),
        "base",
        "submodules get the token"
    );

    let wrong = Secret::new("not-the-token");
    let with_userinfo = url.replace("http://", "http://someone:hunter2@");
    for (url, token) in [(&url, None), (&url, Some(&wrong)), (&with_userinfo, None)] {
        let (_dest, result) = fetch_into(&source(url, None, None), token);
        let err = result.unwrap_err();
        assert!(
            matches!(err, GitError::AuthenticationFailed { .. }),
            "{err:?}"
        );
        let shown = format!("{err} {err:?}");
        for secret in [TOKEN, "not-the-token", "hunter2"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[test]
fn reports_missing_refs_and_repositories() {
    let f = Fixture::new();
    for (server, url) in f.urls() {
        for wanted in ["no-such-branch", "0123456789abcdef"] {
            let (_dest, result) = fetch_into(&source(&url, Some(wanted), None), None);
            match &result {
                Err(GitError::RefNotFound { reference, .. }) => assert_eq!(reference, wanted),
                other => panic!("{server}: {other:?}"),
            }
        }
        let missing = url.replace("app.git", "missing.git");
        let (_dest, result) = fetch_into(&source(&missing, None, None), None);
        assert!(
            matches!(result, Err(GitError::RepositoryNotFound { .. })),
            "{server}: {result:?}"
        );
    }
}
