//! Signed, short-lived tokens: the registry tokens `/token` issues (Docker's token protocol)
//! and the credentials minted for one build run.
//!
//! Both are HS256 JWTs over `Claims`, signed with a key kept in the database so that every
//! API node sharing it accepts what any node issued. A registry token names its parent token,
//! and verification loads that token again: revoking it ends every registry token issued
//! from it at once, without a deny list.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use kiln_worker::protocol::{RunId, Secret};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::tokens::random_bytes;
use super::{AuthError, AuthService};
use crate::access::{Action, Grant, Principal, RepoPattern, Subject};
use crate::store::Store;

/// How long a registry token lasts; Docker fetches a new one when it runs out.
pub const REGISTRY_TOKEN_TTL: Duration = Duration::from_secs(300);
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const ISSUER: &str = "kiln";

pub(super) struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub(super) async fn load(store: &Store, now_ms: i64) -> Result<Signer, AuthError> {
        let key = store.signing_key(&random_bytes::<32>(), now_ms).await?;
        Ok(Signer { key })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn sign(&self, claims: &Claims) -> Secret {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Secret::new(format!("{signed}.{signature}"))
    }

    /// The claims of a token this key signed, for `purpose`, not yet expired at `now_ms`.
    fn verify(&self, token: &str, purpose: Purpose, now_ms: i64) -> Result<Claims, AuthError> {
        let invalid = || AuthError::Unauthenticated("invalid or expired registry token".into());
        let (signed, signature) = token.rsplit_once('.').ok_or_else(invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&signature).map_err(|_| invalid())?;
        let (_, payload) = signed.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if claims.purpose != purpose || claims.exp * 1000 <= now_ms {
            return Err(invalid());
        }
        Ok(claims)
    }
}

/// What a signed token may be used as: a registry token is not run credentials, nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Purpose {
    Registry,
    Run,
}

/// Whose rights a signed token carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Parent {
    /// A stored token, loaded again on every use.
    Token { id: String },
    /// A build run; its grants travel in the token, as there is no row to load.
    Run { id: String, grants: Vec<GrantClaim> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrantClaim {
    pattern: RepoPattern,
    actions: Vec<Action>,
}

/// One entry of Docker's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    #[serde(rename = "use")]
    purpose: Purpose,
    parent: Parent,
    access: Vec<Access>,
    /// Seconds since the epoch, as JWTs count.
    iat: i64,
    exp: i64,
}

/// What `/token` answers.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: Secret,
    pub expires_in: Duration,
    pub issued_at: DateTime<Utc>,
}

/// A scope of Docker's token protocol: `repository:app/web:pull,push` or `registry:catalog:*`.
fn parse_scope(scope: &str) -> Result<Access, AuthError> {
    let invalid = || {
        AuthError::Invalid(format!(
            "invalid scope '{scope}': expected e.g. repository:app/web:pull,push"
        ))
    };
    let (kind, rest) = scope.split_once(':').ok_or_else(invalid)?;
    // Names may hold a registry's port (`host:5000/app`), so the actions follow the last colon.
    let (name, actions) = rest.rsplit_once(':').ok_or_else(invalid)?;
    if name.is_empty() {
        return Err(invalid());
    }
    Ok(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions.split(',').map(str::to_string).collect(),
    })
}

/// What of `asked` the subject may have: unknown actions and repositories it may not touch
/// are dropped, as Docker's token servers do, and the registry then refuses the request.
fn grant(subject: &Subject, asked: Access) -> Option<Access> {
    let actions: Vec<String> = match asked.kind.as_str() {
        "repository" => asked
            .actions
            .into_iter()
            .filter(|a| Action::parse(a).is_some_and(|a| subject.permits(&asked.name, a)))
            .collect(),
        // Anyone signed in may list the catalog; it shows only repositories they may pull.
        "registry" if asked.name == "catalog" => asked.actions,
        _ => Vec::new(),
    };
    (!actions.is_empty()).then_some(Access { actions, ..asked })
}

