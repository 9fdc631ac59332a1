//! `kiln build` refuses what the server would refuse before it packs or uploads anything, with
//! the server's own message and exit code 2.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_fail_before_the_upload_with_the_servers_message() {
    // No workers: nothing here may build. A minimum timeout the CLI can only know by asking.
    let server = TestServer::start_with(|a| {
        a.workers = 0;
        a.min_timeout = 300;
    })
    .await;
    let ctx = context(&[
        ("Dockerfile", "FROM scratch\n"),
        ("big.bin", &"x".repeat(1 << 20)),
    ]);
    let dir = ctx.path().to_str().unwrap();
    // (CLI arguments, the same request's fields for the API)
    let cases: Vec<(Vec<&str>, serde_json::Value)> = vec![
        (
            vec!["-t", "App:v1"],
            serde_json::json!({"images": ["App:v1"]}),
        ),
        (
            vec!["-t", "app:<<.Run.Nope>>"],
            serde_json::json!({"images": ["app:<<.Run.Nope>>"]}),
        ),
        (
            vec!["-t", "app:<<.Run.Commit>>"],
            serde_json::json!({"images": ["app:<<.Run.Commit>>"]}),
        ),
        (
            vec!["--timeout", "100"],
            serde_json::json!({"timeoutSecs": 100}),
        ),
        (
            vec!["--timeout", "99999"],
            serde_json::json!({"timeoutSecs": 99999}),
        ),
        (
            vec!["--build-arg", "A B=1"],
            serde_json::json!({"buildArgs": {"A B": "1"}}),
        ),
        (
            vec!["--target", "two words"],
            serde_json::json!({"target": "two words"}),
        ),
    ];
    let mut printed = Vec::new();
    for (flags, _) in &cases {
        let mut args = vec!["build"];
        args.extend(flags);
        args.push(dir);
        let out = server.kiln_output(&args).await;
        assert_eq!(out.code, 2, "{flags:?}: {out:#?}");
        assert!(
            !out.stderr.contains("Packing") && !out.stderr.contains("Upload"),
            "{flags:?} packed or uploaded: {out:#?}"
        );
        assert_eq!(server.stored_contexts(), 0, "{flags:?} stored a context");
        printed.push(out.stderr);
    }
    assert_eq!(server.run_count().await, 0);

    // The server refuses the same requests with the same words.
    let (status, body) = server.upload_context(tar_gz_of_dockerfile()).await;
    assert_eq!(status, 201, "{body}");
    let digest: serde_json::Value = serde_json::from_str(&body).unwrap();
    for ((flags, fields), cli_said) in cases.iter().zip(&printed) {
        let mut req =
            serde_json::json!({"context": {"kind": "upload", "digest": digest["digest"]}});
        for (k, v) in fields.as_object().unwrap() {
            req[k] = v.clone();
        }
        let resp = server
            .http()
            .post(format!("{}/api/runs", server.url))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{flags:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            cli_said.trim(),
            format!("error: {message}"),
            "{flags:?}: the CLI and the server disagree"
        );
    }
}
