//! What is inside an image: the worker's half of a scan. [`layers`] applies an image's layers
//! in order (OCI whiteouts, links) into a [`view::FileView`] holding only the files the
//! [`catalogers`] want, streaming each layer once and never unpacking to disk; the catalogers
//! turn that view into an [`inventory::Inventory`] of packages, which the worker sends to the
//! server (which matches it against vulnerability data) and which is also the SBOM ([`sbom`]).
//!
//! Pure code: no network, no Docker. The caller fetches the layers and hands over readers:
//! [`scan_layers`] for `Read`ers, or [`LayerWalker::apply_layer_async`] per layer for blobs
//! streaming from a registry, then [`Inventory::from_view`]. [`oci_layout`] finds an image's
//! layers in an OCI image layout on disk.
//!
//! Memory: the view holds only wanted files (package databases and manifests, each at most
//! [`layers::MAX_KEPT_FILE`]; dpkg's and apk's databases with their earlier versions) and
//! symlinks. Executables are scanned for Go build info as they stream by; those up to
//! [`binary::AUDITABLE_MAX_BINARY`] (64 MiB) are also held whole, one at a time, to find
//! their `cargo auditable` section. Layers may be plain tar, gzip or zstd.

pub mod binary;
pub mod catalogers;
pub mod inventory;
pub mod layers;
pub mod oci_layout;
pub mod path;
pub mod sbom;
pub mod view;

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod layers_tests;
#[cfg(test)]
pub(crate) mod test_layers;

pub use catalogers::Package;
pub use inventory::{Inventory, OsRelease, Unreadable};
pub use layers::{scan_layers, LayerError, LayerRef, LayerWalker, Want};
pub use view::FileView;
