//! Real git servers on loopback, and fixture repositories for them made with the git CLI.
//!
//! `GitHttpServer` speaks git's smart HTTP by running `git http-backend` (the CGI program
//! behind most self-hosted git servers) per request; `GitDaemon` hands each connection to
//! `git daemon --inetd`. Each runs on its own thread and runtime, so both blocking and async
//! tests can use them, and stops when dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// `git http-backend` behind HTTP basic auth (when given a password) on 127.0.0.1.
pub struct GitHttpServer {
    /// `http://127.0.0.1:PORT`; repositories are at `{url}/<name>.git`.
    pub url: String,
    _thread: ServerThread,
}

struct HttpConfig {
    root: PathBuf,
    password: Option<String>,
}

impl GitHttpServer {
    /// Serves the bare repositories under `root`. With `password`, every request must carry
    /// it as the basic-auth password; any username goes, as with GitHub's access tokens.
    pub fn start(root: &Path, password: Option<&str>) -> GitHttpServer {
        let (listener, addr) = bind();
        let config = Arc::new(HttpConfig {
            root: root.canonicalize().expect("the git root exists"),
            password: password.map(str::to_string),
        });
        let app = axum::Router::new()
            .fallback(http_backend)
            .with_state(config)
            .into_make_service_with_connect_info::<SocketAddr>();
        let thread = ServerThread::spawn(listener, move |listener| async move {
            axum::serve(listener, app).await.expect("git HTTP server");
        });
        GitHttpServer {
            url: format!("http://{addr}"),
            _thread: thread,
        }
    }
}

/// One request, answered by the CGI: the body goes to its stdin, its stdout is a header
/// block (with `Status:` for anything but 200) and then the response body.
async fn http_backend(
    State(config): State<Arc<HttpConfig>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let user = match &config.password {
        None => None,
        Some(password) => match basic_auth_user(request.headers(), password) {
            Some(user) => Some(user),
            None => {
                let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")];
                return (StatusCode::UNAUTHORIZED, challenge).into_response();
            }
        },
    };
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        let value = parts.headers.get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or_default().to_string()
    };
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &config.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("HTTP_GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", peer.ip().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    // Without CONTENT_LENGTH (a chunked request) the CGI reads its stdin to the end.
    match parts.headers.get(header::CONTENT_LENGTH) {
        Some(length) => cgi.env("CONTENT_LENGTH", length.to_str().unwrap_or("0")),
        None => cgi.env_remove("CONTENT_LENGTH"),
    };
    if let Some(user) = user {
        cgi.env("REMOTE_USER", user);
    }
    let mut child = cgi.spawn().expect("git http-backend runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        while let Some(Ok(chunk)) = body.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Dropping stdin here is the end of the request body for the CGI.
    });
    tokio::spawn(async move { child.wait().await });

    let mut stdout = BufReader::new(stdout);
    let mut response = Response::builder();
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).await.expect("CGI headers");
        let line = line.trim_end_matches(['\r', '\n']);
        if read == 0 || line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a CGI header line");
        let value = value.trim();
        response = if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or_default();
            response.status(code.parse::<u16>().expect("a CGI status code"))
        } else {
            response.header(name, value)
        };
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(stdout));
    response.body(body).expect("a valid CGI response")
}

/// The username of a basic `Authorization` header whose password is `password`.
fn basic_auth_user(headers: &HeaderMap, password: &str) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, given) = decoded.split_once(':')?;
    (given == password).then(|| user.to_string())
}

/// `git daemon` (the `git://` protocol, no authentication) on 127.0.0.1.
pub struct GitDaemon {
    /// `git://127.0.0.1:PORT`; repositories are at `{url}/<name>.git`.
    pub url: String,
    _thread: ServerThread,
}

impl GitDaemon {
    /// Serves every repository under `root`.
    pub fn start(root: &Path) -> GitDaemon {
        let (listener, addr) = bind();
        let root = root.canonicalize().expect("the git root exists");
        let thread = ServerThread::spawn(listener, move |listener| async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept a git connection");
                // git daemon --inetd talks over stdin and stdout, so both are the socket,
                // in blocking mode as a child process expects.
                let stream = stream.into_std().expect("a std socket");
                stream.set_nonblocking(false).expect("blocking socket");
                let output = stream.try_clone().expect("a second socket handle");
                let mut daemon = tokio::process::Command::new("git")
                    .args(["daemon", "--inetd", "--export-all"])
                    .arg(format!("--base-path={}", root.display()))
                    .arg(&root)
                    .stdin(Stdio::from(OwnedFd::from(stream)))
                    .stdout(Stdio::from(OwnedFd::from(output)))
                    .kill_on_drop(true)
                    .spawn()
                    .expect("git daemon runs");
                tokio::spawn(async move { daemon.wait().await });
            }
        });
        GitDaemon {
            url: format!("git://{addr}"),
            _thread: thread,
        }
    }
}

