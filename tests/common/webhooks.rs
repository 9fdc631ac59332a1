//! Sending git webhook deliveries to a test server as GitHub, GitLab and Gitea do: the
//! providers' documented sample payloads (tests/fixtures/webhooks), signed in the test.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{CliRun, TestServer};

/// A task's webhook as `kiln task create` printed it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub url: String,
    pub secret: String,
}

/// What the endpoint answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn run_id(&self) -> String {
        self.body["runId"]
            .as_str()
            .unwrap_or_else(|| panic!("no run ID in {self:?}"))
            .to_string()
    }

    pub fn verdict(&self) -> &str {
        self.body["verdict"].as_str().unwrap_or_default()
    }
}

/// A sample payload from tests/fixtures/webhooks.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// GitHub's sample push, moved to `branch` at `commit`, touching `paths`.
pub fn github_push(branch: &str, commit: &str, paths: &[&str]) -> Value {
    let mut push = fixture("github_push");
    push["ref"] = format!("refs/heads/{branch}").into();
    push["after"] = commit.into();
    push["commits"][0]["id"] = commit.into();
    push["commits"][0]["added"] = paths.to_vec().into();
    push["commits"][0]["modified"] = Value::Array(Vec::new());
    push
}

/// GitLab's sample push, moved to `branch` at `commit`, touching `paths`.
pub fn gitlab_push(branch: &str, commit: &str, paths: &[&str]) -> Value {
    let mut push = fixture("gitlab_push");
    push["ref"] = format!("refs/heads/{branch}").into();
    push["after"] = commit.into();
    push["checkout_sha"] = commit.into();
    push["commits"] =
        serde_json::json!([{"id": commit, "added": paths, "modified": [], "removed": []}]);
    push["total_commits_count"] = 1.into();
    push
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Creates a task with `kiln task create` and the webhook it printed.
pub async fn create_hooked_task(server: &TestServer, args: &[&str]) -> (CliRun, Hook) {
    let mut full = vec!["task", "create"];
    full.extend_from_slice(args);
    let out = server.kiln_output(&full).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let field = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out:#?}"))
            .trim()
            .to_string()
    };
    let hook = Hook {
        url: field("Webhook URL:"),
        secret: field("Webhook secret:"),
    };
    (out, hook)
}

/// POSTs `body` to `url` with `headers`.
pub async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

/// A GitHub delivery of `event`, signed with `secret`.
pub async fn send_github(hook: &Hook, event: &str, delivery: &str, payload: &Value) -> Answer {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = format!("sha256={}", hmac_hex(&hook.secret, &body));
    post(
        &hook.url,
        &[
            ("x-github-event", event.to_string()),
            ("x-github-delivery", delivery.to_string()),
            ("x-hub-signature-256", signature),
        ],
        body,
    )
    .await
}

/// A GitLab delivery of `event` (`Push Hook`...), with `token` as its `X-Gitlab-Token`.
pub async fn send_gitlab(
    url: &str,
    token: &str,
    event: &str,
    delivery: &str,
    payload: &Value,
) -> Answer {
    post(
        url,
        &[
            ("x-gitlab-event", event.to_string()),
            ("x-gitlab-event-uuid", delivery.to_string()),
            ("x-gitlab-token", token.to_string()),
        ],
        serde_json::to_vec(payload).unwrap(),
    )
    .await
}

/// A Gitea delivery of `event`, signed with `secret`, with the GitHub headers Gitea adds.
pub async fn send_gitea(hook: &Hook, event: &str, delivery: &str, payload: &Value) -> Answer {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = hmac_hex(&hook.secret, &body);
    post(
        &hook.url,
        &[
            ("x-gitea-event", event.to_string()),
            ("x-gitea-delivery", delivery.to_string()),
            ("x-gitea-signature", signature.clone()),
            ("x-github-event", event.to_string()),
            ("x-github-delivery", delivery.to_string()),
            ("x-hub-signature-256", format!("sha256={signature}")),
        ],
        body,
    )
    .await
}
