//! A scripted `Engine` for unit tests of the agent's state machine: builds succeed, fail or
//! hang as told, and the engine records what the agent asked of it, including builds it
//! stopped by dropping their future. Integration tests use the real Docker engine.

use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use tokio::sync::Notify;

use crate::engine::{BuildJob, Built, Engine, EngineError, PlatformSupport, Pushed};
use crate::logship::LogSink;
use crate::protocol::{Digest, ImageRef, Platform, RegistryCredential};

/// What a build does once it has read its context.
#[derive(Debug, Clone)]
pub enum Script {
    Succeed,
    /// A RUN step failed: the run ends as Failed.
    BuildFails(String),
    /// The engine broke: the run ends as Error.
    EngineBreaks(String),
    /// Never ends on its own: only cancel, timeout or a lost lease stop it.
    Hang,
}

/// What the agent did with the engine, for the test to check.
#[derive(Debug, Default)]
pub struct Record {
    pub builds_started: usize,
    pub builds_finished: usize,
    /// Builds whose future was dropped before it finished: the engine's build was stopped.
    pub builds_stopped: usize,
    pub context_bytes: usize,
    pub forgotten: Vec<String>,
}

/// The record, and a wake-up whenever it changes.
#[derive(Default)]
pub struct Journal {
    record: Mutex<Record>,
    changed: Notify,
}

impl Journal {
    /// Waits until `done` holds for the record.
    pub async fn until(&self, done: impl Fn(&Record) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.record.lock().unwrap()) {
                return;
            }
            changed.await;
        }
    }

    /// Reads the record.
    pub fn read<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.record.lock().unwrap())
    }

    fn update(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.record.lock().unwrap());
        self.changed.notify_waiters();
    }
}

pub struct FakeEngine {
    script: Script,
    pub journal: Arc<Journal>,
}

impl FakeEngine {
    pub fn new(script: Script) -> FakeEngine {
        FakeEngine {
            script,
            journal: Arc::default(),
        }
    }
}

/// Counts a build as stopped when it is dropped before it finished.
struct Running {
    journal: Arc<Journal>,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            self.journal.update(|r| r.builds_stopped += 1);
        }
    }
}

impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        Ok(())
    }

    async fn platforms(&self) -> Result<PlatformSupport, EngineError> {
        Ok(PlatformSupport {
            native: vec![Platform::default()],
            emulated: Vec::new(),
        })
    }

    async fn build(&self, job: BuildJob, log: &LogSink) -> Result<Built, EngineError> {
        let mut running = Running {
            journal: self.journal.clone(),
            finished: false,
        };
        self.journal.update(|r| r.builds_started += 1);
        let context: Vec<_> = job
            .context
            .try_collect()
            .await
            .map_err(|e| EngineError::Infrastructure(format!("reading the context: {e}")))?;
        let bytes = context.iter().map(|c| c.len()).sum::<usize>();
        self.journal.update(|r| r.context_bytes += bytes);
        log.line("#1 [fake 1/1] RUN make");
        let result = match &self.script {
            Script::Succeed => Ok(Built {
                platform: job.platform,
                local_name: job.local_name,
                steps_total: 1,
                steps_cached: 0,
            }),
            Script::BuildFails(msg) => Err(EngineError::BuildFailed(msg.clone())),
            Script::EngineBreaks(msg) => Err(EngineError::Infrastructure(msg.clone())),
            Script::Hang => std::future::pending().await,
        };
        running.finished = true;
        self.journal.update(|r| r.builds_finished += 1);
        result
    }

    async fn push(
        &self,
        _built: &Built,
        _image: &ImageRef,
        _credentials: &[RegistryCredential],
        _log: &LogSink,
    ) -> Result<Pushed, EngineError> {
        Ok(Pushed {
            digest: Digest::from_sha256(&[7; 32]),
            size: 13,
        })
    }

    async fn forget(&self, names: &[String]) {
        self.journal
            .update(|r| r.forgotten.extend(names.iter().cloned()));
    }
}
