//! Publishing what a run built. One platform: each name is pushed as that image. Several:
//! each platform's image is pushed once into every repository named (the daemon cannot push
//! by digest, so it goes under the repository's first tag), then one OCI image index listing
//! them all is put under every tag, replacing that single-platform tag.

use std::time::Instant;

use crate::engine::{Built, Engine, EngineError};
use crate::index::{build_index, IndexPusher, PlatformManifest, DOCKER_MANIFEST_MEDIA_TYPE};
use crate::logship::LogSink;
use crate::protocol::{ImageRef, Outcome, OutputImage, PlatformDigest, RegistryCredential};

type Failure = (Outcome, String);

pub async fn publish<E: Engine>(
    engine: &E,
    builds: &[Built],
    images: &[ImageRef],
    credentials: &[RegistryCredential],
    log: &LogSink,
) -> Result<Vec<OutputImage>, Failure> {
    let started = Instant::now();
    let outputs = match builds {
        [single] => push_each(engine, single, images, credentials, log).await?,
        _ => push_indexes(engine, builds, images, credentials, log).await?,
    };
    log.line(format!(
        "Pushed {} image(s) in {:.1}s",
        outputs.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(outputs)
}

fn push_failed(log: &LogSink, e: impl std::fmt::Display, outcome: Outcome) -> Failure {
    log.line(format!("Push failed: {e}"));
    (outcome, e.to_string())
}

fn engine_failed(log: &LogSink, e: EngineError) -> Failure {
    let outcome = e.outcome();
    push_failed(log, e, outcome)
}

fn output(image: &ImageRef, digest: crate::protocol::Digest) -> OutputImage {
    OutputImage {
        registry: image.registry().map(str::to_string),
        repository: image.repository().to_string(),
        tag: image.tag_or_latest().to_string(),
        digest,
        platforms: Vec::new(),
    }
}

async fn push_each<E: Engine>(
    engine: &E,
    built: &Built,
    images: &[ImageRef],
    credentials: &[RegistryCredential],
    log: &LogSink,
) -> Result<Vec<OutputImage>, Failure> {
    let mut outputs = Vec::new();
    for image in images {
        let pushed = engine
            .push(built, image, credentials, log)
            .await
            .map_err(|e| engine_failed(log, e))?;
        outputs.push(output(image, pushed.digest));
    }
    Ok(outputs)
}

async fn push_indexes<E: Engine>(
    engine: &E,
    builds: &[Built],
    images: &[ImageRef],
    credentials: &[RegistryCredential],
    log: &LogSink,
) -> Result<Vec<OutputImage>, Failure> {
    let mut outputs = Vec::new();
    for group in by_repository(images) {
        let first = group[0];
        let mut manifests = Vec::new();
        for built in builds {
            let pushed = engine
                .push(built, first, credentials, log)
                .await
                .map_err(|e| engine_failed(log, e))?;
            manifests.push(PlatformManifest {
                platform: built.platform.clone(),
                digest: pushed.digest,
                size: pushed.size,
                media_type: DOCKER_MANIFEST_MEDIA_TYPE.to_string(),
            });
        }
        let (index, _) =
            build_index(&manifests).map_err(|e| push_failed(log, e, Outcome::Error))?;
        let registry = first.registry().unwrap_or("docker.io");
        let creds = credentials.iter().find(|c| c.registry == registry);
        let pusher =
            IndexPusher::new(registry, creds).map_err(|e| push_failed(log, e, Outcome::Error))?;
        let platforms: Vec<PlatformDigest> = manifests
            .iter()
            .map(|m| PlatformDigest {
                platform: m.platform.clone(),
                digest: m.digest.clone(),
            })
            .collect();
        for image in group {
            let digest = pusher
                .push(image.repository(), image.tag_or_latest(), &index)
                .await
                .map_err(|e| push_failed(log, e, Outcome::Error))?;
            log.line(format!(
                "{}: image index {digest} for {}",
                image.tag_or_latest(),
                platforms
                    .iter()
                    .map(|p| p.platform.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let mut out = output(image, digest);
            out.platforms = platforms.clone();
            outputs.push(out);
        }
    }
    Ok(outputs)
}

/// Images grouped by registry and repository, in the order first named.
fn by_repository(images: &[ImageRef]) -> Vec<Vec<&ImageRef>> {
    let mut groups: Vec<Vec<&ImageRef>> = Vec::new();
    for image in images {
        let same = |g: &&mut Vec<&ImageRef>| {
            g[0].registry() == image.registry() && g[0].repository() == image.repository()
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.push(image),
            None => groups.push(vec![image]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_group_by_repository_in_order() {
        let images: Vec<ImageRef> = ["r/a:1", "r/b:1", "r/a:2", "other/a:1"]
            .iter()
            .map(|s| ImageRef::parse(s).unwrap())
            .collect();
        let groups: Vec<Vec<String>> = by_repository(&images)
            .iter()
            .map(|g| g.iter().map(|i| i.to_string()).collect())
            .collect();
        assert_eq!(
            groups,
            [vec!["r/a:1", "r/a:2"], vec!["r/b:1"], vec!["other/a:1"]]
        );
    }
}
