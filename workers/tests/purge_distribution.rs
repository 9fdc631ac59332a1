//! `acr purge` against the CNCF distribution registry on 127.0.0.1:5000 (delete enabled):
//! what is deleted and what stays, and the exact lines printed. Each test pushes synthetic
//! images with chosen `created` times into repositories of its own (`r1test/<random>/…`).

mod purge_support;

use kiln_worker::purge::output::{CREATED_TIME_NOTE, DRY_RUN_BANNER};
use kiln_worker::purge_run::{prepare, WHOLE_MANIFESTS_NOTE};
use purge_support::{days_ago, purge, request, unique_prefix, Lines, Registry, REGISTRY};
use tokio_util::sync::CancellationToken;

fn deleted_tag(repo: &str, tag: &str) -> String {
    format!("Deleted {REGISTRY}/{repo}:{tag}")
}

#[tokio::test]
async fn the_repository_regex_is_anchored_and_the_tag_regex_is_not() {
    let registry = Registry::default();
    let prefix = unique_prefix();
    let (app, old) = (format!("{prefix}/app"), format!("{prefix}/app-old"));
    for tag in ["v1", "xv1y", "v2"] {
        registry.tagged_image(&app, tag, days_ago(3)).await;
    }
    registry.tagged_image(&old, "v1", days_ago(3)).await;

    let (end, lines) = purge(&format!("--filter '{app}:v1' --ago 1d")).await;

    assert_eq!((end.exit_code, end.deleted_tags), (0, 2), "{lines:#?}");
    assert_eq!(registry.tags(&app).await, ["v2"]);
    assert_eq!(registry.tags(&old).await, ["v1"]);
    assert!(lines.contains(&format!("Deleting tags for repository: {app}")));
    assert!(lines.contains(&deleted_tag(&app, "v1")) && lines.contains(&deleted_tag(&app, "xv1y")));
    assert!(!lines.iter().any(|l| l.contains(&old)), "{lines:#?}");
    // Without tag times, the images' created times stand in, and the output says so.
    assert!(lines.contains(&CREATED_TIME_NOTE.to_owned()));
    assert!(lines.contains(&WHOLE_MANIFESTS_NOTE.to_owned()));
    assert_eq!(lines.last().unwrap(), "Number of deleted manifests: 2");
}

#[tokio::test]
async fn ago_reads_created_times_and_keep_keeps_the_newest_eligible() {
    let registry = Registry::default();
    let app = format!("{}/app", unique_prefix());
    for (tag, days) in [
        ("dev-1", 10),
        ("dev-2", 9),
        ("dev-3", 8),
        ("dev-4", 7),
        ("dev-5", 6),
    ] {
        registry.tagged_image(&app, tag, days_ago(days)).await;
    }
    registry
        .tagged_image(
            &app,
            "dev-new",
            chrono::Utc::now() - chrono::TimeDelta::hours(3),
        )
        .await;
    registry.tagged_image(&app, "prod", days_ago(30)).await;

    let (end, lines) = purge(&format!("--filter '{app}:^dev-' --ago 2d3h --keep 2")).await;

    assert_eq!((end.exit_code, end.deleted_tags), (0, 3), "{lines:#?}");
    assert_eq!(
        registry.tags(&app).await,
        ["dev-4", "dev-5", "dev-new", "prod"]
    );
    assert!(lines.contains(&"Number of deleted tags: 3".to_owned()));
}

#[tokio::test]
async fn the_dry_run_prints_what_the_real_run_then_does() {
    let registry = Registry::default();
    let prefix = unique_prefix();
    for repo in ["a", "b"] {
        let repo = format!("{prefix}/{repo}");
        for (tag, days) in [("old-1", 5), ("old-2", 4), ("new", 0)] {
            registry.tagged_image(&repo, tag, days_ago(days)).await;
        }
    }
    let flags = format!("--filter '{prefix}/.*:.*' --ago 1d --concurrency 1");

    let (dry, dry_lines) = purge(&format!("{flags} --dry-run")).await;
    assert_eq!(
        registry.tags(&format!("{prefix}/a")).await,
        ["new", "old-1", "old-2"]
    );
    let (real, real_lines) = purge(&flags).await;

    assert_eq!((dry.exit_code, real.exit_code), (0, 0));
    assert_eq!((real.deleted_tags, real.deleted_manifests), (4, 4));
    assert_eq!(dry_lines[0], DRY_RUN_BANNER);
    let as_real: Vec<String> = dry_lines[1..]
        .iter()
        .map(|l| {
            l.replace("Would delete: ", "Deleted ")
                .replace("Would delete ", "Deleting ")
                .replace("Number of tags to be deleted", "Number of deleted tags")
                .replace(
                    "Number of manifests to be deleted",
                    "Number of deleted manifests",
                )
        })
        .collect();
    assert_eq!(as_real, real_lines);
    assert_eq!(registry.tags(&format!("{prefix}/b")).await, ["new"]);
}

