//! A purge against a real registry: list it into an [`Inventory`], plan with
//! [`crate::purge::plan`], print ACR's lines, execute, and end with an exit code. The `purge`
//! job and the built-in `acr purge` / `kiln purge` step both call [`run_purge`].
//!
//! Two kinds of registry: Kiln's own ([`kiln`]: tag times and locks from its ACR metadata
//! API, tags deleted alone, delete permission checked before the first deletion) and any other
//! OCI distribution registry ([`distribution`]: image `created` times, whole-manifest
//! deletion, see [`whole_manifests`]).

mod distribution;

mod kiln;
mod manifest;
mod permission;
mod targets;
mod whole_manifests;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::protocol::RegistryCredential;
use crate::purge::args::OutputFormat;
use crate::purge::execute::Event;
use crate::purge::output::{
    event_line, header, outcome_summary, planned_events, summary, JsonReport,
};
use crate::purge::plan::{KeepReason, Plan};
use crate::purge::{execute, plan, Outcome, PurgeArgs};
use crate::registry_http::RegistryHttp;
use targets::{DistributionTarget, KilnTarget, Locks};
use whole_manifests::{plan_whole_manifests, SkippedTag};

/// Said before the plan in a registry that deletes whole manifests only.
pub const WHOLE_MANIFESTS_NOTE: &str = "This registry deletes a tag only with its manifest: a tag is deleted when all the tags of its manifest are, and the manifest, its referrers and the index children nothing else uses go with it.";

/// What to purge.
#[derive(Debug, Clone)]
pub struct PurgeRequest {
    /// The purge's flags, already parsed.
    pub args: PurgeArgs,
    /// `host[:port]` of the registry to purge; also the prefix of the output lines.
    pub registry: String,
    /// Whether `registry` is Kiln's own registry (times and locks from its metadata API).
    pub kiln: bool,
}

/// How a purge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeEnd {
    /// 0 when everything planned was done (or printed, in a dry run), else 1.
    pub exit_code: i32,
    pub deleted_tags: usize,
    pub deleted_manifests: usize,
    /// Why it failed, for the run's error.
    pub message: Option<String>,
}

/// A purge listed and planned, not yet carried out.
pub struct Prepared {
    args: PurgeArgs,
    registry: String,
    kiln: bool,
    http: RegistryHttp,
    plan: Plan,
    skipped: Vec<SkippedTag>,
    locks: Locks,
}

/// Purges `req.registry`, printing ACR's lines through `log`; `credentials` holds the ones
/// for that registry (run credentials for Kiln's). Cancel stops it between deletions.
pub async fn run_purge(
    req: &PurgeRequest,
    credentials: &[RegistryCredential],
    log: &(dyn Fn(String) + Sync),
    cancel: &CancellationToken,
) -> PurgeEnd {
    if req.args.output == OutputFormat::Text {
        for warning in req.args.warnings() {
            log(warning);
        }
    }
    let prepared = tokio::select! {
        prepared = prepare(req, credentials) => prepared,
        () = cancel.cancelled() => Err("cancelled".to_owned()),
    };
    match prepared {
        Ok(prepared) => prepared.run(log, cancel).await,
        Err(message) => failed_before_plan(req, message, log),
    }
}

/// Lists the registry and makes the plan (the same for a dry run and a real one).
pub async fn prepare(
    req: &PurgeRequest,
    credentials: &[RegistryCredential],
) -> Result<Prepared, String> {
    let http = RegistryHttp::new(&req.registry, credentials)?;
    let policy = req.args.policy(Utc::now());
    let concurrency = req.args.concurrency().0;
    let (plan, skipped, locks) = if req.kiln {
        // Kiln takes the run's credentials as Basic on every registry path.
        http.use_basic();
        let (inventory, locked_repositories) =
            kiln::list(&http, &policy.filters, concurrency).await?;
        let plan = plan(&inventory, &policy).map_err(|e| e.to_string())?;
        let locks = if policy.include_locked {
            Locks::of(&inventory, locked_repositories)
        } else {
            Locks::default()
        };
        (plan, Vec::new(), locks)
    } else {
        let inventory = distribution::list(&http, &policy.filters, concurrency).await?;
        let (plan, skipped) =
            plan_whole_manifests(&inventory, &policy).map_err(|e| e.to_string())?;
        (plan, skipped, Locks::default())
    };
    Ok(Prepared {
        args: req.args.clone(),
        registry: req.registry.clone(),
        kiln: req.kiln,
        http,
        plan,
        skipped,
        locks,
    })
}

