//! The worker API: leasing runs, heartbeats, log uploads, resolved sources and results.

use serde::{Deserialize, Serialize};

use super::{
    BaseImage, BuildSpec, ContextLimits, ContextStats, ImageRef, Job, JobKind, OutputImage,
    Platform, RegistryCredential, RunId, RunStatus, Secret, StepState, StepType, StepsJob,
};

/// Who is asking for work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Unique per worker process; a restarted worker gets a new one.
    pub id: String,
    /// Human-readable, shown in logs (`host-1`, `embedded-0`).
    pub name: String,
    /// Every platform the worker builds.
    pub platforms: Vec<Platform>,
    /// Those of `platforms` it builds only by emulation (slower): the server prefers a worker
    /// that builds a run's platforms natively when one is free.
    #[serde(default)]
    pub emulated: Vec<Platform>,
    /// Set while the worker's engine does not answer: the worker is unhealthy and takes no
    /// run; its lease request (with `waitMs` 0) only reports that, so queued runs can say why
    /// they wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_error: Option<String>,
    /// The protocol version the worker speaks (`PROTOCOL_VERSION`); absent means 1.
    #[serde(default = "protocol_v1")]
    pub protocol: u32,
    /// The job kinds it runs; absent means builds only.
    #[serde(default = "builds_only")]
    pub jobs: Vec<JobKind>,
    /// The step types it runs in `Steps` jobs.
    #[serde(default)]
    pub step_types: Vec<StepType>,
}

fn protocol_v1() -> u32 {
    1
}

fn builds_only() -> Vec<JobKind> {
    vec![JobKind::Build]
}

/// `POST /api/worker/lease`: wait up to `waitMs` for a run; 204 when none came.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRequest {
    pub worker: WorkerInfo,
    pub wait_ms: u64,
}

/// A run handed to a worker. `attempt` fences every later call: a stale attempt is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub run_id: RunId,
    pub attempt: u32,
    pub job: Job,
    /// The worker must heartbeat at least this often, or the run is declared lost.
    pub heartbeat_interval_ms: u64,
    /// Milliseconds the build may still take before the run ends as Timeout.
    pub timeout_ms: u64,
    /// HTTP credentials for a private git context.
    #[serde(default)]
    pub git_token: Option<Secret>,
    /// Size and upload time of an uploaded context, for the run's summary line.
    #[serde(default)]
    pub context_stats: Option<ContextStats>,
    /// Where the worker's log upload starts (the server may have written lines before).
    pub log_offset: u64,
    pub credentials: Vec<RegistryCredential>,
    /// The server's limits on context archives, applied to a remote tarball too; a server
    /// that sends none gets `kiln serve`'s defaults.
    #[serde(default)]
    pub context_limits: ContextLimits,
}

impl Lease {
    /// The build spec of a `Build` job.
    pub fn build_spec(&self) -> Option<&BuildSpec> {
        match &self.job {
            Job::Build(spec) => Some(spec),
            Job::Steps(_) | Job::Purge(_) | Job::Scan(_) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub attempt: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatReply {
    /// The user canceled the run: stop the build and report `Canceled`.
    pub cancel: bool,
}

/// `POST /api/worker/runs/{id}/logs?attempt=N&offset=M`: the body is appended at `offset`,
/// which makes a retried upload idempotent. The reply carries the log's new size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAppendReply {
    pub size: u64,
}

/// `POST /api/worker/runs/{id}/source`: the commit a git context resolved to. The server
/// renders the image names (which may use `<<.Run.Commit>>`) and answers with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceResolved {
    pub attempt: u32,
    pub commit: String,
    pub branch: Option<String>,
    /// The text of a deferred task file (`StepsJob::deferred`), read from the checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReply {
    pub images: Vec<ImageRef>,
    /// Credentials for the registries those images go to.
    #[serde(default)]
    pub credentials: Vec<RegistryCredential>,
    /// A deferred task file's job, compiled: the worker runs this instead of the lease's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<StepsJob>,
}

/// How a worker's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    Canceled,
    Timeout,
    Error,
}

impl From<Outcome> for RunStatus {
    fn from(o: Outcome) -> RunStatus {
        match o {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::Failed => RunStatus::Failed,
            Outcome::Canceled => RunStatus::Canceled,
            Outcome::Timeout => RunStatus::Timeout,
            Outcome::Error => RunStatus::Error,
        }
    }
}

/// `POST /api/worker/runs/{id}/result`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub attempt: u32,
    pub outcome: Outcome,
    pub error_message: Option<String>,
    pub output_images: Vec<OutputImage>,
    /// The final state of every step (a `Build` job reports none: its one step is the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepState>,
    /// The base images a `Build` job's Dockerfile starts from, with their digests (a steps
    /// job reports them per build step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_images: Vec<BaseImage>,
}

/// `POST /api/worker/runs/{id}/return`: the worker stops before the run started building
/// (it is shutting down) and hands it back to the queue for another worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnRun {
    pub attempt: u32,
    /// Why, for the run's log: "worker 'host-1' is shutting down".
    pub reason: String,
}
