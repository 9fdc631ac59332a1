//! Source triggers (git webhooks): a task's trigger settings as its spec stores them, the
//! task a hook ID names, the `hook_deliveries` log, and coalescing a push into a queued run.

use kiln_worker::protocol::RunId;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::runs::corrupt;
use super::{Store, StoreError, TaskRow};

/// A task's source triggers, in its spec (`TaskSpec::source_triggers`). The webhook secret
/// is sealed with the task's other secrets (`TaskSecrets::webhook_secret`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceTriggers {
    /// Pushes to the task's branch run it.
    pub commit: bool,
    /// Pull/merge requests opened, reopened or updated run it.
    pub pull_request: bool,
    /// Whether pull-request runs push what the task pushes.
    pub pull_request_push: bool,
    /// Tag pushes run it.
    pub tag: bool,
    /// Path globs a push must touch; empty: the context's subdir, else everything.
    pub paths: Vec<String>,
    /// The branches whose pushes and pull requests run the task, a glob (`release/*`);
    /// `None`: the context's branch, else the repository's default branch.
    pub branch: Option<String>,
    /// The random ID in the task's webhook URL; set the first time a trigger is enabled and
    /// kept, so a URL pasted into a git host stays valid while triggers are off.
    pub hook_id: Option<String>,
}

impl SourceTriggers {
    /// Whether any webhook event may run the task.
    pub fn any_enabled(&self) -> bool {
        self.commit || self.pull_request || self.tag
    }
}

/// A delivery as recorded when it arrives.
pub struct NewDelivery<'a> {
    pub task_id: i64,
    pub provider: &'a str,
    pub delivery_id: &'a str,
    pub event: &'a str,
    /// Whether its signature was good: only authentic deliveries count for duplicates.
    pub authentic: bool,
    pub received_at: i64,
    pub verdict: &'a str,
}

/// A delivery as `kiln task deliveries` lists it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub provider: String,
    pub delivery_id: String,
    pub event: String,
    pub received_at: i64,
    pub verdict: String,
    pub run: Option<RunId>,
}

impl Store {
    /// The task whose webhook has that hook ID.
    pub async fn get_task_by_hook(&self, hook_id: &str) -> Result<Option<TaskRow>, StoreError> {
        // The same expression as the `tasks_by_hook` index, so the index answers.
        let row = sqlx::query(
            "SELECT * FROM tasks WHERE json_extract(spec, '$.sourceTriggers.hookId') = ?",
        )
        .bind(hook_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.task_from_row(&r)).transpose()
    }

    /// Records a delivery and drops the task's oldest beyond `keep`. `None` when an authentic
    /// delivery with the same ID was recorded before: a repeat, to be ignored. A repeat of
    /// one still `pending` since before `stale_before` takes its place instead: the process
    /// that received it died before acting on it, and the host's retry must not be lost.
    pub async fn insert_delivery(
        &self,
        d: NewDelivery<'_>,
        keep: u32,
        stale_before: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO hook_deliveries
                 (task_id, provider, delivery_id, event, authentic, received_at, verdict)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(d.task_id)
        .bind(d.provider)
        .bind(d.delivery_id)
        .bind(d.event)
        .bind(d.authentic)
        .bind(d.received_at)
        .bind(d.verdict)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // The transaction holds SQLite's write lock: end it before writing elsewhere.
                tx.rollback().await?;
                return self.take_over_stale(&d, stale_before).await;
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::query(
            "DELETE FROM hook_deliveries WHERE task_id = ? AND id <= (
                 SELECT id FROM hook_deliveries WHERE task_id = ?
                 ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(d.task_id)
        .bind(d.task_id)
        .bind(keep as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    async fn take_over_stale(
        &self,
        d: &NewDelivery<'_>,
        stale_before: i64,
    ) -> Result<Option<i64>, StoreError> {
        // Conditional on the row still being pending and stale: of two retries at once, one wins.
        let id = sqlx::query_scalar(
            "UPDATE hook_deliveries SET received_at = ?
             WHERE task_id = ? AND provider = ? AND delivery_id = ? AND authentic = 1
               AND verdict = 'pending' AND received_at < ?
             RETURNING id",
        )
        .bind(d.received_at)
        .bind(d.task_id)
        .bind(d.provider)
        .bind(d.delivery_id)
        .bind(stale_before)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    /// What a recorded delivery came to, and the run it started or changed.
    pub async fn settle_delivery(
        &self,
        id: i64,
        verdict: &str,
        run: Option<RunId>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE hook_deliveries SET verdict = ?, run_seq = ? WHERE id = ?")
            .bind(verdict)
            .bind(run.map(|r| r.seq() as i64))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A task's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        task_id: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider, delivery_id, event, received_at, verdict, run_seq
             FROM hook_deliveries WHERE task_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(task_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRow {
                    provider: r.try_get("provider")?,
                    delivery_id: r.try_get("delivery_id")?,
                    event: r.try_get("event")?,
                    received_at: r.try_get("received_at")?,
                    verdict: r.try_get("verdict")?,
                    run: r
                        .try_get::<Option<i64>, _>("run_seq")?
                        .map(|s| RunId::from_seq(s as u64)),
                })
            })
            .collect()
    }

    /// Points the task's newest run that a Commit trigger queued for `branch` at `commit`
    /// instead, with `detail` as its trigger detail, if that run is still queued. One
    /// conditional statement: a run a worker leased meanwhile is left alone (`None`), and
    /// the caller queues a new one.
    pub async fn coalesce_queued_commit(
        &self,
        task_id: i64,
        branch: &str,
        commit: &str,
        detail: &serde_json::Value,
    ) -> Result<Option<RunId>, StoreError> {
        let detail = serde_json::to_string(detail).map_err(|e| corrupt("trigger detail", e))?;
        let seq: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET spec = json_set(spec, '$.context.reference', ?), trigger_detail = ?
             WHERE seq = (
                 SELECT seq FROM runs
                 WHERE task_id = ? AND status = 'Queued' AND trigger = 'Commit'
                   AND json_extract(trigger_detail, '$.branch') = ?
                   AND json_extract(spec, '$.context.kind') = 'git'
                 ORDER BY seq DESC LIMIT 1)
               AND status = 'Queued'
             RETURNING seq",
        )
        .bind(commit)
        .bind(detail)
        .bind(task_id)
        .bind(branch)
        .fetch_optional(&self.pool)
        .await?;
        Ok(seq.map(|s| RunId::from_seq(s as u64)))
    }
}
