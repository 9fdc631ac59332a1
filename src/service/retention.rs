//! Retention: runs that ended longer ago than `--run-retention` are deleted with their logs,
//! and stored contexts no remaining run uses are deleted once as old. Runs from the
//! background collector, next to the registry's garbage collection.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::contexts::ContextStore;
use super::logs::LogHub;
use super::ServiceError;
use crate::clock::SharedClock;
use crate::store::Store;

/// Runs deleted per query, so one collection never holds a long transaction.
const BATCH: u32 = 500;

pub struct Retention {
    store: Store,
    logs: Arc<LogHub>,
    contexts: Arc<ContextStore>,
    /// Zero: keep everything.
    keep: Duration,
    /// Decides what ended, or was stored, longer than `keep` ago.
    clock: SharedClock,
}

/// What one collection deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub runs_deleted: u64,
    pub logs_deleted: u64,
    pub contexts_deleted: u64,
    pub context_bytes_freed: u64,
}

impl Retention {
    pub fn new(
        store: Store,
        logs: Arc<LogHub>,
        contexts: Arc<ContextStore>,
        keep: Duration,
        clock: SharedClock,
    ) -> Retention {
        Retention {
            store,
            logs,
            contexts,
            keep,
            clock,
        }
    }

    /// Deletes what retention is over for. A context stays while any stored run (queued,
    /// running, or ended within retention) builds from it, and while it is younger than the
    /// retention, so a context uploaded for a run about to be queued is never taken.
    pub async fn collect(&self) -> Result<RetentionReport, ServiceError> {
        let mut report = RetentionReport::default();
        if self.keep.is_zero() {
            return Ok(report);
        }
        let cutoff = self.clock.now_ms() - i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        loop {
            let batch = self.store.runs_ended_before(cutoff, BATCH).await?;
            for run in &batch {
                if self.store.delete_ended_run(run.id).await? {
                    report.runs_deleted += 1;
                    report.logs_deleted += u64::from(self.logs.remove(run.id)?);
                }
            }
            if batch.len() < BATCH as usize {
                break;
            }
        }
        let oldest_kept = SystemTime::from(self.clock.now())
            .checked_sub(self.keep)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for (digest, size, stored_at) in self.contexts.stored()? {
            if stored_at < oldest_kept && !self.store.context_in_use(&digest).await? {
                self.contexts.remove(&digest)?;
                report.contexts_deleted += 1;
                report.context_bytes_freed += size;
            }
        }
        Ok(report)
    }
}