impl AuthService {
    /// A registry token for `scopes` (each possibly several, space-separated), granting what
    /// the subject holds of them. It lasts `REGISTRY_TOKEN_TTL`, and never beyond
    /// `not_after` (Unix ms), when the credentials it was issued for end earlier.
    pub(super) fn issue_registry_token(
        &self,
        subject: &Subject,
        not_after: Option<i64>,
        scopes: &[String],
    ) -> Result<IssuedToken, AuthError> {
        let mut access = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
            if let Some(granted) = grant(subject, parse_scope(scope)?) {
                access.push(granted);
            }
        }
        let now = self.clock.now_ms();
        let mut exp = now + REGISTRY_TOKEN_TTL.as_millis() as i64;
        if let Some(limit) = not_after {
            exp = exp.min(limit);
        }
        let claims = Claims {
            iss: ISSUER.into(),
            purpose: Purpose::Registry,
            parent: parent_of(subject),
            access,
            iat: now / 1000,
            exp: exp / 1000,
        };
        Ok(IssuedToken {
            token: self.signer.sign(&claims),
            expires_in: Duration::from_secs((claims.exp - claims.iat).max(0) as u64),
            issued_at: DateTime::from_timestamp(claims.iat, 0).unwrap_or_default(),
        })
    }

    /// The principal of a registry token: its parent's subject, scoped to what was granted.
    pub(super) async fn verify_registry_token(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .signer
            .verify(token, Purpose::Registry, self.clock.now_ms())?;
        let subject = match claims.parent {
            Parent::Token { id } => self
                .live_token_by_id(&id)
                .await?
                .ok_or_else(|| {
                    AuthError::Unauthenticated(
                        "the token this registry token was issued for was revoked".into(),
                    )
                })?
                .subject(),
            Parent::Run { id, grants } => {
                self.ensure_run_is_live(&id).await?;
                run_subject(id, grants)
            }
        };
        let granted = claims
            .access
            .into_iter()
            .filter(|a| a.kind == "repository")
            .map(|a| {
                let actions = a.actions.iter().filter_map(|s| Action::parse(s)).collect();
                (a.name, actions)
            })
            .collect();
        Ok(Principal::Scoped { subject, granted })
    }

    /// A password for one build run, taken by the registry with the username `kiln-run`
    /// (Basic auth, or at `/token`). It allows what `grants` allow, until `ttl` has passed.
    pub fn mint_run_credentials(&self, run_id: &str, grants: Vec<Grant>, ttl: Duration) -> Secret {
        let now = self.clock.now_ms();
        let grants = grants
            .into_iter()
            .map(|g| GrantClaim {
                pattern: g.pattern,
                actions: g.actions,
            })
            .collect();
        self.signer.sign(&Claims {
            iss: ISSUER.into(),
            purpose: Purpose::Run,
            parent: Parent::Run {
                id: run_id.to_string(),
                grants,
            },
            access: Vec::new(),
            iat: now / 1000,
            exp: (now + ttl.as_millis() as i64) / 1000,
        })
    }

    /// Run credentials, and registry tokens issued from them, end with their run, so that a
    /// finished or canceled run's worker can push nothing more.
    pub(super) async fn ensure_run_is_live(&self, run_id: &str) -> Result<(), AuthError> {
        let ended = || {
            AuthError::Unauthenticated(format!(
                "run {run_id} has ended: its credentials no longer work"
            ))
        };
        let id: RunId = run_id.parse().map_err(|_| ended())?;
        if self.store.is_running(id).await? {
            Ok(())
        } else {
            Err(ended())
        }
    }

    /// The run subject of run credentials, with when they end (Unix ms).
    pub(super) fn verify_run_credentials(
        &self,
        password: &str,
    ) -> Result<(Subject, i64), AuthError> {
        let claims = self
            .signer
            .verify(password, Purpose::Run, self.clock.now_ms())
            .map_err(|_| AuthError::Unauthenticated("invalid or expired run credentials".into()))?;
        match claims.parent {
            Parent::Run { id, grants } => Ok((run_subject(id, grants), claims.exp * 1000)),
            Parent::Token { .. } => Err(AuthError::Unauthenticated(
                "invalid or expired run credentials".into(),
            )),
        }
    }
}

fn run_subject(id: String, grants: Vec<GrantClaim>) -> Subject {
    let grants = grants
        .into_iter()
        .map(|g| Grant::new(g.pattern, &g.actions))
        .collect();
    Subject::run(&id, grants)
}

fn parent_of(subject: &Subject) -> Parent {
    use crate::access::SubjectKind;
    match &subject.kind {
        SubjectKind::Token { id, .. } | SubjectKind::Worker { id, .. } => {
            Parent::Token { id: id.clone() }
        }
        SubjectKind::Run { run_id } => Parent::Run {
            id: run_id.clone(),
            grants: subject
                .grants
                .iter()
                .map(|g| GrantClaim {
                    pattern: g.pattern.clone(),
                    actions: g.actions.clone(),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn signer() -> Signer {
        Signer {
            key: b"test key".to_vec(),
        }
    }

    fn claims(purpose: Purpose, exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            purpose,
            parent: Parent::Token { id: "t1".into() },
            access: Vec::new(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn only_untampered_unexpired_tokens_of_the_right_purpose_verify() {
        let s = signer();
        let later = now_ms() / 1000 + 60;
        let token = s.sign(&claims(Purpose::Registry, later));
        assert!(s
            .verify(token.expose(), Purpose::Registry, now_ms())
            .is_ok());
        assert!(s.verify(token.expose(), Purpose::Run, now_ms()).is_err());

        let other = Signer {
            key: b"other".to_vec(),
        };
        assert!(other
            .verify(token.expose(), Purpose::Registry, now_ms())
            .is_err());

        let (signed, sig) = token.expose().rsplit_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims(Purpose::Registry, later + 9999)).unwrap());
        let header = signed.split_once('.').unwrap().0;
        let forged = format!("{header}.{forged_claims}.{sig}");
        assert!(s.verify(&forged, Purpose::Registry, now_ms()).is_err());

        let expired = s.sign(&claims(Purpose::Registry, now_ms() / 1000 - 1));
        assert!(s
            .verify(expired.expose(), Purpose::Registry, now_ms())
            .is_err());
        assert!(s
            .verify("not a token", Purpose::Registry, now_ms())
            .is_err());
    }

    #[test]
    fn scopes_parse_like_docker_writes_them() {
        let a = parse_scope("repository:host:5000/app:pull,push").unwrap();
        assert_eq!(a.kind, "repository");
        assert_eq!(a.name, "host:5000/app");
        assert_eq!(a.actions, ["pull", "push"]);
        assert!(parse_scope("repository").is_err());
        assert!(parse_scope("repository::pull").is_err());
    }

    #[test]
    fn grants_are_what_was_asked_and_is_held() {
        let pull = Subject::token("1", "r", &[Role::Pull], &["app/*".parse().unwrap()]);
        let asked = parse_scope("repository:app/x:pull,push").unwrap();
        assert_eq!(grant(&pull, asked).unwrap().actions, ["pull"]);
        assert!(grant(&pull, parse_scope("repository:other/x:pull").unwrap()).is_none());
        assert!(grant(&pull, parse_scope("registry:catalog:*").unwrap()).is_some());
        assert!(grant(&pull, parse_scope("repository:app/x:frob").unwrap()).is_none());
    }
}
