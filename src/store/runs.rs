//! The `runs` and `run_events` tables: creation, the queue claim, leases and final results.

use kiln_worker::protocol::{
    ContextSource, ImageRef, OutputImage, PlatformSet, RunId, RunStatus, Secret, StepState,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::base_images::{replace_for_task, NewBaseImage};
use super::events::{self, Event};
use super::jobs::StoredJob;
use super::sealed::{RunSecrets, Sealer};
use super::steps::{insert_planned_steps, record_final_steps};
use super::{Store, StoreError};
use crate::access::{Action, Grant, RepoPattern};

/// A run as stored. Times are Unix milliseconds.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: RunId,
    pub status: RunStatus,
    pub trigger: String,
    pub platform: PlatformSet,
    pub requested_images: Vec<String>,
    /// What the run does, with its secrets while it has them.
    pub job: StoredJob,
    pub timeout_secs: u64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub attempt: u32,
    pub worker_name: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub cancel_requested: bool,
    pub output_images: Vec<OutputImage>,
    pub error_message: Option<String>,
    /// What a git context's ref resolved to, once the worker has fetched it.
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub git_token: Option<Secret>,
    /// The name of the token that queued the run, for display.
    pub submitted_by: Option<String>,
    /// The id of the token that queued the run, for visibility: `None` when it could not be
    /// identified (runs from before ids were recorded).
    pub submitted_token_id: Option<String>,
    /// What the run's build may do in Kiln's own registry.
    pub registry_grants: Vec<Grant>,
    /// How long the run may wait for a worker (0: no limit; `None`: the server's default).
    pub queue_timeout_secs: Option<u64>,
    /// The server process whose embedded worker holds the run; `None` for remote workers.
    pub server_instance: Option<String>,
    /// The worker process that holds or last held the run (unique per process, unlike names).
    pub worker_id: Option<String>,
    /// JSON about what triggered the run (a commit, a timer...); `None` for a manual run.
    pub trigger_detail: Option<String>,
    /// The saved task the run belongs to, while the task exists.
    pub task_id: Option<i64>,
}

/// What a new run is made of; built once its ID is known, since image names may contain it.
pub struct NewRun {
    pub trigger: String,
    pub platform: PlatformSet,
    pub requested_images: Vec<String>,
    pub job: StoredJob,
    pub timeout_secs: u64,
    pub git_token: Option<Secret>,
    pub cache_key: String,
    pub submitted_by: Option<String>,
    pub submitted_token_id: Option<String>,
    pub registry_grants: Vec<Grant>,
    /// Seconds the run may wait for a worker; 0: no limit.
    pub queue_timeout_secs: u64,
    /// The saved task the run was queued from.
    pub task_id: Option<i64>,
    /// JSON about what triggered the run; `None` for a manual run.
    pub trigger_detail: Option<String>,
}

/// One entry of a run's status history.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub status: RunStatus,
    pub at: i64,
}

