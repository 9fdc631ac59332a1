//! Who may do what. `crate::access` is the pure model (roles, repository patterns,
//! principals); `AuthService` turns credentials into a `Principal`: `tokens` manages the stored tokens,
//! `registry_token` signs the short-lived tokens of Docker's token protocol and run
//! credentials, and `credentials` decides which kinds of credentials each surface takes.

mod credentials;
mod registry_token;
mod tokens;

pub use credentials::Credentials;
pub use registry_token::{IssuedToken, REGISTRY_TOKEN_TTL};
pub use tokens::{random_bytes, NewToken, EMBEDDED_WORKER_TOKEN, OWNER_TOKEN};

use crate::access::AccessError;
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

/// Tokens, registry tokens and run credentials, over the store.
pub struct AuthService {
    store: Store,
    signer: registry_token::Signer,
    /// Token expiry, last use and registry token lifetimes are read from it.
    clock: SharedClock,
}

/// Errors of the auth service. Routes map them to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, unknown, revoked or expired credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthService {
    /// Loads the signing key, creating it on the first start.
    pub async fn new(store: Store, clock: SharedClock) -> Result<AuthService, AuthError> {
        let signer = registry_token::Signer::load(&store, clock.now_ms()).await?;
        Ok(AuthService {
            store,
            signer,
            clock,
        })
    }
}
