//! Every registry operation's authorisation, so that no caller (route, task, trigger) can
//! reach content without it.

use super::{RegistryError, RepoName};
use crate::access::{Action, Principal};

/// Pushing needs pull too: a client checks what is there before sending it.
pub(super) const PUSH: &[Action] = &[Action::Pull, Action::Push];

/// The scope `_catalog` needs in Docker's token protocol.
pub(super) const CATALOG_SCOPE: &str = "registry:catalog:*";

/// Checks that `who` may do all of `actions` on `repo`. A refusal names every action the
/// operation needs, so one token request covers it.
pub(super) fn authorize(
    who: &Principal,
    repo: &RepoName,
    actions: &[Action],
) -> Result<(), RegistryError> {
    for &action in actions {
        who.authorize(repo.as_str(), action)
            .map_err(|error| RegistryError::Access {
                error,
                scope: scope(repo, actions),
            })?;
    }
    Ok(())
}

/// `repository:<name>:<action>,<action>`, one scope of Docker's token protocol. Several are
/// joined with a space in one `scope` value, as the distribution registry's challenges do.
pub(super) fn scope(repo: &RepoName, actions: &[Action]) -> String {
    let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    format!("repository:{repo}:{}", actions.join(","))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::access::{AccessError, Role, Subject};
    use crate::service::registry::{Digest, RegistryService};
    use crate::store::Store;

    fn reader() -> Principal {
        let apps = "app/*".parse().unwrap();
        Principal::Direct(Subject::token("1", "reader", &[Role::Pull], &[apps]))
    }

    /// Called directly, as a task or a dashboard would, the service refuses on its own.
    #[tokio::test]
    async fn the_service_refuses_an_under_privileged_caller() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let registry = RegistryService::new(
            store,
            dir.path().join("registry"),
            Duration::ZERO,
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let repo = RepoName::try_from("app/web").unwrap();
        let denied = registry.start_upload(&reader(), &repo).await.unwrap_err();
        assert!(
            matches!(&denied, RegistryError::Access { error: AccessError::Denied(_), scope }
                if scope == "repository:app/web:pull,push"),
            "{denied:?}"
        );
        let digest = Digest::sha256_of(b"");
        let other = RepoName::try_from("other/x").unwrap();
        let hidden = registry.stat_blob(&reader(), &other, &digest).await;
        assert!(matches!(hidden, Err(RegistryError::Access { .. })));
        let anonymous = registry.catalog(&Principal::Anonymous, None, None).await;
        assert!(matches!(
            anonymous,
            Err(RegistryError::Access { error: AccessError::Unauthenticated, scope })
                if scope == CATALOG_SCOPE
        ));
        let gc = registry.collect_garbage(&reader(), true).await;
        assert!(matches!(gc, Err(RegistryError::Access { .. })));
    }
}
