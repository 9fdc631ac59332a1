//! The queue as the scheduler and queue positions read it: queued runs by platform set and
//! age. Every query here reads the partial indexes of migration 0009, which hold only queued
//! runs, so its cost follows the runs it returns, not the depth of the queue.

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

/// `sets(platform)`: the distinct platform sets of queued runs, a skip scan written out: each
/// step seeks the next set after the last, so it costs one index seek per set.
const QUEUED_SETS: &str = "sets(platform) AS (
    SELECT MIN(platform) FROM runs WHERE status = 'Queued'
    UNION ALL
    SELECT (SELECT MIN(platform) FROM runs WHERE status = 'Queued' AND platform > sets.platform)
    FROM sets WHERE sets.platform IS NOT NULL
)";

/// The oldest queued runs of one platform set that one requirement (`runs.requires`) names:
/// one seek of migration 0011's partial index, already in `seq` order.
const QUEUED_BY_REQUIREMENT: &str = "SELECT seq, cache_key FROM runs
    WHERE status = 'Queued' AND platform = ? AND requires = ? ORDER BY seq LIMIT ?";

impl Store {
    /// The distinct platform sets of queued runs, one index seek each.
    pub async fn queued_platform_sets(&self) -> Result<Vec<PlatformSet>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "WITH RECURSIVE {QUEUED_SETS} SELECT platform FROM sets WHERE platform IS NOT NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|p| p.parse().map_err(|e| corrupt("platform", e)))
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

    /// For each of `seqs`, how many queued runs of each platform set are older, in one pass
    /// over the queue up to the newest of them (not one count per run). `i64::MAX` stands for
    /// a run not queued yet: every queued run is older.
    pub async fn queued_ahead(&self, seqs: &[i64]) -> Result<Vec<Ahead>, StoreError> {
        let mut marks: Vec<i64> = seqs.to_vec();
        marks.sort_unstable();
        marks.dedup();
        let json = serde_json::to_string(&marks).map_err(|e| corrupt("queue marks", e))?;
        // Each mark counts, per platform set, the runs between the previous mark and itself
        // (index-only counts on runs_queued_by_platform); the running sums follow.
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE {QUEUED_SETS},
             marks(seq) AS (SELECT value FROM json_each(?1)),
             bounds AS (SELECT seq, LAG(seq, 1, 0) OVER (ORDER BY seq) AS prev FROM marks)
             SELECT b.seq AS mark, s.platform,
                 (SELECT COUNT(*) FROM runs r WHERE r.status = 'Queued'
                  AND r.platform = s.platform AND r.seq >= b.prev AND r.seq < b.seq) AS n
             FROM bounds b, sets s WHERE s.platform IS NOT NULL"
        ))
        .bind(json)
        .fetch_all(&self.pool)
        .await?;
        let mut between: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for r in rows {
            between
                .entry(r.try_get("mark")?)
                .or_default()
                .push((r.try_get("platform")?, r.try_get("n")?));
        }
        let mut running: HashMap<String, u32> = HashMap::new();
        let mut ahead = Vec::with_capacity(marks.len());
        for seq in marks {
            for (platform, n) in between.remove(&seq).unwrap_or_default() {
                *running.entry(platform).or_default() += n as u32;
            }
            let counts = running
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(p, n)| Ok((p.parse().map_err(|e| corrupt("platform", e))?, *n)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            ahead.push(Ahead { seq, counts });
        }
        Ok(ahead)
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