impl Prepared {
    /// What will be deleted.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Prints the plan (dry run) or carries it out, then the summary.
    pub async fn run(
        mut self,
        log: &(dyn Fn(String) + Sync),
        cancel: &CancellationToken,
    ) -> PurgeEnd {
        let text = self.args.output == OutputFormat::Text;
        let dry_run = self.args.dry_run;
        if text {
            for line in self.preamble() {
                log(line);
            }
        }
        let outcome = if dry_run {
            if text {
                for event in planned_events(&self.plan) {
                    log(event_line(&self.registry, &event, true));
                }
            }
            None
        } else {
            let quiet = |_: String| {};
            let event_log: &(dyn Fn(String) + Sync) = if text { log } else { &quiet };
            Some(self.execute(event_log, cancel).await)
        };
        let lines = match (&outcome, text) {
            (_, false) => JsonReport {
                registry: &self.registry,
                dry_run,
                plan: &self.plan,
                result: outcome.as_ref(),
            }
            .to_json()
            .lines()
            .map(str::to_owned)
            .collect(),
            (None, true) => summary(
                &self.plan,
                self.plan.tag_count(),
                self.plan.manifest_count(),
                true,
                None,
            ),
            (Some(outcome), true) => outcome_summary(&self.plan, outcome),
        };
        for line in lines {
            log(line);
        }
        end(outcome.unwrap_or_default())
    }

    /// The banner, the time note, and what this registry cannot delete.
    fn preamble(&self) -> Vec<String> {
        let mut lines = header(&self.plan, self.args.dry_run);
        if !self.kiln && self.args.untagged_mode() != crate::purge::UntaggedMode::Only {
            lines.push(WHOLE_MANIFESTS_NOTE.to_owned());
        }
        lines.extend(self.skipped.iter().map(|s| {
            format!(
                "Skipped {}/{}:{}: this registry cannot delete it without {}, which stays: {}",
                self.registry,
                s.repository,
                s.tag,
                s.digest,
                why(&s.because)
            )
        }));
        lines
    }

    async fn execute(
        &mut self,
        log: &(dyn Fn(String) + Sync),
        cancel: &CancellationToken,
    ) -> Outcome {
        let repositories: Vec<&str> = self
            .plan
            .repositories
            .iter()
            .filter(|r| !r.tags.is_empty() || !r.manifests.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        let concurrency = self.args.concurrency().0;
        let on_event = |event: Event| log(event_line(&self.registry, &event, false));
        if !self.kiln {
            let target = DistributionTarget::new(&self.http, &self.plan);
            return execute(&self.plan, &target, concurrency, cancel, on_event).await;
        }
        if let Err(message) = permission::check_delete(&self.http, &repositories).await {
            return Outcome {
                failure: Some(message),
                ..Outcome::default()
            };
        }
        let locks = std::mem::take(&mut self.locks);
        let target = KilnTarget::new(&self.http, &self.registry, locks, log);
        if let Err(e) = target.unlock_repositories(&repositories).await {
            return Outcome {
                failure: Some(e.to_string()),
                ..Outcome::default()
            };
        }
        execute(&self.plan, &target, concurrency, cancel, on_event).await
    }
}

fn end(outcome: Outcome) -> PurgeEnd {
    let message = outcome
        .failure
        .clone()
        .or_else(|| outcome.cancelled.then(|| "cancelled".to_owned()));
    PurgeEnd {
        exit_code: i32::from(message.is_some()),
        deleted_tags: outcome.deleted_tags,
        deleted_manifests: outcome.deleted_manifests,
        message,
    }
}

/// The summary of a purge that failed before it had a plan (the registry could not be
/// listed), with the failure.
fn failed_before_plan(
    req: &PurgeRequest,
    message: String,
    log: &(dyn Fn(String) + Sync),
) -> PurgeEnd {
    let empty = Plan {
        time_source: crate::purge::plan::TimeSource::TagUpdate,
        untagged: req.args.untagged_mode(),
        repositories: Vec::new(),
    };
    let outcome = Outcome {
        failure: Some(message),
        ..Outcome::default()
    };
    let lines: Vec<String> = if req.args.output == OutputFormat::Text {
        summary(&empty, 0, 0, req.args.dry_run, outcome.failure.as_deref())
    } else {
        let report = JsonReport {
            registry: &req.registry,
            dry_run: req.args.dry_run,
            plan: &empty,
            result: Some(&outcome),
        };
        report.to_json().lines().map(str::to_owned).collect()
    };
    for line in lines {
        log(line);
    }
    end(outcome)
}

/// Why something stays, in words.
fn why(reason: &KeepReason) -> String {
    match reason {
        KeepReason::Locked => "it is locked".into(),
        KeepReason::KeptByKeep => "it is among the --keep newest".into(),
        KeepReason::YoungerThanCutoff => "it is newer than the --ago cutoff".into(),
        KeepReason::TimeUnknown => "its time is unknown".into(),
        KeepReason::NoMediaType => "its media type is unknown".into(),
        KeepReason::ChildOf { repository, digest } => {
            format!("it is in the index {repository}@{digest}, which stays")
        }
        KeepReason::ReferrerOf { digest } => format!("it refers to {digest}, which stays"),
        KeepReason::SubjectOf { digest } => format!("its referrer {digest} stays"),
        KeepReason::TagMoved { now } => format!("the tag moved to {now}"),
        KeepReason::TaggedAfterPlan { tag } => format!("it was tagged {tag} after the plan"),
        KeepReason::ManifestStays { digest, because } => {
            format!("{digest} stays: {}", why(because))
        }
        KeepReason::OtherTags { tag } => format!("it is also tagged {tag}"),
        KeepReason::NotAsked => {
            "it is linked from an untagged manifest this purge keeps (no --untagged)".into()
        }
    }
}
