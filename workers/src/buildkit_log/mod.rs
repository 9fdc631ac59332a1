//! Renders BuildKit's progress stream as plain text, the way
//! `docker buildx build --progress=plain` does (moby/buildkit
//! `util/progress/progressui`).
//!
//! BuildKit reports progress as a stream of `StatusResponse` messages whose
//! vertex entries repeat the whole vertex every time anything about it
//! changes, and whose log entries are arbitrary byte chunks. [`PlainPrinter`]
//! keeps enough state to turn that into an append-only sequence of lines:
//! every event is printed exactly once, log lines are reassembled before
//! printing, and output of different vertices is separated by blank lines.
//!
//! The module has its own input types so it does not depend on bollard; the
//! caller copies the relevant fields out of bollard's generated types.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use format::{format_offset, seconds_between};
use text::visible_text;

mod format;
mod text;
mod updates;

/// One `Vertex` entry of a BuildKit status message: a step of the build graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VertexUpdate {
    /// Digest identifying the vertex; other entries refer to it.
    pub digest: String,
    /// Human-readable step name, e.g. `[2/3] RUN make`.
    pub name: String,
    /// Whether the step's result came from the build cache.
    pub cached: bool,
    /// When the step started, once it has.
    pub started: Option<SystemTime>,
    /// When the step finished (successfully or not), once it has.
    pub completed: Option<SystemTime>,
    /// Error message if the step failed; empty otherwise.
    pub error: String,
}

/// One `VertexStatus` entry: progress of a sub-task of a vertex, such as a
/// layer download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Identifies the sub-task within its vertex, e.g. a layer digest; it is
    /// also what gets printed.
    pub id: String,
    /// Digest of the vertex the sub-task belongs to.
    pub vertex: String,
    /// Sub-task name as reported by BuildKit (buildx prints `id` instead).
    pub name: String,
    /// Progress so far, in bytes for transfers.
    pub current: i64,
    /// Expected total, or 0 when unknown.
    pub total: i64,
    /// When the sub-task started.
    pub started: Option<SystemTime>,
    /// When the sub-task finished; only finished sub-tasks are printed.
    pub completed: Option<SystemTime>,
}

/// One `VertexLog` entry: a chunk of a step's output. Chunks are arbitrary
/// byte ranges, not lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// Digest of the vertex that produced the output.
    pub vertex: String,
    /// When BuildKit received the chunk.
    pub timestamp: Option<SystemTime>,
    /// 1 for stdout, 2 for stderr; plain output does not distinguish them.
    pub stream: i64,
    /// Raw output bytes, not necessarily valid UTF-8.
    pub msg: Vec<u8>,
}

/// One `VertexWarning` entry, e.g. a Dockerfile lint warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarningUpdate {
    /// Digest of the vertex the warning belongs to (may be unknown).
    pub vertex: String,
    /// One-line summary of the warning.
    pub short: Vec<u8>,
}

/// The contents of one BuildKit `StatusResponse` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusBatch {
    /// Vertices that changed, each repeated in full.
    pub vertexes: Vec<VertexUpdate>,
    /// Sub-task progress updates.
    pub statuses: Vec<StatusUpdate>,
    /// Output chunks.
    pub logs: Vec<LogChunk>,
    /// Warnings.
    pub warnings: Vec<WarningUpdate>,
}

/// Turns BuildKit's status stream into readable lines in the style of
/// `docker buildx build --progress=plain`.
///
/// Vertices are numbered `#1`, `#2`, ... in the order they are first printed,
/// which is the order they start (or are reported cached). Output looks like:
///
/// ```text
/// #5 [2/3] RUN make
/// #5 0.532 cc -o app main.c
/// #5 DONE 1.2s
///
/// #6 [3/3] COPY app /usr/bin/app
/// #6 CACHED
/// ```
///
/// Log lines carry the seconds since their vertex started, with 3 decimals
/// under 10 s, 2 under 100 s and 1 beyond, exactly like buildx.
#[derive(Debug, Default)]
pub struct PlainPrinter {
    vertices: HashMap<String, VertexState>,
    /// Number handed out most recently; numbering starts at 1.
    last_index: usize,
    /// Whether any line has been returned yet (no separator before the first).
    printed_any: bool,
    /// Vertex whose line was returned last; `None` for lines belonging to no
    /// known vertex.
    last_owner: Option<String>,
}

/// Everything remembered about one vertex across updates.
#[derive(Debug, Default)]
struct VertexState {
    name: String,
    /// Assigned when the vertex's header line is printed.
    index: Option<usize>,
    started: Option<SystemTime>,
    completed: Option<SystemTime>,
    cached: bool,
    error: String,
    /// Set once the final line (DONE, CACHED, ERROR, CANCELED) is printed, so
    /// repeated updates of a finished vertex print nothing more.
    finished: bool,
    /// Output received after the last newline.
    partial: Option<PartialLine>,
    /// Sub-tasks whose completion has been printed.
    done_statuses: HashSet<String>,
}

