//! ACR's registry metadata API (`/acr/v1/`), which `acr purge` reads and writes: a
//! repository, pages of its tags and manifests with their times and locks, and lock changes.
//! It sits beside `/v2` and takes the same credentials (run credentials and registry tokens
//! included), so reads need pull on the repository and lock changes need delete, as in the
//! management API (`RepositoryService`).

use super::access::authorize;
use super::{RegistryError, RegistryService, RepoName};
use crate::access::{Action, Principal};
use crate::service::locks::{validate, LockScope};
use crate::service::repositories::{repository, split_list};
use crate::service::to_time;
use crate::store::{ManifestRow, TagPage, TagRow};
use crate::wire::acr::{AcrManifest, AcrTag};
use crate::wire::registry::{AttributesUpdate, ChangeableAttributes, Repository, TagOrder};

/// A page's size when the client names none, as ACR's.
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page served; larger `n` are cut to it, so one request reads a bounded number
/// of rows.
pub const MAX_PAGE: u32 = 1000;

/// One page of tags or manifests.
#[derive(Debug, Clone)]
pub struct MetadataPage<T> {
    pub items: Vec<T>,
    /// The `last` to ask the next page with (a tag name or a digest), when more follow.
    pub next: Option<String>,
}

impl RegistryService {
    /// A repository with its counts, times and locks.
    pub async fn repository_details(
        &self,
        who: &Principal,
        repo: &RepoName,
    ) -> Result<Repository, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let row = self.store.repository(repo.as_str()).await?;
        row.map(repository)
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))
    }

    /// Up to `n` tags after the tag `last`, by name or by last update time.
    pub async fn tag_details(
        &self,
        who: &Principal,
        repo: &RepoName,
        order: TagOrder,
        last: Option<&str>,
        n: u32,
    ) -> Result<MetadataPage<AcrTag>, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let n = n.clamp(1, MAX_PAGE);
        let page = self
            .store
            .tag_page(repo.as_str(), order.into(), last, n + 1)
            .await?;
        let rows = match page {
            TagPage::Tags(rows) => rows,
            TagPage::NoRepository => return Err(RegistryError::NameUnknown(repo.to_string())),
            TagPage::LastUnknown => {
                return Err(RegistryError::Unsupported(format!(
                    "tag '{}' (last) is no longer in {repo}, so the page after it cannot be \
                     placed in time order: list again from the start",
                    last.unwrap_or_default()
                )))
            }
        };
        Ok(paginate(rows.into_iter().map(acr_tag).collect(), n, |t| {
            t.name.clone()
        }))
    }

    /// One tag with its times and locks.
    pub async fn tag_detail(
        &self,
        who: &Principal,
        repo: &RepoName,
        tag: &str,
    ) -> Result<AcrTag, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let row = self.store.tag(repo.as_str(), tag).await?;
        row.map(acr_tag)
            .ok_or_else(|| RegistryError::ManifestUnknown(format!("{repo}:{tag}")))
    }

    /// Up to `n` manifests after the digest `last`, by digest, with their tags, the
    /// manifests an index lists and the subject a referrer names.
    pub async fn manifest_details(
        &self,
        who: &Principal,
        repo: &RepoName,
        last: Option<&str>,
        n: u32,
    ) -> Result<MetadataPage<AcrManifest>, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let n = n.clamp(1, MAX_PAGE);
        let rows = self
            .store
            .manifest_page(repo.as_str(), last, n + 1)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
        Ok(paginate(
            rows.into_iter().map(acr_manifest).collect(),
            n,
            |m| m.digest.clone(),
        ))
    }

    /// One manifest by digest.
    pub async fn manifest_detail(
        &self,
        who: &Principal,
        repo: &RepoName,
        digest: &str,
    ) -> Result<AcrManifest, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let row = self.store.manifest(repo.as_str(), digest).await?;
        row.map(acr_manifest)
            .ok_or_else(|| RegistryError::ManifestUnknown(format!("{repo}@{digest}")))
    }

    /// Locks or unlocks the repository, one tag or one manifest (by digest): what `acr purge
    /// --include-locked` does before deleting. Needs delete on the repository, for the reason
    /// `RepositoryService::update_*` gives.
    pub async fn set_locks(
        &self,
        who: &Principal,
        repo: &RepoName,
        scope: LockScope<'_>,
        update: &AttributesUpdate,
    ) -> Result<ChangeableAttributes, RegistryError> {
        authorize(who, repo, &[Action::Delete])?;
        validate(update).map_err(RegistryError::Unsupported)?;
        let attributes = self
            .store
            .set_attributes(
                repo.as_str(),
                scope,
                update.write_enabled,
                update.delete_enabled,
            )
            .await?;
        attributes.map(Into::into).ok_or_else(|| match scope {
            LockScope::Repository => RegistryError::NameUnknown(repo.to_string()),
            LockScope::Tag(t) => RegistryError::ManifestUnknown(format!("{repo}:{t}")),
            LockScope::Manifest(d) => RegistryError::ManifestUnknown(format!("{repo}@{d}")),
        })
    }
}

/// Cuts a list fetched with one extra item down to `n`; the last kept item is the next
/// page's `last` when there was more.
fn paginate<T>(mut items: Vec<T>, n: u32, key: impl Fn(&T) -> String) -> MetadataPage<T> {
    let more = items.len() > n as usize;
    items.truncate(n as usize);
    let next = more.then(|| items.last().map(&key)).flatten();
    MetadataPage { items, next }
}

fn acr_tag(t: TagRow) -> AcrTag {
    AcrTag {
        name: t.name,
        digest: t.digest,
        created_time: to_time(t.created_at),
        last_update_time: to_time(t.updated_at),
        signed: false,
        changeable_attributes: t.attributes.into(),
    }
}

fn acr_manifest(m: ManifestRow) -> AcrManifest {
    AcrManifest {
        digest: m.digest,
        image_size: m.image_size.max(0) as u64,
        created_time: to_time(m.created_at),
        last_update_time: to_time(m.updated_at),
        media_type: m.media_type,
        tags: split_list(m.tags),
        changeable_attributes: m.attributes.into(),
        references: split_list(m.children),
        subject: m.subject,
    }
}
