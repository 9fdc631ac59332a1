//! Scans as runs: `kiln scan` reading an image of Kiln's registry on the worker and streaming
//! its log, bad arguments and missing pull rights refused before anything is queued, and
//! `kiln scan` as a built-in `cmd` step. What the report says (matching against an imported
//! database) is the server's half; tests of it need a database in the store.

mod common;

use std::time::Duration;

use common::oci::{descriptor, image_manifest, push_blob, put_manifest, OCI_INDEX, OCI_MANIFEST};
use common::skopeo::{push_base, Variant};
use common::*;
use serde_json::{json, Value};

const METADATA: &str = "usr/lib/python3/site-packages/requests-2.19.0.dist-info/METADATA";

/// Pushes `repo:tag` to the server's registry: one gzip layer holding a Python
/// distribution's METADATA (requests 2.19.0). Returns the manifest's digest.
async fn push_python_image(server: &TestServer, repo: &str, tag: &str) -> String {
    push_python_image_for(server, repo, tag, "amd64").await.0
}

/// [`push_python_image`] for `architecture`; an empty `tag` pushes by digest. Returns the
/// digest and the manifest's bytes.
async fn push_python_image_for(
    server: &TestServer,
    repo: &str,
    tag: &str,
    architecture: &str,
) -> (String, Vec<u8>) {
    let http = server.http();
    let config = format!(
        r#"{{"os":"linux","architecture":"{architecture}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let config = config.as_bytes();
    let layer = tar_gz(&[(
        METADATA,
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n\n",
    )]);
    push_blob(&http, &server.url, repo, config).await;
    push_blob(&http, &server.url, repo, &layer).await;
    let manifest = image_manifest(config, &[&layer]);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = common::oci::digest(&bytes);
    let reference = if tag.is_empty() { &digest } else { tag };
    let resp = put_manifest(&http, &server.url, repo, reference, OCI_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    (digest, bytes)
}

/// The runs of the server, newest first, once there are `n` of them.
async fn wait_for_runs(server: &TestServer, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let list = server.get_json("/api/runs?top=1000").await;
        let runs = list["runs"].as_array().unwrap().clone();
        if runs.len() >= n {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} runs after 10s");
}

fn own_registry(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// `POST /api/runs/scan` with `words` as `token`: the status and the body.
async fn post_scan(server: &TestServer, token: &str, words: &[&str]) -> (u16, Value) {
    let body = json!({ "words": words });
    server.post_json_as(token, "/api/runs/scan", &body).await
}

#[tokio::test]
async fn bad_arguments_are_a_400_and_nothing_is_queued() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let owner = server.owner_token().to_string();
    for (words, says) in [
        (&[][..], "nothing to scan"),
        (
            &["--severity-threshold", "severe", "app:v1"][..],
            "unknown severity",
        ),
        (&["--output", "xml", "app:v1"][..], "xml"),
        (&["App:V1"][..], "lowercase"),
        (&["--filter", "app/.*", "app:v1"][..], "use it with --all"),
        (
            &["--all", "--registry", REGISTRY][..],
            "--all scans Kiln's own registry",
        ),
        (&["127.0.0.1:5000/ci/tool:3", "app:v1"][..], "its own run"),
    ] {
        let (status, body) = post_scan(&server, &owner, words).await;
        assert_eq!(status, 400, "{words:?}: {body:#}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{words:?}: {message}");
    }
    // The same rules for a `--cmd` step: a 400 naming the step's command.
    let out = server
        .kiln_output(&["run", "--cmd", "kiln scan --output xml app:v1", "/dev/null"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("invalid scan command"), "{out:#?}");
    // The CLI exits 2 on a refusal, as for any bad input.
    let out = server.kiln_output(&["scan"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("nothing to scan"), "{out:#?}");
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test]
async fn scanning_needs_pull_rights_on_every_image_named() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let mine = unique_repo("mine");
    let theirs = unique_repo("theirs");
    let puller = server.create_token("puller", &["pull"], &[&mine]).await;
    let (status, body) = post_scan(
        &server,
        &puller,
        &[&format!("{mine}:v1"), &format!("{theirs}:v1")],
    )
    .await;
    assert_eq!(status, 403, "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&theirs) && !message.contains(&mine),
        "{message}"
    );
    // A steps run needs the push role; its scan step still needs pull on what it names.
    let pusher = server.create_token("pusher", &["push"], &[&mine]).await;
    let cmd = format!("kiln scan {theirs}:v1");
    let out = server
        .kiln_output_as(&pusher, &["run", "--cmd", &cmd, "/dev/null"])
        .await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("step acb_step_0:") && out.stderr.contains(&theirs),
        "{out:#?}"
    );
    assert_eq!(server.run_count().await, 0);

    let (status, body) = post_scan(&server, &puller, &[&format!("{mine}:v1")]).await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(body["kind"], "scan", "{body:#}");
    // --all reaches what the caller may pull, through the run's credentials.
    let (status, body) = post_scan(&server, &puller, &["--all"]).await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(server.run_count().await, 2);
}

#[tokio::test]
async fn kiln_scan_reads_the_image_on_the_worker_and_streams_its_log() {
    let server = TestServer::start().await;
    let repo = unique_repo("app/web");
    let digest = push_python_image(&server, &repo, "v1").await;
    let image = format!("{}/{repo}:v1", own_registry(&server));
    let out = server.kiln_output(&["scan", &image]).await;
    assert!(
        out.stderr.contains("Queued a scan run with ID: "),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains(&format!("Scanning linux/amd64 {digest} (1 layer)")),
        "{out:#?}"
    );
    let id = out.run_id();
    let run = server.run_json(&id).await;
    assert_eq!(run["kind"], "scan", "{run:#}");
    // The exit code is the run's: 0 when it succeeded, 1 when it failed (here the database
    // has no PyPI data, so it cannot pass without --allow-missing-db).
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(run["status"], "Failed", "{run:#}");
    let steps = server.steps_of(&id).await;
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["id"], "scan");
    assert_eq!(steps[0]["type"], "scan");
    assert_eq!(steps[0]["status"], "Failed");
    let list = server.kiln_output(&["run", "list"]).await;
    let row = list.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("scan"), "{}", list.stdout);
}

