//! What a purge deletes, decided from an [`Inventory`] of the registry: the tags in ACR's
//! order, the untagged manifests in an order that never leaves a broken manifest behind, and,
//! for everything a user might expect deleted that stays, why.
//!
//! Tag rules (ACR): a tag is eligible when a filter reaching its repository matches its name,
//! its last update is before the cutoff, and it is unlocked (or `--include-locked`); `--keep N`
//! keeps the N newest eligible tags. Manifest rules (`--untagged`, `--untagged-only`): a
//! manifest left without tags is deleted unless it is locked, younger than the cutoff, has no
//! known time or media type, or is kept by `--keep`; and unless something that stays needs it,
//! which is worked out by [`super::plan_graph`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::args::UntaggedMode;
use super::filter::{reach, Filter};
use super::plan_graph::close_over_references;

/// Where tag and manifest times come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// The registry records when each tag was last updated (Kiln's registry).
    TagUpdate,
    /// The registry has no tag times; each image config's `created` stands in for them.
    ImageCreated,
}

/// The registry as listed before a purge: every repository the filters reach, plus any other
/// repository whose indexes or referrers may link the same digests (they are never purged,
/// but what they link stays).
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where the times come from (said in the output).
    pub time_source: TimeSource,
    /// Repositories, in any order.
    pub repositories: Vec<RepositoryInventory>,
}

/// One repository's tags and manifests.
#[derive(Debug, Clone)]
pub struct RepositoryInventory {
    /// The repository name (`app/web`).
    pub name: String,
    /// Its tags.
    pub tags: Vec<TagInfo>,
    /// Every manifest in it, tagged or not.
    pub manifests: Vec<ManifestInfo>,
}

/// A tag as listed.
#[derive(Debug, Clone)]
pub struct TagInfo {
    /// The tag name.
    pub name: String,
    /// The manifest it points at.
    pub digest: String,
    /// Last update (see [`TimeSource`]); `None` when unknown, which keeps the tag.
    pub updated: Option<DateTime<Utc>>,
    /// Delete- or write-disabled.
    pub locked: bool,
}

/// A manifest as listed.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    /// `sha256:…`.
    pub digest: String,
    /// Its media type; `None` keeps it (as ACR does).
    pub media_type: Option<String>,
    /// Last update; `None` keeps it.
    pub updated: Option<DateTime<Utc>>,
    /// Delete- or write-disabled.
    pub locked: bool,
    /// For an index or manifest list: the digests of its `manifests[]`.
    pub children: Vec<String>,
    /// For a referrer (signature, SBOM): the digest of its `subject`.
    pub subject: Option<String>,
}

/// The rules a plan applies (from [`super::PurgeArgs::policy`]).
#[derive(Debug, Clone)]
pub struct Policy {
    /// The filters; empty means every repository (only with `--untagged-only`).
    pub filters: Vec<Filter>,
    /// Items updated at or after this instant stay.
    pub cutoff: DateTime<Utc>,
    /// `--keep N`.
    pub keep: usize,
    /// Untagged-manifest mode.
    pub untagged: UntaggedMode,
    /// `--include-locked`.
    pub include_locked: bool,
}

/// Why something a user might expect deleted stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum KeepReason {
    /// Delete- or write-disabled, and no `--include-locked`.
    Locked,
    /// Among the `--keep` newest.
    KeptByKeep,
    /// Updated at or after the cutoff.
    YoungerThanCutoff,
    /// No time known.
    TimeUnknown,
    /// No media type known.
    NoMediaType,
    /// A child of an index that stays.
    ChildOf {
        /// The index's repository.
        repository: String,
        /// The index.
        digest: String,
    },
    /// A referrer whose subject stays.
    ReferrerOf {
        /// The subject.
        digest: String,
    },
    /// The subject of a referrer that stays.
    SubjectOf {
        /// The referrer.
        digest: String,
    },
    /// A tag moved (or re-pushed) after the plan was made.
    TagMoved {
        /// Where the tag points now.
        now: String,
    },
    /// A tag moved onto it after the plan was made.
    TaggedAfterPlan {
        /// The tag.
        tag: String,
    },
    /// A tag in a registry that deletes a tag only with its manifest (the distribution API
    /// without DELETE by tag), whose manifest stays.
    ManifestStays {
        /// The manifest.
        digest: String,
        /// Why it stays.
        because: Box<KeepReason>,
    },
    /// Has other tags that stay.
    OtherTags {
        /// One of them.
        tag: String,
    },
    /// Untagged, in a purge not asked to delete untagged manifests (no `--untagged`).
    NotAsked,
}

/// A tag to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTag {
    /// The tag name.
    pub name: String,
    /// The digest it pointed at when planned; the tag is only deleted if it still does.
    pub digest: String,
}

/// A manifest to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedManifest {
    /// `sha256:…`.
    pub digest: String,
    /// Deletion round inside the repository: indexes and referrers go in a round before the
    /// manifests they link, so stopping at any point leaves nothing broken.
    pub wave: u32,
    /// Its index children (kept to re-plan if a tag moves onto it).
    #[serde(skip)]
    pub children: Vec<String>,
    /// Its subject.
    #[serde(skip)]
    pub subject: Option<String>,
}

