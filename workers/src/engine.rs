//! What a worker needs from a container engine: build an image, push it. The Docker engine
//! with BuildKit implements it (`docker.rs`); the trait keeps the agent free of bollard.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::logship::LogSink;
use crate::protocol::{BuildSpec, Digest, ImageRef, Outcome, Platform, RegistryCredential, RunId};

/// Why an engine call failed. The split decides the run's status: `Failed` is the build's own
/// fault (a RUN step exited non-zero), `Error` is the infrastructure's.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BuildFailed(String),
    #[error("{0}")]
    Infrastructure(String),
}

impl EngineError {
    /// The run status this failure ends a run with.
    pub fn outcome(&self) -> Outcome {
        match self {
            EngineError::BuildFailed(_) => Outcome::Failed,
            EngineError::Infrastructure(_) => Outcome::Error,
        }
    }
}

/// One build to run, for one platform.
pub struct BuildJob {
    pub run_id: RunId,
    pub spec: BuildSpec,
    pub platform: Platform,
    /// What the engine names the result locally, until it is pushed under its real names.
    pub local_name: String,
    /// The context archive (tar, optionally gzip-compressed), streamed from the server.
    pub context: BoxStream<'static, std::io::Result<Bytes>>,
    pub credentials: Vec<RegistryCredential>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub platform: Platform,
    /// The local name the engine knows the image by.
    pub local_name: String,
    pub steps_total: usize,
    pub steps_cached: usize,
}

pub trait Engine: Send + Sync + 'static {
    /// Whether the engine answers now. A worker leases runs only while it does.
    fn ping(&self) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The platforms this engine builds: natively, and by emulation.
    fn platforms(&self) -> impl Future<Output = Result<PlatformSupport, EngineError>> + Send;

    /// Builds the image, writing progress to `log`. Dropping the future stops the build.
    fn build(
        &self,
        job: BuildJob,
        log: &LogSink,
    ) -> impl Future<Output = Result<Built, EngineError>> + Send;

    /// Pushes the image built as `built` under the name `image`; returns what the registry
    /// stored.
    fn push(
        &self,
        built: &Built,
        image: &ImageRef,
        credentials: &[RegistryCredential],
        log: &LogSink,
    ) -> impl Future<Output = Result<Pushed, EngineError>> + Send;

    /// Gives the local image `source` the extra name `target` (`registry/repo:tag`).
    fn tag(
        &self,
        source: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The id (config digest) of the local image `image`, if the engine holds it.
    fn image_id(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<Digest>, EngineError>> + Send;

    /// Whether the engine holds the image `image` locally.
    fn has_image(&self, image: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;

    /// Pulls `image`, with `credential` for its registry if one is given. A missing image is
    /// `BuildFailed` naming it.
    fn pull(
        &self,
        image: &str,
        credential: Option<&RegistryCredential>,
        log: &LogSink,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Creates (but does not start) a container named `spec.name`.
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn start_container(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Follows a started container's output, one call of `line` per line (stdout and stderr
    /// interleaved), until it exits; returns its exit code.
    fn wait_container(
        &self,
        name: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> impl Future<Output = Result<i64, EngineError>> + Send;

    /// Kills and removes a container, whatever state it is in. Best effort: failures are
    /// logged, a missing container is no failure.
    fn remove_container(&self, name: &str) -> impl Future<Output = ()> + Send;

    /// Creates a network (bridge unless `driver` says otherwise).
    fn create_network(
        &self,
        spec: &NetworkCreate,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn create_volume(
        &self,
        name: &str,
        labels: &Labels,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Unpacks a tar archive (optionally gzip-compressed) at the root of a volume. Works with a
    /// remote engine: nothing goes through the worker's file system.
    fn put_archive(
        &self,
        volume: &str,
        archive: BoxStream<'static, std::io::Result<Bytes>>,
        labels: &Labels,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The folder `folder` of a volume (relative to its root) as a tar archive whose entries
    /// are relative to that folder. The helper container it reads through carries `labels`
    /// and goes when they are removed.
    fn read_archive(
        &self,
        volume: &str,
        folder: &str,
        labels: &Labels,
    ) -> impl Future<Output = Result<BoxStream<'static, std::io::Result<Bytes>>, EngineError>> + Send;

    /// Removes every container, network and volume carrying the label `key=value`; returns
    /// how many it removed. Best effort per resource.
    fn remove_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<usize, EngineError>> + Send;

    /// Drops the engine's local names for a run's images once they are pushed (or the run
    /// ended), so a long-lived worker's image store does not grow by a tag per run. BuildKit
    /// keeps its layer cache apart, so rebuilds stay warm. Best effort: failures are logged.
    fn forget(&self, names: &[String]) -> impl Future<Output = ()> + Send;
}

/// Labels put on everything a run creates, so it can be found and removed however the run
/// ends (`kiln.run`, `kiln.worker`).
pub type Labels = BTreeMap<String, String>;

/// A container for a step: what `docker create` takes, minus anything host-specific (no bind
/// mounts: the engine may be remote).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    /// `K=V`.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// (volume name, mount path).
    pub mounts: Vec<(String, String)>,
    pub network: Option<String>,
    /// DNS names on `network` besides the container's name.
    pub aliases: Vec<String>,
    /// `-p` values: `8080:80`, `127.0.0.1:8080:80/tcp`, `80`.
    pub ports: Vec<String>,
    pub expose: Vec<String>,
    pub privileged: bool,
    pub labels: Labels,
}

/// A network to create.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub name: String,
    pub driver: Option<String>,
    pub ipv6: bool,
    pub labels: Labels,
}

/// What an engine can build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSupport {
    pub native: Vec<Platform>,
    pub emulated: Vec<Platform>,
}

/// A manifest in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
}
