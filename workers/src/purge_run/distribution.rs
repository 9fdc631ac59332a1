//! Listing an OCI distribution registry (any registry speaking the distribution API, e.g. CNCF
//! distribution 2.8) into an [`Inventory`]:
//! - repositories from `/v2/_catalog`, tags from `/v2/<name>/tags/list` (both paged by `Link`);
//! - each tag's manifest (GET by tag: digest and document), then every manifest those link:
//!   an index's children, and referrers from the referrers API
//!   (`/v2/<name>/referrers/<digest>`) where the registry has one, else from the referrers tag
//!   schema (`sha256-<hex>` tags, whose index lists the referrers of that digest);
//! - times: such registries keep no tag times, so an image's time is its config's `created`,
//!   an index's the newest of its children's, an artifact's its
//!   `org.opencontainers.image.created` annotation, else its subject's (the output says so).
//!
//! Untagged manifests cannot be listed through the distribution API: the only ones known are
//! those reachable from tags (index children, referrers). Only repositories the filters reach
//! are listed: a distribution registry links manifests per repository, so an index elsewhere
//! cannot be broken by a deletion here.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::manifest::{config_created, ManifestDoc};
use crate::purge::filter::{reach, Filter};
use crate::purge::plan::{Inventory, ManifestInfo, RepositoryInventory, TagInfo, TimeSource};
use crate::registry_http::{catalog, tags, Answer, HttpError, RegistryHttp, MANIFEST_ACCEPT};

/// Whether the registry serves the referrers API, learned on the first call.
const REFERRERS_UNKNOWN: u8 = 0;
const REFERRERS_API: u8 = 1;
const REFERRERS_TAG_SCHEMA: u8 = 2;