/// Something that stays, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// A tag name or a digest.
    pub name: String,
    /// Why it stays.
    #[serde(flatten)]
    pub reason: KeepReason,
}

/// One repository's part of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepositoryPlan {
    /// The repository name.
    pub name: String,
    /// Tags to delete, newest first (ACR's `timedesc` order).
    pub tags: Vec<PlannedTag>,
    /// Manifests to delete, by wave, then newest first.
    pub manifests: Vec<PlannedManifest>,
    /// Tags that matched a filter and stay.
    pub kept_tags: Vec<Kept>,
    /// Untagged manifests that stay.
    pub kept_manifests: Vec<Kept>,
}

/// What a purge will delete; the dry run prints it, the real run executes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Where the times came from.
    pub time_source: TimeSource,
    /// Whether untagged manifests are considered at all.
    pub untagged: UntaggedMode,
    /// The repositories the filters reach, sorted by name.
    pub repositories: Vec<RepositoryPlan>,
}

/// A plan that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A filter's regex gave up (backtracking limit).
    #[error("{0}")]
    Filter(String),
    /// Manifests that link each other in a cycle (impossible with content digests).
    #[error("manifests in repository {repository} reference each other in a cycle ({digest})")]
    ReferenceCycle {
        /// The repository.
        repository: String,
        /// One manifest in the cycle.
        digest: String,
    },
}

impl Plan {
    /// Number of tags to delete.
    pub fn tag_count(&self) -> usize {
        self.repositories.iter().map(|r| r.tags.len()).sum()
    }

    /// Number of manifests to delete.
    pub fn manifest_count(&self) -> usize {
        self.repositories.iter().map(|r| r.manifests.len()).sum()
    }
}

/// Decides what a purge deletes. The same call makes the dry run's plan and the real run's.
pub fn plan(inventory: &Inventory, policy: &Policy) -> Result<Plan, PlanError> {
    let mut order: Vec<usize> = (0..inventory.repositories.len()).collect();
    order.sort_by(|&a, &b| {
        inventory.repositories[a]
            .name
            .cmp(&inventory.repositories[b].name)
    });
    let mut plans: Vec<Option<RepositoryPlan>> = vec![None; inventory.repositories.len()];
    // Tags left on each manifest after the planned tag deletions, per repository.
    let mut remaining_tags: Vec<HashMap<&str, usize>> = Vec::with_capacity(plans.len());
    for (index, repository) in inventory.repositories.iter().enumerate() {
        let matcher = reach(&policy.filters, &repository.name).map_err(PlanError::Filter)?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for tag in &repository.tags {
            *counts.entry(tag.digest.as_str()).or_default() += 1;
        }
        if let Some(matcher) = matcher {
            let mut repo_plan = RepositoryPlan {
                name: repository.name.clone(),
                ..RepositoryPlan::default()
            };
            if policy.untagged != UntaggedMode::Only {
                plan_tags(repository, &matcher, policy, &mut repo_plan)?;
                for tag in &repo_plan.tags {
                    if let Some(count) = counts.get_mut(tag.digest.as_str()) {
                        *count -= 1;
                    }
                }
            }
            plans[index] = Some(repo_plan);
        }
        remaining_tags.push(counts);
    }
    if policy.untagged != UntaggedMode::Keep {
        close_over_references(inventory, policy, &remaining_tags, &mut plans)?;
    }
    Ok(Plan {
        time_source: inventory.time_source,
        untagged: policy.untagged,
        repositories: order.into_iter().filter_map(|i| plans[i].take()).collect(),
    })
}

/// Why an item with this time and lock state stays regardless of references, if it does.
pub(super) fn own_reason(
    updated: Option<DateTime<Utc>>,
    locked: bool,
    policy: &Policy,
) -> Option<KeepReason> {
    match updated {
        None => Some(KeepReason::TimeUnknown),
        Some(time) if time >= policy.cutoff => Some(KeepReason::YoungerThanCutoff),
        Some(_) if locked && !policy.include_locked => Some(KeepReason::Locked),
        Some(_) => None,
    }
}

fn plan_tags(
    repository: &RepositoryInventory,
    matcher: &super::filter::TagMatcher,
    policy: &Policy,
    repo_plan: &mut RepositoryPlan,
) -> Result<(), PlanError> {
    let mut eligible = Vec::new();
    for tag in &repository.tags {
        if !matcher.matches(&tag.name).map_err(PlanError::Filter)? {
            continue;
        }
        match own_reason(tag.updated, tag.locked, policy) {
            Some(reason) => repo_plan.kept_tags.push(Kept {
                name: tag.name.clone(),
                reason,
            }),
            None => eligible.push(tag),
        }
    }
    // Newest first, as ACR lists with `orderby=timedesc`; the name makes ties deterministic.
    eligible.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
    for (rank, tag) in eligible.into_iter().enumerate() {
        if rank < policy.keep {
            repo_plan.kept_tags.push(Kept {
                name: tag.name.clone(),
                reason: KeepReason::KeptByKeep,
            });
        } else {
            repo_plan.tags.push(PlannedTag {
                name: tag.name.clone(),
                digest: tag.digest.clone(),
            });
        }
    }
    Ok(())
}
