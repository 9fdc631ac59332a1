//! Orchestration and rules. Services own the store; routes call services; services never
//! call routes.

pub mod auth;
pub mod collector;
mod context_access;
pub mod contexts;
mod deferred_file;
pub mod events;
mod lifecycle;
pub mod locks;
pub mod logs;
pub mod origin;
mod positions;
mod purge;
mod purge_gc;
pub mod queue;
pub mod registry;
pub mod repositories;
pub mod retention;
pub mod runs;
mod scan_match;
mod scan_runs;
pub mod scans;
pub mod source_triggers;
mod submit;
mod submit_steps;
mod task_runs;
mod task_timers;
pub use task_runs::Firing;
mod task_values;
pub mod tasks;
pub mod triggers;
pub mod vulndb;
mod wakeups;
pub mod webhooks;
pub mod workers;

use std::ops::RangeInclusive;
use std::time::Duration;

use kiln_worker::protocol::RegistryCredential;

use crate::clock::SharedClock;
use crate::store::StoreError;

/// A stored time (Unix milliseconds) as the API shows it.
pub fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Rules the run and queue services apply, from the server's configuration.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Prefixed to image names that name no registry: `--registry`, else Kiln's own.
    pub default_registry: String,
    /// Kiln's own registry as workers reach it (`host:port`). Runs pushing there get
    /// credentials minted for them instead of stored ones.
    pub own_registry: String,
    pub credentials: Vec<RegistryCredential>,
    pub default_timeout_secs: u64,
    pub timeout_range: RangeInclusive<u64>,
    /// How long a worker's claim on a run lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// How often workers heartbeat; also how fast they learn of a cancel.
    pub heartbeat_interval: Duration,
    /// How long a run waits for a worker unless it asks otherwise (`--queue-timeout`; zero:
    /// no limit).
    pub queue_timeout: Duration,
    /// The clock every time the run and queue services stamp or compare is read from.
    pub clock: SharedClock,
    /// `--allow-privileged-steps`: task steps may run privileged containers.
    pub allow_privileged_steps: bool,
}

/// Errors a service reports to its caller. Routes map them to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller's view is out of date: e.g. a worker whose attempt was superseded.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Context(#[from] contexts::ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] logs::LogError),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error("I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A worker's attempt was superseded or its run ended: the worker must stop.
    #[error("{0}")]
    StaleAttempt(String),
    /// A worker speaks a protocol this server no longer serves: it must be upgraded.
    #[error("{0}")]
    UpgradeRequired(String),
    /// A lock (`writeEnabled`/`deleteEnabled`) refuses the change; the message names it.
    #[error("{0}")]
    Locked(String),
}
