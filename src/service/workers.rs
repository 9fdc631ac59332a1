//! Which workers are connected and which are busy, so a queued run can say what it waits for.
//!
//! Workers never register: they only ask for work. So the server remembers each lease request
//! in memory. A worker counts as connected while a lease request of its is waiting, for a
//! moment after one ends (it asks again at once), or while it holds a running run; one whose
//! request was dropped (it stopped) or whose run was declared lost is forgotten at once, so no
//! reason names a worker that is gone. Nothing here is stored: after a restart, workers
//! reappear with their next lease request, and the runs they hold still count.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln_worker::protocol::{Platform, PlatformSet, WorkerInfo};

use crate::store::{requirements_met, QueuedRun};

/// What the server last heard from one worker.
struct Seen {
    name: String,
    platforms: Vec<Platform>,
    emulated: Vec<Platform>,
    /// The start or end of its last lease request, or the report of its last result.
    heard_at: Instant,
    /// Its lease requests waiting for work right now.
    waiting: u32,
    /// From its claim of a run until its next lease request.
    busy: bool,
    /// Set while its engine does not answer: it takes no runs then.
    engine_error: Option<String>,
    /// The `runs.requires` values of the runs it takes (`store::requirements_met`).
    requirements: Vec<String>,
}

impl Seen {
    fn healthy(&self) -> bool {
        self.engine_error.is_none()
    }

    /// Waiting for work, or just done with a request or a run and about to ask again.
    fn idle(&self, asks_again_within: Duration) -> bool {
        !self.busy && (self.waiting > 0 || self.heard_at.elapsed() < asks_again_within)
    }
}

/// A worker asks again this soon after a lease request ends or it reports a result; one not
/// heard from for longer, and not building, has gone. Unhealthy workers ask less often (they
/// back off while their engine is down), so they are remembered for `connected_for`.
pub const ASKS_AGAIN_WITHIN: Duration = Duration::from_secs(5);

pub struct WorkerRegistry {
    workers: Mutex<HashMap<String, Seen>>,
    /// How long an unhealthy worker is remembered after its last lease request.
    connected_for: Duration,
    /// `ASKS_AGAIN_WITHIN`, or `connected_for` if shorter.
    asks_again_within: Duration,
}

impl WorkerRegistry {
    pub fn new(connected_for: Duration) -> WorkerRegistry {
        WorkerRegistry {
            workers: Mutex::new(HashMap::new()),
            connected_for,
            asks_again_within: ASKS_AGAIN_WITHIN.min(connected_for),
        }
    }

