//! Who may do what with saved tasks: owners and tokens with the tasks role manage them, any
//! reading token sees them, and running one needs push rights on what it pushes.

mod common;

use common::*;

const GIT: &str = "https://git.example.com/app.git#main";

async fn status_of(resp: reqwest::RequestBuilder) -> (u16, String) {
    let resp = resp.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn only_owners_and_the_tasks_role_manage_tasks() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let tasks = format!("{}/api/tasks", server.url);
    let body = serde_json::json!({"name": "web", "context": GIT, "images": ["web:v1"]});
    let (code, text) = status_of(server.http().post(&tasks).json(&body)).await;
    assert_eq!(code, 201, "{text}");

    let push = server.create_token("ci", &["push"], &["*"]).await;
    let pull = server.create_token("reader", &["pull"], &["*"]).await;
    for token in [&push, &pull] {
        let http = server.http_as(token);
        let other = serde_json::json!({"name": "other", "context": GIT});
        let (code, text) = status_of(http.post(&tasks).json(&other)).await;
        assert_eq!(code, 403, "{text}");
        assert!(text.contains("needs the owner or tasks role"), "{text}");
        let change = serde_json::json!({"values": {"a": "b"}});
        let (code, _) = status_of(http.patch(format!("{tasks}/web")).json(&change)).await;
        assert_eq!(code, 403);
        let (code, _) = status_of(http.delete(format!("{tasks}/web"))).await;
        assert_eq!(code, 403);
        // Reading needs only read.
        let (code, text) = status_of(http.get(format!("{tasks}/web"))).await;
        assert_eq!(code, 200, "{text}");
        let (code, _) = status_of(http.get(&tasks)).await;
        assert_eq!(code, 200);
    }
    let out = server
        .kiln_output_as(&push, &["task", "create", "--name", "x", "--context", GIT])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("may not manage tasks"),
        "{}",
        out.stderr
    );

    let (code, _) = status_of(reqwest::Client::new().get(&tasks)).await;
    assert_eq!(code, 401);

    // The tasks role manages tasks.
    let manager = server.create_token("tasks-admin", &["tasks"], &["*"]).await;
    let out = server
        .kiln_output_as(
            &manager,
            &["task", "create", "--name", "x", "--context", GIT],
        )
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("token 'tasks-admin'"), "{}", out.stdout);
    let out = server
        .kiln_output_as(
            &manager,
            &["task", "update", "--name", "web", "--set", "a=b"],
        )
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output_as(&manager, &["task", "delete", "--name", "x"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test]
async fn running_a_task_needs_push_on_what_it_pushes() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "web",
            "--context",
            GIT,
            "-t",
            "web:v1",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let runs = format!("{}/api/tasks/web/runs", server.url);

    let pull = server.create_token("reader", &["pull"], &["*"]).await;
    let elsewhere = server.create_token("other", &["push"], &["other/*"]).await;
    let manager = server.create_token("mgr", &["tasks"], &["*"]).await;
    for token in [&pull, &elsewhere, &manager] {
        let (code, text) = status_of(
            server
                .http_as(token)
                .post(&runs)
                .json(&serde_json::json!({})),
        )
        .await;
        assert_eq!(code, 403, "{text}");
    }
    assert_eq!(server.run_count().await, 0);

    let pusher = server.create_token("web-ci", &["push"], &["web"]).await;
    let out = server
        .kiln_output_as(&pusher, &["task", "run", "--name", "web", "--no-wait"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(server.run_count().await, 1);
    let id = out.stdout.trim();
    // Its runs are listed to whoever may read them.
    let listed = server.get_json("/api/tasks/web/runs").await;
    assert_eq!(listed["runs"][0]["id"], id);
    assert_eq!(listed["runs"][0]["trigger"], "Manual");
}
