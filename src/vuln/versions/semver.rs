//! SemVer 2.0 precedence for npm, crates.io and every OSV `SEMVER` range, with the `semver`
//! crate for the syntax. Precedence ignores build metadata (SemVer §10–11); the crate's own
//! `Ord` breaks ties on it, so the comparison here leaves it out.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// SemVer 2.0 precedence.
pub struct SemVer;

/// A SemVer version, ordered by precedence (build metadata ignored).
#[derive(Debug, Clone)]
pub struct SemVerVersion(pub ::semver::Version);

impl Scheme for SemVer {
    type Version = SemVerVersion;
    const NAME: &'static str = "SemVer";

    /// Strict SemVer 2.0, as node's `semver` parses it without `loose`: surrounding
    /// whitespace and one leading `v` are allowed (npm writes them), nothing else is.
    fn parse(text: &str) -> Result<SemVerVersion, VersionError> {
        let trimmed = text.trim();
        let bare = trimmed.strip_prefix('v').unwrap_or(trimmed);
        ::semver::Version::parse(bare)
            .map(SemVerVersion)
            .map_err(|_| VersionError::new::<Self>(text))
    }
}

impl Ord for SemVerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0, &other.0);
        (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
    }
}

impl PartialOrd for SemVerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVerVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVerVersion {}
