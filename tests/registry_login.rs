//! `kiln registry login`: Docker gets the logged-in token for the server's registry, in its
//! config or through its credential helper, and `docker push` and `docker pull` just work.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::*;

/// `kiln registry login` with Docker's config in `docker_config`.
async fn registry_login(server: &TestServer, docker_config: &Path, env: &[(&str, &str)]) -> CliRun {
    with_config(server.kiln(&["registry", "login"]), docker_config, env).await
}

/// `docker <args>` with its config in `docker_config`.
async fn docker(docker_config: &Path, env: &[(&str, &str)], args: &[&str]) -> CliRun {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args);
    with_config(cmd, docker_config, env).await
}

async fn with_config(
    mut cmd: tokio::process::Command,
    docker_config: &Path,
    env: &[(&str, &str)],
) -> CliRun {
    let out = cmd
        .env("DOCKER_CONFIG", docker_config)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    CliRun::from(out)
}

/// Pushes the base image as `image`, removes it locally and pulls it back.
async fn push_and_pull(docker_config: &Path, env: &[(&str, &str)], image: &str) {
    let out = docker(docker_config, env, &["pull", "-q", BASE_IMAGE]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = docker(docker_config, env, &["tag", BASE_IMAGE, image]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = docker(docker_config, env, &["push", "-q", image]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = docker(docker_config, env, &["rmi", image]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = docker(docker_config, env, &["pull", "-q", image]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    docker(docker_config, env, &["rmi", image]).await;
}

fn host_of(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pushes_and_pulls_after_kiln_registry_login() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let host = host_of(&server);
    let config = tempfile::tempdir().unwrap();
    let image = format!("{host}/app/login:1");

    // Not logged in: the registry refuses the push.
    docker(config.path(), &[], &["tag", BASE_IMAGE, &image]).await;
    let refused = docker(config.path(), &[], &["push", "-q", &image]).await;
    assert_ne!(refused.code, 0, "{refused:#?}");

    let out = registry_login(&server, config.path(), &[]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let file = config.path().join("config.json");
    assert!(
        out.stderr.contains(&format!(
            "Docker credentials for {host} (token 'owner') stored in {}",
            file.display()
        )),
        "{out:#?}"
    );
    assert!(!out.stderr.contains(server.owner_token()), "{out:#?}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    push_and_pull(config.path(), &[], &image).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_an_existing_docker_config_survives() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let host = host_of(&server);
    let secret = server.create_token("ci", &["push"], &["app/*"]).await;
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.json");
    let before = serde_json::json!({
        "auths": {
            "other.example:5000": {"auth": "b3RoZXI6c2VjcmV0"},
            host.clone(): {"auth": "c3RhbGU6b2xk", "identitytoken": "stale"},
        },
        "detachKeys": "ctrl-e,e",
        "proxies": {"default": {"noProxy": "127.0.0.1"}},
        "credHelpers": {"gcr.io": "gcloud"},
    });
    std::fs::write(&file, serde_json::to_string_pretty(&before).unwrap()).unwrap();

    let out = registry_login(&server, config.path(), &[("KILN_TOKEN", &secret)]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("(token 'ci')"), "{out:#?}");
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for key in ["detachKeys", "proxies", "credHelpers"] {
        assert_eq!(after[key], before[key], "{after:#}");
    }
    assert_eq!(
        after["auths"]["other.example:5000"],
        before["auths"]["other.example:5000"]
    );
    let auth = after["auths"][&host]["auth"].as_str().unwrap().to_string();
    let want = base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}"));
    assert_eq!(auth, want, "{after:#}");
    assert_eq!(
        after["auths"][&host].as_object().unwrap().len(),
        1,
        "{after:#}"
    );

    // What Docker will send, the registry's token endpoint takes.
    let resp = reqwest::Client::new()
        .get(format!("{}/token", server.url))
        .query(&[
            ("service", host.as_str()),
            ("scope", "repository:app/web:push,pull"),
        ])
        .header("Authorization", format!("Basic {auth}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// A credential helper as Docker runs them: `store` keeps what it is given, `get` gives it
/// back.
const HELPER: &str = r#"#!/bin/sh
stored="$(dirname "$0")/stored.json"
case "$1" in
  store) cat > "$stored" ;;
  get) if [ -f "$stored" ]; then cat "$stored"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo '{}' ;;
esac
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_credential_helper_stores_the_credentials() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let host = host_of(&server);
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.json");
    let text = serde_json::json!({"credHelpers": {host.clone(): "kilntest"}}).to_string();
    std::fs::write(&file, &text).unwrap();
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-kilntest");
    std::fs::write(&helper, HELPER).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path.as_str())];

    let out = registry_login(&server, config.path(), &env).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("stored in docker-credential-kilntest"),
        "{out:#?}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bin.path().join("stored.json")).unwrap())
            .unwrap();
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], "owner");
    assert_eq!(stored["Secret"], server.owner_token());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "config.json untouched"
    );

    push_and_pull(config.path(), &env, &format!("{host}/app/helper:1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_token_or_no_token_writes_nothing() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let worker = server.create_token("host1", &["worker"], &[]).await;
    let config = tempfile::tempdir().unwrap();
    let out = registry_login(&server, config.path(), &[("KILN_TOKEN", &worker)]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("token 'host1' is a worker token"),
        "{out:#?}"
    );

    let elsewhere = server.home.path().join("elsewhere.json");
    let out = registry_login(
        &server,
        config.path(),
        &[("KILN_CREDENTIALS_FILE", elsewhere.to_str().unwrap())],
    )
    .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("run `kiln login"), "{out:#?}");
    assert!(!config.path().join("config.json").exists());
}
