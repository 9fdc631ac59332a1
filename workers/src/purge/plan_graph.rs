//! Which untagged manifests stay because something that stays links them, worked out as a
//! closure over the registry's references, by digest across all repositories:
//! - an index that stays keeps its children (recursively, in any repository);
//! - a subject that stays keeps its referrers, and a referrer that stays keeps its subject;
//!
//! so a deleted subject takes all its referrers, a deleted index takes the children nothing
//! else keeps, and no kept manifest is left broken or referrer left dangling.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use super::args::UntaggedMode;
use super::plan::{
    own_reason, Inventory, KeepReason, Kept, PlanError, PlannedManifest, Policy, RepositoryPlan,
};

type Node = (usize, usize);

struct Graph<'a> {
    inventory: &'a Inventory,
    by_digest: HashMap<&'a str, Vec<Node>>,
    referrers: HashMap<&'a str, Vec<Node>>,
    /// `Some` once a node stays; the reason is `None` for tagged or unreached manifests.
    stays: HashMap<Node, Option<KeepReason>>,
}

impl<'a> Graph<'a> {
    fn manifest(&self, (r, m): Node) -> &'a super::plan::ManifestInfo {
        &self.inventory.repositories[r].manifests[m]
    }

    /// Records that `node` stays (the first reason found wins) and queues what it links.
    fn mark(&mut self, node: Node, reason: Option<KeepReason>, work: &mut Vec<Node>) {
        if let Entry::Vacant(entry) = self.stays.entry(node) {
            entry.insert(reason);
            work.push(node);
        }
    }

    /// Marks `roots` as staying and everything they need or that needs them.
    fn close(&mut self, roots: Vec<(Node, Option<KeepReason>)>) {
        let mut work = Vec::new();
        for (node, reason) in roots {
            self.mark(node, reason, &mut work);
        }
        while let Some(node) = work.pop() {
            let manifest = self.manifest(node);
            let repository = &self.inventory.repositories[node.0].name;
            let mut linked: Vec<(Node, KeepReason)> = Vec::new();
            for child in &manifest.children {
                let reason = KeepReason::ChildOf {
                    repository: repository.clone(),
                    digest: manifest.digest.clone(),
                };
                for &n in self.by_digest.get(child.as_str()).into_iter().flatten() {
                    linked.push((n, reason.clone()));
                }
            }
            if let Some(subject) = &manifest.subject {
                for &n in self.by_digest.get(subject.as_str()).into_iter().flatten() {
                    let digest = manifest.digest.clone();
                    linked.push((n, KeepReason::SubjectOf { digest }));
                }
            }
            for &n in self
                .referrers
                .get(manifest.digest.as_str())
                .into_iter()
                .flatten()
            {
                let digest = manifest.digest.clone();
                linked.push((n, KeepReason::ReferrerOf { digest }));
            }
            for (n, reason) in linked {
                self.mark(n, Some(reason), &mut work);
            }
        }
    }
}

