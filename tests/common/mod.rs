//! Test harness: a real Kiln server in-process on a port-0 listener with its own data dir,
//! the real `kiln` binary as the client, and the real Docker engine and registry.
//! Nothing here skips: a missing engine or registry fails the test with the fix to apply.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln::cli::credentials;
use kiln::clock::{SharedClock, SystemClock};
use kiln::config::ServeArgs;
use kiln::server::Server;
use kiln_worker::protocol::Secret;
use tempfile::TempDir;

pub mod captured_logs;
pub mod docker_cli;
pub mod git_servers;
pub mod log_lines;
pub mod oci;
pub mod osv;
pub mod scan_images;
pub mod skopeo;
pub mod timer_cli;
pub mod webhooks;

pub const REGISTRY: &str = "127.0.0.1:5000";
pub const BASE_IMAGE: &str = "127.0.0.1:5000/busybox:latest";

pub struct TestServer {
    server: Option<Server>,
    pub data: TempDir,
    /// The client's cache dir, so tests do not share upload fingerprints, and its
    /// credentials file, where the server stores the owner token on its first start.
    pub home: TempDir,
    pub url: String,
    pub args: ServeArgs,
    /// The owner token the server created on its first start.
    pub owner: Option<Secret>,
    /// The server's clock: the wall clock, or the test's `ManualClock` (`start_with_clock`).
    pub clock: SharedClock,
}

/// Panics with a clear message unless the Docker engine and the registry are up.
pub fn require_environment() {
    let docker = std::process::Command::new("docker")
        .args(["version", "-f", "{{.Server.Version}}"])
        .output();
    assert!(
        matches!(&docker, Ok(o) if o.status.success()),
        "the Docker engine is not reachable: run scripts/setup.sh ({docker:?})"
    );
    let registry = std::process::Command::new("curl")
        .args(["-fsS", &format!("http://{REGISTRY}/v2/")])
        .output();
    assert!(
        matches!(&registry, Ok(o) if o.status.success()),
        "the registry at {REGISTRY} is not reachable: run scripts/setup.sh"
    );
}

