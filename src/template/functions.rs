//! The Sprig functions ACR task files use, with Go template's argument order: the piped value
//! comes last (`{{ .Values.x | default "y" }}` is `default "y" .Values.x`).

use base64::Engine as _;

use super::TemplateError;

/// A value in a pipeline: text, or a value the run does not have (named, for the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Text(String),
    Missing(String),
}

impl Val {
    /// The text, or an error naming the missing value.
    pub(crate) fn text(self) -> Result<String, TemplateError> {
        match self {
            Val::Text(s) => Ok(s),
            Val::Missing(name) => Err(TemplateError::NoValue { name }),
        }
    }
}

/// The functions a template may call, for error messages.
pub(crate) const FUNCTIONS: &[&str] = &[
    "b64dec",
    "b64enc",
    "default",
    "lower",
    "quote",
    "replace",
    "required",
    "squote",
    "title",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "upper",
];

/// Calls `name` with `args` (the piped value, if any, already appended).
pub(crate) fn call(name: &str, args: Vec<Val>) -> Result<Val, TemplateError> {
    let arity = match name {
        "default" | "trimPrefix" | "trimSuffix" | "required" => 2,
        "replace" => 3,
        _ if FUNCTIONS.contains(&name) => 1,
        _ => {
            return Err(TemplateError::UnknownFunction {
                name: name.to_owned(),
            })
        }
    };
    if args.len() != arity {
        return Err(TemplateError::BadArguments {
            function: name.to_owned(),
            expected: arity,
            got: args.len(),
        });
    }
    let mut args = args.into_iter();
    let mut next = || args.next().expect("arity checked above");
    let text = match name {
        "default" => {
            let fallback = next();
            return Ok(match next() {
                Val::Text(s) if !s.is_empty() => Val::Text(s),
                _ => fallback,
            });
        }
        "required" => {
            let message = next().text()?;
            return match next() {
                Val::Text(s) if !s.is_empty() => Ok(Val::Text(s)),
                _ => Err(TemplateError::Required { message }),
            };
        }
        "trimPrefix" => {
            let prefix = next().text()?;
            let s = next().text()?;
            s.strip_prefix(&prefix).unwrap_or(&s).to_owned()
        }
        "trimSuffix" => {
            let suffix = next().text()?;
            let s = next().text()?;
            s.strip_suffix(&suffix).unwrap_or(&s).to_owned()
        }
        "replace" => {
            let old = next().text()?;
            let new = next().text()?;
            next().text()?.replace(&old, &new)
        }
        _ => unary(name, &next().text()?)?,
    };
    Ok(Val::Text(text))
}

fn unary(name: &str, s: &str) -> Result<String, TemplateError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(match name {
        "b64enc" => b64.encode(s),
        "b64dec" => {
            let bytes = b64
                .decode(s.trim())
                .map_err(|_| TemplateError::BadArgument {
                    function: "b64dec",
                    reason: "the value is not base64",
                })?;
            String::from_utf8(bytes).map_err(|_| TemplateError::BadArgument {
                function: "b64dec",
                reason: "the decoded value is not UTF-8 text",
            })?
        }
        "lower" => s.to_lowercase(),
        "upper" => s.to_uppercase(),
        "trim" => s.trim().to_owned(),
        "quote" => format!("{s:?}"),
        "squote" => format!("'{s}'"),
        "title" => s
            .split(' ')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect::<String>()
                })
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => unreachable!("call checked the name"),
    })
}
