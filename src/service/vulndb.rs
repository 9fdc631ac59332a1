//! The vulnerability database: `kiln vulndb import` (owners only) replaces one source with
//! the records of an OSV zip, all or nothing; `kiln vulndb status` shows every source's
//! freshness.

use std::io::Write as _;

use kiln_worker::protocol::{DatabaseState, SourceState};

use super::ServiceError;
use crate::access::{Action, Principal};
use crate::clock::SharedClock;
use crate::store::{rfc3339, NewRecord, Store};
use crate::vuln::osv::{self, ReadError};

pub struct VulnDbService {
    store: Store,
    clock: SharedClock,
}

impl VulnDbService {
    pub fn new(store: Store, clock: SharedClock) -> VulnDbService {
        VulnDbService { store, clock }
    }

    /// Replaces source `name` with the records of `zip` (an osv.dev bulk export, or a folder
    /// the CLI zipped). A zip or record that does not parse is `Invalid`, naming it, and
    /// nothing changes.
    pub async fn import(
        &self,
        who: &Principal,
        name: &str,
        zip: bytes::Bytes,
    ) -> Result<SourceState, ServiceError> {
        who.require_owner()?;
        validate_source_name(name)?;
        let label = name.to_string();
        let (records, newest) = tokio::task::spawn_blocking(move || read_zip(&label, &zip))
            .await
            .map_err(|e| ServiceError::Io(std::io::Error::other(e)))??;
        let now = self.clock.now_ms();
        let state = self
            .store
            .replace_vuln_source(name, &records, newest.as_deref(), now)
            .await?;
        tracing::info!(
            source = name,
            records = state.records,
            "vulnerability source imported"
        );
        Ok(state)
    }

    /// Every source with its record count and freshness, and the database version.
    pub async fn status(&self, who: &Principal) -> Result<DatabaseState, ServiceError> {
        who.require_any(Action::Pull)?;
        Ok(self.store.vuln_database().await?)
    }
}

/// Source names are OSV ecosystem names (`Go`, `crates.io`, `Debian:12`, `Ubuntu:22.04:LTS`)
/// or the like: they go in URL paths and table columns.
fn validate_source_name(name: &str) -> Result<(), ServiceError> {
    let fine = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if fine {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "invalid source name {name:?}: use letters, digits and . _ - : (at most 100), as OSV ecosystems are named"
        )))
    }
}

/// Every record of the zip with its index keys, and the newest `modified`; the first entry
/// that does not parse fails the whole import.
fn read_zip(source: &str, zip: &[u8]) -> Result<(Vec<NewRecord>, Option<String>), ServiceError> {
    // `osv::read_zip` reads a file, as osv.dev's exports are files.
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(zip)?;
    file.flush()?;
    let invalid = |e: ReadError| match e {
        ReadError::Zip { source: cause, .. } => ServiceError::Invalid(format!(
            "the upload for source {source} is not a readable zip archive: {cause}"
        )),
        ReadError::Parse { .. } => ServiceError::Invalid(format!("source {source}: {e}")),
        ReadError::Io { source, .. } => ServiceError::Io(source),
    };
    let mut records = Vec::new();
    let mut newest = None;
    for record in osv::read_zip(file.path()).map_err(invalid)? {
        let record = record.map_err(invalid)?;
        newest = newest.max(Some(record.modified));
        let stored = NewRecord::of(&record).map_err(|e| {
            ServiceError::Invalid(format!("source {source}: record {}: {e}", record.id))
        })?;
        records.push(stored);
    }
    Ok((records, newest.map(rfc3339)))
}
