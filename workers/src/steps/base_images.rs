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

/// The external images a Dockerfile's stages start `FROM`, in order, without duplicates.
pub(super) fn from_images(dockerfile: &str, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
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
            if let [_, r#as, alias] = rest.as_slice() {
                if r#as.eq_ignore_ascii_case("as") {
                    stages.push(alias.to_lowercase());
                }
            }
            let earlier_stage = stages.contains(&image.to_lowercase());
            if image != "scratch" && !earlier_stage && !images.contains(&image) {
                images.push(image);
            }
        }
    }
    images
}

/// The Dockerfile of a build step, read back from the workspace.
pub(super) async fn dockerfile_text<E: Engine>(
    engine: &E,
    ws: &Workspace,
    folder: &str,
    dockerfile: &str,
) -> Option<String> {
    let mut archive = engine
        .read_archive(&ws.volume, folder, &ws.labels)
        .await
        .ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = archive.next().await {
        let chunk: Bytes = chunk.ok()?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ARCHIVE {
            return None;
        }
    }
    let wanted = dockerfile.trim_start_matches("./");
    let mut tar = tar::Archive::new(bytes.as_slice());
    for entry in tar.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        if path.trim_start_matches("./") == wanted {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

/// The digest `reference` resolves to in its registry now, if the worker can ask.
async fn resolve(reference: &str, credentials: &[RegistryCredential]) -> Option<String> {
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
pub(super) async fn base_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    credentials: &[RegistryCredential],
) -> Vec<BaseImage> {
    let mut out = Vec::new();
    for reference in from_images(dockerfile, build_args) {
        let digest = match reference.split_once('@') {
            Some((_, d)) => d.parse().ok(),
            None => resolve(&reference, credentials)
                .await
                .and_then(|d| d.parse().ok()),
        };
        out.push(BaseImage { reference, digest });
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
        assert_eq!(
            from_images(dockerfile, &args),
            ["golang:1.22", "alpine:3", "busybox:1"]
        );
        assert_eq!(
            from_images(dockerfile, &BTreeMap::new()),
            ["golang:1.22", "busybox:1"]
        );
    }
}
