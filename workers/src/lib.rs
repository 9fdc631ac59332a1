//! The Kiln worker: leases runs from a Kiln server over HTTP, builds them with BuildKit
//! through the Docker engine, pushes the images, and ships logs and results back.
//!
//! Workers never touch the server's database. `kiln serve` embeds this same agent, so the
//! embedded worker and a `kiln-worker` on another machine speak one protocol.

pub mod agent;
pub mod buildkit_log;
pub mod client;
pub mod context;
pub mod credentials;
pub mod docker;
pub mod engine;
mod engine_health;
pub mod executor;
#[cfg(test)]
mod fake_engine;
pub mod fetch_policy;
pub mod git;
pub mod image_ref;
pub mod index;
pub mod log_filter;
pub mod logship;
pub mod protocol;
mod publish;
pub mod purge;
pub mod purge_run;
pub mod registry_http;
pub mod scan;
pub mod scan_run;
pub mod server_url;
pub mod signal;
mod source;
pub mod steps;
pub mod worker_token;

pub use agent::{Agent, AgentConfig};
pub use docker::DockerEngine;
pub use logship::LogSink;
