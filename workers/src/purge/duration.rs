//! `--ago`: `<N>d` then an optional Go duration (`2d3h6m`, `1.5h`, `0`), as `acr purge` reads
//! it, capped at 150 years with ACR's warning instead of overflowing (acr-cli#560 deleted
//! everything when it overflowed).
//!
//! Stricter than ACR where ACR silently read garbage as zero (`1h2d`, `abcd` and an overflowing
//! day count all meant "everything older than now" there): those are errors here, as are
//! negative durations, which would put the cutoff in the future.

use chrono::{DateTime, TimeDelta, Utc};

/// The longest `--ago` honoured: 150 years of 365 days, as ACR caps it.
pub const MAX_AGO_DAYS: u64 = 150 * 365;
const NANOS_PER_DAY: u128 = 24 * 3600 * 1_000_000_000;
const MAX_AGO_NANOS: u128 = MAX_AGO_DAYS as u128 * NANOS_PER_DAY;

/// ACR's warning when `--ago` is capped.
pub const CAP_WARNING: &str =
    "Warning: ago value exceeds maximum duration of 150 years, capping to 150 years";

/// A parsed `--ago`: how far back the cutoff lies, never more than 150 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ago {
    nanos: u64,
    capped: bool,
}

impl Ago {
    /// No age limit beyond "older than now" (`--untagged-only` without `--ago`).
    pub const ZERO: Ago = Ago {
        nanos: 0,
        capped: false,
    };

    /// The cutoff: items last updated strictly before it are old enough to delete.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // At most 150 years, so both conversions and the subtraction stay in range.
        now - TimeDelta::nanoseconds(self.nanos as i64)
    }

    /// ACR's warning when the value was capped at 150 years.
    pub fn warning(&self) -> Option<&'static str> {
        self.capped.then_some(CAP_WARNING)
    }

    /// The duration in nanoseconds (after the cap).
    pub fn as_nanos(&self) -> u64 {
        self.nanos
    }
}

impl std::str::FromStr for Ago {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_ago(text)
    }
}

/// Parses `<N>d<go-duration>`; see the module doc for what is refused.
pub fn parse_ago(text: &str) -> Result<Ago, String> {
    let bad = |why: &str| {
        format!("invalid duration '{text}': {why} (expected <days>d<duration>, e.g. 7d, 2d3h, 1h30m, 0)")
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.starts_with('-') {
        return Err(bad("negative durations would put the cutoff in the future"));
    }
    let (days, rest) = match text.find('d') {
        Some(at) => {
            let digits = &text[..at];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the days before 'd' must be a whole number"));
            }
            (saturating_decimal(digits), &text[at + 1..])
        }
        None => (0, text),
    };
    let mut total = days.saturating_mul(NANOS_PER_DAY);
    if !rest.is_empty() {
        total = total.saturating_add(parse_go_duration(rest).map_err(|why| bad(&why))?);
    }
    Ok(Ago {
        nanos: total.min(MAX_AGO_NANOS) as u64,
        capped: total > MAX_AGO_NANOS,
    })
}

/// Go's `time.ParseDuration` without a sign, saturating instead of failing on overflow.
fn parse_go_duration(text: &str) -> Result<u128, String> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err("missing the duration after the sign".into());
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(frac_len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("a number is missing before '{after}'"));
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit after '{int_part}'")),
            other => return Err(format!("unknown unit '{other}' (use h, m, s, ms, us, ns)")),
        };
        total = total.saturating_add(saturating_decimal(int_part).saturating_mul(unit_nanos));
        // Go keeps the fraction's precision to the nanosecond; so does this.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes().map(|b| u128::from(b - b'0')) {
            scale /= 10;
            total = total.saturating_add(digit * scale);
        }
        rest = after;
    }
    Ok(total)
}

fn saturating_decimal(digits: &str) -> u128 {
    digits.bytes().fold(0u128, |acc, b| {
        acc.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000_000_000;

    fn nanos(text: &str) -> u64 {
        parse_ago(text).unwrap().as_nanos()
    }

    #[test]
    fn days_then_a_go_duration() {
        assert_eq!(nanos("7d"), 7 * 24 * HOUR);
        assert_eq!(nanos("2d3h"), 51 * HOUR);
        assert_eq!(nanos("2d3h6m"), 51 * HOUR + 6 * 60_000_000_000);
        assert_eq!(nanos("1h30m"), 90 * 60_000_000_000);
        assert_eq!(nanos("1.5h"), 90 * 60_000_000_000);
        assert_eq!(nanos(".5s"), 500_000_000);
        assert_eq!(nanos("10m"), 10 * 60_000_000_000);
        assert_eq!(nanos("3ms4us5ns"), 3_004_005);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("0d"), 0);
        assert!(parse_ago("7d").unwrap().warning().is_none());
    }

    #[test]
    fn absurd_values_are_capped_with_acr_warning_never_overflowing() {
        for text in [
            "54751d",
            "99999999999999999999999999999999d",
            "1d99999999999999999999h",
            "5000000000h",
            "54750d1ns",
        ] {
            let ago = parse_ago(text).unwrap();
            assert_eq!(ago.as_nanos(), (MAX_AGO_NANOS) as u64, "{text}");
            assert_eq!(ago.warning(), Some(CAP_WARNING), "{text}");
            let now = Utc::now();
            let cutoff = ago.cutoff(now);
            assert!(cutoff < now && now.signed_duration_since(cutoff).num_days() == 54750);
        }
        assert!(parse_ago("54750d").unwrap().warning().is_none());
    }

    #[test]
    fn garbage_acr_read_as_zero_is_refused() {
        for (text, why) in [
            ("", "empty"),
            ("abcd", "whole number"),
            ("1h2d", "whole number"),
            ("-1d", "negative"),
            ("-1h", "negative"),
            ("1d2", "missing unit"),
            ("7", "missing unit"),
            ("3w", "unknown unit 'w'"),
            ("1d.h", "number is missing"),
            ("d", "whole number"),
            ("1 d", "whole number"),
        ] {
            let err = parse_ago(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(&format!("'{text}'")), "{err}");
        }
    }

    #[test]
    fn cutoff_is_now_minus_ago() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cutoff = parse_ago("2d3h").unwrap().cutoff(now);
        assert_eq!(cutoff.to_rfc3339(), "2026-01-07T21:00:00+00:00");
    }
}
