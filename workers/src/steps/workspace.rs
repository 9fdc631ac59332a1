//! What a `Steps` run owns on the engine: the `/workspace` volume, a small volume holding the
//! Docker `config.json` with the run's registry credentials, the task's volumes and the run's
//! networks. Everything carries `kiln.run`, `kiln.worker` and `kiln.execution` labels, so the
//! run's end removes it by label however the run ends, and a restarted worker removes what its
//! earlier self left behind.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::engine::{Engine, EngineError, Labels, NetworkCreate};
use crate::protocol::{RegistryCredential, RunId, Step, StepsJob};

/// The label every resource of a run carries: the run id.
pub const RUN_LABEL: &str = "kiln.run";
/// The label naming the worker that created a resource.
pub const WORKER_LABEL: &str = "kiln.worker";
/// The label naming the worker and the server it works for (`name@server`): what a
/// restarted worker removes at start-up.
pub const OWNER_LABEL: &str = "kiln.owner";
/// The label naming one execution of a run (run id and a nonce): what the run's end removes.
pub const EXECUTION_LABEL: &str = "kiln.execution";
/// Where steps find the Docker `config.json` (`DOCKER_CONFIG`).
pub const DOCKER_CONFIG_DIR: &str = "/kiln/docker-config";
/// Where every step finds the run's shared volume.
pub const WORKSPACE_DIR: &str = "/workspace";

/// A run's resources on the engine.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub run: RunId,
    /// `<run>-<nonce>`: unique per execution even on an engine several servers share.
    pub execution: String,
    pub labels: Labels,
    /// The volume mounted at `/workspace`.
    pub volume: String,
    /// The volume holding `config.json`, mounted read-only at `DOCKER_CONFIG_DIR`.
    pub docker_config: String,
    /// The network of steps that name none; `None`: the engine's default bridge.
    pub default_network: Option<String>,
    /// The task's network names, as the engine knows them.
    pub networks: HashMap<String, String>,
    /// The task's volume names, as the engine knows them.
    pub volumes: HashMap<String, String>,
}

/// A tar archive holding `files` (name, content) at its root, readable by every user.
fn tar_of(files: &[(&str, &[u8])]) -> Result<Bytes, EngineError> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o444);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *content)
            .map_err(|e| EngineError::Infrastructure(format!("packing {name}: {e}")))?;
    }
    builder
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| EngineError::Infrastructure(format!("packing files: {e}")))
}

fn once(bytes: Bytes) -> BoxStream<'static, std::io::Result<Bytes>> {
    futures::stream::iter([Ok(bytes)]).boxed()
}

/// Docker's `config.json` with a login for every credential.
pub fn docker_config_json(credentials: &[RegistryCredential]) -> String {
    let auths: serde_json::Map<String, serde_json::Value> = credentials
        .iter()
        .map(|c| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                c.username,
                c.password.expose()
            ));
            (c.registry.clone(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    serde_json::json!({ "auths": auths }).to_string()
}

impl Workspace {
    /// Creates the run's volumes and networks. On failure, what was created is left for
    /// `remove` (the caller always calls it).
    pub async fn create<E: Engine>(
        engine: &E,
        run: RunId,
        execution: &str,
        (worker, owner): (&str, &str),
        job: &StepsJob,
        credentials: &[RegistryCredential],
    ) -> Result<Workspace, EngineError> {
        let labels = Labels::from([
            (RUN_LABEL.to_string(), run.to_string()),
            (WORKER_LABEL.to_string(), worker.to_string()),
            (OWNER_LABEL.to_string(), owner.to_string()),
            (EXECUTION_LABEL.to_string(), execution.to_string()),
        ]);
        let mut ws = Workspace {
            run,
            execution: execution.to_string(),
            volume: format!("kiln-workspace-{execution}"),
            docker_config: format!("kiln-docker-config-{execution}"),
            default_network: None,
            networks: HashMap::new(),
            volumes: HashMap::new(),
            labels,
        };
        engine.create_volume(&ws.volume, &ws.labels).await?;
        engine.create_volume(&ws.docker_config, &ws.labels).await?;
        let config = docker_config_json(credentials);
        let archive = tar_of(&[("config.json", config.as_bytes())])?;
        engine
            .put_archive(&ws.docker_config, once(archive), &ws.labels)
            .await?;
        for volume in &job.volumes {
            let name = format!("{}-{execution}", volume.name);
            engine.create_volume(&name, &ws.labels).await?;
            let files: Vec<(&str, &[u8])> = volume
                .files
                .iter()
                .map(|(n, v)| (n.as_str(), v.expose().as_bytes()))
                .collect();
            engine
                .put_archive(&name, once(tar_of(&files)?), &ws.labels)
                .await?;
            ws.volumes.insert(volume.name.clone(), name);
        }
        if job.networks.is_empty() {
            let name = format!("kiln-{execution}");
            engine
                .create_network(&NetworkCreate {
                    name: name.clone(),
                    driver: None,
                    ipv6: false,
                    labels: ws.labels.clone(),
                })
                .await?;
            ws.default_network = Some(name);
        }
        for network in &job.networks {
            let name = if network.skip_creation {
                network.name.clone()
            } else {
                let name = format!("{}-{execution}", network.name);
                engine
                    .create_network(&NetworkCreate {
                        name: name.clone(),
                        driver: network.driver.clone(),
                        ipv6: network.ipv6,
                        labels: ws.labels.clone(),
                    })
                    .await?;
                name
            };
            if network.is_default {
                ws.default_network = Some(name.clone());
            }
            ws.networks.insert(network.name.clone(), name);
        }
        Ok(ws)
    }

    /// Unpacks the run's context (a tar, optionally gzip-compressed) into `/workspace`.
    pub async fn seed<E: Engine>(
        &self,
        engine: &E,
        archive: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<(), EngineError> {
        engine
            .put_archive(&self.volume, archive, &self.labels)
            .await
    }

    /// The engine's name of the network `step` runs on, if any.
    pub fn network_of(&self, step: &Step) -> Option<String> {
        match &step.network {
            Some(n) => Some(self.networks.get(n).cloned().unwrap_or_else(|| n.clone())),
            None => self.default_network.clone(),
        }
    }

    /// The engine's name of `step`'s container: unique per execution, with the step id first
    /// so `docker ps` reads well. Other steps reach it by its id, a network alias.
    pub fn container_of(&self, step: &Step) -> String {
        format!("{}-{}", step.id, self.execution)
    }
}

/// Removes everything of one execution of a run (containers first, then networks and
/// volumes). Best effort: what cannot be removed is logged.
pub async fn remove<E: Engine>(engine: &E, execution: &str) {
    match engine.remove_labelled(EXECUTION_LABEL, execution).await {
        Ok(n) => tracing::debug!(execution, removed = n, "run resources removed"),
        Err(e) => tracing::warn!(execution, error = %e, "run resources not removed"),
    }
}