#[tokio::test]
async fn kiln_scan_in_a_cmd_step_is_built_in() {
    let server = TestServer::start().await;
    let repo = unique_repo("cmd");
    let digest = push_python_image(&server, &repo, "v1").await;
    let cmd = format!("kiln scan {}/{repo}:v1", own_registry(&server));
    let out = server
        .kiln_output(&["run", "--cmd", &cmd, "/dev/null"])
        .await;
    assert!(
        out.stdout
            .contains(&format!("Scanning linux/amd64 {digest} (1 layer)")),
        "{out:#?}"
    );
    let steps = server.steps_of(&out.run_id()).await;
    assert_eq!(steps[0]["type"], "scan", "{steps:#?}");
}

#[tokio::test]
async fn without_data_for_an_ecosystem_a_scan_fails_unless_allowed() {
    let server = TestServer::start().await;
    let repo = unique_repo("nodb");
    push_python_image(&server, &repo, "v1").await;
    let image = format!("{}/{repo}:v1", own_registry(&server));
    let out = server.kiln_output(&["scan", &image]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stdout.contains("Found 1 package (pypi 1)"), "{out:#?}");
    assert!(
        out.stdout.contains("No vulnerability data for PyPI"),
        "{out:#?}"
    );
    let out = server
        .kiln_output(&["scan", &image, "--allow-missing-db"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    // The second scan found the inventory stored: it read no layer.
    assert!(
        out.stdout
            .contains("Inventory already known for this digest: no layer read"),
        "{out:#?}"
    );
    // The stored report, without scanning again.
    let out = server
        .kiln_output(&["scan", "show", &format!("{repo}:v1")])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Found 1 package (pypi 1)"), "{out:#?}");
}

#[tokio::test]
async fn an_image_in_another_registry_is_read_there_for_every_platform() {
    let server = TestServer::start().await;
    let repo = unique_repo("elsewhere");
    // The test registry's busybox: an index of linux/amd64 and linux/arm64.
    let digest = push_base(&format!("{REGISTRY}/{repo}:v1"), Variant::Index, None).await;
    let out = server
        .kiln_output(&["scan", &format!("{REGISTRY}/{repo}:v1")])
        .await;
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            out.stdout.contains(&format!("Scanning {platform} sha256:")),
            "{out:#?}"
        );
    }
    // The same index named without a host, with --registry, by digest.
    let out = server
        .kiln_output(&["scan", "--registry", REGISTRY, &format!("{repo}@{digest}")])
        .await;
    assert_eq!(out.stdout.matches("Scanning linux/").count(), 2, "{out:#?}");
}

#[tokio::test]
async fn a_push_by_tag_queues_one_scan_and_an_index_scans_every_platform() {
    let server = TestServer::start_with(|a| a.scan_on_push = true).await;
    let repo = unique_repo("pushed");
    let (amd64, amd64_bytes) = push_python_image_for(&server, &repo, "", "amd64").await;
    let (arm64, arm64_bytes) = push_python_image_for(&server, &repo, "", "arm64").await;
    let platform = |arch: &str, bytes: &[u8]| {
        let mut d = descriptor(OCI_MANIFEST, bytes);
        d["platform"] = json!({"os": "linux", "architecture": arch});
        d
    };
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        platform("amd64", &amd64_bytes), platform("arm64", &arm64_bytes)]});
    let http = server.http();
    let resp = put_manifest(&http, &server.url, &repo, "v1", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), 201);
    let index_digest = common::oci::digest(&serde_json::to_vec(&index).unwrap());

    // The children were pushed by digest: only the index's push by tag is scanned.
    let runs = wait_for_runs(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.run_count().await, 1);
    let id = runs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["kind"], "scan", "{runs:#?}");
    assert_eq!(runs[0]["trigger"], "ImagePush", "{runs:#?}");
    let run = server
        .wait_status(&id, "Failed", Duration::from_secs(60))
        .await;
    assert_eq!(run["kind"], "scan");
    let log = server.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(
        log.contains(&format!("Scanning linux/amd64 {amd64} (1 layer)")),
        "{log}"
    );
    assert!(
        log.contains(&format!("Scanning linux/arm64 {arm64} (1 layer)")),
        "{log}"
    );
    let shown = server.kiln_output(&["run", "show", &id]).await;
    assert!(shown.stdout.contains(&index_digest), "{shown:#?}");
}

