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

/// BuildKit reports vertices aborted by a cancelled build with Go's
/// `context.Canceled` message at the end of the error; buildx prints those as
/// `CANCELED` rather than as errors, and so do we.
const CANCELED_SUFFIX: &str = "context canceled";

/// Longest partial log line kept while waiting for its newline. A step that
/// writes megabytes without a newline (minified output, binary junk) would
/// otherwise grow the buffer without bound; past this size the buffered text
/// is printed as a line of its own.
const MAX_PARTIAL_LINE: usize = 64 * 1024;

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

    /// Folds a repeated vertex entry into what is known and prints the header
    /// once the vertex becomes visible.
    fn merge_vertex(&mut self, update: &VertexUpdate, out: &mut Pending) {
        let v = self.vertices.entry(update.digest.clone()).or_default();
        // Once the header is out, the number and name are fixed; a later
        // rename would make the log confusing.
        if !update.name.is_empty() && v.index.is_none() {
            v.name.clone_from(&update.name);
        }
        // Keep the first start time so log offsets stay consistent.
        if v.started.is_none() {
            v.started = update.started;
        }
        if update.completed.is_some() {
            v.completed = update.completed;
        }
        v.cached |= update.cached;
        if !update.error.is_empty() {
            v.error.clone_from(&update.error);
        }

        // BuildKit announces the whole graph up front with vertices that have
        // not started; those stay silent (and unnumbered) until they do.
        let visible =
            v.started.is_some() || v.cached || v.completed.is_some() || !v.error.is_empty();
        if visible {
            self.announce(&update.digest, out);
        }
    }

    /// Prints the final line of a vertex if it has reached one and has not
    /// printed it yet.
    fn finish_vertex(&mut self, digest: &str, out: &mut Pending) {
        let Some(v) = self.vertices.get_mut(digest) else {
            return;
        };
        let Some(index) = v.index else {
            return;
        };
        if v.finished {
            return;
        }

        let lines = if !v.error.is_empty() {
            if v.error.ends_with(CANCELED_SUFFIX) {
                vec![format!("#{index} CANCELED")]
            } else {
                prefixed_lines(
                    &format!("#{index} ERROR: "),
                    &format!("#{index} "),
                    &v.error,
                )
            }
        } else if v.cached {
            vec![format!("#{index} CACHED")]
        } else if let Some(completed) = v.completed {
            vec![match v.started {
                Some(started) => {
                    format!("#{index} DONE {:.1}s", seconds_between(started, completed))
                }
                None => format!("#{index} DONE"),
            }]
        } else {
            return;
        };

        v.finished = true;
        // The output belongs before the verdict, and nothing else will flush
        // it until the end of the stream.
        if let Some(line) = v.take_partial_line(index) {
            out.push(Some(digest), line);
        }
        for line in lines {
            out.push(Some(digest), line);
        }
    }

    /// Prints a sub-task when it completes. Intermediate progress is skipped
    /// because layer downloads report many times a second.
    fn push_status(&mut self, status: &StatusUpdate, out: &mut Pending) {
        let Some(completed) = status.completed else {
            return;
        };
        let (index, v) = self.announce(&status.vertex, out);
        if !v.done_statuses.insert(status.id.clone()) {
            return;
        }

        let mut line = format!("#{index} {}", status.id);
        if status.total != 0 {
            line.push_str(&format!(
                " {} / {}",
                human_bytes(status.current),
                human_bytes(status.total)
            ));
        } else if status.current != 0 {
            line.push_str(&format!(" {}", human_bytes(status.current)));
        }
        if let Some(started) = status.started {
            let secs = seconds_between(started, completed);
            // Matches buildx, which leaves out durations that would round to
            // nothing.
            if secs > 0.01 {
                line.push_str(&format!(" {secs:.1}s"));
            }
        }
        line.push_str(" done");
        out.push(Some(&status.vertex), line);
    }

    /// Splits a chunk of output into lines, buffering the unfinished tail.
    fn push_log(&mut self, chunk: &LogChunk, out: &mut Pending) {
        if chunk.msg.is_empty() {
            return;
        }
        // Chunks practically always carry a timestamp; if not, arrival time
        // is the best approximation.
        let at = chunk.timestamp.unwrap_or_else(SystemTime::now);
        let owner = Some(chunk.vertex.as_str());
        let (index, v) = self.announce(&chunk.vertex, out);
        let started = v.started;

        let mut rest = chunk.msg.as_slice();
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..newline];
            let text = match v.partial.take() {
                Some(mut partial) => {
                    partial.bytes.extend_from_slice(line);
                    log_line(index, started, partial.at, &partial.bytes)
                }
                None => log_line(index, started, at, line),
            };
            out.push(owner, text);
            rest = &rest[newline + 1..];
        }
        if rest.is_empty() {
            return;
        }

        let partial = v.partial.get_or_insert_with(|| PartialLine {
            bytes: Vec::new(),
            at,
        });
        partial.bytes.extend_from_slice(rest);
        drop_overwritten(&mut partial.bytes);
        while partial.bytes.len() > MAX_PARTIAL_LINE {
            let cut = utf8_boundary_before(&partial.bytes, MAX_PARTIAL_LINE);
            let head: Vec<u8> = partial.bytes.drain(..cut).collect();
            let line_at = partial.at;
            partial.at = at;
            let text = log_line(index, started, line_at, &head);
            out.push(owner, text);
        }
    }

    /// Prints a warning under its vertex, or unnumbered if the vertex was
    /// never reported.
    fn push_warning(&mut self, warning: &WarningUpdate, out: &mut Pending) {
        let short = String::from_utf8_lossy(&warning.short);
        if self.vertices.contains_key(&warning.vertex) {
            let (index, _) = self.announce(&warning.vertex, out);
            for line in prefixed_lines(&format!("#{index} WARN: "), &format!("#{index} "), &short) {
                out.push(Some(&warning.vertex), line);
            }
        } else {
            for line in prefixed_lines("WARN: ", "", &short) {
                out.push(None, line);
            }
        }
    }

    /// Returns the vertex's number, numbering it and printing its header
    /// first if this is the first time anything is printed for it. Output
    /// for a vertex never announced in a vertex update (BuildKit sends the
    /// vertex first, so this should not happen) is kept rather than dropped,
    /// under a header showing the digest.
    fn announce(&mut self, digest: &str, out: &mut Pending) -> (usize, &mut VertexState) {
        let v = self.vertices.entry(digest.to_owned()).or_default();
        let index = match v.index {
            Some(index) => index,
            None => {
                self.last_index += 1;
                let index = self.last_index;
                v.index = Some(index);
                let name = if v.name.is_empty() { digest } else { &v.name };
                let prefix = format!("#{index} ");
                for line in prefixed_lines(&prefix, &prefix, name) {
                    out.push(Some(digest), line);
                }
                index
            }
        };
        (index, v)
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

/// What a terminal would show for a line: carriage returns (progress bars)
/// rewind to the start of the line, so only the text after the last one
/// stays visible; trailing ones (CRLF line ends) erase nothing.
fn visible_text(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
    let line = &line[..end];
    match line.iter().rposition(|&b| b == b'\r') {
        Some(cr) => &line[cr + 1..],
        None => line,
    }
}

/// Discards text of a partial line that a later carriage return has already
/// overwritten, so a progress bar redrawn for minutes without a newline does
/// not pile up in memory. Leaves what [`visible_text`] would show unchanged.
fn drop_overwritten(bytes: &mut Vec<u8>) {
    let Some(last_text) = bytes.iter().rposition(|&b| b != b'\r') else {
        return;
    };
    if let Some(cr) = bytes[..last_text].iter().rposition(|&b| b == b'\r') {
        bytes.drain(..=cr);
    }
}

/// Largest index `<= limit` that does not split a UTF-8 sequence, so a line
/// cut for length does not garble a character; falls back to `limit` for
/// input that is not UTF-8 anyway.
fn utf8_boundary_before(bytes: &[u8], limit: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    // A UTF-8 sequence has at most three continuation bytes.
    (limit.saturating_sub(3)..=limit)
        .rev()
        .find(|&i| i > 0 && bytes.get(i).is_none_or(|&b| !is_continuation(b)))
        .unwrap_or(limit)
}

/// Seconds from `from` to `to`, or 0 if clocks disagree and `to` is earlier.
fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).map_or(0.0, |d| d.as_secs_f64())
}

