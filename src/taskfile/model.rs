//! The task YAML as written (ACR's `acr-task.yaml`, v1.1.0), parsed strictly: an unknown key
//! or a wrong type is an error. Defaults are applied later, by `lower`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The top level of a task file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawTask {
    pub version: Option<String>,
    pub step_timeout: Option<u64>,
    pub working_directory: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// Key Vault references: parsed only to refuse them with a clear message.
    pub secrets: Option<serde_norway::Value>,
    #[serde(default)]
    pub volumes: Vec<RawVolume>,
    #[serde(default)]
    pub networks: Vec<RawNetwork>,
    /// Only in a v1.0.0 file, where aliases do not exist (v1.1.0 cuts the block out first).
    pub alias: Option<serde_norway::Value>,
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawStep {
    pub id: Option<String>,
    pub cmd: Option<String>,
    pub build: Option<String>,
    pub push: Option<Vec<String>>,
    pub when: Option<Vec<String>>,
    pub timeout: Option<u64>,
    #[serde(default)]
    pub start_delay: u64,
    #[serde(default)]
    pub retries: u32,
    pub retry_delay: Option<u64>,
    #[serde(default)]
    pub retry_on_errors: Vec<String>,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub ignore_errors: bool,
    #[serde(default)]
    pub detach: bool,
    #[serde(default)]
    pub keep: bool,
    pub pull: Option<bool>,
    pub privileged: Option<bool>,
    pub user: Option<String>,
    pub entry_point: Option<String>,
    /// Windows-only in ACR: refused.
    pub isolation: Option<String>,
    pub network: Option<String>,
    pub ports: Option<Vec<String>>,
    pub expose: Option<Vec<String>>,
    #[serde(default)]
    pub env: Vec<String>,
    pub working_directory: Option<String>,
    #[serde(default)]
    pub disable_working_directory_override: bool,
    pub cache: Option<String>,
    pub volume_mounts: Option<Vec<RawMount>>,
    #[serde(default)]
    pub exited_with: Vec<i64>,
    #[serde(default)]
    pub exited_without: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawVolume {
    pub name: String,
    /// File name to base64 content.
    pub secret: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub name: String,
    pub driver: Option<String>,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub skip_creation: bool,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawMount {
    pub name: String,
    pub mount_path: String,
}

/// The `alias:` block of a v1.1.0 file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawAlias {
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    pub directive: Option<String>,
}
