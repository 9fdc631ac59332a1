//! What a run does: a job of one kind, made of steps.
//!
//! The server validates and renders everything before a run is queued (task YAML, templates,
//! aliases, values); a worker receives typed, rendered steps and never parses YAML. Every kind
//! shares the queue, the lease and its fencing, heartbeats, cancel, timeout and logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    BuildSpec, ContextSource, Digest, ImageRef, OutputImage, PlatformSet, ScanJob, Secret,
};

/// The protocol a worker speaks. A worker that sends no version speaks 1 (builds only, the
/// lease carried a bare `BuildSpec`). The server answers a worker whose version it cannot
/// serve with a clear error at its first lease request, never with a failed run.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest worker protocol this server still leases runs to.
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// The kind of job a run is. Workers advertise the kinds they run; a run is leased only to a
/// worker that runs its kind and every step type it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobKind {
    /// Today's quick build: one build-and-push.
    Build,
    /// A multi-step task (task YAML or `--cmd`).
    Steps,
    /// `kiln purge`: Kiln's `acr purge`, run by the worker itself (no container).
    Purge,
    /// `kiln scan`: an image's packages and known vulnerabilities, read by the worker itself.
    Scan,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Build => "build",
            JobKind::Steps => "steps",
            JobKind::Purge => "purge",
            JobKind::Scan => "scan",
        }
    }
}

/// The step types of a `Steps` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepType {
    Build,
    Push,
    Cmd,
    /// A built-in `acr purge …` / `kiln purge …` command (see `builtin.rs`).
    Purge,
    /// A built-in `kiln scan …` command (see `builtin.rs`).
    Scan,
}

impl StepType {
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Build => "build",
            StepType::Push => "push",
            StepType::Cmd => "cmd",
            StepType::Purge => "purge",
            StepType::Scan => "scan",
        }
    }
}

/// What a run does, as the lease carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Job {
    Build(BuildSpec),
    Steps(StepsJob),
    Purge(PurgeJob),
    Scan(ScanJob),
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Build(_) => JobKind::Build,
            Job::Steps(_) => JobKind::Steps,
            Job::Purge(_) => JobKind::Purge,
            Job::Scan(_) => JobKind::Scan,
        }
    }

    /// The platforms the run builds (or, for steps, runs on).
    pub fn platforms(&self) -> &PlatformSet {
        match self {
            Job::Build(spec) => &spec.platforms,
            Job::Steps(steps) => &steps.platforms,
            // A purge or a scan builds nothing: it is queued for the default platform,
            // which every worker of the usual kind serves (a scan reads every platform).
            Job::Purge(_) | Job::Scan(_) => &DEFAULT_PLATFORMS,
        }
    }

    /// The step types a worker must run to take this job.
    pub fn step_types(&self) -> Vec<StepType> {
        match self {
            Job::Build(_) | Job::Purge(_) | Job::Scan(_) => Vec::new(),
            Job::Steps(steps) => steps.step_types(),
        }
    }
}

impl StepsJob {
    /// The step types its steps use, sorted, each once. A deferred task file may use any:
    /// only a worker that runs them all can take it.
    pub fn step_types(&self) -> Vec<StepType> {
        if self.deferred.is_some() {
            return vec![
                StepType::Build,
                StepType::Push,
                StepType::Cmd,
                StepType::Purge,
                StepType::Scan,
            ];
        }
        let mut types: Vec<StepType> = self.steps.iter().map(|s| s.action.step_type()).collect();
        types.sort();
        types.dedup();
        types
    }
}

