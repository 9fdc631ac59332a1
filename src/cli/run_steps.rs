//! `kiln run -f FILE CONTEXT` and `kiln run --cmd 'IMAGE ARGS' CONTEXT`: start a multi-step
//! run like `az acr run`, stream its log and exit with its result, as `kiln build` does.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use kiln_worker::protocol::{ContextSource, PlatformSet, Secret};

use super::build::{follow_queued, pack_and_upload, remote_source, Follow};
use super::client::KilnClient;
use super::pairs::pairs;
use super::task::read_values;
use super::{CliError, ServerArgs};
use crate::taskfile::Values;
use crate::wire::CreateStepsRun;

/// The task file `-f` names when not given, as for `az acr run`.
const DEFAULT_TASK_FILE: &str = "acb.yaml";
/// A context of `/dev/null` starts the run on an empty workspace.
const NO_CONTEXT: &str = "/dev/null";

#[derive(Debug, Args)]
pub struct StartArgs {
    /// What seeds the run's /workspace: a local folder (uploaded), a git URL
    /// (`https://host/repo.git#ref:subdir`), a tar/tar.gz URL, or /dev/null (nothing).
    pub context: Option<String>,
    /// The task file (ACR task YAML), read from this machine; `-` reads stdin.
    /// Default: acb.yaml (in the context folder when not in the current one).
    #[arg(short = 'f', long = "file", conflicts_with = "cmd")]
    pub file: Option<String>,
    /// One container step instead of a task file: `IMAGE [ARGS...]`.
    #[arg(long)]
    pub cmd: Option<String>,
    /// A value for the task, NAME=VALUE (`{{.Values.NAME}}`); repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// A secret value, NAME=VALUE: sealed on the server and masked in logs; repeatable.
    #[arg(long = "set-secret")]
    pub set_secret: Vec<String>,
    /// A YAML file of values (nested names become `a.b`); --set wins over it.
    #[arg(long = "values")]
    pub values: Option<PathBuf>,
    /// The platform(s) the steps run on.
    #[arg(long, default_value = "linux/amd64")]
    pub platform: PlatformSet,
    /// Run timeout in seconds (default: the server's, 3600).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// HTTP credentials for a private git repository (sent as the password).
    #[arg(long, env = "KILN_GIT_ACCESS_TOKEN", hide_env_values = true, value_parser = crate::config::parse_secret)]
    pub git_access_token: Option<Secret>,
    #[command(flatten)]
    pub follow: Follow,
}

/// Starts the run, follows it and exits with its result.
pub async fn start(args: StartArgs, server: &ServerArgs) -> Result<(), CliError> {
    let Some(context_arg) = args.context.clone() else {
        return Err(CliError::Input(
            "give a context: a folder, a git URL, a tarball URL or /dev/null \
             (e.g. kiln run -f acb.yaml .)"
                .into(),
        ));
    };
    let (file_name, task_file) = match (&args.cmd, args.file.as_deref()) {
        (Some(_), _) => (None, None),
        (None, file) => {
            let (name, text) = read_task_file(file, &context_arg)?;
            (Some(name), Some(text))
        }
    };
    let values = values(&args)?;
    let client = KilnClient::new(server)?;
    let context = context_source(&client, &context_arg, file_name.as_deref()).await?;
    let run = client
        .create_steps_run(&CreateStepsRun {
            task_file,
            file_name,
            cmd: args.cmd.clone(),
            values: values.plain,
            secret_values: values.secret,
            context,
            platform: Some(args.platform.clone()),
            timeout_secs: args.timeout,
            queue_timeout_secs: None,
            git_access_token: args.git_access_token.clone(),
        })
        .await?;
    eprintln!("Queued a run with ID: {}", run.id);
    follow_queued(&client, &run, &args.follow).await
}

/// The task file's name (for errors) and text: `-` is stdin; a relative path is looked up in
/// the current folder, then in a local context folder.
fn read_task_file(file: Option<&str>, context: &str) -> Result<(String, String), CliError> {
    let file = file.unwrap_or(DEFAULT_TASK_FILE);
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Input(format!("cannot read the task file from stdin: {e}")))?;
        return Ok(("stdin".into(), text));
    }
    let here = PathBuf::from(file);
    let in_context = Path::new(context).join(file);
    let path = if !here.exists() && is_folder(context) && in_context.exists() {
        in_context
    } else {
        here
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Input(format!("cannot read task file '{}': {e}", path.display())))?;
    Ok((file.to_string(), text))
}

fn is_folder(context: &str) -> bool {
    context != NO_CONTEXT && Path::new(context).is_dir()
}

/// The context as the server takes it; a local folder is packed and uploaded first, with the
/// task file in it when it lies inside.
async fn context_source(
    client: &KilnClient,
    arg: &str,
    task_file: Option<&str>,
) -> Result<Option<ContextSource>, CliError> {
    if arg == NO_CONTEXT {
        return Ok(None);
    }
    if let Some(source) = remote_source(arg)? {
        return Ok(Some(source));
    }
    folder_context(client, PathBuf::from(arg), task_file).await
}

/// A local folder, packed and uploaded as a run's workspace, with the task file in it when it
/// lies inside.
pub(super) async fn folder_context(
    client: &KilnClient,
    dir: PathBuf,
    task_file: Option<&str>,
) -> Result<Option<ContextSource>, CliError> {
    // The packer places one named file in the archive: the task file when the folder has it,
    // else an empty stand-in (packed under .kiln/ only if it is not in the folder).
    let in_folder = task_file.map(|f| dir.join(f)).filter(|p| p.is_file());
    let stand_in;
    let named = match in_folder {
        Some(path) => path,
        None => {
            stand_in = tempfile::NamedTempFile::new()
                .map_err(|e| CliError::Input(format!("cannot create a temporary file: {e}")))?;
            stand_in.path().to_path_buf()
        }
    };
    let (source, _) = pack_and_upload(client, dir, named).await?;
    Ok(Some(source))
}

/// The run's values: the `--values` file (YAML, nested names flattened to `a.b`, as
/// `kiln task validate` reads it), then `--set` over it, and `--set-secret`.
fn values(args: &StartArgs) -> Result<Values, CliError> {
    let file = match &args.values {
        Some(path) => Some((path.display().to_string(), read_values(path)?)),
        None => None,
    };
    let file = file.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
    let set = pairs("--set", &args.set)?;
    let secret = pairs("--set-secret", &args.set_secret)?;
    Values::from_parts(file, &set, &secret).map_err(|e| CliError::Input(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_files_may_nest_and_set_wins_over_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, "# env\nenv: prod\nimage:\n  tag: \"v 2\"\n").unwrap();
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            start: StartArgs,
        }
        let cli = <Cli as clap::Parser>::parse_from(["run", "--values", path.to_str().unwrap()]);
        let mut args = cli.start;
        args.set = vec!["env=staging".into()];
        args.set_secret = vec!["pw=hunter2".into()];
        let got = values(&args).unwrap();
        assert_eq!(got.plain["env"], "staging");
        assert_eq!(got.plain["image.tag"], "v 2");
        assert_eq!(got.secret["pw"].expose(), "hunter2");
        args.values = Some(dir.path().join("missing.yaml"));
        let err = values(&args).unwrap_err().to_string();
        assert!(err.contains("missing.yaml"), "{err}");
    }
}