/// Formats a log line's offset like buildx: the width stays about the same as
/// the number grows by trading decimals for digits.
fn format_offset(secs: f64) -> String {
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
fn human_bytes(n: i64) -> String {
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

/// Splits possibly multi-line text (heredoc step names, long errors) into
/// lines so every returned string is a single line: the first gets `first`
/// as prefix, the rest `rest`.
fn prefixed_lines(first: &str, rest: &str, text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let prefix = if i == 0 { first } else { rest };
            format!("{prefix}{line}").trim_end().to_owned()
        })
        .collect();
    if lines.is_empty() {
        lines.push(first.trim_end().to_owned());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// A fixed instant plus `ms` milliseconds.
    fn t(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
    }

    fn vertex(digest: &str, name: &str) -> VertexUpdate {
        VertexUpdate {
            digest: digest.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn started(digest: &str, name: &str, at: u64) -> VertexUpdate {
        VertexUpdate {
            started: Some(t(at)),
            ..vertex(digest, name)
        }
    }

    fn completed(digest: &str, name: &str, start: u64, end: u64) -> VertexUpdate {
        VertexUpdate {
            completed: Some(t(end)),
            ..started(digest, name, start)
        }
    }

    fn log(digest: &str, at: u64, msg: &[u8]) -> LogChunk {
        LogChunk {
            vertex: digest.into(),
            timestamp: Some(t(at)),
            stream: 1,
            msg: msg.to_vec(),
        }
    }

    fn vertexes(v: Vec<VertexUpdate>) -> StatusBatch {
        StatusBatch {
            vertexes: v,
            ..Default::default()
        }
    }

    fn logs(l: Vec<LogChunk>) -> StatusBatch {
        StatusBatch {
            logs: l,
            ..Default::default()
        }
    }

    /// Runs batches through a fresh printer, then `finish`, collecting all lines.
    fn run(batches: &[StatusBatch]) -> Vec<String> {
        let mut printer = PlainPrinter::new();
        let mut lines: Vec<String> = batches.iter().flat_map(|b| printer.push(b)).collect();
        lines.extend(printer.finish());
        lines
    }

    const RUN: &str = "[2/3] RUN make";

    #[test]
    fn started_vertex_with_chunked_logs_then_done() {
        let lines = run(&[
            vertexes(vec![started("sha256:a", RUN, 0)]),
            logs(vec![log("sha256:a", 532, b"cc -o app ma")]),
            logs(vec![log("sha256:a", 700, b"in.c\nlinking")]),
            logs(vec![log("sha256:a", 900, b"...\nok\n")]),
            vertexes(vec![completed("sha256:a", RUN, 0, 1234)]),
        ]);
        assert_eq!(
            lines,
            [
                "#1 [2/3] RUN make",
                // Each line is stamped with the chunk that started it.
                "#1 0.532 cc -o app main.c",
                "#1 0.700 linking...",
                "#1 0.900 ok",
                "#1 DONE 1.2s",
            ]
        );
    }

    #[test]
    fn header_is_printed_when_started_not_when_announced() {
        let mut printer = PlainPrinter::new();
        // BuildKit lists the whole graph before anything runs.
        let announced = printer.push(&vertexes(vec![
            vertex("sha256:a", "[1/2] FROM alpine"),
            vertex("sha256:b", RUN),
        ]));
        assert!(announced.is_empty());
        // The second vertex starts first, so it gets #1.
        assert_eq!(
            printer.push(&vertexes(vec![started("sha256:b", RUN, 0)])),
            ["#1 [2/3] RUN make"]
        );
        assert_eq!(printer.step_counts(), (1, 0));
    }

    #[test]
    fn cached_vertex_prints_header_and_cached_once() {
        let cached = VertexUpdate {
            cached: true,
            ..completed("sha256:c", "[1/3] FROM docker.io/library/alpine", 5, 5)
        };
        let mut printer = PlainPrinter::new();
        assert_eq!(
            printer.push(&vertexes(vec![cached.clone()])),
            ["#1 [1/3] FROM docker.io/library/alpine", "#1 CACHED"]
        );
        assert!(printer
            .push(&vertexes(vec![cached.clone(), cached]))
            .is_empty());
        assert!(printer.finish().is_empty());
        assert_eq!(printer.step_counts(), (1, 1));
    }

    #[test]
    fn cached_flag_arriving_with_completion_prints_cached_not_done() {
        let lines = run(&[
            vertexes(vec![started("sha256:c", "[1/3] COPY . .", 0)]),
            vertexes(vec![VertexUpdate {
                cached: true,
                ..completed("sha256:c", "[1/3] COPY . .", 0, 10)
            }]),
        ]);
        assert_eq!(lines, ["#1 [1/3] COPY . .", "#1 CACHED"]);
    }

    #[test]
    fn error_flushes_partial_output_then_reports_error() {
        let failed = VertexUpdate {
            error: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2".into(),
            ..completed("sha256:e", RUN, 0, 2000)
        };
        let lines = run(&[
            vertexes(vec![started("sha256:e", RUN, 0)]),
            logs(vec![log("sha256:e", 1500, b"make: *** [all] Error 1")]),
            vertexes(vec![failed.clone()]),
            vertexes(vec![failed]),
        ]);
        assert_eq!(
            lines,
            [
                "#1 [2/3] RUN make",
                "#1 1.500 make: *** [all] Error 1",
                "#1 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
            ]
        );
    }

    #[test]
    fn error_without_completion_still_finishes_the_vertex() {
        let mut printer = PlainPrinter::new();
        printer.push(&vertexes(vec![started("sha256:e", RUN, 0)]));
        let lines = printer.push(&vertexes(vec![VertexUpdate {
            error: "boom".into(),
            ..started("sha256:e", RUN, 0)
        }]));
        assert_eq!(lines, ["#1 ERROR: boom"]);
        // Not reported again as cancelled at the end.
        assert!(printer.finish().is_empty());
    }

    #[test]
    fn cancelled_vertex_prints_canceled_not_error() {
        let lines = run(&[vertexes(vec![VertexUpdate {
            error: "failed to compute cache key: context canceled".into(),
            ..completed("sha256:x", RUN, 0, 300)
        }])]);
        assert_eq!(lines, ["#1 [2/3] RUN make", "#1 CANCELED"]);
    }

    #[test]
    fn multi_line_name_and_error_become_separate_lines() {
        let name = "[2/2] RUN <<EOF\nset -e\nmake\nEOF";
        let lines = run(&[vertexes(vec![VertexUpdate {
            error: "exit code: 2\nsee above".into(),
            ..completed("sha256:h", name, 0, 100)
        }])]);
        assert_eq!(
            lines,
            [
                "#1 [2/2] RUN <<EOF",
                "#1 set -e",
                "#1 make",
                "#1 EOF",
                "#1 ERROR: exit code: 2",
                "#1 see above",
            ]
        );
    }

    #[test]
    fn interleaved_vertices_are_separated_by_blank_lines() {
        let a = "[build 2/3] RUN go build";
        let b = "[test 2/3] RUN go test";
        let lines = run(&[
            vertexes(vec![started("sha256:a", a, 0)]),
            vertexes(vec![started("sha256:b", b, 100)]),
            logs(vec![log("sha256:a", 200, b"compiling\n")]),
            logs(vec![log("sha256:a", 250, b"still compiling\n")]),
            logs(vec![log("sha256:b", 300, b"=== RUN TestX\n")]),
            StatusBatch {
                vertexes: vec![completed("sha256:b", b, 100, 1100)],
                logs: vec![log("sha256:b", 1000, b"PASS\n")],
                ..Default::default()
            },
            vertexes(vec![completed("sha256:a", a, 0, 2000)]),
        ]);
        assert_eq!(
            lines,
            [
                "#1 [build 2/3] RUN go build",
                "",
                "#2 [test 2/3] RUN go test",
                "",
                "#1 0.200 compiling",
                "#1 0.250 still compiling",
                "",
                "#2 0.200 === RUN TestX",
                // Output in the same message as the completion comes first.
                "#2 0.900 PASS",
                "#2 DONE 1.0s",
                "",
                "#1 DONE 2.0s",
            ]
        );
    }

    #[test]
    fn one_message_touching_several_vertices_prints_each_as_a_block() {
        let mut printer = PlainPrinter::new();
        printer.push(&vertexes(vec![
            started("sha256:a", "A", 0),
            started("sha256:b", "B", 0),
        ]));
        // #2 was printed last, so its output leads even though #1's comes first.
        let lines = printer.push(&logs(vec![
            log("sha256:a", 10, b"a1\n"),
            log("sha256:b", 20, b"b1\n"),
            log("sha256:a", 30, b"a2\n"),
            log("sha256:b", 40, b"b2\n"),
        ]));
        assert_eq!(
            lines,
            [
                "#2 0.020 b1",
                "#2 0.040 b2",
                "",
                "#1 0.010 a1",
                "#1 0.030 a2"
            ]
        );
    }

    #[test]
    fn repeated_identical_updates_print_nothing_new() {
        let mut printer = PlainPrinter::new();
        let start = vertexes(vec![started("sha256:a", RUN, 0)]);
        let done = vertexes(vec![completed("sha256:a", RUN, 0, 500)]);
        assert_eq!(printer.push(&start), ["#1 [2/3] RUN make"]);
        assert!(printer.push(&start).is_empty());
        assert!(printer
            .push(&vertexes(vec![vertex("sha256:a", RUN)]))
            .is_empty());
        assert_eq!(printer.push(&done), ["#1 DONE 0.5s"]);
        assert!(printer.push(&done).is_empty());
        assert!(printer.push(&start).is_empty());
        assert!(printer.finish().is_empty());
        assert_eq!(printer.step_counts(), (1, 0));
    }

    #[test]
    fn statuses_print_only_on_completion_and_once() {
        let layer = "sha256:0a1b2c3d";
        let status = |current, completed: Option<u64>| StatusUpdate {
            id: layer.into(),
            vertex: "sha256:f".into(),
            name: layer.into(),
            current,
            total: 3_400_000,
            started: Some(t(100)),
            completed: completed.map(t),
        };
        let mut printer = PlainPrinter::new();
        printer.push(&vertexes(vec![started("sha256:f", "[1/3] FROM alpine", 0)]));
        for current in [0, 1_000_000, 2_000_000] {
            let batch = StatusBatch {
                statuses: vec![status(current, None)],
                ..Default::default()
            };
            assert!(printer.push(&batch).is_empty());
        }
        let done = StatusBatch {
            statuses: vec![status(3_400_000, Some(1300))],
            ..Default::default()
        };
        assert_eq!(
            printer.push(&done),
            ["#1 sha256:0a1b2c3d 3.40MB / 3.40MB 1.2s done"]
        );
        assert!(printer.push(&done).is_empty());
    }

    #[test]
    fn status_without_total_shows_current_if_any() {
        let status = |id: &str, current| StatusUpdate {
            id: id.into(),
            vertex: "sha256:ctx".into(),
            current,
            started: Some(t(0)),
            completed: Some(t(5)),
            ..Default::default()
        };
        let lines = run(&[
            vertexes(vec![started(
                "sha256:ctx",
                "[internal] load build context",
                0,
            )]),
            StatusBatch {
                statuses: vec![status("transferring context:", 35), status("resolve", 0)],
                ..Default::default()
            },
        ]);
        assert_eq!(
            lines,
            [
                "#1 [internal] load build context",
                "#1 transferring context: 35B done",
                "#1 resolve done",
                "#1 CANCELED",
            ]
        );
    }

    #[test]
    fn carriage_returns_keep_only_the_final_redraw() {
        let lines = run(&[
            vertexes(vec![started("sha256:p", "[2/2] RUN curl -O x", 0)]),
            logs(vec![log("sha256:p", 10, b"  0%\r 50%")]),
            logs(vec![log("sha256:p", 20, b"\r100%\n")]),
            // A CRLF split across chunks.
            logs(vec![log("sha256:p", 30, b"saved\r")]),
            logs(vec![log("sha256:p", 40, b"\ndone\r\n")]),
        ]);
        assert_eq!(
            lines,
            [
                "#1 [2/2] RUN curl -O x",
                "#1 0.010 100%",
                "#1 0.030 saved",
                "#1 0.040 done",
                "#1 CANCELED",
            ]
        );
    }

    #[test]
    fn finish_flushes_partial_lines_and_cancels_open_vertices_once() {
        let mut printer = PlainPrinter::new();
        printer.push(&vertexes(vec![
            started("sha256:a", "A", 0),
            completed("sha256:b", "B", 0, 100),
            vertex("sha256:never", "never started"),
        ]));
        printer.push(&logs(vec![log("sha256:a", 42, b"no newline")]));
        assert_eq!(printer.finish(), ["", "#1 0.042 no newline", "#1 CANCELED"]);
        assert!(printer.finish().is_empty());
        assert_eq!(printer.step_counts(), (2, 0));
    }

    #[test]
    fn warnings_go_under_their_vertex_or_stand_alone() {
        let lines = run(&[
            vertexes(vec![completed("sha256:d", "[internal] load build definition", 0, 50)]),
            StatusBatch {
                warnings: vec![
                    WarningUpdate {
                        vertex: "sha256:d".into(),
                        short: b"FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)\n"
                            .to_vec(),
                    },
                    WarningUpdate {
                        vertex: String::new(),
                        short: b"no vertex".to_vec(),
                    },
                ],
                ..Default::default()
            },
        ]);
        assert_eq!(
            lines,
            [
                "#1 [internal] load build definition",
                "#1 DONE 0.1s",
                "#1 WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
                "",
                "WARN: no vertex",
            ]
        );
    }

    #[test]
    fn non_utf8_output_is_converted_lossily_even_when_split() {
        let lines = run(&[
            vertexes(vec![started("sha256:u", "U", 0)]),
            // "é" split across chunks must survive; 0xff is invalid.
            logs(vec![log("sha256:u", 1, b"caf\xc3")]),
            logs(vec![log("sha256:u", 2, b"\xa9 \xff!\n")]),
        ]);
        assert_eq!(lines[1], "#1 0.001 caf\u{e9} \u{fffd}!");
    }

    #[test]
    fn output_of_an_unannounced_vertex_is_kept_under_its_digest() {
        let lines = run(&[logs(vec![log("sha256:ghost", 0, b"hello\n")])]);
        // Without a start time offsets are relative to nothing.
        assert_eq!(lines, ["#1 sha256:ghost", "#1 0.000 hello"]);
    }

    #[test]
    fn long_offsets_trade_decimals_for_digits() {
        let lines = run(&[
            vertexes(vec![started("sha256:s", "S", 0)]),
            logs(vec![
                log("sha256:s", 12_345, b"a\n"),
                log("sha256:s", 123_456, b"b\n"),
            ]),
            vertexes(vec![completed("sha256:s", "S", 0, 130_000)]),
        ]);
        assert_eq!(
            lines,
            ["#1 S", "#1 12.35 a", "#1 123.5 b", "#1 DONE 130.0s"]
        );
    }

    #[test]
    fn runaway_partial_lines_are_bounded() {
        let mut printer = PlainPrinter::new();
        printer.push(&vertexes(vec![started("sha256:r", "R", 0)]));
        // A progress bar redrawn many times without a newline keeps only the
        // last redraw.
        for i in 0..10_000 {
            let frame = format!("\rprogress {i:05}");
            assert!(printer
                .push(&logs(vec![log("sha256:r", 1, frame.as_bytes())]))
                .is_empty());
        }
        let held = printer
            .vertices
            .get("sha256:r")
            .and_then(|v| v.partial.as_ref())
            .map(|p| p.bytes.len());
        assert_eq!(held, Some("progress 09999".len()));

        // Output without any line break is cut into bounded lines.
        let blob = "é".repeat(MAX_PARTIAL_LINE);
        let lines = printer.push(&logs(vec![
            log("sha256:r", 2, b"\n"),
            log("sha256:r", 3, blob.as_bytes()),
        ]));
        assert_eq!(lines[0], "#1 0.001 progress 09999");
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("#1 0.003 é") && !lines[1].contains('\u{fffd}'));
        let rest = printer.finish();
        assert!(rest[0].starts_with("#1 0.003 é") && !rest[0].contains('\u{fffd}'));
        let total: usize = [&lines[1], &rest[0]]
            .iter()
            .map(|l| l.trim_start_matches("#1 0.003 ").chars().count())
            .sum();
        assert_eq!(total, MAX_PARTIAL_LINE);
    }

    #[test]
    fn visible_text_handles_carriage_returns() {
        assert_eq!(visible_text(b"plain"), b"plain");
        assert_eq!(visible_text(b"crlf\r"), b"crlf");
        assert_eq!(visible_text(b"a\rb\rc"), b"c");
        assert_eq!(visible_text(b"a\rb\r\r"), b"b");
        assert_eq!(visible_text(b"\r\r"), b"");
        assert_eq!(visible_text(b""), b"");
    }

    #[test]
    fn dropping_overwritten_text_preserves_what_is_visible() {
        for input in [
            &b"abc"[..],
            b"abc\r",
            b"abc\r\r",
            b"a\rbc",
            b"a\rbc\r",
            b"a\rb\r\r",
            b"\r",
            b"\rx",
        ] {
            let mut compacted = input.to_vec();
            drop_overwritten(&mut compacted);
            assert_eq!(visible_text(&compacted), visible_text(input), "{input:?}");
        }
    }

    #[test]
    fn human_bytes_matches_buildx_units() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(999), "999B");
        assert_eq!(human_bytes(1000), "1.00kB");
        assert_eq!(human_bytes(2_100), "2.10kB");
        assert_eq!(human_bytes(3_400_000), "3.40MB");
        assert_eq!(human_bytes(29_150_000_000), "29.15GB");
        assert_eq!(human_bytes(i64::MAX), "9.22EB");
        assert_eq!(human_bytes(-2_000), "-2.00kB");
    }

    #[test]
    fn offsets_use_buildx_precision() {
        assert_eq!(format_offset(0.5321), "0.532");
        assert_eq!(format_offset(9.9), "9.900");
        assert_eq!(format_offset(42.123), "42.12");
        assert_eq!(format_offset(612.34), "612.3");
    }
}
