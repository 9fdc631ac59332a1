//! Is version V of package P affected by record R: the OSV specification's evaluation
//! (ossf/osv-schema `docs/schema.md`, "Evaluation"), with one addition — where Kiln cannot
//! order a version, the answer is `Unknown`, never "not affected".
//!
//! - An `affected[]` entry applies when its ecosystem equals the package's (a `Debian:12`
//!   record, Debian 12 packages only) and the names match after normalisation.
//! - The version is affected when it is in `versions` (the same string, as the spec's
//!   `v == version` and osv-scanner compare it), or inside any `SEMVER` or
//!   `ECOSYSTEM` range: events sorted by version (`introduced: "0"` first), `introduced`
//!   opens, `fixed` closes at that version, `last_affected` closes after it, and the range
//!   counts only below one of its `limit`s, if it has any. `GIT` ranges describe commits,
//!   not package versions, and are skipped.
//! - A withdrawn record affects nothing.

use std::cmp::Ordering;

use super::osv::{Affected, Event, Range, RangeKind, Record};
use super::versions::{
    go_release_version, Apk, Dpkg, Ecosystem, Family, Go, Pep440, Scheme, SemVer, VersionError,
};

/// An installed package as an inventory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// The name the ecosystem's records use (Debian: the source package).
    pub name: String,
    pub version: String,
}

/// The answer for one record and one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Affected; `fixed` is the lowest fixed version above the installed one, if any.
    Affected {
        fixed: Option<String>,
    },
    NotAffected,
    /// The record names the package but Kiln cannot tell: a version it cannot parse or an
    /// ecosystem whose order it does not know.
    Unknown(UnknownReason),
}

/// Why a verdict is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownReason {
    #[error(transparent)]
    UnparsableVersion(#[from] VersionError),
    #[error("no version order known for ecosystem {0}")]
    UnsupportedEcosystem(String),
}

/// Evaluates `record` for `package`.
pub fn evaluate(record: &Record, package: &Package) -> Verdict {
    if record.withdrawn.is_some() {
        return Verdict::NotAffected;
    }
    // Go binaries name their toolchain `go1.21.4`; OSV's `stdlib` records say `1.21.4`.
    let release;
    let package = match go_release(package) {
        Some(version) => {
            release = Package {
                version,
                ..package.clone()
            };
            &release
        }
        None => package,
    };
    let name = package.ecosystem.normalise_name(&package.name);
    let mut unknown = None;
    for affected in &record.affected {
        let Some(named) = &affected.package else {
            continue;
        };
        if Ecosystem::parse(&named.ecosystem) != package.ecosystem
            || package.ecosystem.normalise_name(&named.name) != name
        {
            continue;
        }
        match evaluate_affected(affected, package) {
            verdict @ Verdict::Affected { .. } => return verdict,
            Verdict::Unknown(reason) => unknown = unknown.or(Some(reason)),
            Verdict::NotAffected => {}
        }
    }
    unknown.map_or(Verdict::NotAffected, Verdict::Unknown)
}

fn go_release(package: &Package) -> Option<String> {
    let toolchain = matches!(package.name.as_str(), "stdlib" | "toolchain");
    (package.ecosystem == Ecosystem::Go && toolchain)
        .then(|| go_release_version(&package.version))
        .flatten()
}

/// One `affected[]` entry whose package matches. The installed version is parsed once, in
/// the ecosystem's order, and compared with every range event.
fn evaluate_affected(affected: &Affected, package: &Package) -> Verdict {
    match package.ecosystem.family() {
        Some(Family::Dpkg) => evaluate_in::<Dpkg>(affected, package),
        Some(Family::Apk) => evaluate_in::<Apk>(affected, package),
        Some(Family::Pep440) => evaluate_in::<Pep440>(affected, package),
        Some(Family::SemVer) => evaluate_in::<SemVer>(affected, package),
        Some(Family::Go) => evaluate_in::<Go>(affected, package),
        None => {
            let listed = affected.versions.contains(&package.version);
            let ranges = affected.ranges.iter().filter_map(|range| match range.kind {
                RangeKind::Semver => Some(semver_range(range, package)),
                RangeKind::Ecosystem => Some(Err(UnknownReason::UnsupportedEcosystem(
                    package.ecosystem.to_string(),
                ))),
                RangeKind::Git | RangeKind::Unknown => None,
            });
            combine(listed, ranges)
        }
    }
}