/// How a running attempt ends.
pub struct Finish<'a> {
    pub status: RunStatus,
    pub error_message: Option<&'a str>,
    pub output_images: &'a [OutputImage],
    /// The final state of each step the worker reported (none for a build job: its one step
    /// is recorded from the run).
    pub steps: &'a [StepState],
    pub now: i64,
    /// The base images the run reported; a task's successful run replaces its tracked set.
    pub base_images: &'a [NewBaseImage],
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A run as stored, with its sealed secrets (if it still has any) opened and put back.
pub(super) fn from_row(row: &SqliteRow, sealer: &Sealer) -> Result<RunRow, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let status: String = row.try_get("status")?;
    let platform: String = row.try_get("platform")?;
    let requested: String = row.try_get("requested_images")?;
    let spec: String = row.try_get("spec")?;
    let outputs: String = row.try_get("output_images")?;
    let kind: String = row.try_get("kind")?;
    let mut job = StoredJob::from_json(&kind, &spec)?;
    // Rows from before sealing keep a plain token until start-up seals it.
    let mut git_token = row
        .try_get::<Option<String>, _>("git_token")?
        .map(Secret::new);
    if let Some(sealed) = row.try_get::<Option<String>, _>("secrets")? {
        git_token = RunSecrets::open(sealer, &sealed)?
            .merge_job(&mut job)?
            .or(git_token);
    }
    Ok(RunRow {
        id: RunId::from_seq(seq as u64),
        status: status.parse().map_err(|e| corrupt("status", e))?,
        trigger: row.try_get("trigger")?,
        platform: platform.parse().map_err(|e| corrupt("platform", e))?,
        requested_images: serde_json::from_str(&requested)
            .map_err(|e| corrupt("requested_images", e))?,
        job,
        timeout_secs: row.try_get::<i64, _>("timeout_secs")? as u64,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        worker_name: row.try_get("worker_name")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        output_images: serde_json::from_str(&outputs).map_err(|e| corrupt("output_images", e))?,
        error_message: row.try_get("error_message")?,
        git_commit: row.try_get("git_commit")?,
        git_branch: row.try_get("git_branch")?,
        git_token,
        submitted_by: row.try_get("submitted_by")?,
        submitted_token_id: row.try_get("submitted_token_id")?,
        registry_grants: grants_from_json(&row.try_get::<String, _>("registry_grants")?)?,
        queue_timeout_secs: row
            .try_get::<Option<i64>, _>("queue_timeout_secs")?
            .map(|s| s as u64),
        server_instance: row.try_get("server_instance")?,
        worker_id: row.try_get("worker_id")?,
        trigger_detail: row.try_get("trigger_detail")?,
        task_id: row.try_get("task_id")?,
    })
}

/// A grant as stored: `{"pattern": "app/*", "actions": ["pull"]}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredGrant {
    pattern: RepoPattern,
    actions: Vec<String>,
}

fn grants_json(grants: &[Grant]) -> Result<String, StoreError> {
    let stored: Vec<StoredGrant> = grants
        .iter()
        .map(|g| StoredGrant {
            pattern: g.pattern.clone(),
            actions: g.actions.iter().map(|a| a.as_str().to_string()).collect(),
        })
        .collect();
    serde_json::to_string(&stored).map_err(|e| corrupt("registry_grants", e))
}

