//! Git build contexts: `https://host/org/repo.git#<ref>:<subdir>`, fetched with libgit2.
//!
//! The worker clones only what the build needs: the one ref, at depth 1 when the server
//! allows it, then its submodules. A private repository gets the run's token as HTTP basic
//! credentials. URLs can carry credentials (`https://user:pass@host/...`), so every error
//! message and `Debug` output redacts the userinfo. The context's URL and every
//! submodule's pass the worker's fetch policy (`allowed`) before libgit2 connects.

mod allowed;
mod auth;
mod error;
mod fetch;
mod resolve;
mod source;
mod subdir;
mod submodules;
#[cfg(test)]
mod test_repo;

use std::path::PathBuf;

pub use error::GitError;
pub use fetch::fetch;
pub use source::{looks_like_git, GitSource};

/// A fetched repository, checked out at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The build context: the checkout's root joined with the source's subdirectory.
    pub context_dir: PathBuf,
    /// The full SHA of the checked-out commit.
    pub commit: String,
    /// The branch name when the reference was a branch or the remote's default branch.
    pub branch: Option<String>,
}
