//! Containers, networks and volumes for steps, on the Docker engine. Nothing here touches
//! the worker's file system: archives go in and out through the engine's API, so a remote
//! engine works the same.

use std::collections::HashMap;

use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::{already_gone, docker_credentials};
use crate::engine::{ContainerSpec, EngineError, Labels, NetworkCreate};
use crate::logship::LogSink;
use crate::protocol::{Digest, RegistryCredential};

/// The empty image helper containers are created from: imported once from an empty tar, never
/// run (a stopped container is enough to copy files into and out of its volumes).
pub(super) const HELPER_IMAGE: &str = "kiln-worker-helper:empty";
/// Where a helper container mounts the volume it reads or fills.
const HELPER_MOUNT: &str = "/kiln-volume";

fn engine(what: &str, e: bollard::errors::Error) -> EngineError {
    EngineError::Infrastructure(format!("{what}: {e}"))
}

fn to_map(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Imports the helper image unless the engine has it.
pub(super) async fn ensure_helper_image(docker: &Docker) -> Result<(), EngineError> {
    if docker.inspect_image(HELPER_IMAGE).await.is_ok() {
        return Ok(());
    }
    // Two zero blocks: the end-of-archive marker of an empty tar.
    let empty = Bytes::from(vec![0u8; 1024]);
    let (repo, tag) = HELPER_IMAGE.split_once(':').expect("the name has a tag");
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    docker
        .create_image(Some(options), Some(bollard::body_full(empty)), None)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| engine("importing the helper image", e))?;
    Ok(())
}

pub(super) async fn image_id(docker: &Docker, image: &str) -> Result<Option<Digest>, EngineError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(inspect.id.and_then(|id| id.parse().ok())),
        Err(e) if already_gone(&e) => Ok(None),
        Err(e) => Err(engine(&format!("inspecting {image}"), e)),
    }
}

pub(super) async fn has_image(docker: &Docker, image: &str) -> Result<bool, EngineError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if already_gone(&e) => Ok(false),
        Err(e) => Err(engine(&format!("inspecting {image}"), e)),
    }
}

pub(super) async fn pull(
    docker: &Docker,
    image: &str,
    credential: Option<&RegistryCredential>,
    log: &LogSink,
) -> Result<(), EngineError> {
    log.line(format!("Pulling image: {image}"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = docker.create_image(Some(options), None, credential.map(docker_credentials));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                    return Err(EngineError::BuildFailed(format!("pulling {image}: {msg}")));
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) if status_code < 500 => {
                return Err(EngineError::BuildFailed(format!(
                    "pulling {image}: {message}"
                )))
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(EngineError::BuildFailed(format!(
                    "pulling {image}: {error}"
                )))
            }
            Err(e) => return Err(engine(&format!("pulling {image}"), e)),
        }
    }
    Ok(())
}

/// `-p` as Docker's CLI reads it: `[ip:][hostPort:]containerPort[/proto]`.
fn port_binding(spec: &str) -> (String, PortBinding) {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = addr.rsplitn(3, ':').collect();
    let (container, host_port, host_ip) = match parts.as_slice() {
        [c] => (*c, None, None),
        [c, h] => (*c, Some(*h), None),
        [c, h, ip] => (*c, Some(*h), Some(*ip)),
        _ => (addr, None, None),
    };
    let binding = PortBinding {
        host_ip: host_ip.map(str::to_string),
        host_port: host_port.filter(|h| !h.is_empty()).map(str::to_string),
    };
    (format!("{container}/{proto}"), binding)
}

fn exposed(spec: &str) -> String {
    if spec.contains('/') {
        spec.to_string()
    } else {
        format!("{spec}/tcp")
    }
}

