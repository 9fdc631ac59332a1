//! Stored tokens: create, list, revoke, and resolve a presented secret to its subject.
//!
//! A secret is `kiln_` + 32 random bytes in base64url. Only its SHA-256 is stored. A slow,
//! salted password hash (argon2, bcrypt) exists to make guessing low-entropy passwords
//! expensive; 256 random bits cannot be guessed, so one fast hash is as strong and lets the
//! lookup be a plain index search instead of a hash per stored token on every request.
//! Looking up by hash also means no secret is ever compared byte by byte: response timing
//! depends on the hash of the guess, which says nothing about a real secret.

use std::time::Duration;

use base64::Engine as _;
use kiln_worker::protocol::Secret;
use sha2::{Digest as _, Sha256};

use super::{AuthError, AuthService};
use crate::access::{Principal, RepoPattern, Role, Subject, TokenName};
use crate::service::to_time;
use crate::store::{Inserted, TokenRow};
use crate::wire::Token;

/// The token `kiln serve` creates on its first start, for the CLI on the same machine.
pub const OWNER_TOKEN: &str = "owner";
/// The worker token the embedded workers use; a new secret on every start.
pub const EMBEDDED_WORKER_TOKEN: &str = "embedded-worker";
const SECRET_PREFIX: &str = "kiln_";
/// `last_used_at` is a hint for spotting unused tokens, not an audit log: one write a minute
/// per token at most keeps busy tokens from writing on every request.
const TOUCH_EVERY_MS: i64 = 60_000;
const MAX_EXPIRY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A token to create, checked by `NewToken::validate`.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: TokenName,
    pub roles: Vec<Role>,
    pub repositories: Vec<RepoPattern>,
    pub expires_in: Option<Duration>,
}

impl NewToken {
    /// The role rules: `worker` stands alone, `owner` covers every repository, and the other
    /// roles need at least one repository pattern.
    fn validate(mut self) -> Result<NewToken, AuthError> {
        let invalid = |m: &str| Err(AuthError::Invalid(m.to_string()));
        self.roles.sort();
        self.roles.dedup();
        if self.roles.is_empty() {
            return invalid("give at least one role: pull, push, delete, owner, worker or tasks");
        }
        if self.roles.contains(&Role::Worker) && self.roles.len() > 1 {
            return invalid("the worker role cannot be combined with other roles");
        }
        let broad = self.roles.contains(&Role::Worker) || self.roles.contains(&Role::Owner);
        if broad && !self.repositories.is_empty() {
            return invalid(
                "owner and worker tokens take no repositories (owner covers all of them)",
            );
        }
        if !broad && self.repositories.is_empty() {
            return invalid("give at least one repository pattern, e.g. 'app/*' ('*' for all)");
        }
        if let Some(ttl) = self.expires_in {
            if ttl.is_zero() || ttl > MAX_EXPIRY {
                return invalid("the expiry must be between 1 second and 10 years");
            }
        }
        Ok(self)
    }
}

/// A stored token: its ID, which registry tokens name, and what the API shows of it.
#[derive(Debug, Clone)]
pub(super) struct StoredToken {
    id: String,
    pub(super) shown: Token,
}

impl StoredToken {
    fn from_row(row: TokenRow) -> Result<StoredToken, AuthError> {
        let corrupt = |e: String| AuthError::Store(crate::store::StoreError::Corrupt(e));
        let roles = row
            .roles
            .into_iter()
            .map(Role::try_from)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        let repositories = row
            .repositories
            .into_iter()
            .map(RepoPattern::try_from)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        Ok(StoredToken {
            id: row.id,
            shown: Token {
                name: row.name,
                roles,
                repositories,
                created_at: to_time(row.created_at),
                expires_at: row.expires_at.map(to_time),
                last_used_at: row.last_used_at.map(to_time),
            },
        })
    }

