//! Locks (`writeEnabled`, `deleteEnabled`) on repositories, tags and manifests, set with
//! `kiln registry repository update` and honoured by pushes and deletes through `/v2`, the
//! management API and the CLI.

mod common;

use common::oci::{get, push_image, put_manifest, OCI_MANIFEST};
use common::{CliRun, TestServer};
use reqwest::Response;

async fn kiln(server: &TestServer, args: &[&str]) -> CliRun {
    let mut full = vec!["registry", "repository"];
    full.extend_from_slice(args);
    server.kiln_output(&full).await
}

/// The bytes of a stored manifest, to push them again elsewhere.
async fn manifest_bytes(server: &TestServer, repo: &str, digest: &str) -> serde_json::Value {
    let url = format!("{}/v2/{repo}/manifests/{digest}", server.url);
    let resp = server.http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The status, OCI code and message of a refused registry request.
async fn refusal(resp: Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    let error = &body["errors"][0];
    let text = |k: &str| error[k].as_str().unwrap_or_default().to_string();
    (status, text("code"), text("message"))
}

async fn v2_delete(server: &TestServer, repo: &str, reference: &str) -> Response {
    let url = format!("{}/v2/{repo}/manifests/{reference}", server.url);
    server.http().delete(url).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_tag_is_neither_moved_nor_deleted_until_unlocked() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let http = server.http();
    let base = &server.url;
    let one = push_image(&http, base, "app/web", "v1", "one").await;
    let two = push_image(&http, base, "app/web", "v2", "two").await;

    let locked = kiln(
        &server,
        &[
            "update",
            "app/web:v1",
            "--write-enabled",
            "false",
            "--delete-enabled",
            "false",
        ],
    )
    .await;
    assert_eq!(locked.code, 0, "{locked:#?}");
    assert_eq!(
        locked.stdout,
        "Updated app/web:v1\nWrite enabled:  false\nDelete enabled: false\n"
    );

    // A push moving v1 to another manifest is refused; pushing what it names is no change.
    let other = manifest_bytes(&server, "app/web", &two).await;
    let moved = put_manifest(&http, base, "app/web", "v1", OCI_MANIFEST, &other).await;
    let (status, code, message) = refusal(moved).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"), "{message}");
    assert_eq!(message, "tag app/web:v1 is locked (writeEnabled=false)");
    let same = manifest_bytes(&server, "app/web", &one).await;
    let again = put_manifest(&http, base, "app/web", "v1", OCI_MANIFEST, &same).await;
    assert_eq!(again.status(), 201);

    // Deleting the tag, or the manifest it names (which would take the tag with it), is
    // refused through the registry and through the CLI.
    let (status, code, message) = refusal(v2_delete(&server, "app/web", "v1").await).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    assert_eq!(message, "tag app/web:v1 is locked (deleteEnabled=false)");
    let (status, _, message) = refusal(v2_delete(&server, "app/web", &one).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        message,
        format!(
            "tag app/web:v1 is locked (deleteEnabled=false), so manifest app/web@{one} cannot be deleted"
        )
    );
    let untag = kiln(&server, &["untag", "app/web:v1"]).await;
    assert_ne!(untag.code, 0, "{untag:#?}");
    assert!(
        untag
            .stderr
            .contains("tag app/web:v1 is locked (deleteEnabled=false)"),
        "{}",
        untag.stderr
    );
    for image in ["app/web:v1", "app/web"] {
        let delete = kiln(&server, &["delete", image, "--yes"]).await;
        assert_ne!(delete.code, 0, "{delete:#?}");
        assert!(delete.stderr.contains("is locked"), "{}", delete.stderr);
    }

    // The attributes show in the listings.
    let tags = kiln(&server, &["show-tags", "app/web", "--detail"]).await;
    assert_eq!(tags.code, 0, "{tags:#?}");
    let row = |tag: &str| -> Vec<String> {
        let line = tags.stdout.lines().find(|l| l.starts_with(tag)).unwrap();
        line.split_whitespace().map(str::to_string).collect()
    };
    let header: Vec<&str> = tags
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        header.ends_with(&["WRITE", "DELETE", "RUN"]),
        "{}",
        tags.stdout
    );
    assert!(
        row("v1").ends_with(&["false".into(), "false".into(), "-".into()]),
        "{}",
        tags.stdout
    );
    assert!(
        row("v2").ends_with(&["true".into(), "true".into(), "-".into()]),
        "{}",
        tags.stdout
    );
    let json = kiln(&server, &["show-tags", "app/web", "--detail", "-o", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        json[0]["changeableAttributes"],
        serde_json::json!({"deleteEnabled": false, "writeEnabled": false,
            "readEnabled": true, "listEnabled": true})
    );

    // Unlocked, the tag moves and goes.
    let unlocked = kiln(
        &server,
        &[
            "update",
            "app/web:v1",
            "--write-enabled",
            "true",
            "--delete-enabled",
            "true",
        ],
    )
    .await;
    assert_eq!(unlocked.code, 0, "{unlocked:#?}");
    let moved = put_manifest(&http, base, "app/web", "v1", OCI_MANIFEST, &other).await;
    assert_eq!(moved.status(), 201);
    let untag = kiln(&server, &["untag", "app/web:v1"]).await;
    assert_eq!(untag.code, 0, "{untag:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_manifests_and_repositories_and_who_may_lock() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let http = server.http();
    let base = &server.url;
    let one = push_image(&http, base, "app/web", "v1", "one").await;

    let locked = kiln(
        &server,
        &[
            "update",
            &format!("app/web@{one}"),
            "--delete-enabled",
            "false",
        ],
    )
    .await;
    assert_eq!(locked.code, 0, "{locked:#?}");
    let (status, code, message) = refusal(v2_delete(&server, "app/web", &one).await).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    assert_eq!(
        message,
        format!("manifest app/web@{one} is locked (deleteEnabled=false)")
    );
    let shown = kiln(&server, &["show", &format!("app/web@{one}")]).await;
    assert!(
        shown.stdout.contains("Delete enabled: false"),
        "{}",
        shown.stdout
    );
    // Untagging leaves the locked manifest in place, so it is allowed.
    assert_eq!(v2_delete(&server, "app/web", "v1").await.status(), 202);

    // A write-disabled repository takes no push at all.
    let locked = kiln(&server, &["update", "app/web", "--write-enabled", "false"]).await;
    assert_eq!(locked.code, 0, "{locked:#?}");
    let same = manifest_bytes(&server, "app/web", &one).await;
    let pushed = put_manifest(&http, base, "app/web", "v3", OCI_MANIFEST, &same).await;
    let (status, code, message) = refusal(pushed).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    assert_eq!(message, "repository app/web is locked (writeEnabled=false)");
    let shown = kiln(&server, &["show", "app/web"]).await;
    assert!(
        shown.stdout.contains("Write enabled:  false"),
        "{}",
        shown.stdout
    );

    // Locks are the delete role's to change: a pusher may not lift them.
    let pusher = server.create_token("ci", &["push"], &["app/*"]).await;
    let lift = server
        .kiln_output_as(
            &pusher,
            &[
                "registry",
                "repository",
                "update",
                "app/web",
                "--write-enabled",
                "true",
            ],
        )
        .await;
    assert_ne!(lift.code, 0, "{lift:#?}");
    assert!(
        lift.stderr
            .contains("token 'ci' may not delete repository 'app/web'"),
        "{}",
        lift.stderr
    );
    // Reading and listing are the tokens' business, not attributes.
    let api = format!("{base}/api/registry/repositories/app/web");
    let resp = http
        .patch(&api)
        .json(&serde_json::json!({"readEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http
        .patch(&api)
        .json(&serde_json::json!({"writeEnabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["changeableAttributes"]["writeEnabled"], true);
    let pushed = put_manifest(&http, base, "app/web", "v3", OCI_MANIFEST, &same).await;
    assert_eq!(pushed.status(), 201);
    let missing = get(&http, format!("{api}/_tags/nope")).await;
    assert_eq!(missing.status(), 404);
}
