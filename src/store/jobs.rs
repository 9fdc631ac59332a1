//! What a run does, as the server stores it: a `build` job (today's `BuildSpec` JSON, as
//! earlier versions stored it), a `steps` job, a `purge` job or a `scan` job. The `runs.kind` column says which; the
//! `runs.requires` column says what a worker must run to take it, for the claim's index.

use kiln_worker::protocol::{
    BuildSpec, ContextSource, ImageRef, Job, JobKind, PurgeJob, ScanJob, StepAction, StepType,
    StepsJob, WorkerInfo,
};

use super::runs::corrupt;
use super::StoreError;

/// A run's job as stored; secrets are sealed apart (see `sealed.rs`) and merged back on read.
#[derive(Debug, Clone)]
pub enum StoredJob {
    Build(BuildSpec),
    Steps(StepsJob),
    Purge(PurgeJob),
    Scan(ScanJob),
}

impl StoredJob {
    pub fn kind(&self) -> JobKind {
        match self {
            StoredJob::Build(_) => JobKind::Build,
            StoredJob::Steps(_) => JobKind::Steps,
            StoredJob::Purge(_) => JobKind::Purge,
            StoredJob::Scan(_) => JobKind::Scan,
        }
    }

    /// What the run needs of a worker: `build`, or `steps:` and its sorted step types.
    pub fn requirement(&self) -> String {
        match self {
            StoredJob::Build(_) => JobKind::Build.as_str().to_string(),
            StoredJob::Steps(job) => requirement_of(&job.step_types()),
            StoredJob::Purge(_) => JobKind::Purge.as_str().to_string(),
            StoredJob::Scan(_) => JobKind::Scan.as_str().to_string(),
        }
    }

    /// Where the run's files come from; `None` for a steps job on an empty workspace.
    pub fn context(&self) -> Option<&ContextSource> {
        match self {
            StoredJob::Build(spec) => Some(&spec.context),
            StoredJob::Steps(job) => job.context.as_ref(),
            StoredJob::Purge(_) | StoredJob::Scan(_) => None,
        }
    }

    pub fn build_spec(&self) -> Option<&BuildSpec> {
        match self {
            StoredJob::Build(spec) => Some(spec),
            StoredJob::Steps(_) | StoredJob::Purge(_) | StoredJob::Scan(_) => None,
        }
    }

    /// Every image the run names: a build's images, or a steps job's build and push images.
    pub fn images(&self) -> Vec<ImageRef> {
        match self {
            StoredJob::Build(spec) => spec.images.clone(),
            StoredJob::Steps(job) => {
                let mut images: Vec<ImageRef> = Vec::new();
                for step in &job.steps {
                    let named = match &step.action {
                        StepAction::Build(b) => &b.images,
                        StepAction::Push(p) => &p.images,
                        StepAction::Cmd(_) | StepAction::Purge(_) | StepAction::Scan(_) => continue,
                    };
                    for image in named {
                        if !images.contains(image) {
                            images.push(image.clone());
                        }
                    }
                }
                images
            }
            StoredJob::Purge(_) | StoredJob::Scan(_) => Vec::new(),
        }
    }

    /// Whether the run pushes: a build unless `--no-push` (a git build's images are known
    /// only once its commit is), a steps job when it has a push step.
    pub fn pushes(&self) -> bool {
        match self {
            StoredJob::Build(spec) => spec.push,
            StoredJob::Steps(job) => job
                .steps
                .iter()
                .any(|s| matches!(s.action, StepAction::Push(_))),
            StoredJob::Purge(_) | StoredJob::Scan(_) => false,
        }
    }

    /// The images the run pushes to a registry.
    pub fn pushed_images(&self) -> Vec<ImageRef> {
        match self {
            StoredJob::Build(spec) if spec.push => spec.images.clone(),
            StoredJob::Build(_) | StoredJob::Purge(_) | StoredJob::Scan(_) => Vec::new(),
            StoredJob::Steps(job) => job
                .steps
                .iter()
                .filter_map(|s| match &s.action {
                    StepAction::Push(p) => Some(p.images.iter().cloned()),
                    _ => None,
                })
                .flatten()
                .collect(),
        }
    }

    /// The steps in file order, as `run show` lists them before they report.
    pub fn step_plan(&self) -> Vec<(String, StepType)> {
        match self {
            StoredJob::Build(_) => vec![(BUILD_STEP.to_string(), StepType::Build)],
            StoredJob::Steps(job) => job
                .steps
                .iter()
                .map(|s| (s.id.clone(), s.action.step_type()))
                .collect(),
            StoredJob::Purge(_) => vec![(PURGE_STEP.to_string(), StepType::Purge)],
            StoredJob::Scan(_) => vec![(SCAN_STEP.to_string(), StepType::Scan)],
        }
    }

