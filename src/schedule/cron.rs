//! ACR's timer schedules: 5-field cron expressions (`minute hour day-of-month month
//! day-of-week`, UTC) with exactly the meaning ACR's NCrontab gives them.
//!
//! Each field is read here into the set of values it allows, following NCrontab's rules:
//! `*`, `a`, `a-b` (a reversed range is swapped, not wrapped), `a,b`, `*/n`, `a-b/n` and
//! `a/n` (from `a` to the field's maximum); month and weekday names by a prefix of three
//! letters or more (`Jan`, `Mon`, `Monday`); weekdays 0-6 from Sunday (7 is refused, as
//! NCrontab refuses it). When both day fields are restricted a day must match both (AND, not
//! Vixie cron's OR). The sets are then handed to the `cron` crate, which finds occurrences:
//! it wants a seconds field and numbers weekdays 1-7 from Sunday, so the translation writes
//! `0` seconds and shifts weekdays by one; its day fields are ANDed as NCrontab's are.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};

/// One of the five fields of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const FIELDS: [Field; 5] = [
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl Field {
    /// The smallest and largest value the field takes.
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
        }
    }

    /// The names the field takes, in order from its smallest value.
    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Field::Minute => "0-59",
            Field::Hour => "0-23",
            Field::DayOfMonth => "1-31",
            Field::Month => "1-12 or Jan-Dec",
            Field::DayOfWeek => "0-6 from Sunday (0), or Sun-Sat",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "invalid schedule '{expr}': it has {count} fields, a schedule has 5: minute hour \
         day-of-month month day-of-week, in UTC (e.g. '0 2 * * *')"
    )]
    FieldCount { expr: String, count: usize },
    #[error("invalid schedule '{expr}': the {field} field '{text}' {reason}")]
    Field {
        expr: String,
        field: Field,
        text: String,
        reason: String,
    },
    #[error("invalid schedule '{expr}': it never fires (no month has that day)")]
    Never { expr: String },
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    text: String,
    schedule: ::cron::Schedule,
}

impl Cron {
    /// Parses an ACR schedule; the error names the field at fault.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != FIELDS.len() {
            return Err(CronError::FieldCount {
                expr: expr.to_string(),
                count: parts.len(),
            });
        }
        let mut translated = String::from("0");
        for (field, text) in FIELDS.into_iter().zip(&parts) {
            let values = parse_field(field, text).map_err(|reason| CronError::Field {
                expr: expr.to_string(),
                field,
                text: text.to_string(),
                reason,
            })?;
            translated.push(' ');
            translated.push_str(&translate(field, &values));
        }
        let schedule = ::cron::Schedule::from_str(&translated)
            .expect("a translated schedule is one the cron crate parses");
        let cron = Cron {
            text: parts.join(" "),
            schedule,
        };
        // Any day that exists comes round within 28 years (Feb 29 on a given weekday).
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        if cron.next_after(start).is_none() {
            return Err(CronError::Never {
                expr: expr.to_string(),
            });
        }
        Ok(cron)
    }

    /// The expression, with its fields separated by single spaces.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first occurrence strictly after `after`, to the minute; `None` past the year 2100.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after).next()
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The values one field allows, or why it is refused.
fn parse_field(field: Field, text: &str) -> Result<BTreeSet<u32>, String> {
    let (min, max) = field.bounds();
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("has an empty list item: use {}", field.hint()));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step =
                    step.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("has the step '{step}': a step is a number from 1")
                    })?;
                (base, Some(step))
            }
            None => (item, None),
        };
        let (first, last) = if base == "*" {
            (min, max)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (value(field, a)?, value(field, b)?);
            (a.min(b), a.max(b))
        } else {
            let a = value(field, base)?;
            (a, if step.is_some() { max } else { a })
        };
        values.extend((first..=last).step_by(step.unwrap_or(1) as usize));
    }
    Ok(values)
}

/// One value of a field: a number in its bounds or, for months and weekdays, a name.
fn value(field: Field, text: &str) -> Result<u32, String> {
    let (min, max) = field.bounds();
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        let n = text
            .parse::<u32>()
            .map_err(|_| format!("has '{text}', which is not a number: use {}", field.hint()))?;
        if !(min..=max).contains(&n) {
            return Err(format!(
                "has {n}, out of range: use {}{}",
                field.hint(),
                if field == Field::DayOfWeek && n == 7 {
                    " (7 is not Sunday here)"
                } else {
                    ""
                }
            ));
        }
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    let named = field
        .names()
        .iter()
        .position(|name| lower.len() >= 3 && name.starts_with(&lower));
    match named {
        Some(i) => Ok(min + i as u32),
        None => Err(format!(
            "has '{text}', which is not a value: use {} (`*`, `a-b`, `a,b` and `*/n`; no \
             `?`, `L`, `W` or `#`)",
            field.hint()
        )),
    }
}

/// A field as the `cron` crate reads it: `*` or a list of values, weekdays from 1.
fn translate(field: Field, values: &BTreeSet<u32>) -> String {
    let (min, max) = field.bounds();
    if values.len() as u32 == max - min + 1 {
        return "*".into();
    }
    let shift = u32::from(field == Field::DayOfWeek);
    let list: Vec<String> = values.iter().map(|v| (v + shift).to_string()).collect();
    list.join(",")
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
