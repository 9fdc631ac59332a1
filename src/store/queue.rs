//! The queue as the scheduler and queue positions read it: queued runs by platform set and
//! age. Every query here reads the partial indexes of migration 0009, which hold only queued
//! runs, or the per-set totals of migration 0013, so its cost follows the runs it returns, not
//! the depth of the queue.

use std::collections::HashMap;

use kiln_worker::protocol::PlatformSet;
use sqlx::Row;

use super::runs::corrupt;
use super::{Store, StoreError};

/// A run waiting for a worker, as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct QueuedRun {
    pub seq: i64,
    pub platforms: PlatformSet,
    /// The worker that last built a run with the same cache key, if any succeeded.
    pub cache_worker: Option<String>,
}

/// For one point in the queue, how many queued runs of each platform set are older.
#[derive(Debug, Clone)]
pub struct Ahead {
    pub seq: i64,
    pub counts: Vec<(PlatformSet, u32)>,
}

/// The oldest queued runs of one platform set that one requirement (`runs.requires`) names:
/// one seek of migration 0011's partial index, already in `seq` order.
const QUEUED_BY_REQUIREMENT: &str = "SELECT seq, cache_key FROM runs
    WHERE status = 'Queued' AND platform = ? AND requires = ? ORDER BY seq LIMIT ?";

impl Store {
    /// The distinct platform sets of queued runs: a small table the triggers of migration 0013
    /// keep, not a scan of the queue.
    pub async fn queued_platform_sets(&self) -> Result<Vec<PlatformSet>, StoreError> {
        Ok(self.queued_totals().await?.into_keys().collect())
    }

