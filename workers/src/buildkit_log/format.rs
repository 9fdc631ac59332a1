//! Numbers, sizes and durations formatted the way buildx prints them.

use std::time::SystemTime;

/// Seconds from `from` to `to`, or 0 if clocks disagree and `to` is earlier.
pub(super) fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).map_or(0.0, |d| d.as_secs_f64())
}

/// Formats a log line's offset like buildx: the width stays about the same as
/// the number grows by trading decimals for digits.
pub(super) fn format_offset(secs: f64) -> String {
    let decimals = if secs < 10.0 {
        3
    } else if secs < 100.0 {
        2
    } else {
        1
    };
    format!("{secs:.decimals$}")
}

/// Formats a byte count like buildx (github.com/tonistiigi/units, `%.2f`):
/// decimal units with two decimals, plain bytes below 1 kB.
pub(super) fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let magnitude = n.unsigned_abs();
    if magnitude < 1000 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}
