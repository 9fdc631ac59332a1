//! Source triggers: git webhooks (GitHub, GitLab, Gitea, Forgejo) that run a task when its
//! branch is pushed to or a pull request into it is opened or updated.
//!
//! The pure parts (telling hosts apart and checking signatures, reading events, deciding)
//! are apart from the service that records deliveries and queues runs; every run goes
//! through `TaskService::run_triggered`.

mod decide;
mod deliver;
mod event;
mod provider;
pub mod settings;

pub use deliver::{HookError, HookService, Outcome, MAX_BODY};
pub use provider::{github_signature, hmac_hex};