    /// Its purges by step id: a purge job's one, or a steps job's purge steps.
    pub fn purges(&self) -> Vec<(&str, &PurgeJob)> {
        match self {
            StoredJob::Build(_) | StoredJob::Scan(_) => Vec::new(),
            StoredJob::Steps(job) => job
                .steps
                .iter()
                .filter_map(|s| match &s.action {
                    StepAction::Purge(p) => Some((s.id.as_str(), p)),
                    _ => None,
                })
                .collect(),
            StoredJob::Purge(job) => vec![(PURGE_STEP, job)],
        }
    }

    pub fn into_job(self) -> Job {
        match self {
            StoredJob::Build(spec) => Job::Build(spec),
            StoredJob::Steps(mut job) => {
                // The values a deferred file is compiled with stay on the server.
                if let Some(file) = &mut job.deferred {
                    file.values.clear();
                    file.secret_values.clear();
                }
                Job::Steps(job)
            }
            StoredJob::Purge(job) => Job::Purge(job),
            StoredJob::Scan(job) => Job::Scan(job),
        }
    }

    /// The JSON of the `spec` column.
    pub(super) fn to_json(&self) -> Result<String, StoreError> {
        match self {
            StoredJob::Build(spec) => serde_json::to_string(spec),
            StoredJob::Steps(job) => serde_json::to_string(job),
            StoredJob::Purge(job) => serde_json::to_string(job),
            StoredJob::Scan(job) => serde_json::to_string(job),
        }
        .map_err(|e| corrupt("spec", e))
    }

    /// Reads the `spec` column of a run of `kind`.
    pub(super) fn from_json(kind: &str, json: &str) -> Result<StoredJob, StoreError> {
        match kind {
            "build" => serde_json::from_str(json).map(StoredJob::Build),
            "steps" => serde_json::from_str(json).map(StoredJob::Steps),
            "purge" => serde_json::from_str(json).map(StoredJob::Purge),
            "scan" => serde_json::from_str(json).map(StoredJob::Scan),
            other => return Err(corrupt("kind", other)),
        }
        .map_err(|e| corrupt("spec", e))
    }
}

/// The id of a build run's one step.
pub const BUILD_STEP: &str = "build";

/// The id of a purge run's one step (its worker reports it under this id).
pub const PURGE_STEP: &str = "purge";

/// The id of a scan run's one step (its worker reports it under this id).
pub const SCAN_STEP: &str = "scan";

fn requirement_of(types: &[StepType]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    format!("{}:{}", JobKind::Steps.as_str(), names.join(","))
}

/// Every `requires` value a worker can take: `build` if it runs builds, `purge` and `scan`
/// if it runs those, and for steps jobs each set of the step types it runs (at most 32, so the claim
/// does one index seek each).
pub fn requirements_met(worker: &WorkerInfo) -> Vec<String> {
    let mut met = Vec::new();
    if worker.jobs.contains(&JobKind::Build) {
        met.push(JobKind::Build.as_str().to_string());
    }
    for kind in [JobKind::Purge, JobKind::Scan] {
        if worker.jobs.contains(&kind) {
            met.push(kind.as_str().to_string());
        }
    }
    if worker.jobs.contains(&JobKind::Steps) {
        let mut types = worker.step_types.clone();
        types.sort();
        types.dedup();
        for mask in 0..(1u32 << types.len()) {
            let subset: Vec<StepType> = types
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, t)| *t)
                .collect();
            met.push(requirement_of(&subset));
        }
    }
    met
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(jobs: &[JobKind], types: &[StepType]) -> WorkerInfo {
        serde_json::from_value(serde_json::json!({
            "id": "w", "name": "w", "platforms": ["linux/amd64"], "protocol": 2,
            "jobs": jobs, "stepTypes": types,
        }))
        .unwrap()
    }

    #[test]
    fn a_worker_meets_the_requirements_of_the_kinds_and_step_types_it_lists() {
        assert_eq!(requirements_met(&worker(&[JobKind::Build], &[])), ["build"]);
        let met = requirements_met(&worker(
            &[JobKind::Steps],
            &[StepType::Cmd, StepType::Build],
        ));
        assert_eq!(
            met,
            ["steps:", "steps:build", "steps:cmd", "steps:build,cmd"]
        );
        assert!(!met.contains(&"steps:push".to_string()));
    }
}
