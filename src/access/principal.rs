//! Who a request comes from, and the checks every route and service asks of it.

use super::{Action, Grant, RepoPattern, Role};

/// Whose credentials a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKind {
    /// A user token (`kiln token create`).
    Token { id: String, name: String },
    /// Credentials the server minted for one build run, to push its images.
    Run { run_id: String },
    /// A build host's token.
    Worker { id: String, name: String },
}

/// An authenticated holder of credentials and everything those credentials allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    pub roles: Vec<Role>,
    pub grants: Vec<Grant>,
}

impl Subject {
    /// A user token's subject: its roles applied to each of its repository patterns.
    pub fn token(id: &str, name: &str, roles: &[Role], patterns: &[RepoPattern]) -> Subject {
        let owner = roles.contains(&Role::Owner);
        let mut actions: Vec<Action> = roles.iter().flat_map(|r| r.actions()).copied().collect();
        actions.sort();
        actions.dedup();
        let grants = if owner {
            vec![Grant::new(RepoPattern::any(), &Action::ALL)]
        } else {
            patterns
                .iter()
                .map(|p| Grant::new(p.clone(), &actions))
                .collect()
        };
        Subject {
            kind: SubjectKind::Token {
                id: id.into(),
                name: name.into(),
            },
            roles: roles.to_vec(),
            grants,
        }
    }

    pub fn worker(id: &str, name: &str) -> Subject {
        Subject {
            kind: SubjectKind::Worker {
                id: id.into(),
                name: name.into(),
            },
            roles: vec![Role::Worker],
            grants: Vec::new(),
        }
    }

    pub fn run(run_id: &str, grants: Vec<Grant>) -> Subject {
        Subject {
            kind: SubjectKind::Run {
                run_id: run_id.into(),
            },
            roles: Vec::new(),
            grants,
        }
    }

    pub fn permits(&self, repo: &str, action: Action) -> bool {
        self.grants.iter().any(|g| g.permits(repo, action))
    }

    /// How refusals name the holder: `token 'ci'`, `run ca12`, `worker 'host1'`.
    pub fn describe(&self) -> String {
        match &self.kind {
            SubjectKind::Token { name, .. } => format!("token '{name}'"),
            SubjectKind::Run { run_id } => format!("run {run_id}"),
            SubjectKind::Worker { name, .. } => format!("worker '{name}'"),
        }
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials. Only `/healthz` and the token endpoint serve it.
    Anonymous,
    /// Credentials presented directly: a token secret (Bearer or Basic) or run credentials.
    Direct(Subject),
    /// A short-lived registry token from `/token`: only the repositories and actions it was
    /// issued for, which are at most what its subject may do.
    Scoped {
        subject: Subject,
        /// Exact repository names (no wildcards) with their granted actions.
        granted: Vec<(String, Vec<Action>)>,
    },
}

/// Why a principal may not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No credentials: the client should authenticate (401 with a challenge).
    #[error("authentication required")]
    Unauthenticated,
    /// A scoped registry token that lacks the scope its subject holds: the client should fetch
    /// a token for this scope (401 with a challenge naming it).
    #[error("the token's scope does not cover this request")]
    InsufficientScope,
    /// The credentials are good but do not allow this (403).
    #[error("{0}")]
    Denied(String),
}

impl Principal {
    pub fn subject(&self) -> Option<&Subject> {
        match self {
            Principal::Anonymous => None,
            Principal::Direct(s) | Principal::Scoped { subject: s, .. } => Some(s),
        }
    }

