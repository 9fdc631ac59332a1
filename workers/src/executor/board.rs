//! The states of a run's steps: updated as they change, sent to whoever reports them live,
//! and read at the end (also after the executor's future was dropped by cancel or timeout).

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{StepState, StepStatus, StepsJob};

pub struct Board {
    states: Mutex<Vec<StepState>>,
    updates: Option<UnboundedSender<StepState>>,
    /// The job compiled from a deferred task file, once the server sent it.
    installed: Mutex<Option<StepsJob>>,
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every step of `job`, Queued.
fn queued(job: &StepsJob) -> Vec<StepState> {
    job.steps
        .iter()
        .map(|s| StepState {
            id: s.id.clone(),
            step_type: s.action.step_type(),
            status: StepStatus::Queued,
            started_at: None,
            finished_at: None,
            exit_code: None,
            images: Vec::new(),
            base_images: Vec::new(),
            error: None,
            purged: None,
        })
        .collect()
}

impl Board {
    /// Every step Queued; each change is also sent to `updates`, if given.
    pub fn new(job: &StepsJob, updates: Option<UnboundedSender<StepState>>) -> Board {
        Board {
            states: Mutex::new(queued(job)),
            updates,
            installed: Mutex::new(None),
        }
    }

    /// Replaces the steps by those of `job`, the compiled form of a deferred task file
    /// (whose lease job had no steps), every one Queued, and sends them to `updates`.
    pub fn install(&self, job: &StepsJob) {
        let states = queued(job);
        *self.states.lock().unwrap_or_else(|e| e.into_inner()) = states.clone();
        *self.installed.lock().unwrap_or_else(|e| e.into_inner()) = Some(job.clone());
        if let Some(tx) = &self.updates {
            for state in states {
                let _ = tx.send(state);
            }
        }
    }

    /// The job `install` put in place, if any.
    pub fn installed(&self) -> Option<StepsJob> {
        self.installed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set(&self, index: usize, change: impl FnOnce(&mut StepState)) {
        let state = {
            let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut states[index]);
            states[index].clone()
        };
        if let Some(tx) = &self.updates {
            // A closed reporter only means nobody listens live; the result carries all.
            let _ = tx.send(state);
        }
    }

    pub(super) fn status(&self, index: usize) -> StepStatus {
        self.states.lock().unwrap_or_else(|e| e.into_inner())[index].status
    }

    /// The states as they are now.
    pub fn snapshot(&self) -> Vec<StepState> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ends every step still open: running ones as `running` (Canceled, Timeout), queued
    /// ones as Skipped. Returns the final states.
    pub fn close(&self, running: StepStatus) -> Vec<StepState> {
        let open: Vec<(usize, StepStatus)> = self
            .snapshot()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s.status {
                StepStatus::Running => Some((i, running)),
                StepStatus::Queued => Some((i, StepStatus::Skipped)),
                _ => None,
            })
            .collect();
        for (i, status) in open {
            self.set(i, |s| {
                s.status = status;
                if status != StepStatus::Skipped {
                    s.finished_at = Some(now_ms());
                }
            });
        }
        self.snapshot()
    }
}
