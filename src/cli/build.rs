//! `kiln build`: pack a local folder, upload it, queue a run, stream its log and exit with its
//! result, like `az acr build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Args;
use futures::StreamExt;
use kiln_worker::git::GitSource;
use kiln_worker::protocol::{ContextSource, Digest, PlatformSet, RunStatus, Secret};

use super::client::KilnClient;
use super::follow::print_log;
use super::progress::UploadProgress;
use super::{CliError, OutputFormat, ReconnectArgs, ServerArgs};
use crate::context::pack::{self, PackPlan, PackRequest};
use crate::submission::{self, RunOptions};
use crate::wire::{CreateRun, Run};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a local folder, a git URL (`https://host/repo.git#ref:subdir`) or a
    /// tar/tar.gz URL.
    pub context: String,
    /// Image name and tag, templated (`app:<<.Run.ID>>`); repeatable. None: build only.
    #[arg(short = 't', long = "image")]
    pub images: Vec<String>,
    /// Dockerfile path: for a local folder relative to the current directory (default:
    /// CONTEXT/Dockerfile); for a git or tarball context relative to its root (default: Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Build argument NAME=VALUE (NAME alone takes the value from the environment); repeatable.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// The Dockerfile stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform(s), os/arch[/variant]; a comma-separated list builds one image index.
    #[arg(long, default_value = "linux/amd64")]
    pub platform: PlatformSet,
    /// Build, but push nothing.
    #[arg(long)]
    pub no_push: bool,
    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Run timeout in seconds (default: the server's, 3600).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// How long the run may wait for a worker before it ends as Expired: seconds, or e.g.
    /// 10m, 1h (default: the server's, 1h; 0: no limit).
    #[arg(long, value_parser = crate::config::parse_duration)]
    pub queue_timeout: Option<std::time::Duration>,
    /// HTTP credentials for a private git repository (sent as the password).
    #[arg(long, env = "KILN_GIT_ACCESS_TOKEN", hide_env_values = true, value_parser = crate::config::parse_secret)]
    pub git_access_token: Option<Secret>,
    #[command(flatten)]
    pub follow: Follow,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: BuildArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&args.server)?;
    let build_args = parse_build_args(&args.build_args)?;
    check_before_upload(&client, &args, &build_args).await?;
    if args.images.is_empty() && !args.no_push {
        eprintln!("warning: '--image or -t' is not provided. Skipping image push after build.");
    }
    let (context, dockerfile) = context_source(&client, &args).await?;

    let run = client
        .create_run(&CreateRun {
            context,
            dockerfile,
            images: args.images.clone(),
            build_args,
            target: args.target.clone(),
            platform: Some(args.platform.clone()),
            push: !args.no_push,
            no_cache: args.no_cache,
            timeout_secs: args.timeout,
            git_access_token: args.git_access_token.clone(),
            queue_timeout_secs: args.queue_timeout.map(|t| t.as_secs()),
        })
        .await?;
    eprintln!("Queued a build with ID: {}", run.id);
    follow_queued(&client, &run, &args.follow).await
}

/// How `kiln build` and `kiln run -f` follow the run they queued.
#[derive(Debug, Args)]
pub struct Follow {
    /// Wait for the run without streaming its log.
    #[arg(long, conflicts_with = "no_wait")]
    pub no_logs: bool,
    /// Print the run ID once queued and return.
    #[arg(long)]
    pub no_wait: bool,
    /// `json` prints the final run as JSON on stdout (the log then goes to stderr).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
}

/// After "Queued ... with ID": warns if no worker can take the run, then returns at once
/// (`no_wait`) or follows the run to its end and exits with its result.
pub(super) async fn follow_queued(
    client: &KilnClient,
    run: &Run,
    follow: &Follow,
) -> Result<(), CliError> {
    if let Some(warning) = &run.warning {
        eprintln!("warning: {warning}");
    }
    if follow.no_wait {
        return print_final(run, follow.output, true);
    }
    eprintln!("Waiting for an agent...");
    let (no_logs, output) = (follow.no_logs, follow.output);
    let followed = tokio::select! {
        r = follow_run(client, run, no_logs, output, follow.reconnect.reconnect_timeout) => r,
        _ = tokio::signal::ctrl_c() => return Err(interrupted(run)),
    };
    followed?;
    let done = client.run(&run.id.to_string()).await?;
    print_final(&done, output, false)?;
    finish(&done, !no_logs)
}