    /// The id of the user token behind these credentials: what runs and uploads record as
    /// their owner, since a name can be reused after a revocation.
    pub fn token_id(&self) -> Option<&str> {
        match &self.subject()?.kind {
            SubjectKind::Token { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The run these credentials were minted for, to record which run pushed a manifest.
    pub fn run_id(&self) -> Option<&str> {
        match &self.subject()?.kind {
            SubjectKind::Run { run_id } => Some(run_id),
            _ => None,
        }
    }

    pub fn authorize(&self, repo: &str, action: Action) -> Result<(), AccessError> {
        let subject = match self {
            Principal::Anonymous => return Err(AccessError::Unauthenticated),
            Principal::Direct(s) => s,
            Principal::Scoped { subject, granted } => {
                if granted
                    .iter()
                    .any(|(r, actions)| r == repo && actions.contains(&action))
                {
                    return Ok(());
                }
                subject
            }
        };
        if !subject.permits(repo, action) {
            return Err(AccessError::Denied(format!(
                "{} may not {action} repository '{repo}'",
                subject.describe()
            )));
        }
        match self {
            Principal::Scoped { .. } => Err(AccessError::InsufficientScope),
            _ => Ok(()),
        }
    }

    /// Whether the principal may `action` at least one repository: the gate for API calls
    /// that are not about one repository, such as submitting or listing runs.
    pub fn require_any(&self, action: Action) -> Result<(), AccessError> {
        let subject = self.user()?;
        if subject.grants.iter().any(|g| g.actions.contains(&action)) {
            Ok(())
        } else {
            Err(AccessError::Denied(format!(
                "{} has no {action} role",
                subject.describe()
            )))
        }
    }

    /// Whether the principal is an owner's token, presented directly: `require_owner` without
    /// building the refusal.
    pub fn is_owner(&self) -> bool {
        matches!(self, Principal::Direct(s)
            if matches!(s.kind, SubjectKind::Token { .. }) && s.roles.contains(&Role::Owner))
    }

    /// Tokens and workers are managed by owners only.
    pub fn require_owner(&self) -> Result<(), AccessError> {
        let subject = self.user()?;
        if subject.roles.contains(&Role::Owner) {
            Ok(())
        } else {
            Err(AccessError::Denied(format!(
                "{} is not an owner: this needs the owner role",
                subject.describe()
            )))
        }
    }

    /// Saved tasks are created, changed and deleted by owners and by tokens with the tasks
    /// role.
    pub fn require_tasks(&self) -> Result<(), AccessError> {
        let subject = self.user()?;
        if subject.roles.contains(&Role::Owner) || subject.roles.contains(&Role::Tasks) {
            Ok(())
        } else {
            Err(AccessError::Denied(format!(
                "{} may not manage tasks: this needs the owner or tasks role",
                subject.describe()
            )))
        }
    }

    /// The worker protocol is for worker tokens only.
    pub fn require_worker(&self) -> Result<(), AccessError> {
        match self {
            Principal::Anonymous => Err(AccessError::Unauthenticated),
            Principal::Direct(s) if s.roles.contains(&Role::Worker) => Ok(()),
            Principal::Direct(s) | Principal::Scoped { subject: s, .. } => Err(
                AccessError::Denied(format!("{} is not a worker token", s.describe())),
            ),
        }
    }

    /// A user token presented directly: the API does not take registry tokens or worker
    /// tokens.
    fn user(&self) -> Result<&Subject, AccessError> {
        match self {
            Principal::Anonymous => Err(AccessError::Unauthenticated),
            Principal::Direct(s) if matches!(s.kind, SubjectKind::Token { .. }) => Ok(s),
            Principal::Direct(s) | Principal::Scoped { subject: s, .. } => Err(
                AccessError::Denied(format!("{} cannot use the Kiln API", s.describe())),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> RepoPattern {
        s.parse().unwrap()
    }

    #[test]
    fn roles_allow_what_acr_roles_allow() {
        let pull = Principal::Direct(Subject::token("1", "r", &[Role::Pull], &[pat("app/*")]));
        assert!(pull.authorize("app/x", Action::Pull).is_ok());
        assert!(matches!(
            pull.authorize("app/x", Action::Push),
            Err(AccessError::Denied(_))
        ));
        assert!(pull.authorize("other/x", Action::Pull).is_err());

        let push = Principal::Direct(Subject::token("2", "ci", &[Role::Push], &[pat("*")]));
        assert!(push.authorize("a", Action::Push).is_ok());
        let denied = push.authorize("a", Action::Delete).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "token 'ci' may not delete repository 'a'"
        );

        let owner = Principal::Direct(Subject::token("3", "o", &[Role::Owner], &[]));
        assert!(owner.authorize("any/thing", Action::Delete).is_ok());
        assert!(owner.require_owner().is_ok());
        assert!(push.require_owner().is_err());
    }

    #[test]
    fn scoped_tokens_ask_for_more_scope_only_when_the_subject_has_it() {
        let subject = Subject::token("1", "ci", &[Role::Push], &[pat("app/*")]);
        let scoped = Principal::Scoped {
            subject,
            granted: vec![("app/x".into(), vec![Action::Pull])],
        };
        assert!(scoped.authorize("app/x", Action::Pull).is_ok());
        assert_eq!(
            scoped.authorize("app/x", Action::Push),
            Err(AccessError::InsufficientScope)
        );
        assert!(matches!(
            scoped.authorize("other/x", Action::Pull),
            Err(AccessError::Denied(_))
        ));
        assert!(scoped.require_any(Action::Pull).is_err());
    }

    #[test]
    fn workers_only_work() {
        let worker = Principal::Direct(Subject::worker("w", "host1"));
        assert!(worker.require_worker().is_ok());
        assert!(worker.require_any(Action::Pull).is_err());
        assert!(worker.authorize("app", Action::Pull).is_err());
        assert_eq!(
            Principal::Anonymous.require_worker(),
            Err(AccessError::Unauthenticated)
        );
    }
}