    pub(super) fn subject(&self) -> Subject {
        let t = &self.shown;
        if t.roles.contains(&Role::Worker) {
            Subject::worker(&self.id, &t.name)
        } else {
            Subject::token(&self.id, &t.name, &t.roles, &t.repositories)
        }
    }
}

pub(super) fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `N` bytes from the operating system's random source: token secrets, IDs, keys.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    bytes
}

fn new_secret() -> Secret {
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    Secret::new(format!("{SECRET_PREFIX}{random}"))
}

/// Whether a presented string is shaped like a token secret (and not a registry token).
pub(super) fn is_token_secret(s: &str) -> bool {
    s.starts_with(SECRET_PREFIX)
}

impl AuthService {
    /// Whether `who` may manage tokens (owners only): the API asks before it reads a body.
    pub fn may_manage_tokens(&self, who: &Principal) -> Result<(), AuthError> {
        Ok(who.require_owner()?)
    }

    /// Creates a token, for an owner, and returns it with its secret, which is not kept and
    /// cannot be shown again.
    pub async fn create_token(
        &self,
        who: &Principal,
        new: NewToken,
    ) -> Result<(Token, Secret), AuthError> {
        self.may_manage_tokens(who)?;
        let new = new.validate()?;
        let (row, secret) = row_for(&new, self.clock.now_ms());
        match self
            .store
            .insert_token(&row, &hash(secret.expose()))
            .await?
        {
            Inserted::Created => Ok((StoredToken::from_row(row)?.shown, secret)),
            Inserted::NameTaken => Err(AuthError::Conflict(format!(
                "a token named '{}' already exists: revoke it first or pick another name",
                new.name.as_str()
            ))),
        }
    }

    /// Every token, for an owner; never their secrets.
    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<Token>, AuthError> {
        self.may_manage_tokens(who)?;
        self.store
            .list_tokens()
            .await?
            .into_iter()
            .map(|row| Ok(StoredToken::from_row(row)?.shown))
            .collect()
    }

    /// Deletes a token, for an owner: its secret and every registry token issued from it stop
    /// working at once.
    pub async fn revoke_token(&self, who: &Principal, name: &str) -> Result<(), AuthError> {
        self.may_manage_tokens(who)?;
        self.delete_token(name).await
    }

    /// Deletes the owner token a bootstrap just created when its secret could not be stored,
    /// so nobody is locked out: the next start creates it again. The server acts for nobody
    /// here, so there is no caller to authorise.
    pub async fn discard_bootstrap_owner(&self) -> Result<(), AuthError> {
        self.delete_token(OWNER_TOKEN).await
    }

    async fn delete_token(&self, name: &str) -> Result<(), AuthError> {
        if self.store.delete_token(name).await? {
            Ok(())
        } else {
            Err(AuthError::NotFound(format!("no token named '{name}'")))
        }
    }

    /// The principal a live token acts as, for work done on its behalf without its secret
    /// (a task's triggered runs act as the token that created the task).
    pub async fn principal_of_token(&self, id: &str) -> Result<Principal, AuthError> {
        let token = self.live_token_by_id(id).await?.ok_or_else(revoked)?;
        Ok(Principal::Direct(token.subject()))
    }

    /// The token behind an authenticated subject, for `whoami`.
    pub async fn token_info(&self, id: &str) -> Result<Token, AuthError> {
        let token = self.live_token_by_id(id).await?.ok_or_else(revoked)?;
        Ok(token.shown)
    }

    /// On a fresh server, an owner token for the CLI on the same machine. `None` when an
    /// unexpired owner token exists already. A token merely holding the name (an expired
    /// owner token, say) is replaced.
    pub async fn bootstrap_owner(&self) -> Result<Option<Secret>, AuthError> {
        if self
            .store
            .token_with_role_exists(Role::Owner.as_str(), self.clock.now_ms())
            .await?
        {
            return Ok(None);
        }
        self.replace(OWNER_TOKEN, Role::Owner).await.map(Some)
    }

