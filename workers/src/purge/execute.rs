//! Carries out a [`Plan`] against a registry: repositories in order, each one's tags and then
//! its manifests wave by wave, with at most `concurrency` deletions in flight. Before a tag is
//! deleted it is checked to still point at the planned digest; a moved tag stays, and so does
//! the manifest it moved onto with everything that manifest needs. A 404 counts as deleted (as
//! in ACR); any other failure stops the purge once the deletions in flight have finished, with
//! the counts so far. Cancelling stops it between deletions.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::{self, Either};
use futures::{stream, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::plan::{KeepReason, Kept, Plan, PlannedManifest};

/// A registry a purge deletes from (`purge_run`'s targets: Kiln's registry, a distribution one).
pub trait PurgeTarget: Sync {
    /// The digest `tag` points at now; `Ok(None)` if it is gone.
    fn current_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<Option<String>, TargetError>> + Send;
    /// Deletes a tag (not its manifest).
    fn delete_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;
    /// Deletes a manifest by digest.
    fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;
}

/// A failed registry call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// 404: already gone, counted as deleted.
    #[error("not found")]
    NotFound,
    /// Anything else; the text is shown to the user, so adapters keep it free of secrets.
    #[error("{0}")]
    Failed(String),
}

/// Something that happened, in the order it happened (lines inside a repository follow
/// completion, as in ACR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Tag deletions of a repository begin.
    TagsOf(String),
    /// A tag was deleted (or was already gone).
    TagDeleted { repository: String, tag: String },
    /// A tag moved after planning and was kept.
    TagMoved {
        repository: String,
        tag: String,
        now: String,
    },
    /// Manifest deletions of a repository begin.
    ManifestsOf(String),
    /// A manifest was deleted (or was already gone).
    ManifestDeleted { repository: String, digest: String },
}

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Tags deleted (404s included).
    pub deleted_tags: usize,
    /// Manifests deleted (404s included).
    pub deleted_manifests: usize,
    /// Planned deletions that were kept because a tag moved: (repository, item).
    pub kept_after_plan: Vec<(String, Kept)>,
    /// The error that stopped the purge.
    pub failure: Option<String>,
    /// Whether it was cancelled before the end.
    pub cancelled: bool,
}

enum Step {
    Deleted,
    Moved(String),
    Skipped,
    Failed(String),
}

/// Runs `plan` against `target`; `on_event` sees each deletion as it completes.
pub async fn execute<T: PurgeTarget>(
    plan: &Plan,
    target: &T,
    concurrency: usize,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(Event),
) -> Outcome {
    let concurrency = concurrency.max(1);
    let mut plan = plan.clone();
    let mut outcome = Outcome::default();
    let stop = AtomicBool::new(false);
    for index in 0..plan.repositories.len() {
        let repository = plan.repositories[index].name.clone();
        let name = repository.as_str();
        if plan.untagged != super::UntaggedMode::Only {
            on_event(Event::TagsOf(repository.clone()));
            let tags = plan.repositories[index].tags.clone();
            let mut results = bounded(tags, concurrency, &stop, cancel, |tag| async move {
                let step = delete_tag_if_unmoved(target, name, &tag.name, &tag.digest).await;
                (tag, step)
            });
            while let Some((tag, step)) = results.next().await {
                match step {
                    Step::Deleted => {
                        outcome.deleted_tags += 1;
                        on_event(Event::TagDeleted {
                            repository: repository.clone(),
                            tag: tag.name,
                        });
                    }
                    Step::Moved(now) => {
                        let reason = KeepReason::TaggedAfterPlan {
                            tag: tag.name.clone(),
                        };
                        outcome
                            .kept_after_plan
                            .extend(plan.keep_manifest(&now, reason));
                        outcome.kept_after_plan.push((
                            repository.clone(),
                            Kept {
                                name: tag.name.clone(),
                                reason: KeepReason::TagMoved { now: now.clone() },
                            },
                        ));
                        on_event(Event::TagMoved {
                            repository: repository.clone(),
                            tag: tag.name,
                            now,
                        });
                    }
                    Step::Skipped => {}
                    Step::Failed(error) => fail(&mut outcome, &stop, error),
                }
            }
        }
        if plan.untagged != super::UntaggedMode::Keep && !stopped(&stop, cancel) {
            on_event(Event::ManifestsOf(repository.clone()));
            let manifests = std::mem::take(&mut plan.repositories[index].manifests);
            for wave in waves(manifests) {
                if stopped(&stop, cancel) {
                    break;
                }
                let mut results =
                    bounded(wave, concurrency, &stop, cancel, |manifest| async move {
                        let step = match target.delete_manifest(name, &manifest.digest).await {
                            Ok(()) | Err(TargetError::NotFound) => Step::Deleted,
                            Err(TargetError::Failed(error)) => Step::Failed(format!(
                                "failed to delete {name}@{}: {error}",
                                manifest.digest
                            )),
                        };
                        (manifest, step)
                    });
                while let Some((manifest, step)) = results.next().await {
                    match step {
                        Step::Deleted => {
                            outcome.deleted_manifests += 1;
                            on_event(Event::ManifestDeleted {
                                repository: repository.clone(),
                                digest: manifest.digest,
                            });
                        }
                        Step::Failed(error) => fail(&mut outcome, &stop, error),
                        Step::Moved(_) | Step::Skipped => {}
                    }
                }
            }
        }
        if stopped(&stop, cancel) {
            break;
        }
    }
    outcome.cancelled = cancel.is_cancelled() && outcome.failure.is_none();
    outcome
}

