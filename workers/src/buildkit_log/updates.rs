//! Folding each kind of status entry into the printer's state, and the lines that produces.

use std::time::SystemTime;

use super::format::{human_bytes, seconds_between};
use super::text::{drop_overwritten, prefixed_lines, utf8_boundary_before};
use super::{
    log_line, LogChunk, PartialLine, Pending, PlainPrinter, StatusUpdate, VertexState,
    VertexUpdate, WarningUpdate,
};

/// BuildKit reports vertices aborted by a cancelled build with Go's
/// `context.Canceled` message at the end of the error; buildx prints those as
/// `CANCELED` rather than as errors, and so do we.
const CANCELED_SUFFIX: &str = "context canceled";

/// Longest partial log line kept while waiting for its newline. A step that
/// writes megabytes without a newline (minified output, binary junk) would
/// otherwise grow the buffer without bound; past this size the buffered text
/// is printed as a line of its own.
pub(super) const MAX_PARTIAL_LINE: usize = 64 * 1024;

impl PlainPrinter {
    /// Folds a repeated vertex entry into what is known and prints the header
    /// once the vertex becomes visible.
    pub(super) fn merge_vertex(&mut self, update: &VertexUpdate, out: &mut Pending) {
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
    pub(super) fn finish_vertex(&mut self, digest: &str, out: &mut Pending) {
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
    pub(super) fn push_status(&mut self, status: &StatusUpdate, out: &mut Pending) {
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
    pub(super) fn push_log(&mut self, chunk: &LogChunk, out: &mut Pending) {
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
    pub(super) fn push_warning(&mut self, warning: &WarningUpdate, out: &mut Pending) {
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
}
