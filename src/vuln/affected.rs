//! Is version V of package P affected by record R: the OSV specification's evaluation
//! (ossf/osv-schema `docs/schema.md`, "Evaluation"), with one addition — where Kiln cannot
//! order a version, the answer is `Unknown`, never "not affected".
//!
//! - An `affected[]` entry applies when its ecosystem equals the package's (a `Debian:12`
//!   record, Debian 12 packages only) and the names match after normalisation.
//! - The version is affected when it is in `versions`, or inside any `SEMVER` or
//!   `ECOSYSTEM` range: events sorted by version (`introduced: "0"` first), `introduced`
//!   opens, `fixed` closes at that version, `last_affected` closes after it, and the range
//!   counts only below one of its `limit`s, if it has any. `GIT` ranges describe commits,
//!   not package versions, and are skipped.
//! - A withdrawn record affects nothing.

use std::cmp::Ordering;

use super::osv::{Affected, Event, Range, RangeKind, Record};
use super::versions::{Apk, Dpkg, Ecosystem, Family, Go, Pep440, Scheme, SemVer, VersionError};

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
    Affected { fixed: Option<String> },
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
    let name = package.ecosystem.normalise_name(&package.name);
    let mut unknown = None;
    for affected in &record.affected {
        let Some(named) = &affected.package else { continue };
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

/// One `affected[]` entry whose package matches.
fn evaluate_affected(affected: &Affected, package: &Package) -> Verdict {
    let ecosystem = &package.ecosystem;
    let mut unknown = None;
    let mut listed = false;
    for listed_version in &affected.versions {
        // The spec's `v == version`: the same string, or equal in the ecosystem's order.
        let equal = listed_version == &package.version
            || ecosystem
                .family()
                .is_some_and(|f| f.compare(listed_version, &package.version) == Ok(Ordering::Equal));
        listed |= equal;
    }
    let mut fixed_for_listed = None;
    for range in &affected.ranges {
        let family = match range.kind {
            RangeKind::Semver => ecosystem.semver_family(),
            RangeKind::Ecosystem => match ecosystem.family() {
                Some(family) => family,
                None => {
                    unknown.get_or_insert(UnknownReason::UnsupportedEcosystem(ecosystem.to_string()));
                    continue;
                }
            },
            RangeKind::Git | RangeKind::Unknown => continue,
        };
        match in_range(family, range, &package.version) {
            Ok(RangeVerdict::Inside { fixed }) if !listed => return Verdict::Affected { fixed },
            Ok(RangeVerdict::Inside { fixed }) => fixed_for_listed = fixed_for_listed.or(fixed),
            Ok(RangeVerdict::Outside) => {}
            Err(error) => {
                unknown.get_or_insert(UnknownReason::UnparsableVersion(error));
            }
        }
    }
    if listed {
        return Verdict::Affected { fixed: fixed_for_listed };
    }
    unknown.map_or(Verdict::NotAffected, Verdict::Unknown)
}

enum RangeVerdict {
    Inside { fixed: Option<String> },
    Outside,
}

fn in_range(family: Family, range: &Range, version: &str) -> Result<RangeVerdict, VersionError> {
    match family {
        Family::Dpkg => in_range_of::<Dpkg>(range, version),
        Family::Apk => in_range_of::<Apk>(range, version),
        Family::Pep440 => in_range_of::<Pep440>(range, version),
        Family::SemVer => in_range_of::<SemVer>(range, version),
        Family::Go => in_range_of::<Go>(range, version),
    }
}

/// A parsed event bound: `introduced: "0"` is below everything, `limit: "*"` above.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound<V> {
    Zero,
    Version(V),
    Infinity,
}

fn in_range_of<S: Scheme>(range: &Range, version: &str) -> Result<RangeVerdict, VersionError> {
    let v = Bound::Version(S::parse(version)?);
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
    events.sort_by(|a, b| a.0.cmp(&b.0));

    let limits: Vec<&Bound<S::Version>> =
        events.iter().filter(|(_, e)| matches!(e, Event::Limit(_))).map(|(b, _)| b).collect();
    if !limits.is_empty() && !limits.iter().any(|limit| v < **limit) {
        return Ok(RangeVerdict::Outside);
    }
    let mut vulnerable = false;
    for (bound, event) in &events {
        match event {
            Event::Introduced(_) if v >= *bound => vulnerable = true,
            Event::Fixed(_) if v >= *bound => vulnerable = false,
            Event::LastAffected(_) if v > *bound => vulnerable = false,
            _ => {}
        }
    }
    if !vulnerable {
        return Ok(RangeVerdict::Outside);
    }
    let fixed = events
        .iter()
        .find(|(bound, event)| matches!(event, Event::Fixed(_)) && *bound > v)
        .map(|(_, event)| event.version().to_string());
    Ok(RangeVerdict::Inside { fixed })
}
