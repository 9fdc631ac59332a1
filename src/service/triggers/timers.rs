//! The timer scheduler: a loop `kiln serve` starts that sleeps on the server's clock until
//! the earliest occurrence any timer waits for (or until timers change), then fires what is
//! due.
//!
//! Firing an occurrence is two steps. First the occurrence is claimed: a conditional UPDATE
//! moves the timer's `next_fire_at` from the due occurrence to the following one, which
//! exactly one server on a database wins. Then the run is queued through
//! `TaskService::run_triggered`, which has its own transaction. A crash between the two loses
//! that one occurrence (as if the server had been down at that minute, which the issue
//! allows) and never fires it twice; the claim's log line says so.
//!
//! An occurrence found more than [`MISSED_AFTER`] late (the server was down) is not made up:
//! one log line says it was skipped, and the timer moves to its next future occurrence. A
//! disabled timer, or a timer of a disabled task, queues nothing, but its occurrences still
//! pass.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::schedule::Cron;
use crate::service::origin::TriggerKind;
use crate::service::tasks::TaskService;
use crate::service::{to_time, Firing, ServiceError};
use crate::store::{Store, TimerRow};

/// How late an occurrence may still be fired. Later, it was missed while the server was down.
pub const MISSED_AFTER: Duration = Duration::from_secs(60);

/// The longest the scheduler sleeps without looking at the database: another server on the
/// same database may add a timer this one is not told about.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// The pause after a pass that failed, in real time (the failure is the database's).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Fires the timers of every task.
pub struct TimerScheduler {
    store: Store,
    tasks: Arc<TaskService>,
    clock: SharedClock,
    wake: Arc<Notify>,
}

impl TimerScheduler {
    pub fn new(tasks: Arc<TaskService>, clock: SharedClock) -> TimerScheduler {
        TimerScheduler {
            store: tasks.store.clone(),
            wake: tasks.timer_wakeup(),
            tasks,
            clock,
        }
    }

    /// Fires timers until the server stops (the task is aborted).
    pub async fn run_forever(self) {
        loop {
            // Listen before looking, so a change made while we look is not slept through.
            let changed = self.wake.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Err(e) = self.fire_due().await {
                tracing::error!(error = %e, "firing timers failed; trying again shortly");
                // A due timer that cannot be claimed (the database is down) is still due:
                // without a pause this loop would spin.
                tokio::time::sleep(RETRY_AFTER).await;
            }
            let next = match self.store.next_timer_occurrence().await {
                Ok(next) => next.map(to_time),
                Err(e) => {
                    tracing::error!(error = %e, "reading the next timer occurrence failed");
                    None
                }
            };
            let look = self.clock.now() + LOOK_EVERY;
            let deadline = next.map_or(look, |n| n.min(look));
            tokio::select! {
                () = self.clock.sleep_until(deadline) => {}
                () = &mut changed => {}
            }
        }
    }

    /// Fires or skips every occurrence due by now; how many runs were queued.
    pub async fn fire_due(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let mut queued = 0;
        for (timer, task) in self.store.due_timers(now.timestamp_millis()).await? {
            if self.fire(timer, &task, now).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Claims a timer's due occurrence and, if it is to run, queues its run.
    async fn fire(
        &self,
        timer: TimerRow,
        task: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        let Some(due_ms) = timer.next_fire_at else {
            return Ok(false);
        };
        let due = to_time(due_ms);
        let cron = Cron::parse(&timer.schedule);
        // Always the next occurrence after now: one firing per pass, however late.
        let next = cron.as_ref().ok().and_then(|c| c.next_after(now.max(due)));
        let missed = (now - due).to_std().is_ok_and(|late| late > MISSED_AFTER);
        let fires = timer.enabled && !missed && cron.is_ok();
        let next_ms = next.map(|n| n.timestamp_millis());
        if !self
            .store
            .claim_timer(timer.id, due_ms, next_ms, fires)
            .await?
        {
            // Another server fired it, or the timer changed meanwhile.
            return Ok(false);
        }
        let occurrence = due.to_rfc3339();
        let next_at = next
            .map(|n| n.to_rfc3339())
            .unwrap_or_else(|| "none".into());
        if let Err(e) = &cron {
            tracing::error!(task = %task, timer = %timer.name, error = %e, "timer's stored schedule does not parse: it stops");
            return Ok(false);
        }
        if missed {
            tracing::warn!(
                task = %task, timer = %timer.name, schedule = %timer.schedule,
                %occurrence, next = %next_at,
                "timer occurrence missed while the server was down: skipped, not made up"
            );
            return Ok(false);
        }
        if !timer.enabled {
            tracing::debug!(task = %task, timer = %timer.name, %occurrence, "timer disabled: occurrence passed");
            return Ok(false);
        }
        tracing::info!(
            task = %task, timer = %timer.name, %occurrence, next = %next_at,
            "timer occurrence claimed; queueing its run (a crash before it is queued loses this occurrence)"
        );
        let firing = Firing {
            trigger: TriggerKind::Timer,
            detail: serde_json::json!({
                "timer": timer.name,
                "schedule": timer.schedule,
                "occurrence": occurrence,
            }),
            commit: None,
            branch: None,
            push: true,
        };
        match self.tasks.run_triggered(timer.task_id, firing).await {
            Ok(run) => {
                self.store
                    .set_timer_run(timer.id, due_ms, run.id.seq() as i64)
                    .await?;
                tracing::info!(task = %task, timer = %timer.name, %occurrence, run.id = %run.id, "timer fired");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(task = %task, timer = %timer.name, %occurrence, reason = %e, "timer fired but queued no run");
                Ok(false)
            }
        }
    }
}
