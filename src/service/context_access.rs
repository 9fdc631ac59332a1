//! Who may use an uploaded build context. A context can hold anything a project has, so it is
//! readable only by owners, the tokens that uploaded it, and whoever can see a run that
//! builds it. Anyone else is told it does not exist (404), as for a run ID they cannot see:
//! a digest is no secret (`run show` prints it), but whether a given content was uploaded is.

use bytes::Bytes;
use futures::Stream;
use kiln_worker::protocol::{ContextSource, Digest};

use super::contexts::{ContextError, StoredContext};
use super::runs::{may, RunService};
use super::ServiceError;
use crate::access::{Action, Principal};

impl RunService {
    /// Stores an upload from `who`, who needs a push role somewhere, and records `who` as one
    /// of its uploaders. `declared` is the length the client announced, refused up front when
    /// it is over the limit.
    pub async fn upload_context<S, E>(
        &self,
        who: &Principal,
        declared: Option<u64>,
        body: S,
    ) -> Result<StoredContext, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        who.require_any(Action::Push)?;
        let limit = self.contexts.limits.max_size;
        if declared.is_some_and(|len| len > limit) {
            return Err(ContextError::TooLarge { limit }.into());
        }
        let stored = self.contexts.put(body).await?;
        if let Some(token) = who.token_id() {
            self.store
                .record_context_upload(stored.digest.as_str(), token, self.now_ms())
                .await?;
        }
        Ok(stored)
    }

    /// Whether the context is stored and `who` may build it again: what the CLI asks before
    /// skipping an upload.
    pub async fn has_context(
        &self,
        who: &Principal,
        digest: &Digest,
    ) -> Result<bool, ServiceError> {
        who.require_any(Action::Push)?;
        Ok(self.contexts.exists(digest) && self.may_read_context(who, digest).await?)
    }

    /// The archive, for whoever may read it; anyone else gets the 404 of an unknown digest.
    pub async fn open_context(
        &self,
        who: &Principal,
        digest: &Digest,
    ) -> Result<tokio::fs::File, ServiceError> {
        who.require_any(Action::Pull)?;
        let missing = || ServiceError::NotFound(format!("build context {digest} not found"));
        if !self.may_read_context(who, digest).await? {
            return Err(missing());
        }
        self.contexts.open(digest).await.map_err(|_| missing())
    }

    /// A run may only build an uploaded context its submitter may read, or knowing a digest
    /// from `run show` would be enough to read someone else's sources through a new run.
    pub(super) async fn check_context_access(
        &self,
        context: &ContextSource,
        who: &Principal,
    ) -> Result<(), ServiceError> {
        match context {
            ContextSource::Upload { digest } if !self.may_read_context(who, digest).await? => {
                Err(ServiceError::Invalid(format!(
                    "unknown build context {digest}: upload it with POST /api/contexts first"
                )))
            }
            _ => Ok(()),
        }
    }

    async fn may_read_context(
        &self,
        who: &Principal,
        digest: &Digest,
    ) -> Result<bool, ServiceError> {
        if who.is_owner() {
            return Ok(true);
        }
        if let Some(token) = who.token_id() {
            if self
                .store
                .context_uploaded_by(digest.as_str(), token)
                .await?
            {
                return Ok(true);
            }
        }
        let runs = self.store.runs_with_context(digest.as_str()).await?;
        Ok(runs.iter().any(|run| may(run, who, Action::Pull)))
    }
}
