//! Secrets at rest: a run's git access token, context-URL credentials and build-arg values
//! are sealed in the database with a key kept outside it, dropped when the run ends, and a
//! start with another key fails clearly.

mod common;

use common::*;

const GIT_TOKEN: &str = "gittoken-6d1f0c";
const URL_PASSWORD: &str = "urlpass-93be2a";
const BUILD_ARG: &str = "buildarg-51c7e4";

async fn queue_with_secrets(server: &TestServer) -> String {
    let body = serde_json::json!({
        "context": {
            "kind": "git",
            "url": format!("https://ci:{URL_PASSWORD}@127.0.0.1:1/org/repo.git"),
        },
        "buildArgs": {"SECRET": BUILD_ARG, "PLAIN": ""},
        "gitAccessToken": GIT_TOKEN,
    });
    server.queue_run_as(server.owner_token(), &body).await
}

/// `(secrets IS NOT NULL, git_token IS NOT NULL)` of the run, read from the database.
async fn secret_columns(server: &TestServer, id: &str) -> (bool, bool) {
    let seq = u64::from_str_radix(id.trim_start_matches("ca"), 36).unwrap() as i64;
    let url = format!(
        "sqlite://{}?mode=ro",
        server.data.path().join("kiln.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row: (bool, bool) =
        sqlx::query_as("SELECT secrets IS NOT NULL, git_token IS NOT NULL FROM runs WHERE seq = ?")
            .bind(seq)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_dropped_at_the_end_and_need_their_key() {
    let mut server = TestServer::start_with(|a| a.workers = 0).await;
    let key = server.data.path().join("secret.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let ended = queue_with_secrets(&server).await;
    let waiting = queue_with_secrets(&server).await;
    let stored = server.database_bytes();
    for secret in [GIT_TOKEN, URL_PASSWORD, BUILD_ARG] {
        assert!(!holds(&stored, secret), "{secret} is in the database file");
    }
    assert_eq!(secret_columns(&server, &ended).await, (true, false));

    let cancel = server
        .http()
        .post(format!("{}/api/runs/{ended}/cancel", server.url));
    assert_eq!(cancel.send().await.unwrap().status(), 200);
    assert_eq!(secret_columns(&server, &ended).await, (false, false));

    // The same key opens them after a restart: the worker gets them with its lease.
    server.restart_with(|_| {}).await;
    let worker = server.create_token("host1", &["worker"], &[]).await;
    let lease = serde_json::json!({
        "worker": {"id": "w", "name": "w", "platforms": ["linux/amd64"], "protocol": 2},
        "waitMs": 0
    });
    let leased = server
        .http_as(&worker)
        .post(format!("{}/api/worker/lease", server.url))
        .json(&lease)
        .send()
        .await
        .unwrap();
    assert_eq!(leased.status(), 200);
    let leased = leased.text().await.unwrap();
    assert!(leased.contains(&format!("\"{waiting}\"")), "{leased}");
    for secret in [GIT_TOKEN, URL_PASSWORD, BUILD_ARG] {
        assert!(
            leased.contains(secret),
            "{secret} missing from the lease: {leased}"
        );
    }

    // Another key is refused at start-up, before anything is served.
    let other = server.data.path().join("other.key");
    std::fs::write(&other, [7u8; 32]).unwrap();
    let mut args = server.args.clone();
    args.secret_key_file = Some(other);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = kiln::server::Server::start(args.clone(), listener).await;
    let message = format!("{:#}", refused.err().expect("another key is refused"));
    assert!(
        message.contains("does not open this database's secrets"),
        "{message}"
    );
    // So is a missing key file, rather than a new key that opens nothing.
    args.secret_key_file = Some(server.data.path().join("absent.key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = kiln::server::Server::start(args, listener).await;
    let message = format!("{:#}", refused.err().expect("a missing key is refused"));
    assert!(message.contains("is missing"), "{message}");
    assert!(!server.data.path().join("absent.key").exists());
}