#[tokio::test]
async fn a_repository_can_ask_for_scans_on_push_itself() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let repo = unique_repo("optin");
    push_python_image(&server, &repo, "v1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.run_count().await,
        0,
        "the server does not scan by default"
    );
    let out = server
        .kiln_output(&[
            "registry",
            "repository",
            "update",
            &repo,
            "--scan-on-push",
            "true",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Scan on push:   true"), "{out:#?}");
    let out = server
        .kiln_output(&["registry", "repository", "show", &repo])
        .await;
    assert!(out.stdout.contains("Scan on push:   true"), "{out:#?}");
    let digest = push_python_image_for(&server, &repo, "v2", "arm64").await.0;
    let runs = wait_for_runs(&server, 1).await;
    assert_eq!(runs[0]["kind"], "scan", "{runs:#?}");
    let id = runs[0]["id"].as_str().unwrap();
    let shown = server.kiln_output(&["run", "show", id]).await;
    assert!(shown.stdout.contains(&digest), "{shown:#?}");
    // A tag's own setting is refused: scan-on-push is the repository's.
    let out = server
        .kiln_output(&[
            "registry",
            "repository",
            "update",
            &format!("{repo}:v2"),
            "--scan-on-push",
            "false",
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("repository's setting"), "{out:#?}");
}

#[tokio::test]
async fn a_task_scans_every_repository_its_filter_picks_with_scan_all() {
    let server = TestServer::start().await;
    let prefix = unique_repo("all");
    let web = push_python_image(&server, &format!("{prefix}/web"), "v1").await;
    // Two tags of one manifest: scanned once.
    push_python_image(&server, &format!("{prefix}/web"), "latest").await;
    let api = push_python_image_for(&server, &format!("{prefix}/api"), "v1", "arm64")
        .await
        .0;
    // Outside the filter (a manifest of its own: same content would be the same digest).
    let elsewhere = unique_repo("elsewhere");
    let other = common::oci::push_image(&server.http(), &server.url, &elsewhere, "v1", "x").await;
    let cmd = format!("kiln scan --all --filter '{prefix}/.*' --severity-threshold critical");
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "rescan",
            "--context",
            "/dev/null",
            "--schedule",
            "0 3 * * *",
            "--cmd",
            &cmd,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output(&["task", "run", "--name", "rescan"])
        .await;
    let id = out.run_id();
    let steps = server.steps_of(&id).await;
    assert_eq!(steps[0]["type"], "scan", "{steps:#?}");
    let log = server.get_text(&format!("/api/runs/{id}/logs")).await;
    assert_eq!(
        log.matches(&format!("Scanning linux/amd64 {web}")).count(),
        1,
        "{log}"
    );
    assert!(
        log.contains(&format!("Scanning linux/arm64 {api}")),
        "{log}"
    );
    assert!(!log.contains(&other), "{log}");
}

#[tokio::test]
async fn attach_sbom_needs_push_rights_and_lists_the_sbom_as_a_referrer() {
    let server = TestServer::start().await;
    let repo = unique_repo("app/sbom");
    let digest = push_python_image(&server, &repo, "v1").await;
    let image = format!("{}/{repo}:v1", own_registry(&server));

    let puller = server.create_token("puller", &["pull"], &[&repo]).await;
    let (status, body) = post_scan(&server, &puller, &["--attach-sbom", &image]).await;
    assert_eq!(status, 403, "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--attach-sbom needs the push role") && message.contains(&repo),
        "{message}"
    );
    assert_eq!(server.run_count().await, 0);

    let out = server
        .kiln_output(&["scan", "--attach-sbom", "--allow-missing-db", &image])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&format!("Attached SBOM (cyclonedx) to {digest} as sha256:")))
        .unwrap_or_else(|| panic!("{out:#?}"));
    let sbom = line.rsplit(' ').next().unwrap();
    let referrers: Value = server
        .http()
        .get(format!("{}/v2/{repo}/referrers/{digest}", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{referrers:#}");
    assert_eq!(listed[0]["digest"], json!(sbom));
    assert_eq!(listed[0]["artifactType"], "application/vnd.cyclonedx+json");
}
