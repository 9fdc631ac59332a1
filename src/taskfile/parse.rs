//! The text stages: comments, aliases, templates, then strict YAML into the typed model.

use std::collections::BTreeMap;

use kiln_worker::protocol::StepsJob;
use serde::Deserialize;

use super::aliases::{self, aliases_enabled, cut_alias_block, valid_key};
use super::errors::{Collector, Position, TaskFileErrors};
use super::lower::{lower, Checker};
use super::model::{RawAlias, RawStep, RawTask};
use super::positions::Positions;
use super::{CompileInput, ReadFile};
use crate::template::{render_text, Scope};

/// How a file is compiled.
pub(crate) struct Options<'a> {
    /// A missing `.Values.x` renders as a placeholder (offline validation).
    pub lenient_values: bool,
    /// Reads an `alias.src` file of the context; `None`: offline, such files are skipped.
    pub read_alias_file: Option<ReadFile<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasDoc {
    alias: Option<RawAlias>,
}

pub(crate) fn compile(
    file: &str,
    text: &str,
    input: &CompileInput,
    options: &Options<'_>,
) -> Result<StepsJob, TaskFileErrors> {
    let values = input.values.all();
    let scope = Scope {
        run: &input.run,
        values: &values,
        lenient_values: options.lenient_values,
    };
    let text = drop_comments(text);
    let (text, image_aliases) = if aliases_enabled(&text) {
        apply_aliases(file, &text, &scope, options)?
    } else {
        (text, BTreeMap::new())
    };
    let rendered = render(file, &text, &scope, 0)?;
    let task: RawTask = from_yaml(file, &rendered, 0)?;
    let positions = Positions::of(&rendered);
    let mut checker = Checker {
        positions: &positions,
        errors: Collector::new(file),
    };
    let job = lower(task, &mut checker, input, &image_aliases);
    checker.errors.finish(job)
}

/// `--cmd`: one cmd step, with the predefined aliases and templates applied.
pub(crate) fn compile_cmd(cmd: &str, input: &CompileInput) -> Result<StepsJob, TaskFileErrors> {
    let file = "--cmd";
    let values = input.values.all();
    let scope = Scope {
        run: &input.run,
        values: &values,
        lenient_values: false,
    };
    let cmd = aliases::substitute(cmd, &aliases::resolve(&[], &BTreeMap::new()), '$');
    let cmd = render(file, &cmd, &scope, 0)?;
    let task = RawTask {
        version: None,
        step_timeout: None,
        working_directory: None,
        env: Vec::new(),
        secrets: None,
        volumes: Vec::new(),
        networks: Vec::new(),
        alias: None,
        steps: vec![RawStep {
            cmd: Some(cmd),
            ..RawStep::default()
        }],
    };
    let positions = Positions::default();
    let mut checker = Checker {
        positions: &positions,
        errors: Collector::new(file),
    };
    let job = lower(task, &mut checker, input, &BTreeMap::new());
    checker.errors.finish(job)
}

/// The relative files `alias.src` names.
pub(crate) fn alias_sources(text: &str) -> Vec<String> {
    let (_, block) = cut_alias_block(&drop_comments(text));
    block
        .and_then(|(block, _)| serde_norway::from_str::<AliasDoc>(&block).ok())
        .and_then(|doc| doc.alias)
        .map(|alias| alias.src.into_iter().filter(|s| !is_remote(s)).collect())
        .unwrap_or_default()
}

fn is_remote(src: &str) -> bool {
    src.contains("://")
}