/// A listener on a free loopback port, kept open from the start so no one else takes it.
fn bind() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = listener.local_addr().expect("the listener's address");
    (listener, addr)
}

/// A server's thread and runtime. Dropping it stops the server: the runtime goes away,
/// taking the connections and the (`kill_on_drop`) git processes with it.
struct ServerThread {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn spawn<F, Fut>(listener: std::net::TcpListener, serve: F) -> ServerThread
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    () = serve(listener) => {}
                    _ = stopped => {}
                }
            });
        });
        ServerThread {
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Builds the bare repository `<root>/<name>.git` from a work tree whose origin it is:
/// each commit on a branch, each tag and ref is pushed as soon as it exists.
pub struct RepoBuilder {
    work: TempDir,
}

/// Starts the empty bare repository `<root>/<name>.git`, whose default branch is `main`.
pub fn repo(root: &Path, name: &str) -> RepoBuilder {
    let bare = root.join(format!("{name}.git"));
    git(
        root,
        &["init", "-q", "--bare", "-b", "main", path_str(&bare)],
    );
    let work = tempfile::tempdir().expect("a work folder");
    git(work.path(), &["init", "-q", "-b", "main"]);
    // origin is the bare repository, so relative submodule URLs resolve next to it.
    git(work.path(), &["remote", "add", "origin", path_str(&bare)]);
    RepoBuilder { work }
}

impl RepoBuilder {
    /// Writes a file in the work tree, creating its folders.
    pub fn file(&self, path: &str, contents: &str) -> &Self {
        let path = self.work.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create folders");
        std::fs::write(path, contents).expect("write a file");
        self
    }

    /// Makes `path` a symlink to `target`.
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        std::os::unix::fs::symlink(target, self.work.path().join(path)).expect("symlink");
        self
    }

    /// Commits everything and, on a branch, pushes the branch. Returns the commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        if try_git(self.work.path(), &["symbolic-ref", "-q", "HEAD"]).is_some() {
            self.git(&["push", "-q", "origin", "HEAD"]);
        }
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates branch `name` at the current commit and switches to it.
    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["checkout", "-q", "-b", name]);
        self
    }

    /// Switches to an existing branch, or detaches at a commit.
    pub fn checkout(&self, name: &str) -> &Self {
        self.git(&["checkout", "-q", name]);
        self
    }

    /// Tags the current commit: annotated with a message, else lightweight.
    pub fn tag(&self, name: &str, message: Option<&str>) -> &Self {
        match message {
            Some(message) => self.git(&["tag", "-a", name, "-m", message]),
            None => self.git(&["tag", name]),
        };
        self.git(&["push", "-q", "origin", &format!("refs/tags/{name}")]);
        self
    }

    /// Points `refs/pull/<number>/head` at `commit`, as GitHub does for a pull request.
    pub fn pull_request(&self, number: u32, commit: &str) -> &Self {
        self.git(&[
            "push",
            "-q",
            "origin",
            &format!("{commit}:refs/pull/{number}/head"),
        ]);
        self
    }

    /// Adds the submodule `url` (relative ones, like `../lib.git`, resolve against this
    /// repository's own URL, on whichever server serves it) at `path`; commit it after.
    pub fn submodule(&self, url: &str, path: &str) -> &Self {
        // The fixtures are local paths, which git refuses for submodules unless allowed.
        self.git(&[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            url,
            path,
        ]);
        self
    }

    /// Makes `name` the bare repository's default branch (its HEAD).
    pub fn default_branch(&self, name: &str) -> &Self {
        let head = format!("refs/heads/{name}");
        self.git(&["push", "-q", "origin", &format!("HEAD:{head}")]);
        let bare = self.git(&["remote", "get-url", "origin"]);
        git(Path::new(&bare), &["symbolic-ref", "HEAD", &head]);
        self
    }

    /// Sets a config value of the bare repository, e.g. `uploadpack.allowAnySHA1InWant`.
    pub fn server_config(&self, key: &str, value: &str) -> &Self {
        let bare = self.git(&["remote", "get-url", "origin"]);
        git(Path::new(&bare), &["config", key, value]);
        self
    }

    fn git(&self, args: &[&str]) -> String {
        git(self.work.path(), args)
    }
}

/// Runs git in `dir` and returns its trimmed stdout; panics if it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let stdout = try_git(dir, args);
    stdout.unwrap_or_else(|| panic!("git {args:?} failed in {}", dir.display()))
}

/// Runs git in `dir` with a fixed identity and without the machine's or user's config.
/// Returns its trimmed stdout, or `None` if it fails (its stderr is passed through).
fn try_git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Kiln Test",
            "-c",
            "user.email=test@kiln.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stderr(Stdio::inherit())
        .output()
        .expect("git runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    output.status.success().then(|| stdout.trim().to_string())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
