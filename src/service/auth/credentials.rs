//! Which credentials each surface takes, and the principal they resolve to:
//!
//! | credentials                          | API | registry | `/token` |
//! |--------------------------------------|-----|----------|----------|
//! | `Bearer kiln_…` (token secret)       | yes | yes      | yes      |
//! | `Basic name:kiln_…`                  | no  | yes      | yes      |
//! | `Basic kiln-run:<run credentials>`   | no  | yes      | yes      |
//! | `Bearer <registry token>`            | no  | yes      | no       |

use kiln_worker::protocol::Secret;

use super::registry_token::IssuedToken;
use super::tokens::is_token_secret;
use super::{AuthError, AuthService};
use crate::access::{Principal, Role, Subject, SubjectKind, RUN_USERNAME};

/// What an `Authorization` header carried.
#[derive(Debug, Clone)]
pub enum Credentials {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

/// A subject authenticated by credentials presented directly, and when they end (Unix ms).
struct Direct {
    subject: Subject,
    expires_at: Option<i64>,
}

impl AuthService {
    /// The API takes token secrets only.
    pub async fn authenticate_api(&self, creds: &Credentials) -> Result<Principal, AuthError> {
        match creds {
            Credentials::Bearer(secret) if is_token_secret(secret.expose()) => {
                let token = self.resolve_secret(secret.expose()).await?;
                Ok(Principal::Direct(token.subject()))
            }
            Credentials::Bearer(_) => Err(AuthError::Unauthenticated(
                "the API takes a Kiln token (kiln_…), not a registry token".into(),
            )),
            Credentials::Basic { .. } => Err(AuthError::Unauthenticated(
                "the API takes a token as 'Authorization: Bearer kiln_…', not Basic auth".into(),
            )),
        }
    }

    /// The registry takes everything: a token secret, run credentials, or a registry token.
    pub async fn authenticate_registry(&self, creds: &Credentials) -> Result<Principal, AuthError> {
        match creds {
            Credentials::Bearer(token) if !is_token_secret(token.expose()) => {
                self.verify_registry_token(token.expose()).await
            }
            _ => Ok(Principal::Direct(self.direct(creds).await?.subject)),
        }
    }

    /// `/token`: a registry token for what of `scopes` the credentials allow.
    pub async fn token_for_scopes(
        &self,
        creds: &Credentials,
        scopes: &[String],
    ) -> Result<IssuedToken, AuthError> {
        let direct = self.direct(creds).await?;
        self.issue_registry_token(&direct.subject, direct.expires_at, scopes)
    }

