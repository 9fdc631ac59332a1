//! A run remembers the token that queued it by id, not by name: a token revoked and created
//! again under the same name is a new holder and does not see the old token's runs.

mod common;

use common::*;

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

/// Queues a run that pushes nowhere (nothing builds: the server has no workers), so only
/// owners and its submitter can see it.
async fn queue(server: &TestServer, token: &str, images: &[&str]) -> String {
    let body = serde_json::json!({
        "context": {"kind": "tarball", "url": "http://127.0.0.1:1/x.tgz"},
        "images": images,
        "push": !images.is_empty(),
    });
    server.queue_run_as(token, &body).await
}

async fn listed(server: &TestServer, token: &str) -> Vec<String> {
    let list: serde_json::Value = server
        .http_as(token)
        .get(format!("{}/api/runs", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_under_a_revoked_name_does_not_see_the_old_runs() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let old = server.create_token("ci", &["push"], &["team/*"]).await;
    let private = queue(&server, &old, &[]).await;
    let shared = queue(&server, &old, &["team/web:1"]).await;
    let show = |id: &str| format!("{}/api/runs/{id}", server.url);
    assert_eq!(status(server.http_as(&old).get(show(&private))).await, 200);
    assert_eq!(
        listed(&server, &old).await,
        [shared.clone(), private.clone()]
    );

    let revoke = server.kiln_output(&["token", "revoke", "ci"]).await;
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let new = server.create_token("ci", &["push"], &["other/*"]).await;
    assert_eq!(status(server.http_as(&new).get(show(&private))).await, 403);
    assert_eq!(status(server.http_as(&new).get(show(&shared))).await, 403);
    assert!(listed(&server, &new).await.is_empty());
    let cancel = server
        .http_as(&new)
        .post(format!("{}/cancel", show(&private)));
    assert_eq!(status(cancel).await, 403);

    // Repository readers still see the runs that push to their repositories.
    let reader = server.create_token("reader", &["pull"], &["team/*"]).await;
    assert_eq!(
        status(server.http_as(&reader).get(show(&shared))).await,
        200
    );
    assert_eq!(
        status(server.http_as(&reader).get(show(&private))).await,
        403
    );
    assert_eq!(status(server.http().get(show(&private))).await, 200);
}