pub(super) async fn create_container(
    docker: &Docker,
    spec: &ContainerSpec,
) -> Result<(), EngineError> {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        let (key, binding) = port_binding(p);
        port_bindings
            .entry(key)
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let mut exposed_ports: Vec<String> = spec.expose.iter().map(|e| exposed(e)).collect();
    exposed_ports.extend(port_bindings.keys().cloned());
    let networking_config = spec.network.as_ref().map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            n.clone(),
            EndpointSettings {
                aliases: Some(spec.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
        entrypoint: spec.entrypoint.clone(),
        env: Some(spec.env.clone()),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        labels: Some(to_map(&spec.labels)),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        host_config: Some(HostConfig {
            binds: Some(
                spec.mounts
                    .iter()
                    .map(|(volume, path)| format!("{volume}:{path}"))
                    .collect(),
            ),
            network_mode: spec.network.clone(),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            privileged: Some(spec.privileged),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.name)
        .build();
    match docker.create_container(Some(options), body).await {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) => Err(EngineError::BuildFailed(format!(
            "image {} not found: {message}",
            spec.image
        ))),
        Err(e) => Err(engine(&format!("creating container {}", spec.name), e)),
    }
}

/// Splits output chunks into lines; what is left at the end is flushed as a last line.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8], line: &(dyn Fn(&str) + Send + Sync)) {
        self.partial.extend_from_slice(chunk);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            let text = String::from_utf8_lossy(&self.partial[..end]);
            line(text.trim_end_matches('\r'));
            self.partial = rest;
        }
    }

    fn finish(&mut self, line: &(dyn Fn(&str) + Send + Sync)) {
        if !self.partial.is_empty() {
            line(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
    }
}

pub(super) async fn wait_container(
    docker: &Docker,
    name: &str,
    line: &(dyn Fn(&str) + Send + Sync),
) -> Result<i64, EngineError> {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(name, Some(options));
    let (mut out, mut err) = (Lines::default(), Lines::default());
    while let Some(item) = logs.next().await {
        match item.map_err(|e| engine(&format!("reading the output of {name}"), e))? {
            LogOutput::StdErr { message } => err.push(&message, line),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.push(&message, line)
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    out.finish(line);
    err.finish(line);
    let mut wait = docker.wait_container(name, None);
    match wait.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        // bollard turns a non-zero exit into this error.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(engine(&format!("waiting for {name}"), e)),
        None => Err(EngineError::Infrastructure(format!(
            "the engine said nothing about how {name} exited"
        ))),
    }
}

pub(super) async fn remove_container(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(false)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => {}
        Err(e) if already_gone(&e) => {}
        // Removal already in progress (a second stop of the same step) is no failure.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {}
        Err(e) => tracing::warn!(container = %name, error = %e, "container not removed"),
    }
}

pub(super) async fn create_network(
    docker: &Docker,
    spec: &NetworkCreate,
) -> Result<(), EngineError> {
    let request = NetworkCreateRequest {
        name: spec.name.clone(),
        driver: Some(spec.driver.clone().unwrap_or_else(|| "bridge".into())),
        enable_ipv6: Some(spec.ipv6),
        labels: Some(to_map(&spec.labels)),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .map(drop)
        .map_err(|e| engine(&format!("creating network {}", spec.name), e))
}

pub(super) async fn create_volume(
    docker: &Docker,
    name: &str,
    labels: &Labels,
) -> Result<(), EngineError> {
    let request = VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(to_map(labels)),
        ..Default::default()
    };
    docker
        .create_volume(request)
        .await
        .map(drop)
        .map_err(|e| engine(&format!("creating volume {name}"), e))
}

/// A stopped container from the helper image with `volume` mounted; returns its name.
async fn helper(docker: &Docker, volume: &str, labels: &Labels) -> Result<String, EngineError> {
    ensure_helper_image(docker).await?;
    let spec = ContainerSpec {
        name: format!("kiln-helper-{}", uuid::Uuid::new_v4().simple()),
        image: HELPER_IMAGE.into(),
        // Never started; Docker only wants a command to create it.
        cmd: vec!["/never-started".into()],
        mounts: vec![(volume.to_string(), HELPER_MOUNT.to_string())],
        labels: labels.clone(),
        ..Default::default()
    };
    create_container(docker, &spec).await?;
    Ok(spec.name)
}

pub(super) async fn put_archive(
    docker: &Docker,
    volume: &str,
    archive: BoxStream<'static, std::io::Result<Bytes>>,
    labels: &Labels,
) -> Result<(), EngineError> {
    let name = helper(docker, volume, labels).await?;
    let options = UploadToContainerOptionsBuilder::default()
        .path(HELPER_MOUNT)
        .build();
    let result = docker
        .upload_to_container(&name, Some(options), bollard::body_try_stream(archive))
        .await
        .map_err(|e| engine(&format!("filling volume {volume}"), e));
    remove_container(docker, &name).await;
    result
}

pub(super) async fn read_archive(
    docker: &Docker,
    volume: &str,
    folder: &str,
    labels: &Labels,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, EngineError> {
    let name = helper(docker, volume, labels).await?;
    let folder = folder.trim_matches('/');
    // `dir/.` makes the engine put the folder's contents at the archive's root.
    let path = if folder.is_empty() || folder == "." {
        format!("{HELPER_MOUNT}/.")
    } else {
        format!("{HELPER_MOUNT}/{folder}/.")
    };
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(&path)
        .build();
    let docker = docker.clone();
    let stream = docker
        .download_from_container(&name, Some(options))
        .map_err(std::io::Error::other);
    Ok(stream.boxed())
}

fn label_filter(key: &str, value: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{key}={value}")])])
}

pub(super) async fn remove_labelled(
    docker: &Docker,
    key: &str,
    value: &str,
) -> Result<usize, EngineError> {
    let filters = label_filter(key, value);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine("listing containers", e))?;
    let mut removed = 0;
    for c in containers {
        if let Some(id) = c.id {
            remove_container(docker, &id).await;
            removed += 1;
        }
    }
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine("listing networks", e))?;
    for n in networks.into_iter().filter_map(|n| n.name) {
        match docker.remove_network(&n).await {
            Ok(()) => removed += 1,
            Err(e) if already_gone(&e) => {}
            Err(e) => tracing::warn!(network = %n, error = %e, "network not removed"),
        }
    }
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine("listing volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match docker.remove_volume(&v.name, Some(options)).await {
            Ok(()) => removed += 1,
            Err(e) if already_gone(&e) => {}
            Err(e) => tracing::warn!(volume = %v.name, error = %e, "volume not removed"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_as_docker_does() {
        let (key, b) = port_binding("127.0.0.1:8080:80/udp");
        assert_eq!(key, "80/udp");
        assert_eq!(b.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b.host_port.as_deref(), Some("8080"));
        let (key, b) = port_binding("8080:80");
        assert_eq!(
            (key.as_str(), b.host_port.as_deref()),
            ("80/tcp", Some("8080"))
        );
        let (key, b) = port_binding("80");
        assert_eq!((key.as_str(), b.host_port), ("80/tcp", None));
    }
}
