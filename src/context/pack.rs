//! Client-side packing of a local build context into a deterministic, streamed `tar.gz`.
//!
//! [`plan`] walks the context once (honouring `.dockerignore` and the default excludes) and
//! captures the metadata of everything that will be shipped; [`write_tar_gz`] and
//! [`stream_tar_gz`] then stream the archive without ever holding it in memory or on disk.
//! Identical trees give byte-identical archives, so the server-side digest of an upload is
//! stable. Unix only: modes, inodes and change times come from `std::os::unix`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::{Compression, GzBuilder};
use futures::Stream;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::mpsc;

use super::dockerignore::{IgnoreError, IgnoreRules};

/// Top-level entries never shipped, whatever the ignore file says (as ACR does).
const DEFAULT_EXCLUDES: &[&str] = &[".git"];
/// Where a Dockerfile that is not otherwise part of the archive is placed.
const RELOCATED_DOCKERFILE_DIR: &str = ".kiln";
/// Size of the buffer in front of the gzip encoder and of the file read buffer.
const IO_BUFFER_SIZE: usize = 256 * 1024;
/// Size of the chunks [`stream_tar_gz`] yields.
const STREAM_CHUNK_SIZE: usize = 256 * 1024;
/// Chunks [`stream_tar_gz`] may produce ahead of the consumer.
const STREAM_CHANNEL_DEPTH: usize = 4;
/// Progress is reported after at least this many content bytes...
const PROGRESS_BYTES_STEP: u64 = 1024 * 1024;
/// ...or this many files since the previous report.
const PROGRESS_FILES_STEP: u64 = 500;
/// Changes whenever the archive layout changes, so cached fingerprints from older clients
/// never match.
const FINGERPRINT_VERSION: &[u8] = b"kiln-pack-v1";

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

/// Walks the context and decides what goes into the archive.
pub fn plan(req: &PackRequest) -> Result<PackPlan, PackError> {
    let root = resolve_context(&req.context_dir)?;
    let dockerfile = resolve_dockerfile(&req.dockerfile)?;
    let (rules, ignore_file) = load_ignore_rules(&root, &dockerfile)?;
    let walk = Walker::new(&root, &rules).run()?;
    let mut entries = walk.entries;
    entries.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path)));
    let dockerfile_in_archive = place_dockerfile(&root, &dockerfile, &mut entries)?;
    let fingerprint = fingerprint(&entries, &dockerfile, &dockerfile_in_archive);
    let files = entries.iter().filter(|e| e.kind == EntryKind::File);
    let (file_count, total_bytes) = files.fold((0, 0), |(n, bytes), e| (n + 1, bytes + e.size));
    Ok(PackPlan {
        entries,
        dockerfile_in_archive,
        file_count,
        total_bytes,
        fingerprint,
        excluded_defaults: walk.excluded_defaults,
        ignore_file,
    })
}

/// Writes the planned archive as `tar.gz` to `out` and returns `out` once the gzip stream is
/// complete. `progress` is called every so often with cumulative counts, and once at the end.
pub fn write_tar_gz<W: Write>(
    plan: &PackPlan,
    out: W,
    progress: &dyn Fn(PackProgress),
) -> Result<W, PackError> {
    // A fixed header mtime and OS byte keep the gzip output identical across runs and hosts.
    let gzip = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, Compression::fast());
    let mut tar = tar::Builder::new(BufWriter::with_capacity(IO_BUFFER_SIZE, gzip));
    let mut buffer = vec![0; IO_BUFFER_SIZE];
    let mut tracker = ProgressTracker::new(progress);
    for entry in &plan.entries {
        append_entry(&mut tar, entry, &mut buffer, &mut tracker)?;
    }
    let buffered = tar.into_inner().map_err(PackError::Write)?;
    let gzip = buffered
        .into_inner()
        .map_err(|e| PackError::Write(e.into_error()))?;
    let out = gzip.finish().map_err(PackError::Write)?;
    tracker.report();
    Ok(out)
}

