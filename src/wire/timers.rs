//! JSON shapes of `/api/tasks/{name}/timers`: a task's cron timers.

use chrono::{DateTime, Utc};
use kiln_worker::protocol::RunId;
use serde::{Deserialize, Serialize};

/// A timer as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    pub name: String,
    /// ACR's 5-field cron, in UTC.
    pub schedule: String,
    pub enabled: bool,
    /// The next occurrence; none once the schedule has no more.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The last occurrence fired (a disabled timer's pass without firing).
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The run the last firing queued; none when it was refused (a disabled task, say).
    pub last_run_id: Option<RunId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimerList {
    pub timers: Vec<Timer>,
}

/// `POST /api/tasks/{name}/timers`: `az acr task timer add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTimer {
    pub name: String,
    pub schedule: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

/// `PATCH /api/tasks/{name}/timers/{timer}`: only what is given changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTimer {
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn enabled() -> bool {
    true
}
