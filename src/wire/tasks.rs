//! JSON shapes of `/api/tasks`: saved tasks and the runs queued from them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use kiln_worker::protocol::{ContextSource, PlatformSet, Secret};
use serde::{Deserialize, Serialize};

use super::base_images::{BaseImageTrigger, BaseImageTriggerType, TaskBaseImage};
use super::hooks::{SourceTriggersView, TriggerSettings};

/// What the API shows instead of a secret value.
pub const MASK: &str = "***";

/// A task's name: 1 to 50 letters, digits, `-` or `_`, starting with a letter or digit.
/// Names are unique regardless of case, as ACR's are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskName(String);

impl TaskName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TaskName {
    type Error = String;

    fn try_from(s: String) -> Result<TaskName, String> {
        let valid = (1..=50).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if valid {
            Ok(TaskName(s))
        } else {
            Err(format!(
                "invalid task name '{s}': use 1 to 50 letters, digits, '-' or '_', starting \
                 with a letter or digit"
            ))
        }
    }
}

impl std::str::FromStr for TaskName {
    type Err = String;

    fn from_str(s: &str) -> Result<TaskName, String> {
        TaskName::try_from(s.to_string())
    }
}

impl From<TaskName> for String {
    fn from(n: TaskName) -> String {
        n.0
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a task may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    #[default]
    Enabled,
    Disabled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Enabled => "Enabled",
            TaskStatus::Disabled => "Disabled",
        }
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;

    /// Any case, as `az acr task create --status` takes it.
    fn from_str(s: &str) -> Result<TaskStatus, String> {
        match s.to_ascii_lowercase().as_str() {
            "enabled" => Ok(TaskStatus::Enabled),
            "disabled" => Ok(TaskStatus::Disabled),
            _ => Err(format!(
                "invalid task status '{s}': use Enabled or Disabled"
            )),
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a task runs, from its `--file` or `--cmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A Dockerfile: one build (and push) as `kiln build` does.
    Build,
    /// A task file (`.yaml`/`.yml`) read from the context when the task runs.
    Steps,
    /// One `cmd` step (`--cmd`), usually with the `/dev/null` context.
    Cmd,
}

/// `POST /api/tasks`: the flags of `az acr task create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTask {
    pub name: TaskName,
    /// A git URL (`https://host/repo.git#ref:subdir`), a tarball URL or `/dev/null`.
    pub context: String,
    /// A Dockerfile (a build task) or a `.yaml`/`.yml` task file, relative to the context.
    #[serde(default)]
    pub file: Option<String>,
    /// One command step: `IMAGE [ARGS...]`.
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_args: BTreeMap<String, Secret>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub no_push: bool,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub platform: Option<PlatformSet>,
    /// `--set`.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// `--set-secret`.
    #[serde(default)]
    pub secret_values: BTreeMap<String, Secret>,
    /// The contents of a `--values` YAML file.
    #[serde(default)]
    pub values_file: Option<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default)]
    pub git_access_token: Option<Secret>,
    // Timers (issue 11).
    /// `--schedule`: `[name:]cron` timers (ACR's 5-field UTC cron); unnamed ones are `t1`...
    #[serde(default)]
    pub schedules: Vec<String>,
    // Source triggers (git webhooks).
    #[serde(default)]
    pub source_triggers: TriggerSettings,
    // Base-image trigger (issue 11): unset keeps the default (create) or the task's (update).
    #[serde(default)]
    pub base_image_trigger_enabled: Option<bool>,
    #[serde(default)]
    pub base_image_trigger_type: Option<BaseImageTriggerType>,
}

/// `PATCH /api/tasks/{name}`: only what is given changes. Maps merge into the task's (as
/// `az acr task update --set` does); `unset` removes names from values, secret values, build
/// arguments and secret build arguments alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTask {
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub cmd: Option<String>,
    /// Replaces the image list when given.
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_args: BTreeMap<String, Secret>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub no_push: Option<bool>,
    #[serde(default)]
    pub no_cache: Option<bool>,
    #[serde(default)]
    pub platform: Option<PlatformSet>,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_values: BTreeMap<String, Secret>,
    #[serde(default)]
    pub unset: Vec<String>,
    #[serde(default)]
    pub values_file: Option<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default)]
    pub git_access_token: Option<Secret>,
    // Timers (issue 11).
    /// `--schedule`: when given, the task's timers become exactly these (`[]`: none); a
    /// timer that keeps its name and schedule keeps its next and last firing.
    #[serde(default)]
    pub schedules: Option<Vec<String>>,
    // Source triggers (git webhooks).
    #[serde(default)]
    pub source_triggers: TriggerSettings,
    // Base-image trigger (issue 11): unset keeps the default (create) or the task's (update).
    #[serde(default)]
    pub base_image_trigger_enabled: Option<bool>,
    #[serde(default)]
    pub base_image_trigger_type: Option<BaseImageTriggerType>,
}

/// A task as the API shows it: secret values as `***`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub name: String,
    pub kind: TaskKind,
    pub status: TaskStatus,
    /// With any URL credentials masked.
    pub context: String,
    pub file: Option<String>,
    pub cmd: Option<String>,
    pub images: Vec<String>,
    pub args: BTreeMap<String, String>,
    pub secret_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub push: bool,
    pub no_cache: bool,
    pub platform: PlatformSet,
    pub values: BTreeMap<String, String>,
    pub secret_values: BTreeMap<String, String>,
    pub values_file: Option<String>,
    pub timeout_secs: u64,
    pub git_access_token: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    // Timers (issue 11).
    /// With their next and last firings (`task show`; empty in `task list`).
    #[serde(default)]
    pub timers: Vec<crate::wire::timers::Timer>,
    // Source triggers (git webhooks).
    #[serde(default)]
    pub source_triggers: SourceTriggersView,
    // Base-image trigger (issue 11).
    #[serde(default)]
    pub base_image_trigger: BaseImageTrigger,
    /// What the last successful run was built from (`task show` only; empty in lists).
    #[serde(default)]
    pub base_images: Vec<TaskBaseImage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskList {
    pub tasks: Vec<Task>,
}

/// `POST /api/tasks/{name}/runs`: what this run changes of the task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunTask {
    /// `--set`, over the task's values.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_values: BTreeMap<String, Secret>,
    /// A context to use instead of the task's: a folder uploaded first (`-c ./dir`).
    #[serde(default)]
    pub context: Option<ContextSource>,
    #[serde(default)]
    pub platform: Option<PlatformSet>,
    #[serde(default)]
    pub no_push: bool,
}

/// Query of `GET /api/tasks/{name}/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRunsQuery {
    pub top: Option<u32>,
}
