//! Access control end to end: the owner bootstrap, tokens managed with the real `kiln` CLI,
//! `kiln login` from another machine, the API's refusals, Docker's token endpoint and
//! challenge, and secrets kept out of listings and logs.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use kiln::clock::ManualClock;
use tokio::io::AsyncWriteExt as _;

/// Servers without embedded workers: nothing here builds.
async fn server() -> TestServer {
    TestServer::start_with(|a| a.workers = 0).await
}

async fn status_of(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn api_message(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The claims of a registry token (a JWT), to see what it grants.
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn token_for(
    server: &TestServer,
    user: &str,
    secret: &str,
    scope: &str,
) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .get(format!("{}/token", server.url))
        .query(&[("service", "kiln"), ("scope", scope)])
        .basic_auth(user, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_stores_an_owner_token_and_later_starts_keep_it() {
    let mut server = server().await;
    let file = server.credentials_file();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        stored["servers"][&server.url]["token"].as_str(),
        Some(server.owner_token())
    );

    // The CLI finds the token by itself: no --token, no KILN_TOKEN.
    let out = server.kiln_output(&["token", "list"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("owner"), "{}", out.stdout);

    server.restart_with(|a| a.workers = 1).await;
    let list = server.get_json("/api/tokens").await;
    let tokens = list["tokens"].as_array().unwrap();
    let owners = tokens
        .iter()
        .filter(|t| t["roles"].as_array().unwrap().contains(&"owner".into()))
        .count();
    assert_eq!(owners, 1, "{list:#}");
    assert!(
        tokens
            .iter()
            .any(|t| t["name"] == "embedded-worker" && t["roles"] == serde_json::json!(["worker"])),
        "{list:#}"
    );
}

/// `kiln token create --name ci --role push --repository <repository> <extra…>`, which must succeed.
async fn create_with_cli(server: &TestServer, repository: &str, extra: &[&str]) -> CliRun {
    let mut args = vec!["token", "create", "--name", "ci", "--role", "push"];
    args.extend(["--repository", repository]);
    args.extend(extra);
    let out = server.kiln_output(&args).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_listed_and_revoked_with_the_cli() {
    let server = server().await;
    let out = create_with_cli(&server, "app/*", &["--expires", "30d"]).await;
    let secret = out.stdout.trim().to_string();
    assert!(secret.starts_with("kiln_"), "{out:#?}");
    assert!(
        out.stderr.contains("then `kiln registry login`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("push on app/*"), "{}", out.stderr);

    for args in [
        &["token", "list"][..],
        &["token", "list", "--output", "json"],
    ] {
        let out = server.kiln_output(args).await;
        assert_eq!(out.code, 0, "{out:#?}");
        assert!(out.stdout.contains("ci"), "{}", out.stdout);
        assert!(out.stdout.contains("app/*"), "{}", out.stdout);
        assert!(!out.stdout.contains(&secret), "the secret is listed");
        assert!(
            !out.stdout.contains(server.owner_token()),
            "the secret is listed"
        );
    }
    let listed = server.get_text("/api/tokens").await;
    assert!(
        !listed.contains(&secret) && !listed.contains("hash"),
        "{listed}"
    );
    let ci: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let ci = ci["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(ci["roles"], serde_json::json!(["push"]));
    assert!(ci["expiresAt"].is_string(), "{ci:#}");

    let again = server
        .kiln_output(&[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "pull",
            "--repository",
            "*",
        ])
        .await;
    assert_eq!(again.code, 2, "{again:#?}");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad_role = server
        .kiln_output(&[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "admin",
            "--repository",
            "*",
        ])
        .await;
    assert_eq!(bad_role.code, 2, "{bad_role:#?}");
    assert!(
        bad_role.stderr.contains("unknown role 'admin'"),
        "{}",
        bad_role.stderr
    );

    let (status, _) = status_of(
        server
            .http_as(&secret)
            .get(format!("{}/api/whoami", server.url)),
    )
    .await;
    assert_eq!(status, 200);
    let out = server.kiln_output(&["token", "revoke", "ci"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let (status, body) = status_of(
        server
            .http_as(&secret)
            .get(format!("{}/api/whoami", server.url)),
    )
    .await;
    assert_eq!(status, 401, "{body:#}");
    assert!(api_message(&body).contains("revoked"), "{body:#}");
    let out = server.kiln_output(&["token", "revoke", "ci"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("no token named 'ci'"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_validated() {
    let server = server().await;
    let url = format!("{}/api/tokens", server.url);
    for (body, expect) in [
        (
            serde_json::json!({"name": "w", "roles": ["worker", "pull"], "repositories": ["*"]}),
            "cannot be combined",
        ),
        (
            serde_json::json!({"name": "r", "roles": ["pull"]}),
            "at least one repository",
        ),
        (
            serde_json::json!({"name": "r", "roles": ["pull"], "repositories": ["App/*"]}),
            "invalid repository pattern",
        ),
        (
            serde_json::json!({"name": "r", "roles": ["root"], "repositories": ["*"]}),
            "unknown role 'root'",
        ),
        (
            serde_json::json!({"name": "r", "roles": ["pull"], "repositories": ["*"], "expiresInSecs": 0}),
            "expiry",
        ),
        (
            serde_json::json!({"name": "kiln-run", "roles": ["pull"], "repositories": ["*"]}),
            "reserved",
        ),
    ] {
        let (status, resp) = status_of(server.http().post(&url).json(&body)).await;
        assert_eq!(status, 400, "{body}: {resp:#}");
        assert!(api_message(&resp).contains(expect), "{body}: {resp:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_login_stores_a_token_for_another_machine_and_kiln_token_overrides() {
    let server = server().await;
    let secret = server.create_token("reader", &["pull"], &["app/*"]).await;
    let laptop = tempfile::tempdir().unwrap();
    let laptop_file = laptop.path().join("credentials.json");
    let on_laptop = |args: &[&str]| {
        let mut cmd = server.kiln(args);
        cmd.env("KILN_CREDENTIALS_FILE", &laptop_file);
        cmd
    };

    let out = on_laptop(&["run", "list"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "no token stored yet: {out:?}");

    let wrong = login(
        on_laptop(&["login", &server.url, "--token-stdin"]),
        "kiln_wrong",
    )
    .await;
    assert_eq!(wrong.code, 2, "{wrong:#?}");
    assert!(!laptop_file.exists(), "a bad token was stored");

    let out = login(on_laptop(&["login", &server.url, "--token-stdin"]), &secret).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("as token 'reader' (pull)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&secret), "{}", out.stderr);
    let out = CliRun::from(on_laptop(&["run", "list"]).output().await.unwrap());
    assert_eq!(out.code, 0, "{out:#?}");
    let out = CliRun::from(on_laptop(&["token", "list"]).output().await.unwrap());
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("token 'reader' is not an owner"),
        "{}",
        out.stderr
    );

    // KILN_TOKEN wins over the credentials file's owner token.
    let out = server.kiln_output_as(&secret, &["token", "list"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("not an owner"), "{}", out.stderr);

    let out = CliRun::from(on_laptop(&["logout", &server.url]).output().await.unwrap());
    assert_eq!(out.code, 0, "{out:#?}");
    let out = CliRun::from(on_laptop(&["run", "list"]).output().await.unwrap());
    assert_eq!(out.code, 2, "{out:#?}");
}

async fn login(mut cmd: tokio::process::Command, token: &str) -> CliRun {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{token}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    CliRun::from(child.wait_with_output().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_a_token_may_not_do() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| a.workers = 0).await;
    let runs = format!("{}/api/runs", server.url);
    let lease = format!("{}/api/worker/lease", server.url);
    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;
    let pusher = server.create_token("pusher", &["push"], &["app/*"]).await;
    let worker = server.create_token("host1", &["worker"], &[]).await;
    let run =
        serde_json::json!({"context": {"kind": "tarball", "url": "http://127.0.0.1:1/x.tgz"}});
    let lease_body = serde_json::json!({
        "worker": {"id": "w", "name": "w", "platforms": ["linux/amd64"], "protocol": 2},
        "waitMs": 0
    });

    let (status, body) = status_of(reqwest::Client::new().get(&runs)).await;
    assert_eq!(status, 401, "{body:#}");

    let (status, body) = status_of(server.http_as(&reader).post(&runs).json(&run)).await;
    assert_eq!(status, 403, "{body:#}");
    assert_eq!(api_message(&body), "token 'reader' has no push role");
    assert_eq!(status_of(server.http_as(&reader).get(&runs)).await.0, 200);

    let (status, body) = status_of(server.http_as(&worker).get(&runs)).await;
    assert_eq!(status, 403, "{body:#}");
    assert!(api_message(&body).contains("worker 'host1'"), "{body:#}");
    for user in [&pusher, server.owner_token()] {
        let (status, body) = status_of(server.http_as(user).post(&lease).json(&lease_body)).await;
        assert_eq!(status, 403, "{body:#}");
        assert!(
            api_message(&body).contains("not a worker token"),
            "{body:#}"
        );
    }
    let (status, body) = status_of(server.http_as(&worker).post(&lease).json(&lease_body)).await;
    assert!(status == 200 || status == 204, "{status} {body:#}");

    // Neither registry tokens nor Basic auth open the API.
    let registry = token_for(&server, "pusher", &pusher, "repository:app/x:pull").await;
    let registry = registry["token"].as_str().unwrap();
    assert_eq!(status_of(server.http_as(registry).get(&runs)).await.0, 401);
    let basic = reqwest::Client::new()
        .get(&runs)
        .basic_auth("pusher", Some(&pusher));
    assert_eq!(status_of(basic).await.0, 401);

    let brief = server
        .create_token_with(serde_json::json!({
            "name": "brief", "roles": ["pull"], "repositories": ["*"], "expiresInSecs": 1
        }))
        .await;
    let (status, _) = status_of(server.http_as(&brief).get(&runs)).await;
    assert_eq!(status, 200);
    clock.advance(Duration::from_secs(1));
    let (status, body) = status_of(server.http_as(&brief).get(&runs)).await;
    assert_eq!(status, 401, "{body:#}");
    assert!(
        api_message(&body).contains("token 'brief' expired"),
        "{body:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_grants_what_was_asked_and_is_allowed() {
    let server = server().await;
    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;

    let issued = token_for(&server, "reader", &reader, "repository:app/web:pull,push").await;
    assert_eq!(issued["token"], issued["access_token"]);
    assert!(issued["expires_in"].as_u64().unwrap() > 0, "{issued:#}");
    assert!(issued["issued_at"].is_string(), "{issued:#}");
    assert_eq!(
        claims(issued["token"].as_str().unwrap())["access"],
        serde_json::json!([{"type": "repository", "name": "app/web", "actions": ["pull"]}])
    );
    let other = token_for(&server, "reader", &reader, "repository:other/x:pull").await;
    assert_eq!(
        claims(other["token"].as_str().unwrap())["access"],
        serde_json::json!([])
    );

    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "password"),
            ("username", "reader"),
            ("password", reader.as_str()),
            ("scope", "repository:app/web:pull"),
        ])
        .finish();
    let form = reqwest::Client::new()
        .post(format!("{}/token", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let (status, body) = status_of(form).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body["access_token"].is_string(), "{body:#}");

    for req in [
        reqwest::Client::new().get(format!("{}/token", server.url)),
        reqwest::Client::new()
            .get(format!("{}/token", server.url))
            .basic_auth("reader", Some("kiln_wrong")),
        reqwest::Client::new()
            .get(format!("{}/token", server.url))
            .basic_auth("someone-else", Some(&reader)),
    ] {
        let (status, body) = status_of(req).await;
        assert_eq!(status, 401, "{body:#}");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_challenges_docker_and_takes_its_credentials() {
    let server = server().await;
    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;
    let base = format!("{}/v2/", server.url);
    let host = server.url.trim_start_matches("http://");

    let resp = reqwest::get(&base).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        format!(r#"Bearer realm="http://{host}/token",service="{host}""#).as_str()
    );
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    let (status, body) = status_of(
        reqwest::Client::new()
            .get(&base)
            .bearer_auth("forged.token.x"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body:#}");

    let issued = token_for(&server, "reader", &reader, "repository:app/web:pull").await;
    let registry_token = issued["token"].as_str().unwrap().to_string();
    for req in [
        reqwest::Client::new()
            .get(&base)
            .basic_auth("reader", Some(&reader)),
        reqwest::Client::new().get(&base).bearer_auth(&reader),
        reqwest::Client::new()
            .get(&base)
            .bearer_auth(&registry_token),
    ] {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }

    // Revocation is immediate, registry tokens included.
    assert_eq!(
        server
            .kiln_output(&["token", "revoke", "reader"])
            .await
            .code,
        0
    );
    let resp = reqwest::Client::new()
        .get(&base)
        .bearer_auth(&registry_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_login_works_with_a_token_name_and_secret() {
    let server = server().await;
    let secret = server.create_token("ci", &["push"], &["app/*"]).await;
    let host = server.url.trim_start_matches("http://");
    let config = tempfile::tempdir().unwrap();
    let docker_login = |user: &str, password: &str| {
        let mut cmd = tokio::process::Command::new("docker");
        cmd.args(["login", host, "-u", user, "--password-stdin"])
            .env("DOCKER_CONFIG", config.path());
        let password = password.to_string();
        async move { login(cmd, &password).await }
    };
    let ok = docker_login("ci", &secret).await;
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.stdout.contains("Login Succeeded"), "{ok:#?}");
    let bad = docker_login("ci", "kiln_not-the-secret").await;
    assert_ne!(bad.code, 0, "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_and_debug_output() {
    let logs = captured_logs::captured_logs();
    let server = server().await;
    let secret = create_with_cli(&server, "*", &[])
        .await
        .stdout
        .trim()
        .to_string();
    let issued = token_for(&server, "ci", &secret, "repository:app:pull,push").await;
    let registry_token = issued["token"].as_str().unwrap().to_string();
    reqwest::Client::new()
        .get(format!("{}/v2/", server.url))
        .bearer_auth(&registry_token)
        .send()
        .await
        .unwrap();
    server
        .http_as(&secret)
        .get(format!("{}/api/runs", server.url))
        .send()
        .await
        .unwrap();

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(&server.credentials_file().display().to_string()),
        "the log names the credentials file: {text}"
    );
    assert!(text.contains("token created"), "{text}");
    for s in [server.owner_token(), &secret, &registry_token] {
        assert!(!text.contains(s), "a secret is in the log: {text}");
    }

    let created: kiln::wire::CreatedToken = serde_json::from_value(serde_json::json!({
        "name": "ci", "roles": ["push"], "repositories": ["*"],
        "createdAt": "2024-01-01T00:00:00Z", "expiresAt": null, "lastUsedAt": null,
        "secret": secret,
    }))
    .unwrap();
    let creds = kiln::service::auth::Credentials::Basic {
        username: "ci".into(),
        password: kiln_worker::protocol::Secret::new(&secret),
    };
    for debug in [format!("{created:?}"), format!("{creds:?}")] {
        assert!(!debug.contains(&secret), "{debug}");
    }
}
