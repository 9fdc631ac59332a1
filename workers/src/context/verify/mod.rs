//! Server-side safety check of an uploaded build context.
//!
//! A context arrives as a tar archive, optionally gzip-compressed, streamed
//! straight from the client's upload. Before anything unpacks it we make sure
//! no entry can write outside the directory it is unpacked into: no absolute
//! or `..` paths, no links that lead out, no device nodes, and no corrupt or
//! cut-off archive; and that it stays within the server's limits on its
//! unpacked size, its expansion and the size of its extended headers.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry, EntryType};

use crate::protocol::{human_size, human_size_over, ContextLimits, EXPANSION_FLOOR};
use guard::{Counted, Guard, Refused};
use links::{check_hard_link, check_link_target, normalize, parent, LinkTree};

pub use guard::MAX_EXTENDED_HEADER;

mod guard;
mod links;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a verified archive contains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Files, directories and links in the archive (tar metadata entries excluded).
    pub entries: u64,
    /// Sum of the sizes of the regular files.
    pub bytes: u64,
}

/// Why an uploaded context was rejected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An entry's path could write outside the context, or is otherwise unusable.
    #[error("context archive entry '{entry}' is not allowed: {reason}")]
    UnsafePath {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why the path is unsafe.
        reason: String,
    },
    /// A symbolic or hard link whose target lies outside the context.
    #[error(
        "context archive entry '{entry}' links to '{target}', which is outside the build context"
    )]
    UnsafeLink {
        /// The link's path as written in the archive.
        entry: String,
        /// The link's target as written in the archive.
        target: String,
    },
    /// A device node, FIFO or other entry a build context has no use for.
    #[error("context archive entry '{entry}' is a {kind}; only files, directories and links are allowed")]
    UnsupportedEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// What kind of entry it is, e.g. "character device".
        kind: String,
    },
    /// The bytes are not a valid (gzip-compressed) tar archive.
    #[error("context archive is corrupt: {0}")]
    Corrupt(String),
    /// The archive stops before its end-of-archive marker or gzip trailer:
    /// the upload was probably cut off.
    #[error("context archive is truncated")]
    Truncated,
    /// Reading the upload itself failed.
    #[error("reading the context archive failed: {0}")]
    Io(std::io::Error),
    /// A PAX extended header or GNU long name larger than any real one.
    #[error(
        "context archive entry '{entry}' is a {kind} of {}; the limit is {}", human_size_over(*size, *limit), human_size(*limit)
    )]
    ExtendedHeaderTooLarge {
        /// The extended header's own path as written in the archive.
        entry: String,
        /// Which kind of extended header, e.g. "PAX header".
        kind: &'static str,
        /// The size its header declares.
        size: u64,
        /// [`MAX_EXTENDED_HEADER`].
        limit: u64,
    },
    /// An entry whose declared size takes the unpacked context past the limit.
    #[error("context archive entry '{entry}' declares {}, which takes the unpacked context past the limit of {}", human_size(*size), human_size(*limit))]
    EntryTooLarge {
        /// The entry's path as written in the archive.
        entry: String,
        /// The size it declares (for a sparse file, its full size).
        size: u64,
        /// The unpacked size limit.
        limit: u64,
    },
    /// The decompressed archive is larger than the limit.
    #[error("context archive unpacks to more than the limit of {}", human_size(*limit))]
    UnpackedTooLarge {
        /// The unpacked size limit.
        limit: u64,
    },
    /// Decompressing expands the archive more than the limit allows: a decompression bomb.
    #[error(
        "context archive expands more than {limit} times when decompressed; \
         the limit applies past {} MiB unpacked",
        EXPANSION_FLOOR >> 20
    )]
    ExpansionTooHigh {
        /// The largest ratio of decompressed to compressed bytes.
        limit: u64,
    },
}

impl VerifyError {
    /// Whether the archive broke a size limit (answered 413) rather than being unsafe or
    /// malformed (400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            VerifyError::EntryTooLarge { .. }
                | VerifyError::UnpackedTooLarge { .. }
                | VerifyError::ExpansionTooHigh { .. }
        )
    }
}

