//! Resolving paths and links the way extraction would: normalizing entry paths, the tree of
//! the archive's symlinks, and following link targets through it.

use std::collections::HashMap;

use super::{display, unsafe_path, Checker, VerifyError};

/// Longest path or link target accepted, Linux's PATH_MAX. Longer ones could
/// not be created on extraction anyway, and the cap bounds the work per entry.
const MAX_PATH_LEN: usize = 4096;

/// How many symlinks one path lookup may follow, as Linux's MAXSYMLINKS.
/// A chain that needs more would fail to resolve on the host anyway, and
/// following further would let a crafted archive make the check slow.
const MAX_LINK_HOPS: usize = 40;

/// The archive's symlinks as a tree of path components, so that walking a
/// path through it costs time linear in the path's length.
#[derive(Default)]
pub(super) struct LinkTree {
    children: HashMap<Vec<u8>, LinkTree>,
    /// Set when this path is a symlink.
    pub(super) target: Option<Vec<u8>>,
}

impl LinkTree {
    pub(super) fn insert(&mut self, path: &[&[u8]], target: &[u8]) {
        let node = path.iter().fold(self, |node, component| {
            node.children.entry(component.to_vec()).or_default()
        });
        node.target = Some(target.to_vec());
    }

    pub(super) fn child(&self, name: &[u8]) -> Option<&LinkTree> {
        self.children.get(name)
    }
}

/// Where following a symlink's target leads.
enum Resolution {
    Inside,
    Outside,
    TooManyHops,
}

/// Where an absolute symlink target met on the way leads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Absolute {
    /// To the archive root, as BuildKit resolves links inside a build context.
    FromRoot,
    /// Out of the context: the kernel of the host that extracts the archive follows it
    /// from the host's root, as when extraction creates a hard link.
    Escapes,
}

impl Checker {
    pub(super) fn check_symlink<C: AsRef<[u8]>>(
        &self,
        dir: &[C],
        name: &str,
        target: &[u8],
    ) -> Result<(), VerifyError> {
        refuse(self.resolve(dir, target), name, target)
    }

    /// Checks a hard link's target (already known to be a relative path without `..`) the
    /// way extraction creates the link, with link(2) on the host: symlinks among the
    /// target's directories are followed there, an absolute one from the host's root, so
    /// `h -> link/secret` with `link -> /etc` would link the host's `/etc/secret`. The last
    /// component is not followed: linking to a symlink makes another symlink, whose target
    /// is returned so that the caller checks it from the hard link's place.
    pub(super) fn check_hard_link_target(
        &self,
        name: &str,
        target: &[u8],
    ) -> Result<Option<Vec<u8>>, VerifyError> {
        let path: Vec<&[u8]> = components(target)
            .filter(|c| !matches!(*c, b"" | b"."))
            .collect();
        let Some((last, dir)) = path.split_last() else {
            return Ok(None);
        };
        let walked = match self.walk(dir.iter().rev().copied().collect(), Absolute::Escapes) {
            Ok(walked) => walked,
            Err(resolution) => return refuse(resolution, name, target).map(|()| None),
        };
        let node = walked.last().copied().unwrap_or(Some(&self.links));
        Ok(node
            .and_then(|node| node.child(last))
            .and_then(|node| node.target.clone()))
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
        match self.walk(pending, Absolute::FromRoot) {
            Ok(_) => Resolution::Inside,
            Err(resolution) => resolution,
        }
    }

    /// Walks `pending` (next component last) from the archive root through the archive's
    /// symlinks, and returns the link tree node of each directory walked into (`None` once
    /// below every symlink), or why the walk left the context.
    fn walk<'a>(
        &'a self,
        mut pending: Vec<&'a [u8]>,
        absolute: Absolute,
    ) -> Result<Vec<Option<&'a LinkTree>>, Resolution> {
        let mut walked: Vec<Option<&LinkTree>> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                b"" | b"." => {}
                b".." => {
                    if walked.pop().is_none() {
                        return Err(Resolution::Outside);
                    }
                }
                name => {
                    let current = walked.last().copied().unwrap_or(Some(&self.links));
                    let node = current.and_then(|node| node.child(name));
                    match node.and_then(|node| node.target.as_deref()) {
                        Some(link_target) => {
                            hops += 1;
                            if hops > MAX_LINK_HOPS {
                                return Err(Resolution::TooManyHops);
                            }
                            if link_target.starts_with(b"/") {
                                if absolute == Absolute::Escapes {
                                    return Err(Resolution::Outside);
                                }
                                walked.clear();
                            }
                            pending.extend(components(link_target).rev());
                        }
                        None => walked.push(node),
                    }
                }
            }
        }
        Ok(walked)
    }
}

/// The error for a link whose resolution left the context.
fn refuse(resolution: Resolution, name: &str, target: &[u8]) -> Result<(), VerifyError> {
    match resolution {
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

/// Rejects link targets that cannot be checked reliably.
pub(super) fn check_link_target(name: &str, target: &[u8]) -> Result<(), VerifyError> {
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
/// safe relative path; the symlinks it passes through are checked by
/// `Checker::check_hard_link_target`.
pub(super) fn check_hard_link(name: &str, target: &[u8]) -> Result<(), VerifyError> {
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
pub(super) fn normalize(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
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
pub(super) fn parent<C>(path: &[C]) -> &[C] {
    path.split_last().map_or(path, |(_, dir)| dir)
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
}