/// Runs [`write_tar_gz`] on a dedicated blocking thread and yields the gzip bytes as ~256 KiB
/// chunks through a bounded channel, so a slow upload applies backpressure to the packer.
/// Suitable for an HTTP request body. A packing failure arrives as the stream's last item (an
/// `io::Error` wrapping the [`PackError`]); dropping the stream stops the packer. `progress`
/// runs on the packing thread.
pub fn stream_tar_gz(
    plan: PackPlan,
    progress: impl Fn(PackProgress) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static {
    let (tx, mut rx) = mpsc::channel(STREAM_CHANNEL_DEPTH);
    // Kept so a failure to start the thread can still be reported; dropped right after so the
    // stream ends when the packer does.
    let spawn_failure_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("kiln-pack".to_owned())
        .spawn(move || produce(&plan, &progress, tx));
    if let Err(error) = spawned {
        // The channel is fresh and has room, and the receiver is still held here.
        let _ = spawn_failure_tx.try_send(Err(error));
    }
    drop(spawn_failure_tx);
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The body of the [`stream_tar_gz`] thread.
fn produce(plan: &PackPlan, progress: &dyn Fn(PackProgress), tx: mpsc::Sender<io::Result<Bytes>>) {
    let sink = ChunkSender::new(tx.clone());
    // A panic (in the caller's progress callback, say) must not end the stream as if the
    // archive were complete.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        write_tar_gz(plan, sink, progress)
            .and_then(|sink| sink.send_rest().map_err(PackError::Write))
    }));
    let error = match result {
        Ok(Ok(())) => return,
        Ok(Err(error)) => io::Error::other(error),
        Err(_) => io::Error::other("packing the build context panicked"),
    };
    // If the receiver is gone nobody is left to tell, which is fine.
    let _ = tx.blocking_send(Err(error));
}

/// A `Write` that hands full chunks to the stream's channel, blocking while it is full.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    chunk: Vec<u8>,
}

impl ChunkSender {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            chunk: Vec::with_capacity(STREAM_CHUNK_SIZE),
        }
    }

    fn send_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(STREAM_CHUNK_SIZE));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stream was dropped"))
    }

    /// Sends whatever is left once the archive is complete.
    fn send_rest(mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.send_chunk()
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= STREAM_CHUNK_SIZE {
            self.send_chunk()?;
        }
        Ok(buf.len())
    }

    /// Chunks only leave when full or at the end, so flushes from inner layers do not
    /// fragment the body.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Canonical path of the context directory.
fn resolve_context(dir: &Path) -> Result<PathBuf, PackError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => PackError::ContextNotFound(dir.to_owned()),
        io::ErrorKind::NotADirectory => PackError::ContextNotDirectory(dir.to_owned()),
        _ => PackError::Unreadable {
            path: dir.to_owned(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(PackError::ContextNotDirectory(dir.to_owned()));
    }
    fs::canonicalize(dir).map_err(|source| PackError::Unreadable {
        path: dir.to_owned(),
        source,
    })
}

/// The Dockerfile, located and checked up front so a typo fails before any walking.
struct Dockerfile {
    /// As the user gave it; the `<path>.dockerignore` lookup is relative to this.
    given: PathBuf,
    /// With symlinks resolved, to tell whether it really lies inside the context.
    canonical: PathBuf,
    /// File name used for `<name>.dockerignore` and `.kiln/<name>`.
    name: String,
    meta: Metadata,
}

fn resolve_dockerfile(given: &Path) -> Result<Dockerfile, PackError> {
    let unreadable = |source| PackError::DockerfileUnreadable {
        path: given.to_owned(),
        source,
    };
    let meta = fs::metadata(given).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            PackError::DockerfileNotFound(given.to_owned())
        }
        _ => unreadable(source),
    })?;
    if !meta.is_file() {
        return Err(PackError::DockerfileNotAFile(given.to_owned()));
    }
    File::open(given).map_err(unreadable)?;
    let canonical = fs::canonicalize(given).map_err(unreadable)?;
    let name = given
        .file_name()
        .or_else(|| canonical.file_name())
        .map_or_else(
            || "Dockerfile".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    Ok(Dockerfile {
        given: given.to_owned(),
        canonical,
        name,
        meta,
    })
}

/// Finds and parses the ignore file: `<dockerfile>.dockerignore` next to the Dockerfile, then
/// `<context>/<dockerfile name>.dockerignore`, then `<context>/.dockerignore`.
fn load_ignore_rules(
    root: &Path,
    dockerfile: &Dockerfile,
) -> Result<(IgnoreRules, Option<PathBuf>), PackError> {
    let mut next_to_dockerfile = dockerfile.given.clone().into_os_string();
    next_to_dockerfile.push(".dockerignore");
    let candidates = [
        PathBuf::from(next_to_dockerfile),
        root.join(format!("{}.dockerignore", dockerfile.name)),
        root.join(".dockerignore"),
    ];
    let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
        return Ok((IgnoreRules::empty(), None));
    };
    let bytes = fs::read(&path).map_err(|source| PackError::IgnoreFileUnreadable {
        path: path.clone(),
        source,
    })?;
    match IgnoreRules::parse(&String::from_utf8_lossy(&bytes)) {
        Ok(rules) => Ok((rules, Some(path))),
        Err(source) => Err(PackError::BadIgnoreFile { path, source }),
    }
}