/// Checks that `reader` holds a tar archive (plain or gzip-compressed) that is
/// safe to unpack as a build context and within `limits` (of which `max_size`
/// is the caller's to enforce: it knows the size before reading).
///
/// The reader is consumed once, sequentially, and on success to its very end:
/// everything after the tar end-of-archive marker is read too, so that the
/// gzip checksum and length are verified and trailing garbage is noticed. On
/// failure it stops at the offending entry, leaving the rest unread.
pub fn verify_archive<R: Read>(
    reader: R,
    limits: &ContextLimits,
) -> Result<ArchiveSummary, VerifyError> {
    let compressed = Rc::new(Cell::new(0));
    let mut source = Counted {
        inner: Source(reader),
        count: compressed.clone(),
    };
    let (magic, len) = read_magic(&mut source).map_err(|err| classify(err, false))?;
    if len == 0 {
        return Err(VerifyError::Corrupt("the upload is empty".to_owned()));
    }
    let stream = (&magic[..len]).chain(source);
    if magic == GZIP_MAGIC {
        // Multi-member gzip is valid gzip, and decoding it as such also makes
        // bytes after the first member an error instead of going unread.
        let decoded = MultiGzDecoder::new(stream);
        verify_tar(Guard::new(decoded, *limits, compressed))
    } else {
        verify_tar(Guard::new(stream, *limits, compressed))
    }
}

/// Reads up to two bytes, fewer only when the input is that short.
fn read_magic(source: &mut impl Read) -> io::Result<([u8; 2], usize)> {
    let mut magic = [0; 2];
    let mut len = 0;
    while len < magic.len() {
        match source.read(&mut magic[len..])? {
            0 => break,
            n => len += n,
        }
    }
    Ok((magic, len))
}

fn verify_tar<D: Read>(decoded: D) -> Result<ArchiveSummary, VerifyError> {
    let ended = Cell::new(false);
    let mut archive = Archive::new(EndTracker {
        inner: decoded,
        ended: &ended,
    });
    let checker = check_entries(&mut archive, &ended)?;
    // The tar crate also stops without complaint when the stream ends right at
    // a header boundary; a complete archive ends with a zero block instead.
    if ended.get() {
        return Err(VerifyError::Truncated);
    }
    drain_padding(archive.into_inner())?;
    checker.finish()
}

fn check_entries<D: Read>(
    archive: &mut Archive<D>,
    ended: &Cell<bool>,
) -> Result<Checker, VerifyError> {
    let read_error = |err| classify(err, ended.get());
    let mut checker = Checker::default();
    for entry in archive.entries().map_err(read_error)? {
        checker.check(&entry.map_err(read_error)?)?;
    }
    Ok(checker)
}

/// Reads everything after the end-of-archive marker, which must be zero padding.
fn drain_padding(mut stream: impl Read) -> Result<(), VerifyError> {
    let mut buf = [0; 8192];
    loop {
        let n = stream.read(&mut buf).map_err(|err| classify(err, false))?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(VerifyError::Corrupt(
                "unexpected data after the end-of-archive marker".to_owned(),
            ));
        }
    }
}

/// Turns a read error into the user-facing reason.
///
/// `decoded_stream_ended` says whether the decompressed stream had already
/// reached its end: the tar crate reports a short archive as a generic error,
/// and this is how we tell truncation from corruption.
fn classify(err: io::Error, decoded_stream_ended: bool) -> VerifyError {
    let err = match err.downcast::<Refused>() {
        Ok(Refused(refusal)) => return refusal,
        Err(err) => err,
    };
    match err.downcast::<SourceError>() {
        Ok(SourceError(err)) => VerifyError::Io(err),
        Err(err) if decoded_stream_ended || err.kind() == io::ErrorKind::UnexpectedEof => {
            VerifyError::Truncated
        }
        // The tar crate reports a bad header with its raw fields quoted: for random bytes,
        // garbage that must not reach the client. Its errors are the `Other` kind;
        // the decompressor's are fixed texts of other kinds.
        Err(err) if err.kind() == io::ErrorKind::Other => VerifyError::Corrupt(
            "not a tar archive (gzip-compressed or plain), or a damaged one".to_owned(),
        ),
        Err(err) => VerifyError::Corrupt(err.to_string()),
    }
}

/// The upload reader, marking its errors so that a failed network read is
/// reported as such rather than as a corrupt archive.
struct Source<R>(R);

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                // Retry here: neither flate2 nor tar retries an interrupted read.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                result => {
                    return result.map_err(|err| io::Error::new(err.kind(), SourceError(err)))
                }
            }
        }
    }
}

#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

/// Records whether the decompressed stream has reached its end.
struct EndTracker<'a, R> {
    inner: R,
    ended: &'a Cell<bool>,
}

