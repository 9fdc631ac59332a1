//! The `events` table, an outbox: registry pushes and deletes and runs reaching a final
//! state, each recorded in the transaction of the change it describes, and the consumers'
//! cursors (`event_cursors`). See `service/events.rs` for how consumers read it.

use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

use super::runs::corrupt;
use super::{Store, StoreError};

/// What happened. Serialised into `events.data`; `action()` goes into `events.action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Event {
    /// A manifest stored in Kiln's registry, under `tag` if pushed by tag. `previous` is the
    /// digest the tag pointed at before, when it moved.
    #[serde(rename_all = "camelCase")]
    Push {
        repository: String,
        tag: Option<String>,
        digest: String,
        previous: Option<String>,
        /// The run whose credentials pushed it, if a run did.
        run_id: Option<String>,
    },
    /// A tag, a manifest (with its tags) or a whole repository deleted.
    #[serde(rename_all = "camelCase")]
    Delete {
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// A run reached a final state.
    #[serde(rename_all = "camelCase")]
    RunFinished {
        run_id: String,
        /// `Succeeded`, `Failed`, `Canceled`, `Timeout`, `Error` or `Expired`.
        status: String,
        task_id: Option<i64>,
        /// The repositories it pushed to, for webhooks scoped to repositories.
        #[serde(default)]
        repositories: Vec<String>,
    },
}

impl Event {
    /// The action as outbound webhooks name it: `push`, `delete`, `run-succeeded`...
    pub fn action(&self) -> String {
        match self {
            Event::Push { .. } => "push".into(),
            Event::Delete { .. } => "delete".into(),
            Event::RunFinished { status, .. } => format!("run-{}", status.to_lowercase()),
        }
    }
}

/// An event as stored, with its place in the stream.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub event: Event,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Records `event` on `conn`, which is the transaction of the change it describes.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    event: &Event,
    now: i64,
) -> Result<(), StoreError> {
    let data = serde_json::to_string(event).map_err(|e| corrupt("event", e))?;
    sqlx::query("INSERT INTO events (action, data, created_at) VALUES (?, ?, ?)")
        .bind(event.action())
        .bind(data)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The time of a change the store records without being told one (a delete): the wall
/// clock, which only dates the event and orders nothing (the id does).
pub(super) fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Up to `limit` events after `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows =
            sqlx::query("SELECT id, data, created_at FROM events WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let data: String = r.try_get("data")?;
                Ok(EventRow {
                    id: r.try_get("id")?,
                    event: serde_json::from_str(&data).map_err(|e| corrupt("event", e))?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The last event `consumer` handled; a new consumer starts at the beginning, so an
    /// event written while the server was starting is not missed (the table is as new as
    /// the consumers, so there is no older backlog).
    pub async fn event_cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO event_cursors (consumer, last_event_id) VALUES (?, 0)
             ON CONFLICT (consumer) DO UPDATE SET consumer = excluded.consumer
             RETURNING last_event_id",
        )
        .bind(consumer)
        .fetch_one(&self.pool)
        .await?;
        Ok(last)
    }

    /// Records that `consumer` handled every event up to `last`.
    pub async fn advance_event_cursor(&self, consumer: &str, last: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_cursors SET last_event_id = MAX(last_event_id, ?) WHERE consumer = ?",
        )
        .bind(last)
        .bind(consumer)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
