//! The step types on an engine: `cmd` runs a container, `build` builds a folder of the
//! workspace with BuildKit, `push` pushes what earlier build steps built, `purge` is the
//! built-in `acr purge` and `scan` the built-in `kiln scan` (no container). `EngineSteps` is the executor's `StepRunner` for a
//! real (or fake) engine.

pub mod base_images;
mod build;
mod cmd;
pub mod purge;
mod push;
pub mod scan;
pub mod workspace;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::engine::{Built, Engine, EngineError};
use crate::executor::{AttemptEnd, StepError, StepOutput, StepRunner};
use crate::protocol::{ImageRef, RegistryCredential, Step, StepAction, StepsJob};
use crate::scan_run::RunScans;
pub use workspace::Workspace;

impl From<EngineError> for StepError {
    fn from(e: EngineError) -> StepError {
        match e {
            EngineError::BuildFailed(m) => StepError::Failed(m),
            EngineError::Infrastructure(m) => StepError::Infrastructure(m),
        }
    }
}

/// Runs a job's steps on `engine`, in the resources of `workspace`.
pub struct EngineSteps<'a, E> {
    engine: &'a E,
    workspace: &'a Workspace,
    credentials: Vec<RegistryCredential>,
    /// The server scan steps send inventories to; `None` in tests without one.
    scans: Option<RunScans>,
    /// What build steps built, by image name: one build per platform.
    built: Mutex<HashMap<String, Vec<Built>>>,
    /// Containers created so far: a retry or repeat must remove its predecessor first, a
    /// first attempt need not ask.
    created: Mutex<HashSet<String>>,
}

impl<'a, E: Engine> EngineSteps<'a, E> {
    pub fn new(
        engine: &'a E,
        workspace: &'a Workspace,
        credentials: Vec<RegistryCredential>,
    ) -> EngineSteps<'a, E> {
        EngineSteps {
            engine,
            workspace,
            credentials,
            scans: None,
            built: Mutex::default(),
            created: Mutex::default(),
        }
    }

    /// Scan steps send their inventories to `server`.
    pub fn with_scans(mut self, server: RunScans) -> Self {
        self.scans = Some(server);
        self
    }

    /// The credential for the registry `image` names, if the run has one.
    fn credential_for(&self, image: &str) -> Option<&RegistryCredential> {
        let registry = image.parse::<ImageRef>().ok()?.registry()?.to_string();
        self.credentials.iter().find(|c| c.registry == registry)
    }
}

impl<E: Engine> StepRunner for EngineSteps<'_, E> {
    async fn attempt(&self, step: &Step, output: &StepOutput) -> Result<AttemptEnd, StepError> {
        match &step.action {
            StepAction::Cmd(cmd) => self.cmd(step, cmd, output).await,
            StepAction::Build(build) => self.build(step, build, output).await,
            StepAction::Push(push) => self.push(push, output).await,
            StepAction::Purge(purge) => self.purge(purge, output).await,
            StepAction::Scan(scan) => self.scan(scan, output).await,
        }
    }

    async fn stop(&self, step: &Step) {
        if matches!(step.action, StepAction::Cmd(_)) {
            self.engine
                .remove_container(&self.workspace.container_of(step))
                .await;
        }
    }

    fn network(&self, step: &Step) -> String {
        self.workspace
            .network_of(step)
            .unwrap_or_else(|| "default".into())
    }
}

/// Every local image name a run's build steps may leave on the engine: their per-platform
/// build names and the names they were tagged with. The run's end forgets them.
pub fn local_names(job: &StepsJob, workspace_execution: &str) -> Vec<String> {
    let mut names = Vec::new();
    for step in &job.steps {
        if let StepAction::Build(build) = &step.action {
            names.extend(
                build
                    .platforms
                    .iter()
                    .map(|p| build::local_name(workspace_execution, step, p)),
            );
            names.extend(build.images.iter().map(ToString::to_string));
        }
    }
    names
}

/// Runs `job`'s steps in `workspace` (created and seeded by the caller, who also removes it),
/// reporting states on `board`. Returns what push steps pushed.
pub async fn run<E: Engine>(
    engine: &E,
    workspace: &Workspace,
    job: &StepsJob,
    credentials: Vec<RegistryCredential>,
    scans: Option<RunScans>,
    board: &crate::executor::Board,
    log: &crate::logship::LogSink,
) -> Result<Vec<crate::protocol::OutputImage>, (crate::protocol::Outcome, String)> {
    let mut runner = EngineSteps::new(engine, workspace, credentials);
    if let Some(scans) = scans {
        runner = runner.with_scans(scans);
    }
    crate::executor::execute(job, &runner, board, log).await?;
    Ok(board
        .snapshot()
        .into_iter()
        .filter(|s| s.step_type == crate::protocol::StepType::Push)
        .flat_map(|s| s.images)
        .collect())
}
