//! Client-side packing of a local build context into a deterministic, streamed `tar.gz`.
//!
//! [`plan`] walks the context once (honouring `.dockerignore` and the default excludes) and
//! captures the metadata of everything that will be shipped; [`write_tar_gz`] and
//! [`stream_tar_gz`] then stream the archive without ever holding it in memory or on disk,
//! compressing it on every core (pigz's scheme, in `parallel_gzip`).
//! Identical trees give byte-identical archives, so the server-side digest of an upload is
//! stable. Unix only: modes, inodes and change times come from `std::os::unix`.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::dockerignore::IgnoreError;

mod archive;
mod parallel_gzip;
mod planning;
mod stream;

pub use archive::write_tar_gz;
pub use planning::plan;
pub use stream::stream_tar_gz;

/// Why a context could not be planned or packed.
#[derive(Debug, Error)]
pub enum PackError {
    /// The context directory does not exist.
    #[error("build context {} does not exist", .0.display())]
    ContextNotFound(PathBuf),
    /// The context path is not a directory.
    #[error("build context {} is not a directory", .0.display())]
    ContextNotDirectory(PathBuf),
    /// The Dockerfile does not exist (path as given).
    #[error("Dockerfile not found at {}", .0.display())]
    DockerfileNotFound(PathBuf),
    /// The Dockerfile path names a directory or another non-file.
    #[error("Dockerfile {} is not a regular file", .0.display())]
    DockerfileNotAFile(PathBuf),
    /// The Dockerfile exists but cannot be read.
    #[error("cannot read Dockerfile {}: {source}", path.display())]
    DockerfileUnreadable { path: PathBuf, source: io::Error },
    /// A file or directory of the context cannot be read (or vanished after planning).
    #[error("cannot read {} in the build context: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    /// A file got shorter while its content was being written.
    #[error("{} shrank while it was being packed; retry once it is no longer being written", path.display())]
    FileChanged { path: PathBuf },
    /// The ignore file exists but cannot be read.
    #[error("cannot read ignore file {}: {source}", path.display())]
    IgnoreFileUnreadable { path: PathBuf, source: io::Error },
    /// The ignore file has a malformed pattern.
    #[error("invalid ignore file {}: {source}", path.display())]
    BadIgnoreFile { path: PathBuf, source: IgnoreError },
    /// The Dockerfile must be relocated to a path the context already uses.
    #[error("the build context already contains {path}, where the Dockerfile would have to be placed; rename or exclude it")]
    DockerfileConflict { path: String },
    /// Writing the archive failed (for a stream: the consumer went away).
    #[error("failed to write the build context archive: {0}")]
    Write(#[source] io::Error),
}

/// What to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRequest {
    /// The build context directory.
    pub context_dir: PathBuf,
    /// The Dockerfile as the user gave it; relative paths resolve against the current
    /// directory, like `docker build -f`.
    pub dockerfile: PathBuf,
}

/// The kind of an archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (archived without its content, which has entries of its own).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, stored with its target exactly as written (never followed).
    Symlink(PathBuf),
}

/// One archive entry and the metadata captured for it while planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// Path inside the archive: relative, `/`-separated, no trailing slash.
    pub path: PathBuf,
    /// Absolute path the entry is read from.
    pub source: PathBuf,
    /// What the entry is.
    pub kind: EntryKind,
    /// Content size of a regular file; 0 for other kinds.
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    /// Modification time in nanoseconds since the Unix epoch (the archive keeps seconds).
    pub mtime_ns: i64,
    /// Status change time in nanoseconds since the Unix epoch (fingerprint only).
    pub ctime_ns: i64,
    /// Inode number (fingerprint only).
    pub inode: u64,
}

/// Everything needed to write the archive, plus what the CLI reports and caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackPlan {
    /// Sorted by archive path (byte order) for determinism.
    pub entries: Vec<PlanEntry>,
    /// The path BuildKit should use as `dockerfile` inside the archive.
    pub dockerfile_in_archive: String,
    /// Number of regular files.
    pub file_count: u64,
    /// Regular-file content bytes.
    pub total_bytes: u64,
    /// Hex sha256 over the metadata of every entry and the Dockerfile's source: a cheap key
    /// that changes whenever the archive could, so unchanged contexts need not be re-uploaded.
    pub fingerprint: String,
    /// Top-level names excluded by the default rules, e.g. `.git`.
    pub excluded_defaults: Vec<String>,
    /// The ignore file that was applied, if any.
    pub ignore_file: Option<PathBuf>,
}

/// Cumulative packing progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackProgress {
    /// Regular-file content bytes read so far (uncompressed; compare with
    /// [`PackPlan::total_bytes`]).
    pub bytes: u64,
    /// Regular files written so far.
    pub files: u64,
}

#[cfg(test)]
mod tests;
