//! Builds a [`FileView`] directly, for cataloger tests that need no tar layers.

use crate::scan::binary::BinaryFindings;
use crate::scan::layers::LayerRef;
use crate::scan::view::{Content, FileEntry, FileView, Node};

pub struct TestView {
    view: FileView,
    layer: usize,
}

impl TestView {
    pub fn new() -> Self {
        TestView {
            view: FileView::default(),
            layer: 0,
        }
    }

    pub fn file(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let content = Content::Text(content.as_ref().into());
        self.view.insert(
            path.into(),
            Node::File(FileEntry::new(self.layer_ref(), content)),
        );
        self
    }

    pub fn binary(mut self, path: &str, findings: BinaryFindings) -> Self {
        let content = Content::Binary(findings.into());
        self.view.insert(
            path.into(),
            Node::File(FileEntry::new(self.layer_ref(), content)),
        );
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let node = Node::Symlink {
            target: target.into(),
            layer: self.layer_ref(),
        };
        self.view.insert(path.into(), node);
        self
    }

    pub fn build(self) -> FileView {
        self.view
    }

    fn layer_ref(&self) -> LayerRef {
        LayerRef {
            index: self.layer,
            digest: format!("sha256:layer{}", self.layer),
        }
    }
}

/// (name, version) of every package found, in order.
pub fn name_versions(found: &super::Found) -> Vec<(&str, &str)> {
    found
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect()
}
