//! Where each node of a YAML document is, by path (`steps.2.when.0`), so semantic errors found
//! after typed parsing still point at the line and column of the offending node.
//!
//! serde only reports positions for the errors it finds itself; a first pass over the parser's
//! events (saphyr-parser keeps a span per event) records the rest.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use super::errors::Position;

/// Positions of the nodes of one document. Paths join mapping keys and sequence indexes
/// with `.`; the empty path is the document itself.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

impl Positions {
    /// Records what it can; a document that does not parse yields the positions seen before
    /// the error (serde reports the error itself).
    pub(crate) fn of(text: &str) -> Positions {
        let mut positions = Positions::default();
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let at = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map {
                        path,
                        key: key @ None,
                    }) = stack.last_mut()
                    {
                        let full = join(path, &value);
                        positions.keys.insert(full, at);
                        *key = Some(value.into_owned());
                    } else {
                        let path = enter(&mut stack);
                        positions.values.insert(path, at);
                    }
                }
                Event::Alias(_) => {
                    let path = enter(&mut stack);
                    positions.values.insert(path, at);
                }
                Event::MappingStart(..) => {
                    let path = enter(&mut stack);
                    positions.values.insert(path.clone(), at);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = enter(&mut stack);
                    positions.values.insert(path.clone(), at);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        positions
    }

    /// The value at `path`, else the nearest enclosing node, else the file's start.
    pub(crate) fn value(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(at) = self.values.get(path) {
                return *at;
            }
            match path.rfind('.') {
                Some(dot) => path = &path[..dot],
                None => {
                    return self
                        .values
                        .get("")
                        .copied()
                        .unwrap_or(Position { line: 1, column: 1 })
                }
            }
        }
    }

    /// The key of the mapping entry at `path`, else the value's position.
    pub(crate) fn key(&self, path: &str) -> Position {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

/// The path of the node that starts now, advancing the enclosing collection past it.
fn enter(stack: &mut [Frame]) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { path, key }) => join(path, &key.take().unwrap_or_default()),
        Some(Frame::Seq { path, next }) => {
            *next += 1;
            join(path, &(*next - 1).to_string())
        }
    }
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keys_values_and_items() {
        let text = "version: v1.1.0\nsteps:\n  - id: a\n    when: [\"-\"]\n  - cmd: b\n";
        let p = Positions::of(text);
        assert_eq!(
            p.value("version"),
            Position {
                line: 1,
                column: 10
            }
        );
        assert_eq!(p.key("steps.0.id"), Position { line: 3, column: 5 });
        assert_eq!(
            p.value("steps.0.when.0"),
            Position {
                line: 4,
                column: 12
            }
        );
        assert_eq!(p.value("steps.1"), Position { line: 5, column: 5 });
        assert_eq!(p.value("steps.1.nope"), Position { line: 5, column: 5 });
    }
}
