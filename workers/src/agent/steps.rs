//! How the agent runs a `Steps` job: the run's workspace on the engine (seeded with its
//! context), the executor, live step states sent to the server, and the clean-up that
//! removes what the run created however it ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use reqwest::StatusCode;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Agent, Summary};
use crate::client::{ClientError, ServerClient};
use crate::engine::Engine;
use crate::executor::{closing_table, Board};
use crate::logship::LogSink;
use crate::protocol::{
    BuildSpec, Lease, Outcome, OutputImage, RunId, StepState, StepStatus, StepsJob, StepsUpdate,
};
use crate::source;
use crate::steps::{self, workspace, Workspace};

/// The label value that marks what this worker (by name, for this server) created, so a
/// restart of the same worker finds its leftovers and nobody else's.
pub(super) fn owner(name: &str, server: &str) -> String {
    format!("{name}@{server}")
}

impl<E: Engine> Agent<E> {
    /// Removes what an earlier run of this worker left on the engine (it was killed, say).
    pub(super) async fn remove_leftovers(&self) {
        let owner = owner(&self.config.name, &self.config.server);
        match self
            .engine
            .remove_labelled(workspace::OWNER_LABEL, &owner)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(worker = %self.config.name, removed = n, "removed leftovers of earlier runs")
            }
            Err(e) => {
                tracing::warn!(worker = %self.config.name, error = %e, "leftovers of earlier runs not removed")
            }
        }
    }

    pub(super) async fn run_steps(
        &self,
        lease: &Lease,
        job: &StepsJob,
        execution: &str,
        board: &Board,
        log: &LogSink,
        building: &AtomicBool,
    ) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
        // The context first: a task file in it decides the networks and volumes to create.
        let prepared = self.fetch_context(lease, job, log).await?;
        let compiled = prepared
            .as_ref()
            .and_then(|p| p.resolved.as_ref())
            .and_then(|r| r.job.clone());
        let job = match (compiled, &job.deferred) {
            (Some(compiled), _) => {
                board.install(&compiled);
                compiled
            }
            (None, None) => job.clone(),
            (None, Some(file)) => {
                let msg = format!(
                    "the task file {} was not compiled: a git context is needed to read it",
                    file.path
                );
                log.line(&msg);
                return Err((Outcome::Failed, msg));
            }
        };
        let infrastructure = |e: crate::engine::EngineError| {
            let msg = format!("preparing the run's workspace: {e}");
            log.line(&msg);
            (Outcome::Error, msg)
        };
        let ws = Workspace::create(
            self.engine.as_ref(),
            lease.run_id,
            execution,
            (
                &self.config.name,
                &owner(&self.config.name, &self.config.server),
            ),
            &job,
            &lease.credentials,
        )
        .await
        .map_err(infrastructure)?;
        if let Some(prepared) = &prepared {
            let archive = prepared.open(&self.client, lease).await?;
            ws.seed(self.engine.as_ref(), archive).await.map_err(|e| {
                let msg = format!("filling /workspace with the context: {e}");
                log.line(&msg);
                (Outcome::Error, msg)
            })?;
        }
        // From here a shutdown ends the run rather than handing it to another worker.
        building.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let outputs = steps::run(
            self.engine.as_ref(),
            &ws,
            &job,
            lease.credentials.clone(),
            Some(crate::scan_run::RunScans {
                client: self.client.clone(),
                run: lease.run_id,
                attempt: lease.attempt,
            }),
            board,
            log,
        )
        .await?;
        let summary = Summary {
            steps: job.steps.len(),
            cached: 0,
            build: started.elapsed(),
            push: None,
            base_images: Vec::new(),
            purged: None,
        };
        Ok((outputs, summary))
    }

    /// Gets the run's context ready to fill `/workspace`: the uploaded archive, the git
    /// checkout (whose commit, and deferred task file, go to the server) or the tarball;
    /// `None` for an empty workspace.
    async fn fetch_context(
        &self,
        lease: &Lease,
        job: &StepsJob,
        log: &LogSink,
    ) -> Result<Option<source::Prepared>, (Outcome, String)> {
        let Some(context) = &job.context else {
            return Ok(None);
        };
        let spec = BuildSpec {
            context: context.clone(),
            dockerfile: "Dockerfile".into(),
            build_args: Default::default(),
            target: None,
            platforms: job.platforms.clone(),
            no_cache: false,
            images: Vec::new(),
            push: false,
        };
        let purpose = source::Purpose::Workspace {
            task_file: job.deferred.as_ref().map(|d| d.path.as_str()),
        };
        let prepared = source::prepare_for(
            &self.client,
            lease,
            &spec,
            &self.config.fetch_policy,
            log,
            purpose,
        )
        .await
        .inspect_err(|(_, msg)| log.line(format!("Context failed: {msg}")))?;
        Ok(Some(prepared))
    }

    /// Ends a `Steps` run on the engine: closes the steps still open (`running` tells how),
    /// prints the table of steps, removes the run's containers, networks and volumes and
    /// forgets its local images. Returns the final states.
    pub(super) async fn finish_steps(
        &self,
        job: &StepsJob,
        execution: &str,
        board: &Board,
        running: StepStatus,
        log: &LogSink,
    ) -> Vec<StepState> {
        let states = board.close(running);
        for line in closing_table(&states) {
            log.line(line);
        }
        workspace::remove(self.engine.as_ref(), execution).await;
        let job = board.installed().unwrap_or_else(|| job.clone());
        self.engine
            .forget(&steps::local_names(&job, execution))
            .await;
        states
    }
}

/// Sends step states to the server as they change, batching what piled up during a request.
/// A server without the route (404) is told nothing more: the final result carries every
/// step anyway.
pub(super) async fn report_steps(
    client: ServerClient,
    run: RunId,
    attempt: u32,
    mut changes: UnboundedReceiver<StepState>,
) {
    let mut supported = true;
    while let Some(first) = changes.recv().await {
        let mut steps = vec![first];
        while let Ok(next) = changes.try_recv() {
            // Only the latest state of a step matters.
            steps.retain(|s: &StepState| s.id != next.id);
            steps.push(next);
        }
        if !supported {
            continue;
        }
        match client
            .report_steps(run, &StepsUpdate { attempt, steps })
            .await
        {
            Ok(()) => {}
            Err(ClientError::Server { status, .. }) if status == StatusCode::NOT_FOUND => {
                tracing::info!(run.id = %run, "the server takes no live step states; they go with the result");
                supported = false;
            }
            Err(ClientError::Stale(_)) => supported = false,
            Err(e) => tracing::warn!(run.id = %run, error = %e, "step states not sent"),
        }
    }
}
