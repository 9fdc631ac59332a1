//! Kiln: a self-hosted build service for container images. This crate is the server, the API
//! and the CLI; the worker agent is the `kiln-worker` crate.
//!
//! Layers: `api` (routes) → `service` (rules) → `store` (SQL); `access` is the access model
//! all of them share. `context` packs and checks build
//! contexts; `cli` is the command-line client; `wire` holds the API's JSON shapes;
//! `vuln` matches packages against OSV vulnerability records.

pub mod access;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http_server;
pub mod schedule;
pub mod secret_key;
pub mod server;
pub mod service;
pub mod store;
pub mod submission;
pub mod taskfile;
pub mod template;
pub mod vuln;
pub mod wire;

/// Context packing and checking live in the worker crate, which workers and the CLI share.
pub use kiln_worker::context;
