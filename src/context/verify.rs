//! Server-side safety check of an uploaded build context.
//!
//! A context arrives as a tar archive, optionally gzip-compressed, streamed
//! straight from the client's upload. Before anything unpacks it we make sure
//! no entry can write outside the directory it is unpacked into: no absolute
//! or `..` paths, no links that lead out, no device nodes, and no corrupt or
//! cut-off archive.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry, EntryType};

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Longest path or link target accepted, Linux's PATH_MAX. Longer ones could
/// not be created on extraction anyway, and the cap bounds the work per entry.
const MAX_PATH_LEN: usize = 4096;

/// How many symlinks one path lookup may follow, as Linux's MAXSYMLINKS.
/// A chain that needs more would fail to resolve on the host anyway, and
/// following further would let a crafted archive make the check slow.
const MAX_LINK_HOPS: usize = 40;

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
}

/// Checks that `reader` holds a tar archive (plain or gzip-compressed) that is
/// safe to unpack as a build context.
///
/// The reader is consumed once, sequentially, and on success to its very end:
/// everything after the tar end-of-archive marker is read too, so that the
/// gzip checksum and length are verified and trailing garbage is noticed. On
/// failure it stops at the offending entry, leaving the rest unread.
pub fn verify_archive<R: Read>(reader: R) -> Result<ArchiveSummary, VerifyError> {
    let mut source = Source(reader);
    let (magic, len) = read_magic(&mut source).map_err(|err| classify(err, false))?;
    if len == 0 {
        return Err(VerifyError::Corrupt("the upload is empty".to_owned()));
    }
    let stream = (&magic[..len]).chain(source);
    if magic == GZIP_MAGIC {
        // Multi-member gzip is valid gzip, and decoding it as such also makes
        // bytes after the first member an error instead of going unread.
        verify_tar(MultiGzDecoder::new(stream))
    } else {
        verify_tar(stream)
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
    match err.downcast::<SourceError>() {
        Ok(SourceError(err)) => VerifyError::Io(err),
        Err(err) if decoded_stream_ended || err.kind() == io::ErrorKind::UnexpectedEof => {
            VerifyError::Truncated
        }
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

/// The archive's symlinks as a tree of path components, so that walking a
/// path through it costs time linear in the path's length.
#[derive(Default)]
struct LinkTree {
    children: HashMap<Vec<u8>, LinkTree>,
    /// Set when this path is a symlink.
    target: Option<Vec<u8>>,
}

impl LinkTree {
    fn insert(&mut self, path: &[&[u8]], target: &[u8]) {
        let node = path.iter().fold(self, |node, component| {
            node.children.entry(component.to_vec()).or_default()
        });
        node.target = Some(target.to_vec());
    }

    fn child(&self, name: &[u8]) -> Option<&LinkTree> {
        self.children.get(name)
    }
}

/// Where following a symlink's target leads.
enum Resolution {
    Inside,
    Outside,
    TooManyHops,
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
            EntryType::Link => check_hard_link(&name, &target)?,
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

    fn check_symlink<C: AsRef<[u8]>>(
        &self,
        dir: &[C],
        name: &str,
        target: &[u8],
    ) -> Result<(), VerifyError> {
        match self.resolve(dir, target) {
            Resolution::Inside => Ok(()),
            Resolution::Outside => Err(VerifyError::UnsafeLink {
                entry: name.to_owned(),
                target: display(target),
            }),
            Resolution::TooManyHops => Err(unsafe_path(
                name,
                "its symbolic link chain loops or is too long to resolve",
            )),
        }
    }

    /// Follows `target` from the link's directory `dir` the way the kernel
    /// would after extraction, expanding every symlink of the archive on the
    /// way, including any in `dir` itself. Plain lexical resolution is not
    /// enough: with `a/up -> ..`, the link `a/esc -> up/..` looks like it stays
    /// in `a` but leaves the root.
    ///
    /// An absolute target is resolved from the archive root, as BuildKit resolves
    /// links inside a build context, so `/usr/bin/python` stays inside.
    fn resolve<C: AsRef<[u8]>>(&self, dir: &[C], target: &[u8]) -> Resolution {
        // Components still to walk, next one last.
        let mut pending: Vec<&[u8]> = components(target).rev().collect();
        if !target.starts_with(b"/") {
            pending.extend(dir.iter().rev().map(AsRef::as_ref));
        }
        // The link tree node of each directory walked into; `None` once below
        // every symlink.
        let mut walked: Vec<Option<&LinkTree>> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                b"" | b"." => {}
                b".." => {
                    if walked.pop().is_none() {
                        return Resolution::Outside;
                    }
                }
                name => {
                    let current = walked.last().copied().unwrap_or(Some(&self.links));
                    let node = current.and_then(|node| node.child(name));
                    match node.and_then(|node| node.target.as_deref()) {
                        Some(link_target) => {
                            hops += 1;
                            if hops > MAX_LINK_HOPS {
                                return Resolution::TooManyHops;
                            }
                            if link_target.starts_with(b"/") {
                                walked.clear();
                            }
                            pending.extend(components(link_target).rev());
                        }
                        None => walked.push(node),
                    }
                }
            }
        }
        Resolution::Inside
    }

    /// Re-checks every symlink now that the whole archive is known.
    fn finish(self) -> Result<ArchiveSummary, VerifyError> {
        for link in &self.symlinks {
            self.check_symlink(parent(&link.path), &link.entry, &link.target)?;
        }
        Ok(self.summary)
    }
}

/// Rejects link targets that cannot be checked reliably.
fn check_link_target(name: &str, target: &[u8]) -> Result<(), VerifyError> {
    if target.contains(&0) {
        // The system call creating the link would silently cut the target short.
        return Err(unsafe_path(name, "its link target contains a NUL byte"));
    }
    if target.len() > MAX_PATH_LEN {
        return Err(unsafe_path(
            name,
            "its link target is longer than 4096 bytes",
        ));
    }
    Ok(())
}

/// A hard link's target is a path inside the archive, so it must itself be a
/// safe relative path; any symlinks it passes through are checked on their own.
fn check_hard_link(name: &str, target: &[u8]) -> Result<(), VerifyError> {
    check_link_target(name, target)?;
    match normalize(target) {
        Ok(path) if path.is_empty() => Err(unsafe_path(
            name,
            "it is a hard link to the root of the build context",
        )),
        Ok(_) => Ok(()),
        Err(_) => Err(VerifyError::UnsafeLink {
            entry: name.to_owned(),
            target: display(target),
        }),
    }
}

/// Splits an archive path into its meaningful components, or says why the
/// path could escape the extraction directory.
fn normalize(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if path.contains(&0) {
        // Anything after a NUL would be cut off by the system calls that extract it.
        return Err("it contains a NUL byte");
    }
    if path.len() > MAX_PATH_LEN {
        return Err("its path is longer than 4096 bytes");
    }
    if path.starts_with(b"/") {
        return Err("it is an absolute path");
    }
    let mut normalized = Vec::new();
    for component in components(path) {
        match component {
            b"" | b"." => {}
            b".." => return Err("it contains a '..' path component"),
            name => normalized.push(name),
        }
    }
    Ok(normalized)
}

/// The components of a path's directory.
fn parent<C>(path: &[C]) -> &[C] {
    path.split_last().map_or(path, |(_, dir)| dir)
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
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
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::{Cursor, Write};
    use tar::{Builder, Header};

    type Tar = Builder<Vec<u8>>;

    fn tar(build: impl FnOnce(&mut Tar)) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn header(kind: EntryType, size: usize) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header
    }

    fn file(b: &mut Tar, path: &str, contents: &[u8]) {
        let mut header = header(EntryType::Regular, contents.len());
        b.append_data(&mut header, path, contents).unwrap();
    }

    fn dir(b: &mut Tar, path: &str) {
        let mut header = header(EntryType::Directory, 0);
        b.append_data(&mut header, path, io::empty()).unwrap();
    }

    /// Writes an entry with raw name and link bytes, bypassing the builder's
    /// path validation so that malicious entries can be created.
    fn raw(b: &mut Tar, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
        let mut header = header(kind, data.len());
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_cksum();
        b.append(&header, data).unwrap();
    }

    fn symlink(b: &mut Tar, name: &str, target: &str) {
        raw(
            b,
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            &[],
        );
    }

    fn hard_link(b: &mut Tar, name: &str, target: &str) {
        raw(b, EntryType::Link, name.as_bytes(), target.as_bytes(), &[]);
    }

    /// One `length key=value\n` PAX record; the length counts its own digits.
    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body_len = key.len() + value.len() + 3; // ' ', '=' and '\n'
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len += 1;
        }
        let mut record = format!("{len} {key}=").into_bytes();
        record.extend_from_slice(value);
        record.push(b'\n');
        record
    }

    /// A PAX extended header entry describing the next entry.
    fn pax(b: &mut Tar, key: &str, value: &[u8]) {
        let record = pax_record(key, value);
        raw(b, EntryType::XHeader, b"PaxHeaders/entry", b"", &record);
    }

    /// A GNU long name entry describing the next entry.
    fn gnu_long_name(b: &mut Tar, name: &[u8]) {
        let mut data = name.to_vec();
        data.push(0);
        raw(b, EntryType::GNULongName, b"././@LongLink", b"", &data);
    }

    fn verify(data: &[u8]) -> Result<ArchiveSummary, VerifyError> {
        verify_archive(data)
    }

    fn unsafe_path_entry(err: VerifyError) -> String {
        match err {
            VerifyError::UnsafePath { entry, .. } => entry,
            other => panic!("expected UnsafePath, got {other:?}"),
        }
    }

    fn unsafe_link_entry(err: VerifyError) -> (String, String) {
        match err {
            VerifyError::UnsafeLink { entry, target } => (entry, target),
            other => panic!("expected UnsafeLink, got {other:?}"),
        }
    }

    fn good_archive() -> Vec<u8> {
        let long_dir = format!("deep/{}", "d".repeat(120));
        tar(|b| {
            dir(b, "a");
            file(b, "a/Dockerfile", b"FROM scratch\n");
            file(b, "c", b"hello");
            symlink(b, "a/b", "../c");
            symlink(b, "a/self", ".");
            symlink(b, "a/sibling", "./Dockerfile");
            symlink(b, "up", "a/b");
            hard_link(b, "a/hard", "c");
            // The builder emits a GNU long name entry for this path.
            file(b, &format!("{long_dir}/file.txt"), b"1234");
            pax(b, "path", format!("pax/{}", "p".repeat(200)).as_bytes());
            raw(b, EntryType::Regular, b"pax-short", b"", b"xyz");
        })
    }

    #[test]
    fn accepts_safe_gzip_archive() {
        let summary = verify(&gzip(&good_archive())).unwrap();
        assert_eq!(
            summary,
            ArchiveSummary {
                entries: 10,
                bytes: 13 + 5 + 4 + 3
            }
        );
    }

    #[test]
    fn accepts_plain_tar() {
        let summary = verify(&good_archive()).unwrap();
        assert_eq!(summary.entries, 10);
    }

    #[test]
    fn accepts_empty_archive() {
        assert_eq!(verify(&tar(|_| {})).unwrap(), ArchiveSummary::default());
    }

    #[test]
    fn accepts_pax_global_header_like_git_archive() {
        let data = tar(|b| {
            let record = pax_record("comment", b"0123456789abcdef0123456789abcdef01234567");
            raw(
                b,
                EntryType::XGlobalHeader,
                b"pax_global_header",
                b"",
                &record,
            );
            file(b, "Dockerfile", b"FROM scratch\n");
        });
        assert_eq!(verify(&data).unwrap().entries, 1);
    }

    #[test]
    fn accepts_multi_member_gzip() {
        let data = good_archive();
        let (first, second) = data.split_at(1000);
        let mut joined = gzip(first);
        joined.extend(gzip(second));
        assert!(verify(&joined).is_ok());
    }

    #[test]
    fn consumes_the_whole_stream() {
        let mut data = gzip(&good_archive());
        let len = data.len() as u64;
        let mut cursor = Cursor::new(&mut data);
        verify_archive(&mut cursor).unwrap();
        assert_eq!(cursor.position(), len);

        let mut plain = good_archive();
        plain.extend([0; 10240]);
        let len = plain.len() as u64;
        let mut cursor = Cursor::new(&mut plain);
        verify_archive(&mut cursor).unwrap();
        assert_eq!(cursor.position(), len);
    }

    #[test]
    fn rejects_parent_directory_path() {
        let data = tar(|b| raw(b, EntryType::Regular, b"../x", b"", b"evil"));
        let err = verify(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive entry '../x' is not allowed: it contains a '..' path component"
        );
    }

    #[test]
    fn rejects_parent_directory_in_the_middle() {
        let data = tar(|b| raw(b, EntryType::Regular, b"a/../../x", b"", b"evil"));
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "a/../../x");
    }

    #[test]
    fn rejects_absolute_path() {
        let data = gzip(&tar(|b| {
            raw(b, EntryType::Regular, b"/etc/passwd", b"", b"root")
        }));
        let err = verify(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive entry '/etc/passwd' is not allowed: it is an absolute path"
        );
    }

    #[test]
    fn rejects_replacing_the_root() {
        let data = tar(|b| symlink(b, "./", "a"));
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "./");
    }

    #[test]
    fn rejects_malicious_gnu_long_name() {
        let name = format!("{}/../../../etc/cron.d/x", "a".repeat(120));
        let data = tar(|b| {
            gnu_long_name(b, name.as_bytes());
            raw(b, EntryType::Regular, b"harmless", b"", b"x");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), name);
    }

    #[test]
    fn rejects_malicious_pax_path() {
        let data = tar(|b| {
            pax(b, "path", b"../evil");
            raw(b, EntryType::Regular, b"harmless", b"", b"x");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "../evil");
    }

    #[test]
    fn rejects_nul_in_pax_path() {
        let data = tar(|b| {
            pax(b, "path", b"a\0/../x");
            raw(b, EntryType::Regular, b"harmless", b"", b"x");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "a\\0/../x");
    }

    #[test]
    fn rejects_escaping_symlink() {
        let data = tar(|b| symlink(b, "a/b", "../../etc"));
        let err = verify(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive entry 'a/b' links to '../../etc', which is outside the build context"
        );
    }

    #[test]
    fn accepts_absolute_symlink_rooted_in_the_context() {
        let data = tar(|b| symlink(b, "bin/python", "/usr/bin/python3"));
        assert!(verify(&data).is_ok());
        let data = tar(|b| symlink(b, "etc", "/../etc"));
        assert_eq!(
            unsafe_link_entry(verify(&data).unwrap_err()),
            ("etc".into(), "/../etc".into())
        );
    }

    #[test]
    fn rejects_escaping_pax_linkpath() {
        let data = tar(|b| {
            pax(b, "linkpath", b"../../../../root");
            symlink(b, "a/l", "harmless");
        });
        assert_eq!(
            unsafe_link_entry(verify(&data).unwrap_err()),
            ("a/l".into(), "../../../../root".into())
        );
    }

    #[test]
    fn rejects_symlink_escaping_through_another_symlink() {
        // `a/up` points at the root, so `a/esc` = root/.. is outside.
        let data = tar(|b| {
            symlink(b, "a/up", "..");
            symlink(b, "a/esc", "up/..");
        });
        assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/esc");
    }

    #[test]
    fn rejects_symlink_escaping_through_a_later_symlink() {
        let data = tar(|b| {
            symlink(b, "a/esc", "up/..");
            symlink(b, "a/up", "..");
        });
        assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/esc");
    }

    #[test]
    fn rejects_symlink_escaping_through_a_later_parent_symlink() {
        // Lexically `a/b/l` points at the root, but `a` turns out to be the root.
        let data = tar(|b| {
            symlink(b, "a/b/l", "../..");
            symlink(b, "a", ".");
        });
        assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/b/l");
    }

    #[test]
    fn rejects_overlong_paths() {
        let long = format!("{}x", "a/".repeat(2048));
        let data = tar(|b| {
            pax(b, "path", long.as_bytes());
            raw(b, EntryType::Regular, b"harmless", b"", b"x");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), long);
        let data = tar(|b| {
            pax(b, "linkpath", long.as_bytes());
            symlink(b, "l", "harmless");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "l");
    }

    #[test]
    fn rejects_symlink_loops() {
        let data = tar(|b| {
            symlink(b, "x", "y");
            symlink(b, "y", "x");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "x");
    }

    #[test]
    fn rejects_entries_below_a_symlink() {
        let data = tar(|b| {
            symlink(b, "link", "sub");
            file(b, "link/x", b"x");
        });
        let err = verify(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive entry 'link/x' is not allowed: its parent 'link' is a symbolic link"
        );
    }

    #[test]
    fn rejects_replacing_a_symlink() {
        let data = tar(|b| {
            symlink(b, "link", "sub");
            dir(b, "link");
        });
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "link");
    }

    #[test]
    fn rejects_escaping_hard_links() {
        for target in ["../x", "/etc/passwd", "a/../../x"] {
            let data = tar(|b| hard_link(b, "h", target));
            assert_eq!(
                unsafe_link_entry(verify(&data).unwrap_err()),
                ("h".into(), target.into())
            );
        }
    }

    #[test]
    fn rejects_hard_link_to_root() {
        let data = tar(|b| hard_link(b, "h", "."));
        assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "h");
    }

    #[test]
    fn rejects_devices_and_fifos() {
        for (kind, name) in [
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "FIFO (named pipe)"),
        ] {
            let data = tar(|b| raw(b, kind, b"dev/x", b"", b""));
            match verify(&data).unwrap_err() {
                VerifyError::UnsupportedEntry { entry, kind } => {
                    assert_eq!((entry.as_str(), kind.as_str()), ("dev/x", name));
                }
                other => panic!("expected UnsupportedEntry, got {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_unknown_entry_types() {
        let data = tar(|b| raw(b, EntryType::new(b'V'), b"label", b"", b""));
        let err = verify(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive entry 'label' is a tar entry of unsupported type 'V'; \
             only files, directories and links are allowed"
        );
    }

    #[test]
    fn rejects_truncated_gzip() {
        let data = gzip(&good_archive());
        let err = verify(&data[..data.len() - 10]).unwrap_err();
        assert!(matches!(err, VerifyError::Truncated), "{err:?}");
        assert_eq!(err.to_string(), "context archive is truncated");
    }

    #[test]
    fn rejects_gzip_missing_its_trailer() {
        let data = gzip(&good_archive());
        let err = verify(&data[..data.len() - 4]).unwrap_err();
        assert!(matches!(err, VerifyError::Truncated), "{err:?}");
    }

    #[test]
    fn rejects_gzip_with_flipped_bytes() {
        let mut data = gzip(&good_archive());
        let middle = data.len() / 2;
        for byte in &mut data[middle..middle + 4] {
            *byte ^= 0xff;
        }
        let err = verify(&data).unwrap_err();
        assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().starts_with("context archive is corrupt: "));
    }

    #[test]
    fn rejects_gzip_with_wrong_checksum() {
        let mut data = gzip(&good_archive());
        let crc = data.len() - 8;
        data[crc] ^= 0xff;
        assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
    }

    #[test]
    fn rejects_trailing_garbage_after_gzip() {
        let mut data = gzip(&good_archive());
        data.extend_from_slice(b"definitely not another gzip member");
        let err = verify(&data).unwrap_err();
        assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn rejects_data_after_end_of_archive() {
        let mut data = good_archive();
        data.extend_from_slice(&tar(|b| file(b, "hidden", b"x")));
        assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
    }

    #[test]
    fn rejects_truncated_plain_tar() {
        let data = good_archive();
        // Inside the first file's data.
        let err = verify(&data[..1024 + 5]).unwrap_err();
        assert!(matches!(err, VerifyError::Truncated), "{err:?}");
        // At a block boundary, without the end-of-archive marker.
        let err = verify(&data[..1536]).unwrap_err();
        assert!(matches!(err, VerifyError::Truncated), "{err:?}");
    }

    #[test]
    fn rejects_corrupt_plain_tar() {
        let mut data = good_archive();
        data[100] ^= 0xff;
        assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
    }

    #[test]
    fn rejects_empty_input() {
        let err = verify(&[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context archive is corrupt: the upload is empty"
        );
    }

    #[test]
    fn rejects_garbage() {
        let err = verify(&[b'x'; 2000]).unwrap_err();
        assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn reports_upload_errors_as_io() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "peer went away",
                ))
            }
        }
        let data = gzip(&good_archive());
        for cut in [0, 1, 100] {
            let err = verify_archive((&data[..cut]).chain(Failing)).unwrap_err();
            match err {
                VerifyError::Io(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset),
                other => panic!("expected Io, got {other:?}"),
            }
        }
    }

    #[test]
    fn retries_interrupted_reads() {
        struct Interrupting<R> {
            inner: R,
            interrupt: bool,
        }
        impl<R: Read> Read for Interrupting<R> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.interrupt = !self.interrupt;
                if self.interrupt {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                let len = buf.len().min(7);
                self.inner.read(&mut buf[..len])
            }
        }
        let data = gzip(&good_archive());
        let reader = Interrupting {
            inner: data.as_slice(),
            interrupt: false,
        };
        assert_eq!(verify_archive(reader).unwrap().entries, 10);
    }
}
