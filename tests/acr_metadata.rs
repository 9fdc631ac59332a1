//! ACR's metadata API on the registry host (`/acr/v1/…`), as `acr purge` reads and writes it:
//! tags and manifests with times, locks, index children and referrer subjects, paginated with
//! `Link`, under the registry's credentials.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::oci::{
    descriptor, digest, header, push_blob, push_image, put_manifest, OCI_INDEX, OCI_LAYER,
    OCI_MANIFEST,
};
use common::TestServer;
use kiln::clock::ManualClock;
use reqwest::Client;

/// Every page of a list, following `Link` from `first`: the items under `key`.
async fn all_pages(
    http: &Client,
    server: &TestServer,
    first: &str,
    key: &str,
) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let resp = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let link = header(&resp, "link");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["imageName"], "app/web");
        assert_eq!(body["registry"], server.url.trim_start_matches("http://"));
        items.extend(body[key].as_array().unwrap().iter().cloned());
        next = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(url, _)| url.to_string());
        pages += 1;
    }
    assert!(pages > 1, "{first} fit one page");
    items
}

fn names(items: &[serde_json::Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

/// A manifest's bytes as stored, for its size in a descriptor.
async fn stored(http: &Client, server: &TestServer, digest: &str) -> Vec<u8> {
    let url = format!("{}/v2/app/web/manifests/{digest}", server.url);
    http.get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_manifests_page_with_times_locks_children_and_subjects() {
    let clock = ManualClock::new();
    let server = TestServer::start_with_clock(Arc::new(clock.clone()), |a| a.workers = 0).await;
    let http = server.http();
    let base = &server.url;
    // Pushed a second apart, in this order, so newest first is the reverse.
    let mut pushed = Vec::new();
    for (tag, seed) in [("b", "1"), ("a", "2"), ("d", "3"), ("c", "4")] {
        pushed.push(push_image(&http, base, "app/web", tag, seed).await);
        clock.advance(Duration::from_secs(1));
    }
    // A tagged index of the first two images, and an untagged signature of the first.
    let child = |d: &str, bytes: &[u8]| {
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": bytes.len(),
            "platform": {"os": "linux", "architecture": "amd64"}})
    };
    let (b0, b1) = (
        stored(&http, &server, &pushed[0]).await,
        stored(&http, &server, &pushed[1]).await,
    );
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [child(&pushed[0], &b0), child(&pushed[1], &b1)]});
    let resp = put_manifest(&http, base, "app/web", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), 201);
    let index_digest = digest(&serde_json::to_vec(&index).unwrap());
    push_blob(&http, base, "app/web", b"{}").await;
    push_blob(&http, base, "app/web", b"signature").await;
    let signature = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor(OCI_LAYER, b"signature")],
        "subject": {"mediaType": OCI_MANIFEST, "digest": pushed[0], "size": b0.len()}});
    let signature_digest = digest(&serde_json::to_vec(&signature).unwrap());
    let resp = put_manifest(
        &http,
        base,
        "app/web",
        &signature_digest,
        OCI_MANIFEST,
        &signature,
    )
    .await;
    assert_eq!(resp.status(), 201);

    // Tags by name, two a page; then newest first, as `acr purge` reads them.
    let tags = all_pages(&http, &server, "/acr/v1/app/web/_tags?n=2", "tags").await;
    assert_eq!(names(&tags, "name"), ["a", "b", "c", "d", "multi"]);
    let b = &tags[1];
    assert_eq!(b["digest"], pushed[0].as_str());
    assert_eq!(b["signed"], false);
    assert_eq!(
        b["changeableAttributes"],
        serde_json::json!({"deleteEnabled": true, "writeEnabled": true,
            "readEnabled": true, "listEnabled": true})
    );
    let created: chrono::DateTime<chrono::Utc> =
        b["createdTime"].as_str().unwrap().parse().unwrap();
    let updated: chrono::DateTime<chrono::Utc> =
        b["lastUpdateTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, updated);
    let newest = all_pages(
        &http,
        &server,
        "/acr/v1/app/web/_tags?n=2&orderby=timedesc",
        "tags",
    )
    .await;
    assert_eq!(names(&newest, "name"), ["multi", "c", "d", "a", "b"]);

    // Manifests by digest, with their tags, an index's children and a referrer's subject.
    let manifests = all_pages(
        &http,
        &server,
        "/acr/v1/app/web/_manifests?n=2",
        "manifests",
    )
    .await;
    let mut digests = names(&manifests, "digest");
    assert_eq!(digests.len(), 6);
    let listed = digests.clone();
    digests.sort();
    assert_eq!(listed, digests, "in digest order");
    let find = |d: &str| manifests.iter().find(|m| m["digest"] == d).unwrap().clone();
    let index = find(&index_digest);
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["tags"], serde_json::json!(["multi"]));
    let references = index["references"].as_array().unwrap();
    let mut children: Vec<String> = references
        .iter()
        .map(|r| r.as_str().unwrap().into())
        .collect();
    children.sort();
    let mut expected = vec![pushed[0].clone(), pushed[1].clone()];
    expected.sort();
    assert_eq!(children, expected);
    assert!(index.get("subject").is_none(), "{index:#}");
    let signature = find(&signature_digest);
    assert_eq!(signature["subject"], pushed[0].as_str());
    assert_eq!(signature["tags"], serde_json::json!([]));
    let image = find(&pushed[0]);
    assert_eq!(image["references"], serde_json::json!([]));
    assert!(image["imageSize"].as_u64().unwrap() > b0.len() as u64);
    assert!(image["createdTime"].is_string() && image["lastUpdateTime"].is_string());

    // Locks: PATCH as `acr purge --include-locked` does, seen in the listing, honoured by
    // DELETE of the tag.
    let tag_url = format!("{base}/acr/v1/app/web/_tags/b");
    let resp = http
        .patch(&tag_url)
        .json(&serde_json::json!({"deleteEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["changeableAttributes"]["deleteEnabled"], false);
    assert_eq!(body["changeableAttributes"]["writeEnabled"], true);
    let shown: serde_json::Value = http
        .get(&tag_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["tag"]["changeableAttributes"]["deleteEnabled"], false);
    let refused = http.delete(&tag_url).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert_eq!(
        body["errors"][0]["message"],
        "tag app/web:b is locked (deleteEnabled=false)"
    );
    let resp = http
        .patch(&tag_url)
        .json(&serde_json::json!({"deleteEnabled": true, "writeEnabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(http.delete(&tag_url).send().await.unwrap().status(), 202);
    assert_eq!(http.delete(&tag_url).send().await.unwrap().status(), 404);
    let repo: serde_json::Value = http
        .get(format!("{base}/acr/v1/app/web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repo["tagCount"], 4);
    assert_eq!(repo["changeableAttributes"]["deleteEnabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_api_takes_registry_credentials_and_needs_pull() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let base = &server.url;
    push_image(&server.http(), base, "app/web", "v1", "one").await;
    let tags = format!("{base}/acr/v1/app/web/_tags");
    let anonymous = Client::new();

    let resp = anonymous.get(&tags).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = header(&resp, "www-authenticate");
    assert!(
        challenge.contains(r#"scope="repository:app/web:pull""#),
        "{challenge}"
    );

    let outsider = server
        .create_token("outsider", &["pull"], &["other/*"])
        .await;
    let resp = server.http_as(&outsider).get(&tags).send().await.unwrap();
    assert_eq!(resp.status(), 403);

    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;
    let resp = anonymous
        .get(&tags)
        .basic_auth("reader", Some(&reader))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Reading does not allow locking.
    let resp = server
        .http_as(&reader)
        .patch(format!("{tags}/v1"))
        .json(&serde_json::json!({"deleteEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // A registry token from `/token`, as Docker-style clients use.
    let issued: serde_json::Value = anonymous
        .get(format!("{base}/token?scope=repository:app/web:pull"))
        .basic_auth("reader", Some(&reader))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["token"].as_str().unwrap();
    let resp = anonymous
        .get(&tags)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tags"][0]["name"], "v1");
    let resp = anonymous
        .get(format!("{base}/acr/v1/other/x/_tags"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let unknown = server
        .http()
        .get(format!("{base}/acr/v1/app/nothing/_tags"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A purge runs as a run: its worker reads the metadata with the run's credentials
/// (`Basic kiln-run:<password>`), which allow what the run's submitter may pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_credentials_read_the_metadata() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let base = &server.url;
    let host = base.trim_start_matches("http://");
    push_image(&server.http(), base, "app/web", "v1", "one").await;
    let (status, body) = server.upload_context(common::tar_gz_of_dockerfile()).await;
    assert_eq!(status, 201, "{body}");
    let uploaded: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run = serde_json::json!({
        "context": {"kind": "upload", "digest": uploaded["digest"]},
        "images": [format!("{host}/app/web:ci")],
    });
    server.queue_run_as(server.owner_token(), &run).await;
    let worker = server.create_token("host1", &["worker"], &[]).await;
    let lease = server.lease_as(&server.http_as(&worker), "host1").await;
    let credential = lease["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["registry"] == host)
        .unwrap_or_else(|| panic!("no credentials for {host}: {lease:#}"));
    assert_eq!(credential["username"], "kiln-run");
    let password = credential["password"].as_str().unwrap();
    let resp = Client::new()
        .get(format!("{base}/acr/v1/app/web/_manifests"))
        .basic_auth("kiln-run", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["manifests"][0]["tags"], serde_json::json!(["v1"]));
}