/// Runs `act` on each item with at most `concurrency` in flight; once the purge is stopped or
/// cancelled, the items not yet started come back as skipped.
fn bounded<'a, I: 'a, F, Fut>(
    items: Vec<I>,
    concurrency: usize,
    stop: &'a AtomicBool,
    cancel: &'a CancellationToken,
    act: F,
) -> impl Stream<Item = (I, Step)> + 'a
where
    F: Fn(I) -> Fut + 'a,
    Fut: Future<Output = (I, Step)> + 'a,
{
    // `map` runs when `buffer_unordered` has room, i.e. just before the item would start.
    stream::iter(items)
        .map(move |item| {
            if stopped(stop, cancel) {
                Either::Left(future::ready((item, Step::Skipped)))
            } else {
                Either::Right(act(item))
            }
        })
        .buffer_unordered(concurrency)
}

fn stopped(stop: &AtomicBool, cancel: &CancellationToken) -> bool {
    stop.load(Ordering::SeqCst) || cancel.is_cancelled()
}

fn fail(outcome: &mut Outcome, stop: &AtomicBool, error: String) {
    stop.store(true, Ordering::SeqCst);
    outcome.failure.get_or_insert(error);
}

async fn delete_tag_if_unmoved<T: PurgeTarget>(
    target: &T,
    repository: &str,
    tag: &str,
    planned: &str,
) -> Step {
    let failed = |error| Step::Failed(format!("failed to delete {repository}:{tag}: {error}"));
    match target.current_digest(repository, tag).await {
        Ok(None) | Err(TargetError::NotFound) => Step::Deleted,
        Ok(Some(now)) if now != planned => Step::Moved(now),
        Ok(Some(_)) => match target.delete_tag(repository, tag).await {
            Ok(()) | Err(TargetError::NotFound) => Step::Deleted,
            Err(TargetError::Failed(error)) => failed(error),
        },
        Err(TargetError::Failed(error)) => failed(error),
    }
}

/// Splits a repository's planned manifests (sorted by wave) into rounds.
fn waves(manifests: Vec<PlannedManifest>) -> Vec<Vec<PlannedManifest>> {
    let mut rounds: Vec<Vec<PlannedManifest>> = Vec::new();
    for manifest in manifests {
        match rounds.last_mut() {
            Some(round) if round[0].wave == manifest.wave => round.push(manifest),
            _ => rounds.push(vec![manifest]),
        }
    }
    rounds
}

impl Plan {
    /// Takes `digest` (in every repository) out of the deletions, with everything that then
    /// must stay with it (children, subject, referrers); returns what was taken out.
    pub fn keep_manifest(&mut self, digest: &str, reason: KeepReason) -> Vec<(String, Kept)> {
        let mut kept = Vec::new();
        let mut work = vec![(digest.to_owned(), reason)];
        while let Some((digest, reason)) = work.pop() {
            for repository in &mut self.repositories {
                let mut index = 0;
                while index < repository.manifests.len() {
                    let manifest = &repository.manifests[index];
                    let is_it = manifest.digest == digest;
                    let refers = manifest.subject.as_deref() == Some(digest.as_str());
                    if !is_it && !refers {
                        index += 1;
                        continue;
                    }
                    let manifest = repository.manifests.remove(index);
                    let reason = if is_it {
                        reason.clone()
                    } else {
                        // A kept referrer's own referrers stay too.
                        let own = KeepReason::ReferrerOf {
                            digest: digest.clone(),
                        };
                        work.push((manifest.digest.clone(), own.clone()));
                        own
                    };
                    for child in &manifest.children {
                        let reason = KeepReason::ChildOf {
                            repository: repository.name.clone(),
                            digest: manifest.digest.clone(),
                        };
                        work.push((child.clone(), reason));
                    }
                    if let Some(subject) = &manifest.subject {
                        let reason = KeepReason::SubjectOf {
                            digest: manifest.digest.clone(),
                        };
                        work.push((subject.clone(), reason));
                    }
                    let kept_one = Kept {
                        name: manifest.digest,
                        reason,
                    };
                    repository.kept_manifests.push(kept_one.clone());
                    kept.push((repository.name.clone(), kept_one));
                }
            }
        }
        kept
    }
}