    /// A worker asked for work: it is connected, waiting, and done with any run it had
    /// claimed. Call `request_ended` when the request ends, however it ends.
    pub fn lease_requested(&self, worker: &WorkerInfo) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        // Restarted workers come back under new IDs; forget the silent ones. One that is only
        // busy with a long build still counts through the run it holds.
        workers.retain(|_, seen| seen.waiting > 0 || seen.heard_at.elapsed() < self.connected_for);
        let waiting = workers.get(&worker.id).map_or(0, |seen| seen.waiting);
        workers.insert(
            worker.id.clone(),
            Seen {
                name: worker.name.clone(),
                platforms: worker.platforms.clone(),
                emulated: worker.emulated.clone(),
                heard_at: Instant::now(),
                waiting: waiting + 1,
                busy: false,
                engine_error: worker.engine_error.clone(),
                requirements: requirements_met(worker),
            },
        );
        if let Some(error) = &worker.engine_error {
            tracing::debug!(worker = %worker.name, error, "worker reports its engine unreachable");
        }
    }

    /// A lease request of the worker ended. `dropped`: the worker went away before the
    /// answer (it stopped, or its connection broke), so unless it is building it is forgotten
    /// at once.
    pub fn request_ended(&self, worker_id: &str, dropped: bool) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(seen) = workers.get_mut(worker_id) else {
            return;
        };
        seen.waiting = seen.waiting.saturating_sub(1);
        seen.heard_at = Instant::now();
        if dropped && seen.waiting == 0 && !seen.busy {
            workers.remove(worker_id);
        }
    }

    /// The worker's run was declared lost (it stopped heartbeating): it has gone.
    pub fn lost(&self, worker_id: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.remove(worker_id);
    }

    /// The worker claimed a run: it is busy until it asks for work again.
    pub fn claimed(&self, worker_id: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seen) = workers.get_mut(worker_id) {
            seen.busy = true;
        }
    }

    /// Whether `asking` should leave this run to another worker that is free right now and
    /// better placed: first one that builds its platforms natively where `asking` would
    /// emulate, then the one that built it last (its layer cache is warm). The ranking is a
    /// total order, so the best free worker never defers and the run cannot be left by all.
    /// A free worker is waiting in a lease request, so it takes the run at once.
    pub fn leave_to_other(&self, asking: &WorkerInfo, run: &QueuedRun) -> bool {
        let rank = |name: &str, emulated: &[Platform]| {
            let native = !run.platforms.iter().any(|p| emulated.contains(p));
            let warm = run.cache_worker.as_deref() == Some(name);
            (native, warm)
        };
        let mine = rank(&asking.name, &asking.emulated);
        let within = self.asks_again_within;
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.values().any(|seen| {
            seen.idle(within)
                && seen.healthy()
                && seen.name != asking.name
                && run.platforms.is_within(&seen.platforms)
                && rank(&seen.name, &seen.emulated) > mine
        })
    }

    /// The named worker reported its run's result and is about to ask for work again.
    pub fn released(&self, worker_name: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for seen in workers.values_mut().filter(|s| s.name == worker_name) {
            seen.busy = false;
            seen.heard_at = Instant::now();
        }
    }

    /// What each connected, healthy worker builds.
    pub fn platform_lists(&self) -> Vec<Vec<Platform>> {
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers
            .values()
            .filter(|seen| seen.healthy() && (seen.idle(self.asks_again_within) || seen.busy))
            .map(|seen| seen.platforms.clone())
            .collect()
    }

    /// Every platform some connected worker builds, sorted.
    pub fn connected_platforms(&self) -> Vec<Platform> {
        let mut platforms: Vec<Platform> = self.platform_lists().into_iter().flatten().collect();
        platforms.sort_by_key(ToString::to_string);
        platforms.dedup();
        platforms
    }

    /// Why a queued run for `platform` (every platform in it) has not started. `running` holds the worker ID and
    /// platform of every running run.
    pub fn wait_reason(&self, platform: &PlatformSet, running: &[(String, PlatformSet)]) -> Wait {
        let holders: HashSet<&str> = running.iter().map(|(id, _)| id.as_str()).collect();
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let (mut connected, mut busy) = (0, 0);
        let mut unhealthy = Vec::new();
        for (id, seen) in workers.iter() {
            if !platform.is_within(&seen.platforms) {
                continue;
            }
            let holds = holders.contains(id.as_str());
            if !seen.healthy() && seen.heard_at.elapsed() < self.connected_for {
                unhealthy.push(seen.name.clone());
            } else if holds || seen.busy || seen.idle(self.asks_again_within) {
                connected += 1;
                busy += usize::from(holds || seen.busy);
            }
        }
        // Workers not heard from since this server started, still building for this platform.
        let unseen: HashSet<&str> = running
            .iter()
            .filter(|(id, p)| p == platform && !workers.contains_key(id))
            .map(|(id, _)| id.as_str())
            .collect();
        connected += unseen.len();
        busy += unseen.len();
        if connected == 0 && !unhealthy.is_empty() {
            unhealthy.sort();
            Wait::Unhealthy(unhealthy, platform.clone())
        } else if connected == 0 {
            drop(workers);
            Wait::NoWorker(platform.clone(), self.connected_platforms())
        } else if busy >= connected {
            Wait::AllBusy(connected, platform.clone())
        } else {
            Wait::AboutToStart
        }
    }
}

impl WorkerRegistry {
    /// `wait_reason` for a run that needs `requires` of its worker (`runs.requires`): when
    /// workers for its platforms are connected but none runs its kind of job, it says so.
    pub fn wait_reason_for(
        &self,
        platform: &PlatformSet,
        requires: &str,
        running: &[(String, PlatformSet)],
    ) -> Wait {
        let wait = self.wait_reason(platform, running);
        if matches!(wait, Wait::NoWorker(..) | Wait::Unhealthy(..)) {
            return wait;
        }
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let able = workers.values().any(|seen| {
            platform.is_within(&seen.platforms)
                && (seen.busy || seen.idle(self.asks_again_within))
                && seen.requirements.iter().any(|r| r == requires)
        });
        if able || workers.is_empty() {
            return wait;
        }
        // Said in terms of the job's kind when no worker runs that kind at all.
        let kind = requires.split(':').next().unwrap_or(requires);
        let runs_kind = workers.values().any(|seen| {
            platform.is_within(&seen.platforms)
                && seen
                    .requirements
                    .iter()
                    .any(|r| r.split(':').next() == Some(kind))
        });
        Wait::NoWorkerForJob(if runs_kind { requires } else { kind }.to_string())
    }
}

