//! `kiln login` as `docker login` is typed: `127.0.0.1:8080` and `localhost:8080` without a
//! scheme, the same for `--server`/`KILN_SERVER`; a refused token is called that.

mod common;

use common::*;

/// `kiln <args>` with a credentials file of its own, as on another machine.
fn elsewhere(
    server: &TestServer,
    file: &std::path::Path,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = server.kiln(args);
    cmd.env("KILN_CREDENTIALS_FILE", file);
    cmd
}

async fn output(mut cmd: tokio::process::Command) -> CliRun {
    CliRun::from(cmd.output().await.unwrap())
}

/// `kiln login <url> --token <token>` with the credentials file `file`.
async fn login(server: &TestServer, file: &std::path::Path, url: &str, token: &str) -> CliRun {
    output(elsewhere(server, file, &["login", url, "--token", token])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_scheme_is_plain_http_on_loopback() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let secret = server.create_token("reader", &["pull"], &["app/*"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.json");
    let port = server.url.rsplit(':').next().unwrap().to_string();

    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}/")] {
        let out = login(&server, &file, &host, &secret).await;
        assert_eq!(out.code, 0, "{out:#?}");
        let url = format!("http://{}", host.trim_end_matches('/'));
        assert!(
            out.stderr
                .contains(&format!("Logged in to {url} as token 'reader'")),
            "{out:#?}"
        );
        // Stored under the full URL, which --server finds however it is typed.
        let stored = kiln::cli::credentials::token_for(&file, &url).unwrap();
        assert_eq!(stored.as_ref().map(|s| s.expose()), Some(secret.as_str()));
        let mut list = elsewhere(&server, &file, &["run", "list"]);
        list.env("KILN_SERVER", &host);
        let out = output(list).await;
        assert_eq!(out.code, 0, "{out:#?}");
    }

    let out = output(elsewhere(
        &server,
        &file,
        &["logout", &format!("localhost:{port}")],
    ))
    .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("Forgot the token for http://localhost:{port}.")),
        "{out:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_without_a_scheme_are_https_and_bad_urls_are_named() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.json");
    let out = login(&server, &file, "buildhost.invalid:8080", "kiln_x").await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("cannot reach the Kiln server at https://buildhost.invalid:8080"),
        "{out:#?}"
    );

    for bad in ["ftp://buildhost", "http://", "http://buildhost:notaport"] {
        let out = login(&server, &file, bad, "kiln_x").await;
        assert_eq!(out.code, 2, "{bad}: {out:#?}");
        assert!(
            out.stderr.contains("is not a server URL"),
            "{bad}: {out:#?}"
        );
        assert!(!out.stderr.contains("builder error"), "{bad}: {out:#?}");
        let mut list = elsewhere(&server, &file, &["run", "list"]);
        list.env("KILN_SERVER", bad);
        let out = output(list).await;
        assert_eq!(out.code, 2, "{bad}: {out:#?}");
        assert!(
            out.stderr.contains("is not a server URL"),
            "{bad}: {out:#?}"
        );
    }
    assert!(!file.exists(), "nothing is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_at_login_is_called_refused() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.json");
    let out = login(&server, &file, &server.url, "kiln_not-a-token").await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains(&format!(
            "the server at {} refused the token: unknown or revoked token",
            server.url
        )),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("run `kiln login"), "{out:#?}");
    assert!(!file.exists(), "a refused token was stored");
}
