//! Turns a run's context source into the archive stream the engine builds from: the upload
//! from the server, a git checkout packed on the spot, or a downloaded tarball.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::client::{ClientError, ServerClient};
use crate::context::pack::{self, PackRequest};
use crate::context::verify::verify_archive;
use crate::fetch_policy::{self, FetchPolicy, Fetcher};
use crate::git::{self, GitError, GitSource};
use crate::logship::LogSink;
use crate::protocol::{
    human_size, BuildSpec, ContextLimits, ContextSource, Lease, Outcome, SourceReply,
    SourceResolved,
};

/// Attempts at a tarball download before the run gives up on it.
const DOWNLOAD_ATTEMPTS: u32 = 3;

/// Where a prepared context's archive comes from each time it is opened.
enum Archive {
    /// Downloaded from the server again for each build: it sits next door.
    Upload,
    /// A git checkout, packed again for each build.
    Packed(pack::PackPlan),
    /// A downloaded tarball.
    File(std::path::PathBuf),
}

/// A context ready to build; a multi-platform run opens it once per platform.
pub struct Prepared {
    archive: Archive,
    /// The Dockerfile's path inside the archive.
    pub dockerfile: String,
    /// Image names (and their registries' credentials) the server rendered once a git ref
    /// was resolved; otherwise the lease's hold.
    pub resolved: Option<SourceReply>,
    /// Keeps a checkout or download on disk until the build has read it.
    _scratch: Option<tempfile::TempDir>,
}

impl Prepared {
    /// The context archive as a stream, ready for one build.
    pub async fn open(
        &self,
        client: &ServerClient,
        lease: &Lease,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, SourceError> {
        match &self.archive {
            Archive::Upload => Ok(client
                .context(lease.run_id, lease.attempt)
                .await
                .map_err(|e| {
                    (
                        Outcome::Error,
                        format!("downloading the build context: {e}"),
                    )
                })?
                .boxed()),
            Archive::Packed(plan) => Ok(pack::stream_tar_gz(plan.clone(), |_| {}).boxed()),
            Archive::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| (Outcome::Error, format!("reading the tarball: {e}")))?;
                Ok(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).boxed())
            }
        }
    }
}

/// Why a context could not be had: `Failed` is the user's input (no such ref), `Error` the
/// infrastructure's (git host unreachable).
pub type SourceError = (Outcome, String);

/// What a context is prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// A `docker build`: packed as `kiln build` packs a folder (`.dockerignore`, the
    /// Dockerfile placed in the archive), so the repository must hold the Dockerfile.
    Build,
    /// A steps run's `/workspace`: the whole checkout as it is, `.git` included (steps may run
    /// git), no Dockerfile needed and no ignore rules, as ACR's workspace. `task_file` is a
    /// deferred task file's path in it, sent to the server with the commit.
    Workspace { task_file: Option<&'a str> },
}

/// The largest task file a worker sends: task files are a few KiB.
const MAX_TASK_FILE: u64 = 1024 * 1024;

/// Gets the lease's context ready to build; git and tarball URLs only as `policy` allows.
pub async fn prepare(
    client: &ServerClient,
    lease: &Lease,
    spec: &BuildSpec,
    policy: &FetchPolicy,
    log: &LogSink,
) -> Result<Prepared, SourceError> {
    prepare_for(client, lease, spec, policy, log, Purpose::Build).await
}

/// `prepare`, for `purpose`.
pub async fn prepare_for(
    client: &ServerClient,
    lease: &Lease,
    spec: &BuildSpec,
    policy: &FetchPolicy,
    log: &LogSink,
    purpose: Purpose<'_>,
) -> Result<Prepared, SourceError> {
    match &spec.context {
        ContextSource::Upload { .. } => Ok(Prepared {
            archive: Archive::Upload,
            dockerfile: spec.dockerfile.clone(),
            resolved: None,
            _scratch: None,
        }),
        ContextSource::Git {
            url,
            reference,
            subdir,
        } => {
            let source = GitSource {
                url: url.clone(),
                reference: reference.clone(),
                subdir: subdir.clone(),
            };
            git_context(client, lease, spec, source, *policy, log, purpose).await
        }
        ContextSource::Tarball { url } => {
            tarball_context(url, &spec.dockerfile, *policy, &lease.context_limits, log).await
        }
    }
}