/// Blanks every line whose trimmed text starts with `#` (ACR drops them, so templates in
/// comments never render); blank rather than remove, so line numbers stay.
fn drop_comments(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            if line.trim_start().starts_with('#') {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cuts out and applies the `alias:` block; returns the text and the custom image aliases.
fn apply_aliases(
    file: &str,
    text: &str,
    scope: &Scope<'_>,
    options: &Options<'_>,
) -> Result<(String, BTreeMap<String, String>), TaskFileErrors> {
    let (rest, block) = cut_alias_block(text);
    let Some((block, first_line)) = block else {
        return Ok((
            aliases::substitute(&rest, &aliases::resolve(&[], &BTreeMap::new()), '$'),
            BTreeMap::new(),
        ));
    };
    let offset = first_line - 1;
    let block = render(file, &block, scope, offset)?;
    let alias = from_yaml::<AliasDoc>(file, &block, offset)?
        .alias
        .unwrap_or_default();
    let positions = Positions::of(&block);
    let mut errors = Collector::new(file);
    let at = |path: &str| {
        let p = positions.value(path);
        Position {
            line: p.line + offset,
            column: p.column,
        }
    };
    let directive = match alias.directive.as_deref() {
        None => '$',
        Some(d) => {
            let mut chars = d.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_alphanumeric() => c,
                _ => {
                    errors.push(at("alias.directive"), format!("alias directive '{d}' must be one character that is not a letter or digit"));
                    '$'
                }
            }
        }
    };
    let mut sources = Vec::new();
    for (i, src) in alias.src.iter().enumerate() {
        let here = at(&format!("alias.src.{i}"));
        if is_remote(src) {
            errors.push(here, format!("alias source '{src}' is a URL: Kiln reads alias files only from the context, never from the network"));
            continue;
        }
        let Some(read) = options.read_alias_file else {
            continue;
        };
        let Some(content) = read(src) else {
            errors.push(
                here,
                format!("alias source '{src}' is not a file of the context"),
            );
            continue;
        };
        match serde_norway::from_str::<BTreeMap<String, String>>(&content) {
            Ok(map) => sources.push(map),
            Err(e) => errors.push(
                here,
                format!("alias source '{src}': {}", strip_location(&e.to_string())),
            ),
        }
    }
    let custom = aliases::resolve(&sources, &alias.values);
    for key in sources
        .iter()
        .flat_map(|m| m.keys())
        .chain(alias.values.keys())
    {
        if !valid_key(key) {
            errors.push(
                at(&format!("alias.values.{key}")),
                format!("alias name '{key}' must be letters and digits only"),
            );
        }
    }
    errors.finish(())?;
    let mut image_aliases: BTreeMap<String, String> = sources.into_iter().flatten().collect();
    image_aliases.extend(alias.values);
    Ok((
        aliases::substitute(&rest, &custom, directive),
        image_aliases,
    ))
}

/// Renders templates; an error names its line (shifted by `line_offset`).
fn render(
    file: &str,
    text: &str,
    scope: &Scope<'_>,
    line_offset: usize,
) -> Result<String, TaskFileErrors> {
    render_text(text, scope).map_err(|e| {
        TaskFileErrors::one(
            file,
            Position {
                line: e.line + line_offset,
                column: e.column,
            },
            e.error.to_string(),
        )
    })
}

/// Strict YAML into `T`, with the parser's own position on error.
fn from_yaml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    line_offset: usize,
) -> Result<T, TaskFileErrors> {
    serde_norway::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map_or(Position { line: 1, column: 1 }, |l| Position {
                line: l.line() + line_offset,
                column: l.column(),
            });
        TaskFileErrors::one(file, at, describe(&e.to_string()))
    })
}

/// serde's wording, in the words of a task file: keys rather than fields, steps numbered
/// from 1, no repeated position.
fn describe(message: &str) -> String {
    let message = strip_location(message);
    let (path, rest) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (Some(path), rest.to_owned()),
        _ => (None, message.clone()),
    };
    let rest = rest
        .replace("unknown field `", "unknown key '")
        .replace("missing field `", "missing key '")
        .replace('`', "'")
        .replace("expected u64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected i64", "expected a whole number")
        .replace("a sequence", "a list");
    let rest = match rest.split_once(", expected one of") {
        Some((head, _)) => head.to_owned(),
        None => rest,
    };
    let Some(path) = path else { return rest };
    match step_number(path) {
        Some(n) => format!("{rest} in step {n}"),
        None => format!("{rest} in '{path}'"),
    }
}

/// `steps[1]...` is step 2.
fn step_number(path: &str) -> Option<usize> {
    let index = path.strip_prefix("steps[")?.split(']').next()?;
    index.parse::<usize>().ok().map(|i| i + 1)
}

fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
