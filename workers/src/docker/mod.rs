//! The Docker engine: BuildKit builds (`build.rs`), pushes through the daemon, and the
//! containers, networks and volumes of steps (`containers.rs`).

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::OnceCell;

use crate::engine::{
    BuildJob, Built, ContainerSpec, Engine, EngineError, Labels, NetworkCreate, PlatformSupport,
    Pushed,
};
use crate::logship::LogSink;
use crate::protocol::{Digest, ImageRef, Platform, RegistryCredential};

mod build;
mod containers;

/// How long to wait for the engine to answer a request (not for a whole build).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

pub struct DockerEngine {
    host: String,
    /// Connected and version-negotiated on first use, so a worker can start before its engine.
    docker: OnceCell<Docker>,
}

impl DockerEngine {
    /// `host`: `unix:///var/run/docker.sock`, `tcp://…` or `http://…`; `None` reads
    /// `DOCKER_HOST` and falls back to the local socket.
    pub fn new(host: Option<&str>) -> DockerEngine {
        let host = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        DockerEngine {
            host,
            docker: OnceCell::new(),
        }
    }

    async fn docker(&self) -> Result<&Docker, EngineError> {
        self.docker
            .get_or_try_init(|| async {
                let unreachable = |e: bollard::errors::Error| {
                    EngineError::Infrastructure(format!(
                        "cannot reach the Docker engine at {}: {e}",
                        self.host
                    ))
                };
                let docker = Docker::connect_with_host(&self.host).map_err(unreachable)?;
                // Debian's engine speaks API 1.41; newer clients must step down to it.
                docker
                    .with_timeout(REQUEST_TIMEOUT)
                    .negotiate_version()
                    .await
                    .map_err(unreachable)
            })
            .await
    }
}

fn docker_credentials(c: &RegistryCredential) -> DockerCredentials {
    DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.expose().to_string()),
        serveraddress: Some(c.registry.clone()),
        ..Default::default()
    }
}

/// `registry/repository`, the name Docker tags and pushes by (without the tag).
fn repository_name(image: &ImageRef) -> String {
    match image.registry() {
        Some(r) => format!("{r}/{}", image.repository()),
        None => image.repository().to_string(),
    }
}

impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.docker().await?.ping().await.map(drop).map_err(|e| {
            EngineError::Infrastructure(format!(
                "the Docker engine at {} does not answer: {e}",
                self.host
            ))
        })
    }

    async fn platforms(&self) -> Result<PlatformSupport, EngineError> {
        let info = self
            .docker()
            .await?
            .version()
            .await
            .map_err(|e| EngineError::Infrastructure(format!("docker version: {e}")))?;
        let os = info.os.unwrap_or_else(|| "linux".into());
        let arch = info.arch.unwrap_or_else(|| "amd64".into());
        let native: Platform = format!("{os}/{arch}")
            .parse()
            .map_err(|e| EngineError::Infrastructure(format!("engine platform: {e}")))?;
        // Emulators registered on this machine only help an engine that runs on it.
        let emulated = if self.host.starts_with("unix://") {
            emulated_platforms()
                .into_iter()
                .filter(|p| *p != native)
                .collect()
        } else {
            Vec::new()
        };
        Ok(PlatformSupport {
            native: vec![native],
            emulated,
        })
    }

    async fn build(&self, job: BuildJob, log: &LogSink) -> Result<Built, EngineError> {
        build::build(self.docker().await?, job, log).await
    }

    async fn tag(&self, source: &str, target: &str) -> Result<(), EngineError> {
        let (repo, tag) = match target.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (target, "latest"),
        };
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker()
            .await?
            .tag_image(source, Some(options))
            .await
            .map_err(|e| EngineError::Infrastructure(format!("tagging {target}: {e}")))
    }

    async fn image_id(&self, image: &str) -> Result<Option<Digest>, EngineError> {
        containers::image_id(self.docker().await?, image).await
    }

    async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        containers::has_image(self.docker().await?, image).await
    }

    async fn pull(
        &self,
        image: &str,
        credential: Option<&RegistryCredential>,
        log: &LogSink,
    ) -> Result<(), EngineError> {
        containers::pull(self.docker().await?, image, credential, log).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<(), EngineError> {
        containers::create_container(self.docker().await?, spec).await
    }

    async fn start_container(&self, name: &str) -> Result<(), EngineError> {
        self.docker()
            .await?
            .start_container(name, None)
            .await
            .map_err(|e| EngineError::Infrastructure(format!("starting {name}: {e}")))
    }

    async fn wait_container(
        &self,
        name: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<i64, EngineError> {
        containers::wait_container(self.docker().await?, name, line).await
    }

    async fn remove_container(&self, name: &str) {
        if let Ok(docker) = self.docker().await {
            containers::remove_container(docker, name).await;
        }
    }

    async fn create_network(&self, spec: &NetworkCreate) -> Result<(), EngineError> {
        containers::create_network(self.docker().await?, spec).await
    }

    async fn create_volume(&self, name: &str, labels: &Labels) -> Result<(), EngineError> {
        containers::create_volume(self.docker().await?, name, labels).await
    }

    async fn put_archive(
        &self,
        volume: &str,
        archive: BoxStream<'static, std::io::Result<Bytes>>,
        labels: &Labels,
    ) -> Result<(), EngineError> {
        containers::put_archive(self.docker().await?, volume, archive, labels).await
    }

    async fn read_archive(
        &self,
        volume: &str,
        folder: &str,
        labels: &Labels,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, EngineError> {
        containers::read_archive(self.docker().await?, volume, folder, labels).await
    }

    async fn remove_labelled(&self, key: &str, value: &str) -> Result<usize, EngineError> {
        containers::remove_labelled(self.docker().await?, key, value).await
    }

    async fn forget(&self, names: &[String]) {
        let Ok(docker) = self.docker().await else {
            return;
        };
        for name in names {
            let options = RemoveImageOptionsBuilder::default().build();
            match docker.remove_image(name, Some(options), None).await {
                Ok(_) => {}
                Err(e) if already_gone(&e) => {}
                // An image still used by a container, say: leave it.
                Err(e) => tracing::debug!(image = %name, error = %e, "image not removed"),
            }
        }
    }

    async fn push(
        &self,
        built: &Built,
        image: &ImageRef,
        credentials: &[RegistryCredential],
        log: &LogSink,
    ) -> Result<Pushed, EngineError> {
        let docker = self.docker().await?;
        let repo = repository_name(image);
        let tag = image.tag_or_latest().to_string();
        docker
            .tag_image(
                &built.local_name,
                Some(
                    TagImageOptionsBuilder::default()
                        .repo(&repo)
                        .tag(&tag)
                        .build(),
                ),
            )
            .await
            .map_err(|e| EngineError::Infrastructure(format!("tagging {image}: {e}")))?;
        let creds = image
            .registry()
            .and_then(|r| credentials.iter().find(|c| c.registry == r))
            .map(docker_credentials);
        log.line(format!("Pushing {image}"));
        let mut stream = docker.push_image(
            &repo,
            Some(PushImageOptionsBuilder::default().tag(&tag).build()),
            creds,
        );
        let mut result = None;
        let (mut pushed, mut existing) = (0, 0);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| push_error(image, e))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Infrastructure(format!(
                    "push of {image} failed: {detail}"
                )));
            }
            // Per-layer transfer progress would flood the log; count outcomes instead.
            match info.status.as_deref() {
                Some("Pushed") => pushed += 1,
                Some("Layer already exists") => existing += 1,
                Some(s) if s.starts_with("Mounted from") => existing += 1,
                Some(s) => {
                    if let Some(d) = pushed_in(s) {
                        log.line(format!(
                            "{pushed} layer(s) pushed, {existing} already in the registry"
                        ));
                        log.line(s);
                        result = Some(d);
                    }
                }
                None => {}
            }
        }
        result.ok_or_else(|| {
            EngineError::Infrastructure(format!("push of {image} reported no manifest digest"))
        })
    }
}

/// Errors from `forget` that mean there was nothing to forget.
fn already_gone(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Platforms this machine runs through qemu-user-static's binfmt_misc handlers, which
/// BuildKit uses for RUN steps of foreign platforms.
fn emulated_platforms() -> Vec<Platform> {
    const HANDLERS: [(&str, &str); 6] = [
        ("qemu-aarch64", "linux/arm64"),
        ("qemu-arm", "linux/arm/v7"),
        ("qemu-x86_64", "linux/amd64"),
        ("qemu-riscv64", "linux/riscv64"),
        ("qemu-s390x", "linux/s390x"),
        ("qemu-ppc64le", "linux/ppc64le"),
    ];
    let dir = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    HANDLERS
        .iter()
        .filter(|(handler, _)| {
            std::fs::read_to_string(dir.join(handler)).is_ok_and(|s| s.starts_with("enabled"))
        })
        .filter_map(|(_, platform)| platform.parse().ok())
        .collect()
}

/// Docker ends a push with `<tag>: digest: sha256:… size: N`.
fn pushed_in(status: &str) -> Option<Pushed> {
    let rest = status.split("digest: ").nth(1)?;
    let mut words = rest.split_whitespace();
    let digest = words.next()?.parse().ok()?;
    let size = match (words.next(), words.next()) {
        (Some("size:"), Some(n)) => n.parse().ok()?,
        _ => return None,
    };
    Some(Pushed { digest, size })
}

fn push_error(image: &ImageRef, e: bollard::errors::Error) -> EngineError {
    EngineError::Infrastructure(format!("push of {image} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_digest_in_docker_push_output() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let pushed = pushed_in(&format!("ca1: digest: {d} size: 527")).unwrap();
        assert_eq!((pushed.digest.to_string(), pushed.size), (d, 527));
        assert_eq!(pushed_in("Preparing"), None);
    }
}
