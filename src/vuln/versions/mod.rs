//! Version order per ecosystem. Each family (dpkg, apk, PEP 440, SemVer, Go) parses a version
//! string into a value whose `Ord` is that ecosystem's own order, as its package manager
//! decides it; `tests.rs` checks each against vectors produced by that tool.
//!
//! A string a family cannot parse is an error, never a guess: the caller reports "unknown".

mod apk;
mod dpkg;
mod ecosystem;
mod go;
mod pep440;
mod semver;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

pub use self::semver::{SemVer, SemVerVersion};
pub use apk::{Apk, ApkVersion};
pub use dpkg::Dpkg;
pub use ecosystem::Ecosystem;
pub use go::{go_release_version, Go, GoVersion};
pub use pep440::Pep440;

/// One ecosystem's version syntax and order.
pub trait Scheme {
    /// A parsed version, ordered as the ecosystem orders it.
    type Version: Ord + std::fmt::Debug;
    /// The name used in messages ("dpkg", "PEP 440", …).
    const NAME: &'static str;
    /// Parses `text`, or says it is not a version of this scheme.
    fn parse(text: &str) -> Result<Self::Version, VersionError>;
}

/// A version string the scheme does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme} cannot parse version {version:?}")]
pub struct VersionError {
    /// The scheme that refused it.
    pub scheme: &'static str,
    /// The string as given.
    pub version: String,
}

impl VersionError {
    pub(crate) fn new<S: Scheme>(version: &str) -> Self {
        VersionError {
            scheme: S::NAME,
            version: version.to_string(),
        }
    }
}

/// The version order an ecosystem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Debian and Ubuntu: `dpkg --compare-versions`.
    Dpkg,
    /// Alpine: `apk version -t`.
    Apk,
    /// PyPI: PEP 440 as Python's `packaging` implements it.
    Pep440,
    /// npm, crates.io and OSV `SEMVER` ranges: SemVer 2.0 precedence.
    SemVer,
    /// Go modules: SemVer with a `v`, shorthand `v1.2`, pseudo-versions as prereleases.
    Go,
}

impl Family {
    /// Compares two versions of this family; an error names the first one it cannot parse.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        fn cmp<S: Scheme>(a: &str, b: &str) -> Result<Ordering, VersionError> {
            Ok(S::parse(a)?.cmp(&S::parse(b)?))
        }
        match self {
            Family::Dpkg => cmp::<Dpkg>(a, b),
            Family::Apk => cmp::<Apk>(a, b),
            Family::Pep440 => cmp::<Pep440>(a, b),
            Family::SemVer => cmp::<SemVer>(a, b),
            Family::Go => cmp::<Go>(a, b),
        }
    }

    /// Whether `text` is a version this family accepts.
    pub fn is_valid(self, text: &str) -> bool {
        match self {
            Family::Dpkg => Dpkg::parse(text).is_ok(),
            Family::Apk => Apk::parse(text).is_ok(),
            Family::Pep440 => Pep440::parse(text).is_ok(),
            Family::SemVer => SemVer::parse(text).is_ok(),
            Family::Go => Go::parse(text).is_ok(),
        }
    }
}