/// A rendered multi-step task: a DAG of steps sharing one workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepsJob {
    /// Seeds `/workspace`; `None` for `/dev/null` (an empty workspace).
    pub context: Option<ContextSource>,
    /// The platforms build steps build by default, and the platform `cmd` steps run on.
    pub platforms: PlatformSet,
    /// In file order. `when` names only earlier steps (the server checked).
    pub steps: Vec<Step>,
    /// Networks the task declares, created before the first step unless `skip_creation`.
    /// Empty: the worker creates one bridge network for the run and attaches every step.
    #[serde(default)]
    pub networks: Vec<NetworkSpec>,
    /// Named volumes from the task's `volumes`, filled with secret files.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Values the worker replaces by `***` in everything it logs (set secrets, secret build
    /// args, credentials), longest first.
    #[serde(default)]
    pub masked: Vec<Secret>,
    /// A task file that lives in the context (a saved task's `--file ci/acb.yaml` in its
    /// repository): `steps` stays empty until the worker has fetched the context and sent
    /// the file with `SourceResolved`, and the server answers with the compiled job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<DeferredFile>,
}

/// A task file the server compiles once a worker has fetched the context that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeferredFile {
    /// Relative to the context folder (the repository's subdir, if any).
    pub path: String,
    /// The values it is compiled with. The server keeps them; a lease carries none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_values: BTreeMap<String, Secret>,
}

/// One step, with every default already applied by the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Unique in the job; the container name and DNS name of a `cmd` step on the run network.
    pub id: String,
    /// The ids this step waits for (all of them). Empty: it starts at once.
    #[serde(default)]
    pub when: Vec<String>,
    pub action: StepAction,
    pub timeout_secs: u64,
    #[serde(default)]
    pub start_delay_secs: u64,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub retry_delay_secs: u64,
    /// Retry only when the output contains one of these (empty: on any failure).
    #[serde(default)]
    pub retry_on_errors: Vec<String>,
    /// Runs `repeat + 1` times whatever the outcome; fails if any iteration failed.
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub ignore_errors: bool,
    /// The step is done once its container started (a service later steps reach by `id`).
    #[serde(default)]
    pub detach: bool,
    /// The container is not removed when the step ends (it still is when the run ends).
    #[serde(default)]
    pub keep: bool,
    /// The exit codes that count as success (empty: only 0).
    #[serde(default)]
    pub exited_with: Vec<i64>,
    /// Exit codes that count as failure even where `exited_with` would accept them.
    #[serde(default)]
    pub exited_without: Vec<i64>,
    /// `K=V`, task env merged in (the step wins per key).
    #[serde(default)]
    pub env: Vec<String>,
    /// Absolute, under `/workspace` unless the YAML gave an absolute path.
    pub working_directory: String,
    /// Leave the image's own `WORKDIR` in force.
    #[serde(default)]
    pub disable_working_directory_override: bool,
    /// A network name from `StepsJob::networks`; `None`: the run's default network.
    #[serde(default)]
    pub network: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StepAction {
    Build(BuildStep),
    Push(PushStep),
    Cmd(CmdStep),
    Purge(PurgeJob),
    Scan(ScanJob),
}

impl StepAction {
    pub fn step_type(&self) -> StepType {
        match self {
            StepAction::Build(_) => StepType::Build,
            StepAction::Push(_) => StepType::Push,
            StepAction::Cmd(_) => StepType::Cmd,
            StepAction::Purge(_) => StepType::Purge,
            StepAction::Scan(_) => StepType::Scan,
        }
    }
}

/// A purge, as a whole run (`kiln purge`) or as a step (`cmd: acr purge …`). The server
/// parsed the words, rendered `$Registry`, chose the registry and checked the submitter may
/// delete what the filters reach; the worker parses the words again into `PurgeArgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurgeJob {
    /// The purge arguments as given, without `acr purge` / `kiln purge`.
    pub words: Vec<String>,
    /// `host[:port]`: `--registry` if given, else Kiln's own.
    pub registry: String,
    /// Whether `registry` is Kiln's own (tag times, locks, a GC pass after it).
    pub kiln: bool,
}

/// What a purge deleted, reported with its step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeCounts {
    pub deleted_tags: u64,
    pub deleted_manifests: u64,
}

/// The platforms of a purge job: the default one.
static DEFAULT_PLATFORMS: std::sync::LazyLock<PlatformSet> =
    std::sync::LazyLock::new(PlatformSet::default);

