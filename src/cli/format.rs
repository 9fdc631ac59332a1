//! Human-readable output: tables (`run list`, `token list`, registry listings), timestamps
//! and `run show` details.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::CliError;
use kiln_worker::protocol::OutputImage;

use crate::wire::{Run, RunStep};

pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Server(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `RUN ID  STATUS  KIND  TRIGGER  IMAGES  STARTED  DURATION`, one run a line.
pub fn run_table(runs: &[Run]) -> String {
    let header = [
        "RUN ID", "STATUS", "KIND", "TRIGGER", "IMAGES", "STARTED", "DURATION",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                status_cell(r),
                r.kind.as_str().to_string(),
                r.trigger.clone(),
                images_cell(r),
                r.started_at.map(timestamp).unwrap_or_default(),
                duration(r).unwrap_or_default(),
            ]
        })
        .collect();
    table(header, &rows)
}

/// Columns padded to their widest cell, two spaces apart.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&header);
    for row in rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// `Queued (2)` for the second in its platform's queue, else just the status.
pub(super) fn status_cell(r: &Run) -> String {
    match r.queue_position {
        Some(position) => format!("{} ({position})", r.status),
        None => r.status.to_string(),
    }
}

fn images_cell(r: &Run) -> String {
    if r.rendered_images.is_empty() {
        return "-".into();
    }
    r.rendered_images.join(", ")
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds from start to finish (or to now while running), as `1m05s`.
pub(super) fn duration(r: &Run) -> Option<String> {
    Some(span(r.started_at?, r.finished_at))
}

/// From `start` to `end` (or to now), as `1m05s`.
fn span(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> String {
    let end = end.unwrap_or_else(Utc::now);
    let secs = (end - start).num_seconds().max(0);
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

pub fn run_details(r: &Run) -> String {
    let mut out = String::new();
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<14} {v}");
    };
    field("Run ID:", r.id.to_string());
    field("Status:", r.status.to_string());
    if let Some(task) = &r.task {
        field("Task:", task.clone());
    }
    field("Trigger:", trigger_cell(r));
    if let Some(who) = &r.submitted_by {
        field("Queued by:", who.clone());
    }
    field("Platform:", r.platform.to_string());
    if let Some(position) = r.queue_position {
        field("Queue:", format!("position {position} for {}", r.platform));
    }
    if let Some(wait) = &r.waiting_for {
        field("Waiting for:", wait.clone());
    }
    field("Created:", timestamp(r.created_at));
    field(
        "Started:",
        r.started_at.map(timestamp).unwrap_or("-".into()),
    );
    field(
        "Finished:",
        r.finished_at.map(timestamp).unwrap_or("-".into()),
    );
    field("Duration:", duration(r).unwrap_or("-".into()));
    field("Worker:", r.worker.clone().unwrap_or("-".into()));
    field("Images:", images_cell(r));
    for img in &r.output_images {
        field("Pushed:", image_with_digest(img));
    }
    if let Some(e) = &r.error_message {
        field("Error:", e.clone());
    }
    // Each status and when the run entered it, aligned under one heading.
    for (i, change) in r.status_history.iter().enumerate() {
        let heading = if i == 0 { "History:" } else { "" };
        field(
            heading,
            format!("{}  {}", timestamp(change.at), change.status),
        );
    }
    field("Kind:", r.kind.as_str().to_string());
    if !r.steps.is_empty() {
        out.push('\n');
        out.push_str(&steps_table(&r.steps));
    }
    out
}

/// `ID  TYPE  STATUS  STARTED  DURATION  EXIT  IMAGES`, one step a line; images with their
/// digests.
pub fn steps_table(steps: &[RunStep]) -> String {
    let header = [
        "ID", "TYPE", "STATUS", "STARTED", "DURATION", "EXIT", "IMAGES",
    ];
    let rows: Vec<[String; 7]> = steps
        .iter()
        .map(|s| {
            let mut images: Vec<String> = s.images.iter().map(image_with_digest).collect();
            // A purge step's cell says what it deleted.
            images.extend(s.purged.map(|p| {
                format!(
                    "deleted {} tags, {} manifests",
                    p.deleted_tags, p.deleted_manifests
                )
            }));
            [
                s.id.clone(),
                s.step_type.as_str().to_string(),
                format!("{:?}", s.status),
                s.started_at.map(timestamp).unwrap_or("-".into()),
                s.started_at
                    .map(|start| span(start, s.finished_at))
                    .unwrap_or("-".into()),
                s.exit_code.map_or("-".into(), |c| c.to_string()),
                if images.is_empty() {
                    "-".into()
                } else {
                    images.join(", ")
                },
            ]
        })
        .collect();
    table(header, &rows)
}

fn image_with_digest(img: &OutputImage) -> String {
    match &img.registry {
        Some(reg) => format!("{reg}/{}:{}@{}", img.repository, img.tag, img.digest),
        None => format!("{}:{}@{}", img.repository, img.tag, img.digest),
    }
}

/// `Commit (branch=main, commit=4f1c…)`: the trigger with what its detail says.
fn trigger_cell(r: &Run) -> String {
    let Some(serde_json::Value::Object(detail)) = &r.trigger_detail else {
        return r.trigger.clone();
    };
    let parts: Vec<String> = detail
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    format!("{} ({})", r.trigger, parts.join(", "))
}
