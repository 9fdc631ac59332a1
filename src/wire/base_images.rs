//! The base-image trigger of a task, as the API shows and takes it (ACR's
//! `--base-image-trigger-enabled` and `--base-image-trigger-type`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which base images' changes run a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BaseImageTriggerType {
    /// Only the last stage's base: the image the built image runs on (ACR's default).
    #[default]
    Runtime,
    /// The base of every stage, build stages included.
    All,
}

impl std::str::FromStr for BaseImageTriggerType {
    type Err = String;

    /// Any case, as `az acr task create --base-image-trigger-type` takes it.
    fn from_str(s: &str) -> Result<BaseImageTriggerType, String> {
        match s.to_ascii_lowercase().as_str() {
            "runtime" => Ok(BaseImageTriggerType::Runtime),
            "all" => Ok(BaseImageTriggerType::All),
            _ => Err(format!(
                "invalid base-image trigger type '{s}': use Runtime or All"
            )),
        }
    }
}

impl fmt::Display for BaseImageTriggerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A task's base-image trigger: on by default, as in ACR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseImageTrigger {
    pub enabled: bool,
    #[serde(rename = "type")]
    pub trigger_type: BaseImageTriggerType,
}

impl Default for BaseImageTrigger {
    fn default() -> BaseImageTrigger {
        BaseImageTrigger {
            enabled: true,
            trigger_type: BaseImageTriggerType::default(),
        }
    }
}

impl BaseImageTrigger {
    /// The trigger with what a create or update gives changed.
    pub fn with(
        self,
        enabled: Option<bool>,
        trigger_type: Option<BaseImageTriggerType>,
    ) -> BaseImageTrigger {
        BaseImageTrigger {
            enabled: enabled.unwrap_or(self.enabled),
            trigger_type: trigger_type.unwrap_or(self.trigger_type),
        }
    }

    /// Whether a change of a base image (the runtime base or not) runs the task.
    pub fn fires_for(&self, runtime: bool) -> bool {
        self.enabled && (runtime || self.trigger_type == BaseImageTriggerType::All)
    }
}

/// A base image a task's last successful run used, as `task show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskBaseImage {
    /// As written after `FROM`.
    pub reference: String,
    /// What it resolved to; `None` when the worker could not ask its registry.
    pub digest: Option<String>,
    /// The last stage's base.
    pub runtime: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_fires_for_the_last_stages_base_only_and_all_for_every_stage() {
        let runtime = BaseImageTrigger::default();
        assert!(runtime.fires_for(true));
        assert!(!runtime.fires_for(false));
        let all = runtime.with(None, Some(BaseImageTriggerType::All));
        assert!(all.fires_for(true) && all.fires_for(false));
        let off = all.with(Some(false), None);
        assert!(!off.fires_for(true) && !off.fires_for(false));
        assert_eq!("all".parse(), Ok(BaseImageTriggerType::All));
        assert!("sometimes".parse::<BaseImageTriggerType>().is_err());
    }
}