    /// A fresh worker token for the embedded workers; the previous start's secret stops working.
    pub async fn rotate_embedded_worker_token(&self) -> Result<Secret, AuthError> {
        self.replace(EMBEDDED_WORKER_TOKEN, Role::Worker).await
    }

    async fn replace(&self, name: &str, role: Role) -> Result<Secret, AuthError> {
        let new = NewToken {
            name: TokenName::try_from(name.to_string()).map_err(AuthError::Invalid)?,
            roles: vec![role],
            repositories: Vec::new(),
            expires_in: None,
        };
        let (row, secret) = row_for(&new, self.clock.now_ms());
        self.store
            .replace_token(&row, &hash(secret.expose()))
            .await?;
        Ok(secret)
    }

    /// The token whose secret this is, if it exists and has not expired.
    pub(super) async fn resolve_secret(&self, secret: &str) -> Result<StoredToken, AuthError> {
        let row = self.store.token_by_hash(&hash(secret)).await?;
        let token = self.live(row).await?.ok_or_else(revoked)?;
        Ok(token)
    }

    /// A token by ID, as registry tokens name their parent; `None` once revoked or expired.
    pub(super) async fn live_token_by_id(
        &self,
        id: &str,
    ) -> Result<Option<StoredToken>, AuthError> {
        let row = self.store.token_by_id(id).await?;
        self.live(row).await
    }

    async fn live(&self, row: Option<TokenRow>) -> Result<Option<StoredToken>, AuthError> {
        let Some(row) = row else { return Ok(None) };
        let now = self.clock.now_ms();
        if let Some(expired) = row.expires_at.filter(|&t| t <= now) {
            return Err(AuthError::Unauthenticated(format!(
                "token '{}' expired at {}",
                row.name,
                to_time(expired).to_rfc3339()
            )));
        }
        if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            self.store.touch_token(&row.id, now).await?;
        }
        StoredToken::from_row(row).map(Some)
    }
}

fn revoked() -> AuthError {
    AuthError::Unauthenticated("unknown or revoked token".into())
}

fn row_for(new: &NewToken, now: i64) -> (TokenRow, Secret) {
    let row = TokenRow {
        id: hex::encode(random_bytes::<16>()),
        name: new.name.as_str().to_string(),
        roles: new.roles.iter().map(|r| r.as_str().to_string()).collect(),
        repositories: new.repositories.iter().map(|p| p.to_string()).collect(),
        created_at: now,
        expires_at: new.expires_in.map(|d| now + d.as_millis() as i64),
        last_used_at: None,
    };
    (row, new_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(roles: &[Role], repos: &[&str]) -> NewToken {
        NewToken {
            name: TokenName::try_from("ci".to_string()).unwrap(),
            roles: roles.to_vec(),
            repositories: repos.iter().map(|r| r.parse().unwrap()).collect(),
            expires_in: None,
        }
    }

    #[test]
    fn role_rules_hold() {
        assert!(new(&[Role::Push, Role::Delete], &["app/*"])
            .validate()
            .is_ok());
        assert!(new(&[Role::Owner], &[]).validate().is_ok());
        assert!(new(&[Role::Worker], &[]).validate().is_ok());
        for bad in [
            new(&[], &["app/*"]),
            new(&[Role::Worker, Role::Pull], &["app/*"]),
            new(&[Role::Worker], &["app/*"]),
            new(&[Role::Pull], &[]),
        ] {
            assert!(matches!(bad.validate(), Err(AuthError::Invalid(_))));
        }
        let mut forever = new(&[Role::Pull], &["*"]);
        forever.expires_in = Some(Duration::ZERO);
        assert!(forever.validate().is_err());
    }

    #[test]
    fn secrets_are_random_prefixed_and_hidden() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(is_token_secret(a.expose()));
        assert_eq!(a.expose().len(), SECRET_PREFIX.len() + 43);
        assert_eq!(format!("{a:?}"), "****");
        assert_eq!(hash(a.expose()).len(), 64);
    }
}
