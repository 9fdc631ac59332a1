//! The plan's rules on small hand-made registries, and its invariants on random ones.

use chrono::{DateTime, TimeDelta, Utc};

use super::args::PurgeArgs;
use super::plan::*;

pub(super) const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn days_ago(days: i64) -> Option<DateTime<Utc>> {
    Some(now() - TimeDelta::days(days))
}

pub(super) fn tag(name: &str, digest: &str, age_days: i64) -> TagInfo {
    TagInfo {
        name: name.into(),
        digest: digest.into(),
        updated: days_ago(age_days),
        locked: false,
    }
}

pub(super) fn image(digest: &str, age_days: i64) -> ManifestInfo {
    ManifestInfo {
        digest: digest.into(),
        media_type: Some(IMAGE.into()),
        updated: days_ago(age_days),
        locked: false,
        children: vec![],
        subject: None,
    }
}

pub(super) fn index(digest: &str, age_days: i64, children: &[&str]) -> ManifestInfo {
    ManifestInfo {
        media_type: Some(INDEX.into()),
        children: children.iter().map(|c| c.to_string()).collect(),
        ..image(digest, age_days)
    }
}

fn referrer(digest: &str, age_days: i64, subject: &str) -> ManifestInfo {
    ManifestInfo {
        subject: Some(subject.into()),
        ..image(digest, age_days)
    }
}

pub(super) fn repo(
    name: &str,
    tags: Vec<TagInfo>,
    manifests: Vec<ManifestInfo>,
) -> RepositoryInventory {
    RepositoryInventory {
        name: name.into(),
        tags,
        manifests,
    }
}

pub(super) fn inventory(repositories: Vec<RepositoryInventory>) -> Inventory {
    Inventory {
        time_source: TimeSource::TagUpdate,
        repositories,
    }
}

pub(super) fn policy(args: &str) -> Policy {
    let args = PurgeArgs::from_command(&format!("acr purge {args}"))
        .unwrap()
        .unwrap();
    args.policy(now())
}

fn plan_with(inv: &Inventory, args: &str) -> Plan {
    plan(inv, &policy(args)).unwrap()
}

fn repository<'a>(plan: &'a Plan, name: &str) -> &'a RepositoryPlan {
    plan.repositories.iter().find(|r| r.name == name).unwrap()
}

fn tags_of(plan: &Plan, name: &str) -> Vec<String> {
    repository(plan, name)
        .tags
        .iter()
        .map(|t| t.name.clone())
        .collect()
}

fn manifests_of(plan: &Plan, name: &str) -> Vec<String> {
    let planned = &repository(plan, name).manifests;
    planned.iter().map(|m| m.digest.clone()).collect()
}

fn kept_manifest(plan: &Plan, name: &str, digest: &str) -> KeepReason {
    let kept = &repository(plan, name).kept_manifests;
    kept.iter()
        .find(|k| k.name == digest)
        .unwrap()
        .reason
        .clone()
}

