//! JSON shapes of the public API, shared by the server's routes and the CLI.
//! Database rows live apart, in `store`; the worker protocol lives in `kiln_worker::protocol`.

pub mod acr;
pub mod base_images;
pub mod hooks;
pub mod registry;
pub mod tasks;
pub mod timers;
pub mod webhooks;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kiln_worker::protocol::{
    BaseImage, ContextSource, Digest, JobKind, OutputImage, PlatformSet, PurgeCounts, RunId,
    RunStatus, Secret, StepState, StepStatus, StepType,
};
use serde::{Deserialize, Serialize};

use crate::access::{RepoPattern, Role, TokenName};

/// `POST /api/runs`: queue a build.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRun {
    pub context: ContextSource,
    /// The Dockerfile's path inside the context.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// Image names, possibly templated (`app:<<.Run.ID>>`). Empty: build only.
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    /// One platform, or several (`linux/amd64,linux/arm64`) for one multi-platform image.
    pub platform: Option<PlatformSet>,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// HTTP credentials for a private git context. Stored for the worker; never shown again.
    #[serde(default)]
    pub git_access_token: Option<Secret>,
    /// Seconds the run may wait for a worker before it ends as Expired (Cloud Build's
    /// `queueTtl`); 0: no limit. Default: the server's `--queue-timeout`.
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
}

/// `POST /api/runs/steps`: queue a multi-step run from a task file or a `--cmd`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStepsRun {
    /// The task file's text (ACR task YAML); exactly one of it and `cmd`.
    #[serde(default)]
    pub task_file: Option<String>,
    /// The task file's name, for error messages (`acb.yaml`).
    #[serde(default)]
    pub file_name: Option<String>,
    /// `IMAGE [ARGS...]`: one `cmd` step.
    #[serde(default)]
    pub cmd: Option<String>,
    /// `.Values.*` from `--set` and `--values`.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// `.Values.*` from `--set-secret`: sealed at rest, masked in logs.
    #[serde(default)]
    pub secret_values: BTreeMap<String, Secret>,
    /// Seeds the run's workspace; `null`: an empty one (`/dev/null`).
    #[serde(default)]
    pub context: Option<ContextSource>,
    #[serde(default)]
    pub platform: Option<PlatformSet>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
    #[serde(default)]
    pub git_access_token: Option<Secret>,
}

/// `POST /api/runs/purge`: queue a purge run (`kiln purge`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePurgeRun {
    /// `acr purge`'s arguments as given (`--filter`, `--ago`, …, `--registry`), without
    /// `acr purge`; `$Registry` and `{{.Run.Registry}}` stand for the run's registry.
    pub words: Vec<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
}

/// `POST /api/runs/scan`: queue a scan run (`kiln scan`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateScanRun {
    /// `kiln scan`'s arguments as given (images, `--all`, `--severity-threshold`, …), without
    /// `kiln scan`.
    pub words: Vec<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

fn yes() -> bool {
    true
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: RunId,
    pub status: RunStatus,
    pub trigger: String,
    /// Who queued it: `token 'ci'`.
    #[serde(default)]
    pub submitted_by: Option<String>,
    pub platform: PlatformSet,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Image names as requested, before templating.
    pub images: Vec<String>,
    /// Image names after templating and registry prefixing.
    pub rendered_images: Vec<String>,
    pub push: bool,
    pub output_images: Vec<OutputImage>,
    pub error_message: Option<String>,
    pub timeout_secs: u64,
    pub worker: Option<String>,
    /// Where the context came from, with any URL credentials masked.
    pub context: String,
    pub context_digest: Option<Digest>,
    /// What a git context's ref resolved to.
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub dockerfile: String,
    pub target: Option<String>,
    pub no_cache: bool,
    pub status_history: Vec<StatusChange>,
    /// While queued: 1 means next for its platform. `null` once the run left the queue.
    #[serde(default)]
    pub queue_position: Option<u32>,
    /// While queued: why it waits, e.g. "all 2 workers for linux/amd64 are busy".
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// Seconds the run may wait for a worker before it ends as Expired; 0: no limit.
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
    /// While queued and no connected worker can take it: says so, and how long it may wait.
    #[serde(default)]
    pub warning: Option<String>,
    /// `build`, `steps` or `purge`.
    #[serde(default = "build_kind")]
    pub kind: JobKind,
    /// What triggered the run beyond `trigger` (a commit, a timer...); `null` for Manual.
    #[serde(default)]
    pub trigger_detail: Option<serde_json::Value>,
    /// Every step in order; a build run has one, `build`.
    #[serde(default)]
    pub steps: Vec<RunStep>,
    /// The saved task the run belongs to, while it exists (`run show` only).
    #[serde(default)]
    pub task: Option<String>,
}

fn build_kind() -> JobKind {
    JobKind::Build
}

/// One step of a run, as `run show` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStep {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i64>,
    /// What a build step built, or a push step pushed, with digests.
    #[serde(default)]
    pub images: Vec<OutputImage>,
    /// `FROM` images a build step resolved, with their digests.
    #[serde(default)]
    pub base_images: Vec<BaseImage>,
    pub error: Option<String>,
    /// What a purge step deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<PurgeCounts>,
}

impl From<StepState> for RunStep {
    fn from(s: StepState) -> RunStep {
        let time = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        RunStep {
            id: s.id,
            step_type: s.step_type,
            status: s.status,
            started_at: s.started_at.map(time),
            finished_at: s.finished_at.map(time),
            exit_code: s.exit_code,
            images: s.images,
            base_images: s.base_images,
            error: s.error,
            purged: s.purged,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: RunStatus,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<Run>,
}

/// `POST /api/contexts`: what the server stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextUploaded {
    pub digest: Digest,
    pub size: u64,
}

/// Query of `GET /api/runs/{id}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub follow: bool,
}

/// Query of `GET /api/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    pub status: Option<RunStatus>,
    pub top: Option<u32>,
    /// `repo` (any tag) or `repo:tag`; without a registry, the server's default one.
    pub image: Option<String>,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    pub name: TokenName,
    pub roles: Vec<Role>,
    /// Repository patterns the roles apply to; none for owner and worker tokens.
    #[serde(default)]
    pub repositories: Vec<RepoPattern>,
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// A token as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub name: String,
    pub roles: Vec<Role>,
    pub repositories: Vec<RepoPattern>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The answer to `POST /api/tokens`, the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub secret: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// `GET /api/limits`: the server's rules for run requests that depend on its configuration,
/// so `kiln build` can check a request before it uploads the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitLimits {
    /// Smallest run timeout a client may ask for (`kiln serve --min-timeout`).
    pub min_timeout_secs: u64,
    /// Largest run timeout a client may ask for.
    pub max_timeout_secs: u64,
    /// The registry of image names that name none (`<<.Run.Registry>>`).
    pub default_registry: String,
}
