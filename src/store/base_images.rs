//! `task_base_images`: the base images of each task's last successful run, which the
//! base-image trigger watches.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{Store, StoreError};

/// A base image as a successful run reported it, normalised by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBaseImage {
    /// As written after `FROM`.
    pub reference: String,
    pub registry: String,
    pub repository: String,
    /// `None` for a reference pinned by digest.
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The last stage's base.
    pub runtime: bool,
}

/// A base image a task tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedBaseImage {
    pub task_id: i64,
    pub image: NewBaseImage,
    /// Unix milliseconds of the last poll of its registry, if any.
    pub last_checked_at: Option<i64>,
}

/// Replaces the base images `task_id` tracks with `images`, on `conn` (the transaction that
/// ends the run that reported them).
pub(super) async fn replace_for_task(
    conn: &mut SqliteConnection,
    task_id: i64,
    images: &[NewBaseImage],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM task_base_images WHERE task_id = ?")
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    for image in images {
        sqlx::query(
            "INSERT INTO task_base_images
                 (task_id, reference, registry, repository, tag, digest, runtime, last_checked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (task_id, reference) DO UPDATE SET runtime = runtime OR excluded.runtime",
        )
        .bind(task_id)
        .bind(&image.reference)
        .bind(&image.registry)
        .bind(&image.repository)
        .bind(&image.tag)
        .bind(&image.digest)
        .bind(image.runtime)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const COLUMNS: &str =
    "task_id, reference, registry, repository, tag, digest, runtime, last_checked_at";

impl Store {
    /// The base images `task_id` tracks, runtime base first.
    pub async fn task_base_images(
        &self,
        task_id: i64,
    ) -> Result<Vec<TrackedBaseImage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM task_base_images WHERE task_id = ?
             ORDER BY runtime DESC, reference"
        );
        let rows = sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tracked_row).collect()
    }

    /// Every task's tracked base image `registry/repository:tag`.
    pub async fn tasks_tracking(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Vec<TrackedBaseImage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM task_base_images
             WHERE registry = ? AND repository = ? AND tag = ? ORDER BY task_id"
        );
        let rows = sqlx::query(&sql)
            .bind(registry)
            .bind(repository)
            .bind(tag)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tracked_row).collect()
    }

    /// Tracked tags on registries other than `own` not polled since `before`, oldest first.
    pub async fn base_images_to_poll(
        &self,
        own: &str,
        before: i64,
        limit: u32,
    ) -> Result<Vec<TrackedBaseImage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM task_base_images
             WHERE registry != ? AND tag IS NOT NULL AND COALESCE(last_checked_at, 0) <= ?
             ORDER BY COALESCE(last_checked_at, 0) LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(own)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tracked_row).collect()
    }

    /// Whether a run of `task_id` pushed an image with manifest `digest`.
    pub async fn task_pushed(&self, task_id: i64, digest: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs
             WHERE task_id = ? AND instr(output_images, ?) > 0 LIMIT 1",
        )
        .bind(task_id)
        .bind(format!("\"{digest}\""))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Records a poll of a tracked base image at `at`.
    pub async fn base_image_checked(
        &self,
        task_id: i64,
        reference: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE task_base_images SET last_checked_at = ? WHERE task_id = ? AND reference = ?",
        )
        .bind(at)
        .bind(task_id)
        .bind(reference)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a tracked base image from digest `from` to `to`; `false` when it no longer
    /// tracked `from` (another firing got there first), so each change fires once.
    pub async fn move_base_image(
        &self,
        task_id: i64,
        reference: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE task_base_images SET digest = ?
             WHERE task_id = ? AND reference = ? AND digest IS ?",
        )
        .bind(to)
        .bind(task_id)
        .bind(reference)
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn tracked_row(r: &SqliteRow) -> Result<TrackedBaseImage, StoreError> {
    Ok(TrackedBaseImage {
        task_id: r.try_get("task_id")?,
        image: NewBaseImage {
            reference: r.try_get("reference")?,
            registry: r.try_get("registry")?,
            repository: r.try_get("repository")?,
            tag: r.try_get("tag")?,
            digest: r.try_get("digest")?,
            runtime: r.try_get("runtime")?,
        },
        last_checked_at: r.try_get("last_checked_at")?,
    })
}