#[test]
fn tags_old_matching_unlocked_are_deleted_newest_first_and_keep_keeps_the_newest_eligible() {
    let mut locked = tag("dev-locked", "d1", 20);
    locked.locked = true;
    let inv = inventory(vec![
        repo(
            "app/web",
            vec![
                tag("dev-1", "d1", 30),
                tag("dev-2", "d2", 20),
                tag("dev-3", "d3", 10),
                tag("dev-new", "d4", 1),
                tag("prod", "d1", 40),
                locked.clone(),
            ],
            vec![
                image("d1", 40),
                image("d2", 20),
                image("d3", 10),
                image("d4", 1),
            ],
        ),
        repo("other", vec![tag("dev-1", "x", 30)], vec![image("x", 30)]),
    ]);
    let p = plan_with(&inv, "--filter 'app/.*:^dev-' --ago 7d");
    assert_eq!(
        p.repositories.len(),
        1,
        "only reached repositories are planned"
    );
    assert_eq!(tags_of(&p, "app/web"), ["dev-3", "dev-2", "dev-1"]);
    let kept = &p.repositories[0].kept_tags;
    assert!(kept.contains(&Kept {
        name: "dev-new".into(),
        reason: KeepReason::YoungerThanCutoff
    }));
    assert!(kept.contains(&Kept {
        name: "dev-locked".into(),
        reason: KeepReason::Locked
    }));

    let p = plan_with(&inv, "--filter 'app/.*:^dev-' --ago 7d --keep 2");
    assert_eq!(
        tags_of(&p, "app/web"),
        ["dev-1"],
        "the locked and young tags do not count"
    );
    let p = plan_with(&inv, "--filter 'app/.*:^dev-' --ago 7d --include-locked");
    assert_eq!(
        tags_of(&p, "app/web"),
        ["dev-3", "dev-2", "dev-locked", "dev-1"]
    );
    let p = plan_with(
        &inv,
        "--filter 'app/web:dev' --filter 'app/web:prod' --ago 7d --keep 10",
    );
    assert!(tags_of(&p, "app/web").is_empty());
}

#[test]
fn untagged_deletes_what_tag_deletions_leave_untagged_but_untagged_only_deletes_no_tags() {
    let inv = inventory(vec![repo(
        "app",
        vec![
            tag("old", "a", 30),
            tag("keep", "b", 30),
            tag("also-b", "b", 30),
        ],
        vec![
            image("a", 30),
            image("b", 30),
            image("c", 30),
            image("young", 1),
        ],
    )]);
    let p = plan_with(&inv, "--filter 'app:^(old|also-b)$' --ago 7d --untagged");
    assert_eq!(tags_of(&p, "app"), ["also-b", "old"]);
    assert_eq!(manifests_of(&p, "app"), ["a", "c"], "b keeps a tag");
    assert_eq!(
        kept_manifest(&p, "app", "young"),
        KeepReason::YoungerThanCutoff
    );
    let p = plan_with(&inv, "--untagged-only --filter 'app:^old$' --ago 7d");
    assert!(tags_of(&p, "app").is_empty());
    assert_eq!(manifests_of(&p, "app"), ["c"]);
    let p = plan_with(&inv, "--filter 'app:^old$' --ago 7d");
    assert!(
        manifests_of(&p, "app").is_empty(),
        "no manifests without --untagged"
    );
}

#[test]
fn children_of_a_tagged_index_survive_and_an_untagged_index_takes_its_children() {
    let inv = inventory(vec![
        repo(
            "multi",
            vec![tag("v1", "i1", 30)],
            vec![
                index("i1", 30, &["c1", "c2"]),
                image("c1", 30),
                image("c2", 30),
                index("i2", 30, &["c3", "c1"]),
                image("c3", 30),
            ],
        ),
        // Another repository's tagged index links c9: it stays everywhere.
        repo(
            "elsewhere",
            vec![tag("t", "i9", 1)],
            vec![index("i9", 1, &["c9"]), image("c9", 1)],
        ),
        repo("shared", vec![], vec![image("c9", 30)]),
    ]);
    let p = plan_with(&inv, "--untagged-only --filter 'multi|shared:.*' --ago 1d");
    assert_eq!(
        manifests_of(&p, "multi"),
        ["i2", "c3"],
        "the index goes first"
    );
    assert_eq!(
        p.repositories[0]
            .manifests
            .iter()
            .map(|m| m.wave)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        kept_manifest(&p, "multi", "c1"),
        KeepReason::ChildOf {
            repository: "multi".into(),
            digest: "i1".into()
        }
    );
    assert!(manifests_of(&p, "shared").is_empty());
    assert_eq!(
        kept_manifest(&p, "shared", "c9"),
        KeepReason::ChildOf {
            repository: "elsewhere".into(),
            digest: "i9".into()
        }
    );
    // Nested: a tagged index of indexes keeps the grandchildren.
    let inv = inventory(vec![repo(
        "n",
        vec![tag("v", "top", 30)],
        vec![
            index("top", 30, &["mid"]),
            index("mid", 30, &["leaf"]),
            image("leaf", 30),
        ],
    )]);
    assert!(manifests_of(&plan_with(&inv, "--untagged-only --ago 1d"), "n").is_empty());
}

