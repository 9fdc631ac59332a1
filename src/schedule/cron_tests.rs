use chrono::Duration;
use croner::parser::{CronParser, Seconds, Year};

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The next `n` occurrences after `from`.
fn next(expr: &str, from: &str, n: usize) -> Vec<String> {
    let cron = Cron::parse(expr).unwrap();
    let mut t = at(from);
    (0..n)
        .map(|_| {
            t = cron.next_after(t).unwrap();
            t.format("%Y-%m-%d %a %H:%M").to_string()
        })
        .collect()
}

#[test]
fn every_fifteen_minutes_starts_at_the_hour() {
    assert_eq!(
        next("*/15 * * * *", "2026-03-01T10:07:00Z", 3),
        [
            "2026-03-01 Sun 10:15",
            "2026-03-01 Sun 10:30",
            "2026-03-01 Sun 10:45"
        ]
    );
}

#[test]
fn an_occurrence_is_strictly_after_the_instant_given() {
    assert_eq!(
        next("0 2 * * *", "2026-03-01T02:00:00Z", 1),
        ["2026-03-02 Mon 02:00"]
    );
    assert_eq!(
        next("0 2 * * *", "2026-03-01T01:59:59Z", 1),
        ["2026-03-01 Sun 02:00"]
    );
}

#[test]
fn sunday_is_zero_and_names_mean_the_same() {
    // 2026-03-01 is a Sunday.
    for expr in ["0 4 * * 0", "0 4 * * Sun", "0 4 * * sunday", "0 4 * * SUN"] {
        assert_eq!(
            next(expr, "2026-02-27T00:00:00Z", 2),
            ["2026-03-01 Sun 04:00", "2026-03-08 Sun 04:00"],
            "{expr}"
        );
    }
    assert_eq!(
        next("0 9 * * Mon-Fri", "2026-03-06T10:00:00Z", 2),
        ["2026-03-09 Mon 09:00", "2026-03-10 Tue 09:00"]
    );
    assert_eq!(
        next("0 9 * * 1-5", "2026-03-06T10:00:00Z", 1),
        ["2026-03-09 Mon 09:00"]
    );
    // NCrontab: weekdays stop at 6, so `4/1` is Thursday to Saturday, never Sunday.
    assert_eq!(
        next("0 0 * * 4/1", "2026-03-04T12:00:00Z", 4),
        [
            "2026-03-05 Thu 00:00",
            "2026-03-06 Fri 00:00",
            "2026-03-07 Sat 00:00",
            "2026-03-12 Thu 00:00"
        ]
    );
    let err = Cron::parse("0 4 * * 7").unwrap_err().to_string();
    assert!(err.contains("day-of-week field '7'"), "{err}");
    assert!(err.contains("Sunday (0)"), "{err}");
}

#[test]
fn both_day_fields_restricted_means_both_must_match() {
    // The 13th that is a Friday (ACR), not every 13th and every Friday (Vixie cron).
    assert_eq!(
        next("0 0 13 * Fri", "2026-01-01T00:00:00Z", 3),
        [
            "2026-02-13 Fri 00:00",
            "2026-03-13 Fri 00:00",
            "2026-11-13 Fri 00:00"
        ]
    );
}

#[test]
fn month_names_lists_ranges_and_steps() {
    assert_eq!(
        next("30 6 1 Jan,Jul *", "2026-03-01T00:00:00Z", 2),
        ["2026-07-01 Wed 06:30", "2027-01-01 Fri 06:30"]
    );
    assert_eq!(
        next("0 0 1 feb-apr/2 *", "2026-01-05T00:00:00Z", 2),
        ["2026-02-01 Sun 00:00", "2026-04-01 Wed 00:00"]
    );
    // `a/n` runs from a to the field's end; a reversed range is swapped, as NCrontab does.
    assert_eq!(
        next("50/5 23 * * *", "2026-03-01T00:00:00Z", 3),
        [
            "2026-03-01 Sun 23:50",
            "2026-03-01 Sun 23:55",
            "2026-03-02 Mon 23:50"
        ]
    );
    assert_eq!(
        next("0 22-2 * * *", "2026-03-01T00:30:00Z", 2),
        next("0 2-22 * * *", "2026-03-01T00:30:00Z", 2)
    );
}

#[test]
fn the_29th_of_february_waits_for_a_leap_year_and_the_31st_skips_short_months() {
    assert_eq!(
        next("0 0 29 2 *", "2026-03-01T00:00:00Z", 2),
        ["2028-02-29 Tue 00:00", "2032-02-29 Sun 00:00"]
    );
    assert_eq!(
        next("0 0 31 * *", "2026-03-01T00:00:00Z", 3),
        [
            "2026-03-31 Tue 00:00",
            "2026-05-31 Sun 00:00",
            "2026-07-31 Fri 00:00"
        ]
    );
    let err = Cron::parse("0 0 30 Feb *").unwrap_err().to_string();
    assert!(err.contains("never fires"), "{err}");
}

