//! Content discovery: tag lists, the repository catalog and the referrers of a manifest.

use serde::Serialize;

use super::access::{authorize, CATALOG_SCOPE};
use super::{Digest, RegistryError, RegistryService, RepoName};
use crate::access::{AccessError, Action, Principal};

/// Lists without `n` return everything; this bounds one database read.
const BATCH: u32 = 1000;

/// One page of names, in lexical order.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<String>,
    /// Whether names follow the last one: the response then links to the next page.
    pub more: bool,
}

/// An OCI descriptor of a manifest whose subject is the one asked about.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

impl RegistryService {
    /// Tags after `last`, at most `n` of them (all without `n`).
    pub async fn list_tags(
        &self,
        who: &Principal,
        repo: &RepoName,
        last: Option<&str>,
        n: Option<u32>,
    ) -> Result<Page, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let limit = n.map_or(u32::MAX, |n| n.saturating_add(1));
        let mut items = self
            .store
            .list_tags(repo.as_str(), last, limit)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
        Ok(page(&mut items, n))
    }

    /// Repository names after `last` that `who` may pull, at most `n` of them. The catalog
    /// scope is granted to anyone signed in, so a registry token's repository scopes do not
    /// narrow it: the list is what the holder may pull.
    pub async fn catalog(
        &self,
        who: &Principal,
        last: Option<&str>,
        n: Option<u32>,
    ) -> Result<Page, RegistryError> {
        let Some(holder) = who.subject() else {
            return Err(RegistryError::Access {
                error: AccessError::Unauthenticated,
                scope: CATALOG_SCOPE.into(),
            });
        };
        let visible = |name: &str| holder.permits(name, Action::Pull);
        let want = n.map_or(usize::MAX, |n| n as usize + 1);
        let mut items = Vec::new();
        let mut cursor = last.map(str::to_string);
        while items.len() < want {
            let batch = self
                .store
                .list_repositories(cursor.as_deref(), BATCH)
                .await?;
            let Some(end) = batch.last().cloned() else {
                break;
            };
            let full = batch.len() == BATCH as usize;
            items.extend(batch.into_iter().filter(|name| visible(name)));
            cursor = Some(end);
            if !full {
                break;
            }
        }
        items.truncate(want);
        Ok(page(&mut items, n))
    }

    /// Manifests in `repo` whose subject is `subject`, optionally of one artifact type. An
    /// unknown subject has no referrers: that is an empty list, not an error.
    pub async fn referrers(
        &self,
        who: &Principal,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let rows = self
            .store
            .referrers(repo.as_str(), subject.as_str(), artifact_type)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Referrer {
                media_type: r.media_type,
                digest: r.digest,
                size: r.size,
                artifact_type: r.artifact_type,
                annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
            })
            .collect())
    }
}

/// Cuts a list fetched with one extra item down to `n`, noting whether there was more.
fn page(items: &mut Vec<String>, n: Option<u32>) -> Page {
    let more = n.is_some_and(|n| items.len() > n as usize);
    if let Some(n) = n {
        items.truncate(n as usize);
    }
    Page {
        items: std::mem::take(items),
        more,
    }
}
