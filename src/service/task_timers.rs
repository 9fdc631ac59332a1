//! A task's timers: `kiln task timer add | list | update | remove` and the `--schedule`
//! flags of `task create | update`. Changing them needs the tasks role, listing them read
//! access, as for the task itself. Every change wakes the scheduler
//! (`triggers::timers`), which fires them.

use kiln_worker::protocol::RunId;

use super::tasks::TaskService;
use super::{to_time, ServiceError};
use crate::access::{Action, Principal};
use crate::schedule::{check_timer_name, timer_specs, Cron};
use crate::store::{NewTimer, TimerRow};
use crate::wire::tasks::Task;
use crate::wire::timers::{CreateTimer, Timer, TimerList, UpdateTimer};

impl TaskService {
    /// A task's timers.
    pub async fn list_timers(
        &self,
        task: &str,
        who: &Principal,
    ) -> Result<TimerList, ServiceError> {
        who.require_any(Action::Pull)?;
        let task = self.row(task).await?;
        Ok(TimerList {
            timers: self.timer_views(task.id).await?,
        })
    }

    /// `timer add`: a new named timer; a name the task already has is a conflict.
    pub async fn add_timer(
        &self,
        task: &str,
        req: CreateTimer,
        who: &Principal,
    ) -> Result<Timer, ServiceError> {
        self.may_manage(who)?;
        check_timer_name(&req.name).map_err(ServiceError::Invalid)?;
        let new = self.new_timer(req.name, &parse(&req.schedule)?, req.enabled);
        let task = self.row(task).await?;
        let row = self
            .store
            .insert_timer(task.id, &new)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "task '{}' already has a timer '{}': change it with 'kiln task timer update'",
                    task.name, new.name
                ))
            })?;
        tracing::info!(task = %task.name, timer = %row.name, schedule = %row.schedule, "timer added");
        self.timers_written();
        Ok(timer_view(row))
    }

    /// `timer update`: a new schedule starts from now; enabling or disabling keeps the next
    /// occurrence (a disabled timer's occurrences pass without a run).
    pub async fn update_timer(
        &self,
        task: &str,
        timer: &str,
        req: UpdateTimer,
        who: &Principal,
    ) -> Result<Timer, ServiceError> {
        self.may_manage(who)?;
        let cron = req.schedule.as_deref().map(parse).transpose()?;
        let task = self.row(task).await?;
        let old = self.timer_row(task.id, &task.name, timer).await?;
        let enabled = req.enabled.unwrap_or(old.enabled);
        let new = match cron {
            Some(cron) if cron.as_str() != old.schedule => {
                self.new_timer(old.name.clone(), &cron, enabled)
            }
            _ => NewTimer {
                name: old.name.clone(),
                schedule: old.schedule.clone(),
                enabled,
                next_fire_at: old.next_fire_at,
            },
        };
        let row = self
            .store
            .update_timer(old.id, &new)
            .await?
            .ok_or_else(|| timer_not_found(&task.name, timer))?;
        tracing::info!(task = %task.name, timer = %row.name, schedule = %row.schedule, enabled = row.enabled, "timer updated");
        self.timers_written();
        Ok(timer_view(row))
    }

    /// `timer remove`.
    pub async fn remove_timer(
        &self,
        task: &str,
        timer: &str,
        who: &Principal,
    ) -> Result<(), ServiceError> {
        self.may_manage(who)?;
        let task = self.row(task).await?;
        if !self.store.delete_timer(task.id, timer).await? {
            return Err(timer_not_found(&task.name, timer));
        }
        tracing::info!(task = %task.name, timer, "timer removed");
        self.timers_written();
        Ok(())
    }

    /// The timers `--schedule` values describe, each due at its next occurrence from now.
    pub(super) fn schedule_timers(&self, values: &[String]) -> Result<Vec<NewTimer>, ServiceError> {
        let specs = timer_specs(values).map_err(ServiceError::Invalid)?;
        Ok(specs
            .into_iter()
            .map(|t| self.new_timer(t.name, &t.cron, true))
            .collect())
    }

    /// `task` with its timers, as `task show` prints it.
    pub(super) async fn with_timers(
        &self,
        task_id: i64,
        mut task: Task,
    ) -> Result<Task, ServiceError> {
        task.timers = self.timer_views(task_id).await?;
        Ok(task)
    }

    /// Tells the scheduler the timers changed.
    pub(super) fn timers_written(&self) {
        self.timers_changed.notify_waiters();
    }

    fn new_timer(&self, name: String, cron: &Cron, enabled: bool) -> NewTimer {
        let now = to_time(self.runs.now_ms());
        NewTimer {
            name,
            schedule: cron.as_str().to_string(),
            enabled,
            next_fire_at: cron.next_after(now).map(|t| t.timestamp_millis()),
        }
    }

    async fn timer_views(&self, task_id: i64) -> Result<Vec<Timer>, ServiceError> {
        let rows = self.store.list_timers(task_id).await?;
        Ok(rows.into_iter().map(timer_view).collect())
    }

    async fn timer_row(
        &self,
        task_id: i64,
        task: &str,
        timer: &str,
    ) -> Result<TimerRow, ServiceError> {
        let rows = self.store.list_timers(task_id).await?;
        rows.into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(timer))
            .ok_or_else(|| timer_not_found(task, timer))
    }
}

fn parse(schedule: &str) -> Result<Cron, ServiceError> {
    Cron::parse(schedule).map_err(|e| ServiceError::Invalid(e.to_string()))
}

fn timer_not_found(task: &str, timer: &str) -> ServiceError {
    ServiceError::NotFound(format!("task '{task}' has no timer '{timer}'"))
}

fn timer_view(row: TimerRow) -> Timer {
    Timer {
        name: row.name,
        schedule: row.schedule,
        enabled: row.enabled,
        next_fire_at: row.next_fire_at.map(to_time),
        last_fired_at: row.last_fired_at.map(to_time),
        last_run_id: row.last_run_id.map(|seq| RunId::from_seq(seq as u64)),
    }
}
