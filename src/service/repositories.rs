//! Registry management: what `kiln registry repository …` lists, shows, locks and deletes.
//! Every method authorises its caller on the repository (`list` filters by what the caller
//! may pull). Deleting leaves blob bytes to garbage collection; locks refuse it
//! (`service::locks`).

use super::locks::{delete_refusal, validate, LockScope};
use super::{to_time, ServiceError};
use crate::access::{Action, Principal};
use crate::store::{ManifestRow, RepositoryRow, Store, TagRow, TagSort};
use crate::wire::registry::{AttributesUpdate, Deleted, Manifest, Repository, Tag, TagOrder};

pub struct RepositoryService {
    store: Store,
}

impl RepositoryService {
    pub fn new(store: Store) -> RepositoryService {
        RepositoryService { store }
    }

    /// The repositories `who` may pull from, by name.
    pub async fn list(&self, who: &Principal) -> Result<Vec<Repository>, ServiceError> {
        who.require_any(Action::Pull)?;
        let rows = self.store.repositories().await?;
        Ok(rows
            .into_iter()
            .filter(|r| who.authorize(&r.name, Action::Pull).is_ok())
            .map(repository)
            .collect())
    }

    pub async fn show(&self, who: &Principal, name: &str) -> Result<Repository, ServiceError> {
        who.authorize(name, Action::Pull)?;
        self.find_repository(name).await
    }

    async fn find_repository(&self, name: &str) -> Result<Repository, ServiceError> {
        self.store
            .repository(name)
            .await?
            .map(repository)
            .ok_or_else(|| repository_not_found(name))
    }

    pub async fn tags(
        &self,
        who: &Principal,
        name: &str,
        order: TagOrder,
    ) -> Result<Vec<Tag>, ServiceError> {
        who.authorize(name, Action::Pull)?;
        self.find_repository(name).await?;
        let rows = self.store.tags(name, order.into()).await?;
        Ok(rows.into_iter().map(tag).collect())
    }

    pub async fn tag(
        &self,
        who: &Principal,
        name: &str,
        tag_name: &str,
    ) -> Result<Tag, ServiceError> {
        who.authorize(name, Action::Pull)?;
        self.find_tag(name, tag_name).await
    }

    async fn find_tag(&self, name: &str, tag_name: &str) -> Result<Tag, ServiceError> {
        self.store
            .tag(name, tag_name)
            .await?
            .map(tag)
            .ok_or_else(|| tag_not_found(name, tag_name))
    }

    pub async fn manifests(
        &self,
        who: &Principal,
        name: &str,
    ) -> Result<Vec<Manifest>, ServiceError> {
        who.authorize(name, Action::Pull)?;
        self.find_repository(name).await?;
        let rows = self.store.manifests(name).await?;
        self.with_findings(rows).await
    }

    /// One manifest, named by digest or by one of its tags.
    pub async fn manifest(
        &self,
        who: &Principal,
        name: &str,
        reference: &str,
    ) -> Result<Manifest, ServiceError> {
        who.authorize(name, Action::Pull)?;
        let digest = self.resolve(name, reference).await?;
        let row = self.store.manifest(name, &digest).await?;
        let row = row.ok_or_else(|| manifest_not_found(name, reference))?;
        let mut found = self.with_findings(vec![row]).await?;
        Ok(found.remove(0))
    }

    /// The manifests with their findings from the stored scan reports, in one query.
    async fn with_findings(&self, rows: Vec<ManifestRow>) -> Result<Vec<Manifest>, ServiceError> {
        let digests: Vec<(String, Vec<String>)> = rows
            .iter()
            .map(|m| (m.digest.clone(), split_list(m.children.clone())))
            .collect();
        let totals = super::scans::listing_totals(&self.store, &digests).await?;
        rows.into_iter()
            .zip(totals)
            .map(|(row, findings)| {
                Ok(Manifest {
                    findings,
                    ..manifest(row)?
                })
            })
            .collect()
    }

