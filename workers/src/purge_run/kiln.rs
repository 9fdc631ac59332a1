//! Listing Kiln's own registry into an [`Inventory`] through its ACR metadata API, which has
//! what the distribution API lacks: each tag's last update time, locks on repositories, tags
//! and manifests, untagged manifests, index children (`references`) and referrers' subjects.
//! - repositories: `/v2/_catalog`; the ones the filters reach are listed whole
//!   (`GET /acr/v1/{name}`, `…/_tags`, `…/_manifests`), every other one by its manifests only,
//!   whose indexes and referrers keep what they link in any repository;
//! - locked: `deleteEnabled` or `writeEnabled` false on the item or on its repository (ACR
//!   purge skips both).

use std::collections::HashSet;

use futures::{stream, StreamExt, TryStreamExt};
use serde::Deserialize;

use super::manifest::parse_time;
use crate::purge::filter::{reach, Filter};
use crate::purge::plan::{Inventory, ManifestInfo, RepositoryInventory, TagInfo, TimeSource};
use crate::registry_http::{catalog, HttpError, RegistryHttp};

const PAGE: usize = 1000;

/// ACR's `changeableAttributes` (absent fields are enabled).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    pub delete_enabled: Option<bool>,
    pub write_enabled: Option<bool>,
}

impl Attributes {
    /// Whether ACR purge leaves it alone without `--include-locked`.
    pub fn locked(&self) -> bool {
        self.delete_enabled == Some(false) || self.write_enabled == Some(false)
    }
}

/// `GET /acr/v1/{name}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryAttributes {
    #[serde(default)]
    pub changeable_attributes: Attributes,
}

/// One entry of `GET /acr/v1/{name}/_tags`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrTag {
    pub name: String,
    pub digest: String,
    pub last_update_time: Option<String>,
    #[serde(default)]
    pub changeable_attributes: Attributes,
}

/// One entry of `GET /acr/v1/{name}/_manifests`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrManifest {
    pub digest: String,
    pub media_type: Option<String>,
    pub last_update_time: Option<String>,
    #[serde(default)]
    pub changeable_attributes: Attributes,
    /// An index's children.
    #[serde(default)]
    pub references: Vec<String>,
    /// A referrer's subject: a digest, or a descriptor holding one.
    pub subject: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Vec<AcrTag>,
}

#[derive(Debug, Deserialize)]
struct ManifestsPage {
    #[serde(default)]
    manifests: Vec<AcrManifest>,
}

impl AcrTag {
    fn info(self, repository_locked: bool) -> TagInfo {
        TagInfo {
            updated: self.last_update_time.as_deref().and_then(parse_time),
            locked: repository_locked || self.changeable_attributes.locked(),
            name: self.name,
            digest: self.digest,
        }
    }
}

impl AcrManifest {
    fn info(self, repository_locked: bool) -> ManifestInfo {
        let subject = match self.subject {
            Some(serde_json::Value::String(digest)) => Some(digest),
            Some(serde_json::Value::Object(descriptor)) => descriptor
                .get("digest")
                .and_then(|d| d.as_str())
                .map(str::to_owned),
            _ => None,
        };
        ManifestInfo {
            updated: self.last_update_time.as_deref().and_then(parse_time),
            locked: repository_locked || self.changeable_attributes.locked(),
            digest: self.digest,
            media_type: self.media_type,
            children: self.references,
            subject,
        }
    }
}

