//! Where a run came from: the saved task it belongs to, if any, and what started it. Every
//! way of queueing a run (the API, a task run, a webhook, a timer, a base-image update) hands
//! the submission one `RunOrigin`, so the run's `trigger`, `trigger_detail` and `task_id` are
//! written in one place.

use serde::{Deserialize, Serialize};

/// What started a run, as `run show` and `task list-runs` print it (ACR's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerKind {
    /// A user: `kiln build`, `kiln run`, `kiln task run`.
    #[default]
    Manual,
    /// A push to a branch, delivered by a git webhook.
    Commit,
    /// A pull or merge request opened or updated, delivered by a git webhook.
    PullRequest,
    /// A task's timer.
    Timer,
    /// A base image the task's last build used moved to a new digest.
    ImageUpdate,
    /// A manifest pushed to Kiln's registry, scanned on push.
    ImagePush,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Manual => "Manual",
            TriggerKind::Commit => "Commit",
            TriggerKind::PullRequest => "PullRequest",
            TriggerKind::Timer => "Timer",
            TriggerKind::ImageUpdate => "ImageUpdate",
            TriggerKind::ImagePush => "ImagePush",
        }
    }
}

/// The task and trigger a new run records.
#[derive(Debug, Clone, Default)]
pub struct RunOrigin {
    pub task_id: Option<i64>,
    /// The task's name, for `.Run.TaskName`.
    pub task_name: Option<String>,
    pub trigger: TriggerKind,
    /// Stored as the run's `trigger_detail` and shown by `run show`: the event, commit,
    /// timer or base image that started it. `None` for a manual run.
    pub detail: Option<serde_json::Value>,
}

impl RunOrigin {
    /// A run a user asked for directly, outside any task.
    pub fn manual() -> RunOrigin {
        RunOrigin::default()
    }

    /// A run of a saved task that a user asked for.
    pub fn task(task_id: i64, name: &str) -> RunOrigin {
        RunOrigin {
            task_id: Some(task_id),
            task_name: Some(name.to_string()),
            ..RunOrigin::default()
        }
    }

    /// The detail as stored: JSON text.
    pub(super) fn detail_json(&self) -> Option<String> {
        self.detail.as_ref().map(|d| d.to_string())
    }
}

/// The branch a triggered run's detail names (`{"branch": "main", ...}`): a run that builds a
/// pinned commit fetches no branch, so its `.Run.Branch` comes from the event that started it.
pub fn detail_branch(detail: Option<&str>) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(detail?).ok()?;
    detail.get("branch")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_names_its_branch_or_nothing() {
        assert_eq!(
            detail_branch(Some(r#"{"commit":"abc","branch":"release/1"}"#)).as_deref(),
            Some("release/1")
        );
        assert_eq!(detail_branch(Some(r#"{"timer":"t1"}"#)), None);
        assert_eq!(detail_branch(Some("not json")), None);
        assert_eq!(detail_branch(None), None);
    }
}
