//! Runs at the edges of their life: queued too long, held by a server process that stopped,
//! handed back by a worker that stopped, and deleted once retention is over.

use kiln_worker::protocol::{Digest, RunId, RunStatus};
use sqlx::Row;

use super::runs::{corrupt, from_row, record_event, seq};
use super::{RunRow, Store, StoreError};

/// A run retention removes, with the uploaded context it used, if any.
#[derive(Debug, Clone)]
pub struct EndedRun {
    pub id: RunId,
    pub context: Option<Digest>,
}

/// The reaper's query, each second: `INDEXED BY` makes SQLite refuse it rather than fall back
/// to reading every queued run should the index stop applying.
const EXPIRED_QUEUED_RUNS: &str = "SELECT * FROM runs INDEXED BY runs_queued_by_deadline
     WHERE status = 'Queued' AND queue_deadline IS NOT NULL AND queue_deadline < ?
     ORDER BY seq";

impl Store {
    /// Queued runs whose queue deadline passed, read through the partial index of queued runs
    /// with a deadline: however many runs wait, only the expired ones are read.
    pub async fn expired_queued_runs(&self, now: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(EXPIRED_QUEUED_RUNS)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }

    /// Gives runs queued before runs had their own queue timeout the server's default,
    /// `default_secs` (0: no limit), and the deadline that follows. Returns how many it set.
    pub async fn settle_queue_timeouts(&self, default_secs: u64) -> Result<u64, StoreError> {
        let _writer = self.writer.lock().await;
        let done = sqlx::query(
            "UPDATE runs SET queue_timeout_secs = ?1,
                 queue_deadline = CASE WHEN ?1 > 0 THEN created_at + ?1 * 1000 END
             WHERE status = 'Queued' AND queue_timeout_secs IS NULL",
        )
        .bind(default_secs as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Running runs held by embedded workers of a server process other than `instance`: on a
    /// single node, those of a process that stopped without settling them.
    pub async fn runs_of_other_instances(&self, instance: &str) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE status = 'Running'
             AND server_instance IS NOT NULL AND server_instance != ? ORDER BY seq",
        )
        .bind(instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }

    /// Running runs held by this process's embedded workers.
    pub async fn runs_of_instance(&self, instance: &str) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE status = 'Running' AND server_instance = ? ORDER BY seq",
        )
        .bind(instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }

    /// Puts a running attempt back in the queue, as it was before the claim. The attempt
    /// number stays, so the worker that returned it cannot write to the next attempt.
    /// `false` when the attempt was no longer current.
    pub async fn requeue(&self, id: RunId, attempt: u32, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE runs
             SET status = 'Queued', worker_id = NULL, worker_name = NULL, server_instance = NULL,
                 started_at = NULL, lease_expires_at = NULL
             WHERE seq = ? AND attempt = ? AND status = 'Running'",
        )
        .bind(seq(id))
        .bind(attempt as i64)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_event(&mut tx, id, RunStatus::Queued, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Up to `limit` runs that ended before `cutoff`, oldest first.
    pub async fn runs_ended_before(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<EndedRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, CASE WHEN json_extract(spec, '$.context.kind') = 'upload'
                         THEN json_extract(spec, '$.context.digest') END AS digest
             FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?
             ORDER BY finished_at LIMIT ?",
        )
        .bind(cutoff)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let digest: Option<String> = r.try_get("digest")?;
                Ok(EndedRun {
                    id: RunId::from_seq(r.try_get::<i64, _>("seq")? as u64),
                    context: digest
                        .map(|d| d.parse().map_err(|e| corrupt("context digest", e)))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Deletes an ended run and its status history. `false` when it was not there or had
    /// not ended.
    pub async fn delete_ended_run(&self, id: RunId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The history first: it references the run (its steps go with it, ON DELETE CASCADE).
        sqlx::query(
            "DELETE FROM run_events WHERE run_seq = ?1
             AND EXISTS (SELECT 1 FROM runs WHERE seq = ?1 AND finished_at IS NOT NULL)",
        )
        .bind(seq(id))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM runs WHERE seq = ? AND finished_at IS NOT NULL")
            .bind(seq(id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether any stored run builds from this uploaded context.
    pub async fn context_in_use(&self, digest: &Digest) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs WHERE json_extract(spec, '$.context.kind') = 'upload'
             AND json_extract(spec, '$.context.digest') = ? LIMIT 1",
        )
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reaper_searches_the_deadline_index_and_reads_no_other_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {EXPIRED_QUEUED_RUNS}");
        let plan = super::super::query_plan(&store, sqlx::query(&sql).bind(0_i64)).await;
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH runs USING INDEX runs_queued_by_deadline")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{plan:?}");
        assert_eq!(store.expired_queued_runs(i64::MAX).await.unwrap().len(), 0);
    }
}
