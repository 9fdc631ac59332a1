//! Kiln's own OCI registry over real HTTP: protocol edge cases with reqwest, then real
//! clients (skopeo, docker) against a real server, and garbage collection through the API.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::docker_cli::Docker;
use common::oci::*;
use common::{unique_repo, CliRun, TestServer, REGISTRY};
use kiln::clock::ManualClock;
use reqwest::StatusCode;

#[tokio::test]
async fn chunked_upload_resumes_and_refuses_out_of_order_chunks() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let repo = "chunks/app";
    let start = http
        .post(format!("{}/v2/{repo}/blobs/uploads/", ts.url))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    assert!(!header(&start, "docker-upload-uuid").is_empty());
    let location = format!("{}{}", ts.url, header(&start, "location"));

    let patch = |range: &'static str, body: &'static [u8]| {
        http.patch(&location)
            .header("content-range", range)
            .body(body)
            .send()
    };
    let first = patch("0-4", b"hello").await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&first, "range"), "0-4");
    let skipped = patch("10-14", b"later").await.unwrap();
    assert_eq!(skipped.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let again = patch("0-4", b"hello").await.unwrap();
    assert_eq!(again.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // A client that lost track asks where the upload stands, then resumes from there.
    let status = get(&http, &location).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-4");
    assert_eq!(
        patch("5-10", b" world").await.unwrap().status(),
        StatusCode::ACCEPTED
    );

    let whole = b"hello world, bye";
    let d = digest(whole);
    let done = http
        .put(format!("{location}?digest={d}"))
        .header("content-range", "11-15")
        .body(&b", bye"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(header(&done, "docker-content-digest"), d);
    let got = get(&http, format!("{}/v2/{repo}/blobs/{d}", ts.url)).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), whole);
    // The completed session is gone.
    let gone = get(&http, &location).await;
    assert_eq!(error_code(gone).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn a_digest_mismatch_stores_nothing() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let body = b"the real content";
    let wrong = digest(b"something else");
    let resp = http
        .post(format!(
            "{}/v2/integrity/blobs/uploads/?digest={wrong}",
            ts.url
        ))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    for d in [wrong, digest(body)] {
        let head = http
            .head(format!("{}/v2/integrity/blobs/{d}", ts.url))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
        let hex = d.trim_start_matches("sha256:");
        let file = ts
            .data
            .path()
            .join("registry/blobs/sha256")
            .join(&hex[..2])
            .join(hex);
        assert!(!file.exists(), "{} was stored", file.display());
    }

    // The same through a session: completing with the wrong digest fails and drops it.
    let start = http
        .post(format!("{}/v2/integrity/blobs/uploads/", ts.url))
        .send()
        .await
        .unwrap();
    let location = format!("{}{}", ts.url, header(&start, "location"));
    let resp = http
        .put(format!("{location}?digest={}", digest(b"nope")))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    assert_eq!(get(&http, &location).await.status(), StatusCode::NOT_FOUND);
    let uploads = std::fs::read_dir(ts.data.path().join("registry/uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0, "the session's bytes were kept");
}

#[tokio::test]
async fn manifests_need_their_content_in_the_same_repository() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let (config, layer) = (
        br#"{"os":"linux","architecture":"arm64"}"#,
        b"layer".as_slice(),
    );
    push_blob(&http, &ts.url, "m/app", config).await;
    let manifest = image_manifest(config, &[layer]);
    let resp = put_manifest(&http, &ts.url, "m/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "MANIFEST_BLOB_UNKNOWN");

    // The layer pushed to another repository does not count.
    push_blob(&http, &ts.url, "m/other", layer).await;
    let resp = put_manifest(&http, &ts.url, "m/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(error_code(resp).await, "MANIFEST_BLOB_UNKNOWN");

    push_blob(&http, &ts.url, "m/app", layer).await;
    let resp = put_manifest(&http, &ts.url, "m/app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let image = digest(&serde_json::to_vec(&manifest).unwrap());
    assert_eq!(header(&resp, "docker-content-digest"), image);

    let missing = digest(b"no such manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": OCI_MANIFEST, "digest": missing, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}
        ]
    });
    let resp = put_manifest(&http, &ts.url, "m/app", "multi", OCI_INDEX, &index).await;
    assert_eq!(error_code(resp).await, "MANIFEST_BLOB_UNKNOWN");

    // A manifest PUT by digest must be that digest; a body that is not one is refused.
    let resp = put_manifest(&http, &ts.url, "m/app", &missing, OCI_MANIFEST, &manifest).await;
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    let resp = put_manifest(&http, &ts.url, "Bad/Name", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(error_code(resp).await, "NAME_INVALID");

    let got = get(&http, format!("{}/v2/m/app/manifests/v1", ts.url)).await;
    assert_eq!(header(&got, "content-type"), OCI_MANIFEST);
    assert_eq!(header(&got, "docker-content-digest"), image);
    assert_eq!(
        header(&got, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test]
async fn blobs_serve_ranges() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let d = push_blob(&http, &ts.url, "ranges", b"0123456789").await;
    let url = format!("{}/v2/ranges/blobs/{d}", ts.url);
    let ranged = |range: &'static str| http.get(&url).header("range", range).send();
    let part = ranged("bytes=2-5").await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&part, "content-range"), "bytes 2-5/10");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"2345");
    let tail = ranged("bytes=-3").await.unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), b"789");
    let past = ranged("bytes=10-").await.unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&past, "content-range"), "bytes */10");
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(header(&head, "content-length"), "10");
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_links() {
    let ts = TestServer::start().await;
    let http = ts.http();
    for tag in ["d", "a", "c", "b"] {
        push_image(&http, &ts.url, "pages/app", tag, "same").await;
    }
    push_image(&http, &ts.url, "pages/zoo", "x", "zoo").await;
    let first = get(&http, format!("{}/v2/pages/app/tags/list?n=2", ts.url)).await;
    assert_eq!(
        header(&first, "link"),
        "</v2/pages/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let body: serde_json::Value = first.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    let rest = get(
        &http,
        format!("{}/v2/pages/app/tags/list?n=2&last=b", ts.url),
    )
    .await;
    assert_eq!(header(&rest, "link"), "");
    let body: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["c", "d"]));

    let catalog = get(&http, format!("{}/v2/_catalog?n=1", ts.url)).await;
    assert_eq!(
        header(&catalog, "link"),
        "</v2/_catalog?n=1&last=pages%2Fapp>; rel=\"next\""
    );
    let body: serde_json::Value = catalog.json().await.unwrap();
    assert_eq!(body["repositories"], serde_json::json!(["pages/app"]));
    let all: serde_json::Value = get_json(&http, format!("{}/v2/_catalog", ts.url)).await;
    assert_eq!(
        all["repositories"],
        serde_json::json!(["pages/app", "pages/zoo"])
    );
    let unknown = get(&http, format!("{}/v2/pages/none/tags/list", ts.url)).await;
    assert_eq!(error_code(unknown).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn deleting_a_tag_keeps_the_manifest_deleting_a_manifest_drops_its_tags() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let d = push_image(&http, &ts.url, "del/app", "one", "x").await;
    push_image(&http, &ts.url, "del/app", "two", "x").await;
    let manifest = |r: &str| format!("{}/v2/del/app/manifests/{r}", ts.url);
    let resp = http.delete(manifest("one")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        get(&http, manifest("one")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&http, manifest("two")).await.status(), StatusCode::OK);
    assert_eq!(get(&http, manifest(&d)).await.status(), StatusCode::OK);

    assert_eq!(
        http.delete(manifest(&d)).send().await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        get(&http, manifest(&d)).await.status(),
        StatusCode::NOT_FOUND
    );
    let tags: serde_json::Value = get_json(&http, format!("{}/v2/del/app/tags/list", ts.url)).await;
    assert_eq!(tags["tags"], serde_json::json!([]));
    let resp = http.delete(manifest(&d)).send().await.unwrap();
    assert_eq!(error_code(resp).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn referrers_list_manifests_by_subject_and_filter_by_artifact_type() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let subject = push_image(&http, &ts.url, "refs/app", "v1", "subject").await;
    let empty = b"{}";
    push_blob(&http, &ts.url, "refs/app", empty).await;
    let mut pushed = Vec::new();
    for (kind, note) in [
        ("application/vnd.example.sbom", "sbom"),
        ("application/vnd.example.sig", "sig"),
    ] {
        let artifact = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": descriptor("application/vnd.oci.empty.v1+json", empty),
            "layers": [descriptor("application/vnd.oci.empty.v1+json", empty)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"note": note}
        });
        let d = digest(&serde_json::to_vec(&artifact).unwrap());
        let resp = put_manifest(&http, &ts.url, "refs/app", &d, OCI_MANIFEST, &artifact).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(header(&resp, "oci-subject"), subject);
        pushed.push(d);
    }
    let url = format!("{}/v2/refs/app/referrers/{subject}", ts.url);
    let all = get(&http, &url).await;
    assert_eq!(header(&all, "content-type"), OCI_INDEX);
    let all: serde_json::Value = all.json().await.unwrap();
    assert_eq!(all["manifests"].as_array().unwrap().len(), 2);
    let sig = get(
        &http,
        format!("{url}?artifactType=application/vnd.example.sig"),
    )
    .await;
    assert_eq!(header(&sig, "oci-filters-applied"), "artifactType");
    let sig: serde_json::Value = sig.json().await.unwrap();
    assert_eq!(
        sig["manifests"],
        serde_json::json!([{
            "mediaType": OCI_MANIFEST,
            "digest": pushed[1],
            "size": sig["manifests"][0]["size"],
            "artifactType": "application/vnd.example.sig",
            "annotations": {"note": "sig"}
        }])
    );
    let none: serde_json::Value = get_json(
        &http,
        format!("{}/v2/refs/app/referrers/{}", ts.url, digest(b"unknown")),
    )
    .await;
    assert_eq!(none["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn blobs_cross_repositories_only_by_mount() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let d = push_blob(&http, &ts.url, "team/a", b"shared layer").await;
    let in_b = format!("{}/v2/team/b/blobs/{d}", ts.url);
    assert_eq!(error_code(get(&http, &in_b).await).await, "BLOB_UNKNOWN");

    // Mounting from a repository that lacks the blob falls back to an upload session.
    let fallback = http
        .post(format!(
            "{}/v2/team/b/blobs/uploads/?mount={d}&from=team/c",
            ts.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback.status(), StatusCode::ACCEPTED);
    assert!(header(&fallback, "location").contains("/blobs/uploads/"));

    let mounted = http
        .post(format!(
            "{}/v2/team/b/blobs/uploads/?mount={d}&from=team/a",
            ts.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(
        header(&mounted, "location"),
        format!("/v2/team/b/blobs/{d}")
    );
    let got = get(&http, &in_b).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"shared layer");

    // Unlinking from one repository leaves the other's copy readable.
    let resp = http.delete(&in_b).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(get(&http, &in_b).await.status(), StatusCode::NOT_FOUND);
    let in_a = format!("{}/v2/team/a/blobs/{d}", ts.url);
    assert_eq!(get(&http, &in_a).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn gc_sweeps_old_unreferenced_blobs_and_abandoned_uploads() {
    let grace = Duration::from_secs(3600);
    let clock = ManualClock::new();
    let ts = TestServer::start_with_clock(Arc::new(clock.clone()), |a| a.gc_grace = grace).await;
    let http = ts.http();
    let old = push_blob(&http, &ts.url, "gc/app", b"old and unreferenced").await;
    let checked = push_blob(&http, &ts.url, "gc/app", b"old but just checked").await;
    push_image(&http, &ts.url, "gc/app", "v1", "kept").await;
    let abandoned = http
        .post(format!("{}/v2/gc/app/blobs/uploads/", ts.url))
        .send()
        .await
        .unwrap();
    let abandoned = format!("{}{}", ts.url, header(&abandoned, "location"));
    // What a crash mid-upload leaves behind: a temporary file no session owns.
    let stray = ts.data.path().join("registry/uploads/.tmpcrash");
    std::fs::write(&stray, b"partial").unwrap();
    clock.advance(grace + Duration::from_secs(1));
    let young = push_blob(&http, &ts.url, "gc/app", b"young").await;
    let blob = |d: &str| format!("{}/v2/gc/app/blobs/{d}", ts.url);
    // A client that checks a blob before relying on it restarts its grace.
    assert_eq!(
        http.head(blob(&checked)).send().await.unwrap().status(),
        StatusCode::OK
    );

    let gc = |dry_run: bool| {
        http.post(format!("{}/api/registry/gc", ts.url))
            .json(&serde_json::json!({ "dryRun": dry_run }))
            .send()
    };
    let dry: serde_json::Value = gc(true).await.unwrap().json().await.unwrap();
    assert_eq!(dry["blobsDeleted"], 1);
    // A download does not restart the grace (a HEAD would).
    assert_eq!(get(&http, blob(&old)).await.status(), StatusCode::OK);

    let report: serde_json::Value = gc(false).await.unwrap().json().await.unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "dryRun": false,
            "blobsDeleted": 1,
            "bytesFreed": b"old and unreferenced".len(),
            "uploadsRemoved": 2,
            // The checked blob and the young one are inside the grace period.
            "blobsKept": 2,
            "graceSecs": 3600,
            "keptUntil": report["keptUntil"],
        })
    );
    assert!(report["keptUntil"].is_string(), "{report}");
    assert!(!stray.exists());
    assert_eq!(
        http.head(blob(&old)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    for kept in [&checked, &young] {
        assert_eq!(
            http.head(blob(kept)).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let image = get(&http, format!("{}/v2/gc/app/manifests/v1", ts.url)).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(get(&http, &abandoned).await.status(), StatusCode::NOT_FOUND);
    let hex = old.trim_start_matches("sha256:");
    assert!(!ts
        .data
        .path()
        .join("registry/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .exists());
}

/// `skopeo copy` into Kiln and back out to the distribution registry keeps every digest.
#[tokio::test]
async fn skopeo_copies_a_multi_platform_index_both_ways() {
    let ts = TestServer::start().await;
    let kiln = ts.url.trim_start_matches("http://");
    let source = format!("docker://{REGISTRY}/busybox:latest");
    let inside = format!("docker://{kiln}/mirror/busybox:t");
    let back = format!("docker://{REGISTRY}/{}:t", unique_repo("from-kiln"));
    let creds = format!("owner:{}", ts.owner_token());
    skopeo_copy(&source, &inside, &["--all", "--dest-creds", &creds]).await;
    skopeo_copy(&inside, &back, &["--all", "--src-creds", &creds]).await;
    let raw = |image: String| {
        let creds = creds.clone();
        async move {
            let args = ["inspect", "--raw", "--tls-verify=false", "--creds", &creds];
            digest(&skopeo(&[&args[..], &[image.as_str()]].concat()).await)
        }
    };
    let original = raw(source).await;
    assert_eq!(raw(inside).await, original);
    assert_eq!(raw(back).await, original);
}

/// Docker pulls single- and multi-platform images from Kiln, pushes to it and runs them.
#[tokio::test]
async fn docker_pulls_pushes_and_runs_images() {
    let ts = TestServer::start().await;
    let kiln = ts.url.trim_start_matches("http://").to_string();
    let source = format!("docker://{REGISTRY}/busybox:latest");
    let multi = format!("{kiln}/docker/multi:latest");
    let single = format!("{kiln}/docker/single:latest");
    let creds = format!("owner:{}", ts.owner_token());
    skopeo_copy(
        &source,
        &format!("docker://{multi}"),
        &["--all", "--dest-creds", &creds],
    )
    .await;
    skopeo_copy(
        &source,
        &format!("docker://{single}"),
        &["--dest-creds", &creds],
    )
    .await;
    let cli = Docker::new();
    let login = cli.login(&kiln, "owner", ts.owner_token()).await;
    assert_eq!(login.code, 0, "{login:#?}");
    for image in [&multi, &single] {
        ok(cli.run(&["pull", image]).await);
    }
    let pushed = format!("{kiln}/docker/pushed:v1");
    ok(cli.run(&["tag", &single, &pushed]).await);
    ok(cli.run(&["push", &pushed]).await);
    ok(cli.run(&["rmi", &pushed, &single, &multi]).await);
    let out = ok(cli
        .run(&[
            "run",
            "--rm",
            "--pull",
            "always",
            &pushed,
            "echo",
            "ran from kiln",
        ])
        .await);
    assert_eq!(out.trim(), "ran from kiln");
    ok(cli.run(&["rmi", &pushed]).await);
}

/// The stdout of a command that must have succeeded.
fn ok(run: CliRun) -> String {
    assert_eq!(run.code, 0, "{run:#?}");
    run.stdout
}

async fn skopeo(args: &[&str]) -> Vec<u8> {
    tool("skopeo", args).await
}
