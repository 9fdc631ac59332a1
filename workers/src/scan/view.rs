//! The final view of an image's file system after all its layers, reduced to what the
//! catalogers asked for: kept files (with the layer that last wrote them) and every symlink,
//! so that fixed paths such as `/etc/os-release -> ../usr/lib/os-release` resolve.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::binary::BinaryFindings;
use super::inventory::Unreadable;
use super::layers::LayerRef;
use super::path;

/// How many symlinks a lookup follows before giving up, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// A kept file: what it holds and the layer that last wrote it.
#[derive(Clone, Debug)]
pub struct FileEntry {
    pub layer: LayerRef,
    pub content: Content,
    /// For package databases ([`super::Want::Database`]), the versions lower layers wrote,
    /// newest first, so a package can be traced to the layer that introduced it.
    pub earlier: Vec<Earlier>,
}

impl FileEntry {
    pub fn new(layer: LayerRef, content: Content) -> Self {
        FileEntry {
            layer,
            content,
            earlier: Vec::new(),
        }
    }
}

/// A version of a file that a later layer replaced.
#[derive(Clone, Debug)]
pub struct Earlier {
    pub layer: LayerRef,
    pub text: Arc<[u8]>,
}

/// What the view keeps of a file.
#[derive(Clone, Debug)]
pub enum Content {
    /// A small file (a package database, a manifest), whole.
    Text(Arc<[u8]>),
    /// What the streaming scan of an executable found in it.
    Binary(Arc<BinaryFindings>),
}

impl Content {
    /// The text of a whole-kept file; `None` for a scanned binary.
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Content::Text(bytes) => Some(bytes),
            Content::Binary(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    File(FileEntry),
    Symlink { target: String, layer: LayerRef },
}

impl Node {
    fn layer_index(&self) -> usize {
        match self {
            Node::File(file) => file.layer.index,
            Node::Symlink { layer, .. } => layer.index,
        }
    }
}

/// The image's files that matter to the catalogers, keyed by normalised path
/// ([`path::normalize`]).
#[derive(Debug, Default)]
pub struct FileView {
    nodes: BTreeMap<String, Node>,
    /// Files the walk could not keep (too large, a hard link to a file it did not keep, …).
    pub(crate) unreadable: Vec<Unreadable>,
}

impl FileView {
    /// The kept file at exactly `path` (no symlinks followed).
    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        match self.nodes.get(path)? {
            Node::File(file) => Some(file),
            Node::Symlink { .. } => None,
        }
    }

    /// The kept file `path` leads to, following symlinks in any component, as the kernel
    /// would inside the image's root; with the path it resolved to.
    pub fn resolve(&self, path: &str) -> Option<(String, &FileEntry)> {
        let mut current = path::normalize(path);
        for _ in 0..MAX_SYMLINK_HOPS {
            let Some((end, target)) = self.first_symlink(&current) else {
                return self.get(&current).map(|file| (current.clone(), file));
            };
            let base = if target.starts_with('/') {
                ""
            } else {
                path::parent(&current[..end])
            };
            current = path::normalize(&format!("{base}/{target}{}", &current[end..]));
        }
        None
    }

    /// The shortest prefix of `path` (a whole number of components) that is a symlink: where
    /// it ends in `path`, and its target.
    fn first_symlink(&self, path: &str) -> Option<(usize, &str)> {
        let ends = path.match_indices('/').map(|(i, _)| i).chain([path.len()]);
        for end in ends {
            if let Some(Node::Symlink { target, .. }) = self.nodes.get(&path[..end]) {
                return Some((end, target));
            }
        }
        None
    }

    /// Every kept file, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        self.nodes.iter().filter_map(|(path, node)| match node {
            Node::File(file) => Some((path.as_str(), file)),
            Node::Symlink { .. } => None,
        })
    }

    /// Kept files directly or indirectly inside `dir`.
    pub fn files_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a FileEntry)> {
        self.nodes
            .range::<String, _>(descendants(dir))
            .filter_map(|(path, node)| match node {
                Node::File(file) => Some((path.as_str(), file)),
                Node::Symlink { .. } => None,
            })
    }

    /// Files the walk could not keep.
    pub fn unreadable(&self) -> &[Unreadable] {
        &self.unreadable
    }

    pub(crate) fn insert(&mut self, path: String, node: Node) {
        self.nodes.insert(path, node);
    }

    pub(crate) fn remove(&mut self, path: &str) -> Option<Node> {
        self.nodes.remove(path)
    }

    /// Removes what layers below `layer` left inside `dir` (not `dir` itself): an opaque
    /// whiteout, or a non-directory replacing a directory. Entries the current layer wrote
    /// stay, whatever their order in its tar.
    pub(crate) fn remove_lower_under(&mut self, dir: &str, layer: usize) {
        let doomed: Vec<String> = self
            .nodes
            .range::<String, _>(descendants(dir))
            .filter(|(_, node)| node.layer_index() < layer)
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
        }
    }

    /// A `.wh.<name>` whiteout: `path` and everything under it, as lower layers left them.
    pub(crate) fn remove_lower(&mut self, path: &str, layer: usize) {
        if self
            .nodes
            .get(path)
            .is_some_and(|node| node.layer_index() < layer)
        {
            self.nodes.remove(path);
        }
        self.remove_lower_under(path, layer);
    }
}

/// The key range of everything strictly inside `dir` ("" is the root): from `dir/` up to
/// `dir0`, `0` being the character after `/`.
fn descendants(dir: &str) -> (Bound<String>, Bound<String>) {
    if dir.is_empty() {
        return (Bound::Unbounded, Bound::Unbounded);
    }
    (
        Bound::Included(format!("{dir}/")),
        Bound::Excluded(format!("{dir}0")),
    )
}
