//! The `task_timers` table: a task's cron timers and when each fires next. Firing is a
//! conditional UPDATE of `next_fire_at`, so of several servers on one database exactly one
//! fires an occurrence.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::{Store, StoreError};

/// A timer as stored. Times are Unix milliseconds.
#[derive(Debug, Clone)]
pub struct TimerRow {
    pub id: i64,
    pub task_id: i64,
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    /// `None` once the schedule has no occurrence left.
    pub next_fire_at: Option<i64>,
    pub last_fired_at: Option<i64>,
    /// The `seq` of the run its last firing queued.
    pub last_run_id: Option<i64>,
}

/// A timer as a create or an update writes it.
#[derive(Debug, Clone)]
pub struct NewTimer {
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    pub next_fire_at: Option<i64>,
}

impl Store {
    /// A task's timers, by name.
    pub async fn list_timers(&self, task_id: i64) -> Result<Vec<TimerRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM task_timers WHERE task_id = ? ORDER BY name")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(timer_from_row).collect()
    }

    /// Adds a timer to a task; `None` when the task has one of that name.
    pub async fn insert_timer(
        &self,
        task_id: i64,
        t: &NewTimer,
    ) -> Result<Option<TimerRow>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO task_timers (task_id, name, schedule, enabled, next_fire_at)
             VALUES (?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(task_id)
        .bind(&t.name)
        .bind(&t.schedule)
        .bind(t.enabled)
        .bind(t.next_fire_at)
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => timer_from_row(&row).map(Some),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites a timer's schedule, state and next occurrence; `None` when it is gone.
    pub async fn update_timer(
        &self,
        id: i64,
        t: &NewTimer,
    ) -> Result<Option<TimerRow>, StoreError> {
        let row = sqlx::query(
            "UPDATE task_timers SET schedule = ?, enabled = ?, next_fire_at = ?
             WHERE id = ? RETURNING *",
        )
        .bind(&t.schedule)
        .bind(t.enabled)
        .bind(t.next_fire_at)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(timer_from_row).transpose()
    }

    /// Removes a task's timer by name; whether it existed.
    pub async fn delete_timer(&self, task_id: i64, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM task_timers WHERE task_id = ? AND name = ?")
            .bind(task_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The earliest occurrence any timer waits for.
    pub async fn next_timer_occurrence(&self) -> Result<Option<i64>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar("SELECT MIN(next_fire_at) FROM task_timers")
            .fetch_one(&self.pool)
            .await?;
        Ok(next)
    }

    /// Timers whose next occurrence is at or before `now`, earliest first, with their
    /// task's name.
    pub async fn due_timers(&self, now: i64) -> Result<Vec<(TimerRow, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.*, k.name AS task_name FROM task_timers t JOIN tasks k ON k.id = t.task_id
             WHERE t.next_fire_at <= ? ORDER BY t.next_fire_at, t.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((timer_from_row(r)?, r.try_get("task_name")?)))
            .collect()
    }

    /// Takes the occurrence `due` of a timer, moving it on to `next`: true for the one caller
    /// that moved it, false for everyone else (another server, or a change in between).
    /// `fired` records `due` as the timer's last firing, with no run yet.
    pub async fn claim_timer(
        &self,
        id: i64,
        due: i64,
        next: Option<i64>,
        fired: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE task_timers
             SET next_fire_at = ?,
                 last_fired_at = CASE WHEN ? THEN ? ELSE last_fired_at END,
                 last_run_id = CASE WHEN ? THEN NULL ELSE last_run_id END
             WHERE id = ? AND next_fire_at = ?",
        )
        .bind(next)
        .bind(fired)
        .bind(due)
        .bind(fired)
        .bind(id)
        .bind(due)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the run a timer's firing of `fired_at` queued.
    pub async fn set_timer_run(
        &self,
        id: i64,
        fired_at: i64,
        run_seq: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE task_timers SET last_run_id = ? WHERE id = ? AND last_fired_at = ?")
            .bind(run_seq)
            .bind(id)
            .bind(fired_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Makes a task's timers exactly `timers`, in the caller's transaction: a timer that keeps
/// its name and schedule keeps its next and last firing; the others start afresh.
pub(super) async fn replace_timers(
    tx: &mut Transaction<'_, Sqlite>,
    task_id: i64,
    timers: &[NewTimer],
) -> Result<(), StoreError> {
    let names: Vec<String> = timers.iter().map(|t| t.name.clone()).collect();
    let names = serde_json::to_string(&names).map_err(|e| super::runs::corrupt("timers", e))?;
    sqlx::query(
        "DELETE FROM task_timers WHERE task_id = ?
         AND name NOT IN (SELECT value FROM json_each(?))",
    )
    .bind(task_id)
    .bind(names)
    .execute(&mut **tx)
    .await?;
    for t in timers {
        sqlx::query(
            "INSERT INTO task_timers (task_id, name, schedule, enabled, next_fire_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (task_id, name) DO UPDATE SET
                 next_fire_at = CASE WHEN schedule = excluded.schedule THEN next_fire_at
                                     ELSE excluded.next_fire_at END,
                 schedule = excluded.schedule,
                 enabled = excluded.enabled",
        )
        .bind(task_id)
        .bind(&t.name)
        .bind(&t.schedule)
        .bind(t.enabled)
        .bind(t.next_fire_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn timer_from_row(row: &SqliteRow) -> Result<TimerRow, StoreError> {
    Ok(TimerRow {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        name: row.try_get("name")?,
        schedule: row.try_get("schedule")?,
        enabled: row.try_get("enabled")?,
        next_fire_at: row.try_get("next_fire_at")?,
        last_fired_at: row.try_get("last_fired_at")?,
        last_run_id: row.try_get("last_run_id")?,
    })
}
