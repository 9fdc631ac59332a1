//! Applies an image's layers, in order, to a [`FileView`]: each layer's tar stream (gzip, zstd
//! or plain) is read once, entry by entry, and nothing is unpacked to disk. OCI whiteouts remove
//! what lower layers left (`.wh.<name>`: that name and everything under it; `.wh..wh..opq`:
//! everything in its directory); the whiteouts themselves never appear. Files are kept only
//! when the filter wants them: small files whole, executables as what a streaming scan found.

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use super::binary;
use super::inventory::{Inventory, Unreadable};
use super::path;
use super::view::{Content, Earlier, FileEntry, FileView, Node};

/// Largest file kept whole (a dpkg status or a package-lock.json is a few MiB at most).
pub const MAX_KEPT_FILE: u64 = 64 * 1024 * 1024;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// One layer of the image: its position (0 = base) and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    pub index: usize,
    pub digest: String,
}

/// What the filter wants of a regular file, from its path, mode and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Skip,
    /// Keep it whole (up to [`MAX_KEPT_FILE`]).
    Content,
    /// A package database (dpkg's status, apk's installed): keep it whole, with the versions
    /// lower layers wrote, to tell which layer introduced each package.
    Database,
    /// Scan it as it streams by, if it is an ELF file.
    Executable,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {index} ({digest}): {source}")]
    Read {
        index: usize,
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the layer reader stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Applies layers one after another; [`LayerWalker::finish`] hands over the final view.
pub struct LayerWalker<F> {
    filter: F,
    view: FileView,
}

impl LayerWalker<fn(&str, u32, u64) -> Want> {
    /// A walker keeping what the built-in catalogers read.
    pub fn for_catalogers() -> Self {
        Self::new(super::catalogers::wants)
    }
}

impl<F> LayerWalker<F>
where
    F: Fn(&str, u32, u64) -> Want,
{
    /// A walker keeping the regular files `filter(path, mode, size)` wants; `path` is
    /// normalised ([`path::normalize`]).
    pub fn new(filter: F) -> Self {
        LayerWalker {
            filter,
            view: FileView::default(),
        }
    }

    /// Reads one layer (gzip, zstd or uncompressed tar; told apart by their magic numbers, as
    /// a registry's media type can be wrong or generic) to its end and applies it over the layers
    /// applied so far. Layers must come in order, base first.
    pub fn apply_layer(&mut self, layer: LayerRef, reader: impl Read) -> Result<(), LayerError> {
        let read_err = |source| LayerError::Read {
            index: layer.index,
            digest: layer.digest.clone(),
            source,
        };
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let head = reader.fill_buf().map_err(read_err)?;
        if head.starts_with(ZSTD_MAGIC) {
            let unzstd = zstd::stream::read::Decoder::with_buffer(reader).map_err(read_err)?;
            self.apply_tar(&layer, unzstd).map_err(read_err)
        } else if head.starts_with(GZIP_MAGIC) {
            let gunzip = flate2::bufread::MultiGzDecoder::new(reader);
            self.apply_tar(&layer, gunzip).map_err(read_err)
        } else {
            self.apply_tar(&layer, reader).map_err(read_err)
        }
    }

    /// [`LayerWalker::apply_layer`] for an async reader (a blob streaming from a registry),
    /// run on a blocking thread: tar, gzip and zstd are synchronous.
    pub async fn apply_layer_async<R>(
        mut self,
        layer: LayerRef,
        reader: R,
    ) -> Result<Self, LayerError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        F: Send + 'static,
    {
        let reader = SyncIoBridge::new(reader);
        tokio::task::spawn_blocking(move || self.apply_layer(layer, reader).map(|()| self)).await?
    }

    /// The view after every layer applied.
    pub fn finish(self) -> FileView {
        self.view
    }

    fn apply_tar(&mut self, layer: &LayerRef, reader: impl Read) -> std::io::Result<()> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            self.apply_entry(layer, entry?)?;
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        layer: &LayerRef,
        entry: tar::Entry<impl Read>,
    ) -> std::io::Result<()> {
        let path = path::normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.is_empty() {
            return Ok(());
        }
        let name = path::file_name(&path);
        if name == OPAQUE_WHITEOUT {
            self.view
                .remove_lower_under(path::parent(&path), layer.index);
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            self.view
                .remove_lower(&path::join(path::parent(&path), hidden), layer.index);
            return Ok(());
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            // A directory replaces a file or symlink of the same name; its lower contents stay.
            // (The view holds no directories, so whatever is at the path is not one.)
            self.view.remove(&path);
            return Ok(());
        }
        // Any other entry replaces what was at its path, and a directory's lower contents.
        let previous = self.view.remove(&path);
        self.view.remove_lower_under(&path, layer.index);
        if kind.is_symlink() {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                self.view.insert(
                    path,
                    Node::Symlink {
                        target,
                        layer: layer.clone(),
                    },
                );
            }
            return Ok(());
        }
        let mode = entry.header().mode().unwrap_or(0);
        if kind.is_hard_link() {
            self.apply_hard_link(layer, path, mode, &entry);
            return Ok(());
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Ok(());
        }
        let size = entry.size();
        let want = (self.filter)(&path, mode, size);
        match want {
            Want::Skip => {}
            Want::Content | Want::Database if size > MAX_KEPT_FILE => {
                self.view.unreadable.push(Unreadable {
                    path,
                    layer: Some(layer.clone()),
                    reason: format!(
                        "{size} bytes, over the {MAX_KEPT_FILE}-byte limit for kept files"
                    ),
                })
            }
            Want::Content | Want::Database => {
                let mut content = Vec::with_capacity(size as usize);
                let mut entry = entry;
                entry.read_to_end(&mut content)?;
                let mut file = FileEntry::new(layer.clone(), Content::Text(content.into()));
                if let (Want::Database, Some(Node::File(old))) = (want, previous) {
                    if let Content::Text(text) = old.content {
                        file.earlier.push(Earlier {
                            layer: old.layer,
                            text,
                        });
                        file.earlier.extend(old.earlier);
                    }
                }
                self.view.insert(path, Node::File(file));
            }
            Want::Executable => {
                if let Some(found) = binary::scan_executable(entry, size)? {
                    let file = FileEntry::new(layer.clone(), Content::Binary(found.into()));
                    self.view.insert(path, Node::File(file));
                }
            }
        }
        Ok(())
    }

    /// A hard link shares its target's content, which an earlier entry wrote: the view copies
    /// what it kept of the target, now written by this layer.
    fn apply_hard_link(
        &mut self,
        layer: &LayerRef,
        path: String,
        mode: u32,
        entry: &tar::Entry<impl Read>,
    ) {
        let Some(target) = entry.link_name_bytes() else {
            return;
        };
        let target = path::normalize(&String::from_utf8_lossy(&target));
        if let Some(file) = self.view.get(&target) {
            // Kept because its own path was wanted: the same file at a second path (a Go
            // binary linked under two names is two programs to report).
            let file = FileEntry::new(layer.clone(), file.content.clone());
            self.view.insert(path, Node::File(file));
            return;
        }
        // A link carries no size; an executable the scan found nothing in needs nothing.
        if matches!(
            (self.filter)(&path, mode, 0),
            Want::Content | Want::Database
        ) {
            self.view.unreadable.push(Unreadable {
                path,
                layer: Some(layer.clone()),
                reason: format!("a hard link to {target}, which was not kept"),
            });
        }
    }
}

/// Applies `layers` (base first) and runs the catalogers over the result.
pub fn scan_layers<R: Read>(
    layers: impl IntoIterator<Item = (LayerRef, R)>,
) -> Result<Inventory, LayerError> {
    let mut walker = LayerWalker::for_catalogers();
    for (layer, reader) in layers {
        walker.apply_layer(layer, reader)?;
    }
    Ok(Inventory::from_view(&walker.finish()))
}
