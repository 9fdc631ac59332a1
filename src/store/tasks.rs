//! The `tasks` table: saved tasks, with their secret values sealed, and the runs queued from
//! them (`runs.task_id`).

use std::collections::BTreeMap;

use kiln_worker::protocol::{redact_url, PlatformSet, RunId};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::runs::corrupt;
use super::sealed::Sealer;
use super::source_triggers::SourceTriggers;
use super::timers::{replace_timers, NewTimer};
use super::{Store, StoreError};
use crate::wire::base_images::BaseImageTrigger;

/// What a task is made of. Secret values live in `secrets`, which is sealed apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// A git URL, a tarball URL or `/dev/null`, with its credentials.
    pub context: String,
    pub file: Option<String>,
    pub cmd: Option<String>,
    pub images: Vec<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub push: bool,
    pub no_cache: bool,
    pub platform: PlatformSet,
    pub values: BTreeMap<String, String>,
    /// The contents of a `--values` file.
    pub values_file: Option<String>,
    pub timeout_secs: u64,
    #[serde(skip)]
    pub secrets: TaskSecrets,
    // Source triggers (git webhooks).
    #[serde(default)]
    pub source_triggers: SourceTriggers,
    // Base-image trigger (issue 11): tasks stored before it have it on, as new ones do.
    #[serde(default)]
    pub base_image_trigger: BaseImageTrigger,
}

/// A task's secrets, sealed as one JSON value in `tasks.secrets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSecrets {
    #[serde(default)]
    pub secret_args: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_values: BTreeMap<String, String>,
    #[serde(default)]
    pub git_token: Option<String>,
    /// The context URL with its credentials, kept here only; `spec` keeps it masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context_url: Option<String>,
    // Source triggers (git webhooks).
    /// The secret that signs the task's webhook deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// A task as stored. Times are Unix milliseconds.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: i64,
    pub name: String,
    /// `Enabled` or `Disabled`.
    pub status: String,
    pub spec: TaskSpec,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub updated_at: i64,
    pub updated_by: Option<String>,
    /// The token that created the task: its triggered runs act as that token.
    pub created_token_id: Option<String>,
}

/// A task's contents as written by a create or an update.
pub struct TaskWrite<'a> {
    pub status: &'a str,
    pub spec: &'a TaskSpec,
    pub now: i64,
    pub by: Option<&'a str>,
    /// The writer's token ID; kept only when the task is created.
    pub token_id: Option<&'a str>,
    // Timers (issue 11).
    /// The task's timers when given: they replace its timers, in the same transaction.
    pub timers: Option<&'a [NewTimer]>,
}

impl Store {
    /// Stores a new task; `None` when the name is taken.
    pub async fn insert_task(
        &self,
        name: &str,
        w: TaskWrite<'_>,
    ) -> Result<Option<TaskRow>, StoreError> {
        let (spec, secrets) = self.seal_task(w.spec)?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tasks (name, status, spec, secrets, created_at, created_by, updated_at, updated_by,
                                created_token_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(name)
        .bind(w.status)
        .bind(spec)
        .bind(secrets)
        .bind(w.now)
        .bind(w.by)
        .bind(w.now)
        .bind(w.by)
        .bind(w.token_id)
        .fetch_one(&mut *tx)
        .await;
        match inserted {
            Ok(row) => {
                let task = self.task_from_row(&row)?;
                replace_timers(&mut tx, task.id, w.timers.unwrap_or_default()).await?;
                tx.commit().await?;
                Ok(Some(task))
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a task's contents; `None` when it no longer exists.
    pub async fn update_task(
        &self,
        id: i64,
        w: TaskWrite<'_>,
    ) -> Result<Option<TaskRow>, StoreError> {
        let (spec, secrets) = self.seal_task(w.spec)?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET status = ?, spec = ?, secrets = ?, updated_at = ?, updated_by = ?
             WHERE id = ? RETURNING *",
        )
        .bind(w.status)
        .bind(spec)
        .bind(secrets)
        .bind(w.now)
        .bind(w.by)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(_), Some(timers)) = (&row, w.timers) {
            replace_timers(&mut tx, id, timers).await?;
        }
        tx.commit().await?;
        row.as_ref().map(|r| self.task_from_row(r)).transpose()
    }

    /// A task by ID, as triggers name it; `None` once deleted.
    pub async fn get_task_by_id(&self, id: i64) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.task_from_row(&r)).transpose()
    }

    /// The task of that name, in any case.
    pub async fn get_task(&self, name: &str) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM tasks WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| self.task_from_row(r)).transpose()
    }

    /// Every task, by name.
    pub async fn list_tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tasks ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.task_from_row(r)).collect()
    }

    /// Deletes a task; its runs stay, unlinked. Whether it existed.
    pub async fn delete_task(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tasks WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The IDs of a task's runs, newest first.
    pub async fn task_run_ids(&self, task_id: i64, limit: u32) -> Result<Vec<RunId>, StoreError> {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM runs WHERE task_id = ? ORDER BY seq DESC LIMIT ?")
                .bind(task_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
        Ok(seqs
            .into_iter()
            .map(|s| RunId::from_seq(s as u64))
            .collect())
    }

    /// The spec as stored (context URL masked) and its sealed secrets, if it has any.
    fn seal_task(&self, spec: &TaskSpec) -> Result<(String, Option<String>), StoreError> {
        let mut stored = spec.clone();
        let mut secrets = std::mem::take(&mut stored.secrets);
        let masked = redact_url(&stored.context);
        if masked != stored.context {
            secrets.context_url = Some(std::mem::replace(&mut stored.context, masked));
        }
        let json = serde_json::to_string(&stored).map_err(|e| corrupt("task spec", e))?;
        let sealed = match secrets == TaskSecrets::default() {
            true => None,
            false => {
                let plain = serde_json::to_vec(&secrets).map_err(|e| corrupt("task secrets", e))?;
                Some(self.sealer.seal(&plain))
            }
        };
        Ok((json, sealed))
    }

    pub(super) fn task_from_row(&self, row: &SqliteRow) -> Result<TaskRow, StoreError> {
        let spec: String = row.try_get("spec")?;
        let mut spec: TaskSpec =
            serde_json::from_str(&spec).map_err(|e| corrupt("task spec", e))?;
        if let Some(sealed) = row.try_get::<Option<String>, _>("secrets")? {
            spec.secrets = open_secrets(&self.sealer, &sealed)?;
            if let Some(url) = spec.secrets.context_url.take() {
                spec.context = url;
            }
        }
        Ok(TaskRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            spec,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            updated_at: row.try_get("updated_at")?,
            updated_by: row.try_get("updated_by")?,
            created_token_id: row.try_get("created_token_id")?,
        })
    }
}

fn open_secrets(sealer: &Sealer, sealed: &str) -> Result<TaskSecrets, StoreError> {
    let plain = sealer
        .open(sealed)
        .ok_or_else(|| StoreError::Corrupt("a task's sealed secrets do not open".into()))?;
    serde_json::from_slice(&plain).map_err(|e| corrupt("task secrets", e))
}