/// The unfinished last line of a vertex's output.
#[derive(Debug)]
struct PartialLine {
    bytes: Vec<u8>,
    /// When the line began; buildx stamps a line with the time of the chunk
    /// that started it.
    at: SystemTime,
}

impl PlainPrinter {
    /// Creates a printer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one status message and returns the complete lines it produced
    /// (without trailing newlines), in display order.
    pub fn push(&mut self, batch: &StatusBatch) -> Vec<String> {
        let mut out = Pending::default();

        // Vertex updates go first so headers precede anything printed for
        // the vertex, but their final lines go last: a message that both
        // completes a step and carries its last output must print the output
        // before DONE.
        for update in &batch.vertexes {
            self.merge_vertex(update, &mut out);
        }
        for status in &batch.statuses {
            self.push_status(status, &mut out);
        }
        for chunk in &batch.logs {
            self.push_log(chunk, &mut out);
        }
        for warning in &batch.warnings {
            self.push_warning(warning, &mut out);
        }
        for update in &batch.vertexes {
            self.finish_vertex(&update.digest, &mut out);
        }

        self.emit(out)
    }

    /// Ends the stream: prints buffered partial log lines and marks vertices
    /// that started but never completed as `CANCELED`. Calling it again
    /// returns nothing new.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Pending::default();

        let mut open: Vec<(usize, String)> = self
            .vertices
            .iter()
            .filter_map(|(digest, v)| {
                let unfinished = v.partial.is_some() || (v.started.is_some() && !v.finished);
                match v.index {
                    Some(index) if unfinished => Some((index, digest.clone())),
                    _ => None,
                }
            })
            .collect();
        open.sort();

        for (index, digest) in open {
            let Some(v) = self.vertices.get_mut(&digest) else {
                continue;
            };
            if let Some(line) = v.take_partial_line(index) {
                out.push(Some(&digest), line);
            }
            if v.started.is_some() && !v.finished {
                v.finished = true;
                out.push(Some(&digest), format!("#{index} CANCELED"));
            }
        }

        self.emit(out)
    }

    /// Counts for a summary line: how many vertices were printed (started,
    /// cached, finished or produced output) and how many of those were
    /// `CACHED`.
    pub fn step_counts(&self) -> (usize, usize) {
        self.vertices
            .values()
            .filter(|v| v.index.is_some())
            .fold((0, 0), |(total, cached), v| {
                (total + 1, cached + usize::from(v.cached))
            })
    }

    /// Concatenates a message's output, group by group, inserting a blank
    /// line whenever the vertex being printed changes.
    fn emit(&mut self, pending: Pending) -> Vec<String> {
        let mut groups = pending.groups;
        // Continuing with the vertex already on screen saves a separator and
        // a pointless switch away and back.
        if self.printed_any {
            if let Some(pos) = groups.iter().position(|(o, _)| *o == self.last_owner) {
                let current = groups.remove(pos);
                groups.insert(0, current);
            }
        }

        let mut lines = Vec::new();
        for (owner, group) in groups {
            if self.printed_any && owner != self.last_owner {
                lines.push(String::new());
            }
            lines.extend(group);
            self.printed_any = true;
            self.last_owner = owner;
        }
        lines
    }
}

impl VertexState {
    /// Turns buffered output without its newline into a printable line.
    fn take_partial_line(&mut self, index: usize) -> Option<String> {
        let partial = self.partial.take()?;
        Some(log_line(index, self.started, partial.at, &partial.bytes))
    }
}

/// Formats one line of a vertex's output as `#<n> <seconds> <text>`, the
/// seconds counting from the vertex's start.
fn log_line(index: usize, started: Option<SystemTime>, at: SystemTime, bytes: &[u8]) -> String {
    let secs = started.map_or(0.0, |started| seconds_between(started, at));
    format!(
        "#{index} {} {}",
        format_offset(secs),
        String::from_utf8_lossy(visible_text(bytes))
    )
}

/// Output of one call, grouped by the vertex it belongs to (`None`: no known
/// vertex) in order of each group's first line, so a message touching
/// several vertices prints each of them in one block.
#[derive(Default)]
struct Pending {
    groups: Vec<(Option<String>, Vec<String>)>,
}

impl Pending {
    fn push(&mut self, owner: Option<&str>, line: String) {
        match self.groups.iter_mut().find(|(o, _)| o.as_deref() == owner) {
            Some((_, lines)) => lines.push(line),
            None => self.groups.push((owner.map(str::to_owned), vec![line])),
        }
    }
}

#[cfg(test)]
mod tests;
