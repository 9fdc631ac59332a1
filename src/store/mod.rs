//! All SQL lives here. Services own a `Store`; routes never touch it.
//!
//! SQLite is the embedded default. Queries are checked at run time (no offline query cache),
//! and each backend keeps its own migrations under `migrations/<backend>/`.

mod base_images;
mod contexts;
mod events;
mod jobs;
mod lifecycle;
mod queue;
pub mod registry;
mod repositories;
mod repository_pages;
mod runs;
mod scans;
mod sealed;
mod secret_rows;
mod source_triggers;
mod steps;
mod tasks;
mod timers;
mod tokens;
mod vulndb;
mod webhooks;

pub use base_images::{NewBaseImage, TrackedBaseImage};
pub use events::{Event, EventRow};
pub use jobs::{requirements_met, StoredJob};
pub use lifecycle::EndedRun;
pub use queue::{Ahead, QueuedRun};
pub use repositories::{ManifestRow, RepositoryRow, TagRow, TagSort};
pub use repository_pages::TagPage;
pub use runs::{Finish, NewRun, RunRow, StatusChange};
pub use scans::StoredReport;
pub use sealed::Sealer;
pub use source_triggers::{DeliveryRow, NewDelivery, SourceTriggers};
pub use steps::step_status_of;
pub use tasks::{TaskRow, TaskSecrets, TaskSpec, TaskWrite};
pub use timers::{NewTimer, TimerRow};
pub use tokens::{Inserted, TokenRow};
pub use vulndb::{rfc3339, FoundRecord, NewRecord};
pub use webhooks::{Attempt, WebhookDeliveryRow, WebhookRow};

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
    /// The secret key does not open this database's secrets.
    #[error("the secret key does not match this database: it was sealed with another key")]
    WrongKey,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    sealer: Arc<Sealer>,
    /// Held by the busiest write transactions (submissions, claims, results, heartbeats), so
    /// they queue here in order instead of in SQLite's busy handler, which sleeps in steps of
    /// up to 100 ms: concurrent submitters then add up instead of stalling each other.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Bumped after each commit that recorded an event, so consumers wake at once; they read
    /// the table itself, so a missed bump only delays them until their next poll.
    events: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Store {
    /// Opens a database with a throwaway secret key: for tests and tools that never reopen it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the operating system's random source works");
        Store::open_sealed(path, &key).await
    }

    /// Opens (creating if needed) the SQLite database at `path`, applies migrations, checks
    /// that `key` is the one its secrets are sealed with (`StoreError::WrongKey` if not) and
    /// seals secrets stored in plain text by earlier versions.
    pub async fn open_sealed(path: &Path, key: &[u8; 32]) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            // WAL lets log followers and list queries read while a worker's result is written.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Freed pages are zeroed, so a secret dropped from a row does not linger in the file.
            .pragma("secure_delete", "on");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let store = Store {
            pool,
            sealer: Arc::new(Sealer::new(key)),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            events: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        store.check_key().await?;
        store.seal_plain_secrets().await?;
        Ok(store)
    }

    /// Changes each time events were committed: register before reading the table, so an
    /// event committed in between is not missed.
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.subscribe()
    }

    /// Wakes the event consumers: call after committing a transaction that recorded events.
    fn announce_events(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `detail` lines of a query's `EXPLAIN QUERY PLAN`, for tests that check a hot query
/// seeks its index instead of scanning.
#[cfg(test)]
pub(crate) async fn query_plan<'q>(
    store: &Store,
    explain: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> Vec<String> {
    use sqlx::Row as _;
    explain
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("detail"))
        .collect()
}
