//! Locks (ACR's changeableAttributes) and what they refuse, in one place for the registry
//! protocol (`/v2`, `/acr/v1`) and the management API, so both refuse alike:
//! - a push into a write-disabled repository, or one that would move a write-disabled tag to
//!   another manifest (pushing the manifest it already names changes nothing and is allowed);
//! - a delete of anything write- or delete-disabled: as in ACR, `writeEnabled=false` locks an
//!   image against deletion too (ACR's "lock an image"); `deleteEnabled=false` alone still
//!   lets a tag move. Deleting a manifest deletes its tags, so a locked tag pointing at it
//!   locks it; anything in a locked repository is locked.

pub use crate::store::registry::LockScope;

use crate::store::registry::{Attributes, Lock, LockKind};
use crate::store::{Store, StoreError};
use crate::wire::registry::{AttributesUpdate, ChangeableAttributes};

impl From<Attributes> for ChangeableAttributes {
    fn from(a: Attributes) -> ChangeableAttributes {
        ChangeableAttributes {
            delete_enabled: a.delete_enabled,
            write_enabled: a.write_enabled,
            ..ChangeableAttributes::default()
        }
    }
}

/// Why deleting `scope` in `repository` is refused, if it is: `tag app/web:v1 is locked
/// (deleteEnabled=false)`, naming the thing itself when it is locked, else what locks it.
pub async fn delete_refusal(
    store: &Store,
    repository: &str,
    scope: LockScope<'_>,
) -> Result<Option<String>, StoreError> {
    let locks = store.locks(repository, scope).await?;
    let Some(lock) = locks.iter().find(|l| is_target(l, scope)).or(locks.first()) else {
        return Ok(None);
    };
    let attribute = match lock.attributes.delete_enabled {
        false => "deleteEnabled",
        true => "writeEnabled",
    };
    let mut message = format!(
        "{} is locked ({attribute}=false)",
        describe(repository, lock)
    );
    if !is_target(lock, scope) {
        let target = describe_scope(repository, scope);
        message.push_str(&format!(", so {target} cannot be deleted"));
    }
    Ok(Some(message))
}

/// Why pushing the manifest `digest` to `repository`, under `tag` if any, is refused, if it
/// is.
pub async fn push_refusal(
    store: &Store,
    repository: &str,
    tag: Option<&str>,
    digest: &str,
) -> Result<Option<String>, StoreError> {
    let scope = match tag {
        Some(t) => LockScope::Tag(t),
        None => LockScope::Manifest(digest),
    };
    let locks = store.locks(repository, scope).await?;
    let refusing = locks.iter().find(|l| {
        !l.attributes.write_enabled
            && match l.kind {
                LockKind::Repository => true,
                LockKind::Tag => l.digest.as_deref() != Some(digest),
                LockKind::Manifest => false,
            }
    });
    Ok(refusing.map(|lock| {
        format!(
            "{} is locked (writeEnabled=false)",
            describe(repository, lock)
        )
    }))
}

/// Checks a lock change before it is stored: Kiln governs reading and listing with tokens,
/// so those cannot be turned off, and a change must name something to change.
pub fn validate(update: &AttributesUpdate) -> Result<(), String> {
    if update.read_enabled == Some(false) || update.list_enabled == Some(false) {
        return Err(
            "readEnabled and listEnabled cannot be turned off in Kiln: tokens decide who reads"
                .into(),
        );
    }
    if update.write_enabled.is_none() && update.delete_enabled.is_none() {
        return Err("name writeEnabled or deleteEnabled (true or false) to change".into());
    }
    Ok(())
}

fn is_target(lock: &Lock, scope: LockScope<'_>) -> bool {
    match (scope, lock.kind) {
        (LockScope::Repository, LockKind::Repository) => true,
        (LockScope::Tag(t), LockKind::Tag) | (LockScope::Manifest(t), LockKind::Manifest) => {
            lock.name == t
        }
        _ => false,
    }
}

/// `repository app/web`, `tag app/web:v1`, `manifest app/web@sha256:…`: what `lock` is on.
fn describe(repository: &str, lock: &Lock) -> String {
    let scope = match lock.kind {
        LockKind::Repository => LockScope::Repository,
        LockKind::Tag => LockScope::Tag(&lock.name),
        LockKind::Manifest => LockScope::Manifest(&lock.name),
    };
    describe_scope(repository, scope)
}

/// The item `scope` names, as refusals say it.
fn describe_scope(repository: &str, scope: LockScope<'_>) -> String {
    match scope {
        LockScope::Repository => format!("repository {repository}"),
        LockScope::Tag(t) => format!("tag {repository}:{t}"),
        LockScope::Manifest(d) => format!("manifest {repository}@{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_and_listing_stay_on() {
        let off = AttributesUpdate {
            read_enabled: Some(false),
            delete_enabled: Some(false),
            ..Default::default()
        };
        assert!(validate(&off).unwrap_err().contains("readEnabled"));
        assert!(validate(&AttributesUpdate::default()).is_err());
        let lock = AttributesUpdate {
            delete_enabled: Some(false),
            list_enabled: Some(true),
            ..Default::default()
        };
        assert_eq!(validate(&lock), Ok(()));
    }
}