    /// Locks or unlocks a repository (`az acr repository update --repository`).
    pub async fn update_repository(
        &self,
        who: &Principal,
        name: &str,
        update: &AttributesUpdate,
    ) -> Result<Repository, ServiceError> {
        if let Some(scan_on_push) = update.scan_on_push {
            // Who may lock a repository may say whether it is scanned.
            who.authorize(name, Action::Delete)?;
            if !self
                .store
                .set_scan_on_push(name, Some(scan_on_push))
                .await?
            {
                return Err(repository_not_found(name));
            }
            let nothing_else = update.write_enabled.is_none()
                && update.delete_enabled.is_none()
                && update.read_enabled.is_none()
                && update.list_enabled.is_none();
            if nothing_else {
                return self.find_repository(name).await;
            }
        }
        self.set_locks(who, name, LockScope::Repository, update, || {
            repository_not_found(name)
        })
        .await?;
        self.find_repository(name).await
    }

    /// Locks or unlocks a tag (`az acr repository update --image repo:tag`).
    pub async fn update_tag(
        &self,
        who: &Principal,
        name: &str,
        tag_name: &str,
        update: &AttributesUpdate,
    ) -> Result<Tag, ServiceError> {
        self.set_locks(who, name, LockScope::Tag(tag_name), update, || {
            tag_not_found(name, tag_name)
        })
        .await?;
        self.find_tag(name, tag_name).await
    }

    /// Locks or unlocks a manifest, named by digest or by one of its tags.
    pub async fn update_manifest(
        &self,
        who: &Principal,
        name: &str,
        reference: &str,
        update: &AttributesUpdate,
    ) -> Result<Manifest, ServiceError> {
        who.authorize(name, Action::Delete)?;
        let digest = self.resolve(name, reference).await?;
        self.set_locks(who, name, LockScope::Manifest(&digest), update, || {
            manifest_not_found(name, reference)
        })
        .await?;
        self.manifest(who, name, &digest).await
    }

    /// Changing a lock needs the delete role on the repository: a lock decides what may be
    /// deleted or overwritten, so it belongs to whoever may delete there. The push role alone
    /// must not lift the lock that keeps a released tag from being overwritten.
    async fn set_locks(
        &self,
        who: &Principal,
        name: &str,
        scope: LockScope<'_>,
        update: &AttributesUpdate,
        missing: impl FnOnce() -> ServiceError,
    ) -> Result<(), ServiceError> {
        who.authorize(name, Action::Delete)?;
        if update.scan_on_push.is_some() && !matches!(scope, LockScope::Repository) {
            return Err(ServiceError::Invalid(
                "scanOnPush is a repository's setting, not a tag's or a manifest's".into(),
            ));
        }
        validate(update).map_err(ServiceError::Invalid)?;
        self.store
            .set_attributes(name, scope, update.write_enabled, update.delete_enabled)
            .await?
            .ok_or_else(missing)?;
        Ok(())
    }

    /// Refuses, with the lock's name, a delete that a lock forbids.
    async fn refuse_locked(&self, name: &str, scope: LockScope<'_>) -> Result<(), ServiceError> {
        match delete_refusal(&self.store, name, scope).await? {
            Some(refusal) => Err(ServiceError::Locked(refusal)),
            None => Ok(()),
        }
    }

    pub async fn untag(
        &self,
        who: &Principal,
        name: &str,
        tag_name: &str,
    ) -> Result<Deleted, ServiceError> {
        who.authorize(name, Action::Delete)?;
        self.refuse_locked(name, LockScope::Tag(tag_name)).await?;
        if !self.store.delete_tag(name, tag_name).await? {
            return Err(tag_not_found(name, tag_name));
        }
        Ok(Deleted {
            manifests: Vec::new(),
            tags: vec![tag_name.to_string()],
        })
    }

    /// Deletes a manifest, named by digest or tag, with every tag pointing at it, as
    /// `az acr repository delete --image repo:tag` does.
    pub async fn delete_manifest(
        &self,
        who: &Principal,
        name: &str,
        reference: &str,
    ) -> Result<Deleted, ServiceError> {
        who.authorize(name, Action::Delete)?;
        let digest = self.resolve(name, reference).await?;
        self.refuse_locked(name, LockScope::Manifest(&digest))
            .await?;
        let tags = self
            .store
            .delete_manifest_with_tags(name, &digest)
            .await?
            .ok_or_else(|| manifest_not_found(name, reference))?;
        Ok(Deleted {
            manifests: vec![digest],
            tags,
        })
    }

