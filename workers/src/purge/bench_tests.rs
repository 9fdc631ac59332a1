//! Figures for the planner (run with `cargo test -p kiln-worker --lib purge::bench -- --ignored
//! --nocapture`): planning and the dry run listing of 10,000 tags in one repository and of
//! 1,000 repositories with 10 tags, and deletion with `--concurrency 8` against sequential.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::execute::{execute, PurgeTarget, TargetError};
use super::output::{dry_run_lines, dry_run_summary};
use super::plan::{plan, Inventory, RepositoryInventory};
use super::plan_tests::{image, index, inventory, policy, repo, tag};

fn repository(name: &str, tags: usize) -> RepositoryInventory {
    let mut manifests: Vec<_> = (0..tags)
        .map(|i| image(&format!("sha256:{name}-{i}"), 10 + (i % 50) as i64))
        .collect();
    // Some untagged indexes with children, so the reference closure has work to do.
    for i in 0..tags / 10 {
        let child = format!("sha256:{name}-child-{i}");
        manifests.push(index(
            &format!("sha256:{name}-index-{i}"),
            30,
            &[child.as_str()],
        ));
        manifests.push(image(&child, 30));
    }
    let tags = (0..tags)
        .map(|i| {
            tag(
                &format!("dev-{i}"),
                &format!("sha256:{name}-{i}"),
                10 + (i % 50) as i64,
            )
        })
        .collect();
    repo(name, tags, manifests)
}

fn measure(label: &str, inv: &Inventory) {
    let policy = policy("-f '.*:^dev-' --ago 7d --keep 5 --untagged");
    let started = Instant::now();
    let plan = plan(inv, &policy).unwrap();
    let planned = started.elapsed();
    let lines = dry_run_lines("127.0.0.1:8080", &plan);
    let summary = dry_run_summary(&plan);
    let listed = started.elapsed();
    println!(
        "{label}: plan {:.3} s, plan + dry-run listing {:.3} s ({} lines; {})",
        planned.as_secs_f64(),
        listed.as_secs_f64(),
        lines.len(),
        summary[1..].join(", ")
    );
}

struct SlowRegistry;

impl PurgeTarget for SlowRegistry {
    async fn current_digest(&self, _: &str, tag: &str) -> Result<Option<String>, TargetError> {
        let i = tag.trim_start_matches("dev-");
        Ok(Some(format!("sha256:big-{i}")))
    }

    async fn delete_tag(&self, _: &str, _: &str) -> Result<(), TargetError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    }

    async fn delete_manifest(&self, _: &str, _: &str) -> Result<(), TargetError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    }
}

#[test]
#[ignore = "benchmark: prints figures"]
fn bench_plan_and_dry_run() {
    measure(
        "10,000 tags in 1 repository",
        &inventory(vec![repository("big", 10_000)]),
    );
    let many = (0..1_000)
        .map(|r| repository(&format!("r{r:04}"), 10))
        .collect();
    measure("1,000 repositories x 10 tags", &inventory(many));
}

#[tokio::test]
#[ignore = "benchmark: prints figures"]
async fn bench_concurrent_against_sequential_deletion() {
    let inv = inventory(vec![repository("big", 1_000)]);
    let plan = plan(&inv, &policy("-f 'big:^dev-' --ago 7d --untagged")).unwrap();
    let cancel = CancellationToken::new();
    let mut seconds = Vec::new();
    for concurrency in [1, 8] {
        let started = Instant::now();
        let outcome = execute(&plan, &SlowRegistry, concurrency, &cancel, |_| {}).await;
        seconds.push(started.elapsed().as_secs_f64());
        println!(
            "concurrency {concurrency}: {} tags + {} manifests deleted (1 ms each) in {:.2} s",
            outcome.deleted_tags,
            outcome.deleted_manifests,
            seconds[seconds.len() - 1]
        );
    }
    println!(
        "concurrency 8 / sequential = {:.3}",
        seconds[1] / seconds[0]
    );
}
