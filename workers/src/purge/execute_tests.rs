//! The executor against an in-memory registry, and the output lines it yields.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::execute::{execute, Event, Outcome, PurgeTarget, TargetError};
use super::output::{dry_run_lines, dry_run_summary, event_line, outcome_summary, JsonReport};
use super::plan::*;
use super::plan_tests::{image, index, inventory, policy, repo, tag};

/// A registry in memory: tags, manifests, and failures on demand.
#[derive(Default)]
struct FakeRegistry {
    tags: Mutex<HashMap<(String, String), String>>,
    manifests: Mutex<HashSet<(String, String)>>,
    fail: Option<String>,
    missing: HashSet<String>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeRegistry {
    fn from(inv: &Inventory) -> FakeRegistry {
        let registry = FakeRegistry::default();
        for r in &inv.repositories {
            for t in &r.tags {
                let key = (r.name.clone(), t.name.clone());
                registry.tags.lock().unwrap().insert(key, t.digest.clone());
            }
            for m in &r.manifests {
                let key = (r.name.clone(), m.digest.clone());
                registry.manifests.lock().unwrap().insert(key);
            }
        }
        registry
    }

    async fn call(&self, name: &str) -> Result<(), TargetError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Let the other deletions in flight start before this one ends.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail.as_deref() == Some(name) {
            return Err(TargetError::Failed("HTTP status 500".into()));
        }
        if self.missing.contains(name) {
            return Err(TargetError::NotFound);
        }
        Ok(())
    }
}

impl PurgeTarget for FakeRegistry {
    async fn current_digest(&self, repo: &str, tag: &str) -> Result<Option<String>, TargetError> {
        let key = (repo.to_owned(), tag.to_owned());
        Ok(self.tags.lock().unwrap().get(&key).cloned())
    }

    async fn delete_tag(&self, repo: &str, tag: &str) -> Result<(), TargetError> {
        self.call(tag).await?;
        let key = (repo.to_owned(), tag.to_owned());
        self.tags.lock().unwrap().remove(&key);
        Ok(())
    }

    async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), TargetError> {
        self.call(digest).await?;
        let key = (repo.to_owned(), digest.to_owned());
        assert!(
            self.manifests.lock().unwrap().remove(&key),
            "{digest} deleted twice"
        );
        Ok(())
    }
}

fn sample() -> Inventory {
    inventory(vec![
        repo(
            "app",
            vec![
                tag("dev-1", "idx", 30),
                tag("dev-2", "old", 20),
                tag("prod", "keep", 30),
            ],
            vec![
                index("idx", 30, &["c1", "c2"]),
                image("c1", 30),
                image("c2", 30),
                image("old", 20),
                image("keep", 30),
            ],
        ),
        repo("lib", vec![tag("dev-x", "l1", 30)], vec![image("l1", 30)]),
    ])
}

async fn run(registry: &FakeRegistry, plan: &Plan, concurrency: usize) -> (Outcome, Vec<Event>) {
    let mut events = Vec::new();
    let cancel = CancellationToken::new();
    let outcome = execute(plan, registry, concurrency, &cancel, |e| events.push(e)).await;
    (outcome, events)
}

const REGISTRY: &str = "127.0.0.1:8080";

#[tokio::test]
async fn real_run_prints_the_dry_run_listing_and_deletes_indexes_before_children() {
    let inv = sample();
    let plan = plan(&inv, &policy("-f 'app|lib:^dev-' --ago 7d --untagged")).unwrap();
    let registry = FakeRegistry::from(&inv);
    let (outcome, events) = run(&registry, &plan, 1).await;
    assert_eq!((outcome.deleted_tags, outcome.deleted_manifests), (3, 5));
    assert_eq!(outcome.failure, None);
    let real: Vec<String> = events
        .iter()
        .map(|e| event_line(REGISTRY, e, false))
        .collect();
    let dry = dry_run_lines(REGISTRY, &plan);
    assert_eq!(dry[0], super::output::DRY_RUN_BANNER);
    let as_real: Vec<String> = dry[1..]
        .iter()
        .map(|l| {
            l.replace("Would delete: ", "Deleted ")
                .replace("Would delete ", "Deleting ")
        })
        .collect();
    assert_eq!(real, as_real);
    assert_eq!(
        real,
        [
            "Deleting tags for repository: app",
            "Deleted 127.0.0.1:8080/app:dev-2",
            "Deleted 127.0.0.1:8080/app:dev-1",
            "Deleting manifests for repository: app",
            "Deleted 127.0.0.1:8080/app@old",
            "Deleted 127.0.0.1:8080/app@idx",
            "Deleted 127.0.0.1:8080/app@c1",
            "Deleted 127.0.0.1:8080/app@c2",
            "Deleting tags for repository: lib",
            "Deleted 127.0.0.1:8080/lib:dev-x",
            "Deleting manifests for repository: lib",
            "Deleted 127.0.0.1:8080/lib@l1",
        ]
    );
    assert_eq!(
        outcome_summary(&plan, &outcome),
        [
            "",
            "Number of deleted tags: 3",
            "Number of deleted manifests: 5"
        ]
    );
    assert_eq!(
        dry_run_summary(&plan),
        [
            "",
            "Number of tags to be deleted: 3",
            "Number of manifests to be deleted: 5"
        ]
    );
    let left = registry.manifests.lock().unwrap().clone();
    assert_eq!(left, HashSet::from([("app".to_owned(), "keep".to_owned())]));
    let json: serde_json::Value = serde_json::from_str(
        &JsonReport {
            registry: REGISTRY,
            dry_run: false,
            plan: &plan,
            result: Some(&outcome),
        }
        .to_json(),
    )
    .unwrap();
    assert_eq!(json["result"]["deleted_manifests"], 5);
    assert_eq!(
        json["plan"]["repositories"][0]["manifests"][1]["digest"],
        "idx"
    );
}