/// What the walk found.
struct Walk {
    entries: Vec<PlanEntry>,
    excluded_defaults: Vec<String>,
}

/// Iterative walk of the context (no recursion, so deep trees cannot overflow the stack).
struct Walker<'a> {
    root: &'a Path,
    rules: &'a IgnoreRules,
    entries: Vec<PlanEntry>,
    /// Excluded directories entered only because an exception may re-include something below
    /// them; each is archived only if something below it is, so extraction recreates it with
    /// its own mode rather than a default one.
    excluded_dirs: HashMap<PathBuf, PlanEntry>,
    excluded_defaults: Vec<String>,
    pending: Vec<PathBuf>,
}

impl<'a> Walker<'a> {
    fn new(root: &'a Path, rules: &'a IgnoreRules) -> Self {
        Self {
            root,
            rules,
            entries: Vec::new(),
            excluded_dirs: HashMap::new(),
            excluded_defaults: Vec::new(),
            pending: vec![PathBuf::new()],
        }
    }

    fn run(mut self) -> Result<Walk, PackError> {
        while let Some(dir) = self.pending.pop() {
            self.visit_dir(&dir)?;
        }
        self.restore_parents_of_reincluded();
        self.excluded_defaults.sort();
        Ok(Walk {
            entries: self.entries,
            excluded_defaults: self.excluded_defaults,
        })
    }

    fn visit_dir(&mut self, rel_dir: &Path) -> Result<(), PackError> {
        let abs_dir = self.root.join(rel_dir);
        let unreadable = |source| PackError::Unreadable {
            path: abs_dir.clone(),
            source,
        };
        for item in fs::read_dir(&abs_dir).map_err(unreadable)? {
            let item = item.map_err(unreadable)?;
            let name = item.file_name();
            if rel_dir.as_os_str().is_empty() && is_default_exclude(&name) {
                self.excluded_defaults
                    .push(name.to_string_lossy().into_owned());
                continue;
            }
            // DirEntry::metadata does not follow symlinks, which is what the archive needs.
            let meta = match item.metadata() {
                Ok(meta) => meta,
                // Deleted since the directory was listed: it is simply not part of the context.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(PackError::Unreadable {
                        path: item.path(),
                        source,
                    })
                }
            };
            self.visit_entry(rel_dir.join(&name), item.path(), &meta)?;
        }
        Ok(())
    }

    fn visit_entry(
        &mut self,
        rel: PathBuf,
        abs: PathBuf,
        meta: &Metadata,
    ) -> Result<(), PackError> {
        let file_type = meta.file_type();
        let rel_str = rel.to_string_lossy();
        let excluded = self.rules.is_excluded(&rel_str);
        if file_type.is_dir() {
            if excluded && !self.rules.may_reinclude_under(&rel_str) {
                return Ok(());
            }
            let entry = new_entry(rel.clone(), abs, EntryKind::Dir, meta);
            if excluded {
                self.excluded_dirs.insert(rel.clone(), entry);
            } else {
                self.entries.push(entry);
            }
            self.pending.push(rel);
            return Ok(());
        }
        if excluded {
            return Ok(());
        }
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_symlink() {
            let target = fs::read_link(&abs).map_err(|source| PackError::Unreadable {
                path: abs.clone(),
                source,
            })?;
            EntryKind::Symlink(target)
        } else {
            // Sockets, fifos and devices cannot be meaningfully shipped; docker skips them too.
            return Ok(());
        };
        self.entries.push(new_entry(rel, abs, kind, meta));
        Ok(())
    }

    fn restore_parents_of_reincluded(&mut self) {
        if self.excluded_dirs.is_empty() {
            return;
        }
        let mut restored = Vec::new();
        for entry in &self.entries {
            for ancestor in entry.path.ancestors().skip(1) {
                if let Some(dir) = self.excluded_dirs.remove(ancestor) {
                    restored.push(dir);
                }
            }
        }
        self.entries.extend(restored);
    }
}

fn is_default_exclude(name: &OsStr) -> bool {
    DEFAULT_EXCLUDES.iter().any(|excluded| name == *excluded)
}

fn new_entry(path: PathBuf, source: PathBuf, kind: EntryKind, meta: &Metadata) -> PlanEntry {
    let size = if kind == EntryKind::File {
        meta.len()
    } else {
        0
    };
    PlanEntry {
        path,
        source,
        kind,
        size,
        mode: meta.mode() & 0o7777,
        mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
    }
}

fn nanos(seconds: i64, nanoseconds: i64) -> i64 {
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(nanoseconds)
}

/// Raw bytes of a path, the order the archive is sorted in.
fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

