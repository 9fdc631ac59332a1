//! Debian versions, `[epoch:]upstream[-revision]` (Debian Policy §5.6.12). The order is the
//! `debversion` crate's, which follows dpkg's `verrevcmp`; the syntax check is dpkg's own
//! (`parseversion` in dpkg's lib/dpkg/parsehelp.c), because `debversion` accepts strings
//! dpkg rejects (`a1.0`, `1.0-`, `1.0:1`), and a version dpkg would refuse must come out
//! "unknown" rather than be ordered by a guess.

use super::{Scheme, VersionError};

/// dpkg's version order.
pub struct Dpkg;

impl Scheme for Dpkg {
    type Version = debversion::Version;
    const NAME: &'static str = "dpkg";

    fn parse(text: &str) -> Result<debversion::Version, VersionError> {
        split(text.trim()).ok_or_else(|| VersionError::new::<Self>(text))
    }
}

/// Splits and checks a version as `dpkg --validate-version` does: its warnings (a first
/// character that is not a digit, characters outside the allowed sets) count as errors.
fn split(text: &str) -> Option<debversion::Version> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // dpkg refuses epochs above INT_MAX.
            (Some(epoch.parse::<i32>().ok()? as u32), rest)
        }
        None => (None, text),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return None,
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    let upstream_ok = upstream.starts_with(|c: char| c.is_ascii_digit())
        && upstream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+~:".contains(c));
    let revision_ok = revision.is_none_or(|r| {
        r.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
    });
    (upstream_ok && revision_ok).then(|| debversion::Version {
        epoch,
        upstream_version: upstream.to_string(),
        debian_revision: revision.map(str::to_string),
    })
}
