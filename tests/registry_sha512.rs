//! sha512 content in Kiln's registry over real HTTP: blobs pushed whole, in chunks and by
//! mount, manifests pushed and fetched by a sha512 digest, referrers of a sha512 subject, and
//! the refusals of wrong digests and unknown algorithms.

mod common;

use common::oci::*;
use common::TestServer;
use reqwest::{Client, StatusCode};
use sha2::{Digest as _, Sha512};

fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// Pushes a blob monolithically under its sha512 digest, asserting 201.
async fn push_sha512(http: &Client, base: &str, repo: &str, bytes: &[u8]) -> String {
    push_blob_as(http, base, repo, bytes, sha512(bytes)).await
}

fn descriptor512(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": sha512(bytes), "size": bytes.len() })
}

#[tokio::test]
async fn blobs_push_and_pull_by_sha512() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let body = b"content addressed by sha512";
    let d = push_sha512(&http, &ts.url, "big/app", body).await;
    let url = format!("{}/v2/big/app/blobs/{d}", ts.url);

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), body.len().to_string());
    assert_eq!(header(&head, "docker-content-digest"), d);
    let got = get(&http, &url).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), body);
    let part = http
        .get(&url)
        .header("range", "bytes=8-16")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &body[8..=16]);

    // The same bytes under sha256 are another blob, not pushed.
    let as_sha256 = get(
        &http,
        format!("{}/v2/big/app/blobs/{}", ts.url, digest(body)),
    )
    .await;
    assert_eq!(as_sha256.status(), StatusCode::NOT_FOUND);

    let deleted = http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    assert_eq!(get(&http, &url).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chunked_uploads_finish_with_a_sha512_digest_and_a_wrong_one_stores_nothing() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let start_session = || async {
        let start = http
            .post(format!("{}/v2/chunks512/app/blobs/uploads/", ts.url))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::ACCEPTED);
        format!("{}{}", ts.url, header(&start, "location"))
    };
    let whole = b"first chunk, then the last";

    // Chunks sent before the digest is known, then the sha512 digest with the last chunk.
    let location = start_session().await;
    let patch = http
        .patch(&location)
        .header("content-range", "0-11")
        .body(&whole[..12])
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    let d = sha512(whole);
    let done = http
        .put(format!("{location}?digest={d}"))
        .header("content-range", format!("12-{}", whole.len() - 1))
        .body(&whole[12..])
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        StatusCode::CREATED,
        "{}",
        done.text().await.unwrap()
    );
    assert_eq!(header(&done, "docker-content-digest"), d);
    let got = get(&http, format!("{}/v2/chunks512/app/blobs/{d}", ts.url)).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), whole);

    // A sha512 digest the bytes do not have.
    let location = start_session().await;
    let wrong = sha512(b"something else");
    let refused = http
        .put(format!("{location}?digest={wrong}"))
        .body(&whole[..])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&d) && message.contains(&wrong),
        "{message}"
    );
    let absent = get(&http, format!("{}/v2/chunks512/app/blobs/{wrong}", ts.url)).await;
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn manifests_pushed_by_sha512_are_fetched_by_it_and_list_as_referrers() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let repo = "m512/app";
    let config = br#"{"os":"linux","architecture":"amd64"}"#;
    let layer = b"a layer addressed by sha512";
    push_sha512(&http, &ts.url, repo, config).await;
    push_sha512(&http, &ts.url, repo, layer).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor512(OCI_CONFIG, config),
        "layers": [descriptor512(OCI_LAYER, layer)],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let d = sha512(&bytes);

    let pushed = put_manifest(&http, &ts.url, repo, &d, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        pushed.status(),
        StatusCode::CREATED,
        "{}",
        pushed.text().await.unwrap()
    );
    assert_eq!(header(&pushed, "docker-content-digest"), d);
    let got = get(&http, format!("{}/v2/{repo}/manifests/{d}", ts.url)).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(header(&got, "docker-content-digest"), d);
    assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[..]);

    // Pushed by tag, the canonical digest stays sha256.
    let tagged = put_manifest(&http, &ts.url, repo, "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(tagged.status(), StatusCode::CREATED);
    assert_eq!(header(&tagged, "docker-content-digest"), digest(&bytes));

    // A manifest whose bytes do not hash to the sha512 digest in the URL.
    let wrong = sha512(b"other");
    let refused = put_manifest(&http, &ts.url, repo, &wrong, OCI_MANIFEST, &manifest).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "DIGEST_INVALID");

    // An artifact whose subject is the sha512 manifest.
    let empty = b"{}";
    push_sha512(&http, &ts.url, repo, empty).await;
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/x-signature",
        "config": descriptor512("application/vnd.oci.empty.v1+json", empty),
        "layers": [],
        "subject": { "mediaType": OCI_MANIFEST, "digest": d, "size": bytes.len() },
    });
    let artifact_digest = sha512(&serde_json::to_vec(&artifact).unwrap());
    let pushed = put_manifest(
        &http,
        &ts.url,
        repo,
        &artifact_digest,
        OCI_MANIFEST,
        &artifact,
    )
    .await;
    assert_eq!(
        pushed.status(),
        StatusCode::CREATED,
        "{}",
        pushed.text().await.unwrap()
    );
    assert_eq!(header(&pushed, "oci-subject"), d);
    let index = get_json(&http, format!("{}/v2/{repo}/referrers/{d}", ts.url)).await;
    assert_eq!(index["manifests"][0]["digest"], artifact_digest, "{index}");
}

#[tokio::test]
async fn sha512_blobs_mount_across_repositories() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let body = b"shared sha512 layer";
    let d = push_sha512(&http, &ts.url, "src512/app", body).await;
    let mounted = http
        .post(format!(
            "{}/v2/dst512/app/blobs/uploads/?mount={d}&from=src512/app",
            ts.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(header(&mounted, "docker-content-digest"), d);
    let got = get(&http, format!("{}/v2/dst512/app/blobs/{d}", ts.url)).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), body);
}

#[tokio::test]
async fn unknown_algorithms_and_malformed_digests_are_refused() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let md5 = format!("md5:{}", "a".repeat(32));
    let resp = get(&http, format!("{}/v2/any/blobs/{md5}", ts.url)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("sha256 or sha512"), "{message}");

    let short = format!("sha512:{}", "a".repeat(64));
    let resp = http
        .post(format!("{}/v2/any/blobs/uploads/?digest={short}", ts.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
}
