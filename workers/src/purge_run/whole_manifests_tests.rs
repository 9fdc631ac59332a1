//! Plans for whole-manifest registries on small hand-made inventories.

use chrono::{TimeDelta, Utc};

use super::*;
use crate::purge::plan::{ManifestInfo, RepositoryInventory, TagInfo, TimeSource};
use crate::purge::PurgeArgs;

const OLD: i64 = 10;

fn tag(name: &str, digest: &str) -> TagInfo {
    TagInfo {
        name: name.into(),
        digest: digest.into(),
        updated: Some(Utc::now() - TimeDelta::days(OLD)),
        locked: false,
    }
}

fn image(digest: &str) -> ManifestInfo {
    ManifestInfo {
        digest: digest.into(),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        updated: Some(Utc::now() - TimeDelta::days(OLD)),
        locked: false,
        children: vec![],
        subject: None,
    }
}

fn index(digest: &str, children: &[&str]) -> ManifestInfo {
    ManifestInfo {
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        children: children.iter().map(|c| c.to_string()).collect(),
        ..image(digest)
    }
}

fn referrer(digest: &str, subject: &str) -> ManifestInfo {
    ManifestInfo {
        subject: Some(subject.into()),
        ..image(digest)
    }
}

fn app(tags: Vec<TagInfo>, manifests: Vec<ManifestInfo>) -> Inventory {
    Inventory {
        time_source: TimeSource::ImageCreated,
        repositories: vec![RepositoryInventory {
            name: "app".into(),
            tags,
            manifests,
        }],
    }
}

fn policy(flags: &str) -> Policy {
    PurgeArgs::from_command(&format!("acr purge {flags}"))
        .unwrap()
        .unwrap()
        .policy(Utc::now())
}

fn planned(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let repository = &plan.repositories[0];
    let mut tags: Vec<String> = repository.tags.iter().map(|t| t.name.clone()).collect();
    tags.sort();
    let manifests = repository
        .manifests
        .iter()
        .map(|m| m.digest.clone())
        .collect();
    (tags, manifests)
}

#[test]
fn a_tag_goes_only_with_its_manifest_and_all_its_tags() {
    let inventory = app(
        vec![
            tag("dev-1", "d1"),
            tag("dev-2", "d2"),
            tag("stable", "d2"),
            tag("dev-3", "d3"),
            tag("dev-3b", "d3"),
        ],
        vec![image("d1"), image("d2"), image("d3")],
    );
    let (plan, skipped) =
        plan_whole_manifests(&inventory, &policy("--filter 'app:^dev-' --ago 1d")).unwrap();
    assert_eq!(plan.untagged, UntaggedMode::AlsoDelete);
    let (tags, mut manifests) = planned(&plan);
    manifests.sort();
    assert_eq!(tags, ["dev-1", "dev-3", "dev-3b"]);
    assert_eq!(manifests, ["d1", "d3"]);
    assert_eq!(
        skipped,
        [SkippedTag {
            repository: "app".into(),
            tag: "dev-2".into(),
            digest: "d2".into(),
            because: KeepReason::OtherTags {
                tag: "stable".into()
            },
        }]
    );
}

#[test]
fn children_of_a_staying_index_keep_their_tags_and_go_with_a_deleted_index() {
    let inventory = app(
        vec![tag("release", "i1"), tag("dev-3", "j1"), tag("dev-4", "c1")],
        vec![
            index("i1", &["c1"]),
            index("j1", &["c1", "c2"]),
            image("c1"),
            image("c2"),
        ],
    );
    let (plan, skipped) =
        plan_whole_manifests(&inventory, &policy("--filter 'app:^dev-' --ago 1d")).unwrap();
    let (tags, manifests) = planned(&plan);
    assert_eq!(tags, ["dev-3"]);
    // The index goes in a wave before the child it alone used.
    assert_eq!(manifests, ["j1", "c2"]);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].tag, "dev-4");
    assert!(matches!(skipped[0].because, KeepReason::ChildOf { .. }));
}

#[test]
fn referrers_go_with_their_subject_and_unrelated_untagged_manifests_only_when_asked() {
    let inventory = app(
        vec![tag("dev-1", "d1"), tag("v1", "d2")],
        vec![
            image("d1"),
            image("d2"),
            referrer("sig1", "d1"),
            referrer("sig2", "d2"),
            referrer("orphan", "gone"),
        ],
    );
    let (plan, skipped) =
        plan_whole_manifests(&inventory, &policy("--filter 'app:^dev-' --ago 1d")).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(
        planned(&plan),
        (vec!["dev-1".into()], vec!["sig1".into(), "d1".into()])
    );
    let kept = &plan.repositories[0].kept_manifests;
    assert!(kept
        .iter()
        .any(|k| k.name == "orphan" && k.reason == KeepReason::NotAsked));
    let (plan, _) = plan_whole_manifests(
        &inventory,
        &policy("--filter 'app:^dev-' --ago 1d --untagged"),
    )
    .unwrap();
    let (_, mut manifests) = planned(&plan);
    manifests.sort();
    assert_eq!(manifests, ["d1", "orphan", "sig1"]);
}

#[test]
fn untagged_only_deletes_no_tag() {
    let inventory = app(
        vec![tag("dev-1", "d1")],
        vec![image("d1"), referrer("orphan", "gone")],
    );
    let (plan, skipped) = plan_whole_manifests(&inventory, &policy("--untagged-only")).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(planned(&plan), (vec![], vec!["orphan".into()]));
}
