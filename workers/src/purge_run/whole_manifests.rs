//! Plans for registries that delete a tag only with its manifest. CNCF distribution 2.8
//! answers `DELETE /v2/<name>/manifests/<tag>` with `400 DIGEST_INVALID`; only a DELETE by
//! digest works there, and it removes the manifest with every tag on it. So in such a
//! registry:
//! - a tag is deleted only when every tag of its manifest is deleted and the manifest itself
//!   may go; the others stay and the output says why (`Skipped …`);
//! - the manifest goes with its tags, and so do its referrers and the index children nothing
//!   else keeps (as `--untagged` would delete them), so nothing is left dangling; without
//!   `--untagged` nothing else untagged is deleted.
//!
//! The plan is still made by [`crate::purge::plan`]: once for the tags, once for the
//! manifests of the registry as it would be after those tag deletions.
//!
//! What this cannot guard against: a DELETE by digest is not conditional, so a tag moved onto
//! a planned manifest between the plan and its deletion goes with it (each planned tag is
//! still checked to point where it did, so a planned tag moved elsewhere stays).

use std::collections::{HashMap, HashSet};

use crate::purge::plan::{plan, Inventory, KeepReason, Kept, Plan, PlanError, Policy};
use crate::purge::UntaggedMode;

/// A tag the user's filters chose that stays because its manifest stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTag {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub because: KeepReason,
}

/// The plan for a registry that deletes whole manifests only, and the tags it had to keep.
pub fn plan_whole_manifests(
    inventory: &Inventory,
    policy: &Policy,
) -> Result<(Plan, Vec<SkippedTag>), PlanError> {
    if policy.untagged == UntaggedMode::Only {
        return Ok((plan(inventory, policy)?, Vec::new()));
    }
    let tags_only = Policy {
        untagged: UntaggedMode::Keep,
        ..policy.clone()
    };
    let tags_plan = plan(inventory, &tags_only)?;
    let after = without_planned_tags(inventory, &tags_plan);
    let manifests_policy = Policy {
        untagged: UntaggedMode::Only,
        // `--keep` counts tags; it applies to untagged manifests only when those were asked for.
        keep: if policy.untagged == UntaggedMode::Keep {
            0
        } else {
            policy.keep
        },
        ..policy.clone()
    };
    let mut fitted = plan(&after, &manifests_policy)?;
    fitted.untagged = UntaggedMode::AlsoDelete;
    let mut tag_plans: HashMap<String, _> = tags_plan
        .repositories
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    for repository in &mut fitted.repositories {
        if let Some(tags) = tag_plans.remove(&repository.name) {
            repository.tags = tags.tags;
            repository.kept_tags = tags.kept_tags;
        }
    }
    if policy.untagged == UntaggedMode::Keep {
        keep_what_was_not_asked(&mut fitted);
    }
    let skipped = keep_tags_of_staying_manifests(&mut fitted, &after);
    Ok((fitted, skipped))
}

/// The inventory with the tags `tags_plan` deletes taken out.
fn without_planned_tags(inventory: &Inventory, tags_plan: &Plan) -> Inventory {
    let planned: HashSet<(&str, &str)> = tags_plan
        .repositories
        .iter()
        .flat_map(|r| {
            r.tags
                .iter()
                .map(move |t| (r.name.as_str(), t.name.as_str()))
        })
        .collect();
    let mut after = inventory.clone();
    for repository in &mut after.repositories {
        let name = repository.name.clone();
        repository
            .tags
            .retain(|t| !planned.contains(&(name.as_str(), t.name.as_str())));
    }
    after
}

/// Without `--untagged`, only what goes with the deleted tags' manifests is deleted: those
/// manifests, their referrers and their index children. Other untagged manifests stay, with
/// everything they need.
fn keep_what_was_not_asked(fitted: &mut Plan) {
    let mut not_asked = Vec::new();
    for repository in &fitted.repositories {
        let mut with_tags: HashSet<&str> =
            repository.tags.iter().map(|t| t.digest.as_str()).collect();
        loop {
            let before = with_tags.len();
            for manifest in &repository.manifests {
                let subject_goes = manifest
                    .subject
                    .as_deref()
                    .is_some_and(|s| with_tags.contains(s));
                if subject_goes {
                    with_tags.insert(&manifest.digest);
                }
                if with_tags.contains(manifest.digest.as_str()) {
                    with_tags.extend(manifest.children.iter().map(String::as_str));
                }
            }
            if with_tags.len() == before {
                break;
            }
        }
        not_asked.extend(
            repository
                .manifests
                .iter()
                .filter(|m| !with_tags.contains(m.digest.as_str()))
                .map(|m| m.digest.clone()),
        );
    }
    for digest in not_asked {
        fitted.keep_manifest(&digest, KeepReason::NotAsked);
    }
}

/// Takes out of the plan each tag whose manifest is not deleted, and says why it stays.
fn keep_tags_of_staying_manifests(fitted: &mut Plan, after: &Inventory) -> Vec<SkippedTag> {
    let remaining: HashMap<&str, &crate::purge::plan::RepositoryInventory> = after
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r))
        .collect();
    let mut skipped = Vec::new();
    for repository in &mut fitted.repositories {
        let deleted: HashSet<String> = repository
            .manifests
            .iter()
            .map(|m| m.digest.clone())
            .collect();
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut repository.tags)
            .into_iter()
            .partition(|t| deleted.contains(&t.digest));
        repository.tags = go;
        for tag in stay {
            let other_tag = remaining
                .get(repository.name.as_str())
                .and_then(|r| r.tags.iter().find(|t| t.digest == tag.digest));
            let because = match other_tag {
                Some(other) => KeepReason::OtherTags {
                    tag: other.name.clone(),
                },
                None => repository
                    .kept_manifests
                    .iter()
                    .find(|k| k.name == tag.digest)
                    .map_or(KeepReason::NotAsked, |k| k.reason.clone()),
            };
            repository.kept_tags.push(Kept {
                name: tag.name.clone(),
                reason: KeepReason::ManifestStays {
                    digest: tag.digest.clone(),
                    because: Box::new(because.clone()),
                },
            });
            skipped.push(SkippedTag {
                repository: repository.name.clone(),
                tag: tag.name,
                digest: tag.digest,
                because,
            });
        }
    }
    skipped
}

#[cfg(test)]
#[path = "whole_manifests_tests.rs"]
mod tests;
