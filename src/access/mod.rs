//! The access model, mirroring ACR's built-in roles: pull (AcrPull), push = pull + push
//! (AcrPush), delete = pull + delete (AcrDelete; deleting what you cannot see makes no sense),
//! owner (everything, including tokens and workers), and worker (only the worker protocol).
//!
//! A `Principal` is who a request comes from; services ask `principal.authorize(repo,
//! action)`, `require_owner` and friends. These are plain domain types: `service`, `store`,
//! `wire` and `api` all use them, and this module depends on none of them.

mod grants;
mod names;
mod principal;

pub use grants::{Action, Grant, RepoPattern, Role};
pub use names::{TokenName, RUN_USERNAME};
pub use principal::{AccessError, Principal, Subject, SubjectKind};
