//! What a worker needs from a container engine: build an image, push it. The Docker engine
//! with BuildKit implements it (`docker.rs`); the trait keeps the agent free of bollard.

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

    /// Drops the engine's local names for a run's images once they are pushed (or the run
    /// ended), so a long-lived worker's image store does not grow by a tag per run. BuildKit
    /// keeps its layer cache apart, so rebuilds stay warm. Best effort: failures are logged.
    fn forget(&self, names: &[String]) -> impl Future<Output = ()> + Send;
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