/// Lists Kiln's registry (see the module doc); also returns the repositories locked as a
/// whole, which `--include-locked` unlocks before deleting in them.
pub async fn list(
    http: &RegistryHttp,
    filters: &[Filter],
    concurrency: usize,
) -> Result<(Inventory, HashSet<String>), String> {
    let names = catalog(http)
        .await
        .map_err(|e| format!("cannot list the registry's repositories: {e}"))?;
    let mut work = Vec::new();
    for name in names {
        let reached = reach(filters, &name)?.is_some();
        work.push((name, reached));
    }
    let listed: Vec<(RepositoryInventory, bool)> = stream::iter(work)
        .map(|(name, reached)| async move {
            repository(http, name.clone(), reached)
                .await
                .map_err(|e| format!("cannot list repository {name}: {e}"))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut locked_repositories = HashSet::new();
    let mut repositories = Vec::new();
    for (repository, locked) in listed {
        if locked {
            locked_repositories.insert(repository.name.clone());
        }
        repositories.push(repository);
    }
    Ok((
        Inventory {
            time_source: TimeSource::TagUpdate,
            repositories,
        },
        locked_repositories,
    ))
}

async fn repository(
    http: &RegistryHttp,
    name: String,
    reached: bool,
) -> Result<(RepositoryInventory, bool), HttpError> {
    let scope = format!("repository:{name}:pull");
    let locked = reached && repository_locked(http, &name, &scope).await?;
    let mut tags = Vec::new();
    if reached {
        let mut path = format!("/acr/v1/{name}/_tags?n={PAGE}");
        loop {
            let answer = http.get(&path, &scope, None).await?;
            let page: TagsPage = answer.json(&path)?;
            tags.extend(page.tags.into_iter().map(|t| t.info(locked)));
            match answer.next_page() {
                Some(next) => path = next,
                None => break,
            }
        }
    }
    let mut manifests = Vec::new();
    let mut path = format!("/acr/v1/{name}/_manifests?n={PAGE}");
    loop {
        let answer = http.get(&path, &scope, None).await?;
        let page: ManifestsPage = answer.json(&path)?;
        manifests.extend(page.manifests.into_iter().map(|m| m.info(locked)));
        match answer.next_page() {
            Some(next) => path = next,
            None => break,
        }
    }
    Ok((
        RepositoryInventory {
            name,
            tags,
            manifests,
        },
        locked,
    ))
}

/// Whether the repository as a whole is locked; a server without repository attributes
/// (404) locks nothing.
async fn repository_locked(
    http: &RegistryHttp,
    name: &str,
    scope: &str,
) -> Result<bool, HttpError> {
    let path = format!("/acr/v1/{name}");
    match http.get(&path, scope, None).await {
        Ok(answer) => Ok(answer
            .json::<RepositoryAttributes>(&path)?
            .changeable_attributes
            .locked()),
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_pages_give_times_and_locks() {
        let page: TagsPage = serde_json::from_str(
            r#"{"registry":"127.0.0.1:8080","imageName":"app/web","tags":[
                {"name":"v1","digest":"sha256:a","createdTime":"2026-01-01T00:00:00Z",
                 "lastUpdateTime":"2026-01-02T00:00:00.5Z","signed":false,
                 "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}},
                {"name":"v2","digest":"sha256:b","lastUpdateTime":"2026-01-03T00:00:00Z",
                 "changeableAttributes":{"deleteEnabled":true,"writeEnabled":false}},
                {"name":"v3","digest":"sha256:b","lastUpdateTime":"not a time"}]}"#,
        )
        .unwrap();
        let tags: Vec<TagInfo> = page.tags.into_iter().map(|t| t.info(false)).collect();
        assert_eq!(
            tags[0].updated.unwrap().to_rfc3339(),
            "2026-01-02T00:00:00.500+00:00"
        );
        assert!(!tags[0].locked && tags[1].locked && !tags[2].locked);
        // An unreadable time is unknown, which keeps the tag.
        assert_eq!(tags[2].updated, None);
    }

    #[test]
    fn manifests_pages_give_children_subjects_and_locks() {
        let page: ManifestsPage = serde_json::from_str(
            r#"{"manifests":[
                {"digest":"sha256:i","mediaType":"application/vnd.oci.image.index.v1+json",
                 "createdTime":"2026-01-01T00:00:00Z","lastUpdateTime":"2026-01-01T00:00:00Z",
                 "tags":["v1"],"changeableAttributes":{"deleteEnabled":false,"writeEnabled":true},
                 "references":["sha256:c1","sha256:c2"]},
                {"digest":"sha256:s","mediaType":"application/vnd.oci.image.manifest.v1+json",
                 "lastUpdateTime":"2026-01-01T00:00:00Z","tags":[],"subject":"sha256:i"},
                {"digest":"sha256:t","lastUpdateTime":"2026-01-01T00:00:00Z",
                 "subject":{"digest":"sha256:i","mediaType":"x","size":1}}]}"#,
        )
        .unwrap();
        let manifests: Vec<ManifestInfo> =
            page.manifests.into_iter().map(|m| m.info(false)).collect();
        assert_eq!(manifests[0].children, ["sha256:c1", "sha256:c2"]);
        assert!(manifests[0].locked && !manifests[1].locked);
        assert_eq!(manifests[1].subject.as_deref(), Some("sha256:i"));
        assert_eq!(manifests[2].subject.as_deref(), Some("sha256:i"));
        assert_eq!(manifests[2].media_type, None);
    }

    #[test]
    fn a_locked_repository_locks_everything_in_it() {
        let repository: RepositoryAttributes = serde_json::from_str(
            r#"{"registry":"r","imageName":"app","changeableAttributes":{"deleteEnabled":false}}"#,
        )
        .unwrap();
        assert!(repository.changeable_attributes.locked());
        let tag: AcrTag =
            serde_json::from_str(r#"{"name":"v1","digest":"sha256:a","lastUpdateTime":null}"#)
                .unwrap();
        assert!(tag.info(true).locked);
    }
}