fn grants_from_json(text: &str) -> Result<Vec<Grant>, StoreError> {
    let stored: Vec<StoredGrant> =
        serde_json::from_str(text).map_err(|e| corrupt("registry_grants", e))?;
    stored
        .into_iter()
        .map(|g| {
            let actions = g
                .actions
                .iter()
                .map(|a| Action::parse(a).ok_or_else(|| corrupt("registry_grants", a)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Grant::new(g.pattern, &actions))
        })
        .collect()
}

pub(super) fn seq(id: RunId) -> i64 {
    id.seq() as i64
}

pub(super) async fn record_event(
    tx: &mut Transaction<'_, Sqlite>,
    id: RunId,
    status: RunStatus,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO run_events (run_seq, status, at) VALUES (?, ?, ?)")
        .bind(seq(id))
        .bind(status.as_str())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Inserts a queued run. `build` gets the new run's ID and returns its contents; when it
    /// fails nothing is stored, so a rejected submission leaves no trace. `before_commit` gets
    /// the run before any worker can see it, so what it writes to the run's log comes before
    /// the worker's lines; it must be quick, as it runs inside the write transaction.
    pub async fn create_run<E>(
        &self,
        now: i64,
        build: impl FnOnce(RunId) -> Result<NewRun, E>,
        before_commit: impl FnOnce(&RunRow) -> std::io::Result<()>,
    ) -> Result<Result<RunRow, E>, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO runs (status, trigger, platform, requested_images, spec, timeout_secs, created_at)
             VALUES ('Queued', '', '', '[]', '{}', 0, ?) RETURNING seq",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id = RunId::from_seq(seq as u64);
        let new = match build(id) {
            Ok(new) => new,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(e));
            }
        };
        let mut job = new.job.clone();
        let secrets =
            RunSecrets::split_job(&mut job, new.git_token.as_ref())?.seal(&self.sealer)?;
        let row = sqlx::query(
            "UPDATE runs SET trigger = ?, platform = ?, requested_images = ?, spec = ?, timeout_secs = ?,
                 secrets = ?, cache_key = ?, submitted_by = ?, registry_grants = ?,
                 submitted_token_id = ?, context_digest = ?, queue_timeout_secs = ?,
                 queue_deadline = CASE WHEN ? > 0 THEN created_at + ? * 1000 END, task_id = ?,
                 kind = ?, requires = ?, trigger_detail = ?
             WHERE seq = ? RETURNING *",
        )
        .bind(&new.trigger)
        .bind(new.platform.to_string())
        .bind(serde_json::to_string(&new.requested_images).map_err(|e| corrupt("images", e))?)
        .bind(job.to_json()?)
        .bind(new.timeout_secs as i64)
        .bind(secrets)
        .bind(&new.cache_key)
        .bind(&new.submitted_by)
        .bind(grants_json(&new.registry_grants)?)
        .bind(&new.submitted_token_id)
        .bind(match new.job.context() {
            Some(ContextSource::Upload { digest }) => Some(digest.to_string()),
            _ => None,
        })
        .bind(new.queue_timeout_secs as i64)
        .bind(new.queue_timeout_secs as i64)
        .bind(new.queue_timeout_secs as i64)
        .bind(new.task_id)
        .bind(new.job.kind().as_str())
        .bind(new.job.requirement())
        .bind(&new.trigger_detail)
        .bind(seq)
        .fetch_one(&mut *tx)
        .await?;
        let run = from_row(&row, &self.sealer)?;
        record_event(&mut tx, id, RunStatus::Queued, now).await?;
        insert_planned_steps(&mut tx, &run).await?;
        before_commit(&run).map_err(|e| StoreError::Corrupt(format!("run log: {e}")))?;
        tx.commit().await?;
        Ok(Ok(run))
    }

    pub async fn get_run(&self, id: RunId) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE seq = ?")
            .bind(seq(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| from_row(r, &self.sealer)).transpose()
    }

    /// Newest first, optionally only runs in one status, and only runs with an image in
    /// `image`'s repository: with any tag, or with its tag when it has one. Image names are
    /// stored in canonical form, so plain string comparisons match them.
    pub async fn list_runs(
        &self,
        status: Option<RunStatus>,
        image: Option<&ImageRef>,
        limit: u32,
    ) -> Result<Vec<RunRow>, StoreError> {
        let repository = image.map(|i| match i.registry() {
            Some(registry) => format!("{registry}/{}", i.repository()),
            None => i.repository().to_string(),
        });
        // substr, not LIKE: '_' is common in repository names and a wildcard to LIKE. A tag
        // cannot contain '/', so "<repository>:" can only prefix a tag of that repository.
        // An untagged name means "latest", as it does to Docker.
        let rows = sqlx::query(
            "SELECT * FROM runs
             WHERE (?1 IS NULL OR status = ?1)
             AND (?2 IS NULL OR EXISTS (
                 SELECT 1 FROM json_each(spec, '$.images') WHERE CASE
                     WHEN ?3 IS NULL THEN value = ?2 OR substr(value, 1, length(?2) + 1) = ?2 || ':'
                     ELSE value = ?2 || ':' || ?3 OR (?3 = 'latest' AND value = ?2)
                 END))
             ORDER BY seq DESC LIMIT ?4",
        )
        .bind(status.map(RunStatus::as_str))
        .bind(repository)
        .bind(image.and_then(ImageRef::tag))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }

    /// The worker ID and platform of every running run.
    pub async fn running_workers(&self) -> Result<Vec<(String, PlatformSet)>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker_id, platform FROM runs WHERE status = 'Running' AND worker_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let platform: String = r.try_get("platform")?;
                Ok((
                    r.try_get("worker_id")?,
                    platform.parse().map_err(|e| corrupt("platform", e))?,
                ))
            })
            .collect()
    }

    pub async fn run_events(&self, id: RunId) -> Result<Vec<StatusChange>, StoreError> {
        let rows =
            sqlx::query("SELECT status, at FROM run_events WHERE run_seq = ? ORDER BY at, rowid")
                .bind(seq(id))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(StatusChange {
                    status: status.parse().map_err(|e| corrupt("event status", e))?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Starts attempt N+1 of a queued run under a lease. The UPDATE only takes a row that is
    /// still queued, so two workers can never claim the same run: `None` means another did.
    /// `server_instance` marks a claim by this process's embedded worker. The start time is
    /// read from `now` inside the transaction, once the run is chosen: it is when the run is
    /// handed over, and the lease runs `lease_ttl_ms` from then.
    pub async fn try_claim(
        &self,
        seq: i64,
        worker_id: &str,
        worker_name: &str,
        server_instance: Option<&str>,
        now: impl FnOnce() -> i64,
        lease_ttl_ms: i64,
    ) -> Result<Option<RunRow>, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let now = now();
        let row = sqlx::query(
            "UPDATE runs
             SET status = 'Running', attempt = attempt + 1, worker_id = ?, worker_name = ?,
                 server_instance = ?, started_at = ?, lease_expires_at = ?
             WHERE seq = ? AND status = 'Queued'
             RETURNING *",
        )
        .bind(worker_id)
        .bind(worker_name)
        .bind(server_instance)
        .bind(now)
        .bind(now + lease_ttl_ms)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run = from_row(&row, &self.sealer)?;
        record_event(&mut tx, run.id, RunStatus::Running, now).await?;
        tx.commit().await?;
        Ok(Some(run))
    }

    /// Extends the lease of a running attempt. `None` means the attempt is no longer current.
    /// Returns whether the user asked to cancel the run.
    pub async fn renew_lease(
        &self,
        id: RunId,
        attempt: u32,
        lease_expires_at: i64,
    ) -> Result<Option<bool>, StoreError> {
        let _writer = self.writer.lock().await;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_expires_at = ?
             WHERE seq = ? AND attempt = ? AND status = 'Running' RETURNING cancel_requested",
        )
        .bind(lease_expires_at)
        .bind(seq(id))
        .bind(attempt as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(cancel.map(|c| c != 0))
    }

    /// Whether the run is being built now: run credentials work only then.
    pub async fn is_running(&self, id: RunId) -> Result<bool, StoreError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE seq = ?")
            .bind(seq(id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(status.as_deref() == Some("Running"))
    }

    /// Whether `attempt` is the run's current, running attempt.
    pub async fn is_current_attempt(&self, id: RunId, attempt: u32) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs WHERE seq = ? AND attempt = ? AND status = 'Running'",
        )
        .bind(seq(id))
        .bind(attempt as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Ends a run and drops its secrets in the same statement. `attempt` fences running runs
    /// (`None` finishes a queued run). `before_commit`
    /// runs inside the transaction once the row is known to change, so the closing log line
    /// is on disk before anyone can see the final status.
    pub async fn finish_run(
        &self,
        id: RunId,
        attempt: Option<u32>,
        finish: Finish<'_>,
        before_commit: impl FnOnce(&RunRow) -> std::io::Result<()>,
    ) -> Result<Option<RunRow>, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let outputs =
            serde_json::to_string(finish.output_images).map_err(|e| corrupt("outputs", e))?;
        let row = sqlx::query(
            "UPDATE runs
             SET status = ?1, finished_at = ?2, error_message = ?3, output_images = ?4, lease_expires_at = NULL,
                 secrets = NULL, git_token = NULL
             WHERE seq = ?5 AND ((?6 IS NULL AND status = 'Queued') OR (attempt = ?6 AND status = 'Running'))
             RETURNING *",
        )
        .bind(finish.status.as_str())
        .bind(finish.now)
        .bind(finish.error_message)
        .bind(outputs)
        .bind(seq(id))
        .bind(attempt.map(|a| a as i64))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run = from_row(&row, &self.sealer)?;
        record_event(&mut tx, id, finish.status, finish.now).await?;
        record_final_steps(&mut tx, &run, finish.steps).await?;
        if let (Some(task_id), RunStatus::Succeeded) = (run.task_id, finish.status) {
            if !finish.base_images.is_empty() {
                replace_for_task(&mut tx, task_id, finish.base_images, finish.now).await?;
            }
        }
        let finished = Event::RunFinished {
            run_id: id.to_string(),
            status: finish.status.as_str().to_string(),
            task_id: run.task_id,
            repositories: run
                .output_images
                .iter()
                .map(|o| o.repository.clone())
                .collect(),
        };
        events::record(&mut tx, &finished, finish.now).await?;
        before_commit(&run).map_err(|e| StoreError::Corrupt(format!("run log: {e}")))?;
        tx.commit().await?;
        self.announce_events();
        Ok(Some(run))
    }

    /// Records what a git context resolved to and the image names rendered from it, for the
    /// current attempt only. Returns whether the attempt was current.
    pub async fn record_source(
        &self,
        id: RunId,
        attempt: u32,
        commit: &str,
        branch: Option<&str>,
        images: &[ImageRef],
    ) -> Result<bool, StoreError> {
        let images = serde_json::to_string(images).map_err(|e| corrupt("images", e))?;
        let done = sqlx::query(
            "UPDATE runs SET git_commit = ?, git_branch = ?,
                 spec = CASE kind WHEN 'build' THEN json_set(spec, '$.images', json(?)) ELSE spec END
             WHERE seq = ? AND attempt = ? AND status = 'Running'",
        )
        .bind(commit)
        .bind(branch)
        .bind(images)
        .bind(seq(id))
        .bind(attempt as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a running run's job by its compiled form (a task file in the context,
    /// compiled once its worker fetched it) and plans its steps; `false` when the attempt is
    /// no longer current.
    pub async fn record_compiled_job(
        &self,
        id: RunId,
        attempt: u32,
        job: &StoredJob,
        git_token: Option<&Secret>,
    ) -> Result<bool, StoreError> {
        let mut stored = job.clone();
        let secrets = RunSecrets::split_job(&mut stored, git_token)?.seal(&self.sealer)?;
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE runs SET spec = ?, secrets = ?, requires = ?
             WHERE seq = ? AND attempt = ? AND status = 'Running' RETURNING *",
        )
        .bind(stored.to_json()?)
        .bind(secrets)
        .bind(job.requirement())
        .bind(seq(id))
        .bind(attempt as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let run = from_row(&row, &self.sealer)?;
        sqlx::query("DELETE FROM run_steps WHERE run_seq = ?")
            .bind(seq(id))
            .execute(&mut *tx)
            .await?;
        insert_planned_steps(&mut tx, &run).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a running run for cancellation; its worker learns of it on the next heartbeat.
    pub async fn request_cancel(&self, id: RunId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE seq = ? AND status = 'Running'",
        )
        .bind(seq(id))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Running runs whose lease ran out (worker lost) or whose time ran out (`grace_ms` after
    /// the deadline, so the worker's own Timeout report normally wins).
    pub async fn overdue_runs(&self, now: i64, grace_ms: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE status = 'Running'
             AND (lease_expires_at < ?1 OR started_at + timeout_secs * 1000 + ?2 < ?1)",
        )
        .bind(now)
        .bind(grace_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }
}