/// Fills each reached repository's `manifests` and `kept_manifests` (`plans[i]` is `Some` for
/// reached repositories), given the tags left on each manifest after the planned deletions.
pub(super) fn close_over_references(
    inventory: &Inventory,
    policy: &Policy,
    remaining_tags: &[HashMap<&str, usize>],
    plans: &mut [Option<RepositoryPlan>],
) -> Result<(), PlanError> {
    let mut graph = Graph {
        inventory,
        by_digest: HashMap::new(),
        referrers: HashMap::new(),
        stays: HashMap::new(),
    };
    let mut roots = Vec::new();
    let mut candidates = Vec::new();
    for (r, repository) in inventory.repositories.iter().enumerate() {
        for (m, manifest) in repository.manifests.iter().enumerate() {
            graph
                .by_digest
                .entry(&manifest.digest)
                .or_default()
                .push((r, m));
            if let Some(subject) = &manifest.subject {
                graph.referrers.entry(subject).or_default().push((r, m));
            }
            let tagged = remaining_tags[r].get(manifest.digest.as_str()).copied() > Some(0);
            if plans[r].is_none() || tagged {
                roots.push(((r, m), None));
            } else if let Some(reason) = own_reason(manifest.updated, manifest.locked, policy)
                .or_else(|| {
                    manifest
                        .media_type
                        .is_none()
                        .then_some(KeepReason::NoMediaType)
                })
            {
                roots.push(((r, m), Some(reason)));
            } else {
                candidates.push((r, m));
            }
        }
    }
    graph.close(roots);
    if policy.keep > 0 {
        // ACR applies --keep to each repository's deletable untagged manifests too.
        // Ordered, so the reasons recorded do not depend on hashing.
        let mut per_repo: BTreeMap<usize, Vec<Node>> = BTreeMap::new();
        for &node in candidates.iter().filter(|n| !graph.stays.contains_key(n)) {
            per_repo.entry(node.0).or_default().push(node);
        }
        let mut kept = Vec::new();
        for nodes in per_repo.values_mut() {
            sort_newest_first(&graph, nodes);
            kept.extend(
                nodes
                    .iter()
                    .take(policy.keep)
                    .map(|&n| (n, Some(KeepReason::KeptByKeep))),
            );
        }
        graph.close(kept);
    }
    debug_assert!(policy.untagged != UntaggedMode::Keep);
    let mut deleted: HashMap<usize, Vec<Node>> = HashMap::new();
    for node in candidates {
        if !graph.stays.contains_key(&node) {
            deleted.entry(node.0).or_default().push(node);
        }
    }
    for (r, repo_plan) in plans.iter_mut().enumerate() {
        let Some(repo_plan) = repo_plan else { continue };
        let repository = &inventory.repositories[r];
        for (m, manifest) in repository.manifests.iter().enumerate() {
            if let Some(Some(reason)) = graph.stays.get(&(r, m)) {
                repo_plan.kept_manifests.push(Kept {
                    name: manifest.digest.clone(),
                    reason: reason.clone(),
                });
            }
        }
        let nodes = deleted.remove(&r).unwrap_or_default();
        repo_plan.manifests = order_in_waves(&graph, &repository.name, nodes)?;
    }
    Ok(())
}

fn sort_newest_first(graph: &Graph<'_>, nodes: &mut [Node]) {
    nodes.sort_by(|&a, &b| {
        let (a, b) = (graph.manifest(a), graph.manifest(b));
        b.updated
            .cmp(&a.updated)
            .then_with(|| a.digest.cmp(&b.digest))
    });
}

/// Orders one repository's deletions so every manifest goes after the deleted indexes and
/// referrers that link it (Kahn's algorithm by rounds).
fn order_in_waves(
    graph: &Graph<'_>,
    repository: &str,
    mut nodes: Vec<Node>,
) -> Result<Vec<PlannedManifest>, PlanError> {
    sort_newest_first(graph, &mut nodes);
    let position: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, &n)| (graph.manifest(n).digest.as_str(), i))
        .collect();
    // edges[p] = the deletions that must wait for p.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut waiting_on = vec![0usize; nodes.len()];
    for (p, &node) in nodes.iter().enumerate() {
        let manifest = graph.manifest(node);
        for linked in manifest.children.iter().chain(&manifest.subject) {
            if let Some(&c) = position.get(linked.as_str()) {
                edges[p].push(c);
                waiting_on[c] += 1;
            }
        }
    }
    let mut wave_of = vec![0u32; nodes.len()];
    let mut ready: Vec<usize> = (0..nodes.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut done = 0;
    while let Some(p) = ready.pop() {
        done += 1;
        for &c in &edges[p] {
            wave_of[c] = wave_of[c].max(wave_of[p] + 1);
            waiting_on[c] -= 1;
            if waiting_on[c] == 0 {
                ready.push(c);
            }
        }
    }
    if done < nodes.len() {
        let stuck = (0..nodes.len()).find(|&i| waiting_on[i] > 0).unwrap_or(0);
        return Err(PlanError::ReferenceCycle {
            repository: repository.to_owned(),
            digest: graph.manifest(nodes[stuck]).digest.clone(),
        });
    }
    let mut planned: Vec<PlannedManifest> = nodes
        .iter()
        .zip(wave_of)
        .map(|(&node, wave)| {
            let manifest = graph.manifest(node);
            PlannedManifest {
                digest: manifest.digest.clone(),
                wave,
                children: manifest.children.clone(),
                subject: manifest.subject.clone(),
            }
        })
        .collect();
    // Stable: newest first inside a wave.
    planned.sort_by_key(|m| m.wave);
    Ok(planned)
}
