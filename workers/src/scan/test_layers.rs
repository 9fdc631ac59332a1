//! Builds OCI layer tarballs in memory for tests: files, directories, links and whiteouts.

use std::io::Write;

use super::layers::LayerRef;

pub struct TarLayer {
    builder: tar::Builder<Vec<u8>>,
}

impl TarLayer {
    pub fn new() -> Self {
        TarLayer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    pub fn file(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.regular(path, 0o644, content.as_ref())
    }

    pub fn executable(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.regular(path, 0o755, content.as_ref())
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        self.builder
            .append_data(&mut header, path, std::io::empty())
            .unwrap();
        self
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub fn hard_link(self, path: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, path, target)
    }

    /// `.wh.<name>` beside `path`: removes `path` (and what is under it) from lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, "")
    }

    /// `.wh..wh..opq` in `dir`: hides everything lower layers put in it.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), "")
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }

    pub fn gzip(self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&self.tar()).unwrap();
        gz.finish().unwrap()
    }

    pub fn zstd(self) -> Vec<u8> {
        zstd::stream::encode_all(self.tar().as_slice(), 1).unwrap()
    }

    fn regular(mut self, path: &str, mode: u32, content: &[u8]) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        self.builder
            .append_data(&mut header, path, content)
            .unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o777);
        header.set_size(0);
        self.builder.append_link(&mut header, path, target).unwrap();
        self
    }
}

/// Layer `index` with a made-up digest.
pub fn layer_ref(index: usize) -> LayerRef {
    LayerRef {
        index,
        digest: format!("sha256:{index:064}"),
    }
}

/// Layers as the walker takes them, base first.
pub fn layers(tars: Vec<Vec<u8>>) -> Vec<(LayerRef, std::io::Cursor<Vec<u8>>)> {
    tars.into_iter()
        .enumerate()
        .map(|(i, tar)| (layer_ref(i), std::io::Cursor::new(tar)))
        .collect()
}
