//! A scan against a real registry: resolve each image over the OCI distribution API (for an
//! index, every platform), ask the server whether it already holds the inventory of that
//! digest, read the layers only when it does not, and print the server's report; end with an
//! exit code from `--severity-threshold` and the databases the server lacks. The `scan` job
//! and the built-in `kiln scan` step both call [`run_scan`].

pub mod args;
mod attach;
mod documents;
mod image;
pub mod report;
#[cfg(test)]
mod run_tests;

use std::collections::HashSet;
use std::future::Future;

use crate::client::ServerClient;
use crate::protocol::{
    RegistryCredential, RunId, ScanAnswer, ScanJob, ScanReport, ScanTarget, ScanUpload,
    SCANNER_VERSION,
};
use crate::registry_http::{catalog, tags, RegistryHttp};
use crate::scan::Inventory;
pub use args::{SbomFormat, ScanArgs, ScanArgsError, ScanOutput};
pub use attach::referrers_tag;
use image::{pull_scope, read_layers, resolve, PlatformImage};
use report::{report_lines, scanning_line, summary_table, verdict};

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub args: ScanArgs,
    /// `host[:port]` of the registry the images are in.
    pub registry: String,
    /// Whether `registry` is Kiln's own (Basic credentials on every path; `--all` lists it).
    pub kiln: bool,
}

impl ScanRequest {
    /// The request a job's words make; the words are read again here (the server read them
    /// before queueing, so only a mismatched server and worker fail).
    pub fn of(job: &ScanJob) -> Result<ScanRequest, String> {
        let args =
            ScanArgs::from_words(&job.words).map_err(|e| format!("invalid scan arguments: {e}"))?;
        Ok(ScanRequest {
            args,
            registry: job.registry.clone(),
            kiln: job.kiln,
        })
    }
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    /// 0 when every image was scanned and none fails the verdict, else 1.
    pub exit_code: i32,
    /// Why it failed, for the run's error.
    pub message: Option<String>,
}

impl ScanEnd {
    fn failed(message: String) -> ScanEnd {
        ScanEnd {
            exit_code: 1,
            message: Some(message),
        }
    }
}

/// Where a scan sends what it read and gets its report: the server, for a run's attempt.
pub trait ScanServer: Sync {
    fn upload(
        &self,
        target: &ScanTarget,
        inventory: Option<&Inventory>,
    ) -> impl Future<Output = Result<ScanAnswer, String>> + Send;
}

/// The server, for one attempt of one run (`POST /api/worker/runs/{id}/scans`).
#[derive(Clone)]
pub struct RunScans {
    pub client: ServerClient,
    pub run: RunId,
    pub attempt: u32,
}

impl ScanServer for RunScans {
    async fn upload(
        &self,
        target: &ScanTarget,
        inventory: Option<&Inventory>,
    ) -> Result<ScanAnswer, String> {
        let upload = ScanUpload {
            attempt: self.attempt,
            target: target.clone(),
            inventory: inventory.cloned(),
            scanner_version: SCANNER_VERSION,
        };
        self.client
            .upload_scan(self.run, &upload)
            .await
            .map_err(|e| format!("the server could not match {}: {e}", target.digest))
    }
}

/// Scans what `req` names, printing through `log`; `credentials` holds the ones for the
/// registry (the run's pull credentials for Kiln's). Cancel and timeout drop the future.
pub async fn run_scan<S: ScanServer>(
    req: &ScanRequest,
    credentials: &[RegistryCredential],
    server: &S,
    log: &(dyn Fn(String) + Sync),
) -> ScanEnd {
    let http = match RegistryHttp::new(&req.registry, credentials) {
        Ok(http) => http,
        Err(message) => return ScanEnd::failed(message),
    };
    if req.kiln {
        // Kiln takes the run's credentials as Basic on every registry path.
        http.use_basic();
    }
    let named = match named_images(req, &http).await {
        Ok(named) => named,
        Err(message) => {
            log(message.clone());
            return ScanEnd::failed(message);
        }
    };
    let want_inventory = req.args.output == ScanOutput::Cyclonedx || req.args.attach_sbom.is_some();
    let mut scanned: HashSet<String> = HashSet::new();
    let mut reports: Vec<ScanReport> = Vec::new();
    let mut inventories: Vec<(String, Inventory)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for (repository, reference) in named {
        let images = match resolve(&http, &req.registry, &repository, &reference).await {
            Ok(images) => images,
            Err(message) => {
                log(format!(
                    "Cannot scan {}/{repository}:{reference}: {message}",
                    req.registry
                ));
                errors.push(message);
                continue;
            }
        };
        for image in images {
            if !scanned.insert(image.target.digest.to_string()) {
                continue;
            }
            let target = &image.target;
            log(scanning_line(
                target.platform.as_deref(),
                target.digest.as_str(),
                image.layers.len(),
            ));
            match scan_one(&http, server, &image, want_inventory, log).await {
                Ok((report, inventory)) => {
                    for line in report_lines(&report) {
                        log(line);
                    }
                    if let Some(inventory) = inventory {
                        let name = format!(
                            "{}/{}@{}",
                            target.registry, target.repository, target.digest
                        );
                        if let Some(format) = req.args.attach_sbom {
                            if let Err(message) =
                                attach(&http, &image, &inventory, &name, format, log).await
                            {
                                log(format!(
                                    "Cannot attach the SBOM to {}: {message}",
                                    target.digest
                                ));
                                errors.push(message);
                            }
                        }
                        inventories.push((name, inventory));
                    }
                    reports.push(report);
                }
                Err(message) => {
                    log(format!("Cannot scan {}: {message}", target.digest));
                    errors.push(message);
                }
            }
        }
    }
    for line in ending(req.args.output, &reports, &inventories) {
        log(line);
    }
    let mut failure = verdict(
        &reports,
        req.args.severity_threshold,
        req.args.allow_missing_db,
    );
    if !errors.is_empty() {
        let noun = if errors.len() == 1 { "image" } else { "images" };
        let unscanned = format!(
            "{} {noun} could not be scanned: {}",
            errors.len(),
            errors.join("; ")
        );
        failure = Some(match failure {
            Some(reason) => format!("{unscanned}; {reason}"),
            None => unscanned,
        });
    }
    match failure {
        Some(message) => {
            log(format!("Scan failed: {message}"));
            ScanEnd::failed(message)
        }
        None => ScanEnd {
            exit_code: 0,
            message: None,
        },
    }
}