/// Returns where BuildKit finds the Dockerfile, adding it under `.kiln/` when the context
/// does not already ship it (outside the context, or excluded: ACR breaks on a Dockerfile
/// listed in `.dockerignore`; Kiln does not). `entries` must be sorted and stays sorted.
fn place_dockerfile(
    root: &Path,
    dockerfile: &Dockerfile,
    entries: &mut Vec<PlanEntry>,
) -> Result<String, PackError> {
    if let Some(path) = shipped_dockerfile_path(root, dockerfile, entries) {
        return Ok(path);
    }
    let path = format!("{RELOCATED_DOCKERFILE_DIR}/{}", dockerfile.name);
    let position = entries
        .binary_search_by(|e| path_bytes(&e.path).cmp(path.as_bytes()))
        .err()
        .ok_or_else(|| PackError::DockerfileConflict { path: path.clone() })?;
    let entry = new_entry(
        PathBuf::from(&path),
        dockerfile.canonical.clone(),
        EntryKind::File,
        &dockerfile.meta,
    );
    entries.insert(position, entry);
    Ok(path)
}

/// The Dockerfile's archive path if the walk already included it as a regular file.
fn shipped_dockerfile_path(
    root: &Path,
    dockerfile: &Dockerfile,
    entries: &[PlanEntry],
) -> Option<String> {
    let rel = dockerfile.canonical.strip_prefix(root).ok()?;
    let index = entries
        .binary_search_by(|e| path_bytes(&e.path).cmp(path_bytes(rel)))
        .ok()?;
    if entries[index].kind != EntryKind::File {
        return None;
    }
    rel.to_str().map(str::to_owned)
}

fn fingerprint(entries: &[PlanEntry], dockerfile: &Dockerfile, in_archive: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FINGERPRINT_VERSION);
    for entry in entries {
        hash_entry(&mut hasher, entry);
    }
    hash_bytes(&mut hasher, path_bytes(&dockerfile.canonical));
    hash_bytes(&mut hasher, in_archive.as_bytes());
    hex::encode(hasher.finalize())
}

fn hash_entry(hasher: &mut Sha256, entry: &PlanEntry) {
    hash_bytes(hasher, path_bytes(&entry.path));
    let (tag, target): (u8, &[u8]) = match &entry.kind {
        EntryKind::Dir => (b'd', &[]),
        EntryKind::File => (b'f', &[]),
        EntryKind::Symlink(target) => (b'l', path_bytes(target)),
    };
    hasher.update([tag]);
    hasher.update(entry.size.to_le_bytes());
    hasher.update(entry.mode.to_le_bytes());
    hasher.update(entry.mtime_ns.to_le_bytes());
    hasher.update(entry.ctime_ns.to_le_bytes());
    hasher.update(entry.inode.to_le_bytes());
    hash_bytes(hasher, target);
}