/// Checks what the server would refuse, with its own rules, before anything is packed or
/// uploaded: a bad tag or timeout should not cost a gigabyte upload.
async fn check_before_upload(
    client: &KilnClient,
    args: &BuildArgs,
    build_args: &BTreeMap<String, String>,
) -> Result<(), CliError> {
    let is_git = kiln_worker::git::looks_like_git(&args.context);
    if args.git_access_token.is_some() && !is_git {
        return Err(CliError::Input(
            "--git-access-token only goes with a git context".into(),
        ));
    }
    let Some(limits) = client.limits().await? else {
        return Ok(());
    };
    let options = RunOptions {
        images: &args.images,
        is_git,
        platform: &args.platform,
        build_args,
        target: args.target.as_deref(),
        timeout_secs: args.timeout,
        queue_timeout_secs: args.queue_timeout.map(|t| t.as_secs()),
    };
    submission::check(&options, &limits).map_err(CliError::Input)
}

/// Where the build context comes from, and the Dockerfile's path inside it. A local folder is
/// packed and uploaded here; git and tarball contexts are fetched by the worker.
async fn context_source(
    client: &KilnClient,
    args: &BuildArgs,
) -> Result<(ContextSource, String), CliError> {
    let arg = args.context.as_str();
    if let Some(source) = remote_source(arg)? {
        let dockerfile = match &args.file {
            Some(f) => f.to_string_lossy().into_owned(),
            None => "Dockerfile".to_string(),
        };
        return Ok((source, dockerfile));
    }
    let dir = PathBuf::from(arg);
    let dockerfile = args.file.clone().unwrap_or_else(|| dir.join("Dockerfile"));
    pack_and_upload(client, dir, dockerfile).await
}

/// A git URL (`https://host/repo.git#ref:subdir`) or a tarball URL as a context source;
/// `None` for anything else (a local folder).
pub(super) fn remote_source(arg: &str) -> Result<Option<ContextSource>, CliError> {
    if kiln_worker::git::looks_like_git(arg) {
        let git = GitSource::parse(arg).map_err(|e| CliError::Input(e.to_string()))?;
        return Ok(Some(ContextSource::Git {
            url: git.url,
            reference: git.reference,
            subdir: git.subdir,
        }));
    }
    if arg.starts_with("http://") || arg.starts_with("https://") {
        return Ok(Some(ContextSource::Tarball {
            url: arg.to_string(),
        }));
    }
    Ok(None)
}

/// Packs a local folder (with `dockerfile`, placed in the archive if it lies outside) and
/// uploads it unless the server has it: the uploaded context and the Dockerfile's path in it.
pub(super) async fn pack_and_upload(
    client: &KilnClient,
    dir: PathBuf,
    dockerfile: PathBuf,
) -> Result<(ContextSource, String), CliError> {
    eprintln!("Packing source code into tar to upload...");
    let req = PackRequest {
        context_dir: dir,
        dockerfile,
    };
    let plan = tokio::task::spawn_blocking(move || pack::plan(&req))
        .await
        .map_err(|e| CliError::Input(format!("packing failed: {e}")))?
        .map_err(|e| CliError::Input(e.to_string()))?;
    for name in &plan.excluded_defaults {
        eprintln!("Excluding '{name}' based on default ignore rules");
    }
    let dockerfile = plan.dockerfile_in_archive.clone();
    let digest = upload(client, plan).await?;
    Ok((ContextSource::Upload { digest }, dockerfile))
}

/// Streams the run's log (to stderr with `-o json`, or nowhere with `no_logs`) until it
/// ends.
async fn follow_run(
    client: &KilnClient,
    run: &Run,
    no_logs: bool,
    output: OutputFormat,
    reconnect: std::time::Duration,
) -> Result<(), CliError> {
    if no_logs {
        // The follow stream ends exactly when the run does: a wait without polling.
        return print_log(client, run.id, true, reconnect, &mut std::io::sink()).await;
    }
    if output == OutputFormat::Json {
        print_log(client, run.id, true, reconnect, &mut std::io::stderr()).await
    } else {
        print_log(client, run.id, true, reconnect, &mut std::io::stdout()).await
    }
}

