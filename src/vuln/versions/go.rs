//! Go module versions as `golang.org/x/mod/semver` reads them: SemVer with a leading `v`,
//! the shorthands `v1` and `v1.2` (meaning `v1.0.0`, `v1.2.0`), build metadata such as
//! `+incompatible` ignored, and pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`,
//! `v1.2.4-0.2019…`) ordered as the SemVer prereleases they are.
//!
//! OSV's Go records drop the `v` (`"fixed": "1.2.3"`), so [`Go`] accepts both spellings;
//! [`GoVersion::parse_module_version`] is the go command's strict form.

use super::semver::{SemVer, SemVerVersion};
use super::{Scheme, VersionError};

/// Go's module version order.
pub struct Go;

/// A Go module version, ordered as `semver.Compare` orders it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion(SemVerVersion);

impl GoVersion {
    /// Parses a version as the go command writes it, `v` required.
    pub fn parse_module_version(text: &str) -> Result<GoVersion, VersionError> {
        let error = || VersionError::new::<Go>(text);
        let bare = text.strip_prefix('v').ok_or_else(error)?;
        // Shorthands stop after the major or minor number, with no prerelease or build.
        let full = match bare.split('.').count() {
            1 if bare.bytes().all(|b| b.is_ascii_digit()) => format!("{bare}.0.0"),
            2 if bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') => format!("{bare}.0"),
            _ => bare.to_string(),
        };
        ::semver::Version::parse(&full)
            .map(|v| GoVersion(SemVerVersion(v)))
            .map_err(|_| error())
    }
}

impl Scheme for Go {
    type Version = GoVersion;
    const NAME: &'static str = "Go";

    fn parse(text: &str) -> Result<GoVersion, VersionError> {
        if text.starts_with('v') {
            GoVersion::parse_module_version(text)
        } else {
            SemVer::parse(text)
                .map(GoVersion)
                .map_err(|_| VersionError::new::<Self>(text))
        }
    }
}

/// The version OSV's `stdlib` and `toolchain` records use for a Go release: `go1.21.4` is
/// `1.21.4`, `go1.21` is `1.21.0`, `go1.21rc2` is `1.21.0-rc.2`. None for anything else.
pub fn go_release_version(text: &str) -> Option<String> {
    let rest = text.strip_prefix("go")?;
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (release, pre) = rest.split_at(split);
    let parts: Vec<&str> = release.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let patch = parts.get(2).copied().unwrap_or("0");
    let core = format!(
        "{}.{}.{patch}",
        parts[0],
        parts.get(1).copied().unwrap_or("0")
    );
    let version = match pre {
        "" => core,
        _ => {
            let kind = pre.trim_end_matches(|c: char| c.is_ascii_digit());
            let number = &pre[kind.len()..];
            if !matches!(kind, "rc" | "beta") || number.is_empty() {
                return None;
            }
            format!("{core}-{kind}.{number}")
        }
    };
    Go::parse(&version).ok().map(|_| version)
}
