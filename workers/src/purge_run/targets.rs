//! The deletions of a purge, per kind of registry ([`PurgeTarget`]):
//! - a distribution registry deletes by digest only, which takes every tag on the manifest
//!   (see [`super::whole_manifests`] for how the plan allows for that);
//! - Kiln's registry deletes a tag alone (`DELETE /v2/<name>/manifests/<tag>`) and, with
//!   `--include-locked`, unlocks a locked item first (`PATCH /acr/v1/…`), printing ACR's
//!   `Unlocked …` line. Kiln deletes a manifest with its tags, so a tag pushed onto an
//!   untagged manifest between the plan and its deletion goes with it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::purge::plan::{Inventory, Plan};
use crate::purge::{PurgeTarget, TargetError};
use crate::registry_http::{Body, HttpError, RegistryHttp, MANIFEST_ACCEPT};

fn target_error(e: HttpError) -> TargetError {
    match e.status() {
        Some(StatusCode::NOT_FOUND) => TargetError::NotFound,
        _ => TargetError::Failed(e.to_string()),
    }
}

/// The digest a tag points at now (HEAD, else the hash of a GET), `None` if it is gone.
async fn current_digest(
    http: &RegistryHttp,
    repository: &str,
    tag: &str,
) -> Result<Option<String>, TargetError> {
    let path = format!("/v2/{repository}/manifests/{tag}");
    let scope = format!("repository:{repository}:pull");
    let head = http
        .send(Method::HEAD, &path, &scope, Some(MANIFEST_ACCEPT), None)
        .await;
    let answer = match head {
        Ok(answer) if answer.digest().is_some() => return Ok(answer.digest()),
        Ok(_) => http.get(&path, &scope, Some(MANIFEST_ACCEPT)).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(answer) => Ok(Some(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(&answer.body))
        ))),
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
        Err(e) => Err(target_error(e)),
    }
}

async fn delete(http: &RegistryHttp, repository: &str, reference: &str) -> Result<(), TargetError> {
    let path = format!("/v2/{repository}/manifests/{reference}");
    let scope = format!("repository:{repository}:delete");
    http.send(Method::DELETE, &path, &scope, None, None)
        .await
        .map(drop)
        .map_err(target_error)
}

/// A registry speaking only the distribution API.
pub struct DistributionTarget<'a> {
    pub http: &'a RegistryHttp,
    /// The digest each planned tag pointed at, which its deletion deletes.
    planned: HashMap<(String, String), String>,
}

impl<'a> DistributionTarget<'a> {
    pub fn new(http: &'a RegistryHttp, plan: &Plan) -> Self {
        let planned = plan
            .repositories
            .iter()
            .flat_map(|r| {
                r.tags
                    .iter()
                    .map(move |t| ((r.name.clone(), t.name.clone()), t.digest.clone()))
            })
            .collect();
        DistributionTarget { http, planned }
    }
}

impl PurgeTarget for DistributionTarget<'_> {
    async fn current_digest(&self, repo: &str, tag: &str) -> Result<Option<String>, TargetError> {
        current_digest(self.http, repo, tag).await
    }

    /// Deletes the manifest the tag points at (the executor checked it still does), with
    /// all its tags: the plan deletes a tag here only when all of them go.
    async fn delete_tag(&self, repo: &str, tag: &str) -> Result<(), TargetError> {
        let key = (repo.to_owned(), tag.to_owned());
        let digest = self
            .planned
            .get(&key)
            .ok_or_else(|| TargetError::Failed(format!("{repo}:{tag} is not in the plan")))?;
        delete(self.http, repo, digest).await
    }

    async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), TargetError> {
        delete(self.http, repo, digest).await
    }
}

/// What is locked in Kiln's registry, to unlock before deleting with `--include-locked`.
#[derive(Debug, Default)]
pub struct Locks {
    pub repositories: HashSet<String>,
    pub tags: HashSet<(String, String)>,
    pub manifests: HashSet<(String, String)>,
}

impl Locks {
    /// The locked items of an inventory, and the repositories locked as a whole.
    pub fn of(inventory: &Inventory, repositories: HashSet<String>) -> Locks {
        let mut locks = Locks {
            repositories,
            ..Locks::default()
        };
        for r in &inventory.repositories {
            let name = &r.name;
            let tags = r.tags.iter().filter(|t| t.locked);
            locks
                .tags
                .extend(tags.map(|t| (name.clone(), t.name.clone())));
            let manifests = r.manifests.iter().filter(|m| m.locked);
            locks
                .manifests
                .extend(manifests.map(|m| (name.clone(), m.digest.clone())));
        }
        locks
    }
}

/// Kiln's own registry.
pub struct KilnTarget<'a> {
    pub http: &'a RegistryHttp,
    /// The login address, for the `Unlocked …` lines.
    pub registry: &'a str,
    /// Empty unless `--include-locked`.
    pub locks: Locks,
    /// Items already unlocked.
    unlocked: Mutex<HashSet<String>>,
    pub log: &'a (dyn Fn(String) + Sync),
}

impl<'a> KilnTarget<'a> {
    pub fn new(
        http: &'a RegistryHttp,
        registry: &'a str,
        locks: Locks,
        log: &'a (dyn Fn(String) + Sync),
    ) -> Self {
        KilnTarget {
            http,
            registry,
            locks,
            unlocked: Mutex::new(HashSet::new()),
            log,
        }
    }

    /// PATCHes `path` (under `/acr/v1/`) to delete- and write-enabled, once.
    async fn unlock(&self, repo: &str, path: String, shown: String) -> Result<(), TargetError> {
        if !self.unlocked.lock().unwrap().insert(path.clone()) {
            return Ok(());
        }
        let body = Body {
            content_type: "application/json",
            bytes: br#"{"deleteEnabled":true,"writeEnabled":true}"#.to_vec(),
        };
        let scope = format!("repository:{repo}:delete");
        self.http
            .send(Method::PATCH, &path, &scope, None, Some(&body))
            .await
            .map_err(|e| TargetError::Failed(format!("cannot unlock {shown}: {e}")))?;
        (self.log)(format!("Unlocked {}/{shown}", self.registry));
        Ok(())
    }

    /// Unlocks the locked repositories among `names`, before any deletion in them starts.
    pub async fn unlock_repositories(&self, names: &[&str]) -> Result<(), TargetError> {
        for &repo in names {
            if self.locks.repositories.contains(repo) {
                self.unlock(repo, format!("/acr/v1/{repo}"), repo.to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}

impl PurgeTarget for KilnTarget<'_> {
    async fn current_digest(&self, repo: &str, tag: &str) -> Result<Option<String>, TargetError> {
        current_digest(self.http, repo, tag).await
    }

    async fn delete_tag(&self, repo: &str, tag: &str) -> Result<(), TargetError> {
        if self.locks.tags.contains(&(repo.to_owned(), tag.to_owned())) {
            let path = format!("/acr/v1/{repo}/_tags/{tag}");
            self.unlock(repo, path, format!("{repo}:{tag}")).await?;
        }
        delete(self.http, repo, tag).await
    }

    async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), TargetError> {
        if self
            .locks
            .manifests
            .contains(&(repo.to_owned(), digest.to_owned()))
        {
            let path = format!("/acr/v1/{repo}/_manifests/{digest}");
            self.unlock(repo, path, format!("{repo}@{digest}")).await?;
        }
        delete(self.http, repo, digest).await
    }
}
