//! Who may read an uploaded build context: owners, its uploaders, and whoever can see a run
//! that builds it. Everyone else gets the 404 of an unknown digest, so a context's existence
//! is not revealed either.

mod common;

use common::*;

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

/// `kiln build --no-wait` as `token`: the queued run's context digest and the CLI's stderr.
async fn build(server: &TestServer, token: &str, image: &str, dir: &str) -> (String, String) {
    let out = server
        .kiln_output_as(
            token,
            &["build", "--no-wait", "-o", "json", "-t", image, dir],
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let run: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let run = server.run_json(run["id"].as_str().unwrap()).await;
    (
        run["contextDigest"].as_str().unwrap().to_string(),
        out.stderr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_is_readable_only_by_those_who_can_see_a_run_that_used_it() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let submitter = server
        .create_token("other-ci", &["push"], &["other/*"])
        .await;
    let app_reader = server
        .create_token("app-reader", &["pull"], &["app/*"])
        .await;
    let app_ci = server.create_token("app-ci", &["push"], &["app/*"]).await;
    let other_reader = server
        .create_token("other-reader", &["pull"], &["other/*"])
        .await;
    let dir = context(&[
        ("Dockerfile", "FROM busybox\n"),
        ("secret.txt", "hunter2\n"),
    ]);
    let dir = dir.path().to_str().unwrap();
    let (digest, _) = build(&server, &submitter, "other/x:1", dir).await;
    let url = format!("{}/api/contexts/{digest}", server.url);

    for token in [server.owner_token(), &submitter, &other_reader] {
        assert_eq!(status(server.http_as(token).get(&url)).await, 200);
    }
    // Not 403: a refusal would confirm that this content was uploaded.
    let resp = server.http_as(&app_reader).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        format!("build context {digest} not found")
    );
    assert_eq!(status(server.http_as(&app_ci).head(&url)).await, 404);

    // Knowing the digest is not enough to build it: the run is refused as for an unknown one.
    let run = serde_json::json!({"context": {"kind": "upload", "digest": digest}});
    let queue = server
        .http_as(&app_ci)
        .post(format!("{}/api/runs", server.url));
    assert_eq!(status(queue.json(&run)).await, 400);

    // The submitter's next build of the same folder skips the upload; another token's build
    // uploads it again, and may then read it as its uploader.
    let (_, again) = build(&server, &submitter, "other/x:2", dir).await;
    assert!(again.contains("unchanged since its last upload"), "{again}");
    let (same, fresh) = build(&server, &app_ci, "app/y:1", dir).await;
    assert_eq!(same, digest);
    assert!(!fresh.contains("unchanged"), "{fresh}");
    assert_eq!(status(server.http_as(&app_ci).get(&url)).await, 200);
    // And the app reader now sees a run that builds it.
    assert_eq!(status(server.http_as(&app_reader).get(&url)).await, 200);
}
