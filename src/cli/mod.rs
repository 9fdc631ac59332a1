//! The `kiln` command line: one file per command group. Client commands talk to the server
//! over HTTP only, so they work from a laptop with no Docker.

pub mod build;
pub mod client;
pub mod credentials;
pub mod docker_config;
pub mod follow;
pub mod format;
pub mod login;
mod pairs;
pub mod progress;
pub mod purge;
pub mod registry;
pub mod registry_login;
pub mod run;
pub mod run_steps;
pub mod scan;
pub mod task;
pub mod task_base_images;
mod task_hooks;
mod task_timer;
pub mod task_validate;
pub mod token;
pub mod vulndb;
pub mod webhook;
mod words;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kiln_worker::protocol::{RunStatus, Secret};

use crate::config::{parse_secret, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Self-hosted cloud builds for container images"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kiln server: API, queue and (by default) one embedded worker.
    Serve(ServeArgs),
    /// Pack a local folder, upload it, build it on a worker and stream the logs.
    Build(build::BuildArgs),
    /// Start a multi-step run (`-f FILE` or `--cmd`, and a context), or inspect and control
    /// runs.
    Run(run::RunArgs),
    /// Manage Kiln's own registry: repositories, tags, manifests and garbage collection.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Create, list and revoke access tokens (owners only).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Check a token and store it for a server, for use from this machine.
    Login(login::LoginArgs),
    /// Forget the stored token for a server.
    Logout(login::LogoutArgs),
    /// Saved tasks (create, list, show, update, delete, run, list-runs, logs) and task files (validate).
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Send registry and run events to URLs, signed (owners only).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Delete old tags and untagged manifests as `acr purge` does, as a run: streams its log
    /// and exits with its result.
    Purge(purge::PurgeCmd),
    /// Scan images for their packages and known vulnerabilities (every platform of an index),
    /// as a run: streams its log and exits with its result (1 at --severity-threshold);
    /// `kiln scan show IMAGE` prints the stored report.
    Scan(scan::ScanCmd),
    /// The vulnerability database scans are matched against: import OSV data, show its
    /// sources.
    #[command(subcommand)]
    Vulndb(vulndb::VulnDbCommand),
}

/// How client commands find the server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Kiln server's base URL; without a scheme, http:// for loopback hosts and
    /// https:// for others (`127.0.0.1:8080`, `buildhost:8080`).
    #[arg(
        long,
        env = "KILN_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_parser = kiln_worker::server_url::normalize,
        global = true
    )]
    pub server: String,
    /// API token; default: the one stored for --server by `kiln login` (or by `kiln serve`
    /// on this machine).
    #[arg(long, env = "KILN_TOKEN", hide_env_values = true, value_parser = parse_secret, global = true)]
    pub token: Option<Secret>,
    /// Where tokens are stored per server (default: $XDG_CONFIG_HOME/kiln/credentials.json,
    /// else ~/.config/kiln/credentials.json).
    #[arg(long, env = "KILN_CREDENTIALS_FILE", global = true)]
    pub credentials_file: Option<PathBuf>,
}

impl ServerArgs {
    /// `--token`/`KILN_TOKEN`, else the credentials file's entry for `--server`.
    pub fn resolve_token(&self) -> Result<Option<Secret>, CliError> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        let found = credentials::path(self.credentials_file.as_deref())
            .and_then(|path| credentials::token_for(&path, &self.server));
        match found {
            Ok(token) => Ok(token),
            // Without a place for the file there is no stored token; the server says what to do.
            Err(credentials::CredentialsError::NoLocation) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The arguments of a client command that only prints: where the server is and how to print.
#[derive(Debug, Args)]
pub struct OutputArgs {
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `--output` of client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// What went wrong in a client command, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server rejected the request (400, 404, 413…): the input is at fault.
    #[error("{0}")]
    Rejected(String),
    /// Caught before anything was sent (missing Dockerfile, unreadable context).
    #[error("{0}")]
    Input(String),
    /// The server could not be reached or failed.
    #[error("{0}")]
    Server(String),
    /// The run ended without succeeding.
    #[error("{message}")]
    RunEnded { status: RunStatus, message: String },
    /// The user stopped following with Ctrl-C.
    #[error("{0}")]
    Interrupted(String),
    /// The server went away while a run was followed and did not come back in time.
    #[error("{0}")]
    LostServer(String),
}

impl CliError {
    /// 0 is success. 1: Failed (or a client-side failure), 2: bad input, 3: Canceled,
    /// 4: Timeout, 5: Error (infrastructure), 6: Expired (no worker took it), 7: lost the
    /// server while following a run (how the run ends is unknown), 130: interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Rejected(_) | CliError::Input(_) => 2,
            CliError::Server(_) => 1,
            CliError::RunEnded { status, .. } => status_exit_code(*status),
            CliError::Interrupted(_) => 130,
            CliError::LostServer(_) => 7,
        }
    }
}

pub fn status_exit_code(status: RunStatus) -> i32 {
    match status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed | RunStatus::Queued | RunStatus::Running => 1,
        RunStatus::Canceled => 3,
        RunStatus::Timeout => 4,
        RunStatus::Error => 5,
        RunStatus::Expired => 6,
    }
}

/// How long following a run keeps trying to reach a server that went away.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReconnectArgs {
    /// When the server goes away while following a run, keep trying this long before giving
    /// up with exit code 7: seconds, or e.g. 90s, 5m.
    #[arg(long, env = "KILN_RECONNECT_TIMEOUT", default_value = "60s", value_parser = crate::config::parse_duration)]
    pub reconnect_timeout: std::time::Duration,
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
