//! Timer schedules: ACR's cron expressions (`cron.rs`) and the `--schedule` flag's
//! `[name:]cron` form, with unnamed timers called `t1`, `t2`...

pub mod cron;

use std::collections::BTreeSet;

pub use self::cron::{Cron, CronError};

/// A timer as `--schedule` gives it: a name and its schedule.
#[derive(Debug, Clone)]
pub struct TimerSpec {
    pub name: String,
    pub cron: Cron,
}

/// Checks a timer's name: 1 to 50 letters, digits, `-` or `_`, starting with a letter or digit.
pub fn check_timer_name(name: &str) -> Result<(), String> {
    let valid = (1..=50).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    match valid {
        true => Ok(()),
        false => Err(format!(
            "invalid timer name '{name}': use 1 to 50 letters, digits, '-' or '_', starting \
             with a letter or digit"
        )),
    }
}

/// Reads `--schedule` values (`'0 2 * * *'` or `'hourly:0 * * * Mon-Fri'`): unnamed ones get
/// the first free name of `t1`, `t2`... A name used twice is refused.
pub fn timer_specs(values: &[String]) -> Result<Vec<TimerSpec>, String> {
    let mut named = Vec::with_capacity(values.len());
    for value in values {
        // A cron expression has no ':', so one before the first space names the timer.
        let (name, expr) = match value.split_once(':') {
            Some((name, expr)) if !name.contains(char::is_whitespace) => {
                check_timer_name(name)?;
                (Some(name.to_string()), expr)
            }
            _ => (None, value.as_str()),
        };
        let cron = Cron::parse(expr).map_err(|e| e.to_string())?;
        named.push((name, cron));
    }
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for name in named.iter().filter_map(|(n, _)| n.as_ref()) {
        if !taken.insert(name.to_ascii_lowercase()) {
            return Err(format!("timer '{name}' is given twice"));
        }
    }
    let mut counter = 0;
    let specs = named
        .into_iter()
        .map(|(name, cron)| {
            let name = name.unwrap_or_else(|| loop {
                counter += 1;
                let candidate = format!("t{counter}");
                if taken.insert(candidate.clone()) {
                    break candidate;
                }
            });
            TimerSpec { name, cron }
        })
        .collect();
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(values: &[&str]) -> Result<Vec<String>, String> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        Ok(timer_specs(&values)?.into_iter().map(|t| t.name).collect())
    }

    #[test]
    fn unnamed_timers_are_numbered_around_the_named_ones() {
        assert_eq!(
            names(&[
                "0 2 * * *",
                "t1:0 3 * * *",
                "hourly:0 * * * Mon-Fri",
                "5 * * * *"
            ])
            .unwrap(),
            ["t2", "t1", "hourly", "t3"]
        );
    }

    #[test]
    fn a_named_timer_keeps_its_schedule_and_bad_ones_are_refused() {
        let specs = timer_specs(&["weekly:0 4 * * Sun".to_string()]).unwrap();
        assert_eq!(specs[0].cron.as_str(), "0 4 * * Sun");
        assert!(names(&["a:0 2 * * *", "A:0 3 * * *"])
            .unwrap_err()
            .contains("given twice"));
        assert!(names(&["bad name!:0 2 * * *"]).is_err());
        assert!(names(&["x:0 2 * *"]).unwrap_err().contains("4 fields"));
        assert!(names(&["-x:0 2 * * *"])
            .unwrap_err()
            .contains("invalid timer name"));
    }
}
