//! The `run_steps` table: each step of a run as planned at submission, as its worker reports
//! it while it runs, and as it ended.

use kiln_worker::protocol::{
    BaseImage, OutputImage, PurgeCounts, RunId, RunStatus, StepState, StepStatus, StepType,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::jobs::{StoredJob, BUILD_STEP};
use super::runs::{corrupt, seq, RunRow};
use super::{Store, StoreError};

/// The step status a build run's one step ends with.
pub fn step_status_of(status: RunStatus) -> StepStatus {
    match status {
        RunStatus::Queued => StepStatus::Queued,
        RunStatus::Running => StepStatus::Running,
        RunStatus::Succeeded => StepStatus::Succeeded,
        RunStatus::Failed | RunStatus::Error => StepStatus::Failed,
        RunStatus::Canceled => StepStatus::Canceled,
        RunStatus::Timeout => StepStatus::Timeout,
        RunStatus::Expired => StepStatus::Skipped,
    }
}

fn status_str(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Queued => "Queued",
        StepStatus::Running => "Running",
        StepStatus::Succeeded => "Succeeded",
        StepStatus::Failed => "Failed",
        StepStatus::Skipped => "Skipped",
        StepStatus::Canceled => "Canceled",
        StepStatus::Timeout => "Timeout",
    }
}

fn parse_status(text: &str) -> Result<StepStatus, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|e| corrupt("step status", e))
}

fn parse_type(text: &str) -> Result<StepType, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|e| corrupt("step type", e))
}

fn step_from_row(row: &SqliteRow) -> Result<StepState, StoreError> {
    let images: String = row.try_get("images")?;
    let base_images: String = row.try_get("base_images")?;
    let purged: Option<String> = row.try_get("purged")?;
    Ok(StepState {
        id: row.try_get("step_id")?,
        step_type: parse_type(&row.try_get::<String, _>("step_type")?)?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        exit_code: row.try_get("exit_code")?,
        images: serde_json::from_str::<Vec<OutputImage>>(&images)
            .map_err(|e| corrupt("step images", e))?,
        base_images: serde_json::from_str::<Vec<BaseImage>>(&base_images)
            .map_err(|e| corrupt("step base images", e))?,
        error: row.try_get("error")?,
        purged: purged
            .map(|p| serde_json::from_str::<PurgeCounts>(&p))
            .transpose()
            .map_err(|e| corrupt("step purge counts", e))?,
    })
}

/// Inserts or updates one step; a step the plan did not list goes after the others.
async fn upsert(
    tx: &mut Transaction<'_, Sqlite>,
    run_seq: i64,
    step: &StepState,
) -> Result<(), StoreError> {
    let images = serde_json::to_string(&step.images).map_err(|e| corrupt("step images", e))?;
    let base_images =
        serde_json::to_string(&step.base_images).map_err(|e| corrupt("step base images", e))?;
    let purged = step
        .purged
        .map(|p| serde_json::to_string(&p))
        .transpose()
        .map_err(|e| corrupt("step purge counts", e))?;
    sqlx::query(
        "INSERT INTO run_steps (run_seq, step_id, position, step_type, status, started_at,
             finished_at, exit_code, images, base_images, error, purged)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position) + 1, 0) FROM run_steps WHERE run_seq = ?1),
             ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (run_seq, step_id) DO UPDATE SET step_type = excluded.step_type,
             status = excluded.status, started_at = excluded.started_at,
             finished_at = excluded.finished_at, exit_code = excluded.exit_code,
             images = excluded.images, base_images = excluded.base_images, error = excluded.error,
             purged = excluded.purged",
    )
    .bind(run_seq)
    .bind(&step.id)
    .bind(step.step_type.as_str())
    .bind(status_str(step.status))
    .bind(step.started_at)
    .bind(step.finished_at)
    .bind(step.exit_code)
    .bind(images)
    .bind(base_images)
    .bind(&step.error)
    .bind(purged)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new run's steps, all queued, in file order.
pub(super) async fn insert_planned_steps(
    tx: &mut Transaction<'_, Sqlite>,
    run: &RunRow,
) -> Result<(), StoreError> {
    for (position, (id, step_type)) in run.job.step_plan().into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO run_steps (run_seq, step_id, position, step_type, status)
             VALUES (?, ?, ?, ?, 'Queued')",
        )
        .bind(seq(run.id))
        .bind(id)
        .bind(position as i64)
        .bind(step_type.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Records how a run's steps ended, in the transaction that ends the run: the worker's final
/// states, or for a build job its one step from the run itself. Steps that never reported an
/// end end with the run: never started means skipped.
pub(super) async fn record_final_steps(
    tx: &mut Transaction<'_, Sqlite>,
    run: &RunRow,
    reported: &[StepState],
) -> Result<(), StoreError> {
    let run_seq = seq(run.id);
    if let (StoredJob::Build(_), true) = (&run.job, reported.is_empty()) {
        let step = StepState {
            id: BUILD_STEP.into(),
            step_type: StepType::Build,
            status: step_status_of(run.status),
            started_at: run.started_at,
            finished_at: run.finished_at,
            exit_code: None,
            images: run.output_images.clone(),
            base_images: Vec::new(),
            error: run.error_message.clone(),
            purged: None,
        };
        return upsert(tx, run_seq, &step).await;
    }
    for step in reported {
        upsert(tx, run_seq, step).await?;
    }
    sqlx::query(
        "UPDATE run_steps SET status = CASE status WHEN 'Queued' THEN 'Skipped' ELSE ?2 END,
             finished_at = CASE status WHEN 'Queued' THEN NULL ELSE ?3 END
         WHERE run_seq = ?1 AND status IN ('Queued', 'Running')",
    )
    .bind(run_seq)
    .bind(status_str(step_status_of(run.status)))
    .bind(run.finished_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records the states a worker reported for the steps of its current attempt. `false`
    /// when the attempt is no longer current: nothing is written then.
    pub async fn record_steps(
        &self,
        id: RunId,
        attempt: u32,
        steps: &[StepState],
    ) -> Result<bool, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs WHERE seq = ? AND attempt = ? AND status = 'Running'",
        )
        .bind(seq(id))
        .bind(attempt as i64)
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            return Ok(false);
        }
        for step in steps {
            upsert(&mut tx, seq(id), step).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A run's steps in order.
    pub async fn run_steps(&self, id: RunId) -> Result<Vec<StepState>, StoreError> {
        let rows = sqlx::query("SELECT * FROM run_steps WHERE run_seq = ? ORDER BY position")
            .bind(seq(id))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(step_from_row).collect()
    }
}