/// Length-prefixed, so adjacent fields can never be confused.
fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// A header carrying only what is reproducible: no owner, no user or group names.
fn base_header(entry: &PlanEntry, entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_mode(entry.mode);
    header.set_mtime(u64::try_from(entry.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &PlanEntry,
    buffer: &mut [u8],
    tracker: &mut ProgressTracker<'_>,
) -> Result<(), PackError> {
    match &entry.kind {
        EntryKind::Dir => {
            let mut header = base_header(entry, tar::EntryType::Directory, 0);
            let mut path = entry.path.clone().into_os_string();
            path.push("/");
            tar.append_data(&mut header, path, io::empty())
                .map_err(PackError::Write)
        }
        EntryKind::Symlink(target) => {
            let mut header = base_header(entry, tar::EntryType::Symlink, 0);
            tar.append_link(&mut header, &entry.path, target)
                .map_err(PackError::Write)
        }
        EntryKind::File => {
            append_file(tar, entry, buffer, tracker)?;
            tracker.file_done();
            Ok(())
        }
    }
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &PlanEntry,
    buffer: &mut [u8],
    tracker: &mut ProgressTracker<'_>,
) -> Result<(), PackError> {
    let unreadable = |source| PackError::Unreadable {
        path: entry.source.clone(),
        source,
    };
    let file = File::open(&entry.source).map_err(unreadable)?;
    // The size is taken from the open file rather than the plan: a file appended to since
    // planning (a log, say) is then packed as it is now instead of failing the build.
    let size = file.metadata().map_err(unreadable)?.len();
    let mut header = base_header(entry, tar::EntryType::Regular, size);
    let mut reader = ContentReader {
        file,
        buffer,
        start: 0,
        end: 0,
        remaining: size,
        failure: None,
        tracker,
    };
    match tar.append_data(&mut header, &entry.path, &mut reader) {
        Ok(()) => Ok(()),
        Err(write_error) => Err(match reader.failure {
            Some(ReadFailure::Io(source)) => unreadable(source),
            Some(ReadFailure::Shrank) => PackError::FileChanged {
                path: entry.source.clone(),
            },
            None => PackError::Write(write_error),
        }),
    }
}

/// Why reading a file's content failed, kept apart from tar's error so the user is told which
/// file broke rather than that "writing" failed.
enum ReadFailure {
    Io(io::Error),
    Shrank,
}

/// Serves exactly `remaining` bytes of a file through the caller's reusable buffer: few read
/// syscalls, no per-file allocation, and never more or fewer bytes than the tar header
/// announced (growth past it is ignored; shrinking is an error, not a corrupt archive).
struct ContentReader<'a, 'p> {
    file: File,
    buffer: &'a mut [u8],
    start: usize,
    end: usize,
    remaining: u64,
    failure: Option<ReadFailure>,
    tracker: &'a mut ProgressTracker<'p>,
}

impl ContentReader<'_, '_> {
    fn fill(&mut self) -> io::Result<()> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.buffer.len());
        let read = loop {
            match self.file.read(&mut self.buffer[..want]) {
                Ok(read) => break read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(ReadFailure::Io(e))),
            }
        };
        if read == 0 {
            return Err(self.fail(ReadFailure::Shrank));
        }
        self.start = 0;
        self.end = read;
        self.remaining -= read as u64;
        self.tracker.add_bytes(read as u64);
        Ok(())
    }

    fn fail(&mut self, failure: ReadFailure) -> io::Error {
        self.failure = Some(failure);
        io::Error::other("reading a file of the build context failed")
    }
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Rate-limits progress callbacks so they cost nothing next to the compression.
struct ProgressTracker<'a> {
    callback: &'a dyn Fn(PackProgress),
    bytes: u64,
    files: u64,
    reported_bytes: u64,
    reported_files: u64,
}

impl<'a> ProgressTracker<'a> {
    fn new(callback: &'a dyn Fn(PackProgress)) -> Self {
        Self {
            callback,
            bytes: 0,
            files: 0,
            reported_bytes: 0,
            reported_files: 0,
        }
    }

    fn add_bytes(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.bytes - self.reported_bytes >= PROGRESS_BYTES_STEP {
            self.report();
        }
    }

    fn file_done(&mut self) {
        self.files += 1;
        if self.files - self.reported_files >= PROGRESS_FILES_STEP {
            self.report();
        }
    }

    fn report(&mut self) {
        self.reported_bytes = self.bytes;
        self.reported_files = self.files;
        (self.callback)(PackProgress {
            bytes: self.bytes,
            files: self.files,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::os::unix::net::UnixListener;
    use std::time::{Duration, SystemTime};

    use futures::StreamExt;
    use tempfile::TempDir;

    #[derive(Debug)]
    struct Archived {
        path: String,
        entry_type: tar::EntryType,
        mode: u32,
        mtime: u64,
        content: Vec<u8>,
        link: Option<String>,
    }

    fn write(root: &Path, rel: &str, content: &str) -> PathBuf {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    fn context() -> TempDir {
        let dir = TempDir::new().unwrap();
        write(dir.path(), "Dockerfile", "FROM scratch\n");
        dir
    }

    fn request(ctx: &Path) -> PackRequest {
        PackRequest {
            context_dir: ctx.to_owned(),
            dockerfile: ctx.join("Dockerfile"),
        }
    }

    fn pack(plan: &PackPlan) -> Vec<u8> {
        write_tar_gz(plan, Vec::new(), &|_| {}).unwrap()
    }

    fn read_archive(bytes: &[u8]) -> Vec<Archived> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let entry_type = header.entry_type();
            let mode = header.mode().unwrap();
            let mtime = header.mtime().unwrap();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            out.push(Archived {
                path,
                entry_type,
                mode,
                mtime,
                content,
                link,
            });
        }
        out
    }

    fn pack_and_read(req: &PackRequest) -> (PackPlan, Vec<Archived>) {
        let plan = plan(req).unwrap();
        let entries = read_archive(&pack(&plan));
        (plan, entries)
    }

    fn paths(entries: &[Archived]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn find<'a>(entries: &'a [Archived], path: &str) -> &'a Archived {
        entries
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} missing from {:?}", paths(entries)))
    }