/// The (repository, tag or digest) pairs to scan: the images named, or with `--all` every
/// tag of every repository of Kiln's registry the run may pull that `--filter` matches.
async fn named_images(
    req: &ScanRequest,
    http: &RegistryHttp,
) -> Result<Vec<(String, String)>, String> {
    if !req.args.all {
        return Ok(req
            .args
            .images
            .iter()
            .map(|image| {
                let reference = image.digest().unwrap_or_else(|| image.tag_or_latest());
                (image.repository().to_owned(), reference.to_owned())
            })
            .collect());
    }
    let filter = req.args.repository_filter().map_err(|e| e.to_string())?;
    let mut names = catalog(http)
        .await
        .map_err(|e| format!("cannot list the registry's repositories: {e}"))?;
    names.sort();
    let mut named = Vec::new();
    for name in names {
        let matches = match &filter {
            Some(filter) => filter
                .is_match(&name)
                .map_err(|e| format!("--filter on {name}: {e}"))?,
            None => true,
        };
        if !matches {
            continue;
        }
        let mut tag_names = tags(http, &name, &pull_scope(&name))
            .await
            .map_err(|e| format!("cannot list the tags of {name}: {e}"))?;
        tag_names.sort();
        named.extend(tag_names.into_iter().map(|tag| (name.clone(), tag)));
    }
    // Nothing tagged is not an error: a scheduled rescan of an empty registry passes.
    Ok(named)
}

/// One platform's report: the server's stored inventory if it has one (and no SBOM is asked
/// for), else the layers read and the inventory sent.
async fn scan_one<S: ScanServer>(
    http: &RegistryHttp,
    server: &S,
    image: &PlatformImage,
    want_inventory: bool,
    log: &(dyn Fn(String) + Sync),
) -> Result<(ScanReport, Option<Inventory>), String> {
    if !want_inventory {
        if let ScanAnswer::Report(report) = server.upload(&image.target, None).await? {
            log("Inventory already known for this digest: no layer read".to_owned());
            return Ok((*report, None));
        }
    }
    let view = read_layers(http, image).await?;
    let inventory = Inventory::from_view(&view);
    match server.upload(&image.target, Some(&inventory)).await? {
        ScanAnswer::Report(report) => Ok((*report, Some(inventory))),
        ScanAnswer::NeedInventory => {
            Err("the server asked for the inventory it was just sent".to_owned())
        }
    }
}

/// Pushes the SBOM of `image` as its referrer and says so.
async fn attach(
    http: &RegistryHttp,
    image: &PlatformImage,
    inventory: &Inventory,
    name: &str,
    format: SbomFormat,
    log: &(dyn Fn(String) + Sync),
) -> Result<(), String> {
    let document = documents::sbom(inventory, name, env!("CARGO_PKG_VERSION"), format);
    let digest = image.target.digest.as_str();
    let subject = attach::Subject {
        repository: &image.target.repository,
        media_type: &image.media_type,
        digest,
        size: image.size,
    };
    let sbom = attach::attach_sbom(http, &subject, format, &document).await?;
    log(format!(
        "Attached SBOM ({}) to {digest} as {sbom}",
        format.name()
    ));
    Ok(())
}

/// The lines the log ends with, as `--output` asks.
fn ending(
    output: ScanOutput,
    reports: &[ScanReport],
    inventories: &[(String, Inventory)],
) -> Vec<String> {
    let version = env!("CARGO_PKG_VERSION");
    let documents = match output {
        ScanOutput::Table => return summary_table(reports),
        ScanOutput::Json => vec![documents::reports_json(reports)],
        ScanOutput::Sarif => vec![documents::sarif(reports, version)],
        ScanOutput::Cyclonedx => inventories
            .iter()
            .map(|(image, inventory)| {
                documents::sbom(inventory, image, version, SbomFormat::Cyclonedx)
            })
            .collect(),
    };
    documents
        .iter()
        .flat_map(|doc| {
            serde_json::to_string_pretty(doc)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}