#[tokio::test]
async fn a_tag_moved_after_planning_is_kept_with_the_manifest_it_moved_onto() {
    let inv = sample();
    let plan = plan(&inv, &policy("-f 'app:^dev-' --ago 7d --untagged")).unwrap();
    let registry = FakeRegistry::from(&inv);
    // dev-2 is re-pushed onto the untagged index after the plan was made.
    let key = ("app".to_owned(), "dev-2".to_owned());
    registry.tags.lock().unwrap().insert(key, "idx".into());
    let (outcome, events) = run(&registry, &plan, 4).await;
    assert!(events.contains(&Event::TagMoved {
        repository: "app".into(),
        tag: "dev-2".into(),
        now: "idx".into()
    }));
    assert_eq!(
        (outcome.deleted_tags, outcome.deleted_manifests),
        (1, 1),
        "{outcome:?}"
    );
    let mut left: Vec<String> = registry
        .manifests
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.1.clone())
        .collect();
    left.sort();
    assert_eq!(left, ["c1", "c2", "idx", "keep", "l1"]);
    let kept: Vec<&str> = outcome
        .kept_after_plan
        .iter()
        .map(|(_, k)| k.name.as_str())
        .collect();
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert!(["idx", "c1", "c2", "dev-2"]
        .iter()
        .all(|k| kept.contains(k)));
    let moved = events
        .iter()
        .find(|e| matches!(e, Event::TagMoved { .. }))
        .unwrap();
    let line = event_line(REGISTRY, moved, false);
    assert!(
        line.starts_with("Skipped 127.0.0.1:8080/app:dev-2"),
        "{line}"
    );
}

#[tokio::test]
async fn a_404_counts_as_deleted_and_another_error_stops_with_the_counts_so_far() {
    let inv = sample();
    let plan = plan(&inv, &policy("-f 'app|lib:^dev-' --ago 7d --untagged")).unwrap();
    let mut registry = FakeRegistry::from(&inv);
    registry.missing = HashSet::from(["dev-1".to_owned(), "c1".to_owned()]);
    registry.fail = Some("c2".to_owned());
    let (outcome, events) = run(&registry, &plan, 1).await;
    assert_eq!(
        (outcome.deleted_tags, outcome.deleted_manifests),
        (2, 3),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.failure.as_deref(),
        Some("failed to delete app@c2: HTTP status 500")
    );
    assert!(
        !events.contains(&Event::TagsOf("lib".into())),
        "nothing after the failure"
    );
    assert_eq!(
        outcome_summary(&plan, &outcome),
        [
            "",
            "Number of deleted tags: 2",
            "Number of deleted manifests: 3",
            "Failed to complete purge: failed to delete app@c2: HTTP status 500"
        ]
    );
}

#[tokio::test]
async fn deletions_run_concurrently_but_never_more_than_asked_and_cancel_stops_them() {
    let repositories = vec![repo(
        "big",
        (0..40)
            .map(|i| tag(&format!("t{i}"), &format!("m{i}"), 30))
            .collect(),
        (0..40).map(|i| image(&format!("m{i}"), 30)).collect(),
    )];
    let inv = inventory(repositories);
    let plan = plan(&inv, &policy("-f 'big:.*' --ago 1d --untagged")).unwrap();
    for concurrency in [1, 4] {
        let registry = FakeRegistry::from(&inv);
        let (outcome, _) = run(&registry, &plan, concurrency).await;
        assert_eq!((outcome.deleted_tags, outcome.deleted_manifests), (40, 40));
        assert_eq!(registry.max_in_flight.load(Ordering::SeqCst), concurrency);
    }
    let registry = FakeRegistry::from(&inv);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let outcome = execute(&plan, &registry, 4, &cancel, |_| {}).await;
    assert!(outcome.cancelled);
    assert_eq!((outcome.deleted_tags, outcome.deleted_manifests), (0, 0));
    assert_eq!(registry.tags.lock().unwrap().len(), 40);
}