    async fn direct(&self, creds: &Credentials) -> Result<Direct, AuthError> {
        let (username, secret) = match creds {
            Credentials::Bearer(secret) => (None, secret),
            Credentials::Basic { username, password } if username == RUN_USERNAME => {
                let (subject, expires_at) = self.verify_run_credentials(password.expose())?;
                if let SubjectKind::Run { run_id } = &subject.kind {
                    self.ensure_run_is_live(run_id).await?;
                }
                return Ok(Direct {
                    subject,
                    expires_at: Some(expires_at),
                });
            }
            Credentials::Basic { username, password } => (Some(username), password),
        };
        if !is_token_secret(secret.expose()) {
            return Err(AuthError::Unauthenticated(
                "expected a Kiln token (kiln_…) as the password".into(),
            ));
        }
        let token = self.resolve_secret(secret.expose()).await?;
        // Docker sends the username it was given; a mismatch is a mistake worth reporting.
        if username.is_some_and(|u| *u != token.shown.name) {
            return Err(AuthError::Unauthenticated(
                "the username must be the token's name".into(),
            ));
        }
        let subject = token.subject();
        if subject.roles.contains(&Role::Worker) {
            return Err(AuthError::Unauthenticated(
                "a worker token only speaks the worker protocol, not the registry".into(),
            ));
        }
        Ok(Direct {
            expires_at: token.shown.expires_at.map(|t| t.timestamp_millis()),
            subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::access::{AccessError, Action, Grant, TokenName};
    use crate::service::auth::NewToken;
    use crate::store::Store;

    async fn service() -> (tempfile::TempDir, AuthService) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let clock = std::sync::Arc::new(crate::clock::SystemClock);
        (dir, AuthService::new(store, clock).await.unwrap())
    }

    /// Queues run ca1 and has a worker claim it, so that its credentials are live.
    async fn running_run(auth: &AuthService) -> String {
        let spec: kiln_worker::protocol::BuildSpec = serde_json::from_value(serde_json::json!({
            "context": {"kind": "tarball", "url": "http://example.com/c.tar"},
            "dockerfile": "Dockerfile", "buildArgs": {}, "target": null,
            "platforms": "linux/amd64", "noCache": false, "push": false, "images": []
        }))
        .unwrap();
        let new = crate::store::NewRun {
            trigger: "Manual".into(),
            platform: spec.platforms.clone(),
            requested_images: Vec::new(),
            job: crate::store::StoredJob::Build(spec),
            timeout_secs: 60,
            git_token: None,
            cache_key: String::new(),
            submitted_by: None,
            submitted_token_id: None,
            registry_grants: Vec::new(),
            queue_timeout_secs: 0,
            task_id: None,
            trigger_detail: None,
        };
        let run = auth
            .store
            .create_run(1, |_| Ok::<_, ()>(new), |_| Ok(()))
            .await
            .unwrap()
            .unwrap();
        let claimed = auth
            .store
            .try_claim(1, "w", "w", None, || 1, i64::MAX - 1)
            .await
            .unwrap();
        assert!(claimed.is_some());
        run.id.to_string()
    }

    fn run_login(password: Secret) -> Credentials {
        Credentials::Basic {
            username: RUN_USERNAME.into(),
            password,
        }
    }

    #[tokio::test]
    async fn run_credentials_act_for_their_run_within_its_grants() {
        let (_dir, auth) = service().await;
        let run = running_run(&auth).await;
        let grants = vec![Grant::new(
            "app/*".parse().unwrap(),
            &[Action::Pull, Action::Push],
        )];
        let password = auth.mint_run_credentials(&run, grants.clone(), Duration::from_secs(60));
        let ended = auth.mint_run_credentials("ca7", grants, Duration::from_secs(60));
        let refused = auth.authenticate_registry(&run_login(ended)).await;
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("run ca7 has ended"),
            "credentials of a run that is not running"
        );
        let creds = run_login(password.clone());

        let direct = auth.authenticate_registry(&creds).await.unwrap();
        assert!(matches!(direct, Principal::Direct(_)));
        assert_eq!(direct.run_id(), Some(run.as_str()));
        assert!(direct.authorize("app/web", Action::Push).is_ok());
        assert!(matches!(
            direct.authorize("other/x", Action::Pull),
            Err(AccessError::Denied(_))
        ));
        assert!(direct.authorize("app/web", Action::Delete).is_err());

        let scope = "repository:app/web:pull,push,delete".to_string();
        let issued = auth.token_for_scopes(&creds, &[scope]).await.unwrap();
        let scoped = auth
            .authenticate_registry(&Credentials::Bearer(issued.token))
            .await
            .unwrap();
        assert_eq!(scoped.run_id(), Some(run.as_str()));
        assert!(scoped.authorize("app/web", Action::Push).is_ok());
        assert!(scoped.authorize("app/web", Action::Delete).is_err());

        assert!(auth.authenticate_api(&creds).await.is_err());
        let as_token = Credentials::Basic {
            username: "ci".into(),
            password,
        };
        assert!(auth.authenticate_registry(&as_token).await.is_err());
        let expired = auth.mint_run_credentials("ca7", Vec::new(), Duration::ZERO);
        assert!(auth
            .authenticate_registry(&run_login(expired))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn only_owners_manage_tokens_whoever_calls_the_service() {
        let (_dir, auth) = service().await;
        let pusher = Principal::Direct(Subject::token("p1", "ci", &[Role::Push], &[]));
        let new = NewToken {
            name: TokenName::try_from("sneaky".to_string()).unwrap(),
            roles: vec![Role::Owner],
            repositories: Vec::new(),
            expires_in: None,
        };
        assert!(matches!(
            auth.create_token(&pusher, new).await,
            Err(AuthError::Access(AccessError::Denied(_)))
        ));
        assert!(auth.list_tokens(&pusher).await.is_err());
        assert!(auth.revoke_token(&pusher, "owner").await.is_err());
        assert!(auth.list_tokens(&Principal::Anonymous).await.is_err());
    }

    #[tokio::test]
    async fn revoking_a_token_ends_the_registry_tokens_issued_from_it() {
        let (_dir, auth) = service().await;
        let owner = Principal::Direct(Subject::token("o1", "owner", &[Role::Owner], &[]));
        let (_, secret) = auth
            .create_token(
                &owner,
                NewToken {
                    name: TokenName::try_from("ci".to_string()).unwrap(),
                    roles: vec![Role::Push],
                    repositories: vec!["app/*".parse().unwrap()],
                    expires_in: None,
                },
            )
            .await
            .unwrap();
        let login = |username: &str| Credentials::Basic {
            username: username.into(),
            password: secret.clone(),
        };
        assert!(auth.token_for_scopes(&login("other"), &[]).await.is_err());
        let scope = "repository:app/web:pull,push".to_string();
        let issued = auth.token_for_scopes(&login("ci"), &[scope]).await.unwrap();
        let bearer = Credentials::Bearer(issued.token);
        let scoped = auth.authenticate_registry(&bearer).await.unwrap();
        assert!(scoped.authorize("app/web", Action::Push).is_ok());

        auth.revoke_token(&owner, "ci").await.unwrap();
        assert!(auth.authenticate_registry(&bearer).await.is_err());
        assert!(auth
            .authenticate_api(&Credentials::Bearer(secret.clone()))
            .await
            .is_err());
    }
}
