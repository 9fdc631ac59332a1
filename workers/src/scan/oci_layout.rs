//! Reads an image's layers from an OCI image layout on disk (what `skopeo copy … oci:DIR:TAG`
//! writes): `index.json` names references by `org.opencontainers.image.ref.name`, a
//! reference is an image manifest or an index of them, and every blob is a file under
//! `blobs/<algorithm>/<hex>`. For scanning images that are not in a registry, and for the
//! scan tests and benchmark, which read the same bytes syft reads.

use std::fs::File;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::layers::LayerRef;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("{0}: no reference named {1:?} in its index.json")]
    NoReference(PathBuf, String),
    #[error("{0}: the index {1:?} has no linux/{2} image")]
    NoPlatform(PathBuf, String, String),
    #[error("{0}: {1:?} is an index; name a platform")]
    NeedsPlatform(PathBuf, String),
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One image of a layout: its manifest's digest and its layers, base first.
#[derive(Debug)]
pub struct LayoutImage {
    pub manifest_digest: String,
    pub layers: Vec<(LayerRef, PathBuf)>,
}

impl LayoutImage {
    /// The layers opened, as [`super::scan_layers`] takes them.
    pub fn open_layers(&self) -> Result<Vec<(LayerRef, File)>, LayoutError> {
        self.layers
            .iter()
            .map(|(layer, path)| {
                let file = File::open(path).map_err(|source| LayoutError::Open {
                    path: path.clone(),
                    source,
                })?;
                Ok((layer.clone(), file))
            })
            .collect()
    }
}

/// The image `reference` names in the layout at `dir`; for an index, its linux image for
/// `architecture` (`amd64`, `arm64`), which must then be given.
pub fn image(
    dir: &Path,
    reference: &str,
    architecture: Option<&str>,
) -> Result<LayoutImage, LayoutError> {
    let top = read_index(&dir.join("index.json"))?;
    let named = top
        .manifests()
        .iter()
        .find(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|name| name == reference)
        })
        .ok_or_else(|| LayoutError::NoReference(dir.to_owned(), reference.to_owned()))?;
    let manifest = match (named.media_type(), architecture) {
        (MediaType::ImageIndex, None) => {
            return Err(LayoutError::NeedsPlatform(
                dir.to_owned(),
                reference.to_owned(),
            ))
        }
        (MediaType::ImageIndex, Some(arch)) => {
            let index = read_index(&blob_path(dir, named))?;
            index
                .manifests()
                .iter()
                .find(|d| {
                    d.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == "linux" && p.architecture().to_string() == arch
                    })
                })
                .cloned()
                .ok_or_else(|| {
                    LayoutError::NoPlatform(dir.to_owned(), reference.to_owned(), arch.to_owned())
                })?
        }
        _ => named.clone(),
    };
    let path = blob_path(dir, &manifest);
    let image = ImageManifest::from_file(&path).map_err(|source| LayoutError::Read {
        path: path.clone(),
        source,
    })?;
    let layers = image
        .layers()
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            let layer_ref = LayerRef {
                index,
                digest: layer.digest().to_string(),
            };
            (layer_ref, blob_path(dir, layer))
        })
        .collect();
    Ok(LayoutImage {
        manifest_digest: manifest.digest().to_string(),
        layers,
    })
}

fn read_index(path: &Path) -> Result<ImageIndex, LayoutError> {
    ImageIndex::from_file(path).map_err(|source| LayoutError::Read {
        path: path.to_owned(),
        source,
    })
}

fn blob_path(dir: &Path, descriptor: &Descriptor) -> PathBuf {
    let digest = descriptor.digest();
    dir.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan_layers;
    use crate::scan::test_layers::TarLayer;
    use sha2::{Digest as _, Sha256};

    /// Writes `bytes` as a blob; returns its descriptor JSON.
    fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    fn manifest(dir: &Path, layers: Vec<serde_json::Value>) -> serde_json::Value {
        let config = blob(dir, "application/vnd.oci.image.config.v1+json", b"{}");
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn reads_an_image_by_reference_and_an_index_by_platform() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        let layer = |name: &str| {
            let tar = TarLayer::new()
                .file(
                    &format!("app/node_modules/{name}/package.json"),
                    format!(r#"{{"name":"{name}","version":"1.0.0"}}"#),
                )
                .zstd();
            blob(root, "application/vnd.oci.image.layer.v1.tar+zstd", &tar)
        };
        let mut amd64 = manifest(root, vec![layer("a")]);
        amd64["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
        let mut arm64 = manifest(root, vec![layer("a"), layer("b")]);
        arm64["platform"] = serde_json::json!({"architecture": "arm64", "os": "linux"});
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [amd64.clone(), arm64.clone()],
        });
        let mut index = blob(
            root,
            "application/vnd.oci.image.index.v1+json",
            index.to_string().as_bytes(),
        );
        index["annotations"] = serde_json::json!({REF_NAME: "latest"});
        amd64["annotations"] = serde_json::json!({REF_NAME: "amd64"});
        let top = serde_json::json!({"schemaVersion": 2, "manifests": [index, amd64]});
        std::fs::write(root.join("index.json"), top.to_string()).unwrap();

        let image = super::image(root, "latest", Some("arm64")).unwrap();
        assert_eq!(image.manifest_digest, arm64["digest"]);
        let inventory = scan_layers(image.open_layers().unwrap()).unwrap();
        let names: Vec<_> = inventory.packages.iter().map(|p| &p.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(inventory.packages[1].layer.index, 1);

        let image = super::image(root, "amd64", None).unwrap();
        assert_eq!(image.layers.len(), 1);

        let err = super::image(root, "latest", None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("\"latest\" is an index; name a platform"),
            "{err}"
        );
        let err = super::image(root, "latest", Some("s390x")).unwrap_err();
        assert!(
            err.to_string().ends_with("has no linux/s390x image"),
            "{err}"
        );
        let err = super::image(root, "v2", None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no reference named \"v2\" in its index.json"),
            "{err}"
        );
    }
}
