//! Garbage collection: mark and sweep of blobs no manifest references and of abandoned upload
//! sessions, each kept for a grace period after its last use so an in-flight push survives.

use std::time::{Duration, SystemTime};

use super::{Digest, RegistryError, RegistryService};
use crate::access::Principal;
use crate::wire::registry::GcReport;

impl RegistryService {
    /// Collects now with the server's configured grace, for an owner.
    pub async fn collect_garbage(
        &self,
        who: &Principal,
        dry_run: bool,
    ) -> Result<GcReport, RegistryError> {
        who.require_owner().map_err(|error| RegistryError::Access {
            error,
            scope: String::new(),
        })?;
        self.collect_garbage_with_grace(self.gc_grace, dry_run)
            .await
    }

    /// Collects on the server's own schedule: the collector acts for no caller, so there is
    /// nobody to authorise.
    pub(crate) async fn collect_scheduled(&self) -> Result<GcReport, RegistryError> {
        self.collect_garbage_with_grace(self.gc_grace, false).await
    }

    async fn collect_garbage_with_grace(
        &self,
        grace: Duration,
        dry_run: bool,
    ) -> Result<GcReport, RegistryError> {
        let cutoff = self.clock.now_ms() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        for blob in self.store.unreferenced_blobs(cutoff).await? {
            let deleted = dry_run || {
                // Exclusive against uploads completing: the row and the file go together, and a
                // blob re-uploaded, mounted or checked since the mark is kept by the re-check.
                let _sweeping = self.sweep.write().await;
                let forgotten = self
                    .store
                    .delete_unreferenced_blob(&blob.digest, cutoff)
                    .await?;
                if forgotten {
                    let digest: Digest = blob
                        .digest
                        .parse()
                        .map_err(|e| std::io::Error::other(format!("stored blob digest: {e}")))?;
                    self.disk.remove(&digest).await?;
                }
                forgotten
            };
            if deleted {
                report.blobs_deleted += 1;
                report.bytes_freed += blob.size;
            }
        }
        for id in self.store.stale_uploads(cutoff).await? {
            let removed = dry_run || self.remove_stale_upload(&id, cutoff).await?;
            if removed {
                report.uploads_removed += 1;
            }
        }
        report.uploads_removed += self.remove_stray_files(grace, dry_run).await?;
        let (kept, newest) = self.store.young_unreferenced_blobs(cutoff).await?;
        report.blobs_kept = kept;
        report.grace_secs = grace.as_secs();
        report.kept_until = newest.map(|t| crate::service::to_time(t) + grace);
        Ok(report)
    }

    /// Files a crash left in the uploads folder: temporary files of monolithic uploads and
    /// manifests, and files of sessions whose row is gone. Any upload in progress writes to
    /// its file, so one untouched for the grace period is abandoned.
    async fn remove_stray_files(
        &self,
        grace: Duration,
        dry_run: bool,
    ) -> Result<u64, RegistryError> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(self.disk.uploads_dir()).await?;
        while let Some(entry) = entries.next_entry().await? {
            // A file gone meanwhile was removed by a concurrent run or its upload completed.
            let Ok(modified) = entry.metadata().await.and_then(|m| m.modified()) else {
                continue;
            };
            let idle = SystemTime::from(self.clock.now())
                .duration_since(modified)
                .is_ok_and(|age| age > grace);
            let name = entry.file_name().to_string_lossy().into_owned();
            if !idle || self.store.upload(&name).await?.is_some() {
                continue;
            }
            if !dry_run {
                match tokio::fs::remove_file(entry.path()).await {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    done => done?,
                }
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes an idle session unless a request is writing to it right now: a chunk that
    /// streams for longer than the grace period must not lose its file.
    async fn remove_stale_upload(&self, id: &str, cutoff: i64) -> Result<bool, RegistryError> {
        let session = self
            .sessions
            .lock()
            .expect("sessions lock")
            .get(id)
            .cloned();
        let _held = match &session {
            Some(s) => match s.try_lock() {
                Ok(guard) => Some(guard),
                Err(_) => return Ok(false),
            },
            None => None,
        };
        if !self.store.delete_stale_upload(id, cutoff).await? {
            return Ok(false);
        }
        self.forget_upload(id).await?;
        Ok(true)
    }
}
