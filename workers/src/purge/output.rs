//! `acr purge`'s exact output lines, for a dry run (from the plan) and a real run (from the
//! events as they happen), and the JSON form of a plan and its result (`--output json`).

use serde::Serialize;

use super::args::UntaggedMode;
use super::execute::{Event, Outcome};
use super::plan::{Plan, TimeSource};

/// ACR's dry-run banner.
pub const DRY_RUN_BANNER: &str = "DRY RUN: The following output shows what WOULD be deleted if the purge command was executed. Nothing is deleted.";

/// Said when tag times are image creation times.
pub const CREATED_TIME_NOTE: &str =
    "This registry records no tag times: the images' created times are used as the tags' last update times.";

/// The lines printed before any deletion: the banner for a dry run, and the time note.
pub fn header(plan: &Plan, dry_run: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if dry_run {
        lines.push(DRY_RUN_BANNER.to_owned());
    }
    if plan.time_source == TimeSource::ImageCreated {
        lines.push(CREATED_TIME_NOTE.to_owned());
    }
    lines
}

/// The line for one event; `registry` is the login address (`127.0.0.1:8080`).
pub fn event_line(registry: &str, event: &Event, dry_run: bool) -> String {
    let (heading, item) = if dry_run {
        ("Would delete", "Would delete:")
    } else {
        ("Deleting", "Deleted")
    };
    match event {
        Event::TagsOf(repository) => format!("{heading} tags for repository: {repository}"),
        Event::ManifestsOf(repository) => {
            format!("{heading} manifests for repository: {repository}")
        }
        Event::TagDeleted { repository, tag } => format!("{item} {registry}/{repository}:{tag}"),
        Event::ManifestDeleted { repository, digest } => {
            format!("{item} {registry}/{repository}@{digest}")
        }
        Event::TagMoved {
            repository,
            tag,
            now,
        } => format!(
            "Skipped {registry}/{repository}:{tag}, it points at {now} since the plan was made"
        ),
    }
}

/// The events a plan would produce if every deletion succeeded, in plan order: the dry
/// run's listing, and what a real run prints when nothing changed in between.
pub fn planned_events(plan: &Plan) -> Vec<Event> {
    let mut events = Vec::new();
    for repository in &plan.repositories {
        let name = &repository.name;
        if plan.untagged != UntaggedMode::Only {
            events.push(Event::TagsOf(name.clone()));
            events.extend(repository.tags.iter().map(|tag| Event::TagDeleted {
                repository: name.clone(),
                tag: tag.name.clone(),
            }));
        }
        if plan.untagged != UntaggedMode::Keep {
            events.push(Event::ManifestsOf(name.clone()));
            events.extend(repository.manifests.iter().map(|m| Event::ManifestDeleted {
                repository: name.clone(),
                digest: m.digest.clone(),
            }));
        }
    }
    events
}

/// The dry run's listing (without the summary).
pub fn dry_run_lines(registry: &str, plan: &Plan) -> Vec<String> {
    let mut lines = header(plan, true);
    lines.extend(
        planned_events(plan)
            .iter()
            .map(|event| event_line(registry, event, true)),
    );
    lines
}

/// The closing lines: a blank line, the counts, and the failure if any. Always printed, also
/// after a failure (ACR does).
pub fn summary(
    plan: &Plan,
    tags: usize,
    manifests: usize,
    dry_run: bool,
    failure: Option<&str>,
) -> Vec<String> {
    let mut lines = vec![String::new()];
    if plan.untagged != UntaggedMode::Only {
        lines.push(if dry_run {
            format!("Number of tags to be deleted: {tags}")
        } else {
            format!("Number of deleted tags: {tags}")
        });
    }
    if plan.untagged != UntaggedMode::Keep {
        lines.push(if dry_run {
            format!("Number of manifests to be deleted: {manifests}")
        } else {
            format!("Number of deleted manifests: {manifests}")
        });
    }
    if let Some(failure) = failure {
        lines.push(format!("Failed to complete purge: {failure}"));
    }
    lines
}

/// The summary of a dry run.
pub fn dry_run_summary(plan: &Plan) -> Vec<String> {
    summary(plan, plan.tag_count(), plan.manifest_count(), true, None)
}

/// The summary of a real run.
pub fn outcome_summary(plan: &Plan, outcome: &Outcome) -> Vec<String> {
    let mut lines = summary(
        plan,
        outcome.deleted_tags,
        outcome.deleted_manifests,
        false,
        outcome.failure.as_deref(),
    );
    if outcome.cancelled {
        lines.push("Failed to complete purge: cancelled".to_owned());
    }
    lines
}

/// `--output json`: the plan (with why things stay) and, after a real run, what happened.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// The registry purged.
    pub registry: &'a str,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// The plan.
    pub plan: &'a Plan,
    /// What the real run did; `None` for a dry run.
    pub result: Option<&'a Outcome>,
}

impl JsonReport<'_> {
    /// The report as one JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