/// `evaluate_affected` for an ecosystem ordered by `S`.
fn evaluate_in<S: Scheme>(affected: &Affected, package: &Package) -> Verdict {
    let installed = S::parse(&package.version);
    let listed = affected.versions.contains(&package.version);
    let semver_is_native = package.ecosystem.family() == Some(package.ecosystem.semver_family());
    let ranges = affected.ranges.iter().filter_map(|range| match range.kind {
        RangeKind::Ecosystem => Some(in_range_of::<S>(range, &installed)),
        RangeKind::Semver if semver_is_native => Some(in_range_of::<S>(range, &installed)),
        RangeKind::Semver => Some(semver_range(range, package)),
        RangeKind::Git | RangeKind::Unknown => None,
    });
    combine(listed, ranges)
}

/// A `SEMVER` range of an ecosystem whose own order is not SemVer (rare: PyPI, Debian).
fn semver_range(range: &Range, package: &Package) -> Result<RangeVerdict, UnknownReason> {
    match package.ecosystem.semver_family() {
        Family::Go => in_range_of::<Go>(range, &Go::parse(&package.version)),
        _ => in_range_of::<SemVer>(range, &SemVer::parse(&package.version)),
    }
}

/// Affected if listed or inside a range (listed first, so a range can still name the fix);
/// else unknown if a range could not be evaluated; else not affected.
fn combine(
    listed: bool,
    ranges: impl Iterator<Item = Result<RangeVerdict, UnknownReason>>,
) -> Verdict {
    let (mut unknown, mut fixed_for_listed) = (None, None);
    for range in ranges {
        match range {
            Ok(RangeVerdict::Inside { fixed }) if !listed => return Verdict::Affected { fixed },
            Ok(RangeVerdict::Inside { fixed }) => fixed_for_listed = fixed_for_listed.or(fixed),
            Ok(RangeVerdict::Outside) => {}
            Err(reason) => {
                unknown.get_or_insert(reason);
            }
        }
    }
    if listed {
        return Verdict::Affected {
            fixed: fixed_for_listed,
        };
    }
    unknown.map_or(Verdict::NotAffected, Verdict::Unknown)
}

enum RangeVerdict {
    Inside { fixed: Option<String> },
    Outside,
}

/// A parsed event bound: `introduced: "0"` is below everything, `limit: "*"` above.
enum Bound<V> {
    Zero,
    Version(V),
    Infinity,
}

impl<V: Ord> Bound<V> {
    /// Where `v` stands relative to this bound.
    fn position_of(&self, v: &V) -> Ordering {
        match self {
            Bound::Zero => Ordering::Greater,
            Bound::Version(bound) => v.cmp(bound),
            Bound::Infinity => Ordering::Less,
        }
    }

    fn sort_key(&self) -> (u8, Option<&V>) {
        match self {
            Bound::Zero => (0, None),
            Bound::Version(v) => (1, Some(v)),
            Bound::Infinity => (2, None),
        }
    }
}

fn in_range_of<S: Scheme>(
    range: &Range,
    installed: &Result<S::Version, VersionError>,
) -> Result<RangeVerdict, UnknownReason> {
    let v = installed
        .as_ref()
        .map_err(|e| UnknownReason::UnparsableVersion(e.clone()))?;
    let mut events = Vec::with_capacity(range.events.len());
    for event in &range.events {
        let bound = match (event, event.version()) {
            (Event::Introduced(_), "0") => Bound::Zero,
            (Event::Limit(_), "*") => Bound::Infinity,
            (_, text) => Bound::Version(S::parse(text)?),
        };
        events.push((bound, event));
    }
    // A stable sort: events at the same version keep the record's order.
    events.sort_by(|a, b| a.0.sort_key().cmp(&b.0.sort_key()));

    let mut limits = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Limit(_)))
        .peekable();
    if limits.peek().is_some() && !limits.any(|(limit, _)| limit.position_of(v).is_lt()) {
        return Ok(RangeVerdict::Outside);
    }
    let mut vulnerable = false;
    for (bound, event) in &events {
        let position = bound.position_of(v);
        match event {
            Event::Introduced(_) if position.is_ge() => vulnerable = true,
            Event::Fixed(_) if position.is_ge() => vulnerable = false,
            Event::LastAffected(_) if position.is_gt() => vulnerable = false,
            _ => {}
        }
    }
    if !vulnerable {
        return Ok(RangeVerdict::Outside);
    }
    let fixed = events
        .iter()
        .find(|(bound, event)| matches!(event, Event::Fixed(_)) && bound.position_of(v).is_lt())
        .map(|(_, event)| event.version().to_string());
    Ok(RangeVerdict::Inside { fixed })
}
