//! The worker's purge runner (`kiln_worker::purge_run`) against Kiln's own registry on a real
//! server: through the distribution API with Docker's token flow, and through Kiln's own
//! adapter (the ACR metadata API `/acr/v1`) with tag times, tag-alone deletion, locks and the
//! delete-permission check before any deletion.

mod common;

use chrono::{TimeDelta, Utc};
use common::oci::{digest, image_manifest, push_blob, put_manifest, OCI_MANIFEST};
use common::TestServer;
use kiln_worker::protocol::{RegistryCredential, Secret};
use kiln_worker::purge::PurgeArgs;
use kiln_worker::purge_run::{run_purge, PurgeEnd, PurgeRequest};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Pushes an image created `days` ago under `repo:tag`; its digest.
async fn push_aged(server: &TestServer, repo: &str, tag: &str, days: i64) -> String {
    let created = Utc::now() - TimeDelta::days(days);
    let config = serde_json::json!({
        "created": created.to_rfc3339(), "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}, "config": {"Labels": {"tag": tag}}
    });
    let config = serde_json::to_vec(&config).unwrap();
    push_blob(&server.http(), &server.url, repo, &config).await;
    let manifest = image_manifest(&config, &[]);
    let resp = put_manifest(
        &server.http(),
        &server.url,
        repo,
        tag,
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    digest(&serde_json::to_vec(&manifest).unwrap())
}

async fn tags(server: &TestServer, repo: &str) -> Vec<String> {
    let url = format!("{}/v2/{repo}/tags/list", server.url);
    let body: serde_json::Value = server
        .http()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .map(|t| t.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Runs `acr purge <flags>` against the server's registry as the token `name`.
async fn purge_as(
    server: &TestServer,
    (name, secret): (&str, &str),
    flags: &str,
    kiln: bool,
) -> (PurgeEnd, Vec<String>) {
    let registry = server.url.trim_start_matches("http://").to_owned();
    let req = PurgeRequest {
        args: PurgeArgs::from_command(&format!("acr purge {flags}"))
            .unwrap()
            .unwrap(),
        registry: registry.clone(),
        kiln,
    };
    let credentials = [RegistryCredential {
        registry,
        username: name.to_owned(),
        password: Secret::new(secret),
    }];
    let lines = Mutex::new(Vec::new());
    let log = |line: String| lines.lock().unwrap().push(line);
    let end = run_purge(&req, &credentials, &log, &CancellationToken::new()).await;
    (end, lines.into_inner().unwrap())
}

#[tokio::test]
async fn the_distribution_adapter_answers_kilns_token_challenge() {
    let server = TestServer::start().await;
    for (tag, days) in [("dev-1", 5), ("dev-2", 4), ("v1", 5)] {
        push_aged(&server, "app/web", tag, days).await;
    }
    let secret = server.create_token("purger", &["delete"], &["app/*"]).await;

    let (end, lines) = purge_as(
        &server,
        ("purger", &secret),
        "--filter 'app/web:^dev-' --ago 1d",
        false,
    )
    .await;

    assert_eq!((end.exit_code, end.deleted_tags), (0, 2), "{lines:#?}");
    assert_eq!(tags(&server, "app/web").await, ["v1"]);
}

#[tokio::test]
async fn kilns_adapter_deletes_tags_alone_by_their_update_time() {
    let server = TestServer::start().await;
    let shared = push_aged(&server, "app/web", "dev-1", 5).await;
    // Tag times are the registry's own: every tag here was updated just now.
    let url = format!("{}/v2/app/web/manifests/stable", server.url);
    let manifest = server
        .http()
        .get(format!("{}/v2/app/web/manifests/{shared}", server.url))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = server
        .http()
        .put(url)
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let owner = ("owner", server.owner_token());

    let (young, lines) = purge_as(&server, owner, "--filter 'app/web:^dev-' --ago 1d", true).await;
    assert_eq!((young.exit_code, young.deleted_tags), (0, 0), "{lines:#?}");
    let (end, lines) = purge_as(&server, owner, "--filter 'app/web:^dev-' --ago 0", true).await;

    assert_eq!((end.exit_code, end.deleted_tags), (0, 1), "{lines:#?}");
    // Kiln deletes the tag alone: the manifest stays under its other tag.
    assert_eq!(tags(&server, "app/web").await, ["stable"]);
    let host = server.url.trim_start_matches("http://");
    assert!(
        lines.contains(&format!("Deleted {host}/app/web:dev-1")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_caller_without_delete_on_a_reached_repository_is_refused_before_any_deletion() {
    let server = TestServer::start().await;
    for repo in ["app/api", "app/web"] {
        push_aged(&server, repo, "dev-1", 5).await;
    }
    // May read both repositories, delete in neither.
    let both = server
        .create_token_with(serde_json::json!({
            "name": "mixed",
            "roles": ["pull"],
            "repositories": ["app/*"],
        }))
        .await;
    let (end, lines) = purge_as(
        &server,
        ("mixed", &both),
        "--filter 'app/.*:.*' --ago 0",
        true,
    )
    .await;
    assert_eq!(end.exit_code, 1);
    assert_eq!(
        lines.last().unwrap(),
        "Failed to complete purge: no delete permission on repository app/api",
        "{lines:#?}"
    );
    assert_eq!(end.deleted_tags, 0);
    assert_eq!(tags(&server, "app/api").await, ["dev-1"]);
    assert_eq!(tags(&server, "app/web").await, ["dev-1"]);
}

#[tokio::test]
async fn locked_tags_stay_unless_include_locked_which_unlocks_them_first() {
    let server = TestServer::start().await;
    for tag in ["dev-1", "dev-2"] {
        push_aged(&server, "app/web", tag, 5).await;
    }
    let lock = server
        .http()
        .patch(format!("{}/acr/v1/app/web/_tags/dev-1", server.url))
        .json(&serde_json::json!({"deleteEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), 200, "{}", lock.text().await.unwrap());
    let owner = ("owner", server.owner_token());

    let (end, lines) = purge_as(&server, owner, "--filter 'app/web:^dev-' --ago 0", true).await;
    assert_eq!((end.exit_code, end.deleted_tags), (0, 1), "{lines:#?}");
    assert_eq!(tags(&server, "app/web").await, ["dev-1"]);

    let flags = "--filter 'app/web:^dev-' --ago 0 --include-locked";
    let (end, lines) = purge_as(&server, owner, flags, true).await;
    assert_eq!((end.exit_code, end.deleted_tags), (0, 1), "{lines:#?}");
    let host = server.url.trim_start_matches("http://");
    let unlocked = format!("Unlocked {host}/app/web:dev-1");
    let deleted = format!("Deleted {host}/app/web:dev-1");
    let at = |line: &str| lines.iter().position(|l| l == line);
    assert!(
        at(&unlocked) < at(&deleted) && at(&unlocked).is_some(),
        "{lines:#?}"
    );
    assert!(tags(&server, "app/web").await.is_empty());
}

/// Pushes `count` images created 2 days ago as `t00000…` into `repo`, 16 at a time.
async fn push_many(server: &TestServer, repo: &str, count: usize) {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .for_each_concurrent(16, |i| async move {
            push_aged(server, repo, &format!("t{i:05}"), 2).await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test --test purge_kiln_registry -- --ignored --nocapture bench"]
async fn bench_plan_and_delete_many_tags_in_kilns_registry() {
    let count: usize = std::env::var("PURGE_BENCH_TAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let server = TestServer::start().await;
    let owner = ("owner", server.owner_token());
    let mut figures = Vec::new();
    for concurrency in [8, 1] {
        let repo = format!("bench/c{concurrency}");
        let started = std::time::Instant::now();
        push_many(&server, &repo, count).await;
        eprintln!(
            "pushed {count} tags in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        // Kiln's tag times are push times: --ago 0 reaches tags pushed a moment ago.
        let flags = format!("--filter '{repo}:.*' --ago 0 --concurrency {concurrency}");
        let started = std::time::Instant::now();
        let (dry, _) = purge_as(&server, owner, &format!("{flags} --dry-run"), true).await;
        let dry_secs = started.elapsed().as_secs_f64();
        assert_eq!(dry.exit_code, 0);
        let started = std::time::Instant::now();
        let (end, lines) = purge_as(&server, owner, &flags, true).await;
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(
            (end.exit_code, end.deleted_tags),
            (0, count),
            "{:?}",
            lines.last()
        );
        figures.push((concurrency, dry_secs, secs));
    }
    for (concurrency, dry, real) in &figures {
        println!("{count} tags, --concurrency {concurrency}: dry run {dry:.2}s, purge {real:.2}s");
    }
    println!("8 / 1 = {:.2}", figures[0].2 / figures[1].2);
}
