//! A finding's severity, from the CVSS vectors a record carries, scored by RustSec's `cvss`
//! crate with each CVSS version's own bands (v3/v4: 0 none, 0.1–3.9 low, 4.0–6.9 medium,
//! 7.0–8.9 high, 9.0–10 critical; v2 has no "critical"). A record without a vector Kiln can
//! score is `Unknown`: nothing is guessed from words or from other records.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::osv::{Record, SeverityScore};

/// The bands live in the protocol: the worker judges a report against `--severity-threshold`.
pub use kiln_worker::protocol::Level;

/// The severity of a finding and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    pub level: Level,
    /// The CVSS base score, when a vector was scored.
    pub score: Option<f64>,
    /// The vector that was scored.
    pub vector: Option<String>,
}

impl Severity {
    pub const UNKNOWN: Severity = Severity {
        level: Level::Unknown,
        score: None,
        vector: None,
    };
}

/// Scores one CVSS vector (`CVSS:3.1/AV:N/…`, `CVSS:4.0/…`, or a bare v2 vector).
pub fn of_vector(vector: &str) -> Severity {
    let Ok(cvss) = cvss::Cvss::from_str(vector.trim()) else {
        return Severity::UNKNOWN;
    };
    let level = match cvss.severity() {
        cvss::Severity::None => Level::None,
        cvss::Severity::Low => Level::Low,
        cvss::Severity::Medium => Level::Medium,
        cvss::Severity::High => Level::High,
        cvss::Severity::Critical => Level::Critical,
    };
    Severity {
        level,
        score: Some(cvss.score()),
        vector: Some(vector.trim().to_string()),
    }
}

/// The severity of a list of scores: the newest CVSS version present that parses (v4, then
/// v3, then v2), as that is what the source published last; `Unknown` if there is none.
pub fn of_scores(scores: &[SeverityScore]) -> Severity {
    ["CVSS_V4", "CVSS_V3", "CVSS_V2"]
        .iter()
        .flat_map(|kind| scores.iter().filter(move |s| s.kind == *kind))
        .map(|s| of_vector(&s.score))
        .find(|severity| severity.level != Level::Unknown)
        .unwrap_or(Severity::UNKNOWN)
}

/// A record's severity: its top-level scores, else those of its first `affected[]` entry
/// that has any (the schema allows either place, never both).
pub fn of_record(record: &Record) -> Severity {
    if !record.severity.is_empty() {
        return of_scores(&record.severity);
    }
    record
        .affected
        .iter()
        .find(|a| !a.severity.is_empty())
        .map_or(Severity::UNKNOWN, |a| of_scores(&a.severity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(kind: &str, vector: &str) -> SeverityScore {
        SeverityScore {
            kind: kind.into(),
            score: vector.into(),
        }
    }

    #[test]
    fn cvss_vectors_are_scored_and_banded() {
        let critical = of_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
        assert_eq!(
            (critical.level, critical.score),
            (Level::Critical, Some(9.8))
        );
        assert_eq!(
            of_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N").level,
            Level::None
        );
        assert_eq!(
            of_vector("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N").level,
            Level::Low
        );
        let v4 = of_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N");
        assert_eq!((v4.level, v4.score), (Level::Critical, Some(9.3)));
        // CVSS v2 has no "critical" band: 10.0 is high.
        assert_eq!(of_vector("AV:N/AC:L/Au:N/C:C/I:C/A:C").level, Level::High);
        assert_eq!(of_vector("not a vector"), Severity::UNKNOWN);
    }

    #[test]
    fn the_newest_cvss_version_wins_and_words_are_not_scores() {
        let both = [
            score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            score(
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
            ),
        ];
        assert_eq!(of_scores(&both).level, Level::Medium);
        assert_eq!(of_scores(&[score("Ubuntu", "high")]), Severity::UNKNOWN);
        assert_eq!(of_scores(&[]), Severity::UNKNOWN);
    }

    #[test]
    fn levels_order_and_parse_for_thresholds() {
        assert!(Level::Unknown < Level::None && Level::High < Level::Critical);
        assert_eq!("HIGH".parse::<Level>(), Ok(Level::High));
        assert!("severe".parse::<Level>().is_err());
    }
}
