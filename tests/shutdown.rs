//! Stopping and restarting the real `kiln serve` process: SIGTERM lets an upload in flight
//! finish and settles the embedded worker's build within the grace; after a crash the next
//! start settles the runs the dead process held at once, not a lease time later. A
//! `kiln-worker` on SIGTERM finishes or ends its run within its drain timeout.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::log_lines::{log_lines, wait_for_line};
use common::*;
use kiln::cli::credentials;
use kiln_worker::protocol::Secret;
use tokio::sync::mpsc;

/// `kiln serve` as a child process on a port-0 listener, its log read as it comes.
struct ServeProcess {
    child: tokio::process::Child,
    log: mpsc::UnboundedReceiver<String>,
    url: String,
}

/// A data dir and a client home that outlive each server process.
struct Site {
    data: tempfile::TempDir,
    home: tempfile::TempDir,
    owner: Option<Secret>,
}

impl Site {
    fn new() -> Site {
        require_environment();
        Site {
            data: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
            owner: None,
        }
    }

    fn credentials_file(&self) -> PathBuf {
        self.home.path().join("credentials.json")
    }

    /// Starts `kiln serve` on this site and waits until it serves.
    async fn serve(&mut self, extra: &[&str]) -> ServeProcess {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["serve", "--listen", "127.0.0.1:0", "--registry", REGISTRY])
            .args(["--min-timeout", "1", "--gc-interval", "0"])
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--credentials-file")
            .arg(self.credentials_file())
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("KILN_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut log = log_lines(child.stderr.take().unwrap());
        let serving = wait_for_line(&mut log, "kiln serving").await;
        let addr = serving
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap_or_else(|| panic!("no address in '{serving}'"));
        let url = format!("http://{addr}");
        let file = self.credentials_file();
        match &self.owner {
            None => self.owner = credentials::token_for(&file, &url).unwrap(),
            // A new port: point the stored token at it, as `kiln login` would.
            Some(owner) => credentials::store(&file, &url, owner).unwrap(),
        }
        ServeProcess { child, log, url }
    }

    fn kiln(&self, server: &ServeProcess, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(args)
            .env("KILN_SERVER", &server.url)
            .env("XDG_CACHE_HOME", self.home.path())
            .env("KILN_CREDENTIALS_FILE", self.credentials_file())
            .env_remove("KILN_TOKEN")
            .kill_on_drop(true);
        cmd
    }

