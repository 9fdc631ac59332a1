//! The table of steps at the end of a run's log.

use crate::protocol::{StepState, StepStatus};

fn status(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Queued => "Queued",
        StepStatus::Running => "Running",
        StepStatus::Succeeded => "Succeeded",
        StepStatus::Failed => "Failed",
        StepStatus::Skipped => "Skipped",
        StepStatus::Canceled => "Canceled",
        StepStatus::Timeout => "Timeout",
    }
}

/// Lines of the closing table: one row per step (status, duration, exit code), then the
/// images it built or pushed with their digests and the base images of build steps.
pub fn closing_table(states: &[StepState]) -> Vec<String> {
    let width = states.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
    let mut lines = vec![format!(
        "{:<width$}  {:<5}  {:<9}  {:>9}  EXIT",
        "STEP", "TYPE", "STATUS", "DURATION"
    )];
    for s in states {
        let duration = match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => format!("{:.1}s", (b - a) as f64 / 1000.0),
            _ => "-".into(),
        };
        let exit = s.exit_code.map_or("-".into(), |c| c.to_string());
        lines.push(format!(
            "{:<width$}  {:<5}  {:<9}  {:>9}  {exit}",
            s.id,
            s.step_type.as_str(),
            status(s.status),
            duration
        ));
        for image in &s.images {
            let name = match &image.registry {
                Some(r) => format!("{r}/{}:{}", image.repository, image.tag),
                None => format!("{}:{}", image.repository, image.tag),
            };
            lines.push(format!("    image: {name}@{}", image.digest));
        }
        for base in &s.base_images {
            match &base.digest {
                Some(d) => lines.push(format!("    base image: {}@{d}", base.reference)),
                None => lines.push(format!("    base image: {}", base.reference)),
            }
        }
    }
    lines
}