/// Why a queued run waits, in words for `run show` and the run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// No connected worker builds all of the platforms; the second field is every platform
    /// the connected workers build.
    NoWorker(PlatformSet, Vec<Platform>),
    /// The only workers for the platform report that their engine does not answer.
    Unhealthy(Vec<String>, PlatformSet),
    /// This many workers build the platform, and each has a run.
    AllBusy(usize, PlatformSet),
    /// An idle worker is connected: it takes the run as soon as its lease request sees it.
    AboutToStart,
    /// Workers for the platforms are connected, but none runs this kind of job (the run's
    /// `runs.requires`).
    NoWorkerForJob(String),
}

impl Wait {
    /// Whether the run starts without waiting for a worker to connect or come free.
    pub fn starts_now(&self) -> bool {
        *self == Wait::AboutToStart
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::NoWorker(p, connected) if connected.is_empty() => {
                write!(f, "no connected worker builds {p}")
            }
            Wait::NoWorker(p, connected) => {
                let list: Vec<String> = connected.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "no connected worker builds {p}; the connected workers build {}",
                    list.join(", ")
                )
            }
            Wait::Unhealthy(names, p) => write!(
                f,
                "no healthy worker builds {p}: the engine of worker '{}' is unreachable",
                names.join("', '")
            ),
            Wait::AllBusy(n, p) => write!(f, "all {n} workers for {p} are busy"),
            Wait::AboutToStart => f.write_str("a worker is about to take it"),
            Wait::NoWorkerForJob(requires) => match requires.split_once(':') {
                Some((_, types)) => write!(
                    f,
                    "no connected worker runs multi-step jobs with {} steps",
                    types.replace(',', ", ")
                ),
                None if requires == "steps" => {
                    f.write_str("no connected worker runs multi-step jobs")
                }
                None if requires == "purge" => f.write_str("no connected worker runs purges"),
                None => f.write_str("no connected worker runs builds"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, platforms: &[&str]) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            name: id.into(),
            platforms: platforms.iter().map(|p| p.parse().unwrap()).collect(),
            emulated: Vec::new(),
            engine_error: None,
            protocol: kiln_worker::protocol::PROTOCOL_VERSION,
            jobs: vec![kiln_worker::protocol::JobKind::Build],
            step_types: Vec::new(),
        }
    }

    fn platform(p: &str) -> PlatformSet {
        p.parse().unwrap()
    }

    fn queued(platforms: &str, cache_worker: Option<&str>) -> QueuedRun {
        QueuedRun {
            seq: 1,
            platforms: platform(platforms),
            cache_worker: cache_worker.map(str::to_string),
        }
    }

    #[test]
    fn a_rebuild_is_left_to_the_free_worker_with_the_warm_cache() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        let (a, b) = (worker("a", &["linux/amd64"]), worker("b", &["linux/amd64"]));
        reg.lease_requested(&a);
        reg.lease_requested(&b);
        let run = queued("linux/amd64", Some("b"));
        assert!(reg.leave_to_other(&a, &run));
        assert!(!reg.leave_to_other(&b, &run));
        // A busy cache holder is not waited for.
        reg.claimed("b");
        assert!(!reg.leave_to_other(&a, &run));
    }

    #[test]
    fn native_builders_come_before_warm_caches_and_never_both_defer() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        let native = worker("native", &["linux/amd64", "linux/arm64"]);
        let mut emulating = worker("emulating", &["linux/amd64", "linux/arm64"]);
        emulating.emulated = vec!["linux/arm64".parse().unwrap()];
        reg.lease_requested(&native);
        reg.lease_requested(&emulating);
        let run = queued("linux/amd64,linux/arm64", Some("emulating"));
        assert!(reg.leave_to_other(&emulating, &run));
        assert!(!reg.leave_to_other(&native, &run));
        // For amd64 both are native, so the warm cache decides.
        let amd64 = queued("linux/amd64", Some("emulating"));
        assert!(reg.leave_to_other(&native, &amd64));
        assert!(!reg.leave_to_other(&emulating, &amd64));
    }

    #[test]
    fn a_platform_nobody_builds_has_no_worker() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        reg.lease_requested(&worker("w1", &["linux/amd64"]));
        let wait = reg.wait_reason(&platform("linux/arm64"), &[]);
        assert_eq!(
            wait.to_string(),
            "no connected worker builds linux/arm64; the connected workers build linux/amd64"
        );
        assert!(!wait.starts_now());
    }

    #[test]
    fn a_worker_whose_request_was_dropped_or_whose_run_was_lost_is_gone_at_once() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        let amd64 = platform("linux/amd64");
        reg.lease_requested(&worker("w1", &["linux/amd64"]));
        assert!(reg.wait_reason(&amd64, &[]).starts_now());
        reg.request_ended("w1", true);
        assert_eq!(
            reg.wait_reason(&amd64, &[]),
            Wait::NoWorker(amd64.clone(), Vec::new())
        );

        reg.lease_requested(&worker("w2", &["linux/amd64"]));
        reg.claimed("w2");
        reg.request_ended("w2", false);
        assert_eq!(
            reg.wait_reason(&amd64, &[]),
            Wait::AllBusy(1, amd64.clone())
        );
        reg.lost("w2");
        assert_eq!(
            reg.wait_reason(&amd64, &[]),
            Wait::NoWorker(amd64, Vec::new())
        );
        assert!(reg.connected_platforms().is_empty());
    }

    #[test]
    fn a_claim_keeps_a_worker_busy_until_it_asks_again() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        let amd64 = platform("linux/amd64");
        reg.lease_requested(&worker("w1", &["linux/amd64"]));
        assert!(reg.wait_reason(&amd64, &[]).starts_now());
        reg.claimed("w1");
        assert_eq!(
            reg.wait_reason(&amd64, &[]).to_string(),
            "all 1 workers for linux/amd64 are busy"
        );
        reg.lease_requested(&worker("w1", &["linux/amd64"]));
        assert_eq!(reg.wait_reason(&amd64, &[]), Wait::AboutToStart);
    }

    #[test]
    fn a_silent_worker_counts_only_while_it_holds_a_run() {
        let reg = WorkerRegistry::new(Duration::ZERO);
        let amd64 = platform("linux/amd64");
        reg.lease_requested(&worker("w1", &["linux/amd64"]));
        assert!(reg.wait_reason(&amd64, &[]).starts_now());
        reg.request_ended("w1", false);
        assert_eq!(
            reg.wait_reason(&amd64, &[]),
            Wait::NoWorker(amd64.clone(), Vec::new())
        );
        let running = [("w1".to_string(), amd64.clone())];
        assert_eq!(
            reg.wait_reason(&amd64, &running),
            Wait::AllBusy(1, amd64.clone())
        );
        // A worker this server never heard from (it restarted) still holds its run.
        let running = [("w9".to_string(), amd64.clone())];
        assert_eq!(reg.wait_reason(&amd64, &running), Wait::AllBusy(1, amd64));
    }

    #[test]
    fn a_worker_whose_engine_is_down_takes_nothing_and_says_so() {
        let reg = WorkerRegistry::new(Duration::from_secs(60));
        let amd64 = platform("linux/amd64");
        let mut sick = worker("sick", &["linux/amd64"]);
        sick.engine_error = Some("connection refused".into());
        reg.lease_requested(&sick);
        assert_eq!(
            reg.wait_reason(&amd64, &[]).to_string(),
            "no healthy worker builds linux/amd64: the engine of worker 'sick' is unreachable"
        );
        assert!(reg.connected_platforms().is_empty());
        // A healthy worker never leaves a run to it, even a warm one.
        let healthy = worker("healthy", &["linux/amd64"]);
        reg.lease_requested(&healthy);
        assert!(!reg.leave_to_other(&healthy, &queued("linux/amd64", Some("sick"))));
        assert!(reg.wait_reason(&amd64, &[]).starts_now());
    }
}