    async fn run_json(&self, server: &ServeProcess, id: &str) -> serde_json::Value {
        let out = self
            .kiln(server, &["run", "show", id, "-o", "json"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn http(&self) -> reqwest::Client {
        let secret = self.owner.as_ref().unwrap().expose();
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {secret}");
        headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }
}

impl ServeProcess {
    fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit: its exit code and the rest of its log.
    async fn exit(mut self) -> (Option<i32>, String) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the server did not exit")
            .unwrap();
        let mut rest = String::new();
        while let Some(line) = self.log.recv().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status.code(), rest)
    }
}

/// A gzip-compressed tar of a Dockerfile and `size` bytes that do not compress.
fn incompressible_archive(size: usize) -> Vec<u8> {
    let mut noise = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in noise.iter_mut() {
        // xorshift: cheap bytes gzip cannot shrink.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("Dockerfile", format!("FROM {BASE_IMAGE}\n").into_bytes()),
        ("noise.bin", noise),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_in_flight_finish_and_stops_accepting() {
    let mut site = Site::new();
    // A long grace: the server exits once the upload is done, not when the grace is over.
    let server = site
        .serve(&["--workers", "0", "--shutdown-grace", "600s"])
        .await;
    // A follower of a run that outlives the server does not hold it up.
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let queued = site
        .kiln(
            &server,
            &[
                "build",
                "--no-push",
                "--no-wait",
                ctx.path().to_str().unwrap(),
            ],
        )
        .output()
        .await
        .unwrap();
    let id = String::from_utf8_lossy(&queued.stdout).trim().to_string();
    let mut follower = Live::spawn(site.kiln(&server, &["run", "logs", &id, "--follow"]));
    follower.until(|l| l.contains("Waiting in the queue")).await;
    let archive = incompressible_archive(4 << 20);
    let (half, rest) = archive.split_at(archive.len() / 2);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let upload = tokio::spawn(
        site.http()
            .post(format!("{}/api/contexts", server.url))
            .header("content-type", "application/gzip")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tx.send(half.to_vec()).await.unwrap();

    server.signal("TERM");
    // New connections are refused while the upload is still open.
    let fresh = reqwest::Client::new();
    let refused = tokio::time::timeout(Duration::from_secs(30), async {
        while fresh
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    refused.await.expect("the server still accepts connections");

    tx.send(rest.to_vec()).await.unwrap();
    drop(tx);
    let resp = upload.await.unwrap().unwrap();
    assert_eq!(resp.status(), 201);
    let stored: serde_json::Value = resp.json().await.unwrap();
    let digest = stored["digest"].as_str().unwrap().to_string();
    let (code, log) = server.exit().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("kiln stopped"), "{log}");

    // Nothing half-written is left, and the upload is stored.
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(site.data.path().join("contexts/sha256").join(hex).is_file());
    let tmp = site.data.path().join("contexts/tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// Queues `kiln build --no-push --no-cache` and follows it until `marker` is printed by
/// the build: the run ID.
async fn build_until(site: &Site, server: &ServeProcess, dir: &Path, marker: &str) -> String {
    let mut build = Live::spawn(site.kiln(
        server,
        &["build", "--no-push", "--no-cache", dir.to_str().unwrap()],
    ));
    let seen = build.until(|l| l.ends_with(marker)).await;
    // The follower dies with the server; the run's fate is read afterwards.
    tokio::spawn(build.finish());
    seen.iter()
        .find_map(|l| l.strip_prefix("Run ID: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run ID in {seen:#?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_a_short_build_and_ends_a_long_one_within_the_grace() {
    let mut site = Site::new();

    // A build that ends within the grace finishes.
    let server = site.serve(&["--shutdown-grace", "60s"]).await;
    let short = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo short-build && sleep 3 && echo short-done\n"),
    )]);
    let id = build_until(&site, &server, short.path(), " short-build").await;
    server.signal("TERM");
    let (code, log) = server.exit().await;
    assert_eq!(code, Some(0), "{log}");
    let server = site.serve(&["--shutdown-grace", "2s"]).await;
    let run = site.run_json(&server, &id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");

    // One that would outlast the grace ends as Error, saying why, and its build stops.
    let long = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo long-build && sleep 4545\n"),
    )]);
    let id = build_until(&site, &server, long.path(), " long-build").await;
    server.signal("TERM");
    let (code, log) = server.exit().await;
    assert_eq!(code, Some(0), "{log}");
    let server = site.serve(&[]).await;
    let run = site.run_json(&server, &id).await;
    assert_eq!(run["status"], "Error", "{run:#}");
    assert_eq!(
        run["errorMessage"], "the server shut down while this run was building",
        "{run:#}"
    );
    let logs = site
        .kiln(&server, &["run", "logs", &id])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("Build stopped: the server shut down while this run was building"),
        "{text}"
    );
    server.signal("TERM");
    server.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_next_start_settles_the_dead_process_runs_at_once() {
    let mut site = Site::new();
    let server = site.serve(&[]).await;
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo crash-build && sleep 4646\n"),
    )]);
    let id = build_until(&site, &server, ctx.path(), " crash-build").await;
    server.signal("KILL");
    server.exit().await;

    // The lease (30 s by default) has not run out, yet the run is settled before serving.
    let server = site.serve(&[]).await;
    let run = site.run_json(&server, &id).await;
    assert_eq!(run["status"], "Error", "{run:#}");
    let message = run["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("the server restarted while this run was building")
            && message.contains("embedded-0"),
        "{message}"
    );
    server.signal("TERM");
    server.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_sigterm_ends_its_run_within_the_drain_timeout() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let token = server.create_token("hosts", &["worker"], &[]).await;
    let mut worker = tokio::process::Command::new(worker_binary())
        .args([
            "--server",
            &server.url,
            "--name",
            "draining",
            "--drain-timeout",
            "1",
        ])
        .env("KILN_WORKER_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo drain-build && sleep 4747\n"),
    )]);
    let dir = ctx.path().to_str().unwrap();
    let mut build = Live::spawn(server.kiln(&["build", "--no-push", "--no-cache", dir]));
    build.until(|l| l.ends_with(" drain-build")).await;
    let pid = worker.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());

    let (code, rest, _) = build.finish().await;
    assert_eq!(code, Some(5), "{rest}");
    assert!(
        rest.contains("worker 'draining' shut down while this run was building"),
        "{rest}"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("the worker did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_handed_back_before_building_is_queued_again_and_the_old_attempt_is_fenced() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let out = server
        .kiln_output(&[
            "build",
            "--no-push",
            "--no-wait",
            ctx.path().to_str().unwrap(),
        ])
        .await;
    let id = out.stdout.trim().to_string();
    let token = server.create_token("hosts", &["worker"], &[]).await;
    let worker = server.http_as(&token);
    let lease = server.lease_as(&worker, "leaving").await;
    assert_eq!(lease["runId"], id.as_str());
    assert_eq!(server.run_json(&id).await["status"], "Running");

    let give_back = |attempt: u32| {
        worker
            .post(format!("{}/api/worker/runs/{id}/return", server.url))
            .json(&serde_json::json!({
                "attempt": attempt,
                "reason": "worker 'leaving' is shutting down"
            }))
            .send()
    };
    assert_eq!(give_back(1).await.unwrap().status(), 204);
    let run = server.run_json(&id).await;
    assert_eq!(run["status"], "Queued", "{run:#}");
    assert!(
        run["worker"].is_null() && run["startedAt"].is_null(),
        "{run:#}"
    );
    let log = server.kiln_output(&["run", "logs", &id]).await.stdout;
    assert!(
        log.contains("Returned to the queue before building: worker 'leaving' is shutting down"),
        "{log}"
    );
    // The returned attempt can no longer act on the run.
    assert_eq!(give_back(1).await.unwrap().status(), 409);
    let heartbeat = worker
        .post(format!("{}/api/worker/runs/{id}/heartbeat", server.url))
        .json(&serde_json::json!({"attempt": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 409);
}
