//! JSON shapes of source triggers (git webhooks): a task's trigger settings, the answer to a
//! webhook delivery, and the delivery log (`GET /api/tasks/{name}/deliveries`).

use chrono::{DateTime, Utc};
use kiln_worker::protocol::RunId;
use serde::{Deserialize, Serialize};

/// Where a task's webhook is served: `<server>` + this + the task's hook ID.
pub const HOOK_PATH_PREFIX: &str = "/api/hooks/tasks/";

/// The source-trigger part of `POST /api/tasks` and `PATCH /api/tasks/{name}`: only what is
/// given changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerSettings {
    #[serde(default)]
    pub commit_trigger_enabled: Option<bool>,
    #[serde(default)]
    pub pull_request_trigger_enabled: Option<bool>,
    /// Whether pull-request runs push the task's images (default: no).
    #[serde(default)]
    pub pull_request_push: Option<bool>,
    #[serde(default)]
    pub tag_trigger_enabled: Option<bool>,
    /// Path globs a push must touch; replaces the task's when given (empty: the default).
    #[serde(default)]
    pub trigger_paths: Option<Vec<String>>,
    /// A branch glob (`release/*`) instead of the context's branch; '' for the context's.
    #[serde(default)]
    pub trigger_branch: Option<String>,
    /// A new webhook secret (update only), shown once in the answer.
    #[serde(default)]
    pub rotate_webhook_secret: bool,
}

/// A task's source triggers as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceTriggersView {
    pub commit_trigger_enabled: bool,
    pub pull_request_trigger_enabled: bool,
    pub pull_request_push: bool,
    pub tag_trigger_enabled: bool,
    /// The globs a push must touch, as given, or the default the task's context implies.
    pub trigger_paths: Vec<String>,
    /// The branch glob pushes and pull requests must name, when not the context's branch.
    pub trigger_branch: Option<String>,
    /// The webhook's path on the server (`/api/hooks/tasks/<hook ID>`), once it has one.
    pub webhook_path: Option<String>,
    /// The webhook secret: only in the answer that created or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// The answer to a webhook delivery: 202 with the run it started or changed, or 200 with
/// why nothing ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    pub verdict: String,
}

/// One recorded delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The provider's delivery ID (`X-GitHub-Delivery`...).
    pub id: String,
    pub provider: String,
    pub event: String,
    pub verdict: String,
    pub run_id: Option<RunId>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}
