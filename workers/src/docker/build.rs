//! Builds on the Docker engine: BuildKit through bollard's `build_image` (with a session id,
//! which BuildKit requires), its status stream turned into the plain progress log.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::auth::DockerCredentials;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use bollard::Docker;
use futures::StreamExt;

use super::docker_credentials;
use crate::buildkit_log::{
    LogChunk, PlainPrinter, StatusBatch, StatusUpdate, VertexUpdate, WarningUpdate,
};
use crate::engine::{BuildJob, Built, EngineError};
use crate::logship::LogSink;

pub(super) async fn build(
    docker: &Docker,
    job: BuildJob,
    log: &LogSink,
) -> Result<Built, EngineError> {
    let spec = &job.spec;
    let session = format!("kiln-{}-{}", job.run_id, uuid::Uuid::new_v4().simple());
    let build_args: HashMap<String, String> = spec
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .version(BuilderVersion::BuilderBuildKit)
        .session(&session)
        .nocache(spec.no_cache)
        .rm(true)
        .platform(&job.platform.to_string())
        .t(&job.local_name)
        .buildargs(&build_args);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    // For pulling base images from private registries.
    let auth: HashMap<String, DockerCredentials> = job
        .credentials
        .iter()
        .map(|c| (c.registry.clone(), docker_credentials(c)))
        .collect();
    let body = bollard::body_try_stream(job.context);
    let mut stream = docker.build_image(options.build(), Some(auth), Some(body));
    let mut printer = PlainPrinter::new();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(BuildInfo {
                aux: Some(BuildInfoAux::BuildKit(status)),
                ..
            }) => {
                for line in printer.push(&batch_from(status)) {
                    log.line(line);
                }
            }
            Ok(BuildInfo {
                stream: Some(text), ..
            }) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    log.line(line);
                }
            }
            Ok(_) => {}
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(EngineError::BuildFailed(error));
                break;
            }
            Err(e) => {
                failure = Some(classify(e));
                break;
            }
        }
    }
    for line in printer.finish() {
        log.line(line);
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let (steps_total, steps_cached) = printer.step_counts();
    Ok(Built {
        platform: job.platform,
        local_name: job.local_name,
        steps_total,
        steps_cached,
    })
}

/// Errors outside the build's own output: the engine went away or refused the request.
fn classify(e: bollard::errors::Error) -> EngineError {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } if status_code < 500 => EngineError::BuildFailed(message),
        other => EngineError::Infrastructure(format!("Docker engine: {other}")),
    }
}

/// A protobuf timestamp, as (seconds, nanos), to `SystemTime`.
fn time(ts: Option<(i64, i32)>) -> Option<SystemTime> {
    let (seconds, nanos) = ts?;
    let secs = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos.clamp(0, 999_999_999) as u32))
}

macro_rules! ts {
    ($t:expr) => {
        time($t.map(|t| (t.seconds, t.nanos)))
    };
}

fn batch_from(s: bollard::moby::buildkit::v1::StatusResponse) -> StatusBatch {
    StatusBatch {
        vertexes: s
            .vertexes
            .into_iter()
            .map(|v| VertexUpdate {
                digest: v.digest,
                name: v.name,
                cached: v.cached,
                started: ts!(v.started),
                completed: ts!(v.completed),
                error: v.error,
            })
            .collect(),
        statuses: s
            .statuses
            .into_iter()
            .map(|st| StatusUpdate {
                id: st.id,
                vertex: st.vertex,
                name: st.name,
                current: st.current,
                total: st.total,
                started: ts!(st.started),
                completed: ts!(st.completed),
            })
            .collect(),
        logs: s
            .logs
            .into_iter()
            .map(|l| LogChunk {
                vertex: l.vertex,
                timestamp: ts!(l.timestamp),
                stream: l.stream,
                msg: l.msg,
            })
            .collect(),
        warnings: s
            .warnings
            .into_iter()
            .map(|w| WarningUpdate {
                vertex: w.vertex,
                short: w.short,
            })
            .collect(),
    }
}
