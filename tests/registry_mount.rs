//! Cross-repository mounts through Docker's token protocol: the challenge names the source's
//! pull scope as well as the target's, so a client that takes its scopes from the challenge
//! gets a token that mounts.

mod common;

use common::oci::{header, push_blob};
use common::TestServer;

async fn registry_only() -> TestServer {
    TestServer::start_with(|a| {
        a.registry = None;
        a.workers = 0;
    })
    .await
}

/// The `scope="…"` value of a `WWW-Authenticate` challenge.
fn challenge_scope(challenge: &str) -> String {
    let start = challenge.find(r#"scope=""#).expect("challenge has a scope") + 7;
    let len = challenge[start..].find('"').expect("scope is quoted");
    challenge[start..start + len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_challenge_names_the_source_and_its_token_mounts() {
    let server = registry_only().await;
    let digest = push_blob(&server.http(), &server.url, "lib/base", b"base layer").await;
    let http = reqwest::Client::new();
    let mount = format!(
        "{}/v2/app/web/blobs/uploads/?mount={digest}&from=lib/base",
        server.url
    );
    let token_for = |scope: String| {
        let req = http
            .get(format!("{}/token", server.url))
            .query(&[("scope", scope)])
            .basic_auth("owner", Some(server.owner_token()));
        async move {
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["token"].as_str().unwrap().to_string()
        }
    };

    // Anonymous: the challenge asks for both scopes, space-separated in one value.
    let resp = http.post(&mount).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let scope = challenge_scope(&header(&resp, "www-authenticate"));
    assert_eq!(
        scope,
        "repository:app/web:pull,push repository:lib/base:pull"
    );

    // A token for the target alone is challenged again, for both.
    let narrow = token_for("repository:app/web:pull,push".into()).await;
    let resp = http.post(&mount).bearer_auth(&narrow).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = header(&resp, "www-authenticate");
    assert_eq!(challenge_scope(&challenge), scope);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );

    // The token the challenge asked for mounts: 201, no upload.
    let both = token_for(scope).await;
    let resp = http.post(&mount).bearer_auth(&both).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    let got = http
        .get(format!("{}/v2/app/web/blobs/{digest}", server.url))
        .bearer_auth(&both)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"base layer");
}

/// A holder who may never read the source gets an upload session, as if the source did not
/// hold the blob: no challenge that would tell it otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_the_holder_may_not_read_gets_an_upload_session() {
    let server = registry_only().await;
    let digest = push_blob(&server.http(), &server.url, "secret/base", b"hidden layer").await;
    let pusher = server.create_token("pusher", &["push"], &["app/*"]).await;
    let resp = server
        .http_as(&pusher)
        .post(format!(
            "{}/v2/app/web/blobs/uploads/?mount={digest}&from=secret/base",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(header(&resp, "location").starts_with("/v2/app/web/blobs/uploads/"));
}

/// A mount without `from` takes the blob from any repository the holder may pull, and from
/// no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_without_a_source_finds_one_the_holder_may_pull() {
    let server = registry_only().await;
    let readable = push_blob(&server.http(), &server.url, "lib/base", b"public layer").await;
    let hidden = push_blob(&server.http(), &server.url, "secret/x", b"hidden layer").await;
    let pusher = server
        .create_token("pusher", &["push"], &["app/*", "lib/*"])
        .await;
    let mount = |digest: &str| {
        server
            .http_as(&pusher)
            .post(format!(
                "{}/v2/app/web/blobs/uploads/?mount={digest}",
                server.url
            ))
            .send()
    };
    let resp = mount(&readable).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "docker-content-digest"), readable);
    let resp = mount(&hidden).await.unwrap();
    assert_eq!(resp.status(), 202);
}
