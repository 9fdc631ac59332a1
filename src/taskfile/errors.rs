//! Errors in a task file: each names the file, the line and column of the offending node, and
//! what is wrong, so an editor or a terminal can jump to it.

use std::fmt;

/// A position in the task file, both 1-based (as editors count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One error in a task file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TaskFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every error found in a task file, in the order of their positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TaskFileErrors(pub Vec<TaskFileError>);

impl TaskFileErrors {
    /// A list of one error.
    pub fn one(file: &str, at: Position, message: impl Into<String>) -> Self {
        TaskFileErrors(vec![TaskFileError {
            file: file.to_owned(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }])
    }

    pub fn errors(&self) -> &[TaskFileError] {
        &self.0
    }
}

impl fmt::Display for TaskFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects errors while a file is checked, so one pass reports all of them.
#[derive(Debug)]
pub(crate) struct Collector<'a> {
    file: &'a str,
    errors: Vec<TaskFileError>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(file: &'a str) -> Self {
        Collector {
            file,
            errors: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, at: Position, message: impl Into<String>) {
        self.errors.push(TaskFileError {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing was collected, else every error sorted by position.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, TaskFileErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors.dedup();
        Err(TaskFileErrors(self.errors))
    }
}