    /// How many runs wait for each platform set (sets with none left out).
    async fn queued_totals(&self) -> Result<HashMap<PlatformSet, u32>, StoreError> {
        let rows = sqlx::query("SELECT platform, queued FROM queue_counts WHERE queued > 0")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let platform: String = r.try_get("platform")?;
                let queued: i64 = r.try_get("queued")?;
                Ok((
                    platform.parse().map_err(|e| corrupt("platform", e))?,
                    queued as u32,
                ))
            })
            .collect()
    }

    /// The `limit` oldest queued runs whose platform set is one of `sets` and whose
    /// requirement (`runs.requires`) is one of `requires`, oldest first, each with the worker
    /// that last built its cache key successfully. One seek of migration 0011's index per
    /// pair, so runs the worker cannot run are never read.
    pub async fn queued_runs_for(
        &self,
        sets: &[PlatformSet],
        requires: &[String],
        limit: u32,
    ) -> Result<Vec<QueuedRun>, StoreError> {
        let mut found: Vec<(i64, PlatformSet, Option<String>)> = Vec::new();
        for set in sets {
            for requirement in requires {
                let rows = sqlx::query(QUEUED_BY_REQUIREMENT)
                    .bind(set.to_string())
                    .bind(requirement)
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?;
                for r in rows {
                    found.push((r.try_get("seq")?, set.clone(), r.try_get("cache_key")?));
                }
            }
        }
        found.sort_by_key(|(seq, ..)| *seq);
        found.truncate(limit as usize);
        let mut cache_workers: HashMap<String, Option<String>> = HashMap::new();
        let mut runs = Vec::with_capacity(found.len());
        for (seq, platforms, key) in found {
            let cache_worker = match key {
                Some(key) => match cache_workers.get(&key) {
                    Some(worker) => worker.clone(),
                    None => {
                        let worker = self.last_builder(&key).await?;
                        cache_workers.insert(key, worker.clone());
                        worker
                    }
                },
                None => None,
            };
            runs.push(QueuedRun {
                seq,
                platforms,
                cache_worker,
            });
        }
        Ok(runs)
    }

    /// The worker of the newest successful run with this cache key.
    async fn last_builder(&self, cache_key: &str) -> Result<Option<String>, StoreError> {
        let worker: Option<Option<String>> = sqlx::query_scalar(
            "SELECT worker_name FROM runs WHERE status = 'Succeeded' AND cache_key = ?
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(cache_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(worker.flatten())
    }

    /// For each of `seqs`, how many queued runs of each platform set are older. `i64::MAX`
    /// stands for a run not queued yet: every queued run is older, which the per-set totals
    /// answer without counting. Otherwise the runs between consecutive marks are counted
    /// (index-only counts on `runs_queued_by_platform`) from whichever end of the queue is
    /// nearer the marks, so a page of the newest runs, the common listing, counts only the runs
    /// newer than its oldest, however deep the queue is; the totals give the rest.
    pub async fn queued_ahead(&self, seqs: &[i64]) -> Result<Vec<Ahead>, StoreError> {
        let mut marks: Vec<i64> = seqs.to_vec();
        marks.sort_unstable();
        marks.dedup();
        let totals = self.queued_totals().await?;
        let queued: Vec<i64> = marks.iter().copied().filter(|m| *m != i64::MAX).collect();
        let (Some(&first), Some(&last)) = (queued.first(), queued.last()) else {
            // Nothing to count: only runs not queued yet.
            return Ok(marks
                .into_iter()
                .map(|seq| Ahead {
                    seq,
                    counts: totals.iter().map(|(p, n)| (p.clone(), *n)).collect(),
                })
                .collect());
        };
        let (oldest, newest): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(seq), MAX(seq) FROM runs INDEXED BY runs_by_status WHERE status = 'Queued'",
        )
        .fetch_one(&self.pool)
        .await?;
        let from_top = newest.unwrap_or(0) - last <= first - oldest.unwrap_or(0);
        let intervals = self.queued_between(&queued, from_top).await?;
        let mut ahead = Vec::with_capacity(marks.len());
        // Running counts per set of the runs older than the current mark.
        let mut older: HashMap<&PlatformSet, i64> = HashMap::new();
        if from_top {
            // Older than the first mark: the total less everything from the first mark up.
            for (set, total) in &totals {
                let newer: i64 = intervals.values().filter_map(|c| c.get(set)).sum();
                older.insert(set, *total as i64 - newer);
            }
        }
        for seq in marks {
            if seq == i64::MAX {
                let counts = totals.iter().map(|(p, n)| (p.clone(), *n)).collect();
                ahead.push(Ahead { seq, counts });
                continue;
            }
            if !from_top {
                // The interval ending at this mark.
                for (set, n) in intervals.get(&seq).into_iter().flatten() {
                    *older.entry(set).or_default() += n;
                }
            }
            let counts = older
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(p, n)| ((*p).clone(), *n as u32))
                .collect();
            ahead.push(Ahead { seq, counts });
            if from_top {
                // The interval starting at this mark is older than the next one.
                for (set, n) in intervals.get(&seq).into_iter().flatten() {
                    *older.entry(set).or_default() += n;
                }
            }
        }
        Ok(ahead)
    }

    /// Queued runs per platform set between consecutive `marks` (sorted, distinct), keyed by
    /// mark: from the top, `[mark, next mark)` with the last reaching the newest run; from the
    /// bottom, `[previous mark, mark)` with the first starting at the oldest.
    async fn queued_between(
        &self,
        marks: &[i64],
        from_top: bool,
    ) -> Result<HashMap<i64, HashMap<PlatformSet, i64>>, StoreError> {
        let json = serde_json::to_string(marks).map_err(|e| corrupt("queue marks", e))?;
        let bounds = if from_top {
            "SELECT seq AS mark, seq AS lo, LEAD(seq, 1, 9223372036854775807) OVER (ORDER BY seq) AS hi FROM marks"
        } else {
            "SELECT seq AS mark, LAG(seq, 1, 0) OVER (ORDER BY seq) AS lo, seq AS hi FROM marks"
        };
        let rows = sqlx::query(&format!(
            "WITH marks(seq) AS (SELECT value FROM json_each(?1)),
             bounds AS ({bounds}),
             sets AS (SELECT platform FROM queue_counts WHERE queued > 0)
             SELECT b.mark, s.platform,
                 (SELECT COUNT(*) FROM runs r INDEXED BY runs_queued_by_platform
                  WHERE r.status = 'Queued' AND r.platform = s.platform
                  AND r.seq >= b.lo AND r.seq < b.hi) AS n
             FROM bounds b, sets s"
        ))
        .bind(json)
        .fetch_all(&self.pool)
        .await?;
        let mut between: HashMap<i64, HashMap<PlatformSet, i64>> = HashMap::new();
        for r in rows {
            let platform: String = r.try_get("platform")?;
            let n: i64 = r.try_get("n")?;
            if n > 0 {
                between
                    .entry(r.try_get("mark")?)
                    .or_default()
                    .insert(platform.parse().map_err(|e| corrupt("platform", e))?, n);
            }
        }
        Ok(between)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_claim_seeks_runs_by_platform_and_requirement_without_sorting_or_scanning() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {QUEUED_BY_REQUIREMENT}");
        let explain = sqlx::query(&sql)
            .bind("linux/amd64")
            .bind("build")
            .bind(32_i64);
        let plan = super::super::query_plan(&store, explain).await;
        assert!(
            plan.iter().any(|d| d.starts_with(
                "SEARCH runs USING INDEX runs_queued_by_requirement (platform=? AND requires=?)"
            )),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN") || d.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}
