//! Scans on the server: a worker's inventory matched against the vulnerability database into
//! a report, stored per platform manifest digest, and the stored reports read back
//! (`GET /api/scans`, `kiln scan show`, the registry listing's findings column).
//!
//! A digest already matched against the current database version is not matched again; a
//! stored inventory of the same scanner version is matched again after a newer import
//! without the worker pulling the image.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kiln_worker::protocol::{
    RunId, RunStatus, ScanAnswer, ScanReport, ScanTarget, ScanUpload, SeverityTotals, StepType,
};
use kiln_worker::scan::Inventory;

use super::queue::stale;
use super::runs::RunService;
use super::scan_match::{self, MatchInput};
use super::ServiceError;
use crate::access::{Action, Principal};
use crate::store::{Store, StoreError, StoredJob};
use crate::vuln::{Index, Record};

pub struct ScanService {
    store: Store,
    runs: Arc<RunService>,
}

impl ScanService {
    pub fn new(store: Store, runs: Arc<RunService>) -> ScanService {
        ScanService { store, runs }
    }

    /// A worker's `POST /api/worker/runs/{id}/scans`, fenced by its attempt. Without an
    /// inventory: the stored report if it was matched against the current database, else a
    /// new match of a stored inventory of the same scanner version, else `NeedInventory`.
    /// With one: it is stored, matched, and the report stored and returned.
    pub async fn answer(
        &self,
        run: &RunId,
        upload: ScanUpload,
    ) -> Result<ScanAnswer, ServiceError> {
        let row = self.runs.row(*run).await?;
        if row.attempt != upload.attempt || row.status != RunStatus::Running {
            return Err(stale(*run, upload.attempt));
        }
        refuse_without_scan_step(*run, &row.job)?;
        let digest = upload.target.digest.as_str().to_string();
        let version = upload.scanner_version;
        let previous = self.store.report(&digest).await?;
        let inventory = match upload.inventory {
            Some(inventory) => {
                let now = self.runs.now_ms();
                self.store
                    .put_inventory(&digest, version, &inventory, now)
                    .await?;
                inventory
            }
            None => {
                let current = self.store.vuln_database().await?.version;
                if let Some(stored) = &previous {
                    if stored.db_version == current && stored.scanner_version == version {
                        let mut report = stored.report.clone();
                        report.target = upload.target;
                        return Ok(ScanAnswer::Report(Box::new(report)));
                    }
                }
                match self.store.inventory(&digest, version).await? {
                    Some(inventory) => inventory,
                    None => return Ok(ScanAnswer::NeedInventory),
                }
            }
        };
        let previous = previous.map(|p| p.report);
        let now = self.runs.now_ms();
        let report = match_inventory(
            &self.store,
            upload.target,
            &inventory,
            previous.as_ref(),
            now,
        )
        .await?;
        self.store
            .put_report(&report, report.database.version, version)
            .await?;
        Ok(ScanAnswer::Report(Box::new(report)))
    }

    /// The stored reports of `repository:reference` in Kiln's registry (a tag is resolved
    /// to its manifest; an index gives one report per child image that has one).
    pub async fn reports(
        &self,
        who: &Principal,
        repository: &str,
        reference: &str,
    ) -> Result<Vec<ScanReport>, ServiceError> {
        who.authorize(repository, Action::Pull)?;
        let separator = if reference.contains(':') { "@" } else { ":" };
        let image = format!("{repository}{separator}{reference}");
        let digest = if reference.contains(':') {
            reference.to_string()
        } else {
            self.store
                .tag(repository, reference)
                .await?
                .ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "no scan report for {image}: tag '{reference}' not found in repository '{repository}'"
                    ))
                })?
                .digest
        };
        // Reports are stored by digest: one of a digest this repository does not hold is
        // not this repository's to show.
        let children = match self.store.manifest(repository, &digest).await? {
            Some(row) => super::repositories::split_list(row.children),
            None => {
                return Err(ServiceError::NotFound(format!(
                    "no scan report for {image}: manifest not found in repository '{repository}'"
                )))
            }
        };
        let index = (!children.is_empty()).then(|| digest.clone());
        let digests = if children.is_empty() {
            vec![digest.clone()]
        } else {
            children
        };
        // A report is stored per digest, naming where it was first scanned (maybe another
        // registry or repository): it is shown as the image it was asked for.
        let tag = (!reference.contains(':')).then(|| reference.to_string());
        let mut reports = Vec::new();
        for child in &digests {
            if let Some(mut stored) = self.store.report(child).await? {
                let target = &mut stored.report.target;
                target.registry = self.runs.settings.own_registry.clone();
                target.repository = repository.to_string();
                target.tag = tag.clone();
                target.index_digest = index.as_ref().and_then(|d| d.parse().ok());
                reports.push(stored.report);
            }
        }
        // The store keeps an index's children unordered: by platform, as a scan prints them.
        reports.sort_by(|a, b| a.target.platform.cmp(&b.target.platform));
        if reports.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no scan report stored for {image} ({digest}): scan it with `kiln scan`"
            )));
        }
        Ok(reports)
    }
}