impl<R: Read> Read for EndTracker<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        Ok(n)
    }
}

/// A symlink seen in the archive.
struct Symlink {
    /// The link's path as written in the archive, for error messages.
    entry: String,
    /// The link's normalized path components.
    path: Vec<Vec<u8>>,
    target: Vec<u8>,
}

/// Per-entry checks, plus the symlinks seen so far for the checks that need
/// the whole archive.
#[derive(Default)]
struct Checker {
    summary: ArchiveSummary,
    links: LinkTree,
    /// In archive order, so the first offending link is the one reported.
    symlinks: Vec<Symlink>,
}

impl Checker {
    fn check<R: Read>(&mut self, entry: &Entry<'_, R>) -> Result<(), VerifyError> {
        let kind = entry.header().entry_type();
        // Global PAX headers (e.g. git archive's commit id) are metadata, not files.
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let raw_path = entry.path_bytes();
        let name = display(&raw_path);
        let path = normalize(&raw_path).map_err(|reason| unsafe_path(&name, reason))?;
        self.check_placement(&path, &name, kind)?;
        let target = entry.link_name_bytes().unwrap_or_default();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.summary.bytes = self.summary.bytes.saturating_add(entry.size());
            }
            EntryType::Directory => {}
            EntryType::Symlink => self.add_symlink(&path, name, &target)?,
            EntryType::Link => self.add_hard_link(&path, name, &target)?,
            other => {
                return Err(VerifyError::UnsupportedEntry {
                    entry: name,
                    kind: describe(other),
                })
            }
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Rejects entries that would be written through or over a symlink:
    /// extracting them would follow the link, so their real location would
    /// not be the one we checked.
    fn check_placement(
        &self,
        path: &[&[u8]],
        name: &str,
        kind: EntryType,
    ) -> Result<(), VerifyError> {
        if path.is_empty() && !kind.is_dir() {
            return Err(unsafe_path(
                name,
                "it would replace the root of the build context",
            ));
        }
        let mut node = &self.links;
        for (depth, component) in path.iter().enumerate() {
            let Some(child) = node.child(component) else {
                return Ok(());
            };
            if child.target.is_some() {
                let reason = if depth + 1 == path.len() {
                    "it would replace a symbolic link created earlier in the archive".to_owned()
                } else {
                    let parent = display(&path[..=depth].join(&b'/'));
                    format!("its parent '{parent}' is a symbolic link")
                };
                return Err(unsafe_path(name, reason));
            }
            node = child;
        }
        Ok(())
    }

    fn add_symlink(
        &mut self,
        path: &[&[u8]],
        name: String,
        target: &[u8],
    ) -> Result<(), VerifyError> {
        check_link_target(&name, target)?;
        // Check against the links seen so far to fail early; `finish` repeats
        // the check once links defined later in the archive are known too.
        self.check_symlink(parent(path), &name, target)?;
        self.links.insert(path, target);
        self.symlinks.push(Symlink {
            entry: name,
            path: path.iter().map(|component| component.to_vec()).collect(),
            target: target.to_vec(),
        });
        Ok(())
    }

    fn add_hard_link(
        &mut self,
        path: &[&[u8]],
        name: String,
        target: &[u8],
    ) -> Result<(), VerifyError> {
        check_hard_link(&name, target)?;
        match self.check_hard_link_target(&name, target)? {
            // A hard link to a symlink is a symlink with the same target, in a new place.
            Some(symlink_target) => self.add_symlink(path, name, &symlink_target),
            None => Ok(()),
        }
    }

    /// Re-checks every symlink now that the whole archive is known.
    fn finish(self) -> Result<ArchiveSummary, VerifyError> {
        for link in &self.symlinks {
            self.check_symlink(parent(&link.path), &link.entry, &link.target)?;
        }
        Ok(self.summary)
    }
}

fn unsafe_path(name: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::UnsafePath {
        entry: name.to_owned(),
        reason: reason.into(),
    }
}

/// Renders archive bytes for an error message; escaping keeps control
/// characters in a hostile name from garbling logs and terminals.
fn display(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

fn describe(kind: EntryType) -> String {
    match kind {
        EntryType::Char => "character device".to_owned(),
        EntryType::Block => "block device".to_owned(),
        EntryType::Fifo => "FIFO (named pipe)".to_owned(),
        other => format!(
            "tar entry of unsupported type '{}'",
            char::from(other.as_byte()).escape_debug()
        ),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod limit_tests;