#[test]
fn referrers_stay_with_their_subject_and_go_with_it() {
    let inv = inventory(vec![repo(
        "app",
        vec![tag("v1", "kept", 30), tag("old", "gone", 30)],
        vec![
            image("kept", 30),
            referrer("sig-kept", 30, "kept"),
            image("gone", 30),
            referrer("sig-gone", 30, "gone"),
            referrer("sbom-of-sig", 30, "sig-gone"),
        ],
    )]);
    let p = plan_with(&inv, "--filter 'app:^old$' --ago 7d --untagged");
    assert_eq!(manifests_of(&p, "app"), ["sbom-of-sig", "sig-gone", "gone"]);
    assert_eq!(
        p.repositories[0]
            .manifests
            .iter()
            .map(|m| m.wave)
            .collect::<Vec<_>>(),
        [0, 1, 2],
        "referrers go before their subject"
    );
    assert_eq!(
        kept_manifest(&p, "app", "sig-kept"),
        KeepReason::ReferrerOf {
            digest: "kept".into()
        }
    );
    // A young signature on an old untagged image keeps the image: nothing dangles.
    let inv = inventory(vec![repo(
        "app",
        vec![],
        vec![image("old", 30), referrer("fresh-sig", 1, "old")],
    )]);
    let p = plan_with(&inv, "--untagged-only --ago 7d");
    assert!(manifests_of(&p, "app").is_empty());
    assert_eq!(
        kept_manifest(&p, "app", "old"),
        KeepReason::SubjectOf {
            digest: "fresh-sig".into()
        }
    );
}

#[test]
fn locked_timeless_and_typeless_manifests_stay_and_keep_applies_to_manifests() {
    let mut locked = image("locked", 30);
    locked.locked = true;
    let timeless = ManifestInfo {
        updated: None,
        ..image("timeless", 30)
    };
    let typeless = ManifestInfo {
        media_type: None,
        ..image("typeless", 30)
    };
    let inv = inventory(vec![repo(
        "app",
        vec![],
        vec![
            locked,
            timeless,
            typeless,
            image("m1", 10),
            image("m2", 20),
            image("m3", 30),
        ],
    )]);
    let p = plan_with(&inv, "--untagged-only --ago 1d");
    assert_eq!(manifests_of(&p, "app"), ["m1", "m2", "m3"]);
    assert_eq!(kept_manifest(&p, "app", "locked"), KeepReason::Locked);
    assert_eq!(
        kept_manifest(&p, "app", "timeless"),
        KeepReason::TimeUnknown
    );
    assert_eq!(
        kept_manifest(&p, "app", "typeless"),
        KeepReason::NoMediaType
    );
    let p = plan_with(&inv, "--untagged-only --ago 1d --include-locked --keep 2");
    // Newest first, ties by digest: m1 and m2 are kept.
    assert_eq!(manifests_of(&p, "app"), ["locked", "m3"]);
    assert_eq!(kept_manifest(&p, "app", "m1"), KeepReason::KeptByKeep);
    assert_eq!(kept_manifest(&p, "app", "m2"), KeepReason::KeptByKeep);
}

#[test]
fn a_kept_untagged_index_keeps_its_children_even_when_kept_by_keep() {
    let inv = inventory(vec![repo(
        "app",
        vec![],
        vec![
            index("idx", 10, &["c1"]),
            image("c1", 30),
            image("other", 40),
        ],
    )]);
    let p = plan_with(&inv, "--untagged-only --ago 1d --keep 1");
    assert_eq!(manifests_of(&p, "app"), ["other"]);
    assert_eq!(
        kept_manifest(&p, "app", "c1"),
        KeepReason::ChildOf {
            repository: "app".into(),
            digest: "idx".into()
        }
    );
}
