//! Planning: walking the context (honouring the ignore rules and default excludes), placing
//! the Dockerfile in the archive, and fingerprinting the result.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{EntryKind, PackError, PackPlan, PackRequest, PlanEntry};
use crate::context::dockerignore::IgnoreRules;

/// Top-level entries never shipped, whatever the ignore file says (as ACR does).
const DEFAULT_EXCLUDES: &[&str] = &[".git"];
/// Where a Dockerfile that is not otherwise part of the archive is placed.
const RELOCATED_DOCKERFILE_DIR: &str = ".kiln";
/// Changes whenever the archive layout changes, so cached fingerprints from older clients
/// never match.
const FINGERPRINT_VERSION: &[u8] = b"kiln-pack-v1";

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
