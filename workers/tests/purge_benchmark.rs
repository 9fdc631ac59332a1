//! Purge benchmark against the distribution registry on 127.0.0.1:5000 (ignored by default):
//! `cargo test -p kiln-worker --release --test purge_benchmark -- --ignored --nocapture`.
//! Plans and deletes `PURGE_BENCH_TAGS` (10,000) tags in one repository, and
//! `PURGE_BENCH_REPOS` (1,000) repositories of 10 tags, with `--concurrency 8` and 1, and
//! prints the seconds, the ratio, and the dry run's seconds.

mod purge_support;

use std::time::Instant;

use futures::{stream, StreamExt};
use purge_support::{days_ago, purge, unique_prefix, Registry};

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pushes `tags_per_repo` tags into each of `repos` repositories under a new prefix.
async fn fixture(repos: usize, tags_per_repo: usize) -> String {
    let registry = Registry::default();
    let prefix = unique_prefix();
    let work: Vec<(String, String)> = (0..repos)
        .flat_map(|r| (0..tags_per_repo).map(move |t| (format!("r{r:04}"), format!("t{t:05}"))))
        .collect();
    let started = Instant::now();
    stream::iter(work)
        .for_each_concurrent(16, |(repo, tag)| {
            let registry = registry.clone();
            let repo = format!("{prefix}/{repo}");
            async move { registry.quick_tagged_image(&repo, &tag, days_ago(2)).await }
        })
        .await;
    eprintln!(
        "pushed {} tags in {:.1}s",
        repos * tags_per_repo,
        started.elapsed().as_secs_f64()
    );
    prefix
}

/// Seconds of a dry run and of the real purge, with `concurrency`.
async fn measure(repos: usize, tags_per_repo: usize, concurrency: usize) -> (f64, f64) {
    let prefix = fixture(repos, tags_per_repo).await;
    let flags = format!("--filter '{prefix}/.*:.*' --ago 1d --concurrency {concurrency}");
    let started = Instant::now();
    let (dry, _) = purge(&format!("{flags} --dry-run")).await;
    let dry_secs = started.elapsed().as_secs_f64();
    assert_eq!(dry.exit_code, 0);
    let started = Instant::now();
    let (end, lines) = purge(&flags).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(end.exit_code, 0, "{:?}", lines.last());
    assert_eq!(end.deleted_tags, repos * tags_per_repo);
    (dry_secs, secs)
}

async fn compare(label: &str, repos: usize, tags_per_repo: usize) {
    let (dry8, eight) = measure(repos, tags_per_repo, 8).await;
    let (dry1, one) = measure(repos, tags_per_repo, 1).await;
    println!(
        "{label}: --concurrency 8: {eight:.1}s (dry run {dry8:.1}s); --concurrency 1: {one:.1}s \
         (dry run {dry1:.1}s); 8 / 1 = {:.2}",
        eight / one
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: pushes tens of thousands of manifests"]
async fn purge_one_big_repository() {
    let tags = env_count("PURGE_BENCH_TAGS", 10_000);
    compare(&format!("{tags} tags in one repository"), 1, tags).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: pushes tens of thousands of manifests"]
async fn purge_many_small_repositories() {
    let repos = env_count("PURGE_BENCH_REPOS", 1_000);
    compare(&format!("{repos} repositories of 10 tags"), repos, 10).await;
}