/// Uploads the context unless the server already has it. The digest of an unchanged folder is
/// remembered by its file-metadata fingerprint, so a re-upload costs a walk and one request.
pub(super) async fn upload(client: &KilnClient, plan: PackPlan) -> Result<Digest, CliError> {
    let cache = fingerprint_cache(client.server(), &plan.fingerprint);
    if let Some(digest) = cache.as_deref().and_then(cached_digest) {
        if client.context_exists(&digest).await? {
            eprintln!(
                "Build context unchanged since its last upload ({digest}): not sending it again"
            );
            return Ok(digest);
        }
    }
    let progress = UploadProgress::start(plan.total_bytes, plan.file_count);
    let files = plan.file_count;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let on_progress = progress.clone();
    let body = pack::stream_tar_gz(plan, move |p| on_progress.update(p)).map(move |chunk| {
        if let Ok(c) = &chunk {
            counter.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    let uploaded = client.upload_context(body).await?;
    progress.finish(files, sent.load(Ordering::Relaxed));
    if let Some(path) = cache {
        // Best effort: without the cache entry the next build just uploads again.
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|()| std::fs::write(&path, uploaded.digest.as_str()));
    }
    Ok(uploaded.digest)
}

/// `$XDG_CACHE_HOME/kiln/contexts/<server-hash>-<fingerprint>`.
fn fingerprint_cache(server: &str, fingerprint: &str) -> Option<PathBuf> {
    use sha2::Digest as _;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let server = hex::encode(&sha2::Sha256::digest(server.as_bytes())[..8]);
    Some(
        base.join("kiln")
            .join("contexts")
            .join(format!("{server}-{fingerprint}")),
    )
}

fn cached_digest(path: &Path) -> Option<Digest> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn parse_build_args(raw: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut args = BTreeMap::new();
    for arg in raw {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            // Docker's rule: a bare NAME takes its value from the environment, or is skipped.
            None => match std::env::var(arg) {
                Ok(v) => (arg.clone(), v),
                Err(_) => continue,
            },
        };
        if name.is_empty() {
            return Err(CliError::Input(format!(
                "invalid --build-arg '{arg}': expected NAME=VALUE"
            )));
        }
        args.insert(name, value);
    }
    Ok(args)
}

fn print_final(run: &Run, output: OutputFormat, queued_only: bool) -> Result<(), CliError> {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(run)
                .map_err(|e| CliError::Server(format!("cannot print the run: {e}")))?
        ),
        OutputFormat::Table if queued_only => println!("{}", run.id),
        OutputFormat::Table => {}
    }
    Ok(())
}

/// Success, or the error that carries the run's exit code. The reason is left out when the
/// log was shown, whose closing line already gave it.
pub fn finish(run: &Run, log_shown: bool) -> Result<(), CliError> {
    if run.status == RunStatus::Succeeded {
        return Ok(());
    }
    let reason = run
        .error_message
        .as_deref()
        .filter(|_| !log_shown)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Err(CliError::RunEnded {
        status: run.status,
        message: format!(
            "Run {} finished with status {}{reason}. Show details with 'kiln run show {}'",
            run.id, run.status, run.id
        ),
    })
}

pub fn interrupted(run: &Run) -> CliError {
    CliError::Interrupted(format!(
        "\nStopped following run {id}; it goes on on the server.\n  follow it: kiln run logs {id} --follow\n  cancel it: kiln run cancel {id}",
        id = run.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_parse_like_docker() {
        std::env::set_var("KILN_TEST_BUILD_ARG", "from-env");
        let args = parse_build_args(&[
            "A=1".into(),
            "B=x=y".into(),
            "KILN_TEST_BUILD_ARG".into(),
            "KILN_TEST_UNSET_ARG".into(),
        ])
        .unwrap();
        assert_eq!(args["A"], "1");
        assert_eq!(args["B"], "x=y");
        assert_eq!(args["KILN_TEST_BUILD_ARG"], "from-env");
        assert!(!args.contains_key("KILN_TEST_UNSET_ARG"));
        assert!(parse_build_args(&["=v".into()]).is_err());
    }
}