#[test]
fn a_bad_expression_names_its_field() {
    for (expr, says) in [
        ("0 2 * *", "it has 4 fields"),
        ("0 0 2 * * *", "it has 6 fields"),
        ("60 * * * *", "minute field '60'"),
        ("* 24 * * *", "hour field '24'"),
        ("* * 0 * *", "day-of-month field '0'"),
        ("* * 32 * *", "day-of-month field '32'"),
        ("* * * 13 *", "month field '13'"),
        ("* * * Foo *", "month field 'Foo'"),
        ("* * ? * *", "day-of-month field '?'"),
        ("* * L * *", "day-of-month field 'L'"),
        ("* * * * 1#2", "day-of-week field '1#2'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("1,,2 * * * *", "minute field '1,,2'"),
        ("* * * * Mo", "day-of-week field 'Mo'"),
        ("@daily", "it has 1 fields"),
    ] {
        let err = Cron::parse(expr).unwrap_err().to_string();
        assert!(err.contains(says), "{expr}: {err}");
    }
}

/// A small deterministic generator, so a failure names an expression that fails again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as u32
    }

    /// A field in the syntax both NCrontab and croner share (3-letter names, ordered ranges).
    fn field(&mut self, field: Field) -> String {
        let (min, max) = field.bounds();
        let span = max - min + 1;
        let value = |r: &mut Rng| {
            let v = min + r.below(span);
            match (field, r.below(4)) {
                (Field::Month, 0) => MONTHS[(v - 1) as usize][..3].to_string(),
                (Field::DayOfWeek, 0) => WEEKDAYS[v as usize][..3].to_string(),
                _ => v.to_string(),
            }
        };
        let n = 1 + self.below(3);
        // croner takes `*` only alone, NCrontab in a list too (where it means all values).
        let item = |r: &mut Rng| match r.below(6) {
            0 if n == 1 => "*".to_string(),
            0 => format!("*/{}", 1 + r.below(span / 2)),
            1 => format!("*/{}", 1 + r.below(span / 2)),
            2 => value(r),
            3 | 4 => {
                let a = min + r.below(span);
                let b = a + r.below(max - a + 1);
                let step = match r.below(2) {
                    0 => String::new(),
                    _ => format!("/{}", 1 + r.below(4)),
                };
                format!("{a}-{b}{step}")
            }
            // croner reads a weekday's `a/n` up to 7 (Sunday again): pinned by hand instead.
            _ if field == Field::DayOfWeek => value(r),
            _ => format!("{}/{}", min + r.below(span), 1 + r.below(5)),
        };
        (0..n).map(|_| item(self)).collect::<Vec<_>>().join(",")
    }
}

#[test]
fn occurrences_match_a_second_implementation() {
    let croner = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .dom_and_dow(true)
        .sloppy_ranges(true)
        .build();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut compared = 0;
    for _ in 0..400 {
        let expr = FIELDS
            .iter()
            .map(|f| rng.field(*f))
            .collect::<Vec<_>>()
            .join(" ");
        let Ok(ours) = Cron::parse(&expr) else {
            // Only a day that no month has is refused (`30 Feb`).
            assert!(croner.parse(&expr).is_ok(), "{expr}");
            continue;
        };
        let theirs = croner
            .parse(&expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let start = at("2025-01-01T00:00:00Z") + Duration::minutes(rng.below(2_000_000) as i64);
        let (mut a, mut b) = (start, start);
        for _ in 0..20 {
            a = ours.next_after(a).unwrap();
            b = theirs.find_next_occurrence(&b, false).unwrap();
            assert_eq!(a, b, "{expr} after {start}");
            compared += 1;
        }
    }
    assert!(compared > 5000, "{compared}");
}

#[test]
fn a_day_restricted_both_ways_matches_croner_in_and_mode() {
    // Pinned cases of the property above where OR and AND differ.
    let croner = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .dom_and_dow(true)
        .build();
    for expr in ["0 0 1-7 * Mon", "15 3 */10 Jan-Jun Sat,Sun", "0 12 29 2 1"] {
        let ours = Cron::parse(expr).unwrap();
        let theirs = croner.parse(expr).unwrap();
        let mut t = at("2026-01-01T00:00:00Z");
        let mut seen = 0;
        // Until the cron crate's last year, 2100.
        while let Some(a) = ours.next_after(t) {
            assert_eq!(a, theirs.find_next_occurrence(&t, false).unwrap(), "{expr}");
            t = a;
            seen += 1;
            if seen == 10 {
                break;
            }
        }
        assert!(seen >= 2, "{expr}: {seen}");
    }
}
