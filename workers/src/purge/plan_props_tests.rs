//! The plan's invariants on random registries: nothing kept is broken, no referrer dangles,
//! nothing locked or young is deleted, and the same inventory always gives the same plan.

use super::plan::*;
use super::plan_tests::{days_ago, image, inventory, policy, repo, tag, INDEX};

/// A small deterministic generator, so a failing case can be replayed from its seed.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random registry whose references only point at earlier digests, as content addressing
/// guarantees; digests repeat across repositories.
fn random_inventory(rng: &mut Rng) -> Inventory {
    let digests: Vec<String> = (0..12).map(|i| format!("sha256:{i:02}")).collect();
    let repositories = (0..1 + rng.below(3))
        .map(|r| {
            let mut manifests = Vec::new();
            for (i, digest) in digests.iter().enumerate() {
                if !rng.chance(60) {
                    continue;
                }
                let mut m = image(digest, rng.below(20) as i64);
                m.locked = rng.chance(10);
                if i > 0 && rng.chance(30) {
                    m.media_type = Some(INDEX.into());
                    m.children = (0..1 + rng.below(3))
                        .map(|_| digests[rng.below(i as u64) as usize].clone())
                        .collect();
                } else if i > 0 && rng.chance(25) {
                    m.subject = Some(digests[rng.below(i as u64) as usize].clone());
                }
                manifests.push(m);
            }
            let tags = (0..rng.below(6))
                .filter(|_| !manifests.is_empty())
                .map(|t| {
                    let target = &manifests[rng.below(manifests.len() as u64) as usize];
                    let mut tag = tag(&format!("t{t}"), &target.digest, rng.below(20) as i64);
                    tag.locked = rng.chance(10);
                    tag
                })
                .collect();
            repo(&format!("r{r}"), tags, manifests)
        })
        .collect();
    inventory(repositories)
}

/// Checks that nothing kept is broken, nothing dangles, nothing protected is deleted.
fn check_invariants(inv: &Inventory, p: &Plan, seed: u64, include_locked: bool) {
    let deleted = |repository: &str, digest: &str| {
        p.repositories
            .iter()
            .any(|r| r.name == repository && r.manifests.iter().any(|m| m.digest == digest))
    };
    let deleted_anywhere = |digest: &str| {
        p.repositories
            .iter()
            .any(|r| r.manifests.iter().any(|m| m.digest == digest))
    };
    for repository in &inv.repositories {
        let planned = p.repositories.iter().find(|r| r.name == repository.name);
        let deleted_tags: Vec<&str> = planned
            .map(|r| r.tags.iter().map(|t| t.name.as_str()).collect())
            .unwrap_or_default();
        for tag in &repository.tags {
            if !deleted_tags.contains(&tag.name.as_str()) {
                assert!(
                    !deleted(&repository.name, &tag.digest),
                    "seed {seed}: tagged manifest deleted"
                );
            } else {
                assert!(
                    include_locked || !tag.locked,
                    "seed {seed}: locked tag deleted"
                );
            }
        }
        for m in &repository.manifests {
            if deleted(&repository.name, &m.digest) {
                assert!(
                    include_locked || !m.locked,
                    "seed {seed}: locked manifest {} deleted",
                    m.digest
                );
                assert!(
                    m.updated < days_ago(1),
                    "seed {seed}: young manifest deleted"
                );
                // No referrer left dangling in this repository.
                for other in &repository.manifests {
                    if other.subject.as_deref() == Some(m.digest.as_str()) {
                        assert!(
                            deleted(&repository.name, &other.digest),
                            "seed {seed}: dangling referrer"
                        );
                    }
                }
                continue;
            }
            // A manifest that stays is not broken: its children and subject stay everywhere.
            for linked in m.children.iter().chain(&m.subject) {
                assert!(
                    !deleted_anywhere(linked),
                    "seed {seed}: kept {} lost {linked}",
                    m.digest
                );
            }
        }
        if let Some(planned) = planned {
            // Every manifest goes after the deleted ones that link it.
            for (i, m) in planned.manifests.iter().enumerate() {
                for later in &planned.manifests[i + 1..] {
                    assert!(
                        !later.children.contains(&m.digest)
                            && later.subject.as_ref() != Some(&m.digest),
                        "seed {seed}: {} deleted before {} which links it",
                        m.digest,
                        later.digest
                    );
                }
            }
        }
    }
}

#[test]
fn random_registries_never_get_a_broken_or_dangling_plan() {
    let args = [
        "--untagged-only --ago 1d",
        "--filter 'r0|r1:.*' --ago 1d --untagged",
        "--filter 'r.*:^t[0-2]' --ago 2d --untagged --keep 1",
        "--filter 'r.*:.*' --ago 1d --untagged --include-locked --keep 2",
    ];
    let policies: Vec<Policy> = args.iter().map(|a| policy(a)).collect();
    for seed in 0..2000u64 {
        let mut rng = Rng::new(seed);
        let inv = random_inventory(&mut rng);
        let which = (seed % args.len() as u64) as usize;
        let p = plan(&inv, &policies[which]).unwrap();
        check_invariants(&inv, &p, seed, args[which].contains("--include-locked"));
        // The same inventory always gives the same plan (dry run == real run).
        assert_eq!(p, plan(&inv, &policies[which]).unwrap(), "seed {seed}");
    }
}
