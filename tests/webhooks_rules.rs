//! Git webhooks without builds: a server with no workers, so every run a delivery starts
//! stays queued where the test can look at it. Signatures (GitHub, GitLab, Gitea), bad
//! input (401, 404, 413, 400), duplicates, coalescing, branch, path and tag filters, pull
//! requests, disabled tasks and the delivery log.

mod common;

use common::webhooks::*;
use common::*;

const COMMIT_A: &str = "1111111111111111111111111111111111111111";
const COMMIT_B: &str = "2222222222222222222222222222222222222222";
const COMMIT_C: &str = "3333333333333333333333333333333333333333";
const REPO: &str = "https://git.example.com/org/app.git";

async fn no_workers() -> TestServer {
    TestServer::start_with(|a| a.workers = 0).await
}

/// A task on `context` with the commit trigger, and its webhook.
async fn hooked(server: &TestServer, name: &str, context: &str, extra: &[&str]) -> Hook {
    let mut args = vec![
        "--name",
        name,
        "--context",
        context,
        "-t",
        "web:<<.Run.Commit>>",
        "--commit-trigger-enabled",
        "true",
    ];
    args.extend_from_slice(extra);
    create_hooked_task(server, &args).await.1
}

async fn task_runs(server: &TestServer, name: &str) -> Vec<serde_json::Value> {
    let list = server.get_json(&format!("/api/tasks/{name}/runs")).await;
    list["runs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_push_queues_a_commit_run_of_exactly_that_commit_and_a_repeat_starts_nothing() {
    let server = no_workers().await;
    let (out, hook) = create_hooked_task(
        &server,
        &[
            "--name",
            "web",
            "--context",
            &format!("{REPO}#main:svc"),
            "-t",
            "web:<<.Run.Commit>>",
            "--commit-trigger-enabled",
            "true",
        ],
    )
    .await;
    assert!(
        hook.url
            .starts_with(&format!("{}/api/hooks/tasks/", server.url)),
        "{out:#?}"
    );
    assert!(
        !hook.url.contains("web"),
        "the URL names the task: {}",
        hook.url
    );
    assert_eq!(hook.secret.len(), 64);

    // `task show` gives the URL, never the secret; the database holds it sealed only.
    let shown = server.kiln_output(&["task", "show", "--name", "web"]).await;
    assert!(shown.stdout.contains(&hook.url), "{shown:#?}");
    assert!(!shown.stdout.contains(&hook.secret) && !shown.stderr.contains(&hook.secret));
    let json = server
        .kiln_output(&["task", "show", "--name", "web", "-o", "json"])
        .await;
    assert!(!json.stdout.contains(&hook.secret), "{}", json.stdout);
    assert!(!holds(&server.database_bytes(), &hook.secret));

    let push = github_push("main", COMMIT_A, &["svc/main.go"]);
    let first = send_github(&hook, "push", "d-1", &push).await;
    assert_eq!(first.status, 202, "{first:?}");
    let id = first.run_id();
    let run = server.run_json(&id).await;
    assert_eq!(run["trigger"], "Commit");
    assert_eq!(run["status"], "Queued");
    assert_eq!(run["context"], format!("{REPO}#{COMMIT_A}:svc"));
    assert_eq!(run["push"], true);
    let detail = &run["triggerDetail"];
    assert_eq!(detail["provider"], "github");
    assert_eq!(detail["event"], "push");
    assert_eq!(detail["delivery"], "d-1");
    assert_eq!(detail["commit"], COMMIT_A);
    assert_eq!(detail["branch"], "main");

    // GitHub redelivers with the same ID: nothing new, even with another commit in it.
    let again = send_github(
        &hook,
        "push",
        "d-1",
        &github_push("main", COMMIT_B, &["svc/x"]),
    )
    .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.verdict().contains("duplicate"), "{again:?}");
    assert_eq!(task_runs(&server, "web").await.len(), 1);
    assert_eq!(
        server.run_json(&id).await["context"],
        format!("{REPO}#{COMMIT_A}:svc")
    );

    let log = server
        .kiln_output(&["task", "deliveries", "--name", "web"])
        .await;
    assert_eq!(log.code, 0, "{log:#?}");
    let lines: Vec<&str> = log.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("VERDICT"),
        "{}",
        log.stdout
    );
    assert_eq!(
        lines.len(),
        2,
        "a repeat is not a second delivery: {}",
        log.stdout
    );
    assert!(
        lines[1].starts_with("d-1") && lines[1].contains("github:push"),
        "{}",
        log.stdout
    );
    assert!(
        lines[1].contains(&format!("queued run {id}")),
        "{}",
        log.stdout
    );
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_recorded_and_run_nothing() {
    let server = no_workers().await;
    let hook = hooked(&server, "web", &format!("{REPO}#main"), &[]).await;
    let push = github_push("main", COMMIT_A, &["a"]);

    let forged = Hook {
        secret: "not-the-secret".into(),
        ..hook.clone()
    };
    let answer = send_github(&forged, "push", "forged-1", &push).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    let body = serde_json::to_vec(&push).unwrap();
    let unsigned = post(
        &hook.url,
        &[
            ("x-github-event", "push".into()),
            ("x-github-delivery", "bare-1".into()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(unsigned.status, 401, "{unsigned:?}");
    let nobody = post(&hook.url, &[], body).await;
    assert_eq!(nobody.status, 401, "{nobody:?}");
    let gitlab = send_gitlab(
        &hook.url,
        "wrong",
        "Push Hook",
        "gl-1",
        &gitlab_push("main", COMMIT_A, &["a"]),
    )
    .await;
    assert_eq!(gitlab.status, 401, "{gitlab:?}");
    assert!(task_runs(&server, "web").await.is_empty());

    // Recorded, and a forged copy does not stop the real delivery with its ID.
    let log = server.get_json("/api/tasks/web/deliveries").await;
    let refused: Vec<_> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verdict"].as_str().unwrap().contains("signature"))
        .collect();
    assert_eq!(refused.len(), 4, "{log}");
    let real = send_github(&hook, "push", "forged-1", &push).await;
    assert_eq!(real.status, 202, "{real:?}");
}

#[tokio::test]
async fn unknown_hooks_huge_bodies_and_bad_json_are_refused() {
    let server = no_workers().await;
    let hook = hooked(&server, "web", &format!("{REPO}#main"), &[]).await;
    let push = github_push("main", COMMIT_A, &["a"]);

    let elsewhere = Hook {
        url: format!(
            "{}/api/hooks/tasks/0123456789abcdef0123456789abcdef",
            server.url
        ),
        ..hook.clone()
    };
    let unknown = send_github(&elsewhere, "push", "u-1", &push).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let by_name = Hook {
        url: format!("{}/api/hooks/tasks/web", server.url),
        ..hook.clone()
    };
    let named = send_github(&by_name, "push", "u-2", &push).await;
    assert_eq!((named.status, &named.body), (404, &unknown.body));

    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let signature = format!("sha256={}", hmac_hex(&hook.secret, &huge));
    let too_large = post(
        &hook.url,
        &[
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", signature),
        ],
        huge,
    )
    .await;
    assert_eq!(too_large.status, 413, "{:?}", too_large.status);

    let bad = b"{\"ref\": \"refs/heads/main\", ".to_vec();
    let signature = format!("sha256={}", hmac_hex(&hook.secret, &bad));
    let malformed = post(
        &hook.url,
        &[
            ("x-github-event", "push".into()),
            ("x-github-delivery", "m-1".into()),
            ("x-hub-signature-256", signature),
        ],
        bad,
    )
    .await;
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{malformed:?}"
    );

    let ping = send_github(&hook, "ping", "p-1", &fixture("github_ping")).await;
    assert_eq!(ping.status, 200, "{ping:?}");
    assert!(ping.verdict().contains("ping"), "{ping:?}");
    assert!(task_runs(&server, "web").await.is_empty());
}

#[tokio::test]
async fn a_burst_of_pushes_to_a_branch_leaves_one_queued_run_of_the_newest_commit() {
    let server = no_workers().await;
    let hook = hooked(&server, "web", &format!("{REPO}#main"), &[]).await;
    let first = send_github(&hook, "push", "b-1", &github_push("main", COMMIT_A, &["a"])).await;
    assert_eq!(first.status, 202, "{first:?}");
    let id = first.run_id();
    for (delivery, commit) in [("b-2", COMMIT_B), ("b-3", COMMIT_C)] {
        let next = send_github(
            &hook,
            "push",
            delivery,
            &github_push("main", commit, &["a"]),
        )
        .await;
        assert_eq!(next.status, 202, "{next:?}");
        assert_eq!(next.run_id(), id);
        assert!(
            next.verdict().contains(&format!("coalesced into run {id}")),
            "{next:?}"
        );
    }
    let runs = task_runs(&server, "web").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = server.run_json(&id).await;
    assert_eq!(run["context"], format!("{REPO}#{COMMIT_C}"));
    assert_eq!(run["triggerDetail"]["commit"], COMMIT_C);
    assert_eq!(run["triggerDetail"]["delivery"], "b-3");

    // Another branch is another run (the task builds main, so use a glob that takes both).
    let hook2 = hooked(
        &server,
        "rel",
        &format!("{REPO}#main"),
        &["--trigger-branch", "release/*"],
    )
    .await;
    let one = send_github(
        &hook2,
        "push",
        "r-1",
        &github_push("release/1", COMMIT_A, &["a"]),
    )
    .await;
    let two = send_github(
        &hook2,
        "push",
        "r-2",
        &github_push("release/2", COMMIT_B, &["a"]),
    )
    .await;
    assert_eq!((one.status, two.status), (202, 202));
    assert_ne!(one.run_id(), two.run_id());

    // A run a worker took meanwhile is left alone: the next push queues a new one.
    let worker = server.create_token("w1", &["worker"], &[]).await;
    let lease = server.lease_as(&server.http_as(&worker), "w1").await;
    assert_eq!(lease["runId"], id.as_str());
    // The worker is handed the newest commit.
    assert_eq!(lease["job"]["context"]["reference"], COMMIT_C);
    let after = send_github(&hook, "push", "b-4", &github_push("main", COMMIT_A, &["a"])).await;
    assert_eq!(after.status, 202, "{after:?}");
    assert_ne!(after.run_id(), id);
    assert_eq!(task_runs(&server, "web").await.len(), 2);
}

#[tokio::test]
async fn branch_path_and_tag_filters_say_why_nothing_ran() {
    let server = no_workers().await;
    let hook = hooked(&server, "web", &format!("{REPO}#main:svc"), &[]).await;
    let cases = [
        (
            github_push("dev", COMMIT_A, &["svc/a"]),
            "not to the task's branch 'main'",
        ),
        (
            github_push("main", COMMIT_A, &["docs/readme.md"]),
            "touches no path matching svc/**",
        ),
        (
            fixture("github_push_tag_deleted"),
            "tag trigger is disabled",
        ),
    ];
    for (i, (push, why)) in cases.iter().enumerate() {
        let answer = send_github(&hook, "push", &format!("f-{i}"), push).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.verdict().contains(why),
            "{answer:?} should say {why}"
        );
    }
    let mut deleted = github_push("main", "0000000000000000000000000000000000000000", &[]);
    deleted["deleted"] = true.into();
    let answer = send_github(&hook, "push", "f-del", &deleted).await;
    assert!(
        answer.verdict().contains("branch 'main' deleted"),
        "{answer:?}"
    );
    assert!(task_runs(&server, "web").await.is_empty());

    // Explicit paths replace the subdir; tags run once enabled.
    let out = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "web",
            "--trigger-path",
            "docs/**",
            "--tag-trigger-enabled",
            "true",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        !out.stdout.contains("Webhook secret:"),
        "an update shows no secret: {out:#?}"
    );
    let docs = send_github(
        &hook,
        "push",
        "f-docs",
        &github_push("main", COMMIT_A, &["docs/readme.md"]),
    )
    .await;
    assert_eq!(docs.status, 202, "{docs:?}");
    let mut tag = fixture("github_push_tag_deleted");
    tag["deleted"] = false.into();
    tag["after"] = COMMIT_B.into();
    let tagged = send_github(&hook, "push", "f-tag", &tag).await;
    assert_eq!(tagged.status, 202, "{tagged:?}");
    assert_eq!(
        server.run_json(&tagged.run_id()).await["triggerDetail"]["tag"],
        "simple-tag"
    );

    // A disabled task answers 200 with why.
    let out = server
        .kiln_output(&["task", "update", "--name", "web", "--status", "Disabled"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let off = send_github(
        &hook,
        "push",
        "f-off",
        &github_push("main", COMMIT_C, &["docs/x"]),
    )
    .await;
    assert_eq!(off.status, 200, "{off:?}");
    assert!(off.verdict().contains("disabled"), "{off:?}");
    assert_eq!(task_runs(&server, "web").await.len(), 2);
}

#[tokio::test]
async fn gitlab_and_gitea_pushes_and_pull_requests_queue_runs() {
    let server = no_workers().await;
    let hook = hooked(
        &server,
        "web",
        &format!("{REPO}#main"),
        &["--pull-request-trigger-enabled", "true"],
    )
    .await;

    let gl = send_gitlab(
        &hook.url,
        &hook.secret,
        "Push Hook",
        "gl-1",
        &gitlab_push("main", COMMIT_A, &["x"]),
    )
    .await;
    assert_eq!(gl.status, 202, "{gl:?}");
    let run = server.run_json(&gl.run_id()).await;
    assert_eq!(
        (
            run["trigger"].as_str(),
            run["triggerDetail"]["provider"].as_str()
        ),
        (Some("Commit"), Some("gitlab"))
    );
    assert_eq!(run["context"], format!("{REPO}#{COMMIT_A}"));

    let gitea = send_gitea(
        &hook,
        "push",
        "gt-1",
        &github_push("main", COMMIT_B, &["x"]),
    )
    .await;
    assert_eq!(gitea.status, 202, "{gitea:?}");
    assert_eq!(gitea.run_id(), gl.run_id(), "coalesced into the queued run");
    assert_eq!(
        server.run_json(&gl.run_id()).await["triggerDetail"]["provider"],
        "gitea"
    );

    // A pull request into main runs its head without pushing; one into dev does not run.
    let mut pr = fixture("github_pull_request");
    pr["pull_request"]["base"]["ref"] = "main".into();
    let opened = send_github(&hook, "pull_request", "pr-1", &pr).await;
    assert_eq!(opened.status, 202, "{opened:?}");
    let run = server.run_json(&opened.run_id()).await;
    assert_eq!(run["trigger"], "PullRequest");
    assert_eq!(run["push"], false);
    assert_eq!(run["triggerDetail"]["branch"], "changes");
    assert_eq!(run["triggerDetail"]["pullRequest"], 2);
    assert_eq!(
        run["context"],
        format!("{REPO}#ec26c3e57ca3a959ca5aad62de7213c562f8c821")
    );
    let closed = {
        pr["action"] = "closed".into();
        send_github(&hook, "pull_request", "pr-2", &pr).await
    };
    assert_eq!(closed.status, 200, "{closed:?}");

    let mut mr = fixture("gitlab_merge_request");
    mr["object_attributes"]["target_branch"] = "main".into();
    let merge = send_gitlab(&hook.url, &hook.secret, "Merge Request Hook", "mr-1", &mr).await;
    assert_eq!(merge.status, 202, "{merge:?}");
    assert_eq!(
        server.run_json(&merge.run_id()).await["triggerDetail"]["branch"],
        "ms-viewport"
    );
}

#[tokio::test]
async fn triggers_need_a_git_context_and_valid_globs_and_secrets_rotate() {
    let server = no_workers().await;
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "t",
            "--context",
            "https://example.com/c.tar.gz",
            "--commit-trigger-enabled",
            "true",
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("git context"), "{out:#?}");
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "t",
            "--context",
            &format!("{REPO}#main"),
            "--commit-trigger-enabled",
            "true",
            "--trigger-path",
            "svc/[a",
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("svc/[a"), "{out:#?}");
    assert!(server.get_json("/api/tasks").await["tasks"]
        .as_array()
        .unwrap()
        .is_empty());

    let hook = hooked(&server, "web", &format!("{REPO}#main"), &[]).await;
    let out = server
        .kiln_output(&["task", "update", "--name", "web", "--rotate-webhook-secret"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let new_secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Webhook secret:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_secret, hook.secret);
    assert!(out.stdout.contains(&hook.url), "the URL stays: {out:#?}");
    let old = send_github(&hook, "push", "o-1", &github_push("main", COMMIT_A, &["a"])).await;
    assert_eq!(old.status, 401, "{old:?}");
    let new = Hook {
        secret: new_secret,
        ..hook
    };
    let ok = send_github(&new, "push", "o-2", &github_push("main", COMMIT_A, &["a"])).await;
    assert_eq!(ok.status, 202, "{ok:?}");
}