async fn git_context(
    client: &ServerClient,
    lease: &Lease,
    spec: &BuildSpec,
    source: GitSource,
    policy: FetchPolicy,
    log: &LogSink,
    purpose: Purpose<'_>,
) -> Result<Prepared, SourceError> {
    log.line(format!("Fetching git context {}", spec.context.describe()));
    let scratch = scratch_dir()?;
    let dest = scratch.path().join("checkout");
    let token = lease.git_token.clone();
    let checkout =
        tokio::task::spawn_blocking(move || git::fetch(&source, token.as_ref(), &policy, &dest))
            .await
            .map_err(|e| (Outcome::Error, format!("git fetch stopped: {e}")))?
            .map_err(|e| (git_outcome(&e), e.to_string()))?;
    log.line(format!(
        "Checked out commit {}{}",
        checkout.commit,
        checkout
            .branch
            .as_deref()
            .map(|b| format!(" (branch {b})"))
            .unwrap_or_default()
    ));
    let task_file = match purpose {
        Purpose::Workspace {
            task_file: Some(path),
        } => Some(read_task_file(
            &checkout.context_dir,
            path,
            &checkout.commit,
        )?),
        _ => None,
    };
    let reply = client
        .source_resolved(
            lease.run_id,
            &SourceResolved {
                attempt: lease.attempt,
                commit: checkout.commit.clone(),
                branch: checkout.branch.clone(),
                task_file,
            },
        )
        .await
        .map_err(|e| {
            // A 4xx is the names' fault (a template needing a branch a tag build lacks, say);
            // anything else is the server's or the network's.
            let outcome = match &e {
                ClientError::Server { status, .. } if status.is_client_error() => Outcome::Failed,
                _ => Outcome::Error,
            };
            (outcome, e.to_string())
        })?;
    if let Purpose::Workspace { .. } = purpose {
        let tar = scratch.path().join("workspace.tar");
        let (dir, out) = (checkout.context_dir.clone(), tar.clone());
        tokio::task::spawn_blocking(move || tar_folder(&dir, &out))
            .await
            .map_err(|e| (Outcome::Error, format!("packing the checkout stopped: {e}")))?
            .map_err(|e| (Outcome::Error, format!("packing the checkout: {e}")))?;
        return Ok(Prepared {
            dockerfile: spec.dockerfile.clone(),
            archive: Archive::File(tar),
            resolved: Some(reply),
            _scratch: Some(scratch),
        });
    }
    let request = PackRequest {
        dockerfile: checkout.context_dir.join(&spec.dockerfile),
        context_dir: checkout.context_dir,
    };
    let plan = tokio::task::spawn_blocking(move || pack::plan(&request))
        .await
        .map_err(|e| (Outcome::Error, format!("packing the checkout stopped: {e}")))?
        .map_err(|e| (Outcome::Failed, e.to_string()))?;
    Ok(Prepared {
        dockerfile: plan.dockerfile_in_archive.clone(),
        archive: Archive::Packed(plan),
        resolved: Some(reply),
        _scratch: Some(scratch),
    })
}

/// A deferred task file's text, from the checked-out context folder. The path stays inside
/// the folder: the server checked it when the task was saved, and it is checked again here,
/// since a symlink in the repository could point anywhere.
fn read_task_file(dir: &Path, path: &str, commit: &str) -> Result<String, SourceError> {
    let failed = |why: String| (Outcome::Failed, format!("task file {path}: {why}"));
    let root = dir
        .canonicalize()
        .map_err(|e| (Outcome::Error, format!("reading the checkout: {e}")))?;
    let file = root
        .join(path)
        .canonicalize()
        .map_err(|_| failed(format!("not found in the context at commit {commit}")))?;
    if !file.starts_with(&root) {
        return Err(failed("it points outside the context".into()));
    }
    let meta = std::fs::metadata(&file).map_err(|e| failed(e.to_string()))?;
    if !meta.is_file() {
        return Err(failed("not a file".into()));
    }
    if meta.len() > MAX_TASK_FILE {
        return Err(failed(format!(
            "{} is larger than the {} a task file may be",
            human_size(meta.len()),
            human_size(MAX_TASK_FILE)
        )));
    }
    std::fs::read_to_string(&file).map_err(|e| failed(format!("not readable as UTF-8 text: {e}")))
}

