//! The base images of a build step: the `FROM` of every stage (build args expanded, earlier
//! stages and `scratch` left out) with the digest the registry resolves it to now. The
//! base-image trigger compares these digests later. Best effort: a reference the worker
//! cannot resolve is recorded without a digest.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use bytes::Bytes;
use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::engine::Engine;
use crate::protocol::{BaseImage, RegistryCredential};
use crate::steps::Workspace;

/// Reading a Dockerfile stops past this much archive (a huge context folder).
const MAX_ARCHIVE: usize = 64 * 1024 * 1024;

/// Expands `$NAME` and `${NAME}` (and `${NAME:-default}`) from `args`.
fn expand(word: &str, args: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (name, default, len) = if let Some(body) = rest.strip_prefix('{') {
            let end = body.find('}').unwrap_or(body.len());
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            (name, default, end + 2)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], None, end)
        };
        match args.get(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(default.unwrap_or("")),
        }
        rest = &rest[len.min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The external images a Dockerfile's stages start `FROM`, in order, without duplicates,
/// each with whether it is the runtime base: the image the last stage starts from, through
/// any earlier stages it names.
pub(super) fn from_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Vec<(String, bool)> {
    let mut args: HashMap<String, String> = HashMap::new();
    // Each stage's alias and the external image it starts from (`None`: scratch).
    let mut stages: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let mut seen_from = false;
    for line in dockerfile.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        if instruction.eq_ignore_ascii_case("ARG") && !seen_from {
            // Only ARGs before the first FROM apply to FROM lines.
            for decl in words {
                let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
                let value = build_args
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| default.trim_matches('"').to_string());
                args.insert(name.to_string(), value);
            }
        } else if instruction.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first().map(|w| expand(w, &args)) else {
                continue;
            };
            let alias = match rest.as_slice() {
                [_, r#as, alias] if r#as.eq_ignore_ascii_case("as") => Some(alias.to_lowercase()),
                _ => None,
            };
            let earlier = stages
                .iter()
                .rev()
                .find(|(a, _)| a.as_deref() == Some(image.to_lowercase().as_str()));
            let base = match earlier {
                Some((_, base)) => base.clone(),
                None if image == "scratch" => None,
                None => {
                    if !images.contains(&image) {
                        images.push(image.clone());
                    }
                    Some(image)
                }
            };
            stages.push((alias, base));
        }
    }
    let runtime = stages.last().and_then(|(_, base)| base.clone());
    images
        .into_iter()
        .map(|image| {
            let is_runtime = runtime.as_deref() == Some(image.as_str());
            (image, is_runtime)
        })
        .collect()
}

/// The Dockerfile of a build step, read back from the workspace.
pub(super) async fn dockerfile_text<E: Engine>(
    engine: &E,
    ws: &Workspace,
    folder: &str,
    dockerfile: &str,
) -> Option<String> {
    let archive = engine
        .read_archive(&ws.volume, folder, &ws.labels)
        .await
        .ok()?;
    archive_file(archive, dockerfile).await
}