#[tokio::test]
async fn a_tag_moved_after_planning_is_kept_with_its_new_manifest() {
    let registry = Registry::default();
    let app = format!("{}/app", unique_prefix());
    let first = registry.tagged_image(&app, "dev-1", days_ago(5)).await;
    registry.tagged_image(&app, "dev-2", days_ago(5)).await;
    let prepared = prepare(&request(&format!("--filter '{app}:^dev-' --ago 1d")), &[])
        .await
        .unwrap();
    assert_eq!(prepared.plan().tag_count(), 2);
    // Between the plan and the deletions, dev-1 is re-pushed as another (old) image.
    let moved = registry.image(&app, days_ago(6), "moved").await;
    registry.tag(&app, "dev-1", &moved).await;

    let lines = Lines::default();
    let end = prepared
        .run(&|l| lines.push(l), &CancellationToken::new())
        .await;

    let lines = lines.all();
    assert_eq!((end.exit_code, end.deleted_tags), (0, 1), "{lines:#?}");
    assert_eq!(registry.tags(&app).await, ["dev-1"]);
    assert!(registry.exists(&app, &moved).await);
    // The image dev-1 pointed at when planned is untagged now, and was planned to go with it.
    assert!(!registry.exists(&app, &first).await);
    assert!(lines.contains(&format!(
        "Skipped {REGISTRY}/{app}:dev-1, it points at {} since the plan was made",
        moved.digest
    )));
}

#[tokio::test]
async fn index_children_stay_while_a_tagged_index_needs_them_and_go_with_their_index() {
    let registry = Registry::default();
    let app = format!("{}/app", unique_prefix());
    let shared = registry.image(&app, days_ago(5), "shared").await;
    let kept_only = registry.image(&app, days_ago(5), "kept-only").await;
    let gone_only = registry.image(&app, days_ago(5), "gone-only").await;
    let release = registry.index(&app, &[&shared, &kept_only]).await;
    registry.tag(&app, "release", &release).await;
    let dev = registry.index(&app, &[&shared, &gone_only]).await;
    registry.tag(&app, "dev-1", &dev).await;

    let (end, lines) = purge(&format!("--filter '{app}:^dev-' --ago 1d")).await;

    assert_eq!(end.exit_code, 0, "{lines:#?}");
    assert_eq!(registry.tags(&app).await, ["release"]);
    for (manifest, stays) in [
        (&release, true),
        (&shared, true),
        (&kept_only, true),
        (&dev, false),
        (&gone_only, false),
    ] {
        assert_eq!(registry.exists(&app, manifest).await, stays, "{manifest:?}");
    }
    assert_eq!((end.deleted_tags, end.deleted_manifests), (1, 2));
    // The index goes before the child it alone used.
    let at = |digest: &str| {
        lines
            .iter()
            .position(|l| l == &format!("Deleted {REGISTRY}/{app}@{digest}"))
            .unwrap()
    };
    assert!(at(&dev.digest) < at(&gone_only.digest), "{lines:#?}");
}

#[tokio::test]
async fn a_referrer_stays_with_its_subject_and_goes_with_it() {
    let registry = Registry::default();
    let app = format!("{}/app", unique_prefix());
    let dev = registry.tagged_image(&app, "dev-1", days_ago(5)).await;
    let prod = registry.tagged_image(&app, "v1", days_ago(5)).await;
    let dev_signature = registry.referrer(&app, &dev).await;
    let prod_signature = registry.referrer(&app, &prod).await;

    let (end, lines) = purge(&format!("--filter '{app}:.*' --ago 1d --keep 1")).await;

    assert_eq!(end.exit_code, 0, "{lines:#?}");
    // --keep 1 keeps one of the two images (the referrers tags are not tags to purge).
    assert_eq!(end.deleted_tags, 1, "{lines:#?}");
    let (gone, stays, gone_signature, kept_signature) = if registry.exists(&app, &dev).await {
        (&prod, &dev, &prod_signature, &dev_signature)
    } else {
        (&dev, &prod, &dev_signature, &prod_signature)
    };
    assert!(!registry.exists(&app, gone).await && !registry.exists(&app, gone_signature).await);
    assert!(registry.exists(&app, stays).await && registry.exists(&app, kept_signature).await);
    let tags = registry.tags(&app).await;
    assert!(tags.contains(&stays.digest.replace(':', "-")), "{tags:?}");
    assert!(!tags.contains(&gone.digest.replace(':', "-")), "{tags:?}");
    assert!(!lines.iter().any(|l| l.contains(":sha256-")), "{lines:#?}");
}

#[tokio::test]
async fn a_tag_whose_manifest_keeps_another_tag_is_skipped_and_said_so() {
    let registry = Registry::default();
    let app = format!("{}/app", unique_prefix());
    let image = registry.tagged_image(&app, "dev-1", days_ago(5)).await;
    registry.tag(&app, "stable", &image).await;

    let (end, lines) = purge(&format!("--filter '{app}:^dev-' --ago 1d")).await;

    assert_eq!((end.exit_code, end.deleted_tags), (0, 0), "{lines:#?}");
    assert_eq!(registry.tags(&app).await, ["dev-1", "stable"]);
    assert!(lines.contains(&format!(
        "Skipped {REGISTRY}/{app}:dev-1: this registry cannot delete it without {}, which stays: it is also tagged stable",
        image.digest
    )));
}

#[tokio::test]
async fn an_unreachable_registry_fails_with_acr_summary() {
    let mut req = request("--filter 'a:b' --ago 1d");
    req.registry = "127.0.0.1:1".into();
    let lines = Lines::default();
    let end =
        kiln_worker::purge_run::run_purge(&req, &[], &|l| lines.push(l), &CancellationToken::new())
            .await;
    let lines = lines.all();
    assert_eq!(end.exit_code, 1);
    assert_eq!(lines[1], "Number of deleted tags: 0");
    assert!(
        lines[2].starts_with("Failed to complete purge: cannot list the registry's repositories"),
        "{lines:#?}"
    );
}
