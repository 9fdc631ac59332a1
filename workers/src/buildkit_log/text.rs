//! Text of output lines: what a terminal would show, where a long line may be cut, and
//! prefixing multi-line text.

/// What a terminal would show for a line: carriage returns (progress bars)
/// rewind to the start of the line, so only the text after the last one
/// stays visible; trailing ones (CRLF line ends) erase nothing.
pub(super) fn visible_text(line: &[u8]) -> &[u8] {
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
pub(super) fn drop_overwritten(bytes: &mut Vec<u8>) {
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
pub(super) fn utf8_boundary_before(bytes: &[u8], limit: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    // A UTF-8 sequence has at most three continuation bytes.
    (limit.saturating_sub(3)..=limit)
        .rev()
        .find(|&i| i > 0 && bytes.get(i).is_none_or(|&b| !is_continuation(b)))
        .unwrap_or(limit)
}

/// Splits possibly multi-line text (heredoc step names, long errors) into
/// lines so every returned string is a single line: the first gets `first`
/// as prefix, the rest `rest`.
pub(super) fn prefixed_lines(first: &str, rest: &str, text: &str) -> Vec<String> {
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
