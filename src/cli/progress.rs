//! Upload progress: a live bar on a terminal, a line at the start and end otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use kiln_worker::protocol::{count, human_size, human_transfer};

use crate::context::pack::PackProgress;

pub struct UploadProgress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl UploadProgress {
    pub fn start(total_bytes: u64, total_files: u64) -> Arc<UploadProgress> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} Uploading {bytes}/{total_bytes} ({binary_bytes_per_sec}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            eprintln!(
                "Uploading build context: {}, {}",
                count(total_files, "file", "files"),
                human_size(total_bytes)
            );
        }
        Arc::new(UploadProgress {
            bar,
            started: Instant::now(),
        })
    }

    /// Called from the packing thread with cumulative counts of source bytes and files.
    pub fn update(&self, p: PackProgress) {
        if let Some(bar) = &self.bar {
            bar.set_position(p.bytes);
            bar.set_message(count(p.files, "file", "files"));
        }
    }

    /// Reports the upload's size and speed (of compressed bytes on the wire).
    pub fn finish(&self, files: u64, sent_bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let took = self.started.elapsed();
        eprintln!(
            "Uploaded build context: {}, {} in {:.1}s",
            count(files, "file", "files"),
            human_transfer(sent_bytes, took),
            took.as_secs_f64()
        );
    }
}