    pub async fn delete_repository(
        &self,
        who: &Principal,
        name: &str,
    ) -> Result<Deleted, ServiceError> {
        who.authorize(name, Action::Delete)?;
        self.refuse_locked(name, LockScope::Repository).await?;
        let (manifests, tags) = self
            .store
            .delete_repository(name)
            .await?
            .ok_or_else(|| repository_not_found(name))?;
        Ok(Deleted { manifests, tags })
    }

    /// A digest stays as it is; a tag becomes the digest it points at.
    async fn resolve(&self, name: &str, reference: &str) -> Result<String, ServiceError> {
        if reference.contains(':') {
            return Ok(reference.to_string());
        }
        Ok(self.find_tag(name, reference).await?.digest)
    }
}

impl From<TagOrder> for TagSort {
    fn from(order: TagOrder) -> TagSort {
        match order {
            TagOrder::Name => TagSort::Name,
            TagOrder::TimeDesc => TagSort::NewestFirst,
            TagOrder::TimeAsc => TagSort::OldestFirst,
        }
    }
}

fn repository_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("repository '{name}' not found"))
}

fn tag_not_found(name: &str, tag: &str) -> ServiceError {
    ServiceError::NotFound(format!("tag '{tag}' not found in repository '{name}'"))
}

fn manifest_not_found(name: &str, reference: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "manifest '{reference}' not found in repository '{name}'"
    ))
}

pub(crate) fn repository(r: RepositoryRow) -> Repository {
    Repository {
        name: r.name,
        tag_count: r.tag_count.max(0) as u64,
        manifest_count: r.manifest_count.max(0) as u64,
        created_time: to_time(r.created_at),
        last_update_time: to_time(r.updated_at),
        changeable_attributes: r.attributes.into(),
        scan_on_push: r.scan_on_push,
    }
}

fn tag(t: TagRow) -> Tag {
    Tag {
        name: t.name,
        digest: t.digest,
        created_time: to_time(t.created_at),
        last_update_time: to_time(t.updated_at),
        run_id: t.run_id,
        changeable_attributes: t.attributes.into(),
    }
}

fn manifest(m: ManifestRow) -> Result<Manifest, ServiceError> {
    let platforms: Vec<String> = serde_json::from_str(&m.platforms).map_err(|e| {
        ServiceError::Store(crate::store::StoreError::Corrupt(format!(
            "platforms of manifest {}: {e}",
            m.digest
        )))
    })?;
    Ok(Manifest {
        tags: split_list(m.tags),
        digest: m.digest,
        media_type: m.media_type,
        platforms,
        image_size: m.image_size.max(0) as u64,
        created_time: to_time(m.created_at),
        last_update_time: to_time(m.updated_at),
        run_id: m.run_id,
        changeable_attributes: m.attributes.into(),
        findings: None,
    })
}

/// A list the query joined with commas (tag names, digests: neither holds a comma).
pub(crate) fn split_list(joined: Option<String>) -> Vec<String> {
    joined
        .map(|t| t.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccessError, Role, Subject};

    #[tokio::test]
    async fn deleting_needs_the_delete_role_whoever_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let repos = RepositoryService::new(store);
        let apps = "app/*".parse().unwrap();
        let pusher = Principal::Direct(Subject::token("1", "ci", &[Role::Push], &[apps]));
        let refused = repos.delete_repository(&pusher, "app/web").await;
        assert!(
            matches!(&refused, Err(ServiceError::Access(AccessError::Denied(m)))
                if m == "token 'ci' may not delete repository 'app/web'"),
            "{refused:?}"
        );
        let hidden = repos.show(&pusher, "other/x").await;
        assert!(matches!(hidden, Err(ServiceError::Access(_))));
    }
}
