//! Whole-text rendering of task files: Go-template actions with pipelines and the common Sprig
//! functions, in Kiln's `<< >>` or ACR's `{{ }}` spelling.
//!
//! Only what ACR task files use is supported: fields (`.Run.ID`, `.Values.a.b`), string
//! literals, function calls and `|` pipes, `{{-`/`-}}` whitespace trimming and `{{/* */}}`
//! comments. Anything else (`if`, `range`, variables) is an error naming it.

use std::collections::BTreeMap;

use super::functions::{call, Val, FUNCTIONS};
use super::{lookup, LookupError, RunVars, TemplateError};

/// What a task file's templates can refer to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub run: &'a RunVars,
    /// `.Values.*`; nested values-file maps are flattened to dotted keys (`a.b`).
    pub values: &'a BTreeMap<String, String>,
    /// Offline validation: a missing value renders as a placeholder instead of failing,
    /// since values are given when the task runs.
    pub lenient_values: bool,
}

/// A template error at a 1-based line and column of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    pub line: usize,
    pub column: usize,
    pub error: TemplateError,
}

/// What a missing value renders as when `lenient_values` is set: valid in image names, tags
/// and base64 alike.
pub const PLACEHOLDER: &str = "placeholder";

/// Renders every action in `text`. `<<` opens an action only when a `.`, `"` or `/*` follows
/// (after spaces), so shell here-documents (`cat <<EOF`) in `cmd` steps are left alone.
pub fn render_text(text: &str, scope: &Scope<'_>) -> Result<String, TextError> {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some((start, open, close)) = next_action(text, pos) {
        out.push_str(&text[pos..start]);
        let at = |offset: usize| {
            let line = text[..offset].matches('\n').count() + 1;
            let column = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
            move |error| TextError {
                line,
                column,
                error,
            }
        };
        let body_start = start + open.len();
        let Some(len) = text[body_start..].find(close) else {
            return Err(at(start)(TemplateError::Unterminated {
                delimiter: open,
                template: text[start..].lines().next().unwrap_or("").to_owned(),
            }));
        };
        let mut body = &text[body_start..body_start + len];
        if let Some(rest) = body.strip_prefix('-') {
            body = rest;
            out.truncate(out.trim_end().len());
        }
        pos = body_start + len + close.len();
        if let Some(rest) = body.strip_suffix('-') {
            body = rest;
            pos += text[pos..].len() - text[pos..].trim_start().len();
        }
        let value = evaluate(body.trim(), scope).map_err(at(start))?;
        out.push_str(&value);
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

fn next_action(text: &str, from: usize) -> Option<(usize, &'static str, &'static str)> {
    let curly = text[from..].find("{{").map(|i| from + i);
    let mut search = from;
    let angle = loop {
        let Some(i) = text[search..].find("<<") else {
            break None;
        };
        let start = search + i;
        let after = text[start + 2..].trim_start_matches([' ', '-']);
        if after.starts_with(['.', '"']) || after.starts_with("/*") {
            break Some(start);
        }
        search = start + 2;
    };
    match (curly, angle) {
        (Some(c), Some(a)) if a < c => Some((a, "<<", ">>")),
        (Some(c), _) => Some((c, "{{", "}}")),
        (None, Some(a)) => Some((a, "<<", ">>")),
        (None, None) => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Pipe,
    Text(String),
    Field(String),
    Ident(String),
}

fn evaluate(body: &str, scope: &Scope<'_>) -> Result<String, TemplateError> {
    if body.starts_with("/*") && body.ends_with("*/") {
        return Ok(String::new());
    }
    let tokens = tokenize(body)?;
    let mut value: Option<Val> = None;
    for command in tokens.split(|t| *t == Token::Pipe) {
        let bad = |reason: &'static str| TemplateError::BadAction {
            action: body.to_owned(),
            reason,
        };
        let (first, rest) = command.split_first().ok_or_else(|| bad("empty command"))?;
        value = Some(match first {
            Token::Ident(name) => {
                let mut args = rest
                    .iter()
                    .map(|t| term(t, scope))
                    .collect::<Result<Vec<_>, _>>()?;
                args.extend(value.take());
                call(name, args)?
            }
            _ if value.is_some() => return Err(bad("only a function can follow '|'")),
            _ if !rest.is_empty() => return Err(bad("a value cannot take arguments")),
            _ => term(first, scope)?,
        });
    }
    value
        .ok_or(TemplateError::BadAction {
            action: body.to_owned(),
            reason: "empty action",
        })?
        .text()
}

fn term(token: &Token, scope: &Scope<'_>) -> Result<Val, TemplateError> {
    match token {
        Token::Text(s) => Ok(Val::Text(s.clone())),
        Token::Field(name) => field(name, scope),
        Token::Ident(name) if FUNCTIONS.contains(&name.as_str()) => Err(TemplateError::BadAction {
            action: name.clone(),
            reason: "a function as an argument needs parentheses, which Kiln does not support",
        }),
        Token::Ident(name) => Err(TemplateError::UnknownFunction { name: name.clone() }),
        Token::Pipe => Err(TemplateError::BadAction {
            action: "|".into(),
            reason: "unexpected '|'",
        }),
    }
}

fn field(name: &str, scope: &Scope<'_>) -> Result<Val, TemplateError> {
    if let Some(key) = name.strip_prefix(".Values.") {
        return Ok(match scope.values.get(key) {
            Some(v) => Val::Text(v.clone()),
            None if scope.lenient_values => Val::Text(PLACEHOLDER.into()),
            None => Val::Missing(name.to_owned()),
        });
    }
    if name.starts_with(".Secrets.") {
        return Err(TemplateError::KeyVault {
            name: name.to_owned(),
        });
    }
    lookup(name, scope.run)
        .map(Val::Text)
        .map_err(|err| match err {
            LookupError::Unknown => TemplateError::UnknownVariable {
                name: name.to_owned(),
                template: name.to_owned(),
            },
            LookupError::Missing(reason) => TemplateError::MissingValue {
                name: name.to_owned(),
                reason,
                template: name.to_owned(),
            },
        })
}

fn tokenize(body: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut chars = body.char_indices().peekable();
    let bad = |reason| TemplateError::BadAction {
        action: body.to_owned(),
        reason,
    };
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '|' => {
                chars.next();
                tokens.push(Token::Pipe);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(bad("unterminated string")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, c @ ('"' | '\\'))) => s.push(c),
                            _ => return Err(bad("unknown escape in string")),
                        },
                        Some((_, c)) => s.push(c),
                    }
                }
                tokens.push(Token::Text(s));
            }
            '`' => {
                chars.next();
                let rest = &body[i + 1..];
                let end = rest.find('`').ok_or_else(|| bad("unterminated string"))?;
                tokens.push(Token::Text(rest[..end].to_owned()));
                while chars.peek().is_some_and(|&(j, _)| j <= i + 1 + end) {
                    chars.next();
                }
            }
            c if c == '.' || c.is_alphanumeric() || c == '_' || c == '-' => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(if word.starts_with('.') {
                    Token::Field(word)
                } else if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    Token::Text(word)
                } else {
                    Token::Ident(word)
                });
            }
            '$' => return Err(bad("template variables ($x) are not supported")),
            '(' | ')' => return Err(bad("parentheses are not supported")),
            _ => return Err(bad("unexpected character")),
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run() -> RunVars {
        RunVars {
            id: "ca1".into(),
            registry: Some("kiln.example.com:5000".into()),
            date: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 13, 45, 1)
                .unwrap(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: None,
            branch: Some("main".into()),
            task_name: Some("ci".into()),
            shared_volume: Some("kiln_vol_ca1".into()),
        }
    }

    fn render(text: &str) -> Result<String, TextError> {
        let values = BTreeMap::from([
            ("tag".to_owned(), "v2".to_owned()),
            ("empty".to_owned(), String::new()),
            ("a.b".to_owned(), "nested".to_owned()),
        ]);
        let run = run();
        render_text(
            text,
            &Scope {
                run: &run,
                values: &values,
                lenient_values: false,
            },
        )
    }

    #[test]
    fn renders_fields_pipelines_and_functions() {
        let ok = |t: &str| render(t).unwrap();
        assert_eq!(ok("app:{{.Values.tag}}"), "app:v2");
        assert_eq!(ok("<<.Run.RegistryName>>/<<.Run.TaskName>>"), "kiln/ci");
        assert_eq!(ok("{{ .Run.SharedVolume }}"), "kiln_vol_ca1");
        assert_eq!(ok("{{.Values.nope | default \"y\"}}"), "y");
        assert_eq!(ok("{{.Values.empty | default \"y\"}}"), "y");
        assert_eq!(ok("{{default \"y\" .Values.tag}}"), "v2");
        assert_eq!(ok("{{\"hi\" | b64enc}}"), "aGk=");
        assert_eq!(ok("{{\"aGk=\" | b64dec | upper | quote}}"), "\"HI\"");
        assert_eq!(ok("{{ .Values.a.b | lower }}"), "nested");
        assert_eq!(ok("{{ \"  x \" | trim | squote }}"), "'x'");
        assert_eq!(ok("a  {{- .Values.tag -}}  b"), "av2b");
        assert_eq!(ok("x{{/* note */}}y"), "xy");
        assert_eq!(ok("cat <<EOF\nhi\nEOF"), "cat <<EOF\nhi\nEOF");
    }

    #[test]
    fn unknown_names_are_errors_with_their_line() {
        let err = render("a\nb {{.Values.nope}}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(
            err.error.to_string().contains(".Values.nope"),
            "{}",
            err.error
        );
        let err = render("{{.Values.tag | sha1sum}}").unwrap_err();
        assert_eq!(err.error.to_string(), "unknown template function 'sha1sum'");
        let err = render("{{.Run.Nope}}").unwrap_err();
        assert!(err.error.to_string().contains(".Run.Nope"));
        let err = render("{{.Run.Commit}}").unwrap_err();
        assert!(err.error.to_string().contains("no value"));
        let err = render("{{.Secrets.pw}}").unwrap_err();
        assert!(err.error.to_string().contains("Key Vault"));
        let err = render("{{ if .Values.tag }}").unwrap_err();
        assert!(err.error.to_string().contains("'if'"), "{}", err.error);
    }
}