    #[test]
    fn dockerignore_exceptions_and_reincluded_file_under_excluded_folder() {
        let ctx = context();
        for rel in [
            "README.md",
            "CHANGES.md",
            "docs/keep.txt",
            "docs/other.txt",
            "docs/sub/x.txt",
            "src/main.rs",
        ] {
            write(ctx.path(), rel, rel);
        }
        write(
            ctx.path(),
            ".dockerignore",
            "*.md\n!README.md\ndocs\n!docs/keep.txt\n",
        );
        let (plan, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(
            paths(&entries),
            [
                ".dockerignore",
                "Dockerfile",
                "README.md",
                "docs/",
                "docs/keep.txt",
                "src/",
                "src/main.rs"
            ]
        );
        assert_eq!(find(&entries, "docs/keep.txt").content, b"docs/keep.txt");
        assert_eq!(plan.dockerfile_in_archive, "Dockerfile");
        assert_eq!(plan.ignore_file, Some(ctx.path().join(".dockerignore")));
        assert_eq!(plan.file_count, 5);
    }

    #[test]
    fn symlinks_are_stored_not_followed() {
        let ctx = context();
        write(ctx.path(), "target.txt", "hello");
        write(ctx.path(), "sub/inner.txt", "inner");
        symlink("target.txt", ctx.path().join("link")).unwrap();
        symlink("../nowhere/at/all", ctx.path().join("dangling")).unwrap();
        symlink("sub", ctx.path().join("dirlink")).unwrap();
        let (_, entries) = pack_and_read(&request(ctx.path()));
        for (path, target) in [
            ("link", "target.txt"),
            ("dangling", "../nowhere/at/all"),
            ("dirlink", "sub"),
        ] {
            let entry = find(&entries, path);
            assert_eq!(entry.entry_type, tar::EntryType::Symlink, "{path}");
            assert_eq!(entry.link.as_deref(), Some(target), "{path}");
            assert!(entry.content.is_empty());
        }
        assert!(!paths(&entries).iter().any(|p| p.starts_with("dirlink/")));
    }

    #[test]
    fn modes_and_mtimes_are_kept() {
        let ctx = context();
        let script = write(ctx.path(), "run.sh", "#!/bin/sh\n");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let data = write(ctx.path(), "data.txt", "x");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o640)).unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        File::options()
            .write(true)
            .open(&script)
            .unwrap()
            .set_modified(when)
            .unwrap();
        fs::create_dir(ctx.path().join("private")).unwrap();
        fs::set_permissions(
            ctx.path().join("private"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let (_, entries) = pack_and_read(&request(ctx.path()));
        let script = find(&entries, "run.sh");
        assert_eq!(script.mode, 0o755);
        assert_eq!(script.mtime, 1_600_000_000);
        assert_eq!(find(&entries, "data.txt").mode, 0o640);
        let private = find(&entries, "private/");
        assert_eq!(private.entry_type, tar::EntryType::Directory);
        assert_eq!(private.mode, 0o700);
    }

    #[test]
    fn top_level_git_is_excluded_but_nested_git_kept() {
        let ctx = context();
        write(ctx.path(), ".git/HEAD", "ref: refs/heads/main");
        write(ctx.path(), "sub/.git/HEAD", "nested");
        write(ctx.path(), ".gitignore", "target");
        let (plan, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(plan.excluded_defaults, [".git"]);
        assert_eq!(
            paths(&entries),
            [
                ".gitignore",
                "Dockerfile",
                "sub/",
                "sub/.git/",
                "sub/.git/HEAD"
            ]
        );
        let clean = context();
        assert!(plan_of(clean.path()).excluded_defaults.is_empty());
    }

    fn plan_of(ctx: &Path) -> PackPlan {
        plan(&request(ctx)).unwrap()
    }

    #[test]
    fn dockerfile_outside_context_is_added_under_kiln_dir() {
        let outer = TempDir::new().unwrap();
        let ctx = outer.path().join("ctx");
        write(&ctx, "app.py", "print()");
        let dockerfile = write(outer.path(), "api.Dockerfile", "FROM api\n");
        let req = PackRequest {
            context_dir: ctx,
            dockerfile,
        };
        let (plan, entries) = pack_and_read(&req);
        assert_eq!(plan.dockerfile_in_archive, ".kiln/api.Dockerfile");
        assert_eq!(paths(&entries), [".kiln/api.Dockerfile", "app.py"]);
        assert_eq!(
            find(&entries, ".kiln/api.Dockerfile").content,
            b"FROM api\n"
        );
        assert_eq!(plan.file_count, 2);
    }

    #[test]
    fn excluded_dockerfile_is_added_under_kiln_dir() {
        let ctx = context();
        write(ctx.path(), ".dockerignore", "Dockerfile\n.dockerignore\n");
        write(ctx.path(), "app.py", "print()");
        let (plan, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(plan.dockerfile_in_archive, ".kiln/Dockerfile");
        assert_eq!(paths(&entries), [".kiln/Dockerfile", "app.py"]);
        assert_eq!(
            find(&entries, ".kiln/Dockerfile").content,
            b"FROM scratch\n"
        );
    }

    #[test]
    fn dockerfile_in_a_subdirectory_keeps_its_path() {
        let ctx = context();
        let dockerfile = write(ctx.path(), "docker/api.Dockerfile", "FROM api\n");
        let req = PackRequest {
            context_dir: ctx.path().to_owned(),
            dockerfile,
        };
        assert_eq!(
            plan(&req).unwrap().dockerfile_in_archive,
            "docker/api.Dockerfile"
        );
    }

    #[test]
    fn relocated_dockerfile_must_not_clash_with_the_context() {
        let outer = TempDir::new().unwrap();
        let ctx = outer.path().join("ctx");
        write(&ctx, ".kiln/api.Dockerfile", "mine");
        let dockerfile = write(outer.path(), "api.Dockerfile", "FROM api\n");
        let err = plan(&PackRequest {
            context_dir: ctx,
            dockerfile,
        })
        .unwrap_err();
        assert!(matches!(err, PackError::DockerfileConflict { .. }), "{err}");
    }

    #[test]
    fn dockerfile_specific_ignore_file_takes_precedence() {
        let ctx = context();
        for name in ["a.txt", "b.txt", "c.txt"] {
            write(ctx.path(), name, name);
        }
        write(ctx.path(), ".dockerignore", "a.txt\n");
        write(ctx.path(), "api.Dockerfile", "FROM api\n");
        write(ctx.path(), "api.Dockerfile.dockerignore", "b.txt\n");
        let req = PackRequest {
            context_dir: ctx.path().to_owned(),
            dockerfile: ctx.path().join("api.Dockerfile"),
        };
        let (plan, entries) = pack_and_read(&req);
        assert_eq!(
            plan.ignore_file,
            Some(ctx.path().join("api.Dockerfile.dockerignore"))
        );
        assert!(paths(&entries).contains(&"a.txt"));
        assert!(!paths(&entries).contains(&"b.txt"));

        // Next to a Dockerfile outside the context beats the copy inside the context.
        let elsewhere = TempDir::new().unwrap();
        let outside = write(elsewhere.path(), "api.Dockerfile", "FROM api\n");
        write(elsewhere.path(), "api.Dockerfile.dockerignore", "c.txt\n");
        let req = PackRequest {
            context_dir: ctx.path().to_owned(),
            dockerfile: outside,
        };
        let (plan, entries) = pack_and_read(&req);
        assert_eq!(
            plan.ignore_file,
            Some(elsewhere.path().join("api.Dockerfile.dockerignore"))
        );
        assert!(paths(&entries).contains(&"b.txt"));
        assert!(!paths(&entries).contains(&"c.txt"));

        // Without a Dockerfile-specific file, <context>/.dockerignore applies.
        let (plan, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(plan.ignore_file, Some(ctx.path().join(".dockerignore")));
        assert!(!paths(&entries).contains(&"a.txt"));
    }

    #[test]
    fn output_is_deterministic() {
        let ctx = context();
        write(ctx.path(), "a/b/c.txt", "c");
        write(ctx.path(), "a-b.txt", "ab");
        write(ctx.path(), "z.txt", "z");
        fs::create_dir(ctx.path().join("empty")).unwrap();
        let first = pack(&plan_of(ctx.path()));
        let second = pack(&plan_of(ctx.path()));
        assert_eq!(first, second);
        assert_eq!(&first[4..8], &[0, 0, 0, 0], "gzip header mtime must be 0");
        let entries = read_archive(&first);
        assert_eq!(
            paths(&entries),
            [
                "Dockerfile",
                "a/",
                "a-b.txt",
                "a/b/",
                "a/b/c.txt",
                "empty/",
                "z.txt"
            ]
        );
    }

    #[test]
    fn fingerprint_tracks_content_and_mtime() {
        let ctx = context();
        let file = write(ctx.path(), "app.py", "print(1)");
        let original = plan_of(ctx.path()).fingerprint;
        assert_eq!(original.len(), 64);
        assert_eq!(plan_of(ctx.path()).fingerprint, original);

        fs::write(&file, "print(22)").unwrap();
        let after_edit = plan_of(ctx.path()).fingerprint;
        assert_ne!(after_edit, original);

        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
            .unwrap();
        assert_ne!(plan_of(ctx.path()).fingerprint, after_edit);
    }

    #[test]
    fn missing_dockerfile_is_reported() {
        let ctx = TempDir::new().unwrap();
        let err = plan(&request(ctx.path())).unwrap_err();
        assert!(matches!(err, PackError::DockerfileNotFound(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "Dockerfile not found at {}",
                ctx.path().join("Dockerfile").display()
            )
        );
    }

    #[test]
    fn context_must_be_an_existing_directory() {
        let ctx = context();
        let file_ctx = ctx.path().join("Dockerfile");
        let err = plan(&request(&file_ctx)).unwrap_err();
        assert!(matches!(err, PackError::ContextNotDirectory(_)), "{err}");
        assert!(err.to_string().contains("is not a directory"));

        let missing = ctx.path().join("missing");
        let err = plan(&request(&missing)).unwrap_err();
        assert!(matches!(err, PackError::ContextNotFound(_)), "{err}");
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn bad_ignore_file_names_file_and_line() {
        let ctx = context();
        write(ctx.path(), ".dockerignore", "ok\n[broken\n");
        let err = plan(&request(ctx.path())).unwrap_err();
        assert!(matches!(err, PackError::BadIgnoreFile { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(".dockerignore") && message.contains("line 2"),
            "{message}"
        );
    }

    #[test]
    fn long_paths_and_link_targets_survive() {
        let ctx = context();
        let long_dir = ["a-rather-long-directory-name-for-testing"; 4].join("/");
        let long_file = format!("{long_dir}/and-a-long-file-name-as-well.txt");
        assert!(long_file.len() > 100);
        write(ctx.path(), &long_file, "deep");
        let long_target = format!("../{long_file}");
        symlink(&long_target, ctx.path().join("long-link")).unwrap();
        let (_, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(find(&entries, &long_file).content, b"deep");
        assert!(paths(&entries).contains(&format!("{long_dir}/").as_str()));
        assert_eq!(
            find(&entries, "long-link").link.as_deref(),
            Some(long_target.as_str())
        );
    }

    #[test]
    fn sockets_are_skipped() {
        let ctx = context();
        let _listener = UnixListener::bind(ctx.path().join("app.sock")).unwrap();
        let (_, entries) = pack_and_read(&request(ctx.path()));
        assert_eq!(paths(&entries), ["Dockerfile"]);
    }

    #[test]
    fn progress_ends_with_the_totals() {
        let ctx = context();
        write(ctx.path(), "big.bin", &"x".repeat(3 * 1024 * 1024));
        let plan = plan_of(ctx.path());
        let last = Cell::new(None);
        let calls = Cell::new(0);
        write_tar_gz(&plan, io::sink(), &|p| {
            last.set(Some(p));
            calls.set(calls.get() + 1);
        })
        .unwrap();
        assert_eq!(
            last.get(),
            Some(PackProgress {
                bytes: plan.total_bytes,
                files: plan.file_count
            })
        );
        assert!(calls.get() >= 3, "called {} times", calls.get());
    }

    #[test]
    fn file_removed_after_planning_is_named() {
        let ctx = context();
        let doomed = write(ctx.path(), "doomed.txt", "bye");
        let plan = plan_of(ctx.path());
        fs::remove_file(&doomed).unwrap();
        let err = write_tar_gz(&plan, Vec::new(), &|_| {}).unwrap_err();
        assert!(matches!(err, PackError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("doomed.txt"), "{err}");
    }

    /// Incompressible bytes, so the gzip output spans several chunks.
    fn noise(len: usize) -> String {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                char::from(b'!' + (state % 90) as u8)
            })
            .collect()
    }

    #[tokio::test]
    async fn stream_yields_the_same_bytes_in_bounded_chunks() {
        let ctx = context();
        write(ctx.path(), "noise.txt", &noise(2 * 1024 * 1024));
        let plan = plan_of(ctx.path());
        let expected = pack(&plan);
        let chunks: Vec<Bytes> = stream_tar_gz(plan, |_| {})
            .map(|chunk| chunk.unwrap())
            .collect()
            .await;
        assert!(chunks.len() > 2, "{} chunks", chunks.len());
        assert!(chunks
            .iter()
            .all(|c| c.len() < STREAM_CHUNK_SIZE + 64 * 1024));
        assert_eq!(chunks.concat(), expected);
    }

    #[tokio::test]
    async fn stream_reports_failures_as_its_last_item() {
        let ctx = context();
        let doomed = write(ctx.path(), "doomed.txt", "bye");
        let plan = plan_of(ctx.path());
        fs::remove_file(&doomed).unwrap();
        let items: Vec<_> = stream_tar_gz(plan, |_| {}).collect().await;
        let error = items.last().unwrap().as_ref().unwrap_err();
        assert!(error.to_string().contains("doomed.txt"), "{error}");
    }
}