/// The text of the file at `path` in a tar archive, gzipped or not, read from `archive`.
pub async fn archive_file<S>(mut archive: S, path: &str) -> Option<String>
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = archive.next().await {
        let chunk: Bytes = chunk.ok()?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ARCHIVE {
            return None;
        }
    }
    let wanted = path.trim_start_matches("./");
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(bytes.as_slice()).take(MAX_ARCHIVE as u64))
    } else {
        Box::new(bytes.as_slice())
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = entry.path().ok()?.to_string_lossy().into_owned();
        if name.trim_start_matches("./") == wanted {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

/// Where an image reference lives, normalised as registries name it: Docker Hub names get
/// `docker.io` and `library/`, a reference without tag or digest gets `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParts {
    pub registry: String,
    pub repository: String,
    /// `None` for a reference pinned by digest.
    pub tag: Option<String>,
}

/// The parts of `reference`, or `None` when it is not a valid image reference.
pub fn image_parts(reference: &str) -> Option<ImageParts> {
    let parsed: Reference = reference.parse().ok()?;
    let tag = match parsed.digest() {
        Some(_) => None,
        None => Some(parsed.tag().unwrap_or("latest").to_string()),
    };
    Some(ImageParts {
        registry: parsed.registry().to_string(),
        repository: parsed.repository().to_string(),
        tag,
    })
}

/// The digest `reference` resolves to in its registry now (a HEAD of its manifest), if it
/// can be asked: plain HTTP for loopback registries, the matching credential if any.
pub async fn resolve_digest(reference: &str, credentials: &[RegistryCredential]) -> Option<String> {
    let parsed: Reference = reference.parse().ok()?;
    let registry = parsed.resolve_registry().to_string();
    let protocol = if crate::index::is_loopback(&registry) {
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::try_from(ClientConfig {
        protocol,
        ..ClientConfig::default()
    })
    .ok()?;
    let auth = credentials
        .iter()
        .find(|c| c.registry == registry)
        .map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.username.clone(), c.password.expose().to_string())
        });
    client.fetch_manifest_digest(&parsed, &auth).await.ok()
}

/// The base images of a Dockerfile, each with its digest where it resolves.
pub async fn base_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    credentials: &[RegistryCredential],
) -> Vec<BaseImage> {
    let mut out = Vec::new();
    for (reference, runtime) in from_images(dockerfile, build_args) {
        let digest = match reference.split_once('@') {
            Some((_, d)) => d.parse().ok(),
            None => resolve_digest(&reference, credentials)
                .await
                .and_then(|d| d.parse().ok()),
        };
        out.push(BaseImage {
            reference,
            digest,
            runtime,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_external_stage_base() {
        let dockerfile = "ARG BASE=busybox:1\nARG V\nFROM --platform=$BUILDPLATFORM golang:${V:-1.22} AS build\nRUN make\nFROM ${BASE}\nCOPY --from=build /x /x\nFROM build AS again\nFROM scratch\nFROM busybox:1\n";
        let args = BTreeMap::from([("BASE".to_string(), "alpine:3".to_string())]);
        let names = |found: Vec<(String, bool)>| -> Vec<String> {
            found.into_iter().map(|(name, _)| name).collect()
        };
        assert_eq!(
            names(from_images(dockerfile, &args)),
            ["golang:1.22", "alpine:3", "busybox:1"]
        );
        assert_eq!(
            names(from_images(dockerfile, &BTreeMap::new())),
            ["golang:1.22", "busybox:1"]
        );
    }

    #[test]
    fn the_runtime_base_is_the_last_stages_through_aliases() {
        let two = "FROM golang:1 AS build\nRUN make\nFROM alpine:3\nCOPY --from=build /x /x\n";
        assert_eq!(
            from_images(two, &BTreeMap::new()),
            [
                ("golang:1".to_string(), false),
                ("alpine:3".to_string(), true)
            ]
        );
        let aliased = "FROM debian:12 AS base\nFROM golang:1 AS build\nFROM base\n";
        assert_eq!(
            from_images(aliased, &BTreeMap::new()),
            [
                ("debian:12".to_string(), true),
                ("golang:1".to_string(), false)
            ]
        );
        let scratch = "FROM golang:1 AS build\nFROM scratch\n";
        assert_eq!(
            from_images(scratch, &BTreeMap::new()),
            [("golang:1".to_string(), false)]
        );
    }

    #[test]
    fn references_are_normalised_as_registries_name_them() {
        let hub = image_parts("busybox").unwrap();
        assert_eq!(
            (
                hub.registry.as_str(),
                hub.repository.as_str(),
                hub.tag.as_deref()
            ),
            ("docker.io", "library/busybox", Some("latest"))
        );
        let own = image_parts("127.0.0.1:8080/team/base:v1").unwrap();
        assert_eq!(
            (
                own.registry.as_str(),
                own.repository.as_str(),
                own.tag.as_deref()
            ),
            ("127.0.0.1:8080", "team/base", Some("v1"))
        );
        let pinned = image_parts(&format!("alpine@sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(pinned.tag, None);
    }
}
