//! The inventory as an SBOM, in either of the two formats tools read:
//! - CycloneDX 1.5 JSON (<https://cyclonedx.org/docs/1.5/json/>): one `library` component per
//!   package with its package URL, and the OS as an `operating-system` component. Where each
//!   package was found goes in `kiln:` properties.
//! - SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the image as a `CONTAINER`
//!   package that the document describes and that contains one package per inventory package
//!   (its package URL as a `PACKAGE-MANAGER` external reference, where it was found in
//!   `sourceInfo`) and the OS as an `OPERATING-SYSTEM` package. Kiln reads no licences and
//!   no file contents, so those fields say `NOASSERTION` and `filesAnalyzed` is false.

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

/// An SPDX 2.3 JSON document for `inventory`.
pub fn spdx(inventory: &Inventory, subject: &SbomSubject) -> Value {
    const IMAGE_ID: &str = "SPDXRef-Image";
    let mut image = spdx_package(IMAGE_ID, subject.image, None, "CONTAINER");
    if let Some((_, hex)) = subject.image.rsplit_once("@sha256:") {
        image["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
    }
    let mut packages = vec![image];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": IMAGE_ID,
    })];
    let mut contains = |id: &str| {
        relationships.push(json!({
            "spdxElementId": IMAGE_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }))
    };
    if let Some(os) = &inventory.os {
        let id = format!("SPDXRef-OperatingSystem-{}", spdx_id_part(&os.id));
        let mut package = spdx_package(&id, &os.id, os.version_id.as_deref(), "OPERATING-SYSTEM");
        if let Some(pretty) = &os.pretty {
            package["description"] = json!(pretty);
        }
        packages.push(package);
        contains(&id);
    }
    for (n, package) in inventory.packages.iter().enumerate() {
        // Numbered: the same package can be listed by two files, and IDs must be unique.
        let id = format!("SPDXRef-Package-{}-{n}", spdx_id_part(&package.name));
        let mut entry = spdx_package(&id, &package.name, Some(&package.version), "LIBRARY");
        entry["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": package.purl,
        }]);
        let mut found = format!(
            "{} package found at /{} in layer {}",
            package.ecosystem, package.path, package.layer.digest
        );
        if let (Some(name), Some(version)) = (&package.source_name, &package.source_version) {
            found.push_str(&format!(", built from source package {name} {version}"));
        }
        entry["sourceInfo"] = json!(found);
        packages.push(entry);
        contains(&id);
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.image,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/kiln-{}-{}",
            spdx_id_part(subject.image),
            uuid::Uuid::new_v4()
        ),
        "creationInfo": {
            "created": subject.timestamp,
            "creators": [format!("Tool: kiln-{}", subject.tool_version)],
        },
        "documentDescribes": [IMAGE_ID],
        "packages": packages,
        "relationships": relationships,
    })
}

/// A package with the fields SPDX 2.3 requires and those it wants said even when unknown.
fn spdx_package(id: &str, name: &str, version: Option<&str>, purpose: &str) -> Value {
    let mut package = json!({
        "SPDXID": id,
        "name": name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": purpose,
    });
    if let Some(version) = version {
        package["versionInfo"] = json!(version);
    }
    package
}

/// SPDX IDs allow only letters, digits, `.` and `-`: anything else becomes `-`.
fn spdx_id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::inventory::OsRelease;
    use crate::scan::layers::LayerRef;
    use crate::scan::Package;

    fn npm(path: &str) -> Package {
        Package {
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
        }
    }

    fn inventory() -> Inventory {
        Inventory {
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
        }
    }

    const SUBJECT: SbomSubject = SbomSubject {
        image: "127.0.0.1:8080/app@sha256:cc",
        tool_version: "0.1.0",
        timestamp: "2026-12-02T12:00:00Z",
    };

    #[test]
    fn cyclonedx_lists_os_and_packages_with_unique_refs() {
        let bom = cyclonedx(&inventory(), &SUBJECT);
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

    /// SPDX 2.3's required fields (clauses 6 and 7), its ID syntax, and relationships that
    /// name only elements the document defines.
    #[test]
    fn spdx_has_every_required_field_unique_ids_and_closed_relationships() {
        let mut inventory = inventory();
        let mut libc = npm("var/lib/dpkg/status");
        (libc.ecosystem, libc.name, libc.version) =
            ("Debian".into(), "libc6".into(), "2.36-9".into());
        (libc.source_name, libc.source_version) = (Some("glibc".into()), Some("2.36-9".into()));
        libc.purl = "pkg:deb/debian/libc6@2.36-9?distro=debian-12".into();
        inventory.packages.push(libc);
        let doc = spdx(&inventory, &SUBJECT);

        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["dataLicense"], "CC0-1.0");
        assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
        assert_eq!(doc["name"], "127.0.0.1:8080/app@sha256:cc");
        let namespace = doc["documentNamespace"].as_str().unwrap();
        assert!(
            namespace.starts_with("https://spdx.org/spdxdocs/kiln-127.0.0.1-8080-app-sha256-cc-")
        );
        assert!(
            !namespace.contains('#'),
            "a namespace has no fragment: {namespace}"
        );
        assert_ne!(
            namespace,
            spdx(&inventory, &SUBJECT)["documentNamespace"]
                .as_str()
                .unwrap()
        );
        assert_eq!(doc["creationInfo"]["created"], "2026-12-02T12:00:00Z");
        assert_eq!(doc["creationInfo"]["creators"][0], "Tool: kiln-0.1.0");

        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 1 + 1 + 3, "image, OS, three packages");
        let mut ids = std::collections::HashSet::new();
        for package in packages {
            for field in ["SPDXID", "name", "downloadLocation"] {
                assert!(package[field].is_string(), "{field} missing in {package}");
            }
            assert_eq!(package["filesAnalyzed"], false);
            let id = package["SPDXID"].as_str().unwrap();
            let idstring = id.strip_prefix("SPDXRef-").unwrap();
            assert!(
                idstring
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "{id}"
            );
            assert!(ids.insert(id), "{id} twice");
        }
        assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(packages[0]["checksums"][0]["checksumValue"], "cc");
        assert_eq!(packages[1]["primaryPackagePurpose"], "OPERATING-SYSTEM");
        assert_eq!(packages[1]["versionInfo"], "12");
        let libc = &packages[4];
        assert_eq!(libc["versionInfo"], "2.36-9");
        assert_eq!(
            libc["externalRefs"][0],
            json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                   "referenceLocator": "pkg:deb/debian/libc6@2.36-9?distro=debian-12"})
        );
        assert_eq!(
            libc["sourceInfo"],
            "Debian package found at /var/lib/dpkg/status in layer sha256:bb, built from source package glibc 2.36-9"
        );

        let described = doc["documentDescribes"].as_array().unwrap();
        assert_eq!(described, &[json!("SPDXRef-Image")]);
        let relationships = doc["relationships"].as_array().unwrap();
        assert_eq!(relationships.len(), 1 + 4);
        for relationship in relationships {
            for end in ["spdxElementId", "relatedSpdxElement"] {
                let id = relationship[end].as_str().unwrap();
                assert!(
                    id == "SPDXRef-DOCUMENT" || ids.contains(id),
                    "{id} is not defined"
                );
            }
        }
    }
}
