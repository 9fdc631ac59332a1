//! Kiln's own OCI registry: blobs on disk, upload sessions, manifests and tags, referrers and
//! garbage collection. Services own the store; routes call services; services never call
//! routes.
//!
//! Bytes live in `<data>/registry/blobs/<algorithm>/<2 hex>/<hex>` (sha256 or sha512), shared
//! by every repository; the database says which repository may see which blob. Writers and
//! the collector meet at one lock: completing an upload or a manifest (rename into place + recording the row) holds
//! it shared, the collector's delete of a blob holds it exclusively, so the collector never
//! removes a file an upload has just put back.

mod access;
mod blobs;
mod digest;
mod discovery;
mod disk;
mod download;
mod gc;
mod manifest;
mod manifests;
mod metadata;
mod names;
mod ranges;
mod uploads;

pub use blobs::BlobRead;
pub use digest::{Algorithm, Digest};
pub use discovery::{Page, Referrer};
pub use manifest::OCI_INDEX;
pub use manifests::{PushedManifest, StoredManifest};
pub use metadata::{MetadataPage, DEFAULT_PAGE, MAX_PAGE};
pub use names::{parse_digest, Reference, RepoName, Tag};
pub use ranges::{parse_content_range, ByteRange};
pub use uploads::UploadStatus;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::access::AccessError;
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

/// Manifests larger than this are refused before they are read in full.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name '{0}'")]
    NameInvalid(String),
    #[error("repository '{0}' is not known")]
    NameUnknown(String),
    #[error("invalid tag '{0}'")]
    TagInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(Digest),
    #[error("upload session is not known")]
    UploadUnknown,
    #[error("{0}")]
    UploadInvalid(String),
    /// A chunk that does not start where the upload stands.
    #[error("chunk is out of order: the upload holds {size} bytes")]
    ChunkOutOfOrder { size: u64 },
    /// A `Range` a blob of `size` bytes cannot satisfy.
    #[error("range not satisfiable: the blob holds {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge,
    #[error("manifest references {0}, which this repository does not hold")]
    ManifestBlobUnknown(String),
    #[error("manifest '{0}' is not known")]
    ManifestUnknown(String),
    /// A lock (`writeEnabled`/`deleteEnabled`) refuses the push or delete; the message
    /// names it.
    #[error("{0}")]
    Locked(String),
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    /// The caller may not do this; `scope` is what a token for it would name in Docker's
    /// token protocol (`repository:app/web:pull,push`), for the 401 challenge.
    #[error("{error}")]
    Access { error: AccessError, scope: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("registry storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One upload session's running hash, so completing it does not read the bytes again.
/// `None` after a restart or a failed write: the file is then the truth and is re-hashed.
type SessionState = Arc<tokio::sync::Mutex<Option<uploads::Progress>>>;

pub struct RegistryService {
    store: Store,
    disk: disk::Disk,
    sessions: Mutex<HashMap<String, SessionState>>,
    /// Shared by writers completing a blob or manifest, exclusive for the collector's deletes.
    sweep: tokio::sync::RwLock<()>,
    /// How long unreferenced content and idle uploads are kept.
    gc_grace: Duration,
    /// Stamps uploads and blob use, and decides what the grace period has passed for.
    clock: SharedClock,
}

impl RegistryService {
    /// `root` is `<data>/registry`.
    pub fn new(
        store: Store,
        root: PathBuf,
        gc_grace: Duration,
        clock: SharedClock,
    ) -> std::io::Result<RegistryService> {
        Ok(RegistryService {
            store,
            disk: disk::Disk::new(root)?,
            sessions: Mutex::new(HashMap::new()),
            sweep: tokio::sync::RwLock::new(()),
            gc_grace,
            clock,
        })
    }
}