/// Writes `dir` as a tar file at `out`, symlinks kept as links.
fn tar_folder(dir: &Path, out: &Path) -> io::Result<()> {
    let mut tar = tar::Builder::new(io::BufWriter::new(std::fs::File::create(out)?));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// A wrong URL, ref or credentials is the user's to fix; a fetch that broke is not.
fn git_outcome(e: &GitError) -> Outcome {
    match e {
        GitError::Fetch { .. } => Outcome::Error,
        _ => Outcome::Failed,
    }
}

async fn tarball_context(
    url: &str,
    dockerfile: &str,
    policy: FetchPolicy,
    limits: &ContextLimits,
    log: &LogSink,
) -> Result<Prepared, SourceError> {
    let shown = crate::protocol::redact_url(url);
    log.line(format!("Downloading tarball context {shown}"));
    let scratch = scratch_dir()?;
    let path = scratch.path().join("context.tar");
    let size = download(url, &path, &shown, policy, limits.max_size).await?;
    let check = path.clone();
    let limits = *limits;
    let summary = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(check).map_err(crate::context::verify::VerifyError::Io)?;
        verify_archive(io::BufReader::new(file), &limits)
    })
    .await
    .map_err(|e| (Outcome::Error, format!("checking the tarball stopped: {e}")))?
    .map_err(|e| (Outcome::Failed, format!("tarball {shown} rejected: {e}")))?;
    log.line(format!(
        "Downloaded {}: {} entries",
        human_size(size),
        summary.entries
    ));
    Ok(Prepared {
        archive: Archive::File(path),
        dockerfile: dockerfile.to_string(),
        resolved: None,
        _scratch: Some(scratch),
    })
}

/// GETs `url` into `path`, retrying server errors and broken connections with backoff.
/// A 4xx answer is final: asking again will not change it, nor will the policy's refusal
/// of the URL or of a redirect, nor a tarball over `max_size` bytes.
async fn download(
    url: &str,
    path: &Path,
    shown: &str,
    policy: FetchPolicy,
    max_size: u64,
) -> Result<u64, SourceError> {
    let refused =
        |reason: fetch_policy::PolicyError| (Outcome::Failed, format!("tarball {shown}: {reason}"));
    fetch_policy::check_url(url, Fetcher::Http)
        .and_then(|target| policy.check_literal(&target))
        .map_err(refused)?;
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        // A server that stops sending is a failed download to retry, not a run that hangs.
        .read_timeout(Duration::from_secs(60));
    let http = fetch_policy::http_client(builder, policy)
        .build()
        .map_err(|e| (Outcome::Error, format!("HTTP client: {e}")))?;
    let mut last = String::new();
    for attempt in 0..DOWNLOAD_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        let resp = match http.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(reason) = fetch_policy::refusal(&e) {
                    return Err(refused(reason));
                }
                last = format!("tarball download failed: {shown}: {}", without_url(&e));
                continue;
            }
        };
        let status = resp.status();
        if status.is_redirection() {
            // reqwest hands back only redirects it cannot follow: to a Location no HTTP
            // URL parser takes, such as file:///etc/passwd. Never fetched; say why.
            let to = resp.headers().get(reqwest::header::LOCATION);
            let to = to.and_then(|to| to.to_str().ok()).unwrap_or_default();
            return Err(match fetch_policy::check_url(to, Fetcher::Http) {
                Err(reason) => refused(reason),
                Ok(_) => (
                    Outcome::Failed,
                    format!("tarball download failed: {shown} answered HTTP {status}"),
                ),
            });
        }
        if status.is_client_error() {
            return Err((
                Outcome::Failed,
                format!("tarball download failed: {shown} answered HTTP {status}"),
            ));
        }
        if !status.is_success() {
            last = format!("tarball download failed: {shown} answered HTTP {status}");
            continue;
        }
        match save(resp, path, max_size).await {
            Ok(size) => return Ok(size),
            Err(e) if is_too_large(&e) => {
                return Err((Outcome::Failed, format!("tarball {shown} rejected: {e}")))
            }
            Err(e) => last = format!("tarball download failed: {shown}: {e}"),
        }
    }
    Err((Outcome::Error, last))
}

async fn save(resp: reqwest::Response, path: &Path, max_size: u64) -> io::Result<u64> {
    check_size(resp.content_length().unwrap_or(0), max_size)?;
    let mut file = tokio::fs::File::create(path).await?;
    let mut body = resp.bytes_stream().map_err(io::Error::other);
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        check_size(size, max_size)?;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(size)
}

/// A tarball larger than the server's `--max-context-size`, which holds uploads too.
#[derive(Debug, thiserror::Error)]
#[error("it is larger than the server's limit of {} for a build context", human_size(*limit))]
struct TooLarge {
    limit: u64,
}

/// Refuses a download once it is (or says it will be) over `limit` bytes.
fn check_size(size: u64, limit: u64) -> io::Result<()> {
    if size > limit {
        return Err(io::Error::other(TooLarge { limit }));
    }
    Ok(())
}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
}

/// reqwest's errors repeat the URL, which may hold credentials.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "");
    }
    msg.trim_matches(|c: char| c == ' ' || c == '(' || c == ')' || c == ':')
        .to_string()
}

fn scratch_dir() -> Result<tempfile::TempDir, SourceError> {
    tempfile::Builder::new()
        .prefix("kiln-context-")
        .tempdir()
        .map_err(|e| (Outcome::Error, format!("cannot make a scratch dir: {e}")))
}