pub fn serve_args(data: &Path) -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        registry: Some(REGISTRY.to_string()),
        registry_username: None,
        registry_password: None,
        docker_config: None,
        workers: 1,
        docker_host: None,
        credentials_file: None,
        public_url: None,
        max_context_size: 2 << 30,
        lease_ttl: 30,
        min_timeout: 1,
        gc_interval: Duration::ZERO,
        gc_grace: Duration::from_secs(3600),
        deny_private_addresses: false,
        queue_timeout: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(30),
        run_retention: Duration::from_secs(30 * 86_400),
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        max_connections: 1024,
        max_context_unpacked_size: None,
        max_context_expansion: 100,
        secret_key_file: None,
        allow_privileged_steps: false,
        base_image_poll_interval: Duration::from_secs(300),
        scan_on_push: false,
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> TestServer {
        Self::start_with_clock(Arc::new(SystemClock), configure).await
    }

    /// A server that reads time from `clock`: pass a `ManualClock` and `advance` it instead
    /// of waiting for time to pass on the server's side.
    pub async fn start_with_clock(
        clock: SharedClock,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> TestServer {
        require_environment();
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut args = serve_args(data.path());
        args.credentials_file = Some(home.path().join("credentials.json"));
        configure(&mut args);
        let mut ts = TestServer {
            server: None,
            data,
            home,
            url: String::new(),
            args,
            owner: None,
            clock,
        };
        ts.boot().await;
        ts
    }

    async fn boot(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start_with_clock(self.args.clone(), listener, self.clock.clone())
            .await
            .unwrap();
        self.url = format!("http://{}", server.addr());
        self.server = Some(server);
        let file = self.credentials_file();
        match &self.owner {
            None => self.owner = credentials::token_for(&file, &self.url).unwrap(),
            // A restart listens on a new port: point the stored token at it, as `kiln login` would.
            Some(owner) => credentials::store(&file, &self.url, owner).unwrap(),
        }
    }

    /// Where the server stores the owner token and the CLI looks for tokens.
    pub fn credentials_file(&self) -> PathBuf {
        self.args.credentials_file.clone().unwrap()
    }

    /// The owner token's secret.
    pub fn owner_token(&self) -> &str {
        self.owner
            .as_ref()
            .expect("the server stored an owner token")
            .expose()
    }

    /// Stops the server and starts it again on the same data dir, with changed settings.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut ServeArgs)) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        configure(&mut self.args);
        self.boot().await;
    }

    /// `kiln <args>` against this server.
    pub fn kiln(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(args)
            .env("KILN_SERVER", &self.url)
            .env("XDG_CACHE_HOME", self.home.path())
            .env("KILN_CREDENTIALS_FILE", self.credentials_file())
            .env_remove("KILN_TOKEN")
            .kill_on_drop(true);
        cmd
    }

    pub async fn kiln_output(&self, args: &[&str]) -> CliRun {
        let out = self.kiln(args).output().await.unwrap();
        CliRun::from(out)
    }

    /// `kiln <args>` sending `token` (`KILN_TOKEN`, which wins over the credentials file).
    pub async fn kiln_output_as(&self, token: &str, args: &[&str]) -> CliRun {
        let out = self
            .kiln(args)
            .env("KILN_TOKEN", token)
            .output()
            .await
            .unwrap();
        CliRun::from(out)
    }

    /// A client that sends the owner token.
    pub fn http(&self) -> reqwest::Client {
        self.http_as(self.owner_token())
    }

    /// A client that sends `token` as a Bearer token.
    pub fn http_as(&self, token: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {token}");
        headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// Creates a token through the API: its secret.
    pub async fn create_token(&self, name: &str, roles: &[&str], repositories: &[&str]) -> String {
        self.create_token_with(serde_json::json!({
            "name": name,
            "roles": roles,
            "repositories": repositories,
        }))
        .await
    }

    /// Creates a token from a raw `POST /api/tokens` body: its secret.
    pub async fn create_token_with(&self, body: serde_json::Value) -> String {
        let resp = self
            .http()
            .post(format!("{}/api/tokens", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{body}: {}", resp.text().await.unwrap());
        let created: serde_json::Value = resp.json().await.unwrap();
        created["secret"].as_str().unwrap().to_string()
    }

    /// A worker named `name` asks for a run over the raw protocol, as `client` (a worker
    /// token): the lease as JSON.
    pub async fn lease_as(&self, client: &reqwest::Client, name: &str) -> serde_json::Value {
        client
            .post(format!("{}/api/worker/lease", self.url))
            .json(&serde_json::json!({
                "worker": {"id": format!("{name}-1"), "name": name, "platforms": ["linux/amd64"], "protocol": 2},
                "waitMs": 1000
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /api/worker/lease` as `client` (a worker token) with `worker` as the raw
    /// `WorkerInfo` JSON (to set `protocol`, `jobs`, `stepTypes`), waiting up to `wait_ms`.
    pub async fn lease_raw(
        &self,
        client: &reqwest::Client,
        worker: serde_json::Value,
        wait_ms: u64,
    ) -> reqwest::Response {
        client
            .post(format!("{}/api/worker/lease", self.url))
            .json(&serde_json::json!({"worker": worker, "waitMs": wait_ms}))
            .send()
            .await
            .unwrap()
    }

    /// Queues a run from a raw `POST /api/runs` body as `token`, which must succeed: its ID.
    pub async fn queue_run_as(&self, token: &str, body: &serde_json::Value) -> String {
        let resp = self
            .http_as(token)
            .post(format!("{}/api/runs", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let run: serde_json::Value = resp.json().await.unwrap();
        run["id"].as_str().unwrap().to_string()
    }

    /// `GET path` as the owner, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self.http().get(format!("{}{path}", self.url)).send();
        resp.await.unwrap().text().await.unwrap()
    }

    /// `GET path` as the owner, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get_text(path).await).unwrap()
    }

    pub async fn run_json(&self, id: &str) -> serde_json::Value {
        self.get_json(&format!("/api/runs/{id}")).await
    }

    /// `POST path` with a JSON body as `token`: the status and the JSON answer.
    pub async fn post_json_as(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http_as(token)
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// The run's steps as `kiln run show -o json` gives them.
    pub async fn steps_of(&self, id: &str) -> Vec<serde_json::Value> {
        let shown = self
            .kiln_output(&["run", "show", id, "--output", "json"])
            .await;
        assert_eq!(shown.code, 0, "{shown:#?}");
        let run: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        run["steps"].as_array().unwrap().clone()
    }

    /// Waits until the run has the given status, for at most `limit`.
    pub async fn wait_status(&self, id: &str, status: &str, limit: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let run = self.run_json(id).await;
            if run["status"] == status {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} did not reach {status} within {limit:?}: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Files stored as build contexts.
    pub fn stored_contexts(&self) -> usize {
        std::fs::read_dir(self.data.path().join("contexts/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `POST /api/contexts` as the owner: the status and the body.
    pub async fn upload_context(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = self
            .http()
            .post(format!("{}/api/contexts", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn run_count(&self) -> usize {
        let list = self.get_json("/api/runs?top=1000").await;
        list["runs"].as_array().unwrap().len()
    }

    /// `POST /api/worker/lease` with a worker token, waiting up to `wait_ms` for a run.
    pub async fn lease_with_token(&self, worker: &str, wait_ms: u64) -> reqwest::Response {
        self.http_as(worker)
            .post(format!("{}/api/worker/lease", self.url))
            .json(&serde_json::json!({
                "worker": {"id": "w-1", "name": "w", "platforms": ["linux/amd64"], "protocol": 2},
                "waitMs": wait_ms
            }))
            .send()
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Dropping the runtime's tasks stops it; a clean close needs an async context.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(server.shutdown());
            }
        }
    }
}

/// What a CLI invocation printed and how it exited.
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CliRun {
    fn from(o: Output) -> CliRun {
        CliRun {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl CliRun {
    /// The run ID from "Queued a build with ID: ca1" (or "Queued a run of task 'x' with ID").
    pub fn run_id(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("Queued a "))
            .find_map(|l| l.split_once(" with ID: ").map(|(_, id)| id))
            .unwrap_or_else(|| panic!("no run ID in output: {self:#?}"))
            .trim()
            .to_string()
    }
}

/// A unique repository in the test registry, so tests never see each other's tags.
pub fn unique_repo(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("kiln-test/{name}-{nanos:x}")
}

/// Writes `files` (path, content) under a new temp dir.
pub fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

pub fn write(root: &Path, path: &str, content: &str) -> PathBuf {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

/// `skopeo inspect` of an image in the test registry: its manifest digest, or None if absent.
pub async fn registry_digest(image: &str) -> Option<String> {
    let out = tokio::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().map(str::to_string)
}

/// Runs `sh -c script` in the image freshly pulled from the registry, returning stdout.
pub async fn run_in_image(image: &str, script: &str) -> String {
    let out = tokio::process::Command::new("docker")
        .args(["run", "--rm", "--pull", "always", image, "sh", "-c", script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "docker run {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `kiln-worker` binary. It belongs to the other package of the workspace, so cargo gives
/// this test no path to it: build it next to `kiln`. Building the whole workspace's binaries
/// keeps cargo's feature set the same as the test build's, so this is a no-op when fresh.
pub fn worker_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build
                .args(["build", "-q", "--workspace", "--bins"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            // Cargo gives tests variables such as CARGO_MANIFEST_DIR; build scripts that watch
            // them (ring's) would otherwise rebuild on every test run.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
                    build.env_remove(key.as_ref());
                }
            }
            let status = build.status().unwrap();
            assert!(status.success(), "building kiln-worker failed");
            Path::new(env!("CARGO_BIN_EXE_kiln")).with_file_name("kiln-worker")
        })
        .clone()
}

/// A command (`kiln build`, `kiln run logs --follow`) running in the background, its output
/// read line by line as it streams.
pub struct Live {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Live {
    pub fn spawn(mut cmd: tokio::process::Command) -> Live {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        Live {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Reads lines up to and including the first for which `done` holds.
    pub async fn until(&mut self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(line) = self.lines.next_line().await.unwrap() {
            let last = done(&line);
            seen.push(line);
            if last {
                return seen;
            }
        }
        panic!("output ended before the expected line: {seen:#?}");
    }

    /// Waits for the exit: its code, the rest of stdout, and all of stderr.
    pub async fn finish(mut self) -> (Option<i32>, String, String) {
        let mut rest = String::new();
        while let Some(line) = self.lines.next_line().await.unwrap() {
            rest.push_str(&line);
            rest.push('\n');
        }
        let out = self.child.wait_with_output().await.unwrap();
        (
            out.status.code(),
            rest,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Serves `body` at `/ctx.tar.gz` on a port-0 listener; other paths are 404.
pub async fn serve_tarball(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/ctx.tar.gz",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A gzipped tar holding `files` (path, content).
pub fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        b.append_data(&mut header, path, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A gzipped tar holding just `Dockerfile` (`FROM scratch`), to upload as a context.
pub fn tar_gz_of_dockerfile() -> Vec<u8> {
    tar_gz(&[("Dockerfile", "FROM scratch\n")])
}

impl TestServer {
    /// Uploads [`tar_gz_of_dockerfile`] and queues a build of it that pushes nothing, as the
    /// owner: the run's ID.
    pub async fn queue_scratch_run(&self) -> String {
        let (status, body) = self.upload_context(tar_gz_of_dockerfile()).await;
        assert_eq!(status, 201, "{body}");
        let uploaded: serde_json::Value = serde_json::from_str(&body).unwrap();
        let context = serde_json::json!({"kind": "upload", "digest": uploaded["digest"]});
        let body = serde_json::json!({"context": context, "push": false});
        self.queue_run_as(self.owner_token(), &body).await
    }
}

impl TestServer {
    /// The database file and its WAL, raw: to check what is stored in plain text.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for name in ["kiln.db", "kiln.db-wal"] {
            if let Ok(b) = std::fs::read(self.data.path().join(name)) {
                bytes.extend(b);
            }
        }
        bytes
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