/// Only a scan run, or a steps run with a scan step, uploads scans: anything else asking is
/// a confused (or forged) worker, refused before the store is touched.
fn refuse_without_scan_step(run: RunId, job: &StoredJob) -> Result<(), ServiceError> {
    let scans = match job {
        StoredJob::Scan(_) => true,
        StoredJob::Steps(steps) => steps.step_types().contains(&StepType::Scan),
        StoredJob::Build(_) | StoredJob::Purge(_) => false,
    };
    if scans {
        return Ok(());
    }
    Err(ServiceError::Conflict(format!(
        "run '{run}' is a {} run without a scan step: it has no scans to upload",
        job.kind().as_str()
    )))
}

/// Matches `inventory` against the database as it is now. Records are fetched for the
/// image's packages in one query, then evaluated in memory.
pub async fn match_inventory(
    store: &Store,
    target: ScanTarget,
    inventory: &Inventory,
    previous: Option<&ScanReport>,
    now: i64,
) -> Result<ScanReport, ServiceError> {
    let database = store.vuln_database().await?;
    let lookups = scan_match::lookups(inventory);
    let found = store.vuln_records_for(&scan_match::keys(&lookups)).await?;
    let covered: HashSet<String> = store
        .vuln_ecosystems_covered(&scan_match::ecosystems(&lookups))
        .await?
        .into_iter()
        .collect();
    let records = found
        .into_iter()
        .map(|f| {
            serde_json::from_str::<Record>(&f.json).map_err(|e| {
                StoreError::Corrupt(format!("vulnerability record {}: {e}", f.record_id))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let index = Index::from_records(records);
    Ok(scan_match::report(MatchInput {
        target,
        inventory,
        index: &index,
        covered: &covered,
        database,
        previous,
        now,
    }))
}

/// The findings of each of `digests` by severity, for listings: an image's own report; an
/// index (its `children`), the sum of its children's; `None` when nothing was scanned.
pub async fn listing_totals(
    store: &Store,
    manifests: &[(String, Vec<String>)],
) -> Result<Vec<Option<SeverityTotals>>, StoreError> {
    let digests: Vec<String> = manifests
        .iter()
        .flat_map(|(digest, children)| std::iter::once(digest).chain(children))
        .cloned()
        .collect();
    let totals: HashMap<String, SeverityTotals> = store.report_totals(&digests).await?;
    Ok(manifests
        .iter()
        .map(|(digest, children)| {
            if children.is_empty() {
                return totals.get(digest).copied();
            }
            let scanned: Vec<&SeverityTotals> =
                children.iter().filter_map(|c| totals.get(c)).collect();
            if scanned.is_empty() {
                return None;
            }
            Some(
                scanned
                    .iter()
                    .fold(SeverityTotals::default(), |sum, t| SeverityTotals {
                        critical: sum.critical + t.critical,
                        high: sum.high + t.high,
                        medium: sum.medium + t.medium,
                        low: sum.low + t.low,
                        none: sum.none + t.none,
                        unknown: sum.unknown + t.unknown,
                    }),
            )
        })
        .collect())
}
