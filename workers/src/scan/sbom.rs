//! The inventory as an SBOM: CycloneDX 1.5 JSON (<https://cyclonedx.org/docs/1.5/json/>), one
//! `library` component per package with its package URL, and the OS as an
//! `operating-system` component. Where each package was found goes in `kiln:` properties.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::inventory::Inventory;

/// What the SBOM describes and who made it.
pub struct SbomSubject<'a> {
    /// The image: `registry/repository@sha256:…`.
    pub image: &'a str,
    /// Kiln's version, for `metadata.tools`.
    pub tool_version: &'a str,
    /// RFC 3339.
    pub timestamp: &'a str,
}

/// A CycloneDX 1.5 document for `inventory`.
pub fn cyclonedx(inventory: &Inventory, subject: &SbomSubject) -> Value {
    let mut components = Vec::with_capacity(inventory.packages.len() + 1);
    if let Some(os) = &inventory.os {
        let mut component = json!({
            "type": "operating-system",
            "bom-ref": format!("os:{}", os.id),
            "name": os.id,
        });
        if let Some(version) = &os.version_id {
            component["version"] = json!(version);
        }
        if let Some(pretty) = &os.pretty {
            component["description"] = json!(pretty);
        }
        components.push(component);
    }
    // bom-refs must be unique; the same package can be listed by two files.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for package in &inventory.packages {
        let count = seen.entry(package.purl.as_str()).or_default();
        *count += 1;
        let bom_ref = match *count {
            1 => package.purl.clone(),
            n => format!("{}#{n}", package.purl),
        };
        let mut properties = vec![
            json!({"name": "kiln:ecosystem", "value": package.ecosystem}),
            json!({"name": "kiln:path", "value": format!("/{}", package.path)}),
            json!({"name": "kiln:layer", "value": package.layer.digest}),
        ];
        if let (Some(name), Some(version)) = (&package.source_name, &package.source_version) {
            properties.push(json!({"name": "kiln:source", "value": format!("{name}@{version}")}));
        }
        components.push(json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "properties": properties,
        }));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": {
            "timestamp": subject.timestamp,
            "tools": {"components": [{"type": "application", "name": "kiln", "version": subject.tool_version}]},
            "component": {"type": "container", "bom-ref": subject.image, "name": subject.image},
        },
        "components": components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::inventory::OsRelease;
    use crate::scan::layers::LayerRef;
    use crate::scan::Package;

    #[test]
    fn cyclonedx_lists_os_and_packages_with_unique_refs() {
        let npm = |path: &str| Package {
            ecosystem: "npm".into(),
            name: "ms".into(),
            version: "2.1.3".into(),
            source_name: None,
            source_version: None,
            layer: LayerRef {
                index: 1,
                digest: "sha256:bb".into(),
            },
            path: path.into(),
            purl: "pkg:npm/ms@2.1.3".into(),
        };
        let inventory = Inventory {
            os: Some(OsRelease {
                id: "debian".into(),
                version_id: Some("12".into()),
                ..Default::default()
            }),
            packages: vec![
                npm("app/node_modules/ms/package.json"),
                npm("app/package-lock.json"),
            ],
            unreadable: vec![],
        };
        let subject = SbomSubject {
            image: "127.0.0.1:8080/app@sha256:cc",
            tool_version: "0.1.0",
            timestamp: "2026-12-02T12:00:00Z",
        };
        let bom = cyclonedx(&inventory, &subject);
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(
            bom["metadata"]["component"]["name"],
            "127.0.0.1:8080/app@sha256:cc"
        );
        let components = bom["components"].as_array().unwrap();
        assert_eq!(components[0]["type"], "operating-system");
        assert_eq!(components[0]["version"], "12");
        assert_eq!(components[1]["purl"], "pkg:npm/ms@2.1.3");
        assert_eq!(components[1]["bom-ref"], "pkg:npm/ms@2.1.3");
        assert_eq!(components[2]["bom-ref"], "pkg:npm/ms@2.1.3#2");
        assert_eq!(
            components[2]["properties"][1]["value"],
            "/app/package-lock.json"
        );
    }
}
