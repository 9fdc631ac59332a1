//! Bad input gets a clear error and changes nothing: no context stored, no run queued.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A tar with one entry whose raw header name (or link target) is set verbatim, bypassing
/// the tar crate's own path checks, as a hostile client would.
fn tar_with(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(if kind == tar::EntryType::Regular {
        2
    } else {
        0
    });
    header.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    if kind == tar::EntryType::Regular {
        b.append(&header, &b"hi"[..]).unwrap();
    } else {
        b.append(&header, &b""[..]).unwrap();
    }
    b.into_inner().unwrap()
}

async fn upload(server: &TestServer, body: Vec<u8>) -> (u16, String) {
    server.upload_context(body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_or_broken_archives_are_rejected_and_not_stored() {
    let server = TestServer::start().await;
    let cases = [
        ("../escape", tar::EntryType::Regular, None, "escape"),
        ("/etc/passwd", tar::EntryType::Regular, None, "/etc/passwd"),
        (
            "link",
            tar::EntryType::Symlink,
            Some("../../etc/shadow"),
            "link",
        ),
        ("hard", tar::EntryType::Link, Some("/etc/shadow"), "hard"),
    ];
    for (name, kind, link, named) in cases {
        let (status, body) = upload(&server, gzip(&tar_with(name, kind, link))).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains(named), "{name}: {body}");
    }
    let good = gzip(&tar_with("ok.txt", tar::EntryType::Regular, None));
    let (status, body) = upload(&server, good[..good.len() - 12].to_vec()).await;
    assert_eq!(status, 400, "truncated: {body}");
    assert!(body.contains("truncated"), "{body}");
    let mut corrupt = good.clone();
    for b in &mut corrupt[12..40] {
        *b ^= 0x5a;
    }
    let (status, body) = upload(&server, corrupt).await;
    assert_eq!(status, 400, "corrupt: {body}");
    assert!(body.contains("corrupt"), "{body}");
    assert_eq!(server.stored_contexts(), 0);
    assert_eq!(server.run_count().await, 0);

    // The same well-formed archive is accepted, and stored once however often it comes.
    let (status, first) = upload(&server, good.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (_, second) = upload(&server, good).await;
    assert_eq!(first, second);
    assert_eq!(server.stored_contexts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_uploads_get_413_with_or_without_a_length() {
    let server = TestServer::start_with(|a| a.max_context_size = 64 * 1024).await;
    let big = vec![7u8; 200 * 1024];
    let (status, body) = upload(&server, big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 64 KiB"), "{body}");
    // Chunked: no Content-Length, so the limit is enforced while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let resp = server
        .http()
        .post(format!("{}/api/contexts", server.url))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The server may answer before reading all of the body; either way it refuses with 413.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413);
    }
    assert_eq!(server.stored_contexts(), 0);

    // The CLI reports it as bad input.
    // Hex of an xorshift sequence compresses to about half: still far over the limit.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: String = (0..300 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect();
    let ctx = context(&[("Dockerfile", "FROM scratch\n"), ("blob.bin", &noise)]);
    let out = server
        .kiln_output(&["build", "--no-push", ctx.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("larger than the server's limit"),
        "{}",
        out.stderr
    );
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_problems_are_caught_before_upload() {
    let server = TestServer::start().await;
    let empty = context(&[("README", "no Dockerfile here\n")]);
    let out = server
        .kiln_output(&["build", "-t", "x:1", empty.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("Dockerfile not found"),
        "{}",
        out.stderr
    );

    let out = server
        .kiln_output(&["build", "-t", "x:1", "/definitely/not/here"])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("/definitely/not/here"),
        "{}",
        out.stderr
    );

    let out = server
        .kiln_output(&["build", "--platform", "linux/sparc", "."])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("linux/sparc"), "{}", out.stderr);

    assert_eq!(server.stored_contexts(), 0);
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_image_names_and_templates_are_400s_that_queue_nothing() {
    let server = TestServer::start().await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let dir = ctx.path().to_str().unwrap();
    let cases = [
        ("Hello:v1", "Hello:v1"),
        ("app:<<.Run.Nope>>", ".Run.Nope"),
        ("app:{{.Run.Commit}}", ".Run.Commit"),
        ("app:bad tag", "app:bad tag"),
        ("app:<<.Run.ID", "unterminated"),
    ];
    for (image, named) in cases {
        let out = server.kiln_output(&["build", "-t", image, dir]).await;
        assert_eq!(out.code, 2, "{image}: {out:#?}");
        assert!(out.stderr.contains(named), "{image}: {}", out.stderr);
    }
    assert_eq!(server.run_count().await, 0);

    // The next accepted run still gets the first ID: rejected ones leave no gap.
    let out = server
        .kiln_output(&["build", "--no-wait", "--no-push", dir])
        .await;
    assert_eq!(out.stdout.trim(), "ca1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_run_ids_are_404s() {
    let server = TestServer::start().await;
    for args in [
        vec!["run", "show", "ca99"],
        vec!["run", "logs", "ca99"],
        vec!["run", "cancel", "ca99"],
        vec!["run", "show", "not-a-run"],
    ] {
        let out = server.kiln_output(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains("not found"), "{args:?}: {}", out.stderr);
    }
    let resp = server
        .http()
        .get(format!("{}/api/runs/ca99", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "run 'ca99' not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_takes_no_run_and_a_dead_registry_ends_it_as_error() {
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo built\n"),
    )]);
    let dir = ctx.path().to_str().unwrap();

    // A worker whose engine does not answer takes no run: the run waits, says why, and
    // expires instead of failing in no time on that worker.
    let no_engine =
        TestServer::start_with(|a| a.docker_host = Some("unix:///nonexistent/docker.sock".into()))
            .await;
    let out = no_engine
        .kiln_output(&["build", "--no-push", "--queue-timeout", "5s", dir])
        .await;
    assert_eq!(out.code, 6, "{out:#?}");
    let run = no_engine.run_json(&out.run_id()).await;
    assert_eq!(run["status"], "Expired");
    let message = run["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("no worker took this run in 5s")
            && message.contains("the engine of worker 'embedded-0' is unreachable"),
        "{run:#}"
    );

    let server = TestServer::start().await;
    // Port 1 on loopback: nothing listens there, so the push is refused at once.
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        server.kiln_output(&["build", "-t", "127.0.0.1:1/nowhere:v1", dir]),
    )
    .await
    .expect("a push to a dead registry must not hang");
    assert_eq!(out.code, 5, "{out:#?}");
    let run = server.run_json(&out.run_id()).await;
    assert_eq!(run["status"], "Error");
    assert!(
        run["errorMessage"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{run:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_a_token_and_says_how_to_get_one() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let resp = reqwest::get(format!("{}/api/runs", server.url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("kiln login"), "{message}");
    assert!(message.contains("KILN_TOKEN"), "{message}");
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A CLI with no stored token for this server.
    let out = server
        .kiln(&["run", "list"])
        .env(
            "KILN_CREDENTIALS_FILE",
            server.home.path().join("elsewhere.json"),
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kiln login"), "{stderr}");
}
