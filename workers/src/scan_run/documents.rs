//! The documents `--output json|sarif|cyclonedx` ends a scan's log with.

use serde_json::{json, Value};

use super::args::SbomFormat;
use crate::protocol::{Level, ScanReport};
use crate::scan::sbom::{cyclonedx, spdx, SbomSubject};
use crate::scan::Inventory;

/// `--output json`: every platform's report.
pub fn reports_json(reports: &[ScanReport]) -> Value {
    json!({ "reports": reports })
}

/// `--output sarif`: a minimal SARIF 2.1.0 log, one rule per vulnerability id and one result
/// per finding, located at the file that holds the package inside the image.
pub fn sarif(reports: &[ScanReport], tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut results = Vec::new();
    for report in reports {
        let t = &report.target;
        let image = format!("{}/{}@{}", t.registry, t.repository, t.digest);
        for f in &report.findings {
            if seen.insert(f.id.clone()) {
                rules.push(json!({
                    "id": f.id,
                    "shortDescription": { "text": f.summary.clone().unwrap_or_else(|| f.id.clone()) },
                    "properties": { "aliases": f.aliases, "severity": f.severity },
                }));
            }
            let fixed = f.fixed_version.as_deref().unwrap_or("no fix");
            results.push(json!({
                "ruleId": f.id,
                "level": sarif_level(f.severity),
                "message": { "text": format!(
                    "{} {} is affected by {} (fixed: {fixed}) in {image} ({})",
                    f.package, f.installed_version, f.id,
                    t.platform.as_deref().unwrap_or("unknown platform")
                ) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": f.path } } }],
                "properties": { "image": image, "platform": t.platform, "layer": f.layer },
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "kiln",
                "version": tool_version,
                "informationUri": "https://osv.dev",
                "rules": rules,
            } },
            "results": results,
        }],
    })
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Critical | Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::None | Level::Unknown => "note",
    }
}

/// The SBOM of one platform's image (`--output cyclonedx`, `--attach-sbom`).
pub fn sbom(inventory: &Inventory, image: &str, tool_version: &str, format: SbomFormat) -> Value {
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let subject = SbomSubject {
        image,
        tool_version,
        timestamp: &timestamp,
    };
    match format {
        SbomFormat::Cyclonedx => cyclonedx(inventory, &subject),
        SbomFormat::Spdx => spdx(inventory, &subject),
    }
}