/// A `docker build` inside the run: its context is a folder of the workspace, so files
/// earlier steps wrote there are part of it. It does not push; a later `push` step does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildStep {
    /// The build context, relative to `/workspace` (`.` for the whole workspace).
    pub context_dir: String,
    /// The Dockerfile, relative to the context folder.
    pub dockerfile: String,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub target: Option<String>,
    pub platforms: PlatformSet,
    #[serde(default)]
    pub no_cache: bool,
    /// Rendered, fully qualified names. Later `push` and `cmd` steps may use them.
    pub images: Vec<ImageRef>,
}

/// Pushes images built by earlier build steps of the run, 3 attempts each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushStep {
    pub images: Vec<ImageRef>,
}

/// A container on the worker's engine. `/workspace` is mounted in it, and a Docker
/// `config.json` with the run's registry credentials (`DOCKER_CONFIG` points at it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CmdStep {
    /// A fully qualified reference, or a name an earlier build step of the run produced.
    pub image: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Pull the image even when the engine has it.
    #[serde(default)]
    pub pull: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub entry_point: Option<String>,
    /// `-p` values as written (`8080:80`, `127.0.0.1:8080:80/tcp`).
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Only sent when the server allows privileged steps.
    #[serde(default)]
    pub privileged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
}

/// A task-level volume: files (from `secret:` entries, already base64-decoded) written into a
/// named volume before the first step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    pub name: String,
    pub files: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    pub name: String,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub ipv6: bool,
    /// The network exists already; neither created nor removed.
    #[serde(default)]
    pub skip_creation: bool,
    /// Steps without `network` join it.
    #[serde(default)]
    pub is_default: bool,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Never started: a step it waits for failed, or the run ended first.
    Skipped,
    Canceled,
    Timeout,
}

/// A base image a build step resolved (`FROM` of a stage): the base-image trigger reads these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseImage {
    /// As written after `FROM`, with build args expanded.
    pub reference: String,
    pub digest: Option<Digest>,
    /// The base of the last stage, which the image runs on (the `Runtime` trigger type).
    #[serde(default)]
    pub runtime: bool,
}

/// What the worker reports about one step, live and in the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub id: String,
    pub step_type: StepType,
    pub status: StepStatus,
    /// Unix milliseconds.
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Build steps: what they built (digest of the local image); push steps: what the
    /// registry stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<OutputImage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_images: Vec<BaseImage>,
    #[serde(default)]
    pub error: Option<String>,
    /// Purge steps: what they deleted (also when they failed part way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<PurgeCounts>,
}

/// `POST /api/worker/runs/{id}/steps`: the states of the steps that changed, fenced by the
/// attempt like every other worker call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepsUpdate {
    pub attempt: u32,
    pub steps: Vec<StepState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_job_is_a_build_spec_with_its_kind() {
        let json = serde_json::json!({
            "kind": "build",
            "context": {"kind": "upload", "digest": format!("sha256:{}", "a".repeat(64))},
            "dockerfile": "Dockerfile",
            "buildArgs": {},
            "target": null,
            "platforms": "linux/amd64",
            "noCache": false,
            "images": [],
            "push": false
        });
        let job: Job = serde_json::from_value(json).unwrap();
        assert_eq!(job.kind(), JobKind::Build);
    }

    #[test]
    fn steps_round_trip_with_defaults() {
        let json = serde_json::json!({
            "kind": "steps",
            "context": null,
            "platforms": "linux/amd64",
            "steps": [{
                "id": "hello",
                "action": {"type": "cmd", "image": "busybox", "args": ["echo", "hi"]},
                "timeoutSecs": 600,
                "workingDirectory": "/workspace"
            }]
        });
        let job: Job = serde_json::from_value(json).unwrap();
        let Job::Steps(steps) = &job else {
            panic!("not steps")
        };
        assert_eq!(steps.steps[0].action.step_type(), StepType::Cmd);
        assert!(steps.steps[0].when.is_empty());
        let again: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(again.kind(), JobKind::Steps);
    }
}
