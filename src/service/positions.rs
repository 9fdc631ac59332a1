//! Where queued runs stand. A run's position counts the queued runs ahead of it that a
//! worker able to build it would take first: older runs whose platforms one of the connected
//! workers that build it also builds (with none connected, those whose platforms are among
//! its own). So an amd64 run behind an amd64+arm64 run that its amd64-only workers cannot
//! build is not behind it, and a multi-platform run counts the single-platform runs its
//! workers take first. Positions of a page of runs come from one pass over the queue.

use std::collections::HashMap;

use kiln_worker::protocol::{Platform, PlatformSet};

use super::runs::RunService;
use super::ServiceError;
use crate::store::Ahead;

/// Stands for a run not queued yet: every queued run is ahead of it.
const NOT_YET_QUEUED: i64 = i64::MAX;

impl RunService {
    /// The positions of queued runs given as (seq, platforms), 1 being next: by seq.
    pub(super) async fn positions(
        &self,
        runs: &[(i64, &PlatformSet)],
    ) -> Result<HashMap<i64, u32>, ServiceError> {
        if runs.is_empty() {
            return Ok(HashMap::new());
        }
        let seqs: Vec<i64> = runs.iter().map(|(seq, _)| *seq).collect();
        let ahead: HashMap<i64, Ahead> = self
            .store
            .queued_ahead(&seqs)
            .await?
            .into_iter()
            .map(|a| (a.seq, a))
            .collect();
        let builders = self.workers.platform_lists();
        Ok(runs
            .iter()
            .map(|(seq, platforms)| {
                let counts = ahead.get(seq).map_or(&[][..], |a| &a.counts[..]);
                (*seq, position(platforms, counts, &builders))
            })
            .collect())
    }

    /// Where a run for `platforms` queued now would stand.
    pub(super) async fn position_of_new(
        &self,
        platforms: &PlatformSet,
    ) -> Result<u32, ServiceError> {
        let positions = self.positions(&[(NOT_YET_QUEUED, platforms)]).await?;
        Ok(positions.get(&NOT_YET_QUEUED).copied().unwrap_or(1))
    }
}

/// 1 + the runs in `ahead` (counts by platform set) that a worker building `platforms` takes
/// first; `builders` are the platform lists of the connected workers.
fn position(
    platforms: &PlatformSet,
    ahead: &[(PlatformSet, u32)],
    builders: &[Vec<Platform>],
) -> u32 {
    let mut takers: Vec<&[Platform]> = builders
        .iter()
        .map(Vec::as_slice)
        .filter(|w| platforms.is_within(w))
        .collect();
    if takers.is_empty() {
        takers.push(platforms.iter().as_slice());
    }
    let before: u32 = ahead
        .iter()
        .filter(|(set, _)| takers.iter().any(|w| set.is_within(w)))
        .map(|(_, n)| n)
        .sum();
    before + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(p: &str) -> PlatformSet {
        p.parse().unwrap()
    }

    fn list(p: &str) -> Vec<Platform> {
        set(p).iter().cloned().collect()
    }

    #[test]
    fn without_workers_a_run_counts_the_runs_within_its_platforms() {
        let ahead = [
            (set("linux/amd64"), 3),
            (set("linux/arm64"), 2),
            (set("linux/amd64,linux/arm64"), 1),
        ];
        assert_eq!(position(&set("linux/amd64"), &ahead, &[]), 4);
        assert_eq!(position(&set("linux/arm64,linux/amd64"), &ahead, &[]), 7);
        assert_eq!(position(&set("linux/s390x"), &ahead, &[]), 1);
    }

    #[test]
    fn a_run_counts_what_the_workers_that_build_it_take_first() {
        let ahead = [(set("linux/arm64"), 2), (set("linux/s390x"), 5)];
        // The only amd64 worker also builds arm64: the arm64 runs go first.
        let builders = [list("linux/amd64,linux/arm64"), list("linux/s390x")];
        assert_eq!(position(&set("linux/amd64"), &ahead, &builders), 3);
        // An amd64-only worker does not wait for them.
        let builders = [list("linux/amd64"), list("linux/arm64")];
        assert_eq!(position(&set("linux/amd64"), &ahead, &builders), 1);
    }
}
