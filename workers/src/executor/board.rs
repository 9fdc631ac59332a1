//! The states of a run's steps: updated as they change, sent to whoever reports them live,
//! and read at the end (also after the executor's future was dropped by cancel or timeout).

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{StepState, StepStatus, StepsJob};

pub struct Board {
    states: Mutex<Vec<StepState>>,
    updates: Option<UnboundedSender<StepState>>,
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Board {
    /// Every step Queued; each change is also sent to `updates`, if given.
    pub fn new(job: &StepsJob, updates: Option<UnboundedSender<StepState>>) -> Board {
        let states = job
            .steps
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
            })
            .collect();
        Board {
            states: Mutex::new(states),
            updates,
        }
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