/// The repositories of `names` the filters reach (all of them without filters), sorted.
pub fn reached(filters: &[Filter], names: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in names {
        if reach(filters, &name)?.is_some() {
            out.push(name);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Lists a distribution registry's reached repositories with at most `concurrency` requests
/// in flight.
pub async fn list(
    http: &RegistryHttp,
    filters: &[Filter],
    concurrency: usize,
) -> Result<Inventory, String> {
    let names = catalog(http)
        .await
        .map_err(|e| format!("cannot list the registry's repositories: {e}"))?;
    let lister = Lister {
        http,
        permits: Semaphore::new(concurrency.max(1)),
        concurrency: concurrency.max(1),
        referrers: AtomicU8::new(REFERRERS_UNKNOWN),
    };
    let repositories = stream::iter(reached(filters, names)?)
        .map(|name| lister.repository(name))
        .buffer_unordered(lister.concurrency)
        .try_collect()
        .await?;
    Ok(Inventory {
        time_source: TimeSource::ImageCreated,
        repositories,
    })
}

struct Lister<'a> {
    http: &'a RegistryHttp,
    /// Bounds the requests in flight across repositories.
    permits: Semaphore,
    concurrency: usize,
    referrers: AtomicU8,
}

/// A manifest as fetched, with the digest it is known by.
struct Fetched {
    digest: String,
    doc: Option<ManifestDoc>,
}

impl Lister<'_> {
    async fn get(
        &self,
        path: &str,
        scope: &str,
        accept: Option<&str>,
    ) -> Result<Answer, HttpError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        self.http.get(path, scope, accept).await
    }

    async fn repository(&self, name: String) -> Result<RepositoryInventory, String> {
        let failed = |e: HttpError| format!("cannot list repository {name}: {e}");
        let scope = format!("repository:{name}:pull");
        let tag_names = tags(self.http, &name, &scope).await.map_err(failed)?;
        // Each tag's manifest; a tag deleted since the listing is left out.
        let tagged: Vec<(String, Fetched)> = stream::iter(tag_names)
            .map(|tag| async {
                let fetched = self.manifest(&name, &scope, &tag).await?;
                Ok::<_, HttpError>(fetched.map(|f| (tag, f)))
            })
            .buffer_unordered(self.concurrency)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await
            .map_err(failed)?;
        let mut docs: HashMap<String, Option<ManifestDoc>> = HashMap::new();
        let mut tags = Vec::new();
        let mut schema_tags: Vec<(String, String)> = Vec::new();
        for (tag, fetched) in tagged {
            match referrers_tag_subject(&tag) {
                Some(subject) => schema_tags.push((fetched.digest.clone(), subject)),
                None => tags.push((tag, fetched.digest.clone())),
            }
            docs.insert(fetched.digest, fetched.doc);
        }
        self.follow_links(&name, &scope, &mut docs)
            .await
            .map_err(failed)?;
        let created = self
            .created_times(&name, &scope, &docs)
            .await
            .map_err(failed)?;
        let mut subjects: HashMap<String, String> = docs
            .iter()
            .filter_map(|(d, doc)| Some((d.clone(), doc.as_ref()?.subject.clone()?)))
            .collect();
        // A referrers tag's index stands for its subject's referrers: it goes with the subject.
        subjects.extend(schema_tags);
        let times = Times {
            docs: &docs,
            created: &created,
            subjects: &subjects,
        };
        let tags = tags
            .into_iter()
            .map(|(tag, digest)| TagInfo {
                name: tag,
                updated: times.of(&digest, 0),
                digest,
                locked: false,
            })
            .collect();
        let manifests = docs
            .iter()
            .map(|(digest, doc)| ManifestInfo {
                digest: digest.clone(),
                media_type: doc.as_ref().and_then(|d| d.media_type.clone()),
                updated: times.of(digest, 0),
                locked: false,
                children: doc.as_ref().map(|d| d.children.clone()).unwrap_or_default(),
                subject: subjects.get(digest).cloned(),
            })
            .collect();
        Ok(RepositoryInventory {
            name,
            tags,
            manifests,
        })
    }

    /// The manifest `reference` names, `None` if there is none (any more).
    async fn manifest(
        &self,
        name: &str,
        scope: &str,
        reference: &str,
    ) -> Result<Option<Fetched>, HttpError> {
        let path = format!("/v2/{name}/manifests/{reference}");
        let answer = match self.get(&path, scope, Some(MANIFEST_ACCEPT)).await {
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => return Ok(None),
            other => other?,
        };
        let digest = match answer.digest() {
            Some(digest) => digest,
            None if reference.contains(':') => reference.to_owned(),
            None => format!("sha256:{}", hex::encode(Sha256::digest(&answer.body))),
        };
        let doc = ManifestDoc::parse(&answer.body, answer.content_type().as_deref());
        Ok(Some(Fetched { digest, doc }))
    }

    /// Fetches, until none is left, the manifests that known ones link: index children and
    /// referrers.
    async fn follow_links(
        &self,
        name: &str,
        scope: &str,
        docs: &mut HashMap<String, Option<ManifestDoc>>,
    ) -> Result<(), HttpError> {
        let mut asked_referrers: HashSet<String> = HashSet::new();
        loop {
            let mut wanted: HashSet<String> = HashSet::new();
            for doc in docs.values().flatten() {
                wanted.extend(doc.children.iter().cloned());
            }
            let unasked: Vec<String> = docs
                .keys()
                .filter(|d| !asked_referrers.contains(*d))
                .cloned()
                .collect();
            asked_referrers.extend(unasked.iter().cloned());
            let referrers: Vec<Vec<String>> = stream::iter(unasked)
                .map(|digest| async move { self.referrers(name, scope, &digest).await })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            wanted.extend(referrers.into_iter().flatten());
            wanted.retain(|d| !docs.contains_key(d));
            if wanted.is_empty() {
                return Ok(());
            }
            let fetched: Vec<(String, Option<Fetched>)> = stream::iter(wanted)
                .map(|digest| async move {
                    let found = self.manifest(name, scope, &digest).await?;
                    Ok::<_, HttpError>((digest, found))
                })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            for (digest, found) in fetched {
                // A linked manifest that is missing is recorded without a document, so it is
                // known (and kept: no media type) rather than fetched again.
                docs.insert(digest, found.and_then(|f| f.doc));
            }
        }
    }

    /// The referrers of `digest` through the referrers API; empty once the registry turned
    /// out not to have it (the `sha256-<hex>` tags stand for it then).
    async fn referrers(
        &self,
        name: &str,
        scope: &str,
        digest: &str,
    ) -> Result<Vec<String>, HttpError> {
        if self.referrers.load(Ordering::Relaxed) == REFERRERS_TAG_SCHEMA {
            return Ok(Vec::new());
        }
        let path = format!("/v2/{name}/referrers/{digest}");
        let answer = match self
            .get(
                &path,
                scope,
                Some("application/vnd.oci.image.index.v1+json"),
            )
            .await
        {
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                self.referrers
                    .compare_exchange(
                        REFERRERS_UNKNOWN,
                        REFERRERS_TAG_SCHEMA,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .ok();
                return Ok(Vec::new());
            }
            other => other?,
        };
        self.referrers.store(REFERRERS_API, Ordering::Relaxed);
        Ok(ManifestDoc::parse(
            &answer.body,
            Some("application/vnd.oci.image.index.v1+json"),
        )
        .map(|doc| doc.children)
        .unwrap_or_default())
    }

    /// The `created` time of every image config the documents name.
    async fn created_times(
        &self,
        name: &str,
        scope: &str,
        docs: &HashMap<String, Option<ManifestDoc>>,
    ) -> Result<HashMap<String, DateTime<Utc>>, HttpError> {
        // Owned digests: a stream of closures over borrowed `&str`s is not `Send` for every
        // lifetime, which a worker's step future must be.
        let configs: HashSet<String> = docs
            .values()
            .flatten()
            .filter_map(|d| d.config.clone())
            .collect();
        let found: Vec<Option<(String, DateTime<Utc>)>> = stream::iter(configs)
            .map(|config: String| async move {
                let path = format!("/v2/{name}/blobs/{config}");
                let answer = match self.get(&path, scope, None).await {
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        return Ok(None)
                    }
                    other => other?,
                };
                Ok::<_, HttpError>(config_created(&answer.body).map(|t| (config, t)))
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }
}

/// The subject digest a referrers tag schema tag (`sha256-<64 hex>`) stands for.
fn referrers_tag_subject(tag: &str) -> Option<String> {
    let hex = tag.strip_prefix("sha256-")?;
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    is_hex.then(|| format!("sha256:{hex}"))
}

/// The times that stand in for tag times (see the module doc).
struct Times<'a> {
    docs: &'a HashMap<String, Option<ManifestDoc>>,
    created: &'a HashMap<String, DateTime<Utc>>,
    subjects: &'a HashMap<String, String>,
}

impl Times<'_> {
    /// `depth` bounds the walk: content digests cannot form a cycle, but a hostile registry
    /// could serve documents that claim one.
    fn of(&self, digest: &str, depth: u32) -> Option<DateTime<Utc>> {
        if depth > 16 {
            return None;
        }
        let doc = self.docs.get(digest)?.as_ref()?;
        if let Some(time) = doc.config.as_ref().and_then(|c| self.created.get(c)) {
            return Some(*time);
        }
        if doc.is_index() {
            if let Some(newest) = doc
                .children
                .iter()
                .filter_map(|c| self.of(c, depth + 1))
                .max()
            {
                return Some(newest);
            }
        }
        doc.annotated_created.or_else(|| {
            let subject = self.subjects.get(digest)?;
            self.of(subject, depth + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tags_are_recognised_exactly() {
        let hex = "ab".repeat(32);
        assert_eq!(
            referrers_tag_subject(&format!("sha256-{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(referrers_tag_subject(&format!("sha256-{hex}.sig")), None);
        assert_eq!(referrers_tag_subject("sha256-abc"), None);
        assert_eq!(
            referrers_tag_subject(&format!("sha256-{}", "AB".repeat(32))),
            None
        );
    }
}
