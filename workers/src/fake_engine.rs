//! A scripted `Engine` for unit tests of the agent's state machine and the step executor:
//! builds succeed, fail or hang as told, containers run the little script their command
//! spells, and the engine records what it was asked, including builds and containers stopped
//! by dropping their future. Integration tests use the real Docker engine.
//!
//! A fake container's command is a list of words, run in order: `echo:TEXT` prints a line,
//! `sleep:MS` waits, `touch:NAME` creates a file in the fake's one shared folder, `await:NAME`
//! waits until that file exists, `hang` never ends, `exit:N` exits with N, and
//! `succeed-from:N` exits 0 from the Nth run of the same command on (1 before). A finished
//! script exits 0.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Notify;

use crate::engine::{
    BuildJob, Built, ContainerSpec, Engine, EngineError, Labels, NetworkCreate, PlatformSupport,
    Pushed,
};
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
    /// Containers in the order they were created.
    pub created: Vec<ContainerSpec>,
    /// Containers that exist (created, not removed).
    pub live: BTreeSet<String>,
    /// Containers running their script now, and the most there ever were at once.
    pub running: BTreeSet<String>,
    pub max_running: usize,
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub pulled: Vec<String>,
    /// Files `touch` created.
    pub files: BTreeSet<String>,
    /// Runs of each command, for `succeed-from`.
    runs: BTreeMap<String, u32>,
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

/// Takes a running container off the record when its wait ends or is dropped.
struct Started {
    journal: Arc<Journal>,
    name: String,
}

impl Drop for Started {
    fn drop(&mut self) {
        self.journal.update(|r| {
            r.running.remove(&self.name);
        });
    }
}

impl FakeEngine {
    /// Runs a container's script; returns its exit code.
    async fn script(&self, spec: &ContainerSpec, line: &(dyn Fn(&str) + Send + Sync)) -> i64 {
        let key = spec.cmd.join(" ");
        let mut run = 0;
        self.journal.update(|r| {
            let n = r.runs.entry(key).or_default();
            *n += 1;
            run = *n;
        });
        for word in &spec.cmd {
            let (verb, arg) = word.split_once(':').unwrap_or((word, ""));
            match verb {
                "echo" => line(arg),
                "sleep" => tokio::time::sleep(Duration::from_millis(arg.parse().unwrap())).await,
                "touch" => self.journal.update(|r| {
                    r.files.insert(arg.to_string());
                }),
                "await" => self.journal.until(|r| r.files.contains(arg)).await,
                "hang" => std::future::pending::<()>().await,
                "exit" => return arg.parse().unwrap(),
                "succeed-from" => return i64::from(run < arg.parse::<u32>().unwrap()),
                other => panic!("the fake engine has no script word {other}"),
            }
        }
        0
    }
}

impl Engine for FakeEngine {
    async fn tag(&self, _source: &str, _target: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn image_id(&self, image: &str) -> Result<Option<Digest>, EngineError> {
        Ok((!image.contains("missing")).then(|| Digest::from_sha256(&[9; 32])))
    }

    async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        Ok(!image.contains("missing"))
    }

    async fn pull(
        &self,
        image: &str,
        _credential: Option<&crate::protocol::RegistryCredential>,
        _log: &LogSink,
    ) -> Result<(), EngineError> {
        self.journal.update(|r| r.pulled.push(image.to_string()));
        if image.contains("missing") {
            return Err(EngineError::BuildFailed(format!(
                "pulling {image}: not found"
            )));
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<(), EngineError> {
        let mut taken = false;
        self.journal.update(|r| {
            taken = !r.live.insert(spec.name.clone());
            if !taken {
                r.created.push(spec.clone());
            }
        });
        if taken {
            return Err(EngineError::Infrastructure(format!(
                "the name {} is in use",
                spec.name
            )));
        }
        Ok(())
    }

    async fn start_container(&self, name: &str) -> Result<(), EngineError> {
        self.journal.update(|r| {
            r.running.insert(name.to_string());
            r.max_running = r.max_running.max(r.running.len());
        });
        Ok(())
    }

    async fn wait_container(
        &self,
        name: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<i64, EngineError> {
        let spec = self.journal.read(|r| {
            r.created
                .iter()
                .rev()
                .find(|c| c.name == name)
                .cloned()
                .expect("waits only for containers it created")
        });
        let _started = Started {
            journal: self.journal.clone(),
            name: name.to_string(),
        };
        Ok(self.script(&spec, line).await)
    }

    async fn remove_container(&self, name: &str) {
        self.journal.update(|r| {
            r.live.remove(name);
            r.running.remove(name);
        });
    }

    async fn create_network(&self, spec: &NetworkCreate) -> Result<(), EngineError> {
        self.journal.update(|r| {
            r.networks.insert(spec.name.clone());
        });
        Ok(())
    }

    async fn create_volume(&self, name: &str, _labels: &Labels) -> Result<(), EngineError> {
        self.journal.update(|r| {
            r.volumes.insert(name.to_string());
        });
        Ok(())
    }

    async fn put_archive(
        &self,
        _volume: &str,
        archive: BoxStream<'static, std::io::Result<Bytes>>,
        _labels: &Labels,
    ) -> Result<(), EngineError> {
        let chunks: Vec<Bytes> = archive
            .try_collect()
            .await
            .map_err(|e| EngineError::Infrastructure(e.to_string()))?;
        let bytes = chunks.iter().map(Bytes::len).sum::<usize>();
        self.journal.update(|r| r.context_bytes += bytes);
        Ok(())
    }

    async fn read_archive(
        &self,
        _volume: &str,
        _folder: &str,
        _labels: &Labels,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, EngineError> {
        Ok(futures::stream::iter([Ok(Bytes::from_static(&[0; 1024]))]).boxed())
    }

    async fn remove_labelled(&self, key: &str, value: &str) -> Result<usize, EngineError> {
        let mut removed = 0;
        self.journal.update(|r| {
            let mine: Vec<String> = r
                .created
                .iter()
                .filter(|c| c.labels.get(key).map(String::as_str) == Some(value))
                .map(|c| c.name.clone())
                .collect();
            for name in mine {
                if r.live.remove(&name) {
                    r.running.remove(&name);
                    removed += 1;
                }
            }
            // The fake does not keep labels on networks and volumes: a run's all go.
            removed += r.networks.len() + r.volumes.len();
            r.networks.clear();
            r.volumes.clear();
        });
        Ok(removed)
    }

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
