//! Saved tasks through the real CLI and server: create, list, show (secrets as ***), update,
//! delete, secrets sealed in the database, and every bad definition refused with nothing
//! stored.

mod common;

use common::*;

const SECRET_ARG: &str = "secretarg-4c1d9e";
const SECRET_VALUE: &str = "secretvalue-7a2b3f";
const GIT_TOKEN: &str = "gittoken-0e5c88";

async fn server() -> TestServer {
    TestServer::start_with(|a| a.workers = 0).await
}

async fn task_names(server: &TestServer) -> Vec<String> {
    let out = server.kiln_output(&["task", "list", "-o", "json"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn show_json(server: &TestServer, name: &str) -> serde_json::Value {
    let out = server
        .kiln_output(&["task", "show", "--name", name, "-o", "json"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test]
async fn tasks_are_created_listed_shown_updated_and_deleted() {
    let server = server().await;
    let secret_arg = format!("S={SECRET_ARG}");
    let secret_value = format!("pw={SECRET_VALUE}");
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "web",
            "--context",
            "https://git.example.com/app.git#main",
            "-t",
            "web:<<.Run.ID>>",
            "-t",
            "web:latest",
            "--arg",
            "A=1",
            "--secret-arg",
            &secret_arg,
            "--set",
            "env=prod",
            "--set-secret",
            &secret_value,
            "--git-access-token",
            GIT_TOKEN,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains("Kind:            build"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("S=***") && out.stdout.contains("pw=***"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Git token:       ***"),
        "{}",
        out.stdout
    );
    for secret in [SECRET_ARG, SECRET_VALUE, GIT_TOKEN] {
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
    }

    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "ci",
            "--context",
            "https://git.example.com/app.git#main",
            "--file",
            "ci/acb.yaml",
            "--set",
            "env=prod",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            "hello",
            "--cmd",
            "busybox echo hi",
            "--context",
            "/dev/null",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");

    assert_eq!(task_names(&server).await, ["ci", "hello", "web"]);
    let table = server.kiln_output(&["task", "list"]).await;
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    assert!(table.stdout.contains("steps"), "{}", table.stdout);
    assert!(table.stdout.contains("busybox echo hi"), "{}", table.stdout);

    let web = show_json(&server, "web").await;
    assert_eq!(web["kind"], "build");
    assert_eq!(web["status"], "Enabled");
    assert_eq!(
        web["images"],
        serde_json::json!(["web:<<.Run.ID>>", "web:latest"])
    );
    assert_eq!(web["secretArgs"]["S"], "***");
    assert_eq!(web["secretValues"]["pw"], "***");
    assert_eq!(web["gitAccessToken"], "***");
    assert_eq!(web["values"]["env"], "prod");
    assert_eq!(web["createdBy"], "token 'owner'");
    assert_eq!(show_json(&server, "hello").await["kind"], "cmd");
    // Names are one regardless of case, as ACR's are.
    assert_eq!(show_json(&server, "WEB").await["name"], "web");

    // The secrets are in the database only sealed.
    let db = server.database_bytes();
    assert!(holds(&db, "web:latest"), "the database holds the task");
    for secret in [SECRET_ARG, SECRET_VALUE, GIT_TOKEN] {
        assert!(!holds(&db, secret), "{secret} is stored in plain text");
    }

    // Only the flags given change; --set merges, --unset removes.
    let out = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "web",
            "--set",
            "env=staging",
            "--set",
            "tag=v2",
            "--unset",
            "A",
            "--status",
            "disabled",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let web = show_json(&server, "web").await;
    assert_eq!(
        web["values"],
        serde_json::json!({"env": "staging", "tag": "v2"})
    );
    assert_eq!(web["args"], serde_json::json!({}));
    assert_eq!(web["secretArgs"]["S"], "***");
    assert_eq!(web["secretValues"]["pw"], "***");
    assert_eq!(web["status"], "Disabled");
    assert_eq!(
        web["images"],
        serde_json::json!(["web:<<.Run.ID>>", "web:latest"])
    );
    let out = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "web",
            "-t",
            "web:v3",
            "--no-push",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let web = show_json(&server, "web").await;
    assert_eq!(web["images"], serde_json::json!(["web:v3"]));
    assert_eq!(web["push"], false);
    assert_eq!(web["status"], "Disabled");

    let out = server
        .kiln_output(&["task", "delete", "--name", "web"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server.kiln_output(&["task", "show", "--name", "web"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("task 'web' not found"),
        "{}",
        out.stderr
    );
    assert_eq!(task_names(&server).await, ["ci", "hello"]);
}

#[tokio::test]
async fn bad_definitions_are_refused_and_nothing_is_stored() {
    let server = server().await;
    let git = "https://git.example.com/app.git#main";
    let ok = server
        .kiln_output(&["task", "create", "--name", "web", "--context", git])
        .await;
    assert_eq!(ok.code, 0, "{ok:#?}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let list = write(dir.path(), "list.yaml", "- a\n- b\n");
    let (missing, list) = (missing.to_str().unwrap(), list.to_str().unwrap());

    let cases: &[(&[&str], &str)] = &[
        (
            &["--name", "web", "--context", git],
            "task 'web' already exists",
        ),
        (
            &["--name", "WEB", "--context", git],
            "task 'WEB' already exists",
        ),
        (
            &["--name", "bad name", "--context", git],
            "invalid task name 'bad name'",
        ),
        (
            &["--name", &"x".repeat(51), "--context", git],
            "invalid task name",
        ),
        (
            &["--name", "t1", "--context", "ftp://host/ctx.tar"],
            "invalid context 'ftp://host/ctx.tar'",
        ),
        (
            &["--name", "t1", "--context", "./local"],
            "invalid context './local'",
        ),
        (
            &["--name", "t1", "--context", "file:///srv/app.git"],
            "invalid context",
        ),
        (
            &[
                "--name",
                "t1",
                "--context",
                "https://git.example.com/app.git#main:../up",
            ],
            "invalid git context: the build context folder",
        ),
        (
            &["--name", "t1", "--context", git, "--values", missing],
            "cannot read the --values file",
        ),
        (
            &["--name", "t1", "--context", git, "--values", list],
            "invalid --values file",
        ),
        (&["--name", "t1", "--context", "/dev/null"], "give --cmd"),
        (
            &[
                "--name",
                "t1",
                "--context",
                git,
                "--cmd",
                "busybox true",
                "-f",
                "x.yaml",
            ],
            "cannot go together",
        ),
        (
            &[
                "--name",
                "t1",
                "--context",
                "/dev/null",
                "--cmd",
                "busybox true",
                "-t",
                "a:b",
            ],
            "only go with a Dockerfile",
        ),
        (
            &["--name", "t1", "--context", git, "--timeout", "99999"],
            "invalid timeout",
        ),
        (
            &["--name", "t1", "--context", git, "-t", "App:v1"],
            "invalid",
        ),
        (
            &["--name", "t1", "--context", git, "-t", "app:<<.Run.Nope>>"],
            "unknown template variable",
        ),
        (
            &["--name", "t1", "--context", git, "-f", "../Dockerfile"],
            "invalid dockerfile path",
        ),
        (
            &["--name", "t1", "--context", git, "--set", "novalue"],
            "invalid --set 'novalue'",
        ),
        (
            &["--name", "t1", "--context", git, "--status", "Paused"],
            "invalid task status 'Paused'",
        ),
        (
            &[
                "--name",
                "t1",
                "--context",
                "/dev/null",
                "--cmd",
                "busybox true",
                "--git-access-token",
                "x",
            ],
            "git access token only goes with a git context",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["task", "create"];
        full.extend_from_slice(args);
        let out = server.kiln_output(&full).await;
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    let out = server
        .kiln_output(&["task", "update", "--name", "web", "--unset", "nothing"])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("cannot unset 'nothing'"),
        "{}",
        out.stderr
    );
    let out = server
        .kiln_output(&["task", "update", "--name", "web", "--context", "ftp://x/y"])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    let out = server
        .kiln_output(&["task", "update", "--name", "nope", "--set", "a=b"])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("task 'nope' not found"),
        "{}",
        out.stderr
    );

    assert_eq!(task_names(&server).await, ["web"]);
    let web = show_json(&server, "web").await;
    assert_eq!(web["context"], git);
    assert_eq!(web["file"], "Dockerfile");

    // The API refuses a bad name in the body too.
    let resp = server
        .http()
        .post(format!("{}/api/tasks", server.url))
        .json(&serde_json::json!({"name": "no/slash", "context": git}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn credentials_in_a_context_url_are_sealed_and_masked() {
    let server = server().await;
    let url = "https://user:urlpass-5b8e21@git.example.com/app.git#main";
    let out = server
        .kiln_output(&["task", "create", "--name", "private", "--context", url])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(!out.stdout.contains("urlpass-5b8e21"), "{}", out.stdout);
    let task = show_json(&server, "private").await;
    let shown = task["context"].as_str().unwrap();
    assert!(
        !shown.contains("urlpass-5b8e21") && shown.contains("git.example.com"),
        "{shown}"
    );
    assert!(!holds(&server.database_bytes(), "urlpass-5b8e21"));
    // An update that does not touch the context keeps its credentials.
    let out = server
        .kiln_output(&["task", "update", "--name", "private", "--set", "a=b"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(!holds(&server.database_bytes(), "urlpass-5b8e21"));
    // A run of it gets them back: the worker that leases it sees the whole URL.
    let out = server
        .kiln_output(&["task", "run", "--name", "private", "--no-wait"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let worker = server.create_token("host1", &["worker"], &[]).await;
    let lease = server.lease_as(&server.http_as(&worker), "host1").await;
    assert!(lease.to_string().contains("urlpass-5b8e21"), "{lease}");
}
