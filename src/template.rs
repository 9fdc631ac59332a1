//! Run variables in image names, such as `app:<<.Run.ID>>`.
//!
//! Kiln's own delimiters are `<<` and `>>`; ACR's `{{` and `}}` spelling is
//! accepted too so task files written for `az acr build` keep working. Image names take
//! bare variables only ([`render`]); task files take Go-template pipelines with the common
//! Sprig functions ([`render_text`]).

mod functions;
mod pipeline;

use chrono::{DateTime, Utc};

pub use pipeline::{render_text, Scope, TextError, PLACEHOLDER};

/// Format of `.Run.Date`, e.g. `20261122-134501z` (same as ACR).
const DATE_FORMAT: &str = "%Y%m%d-%H%M%Sz";

/// Opening and closing delimiters, Kiln's spelling first.
const DELIMITERS: [(&str, &str); 2] = [("<<", ">>"), ("{{", "}}")];

/// The values a template can refer to, collected for one build run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunVars {
    /// `.Run.ID`: the run's identifier.
    pub id: String,
    /// `.Run.Registry`: the registry the run pushes to, if one is configured.
    pub registry: Option<String>,
    /// `.Run.Date`: when the run started.
    pub date: DateTime<Utc>,
    /// `.Run.OS`: the target operating system, e.g. `linux`.
    pub os: String,
    /// `.Run.Architecture`: the target architecture, e.g. `amd64`.
    pub architecture: String,
    /// `.Run.Commit`: the source commit, for git contexts.
    pub commit: Option<String>,
    /// `.Run.Branch`: the source branch, for git contexts.
    pub branch: Option<String>,
    /// `.Run.TaskName`: the saved task the run belongs to.
    pub task_name: Option<String>,
    /// `.Run.SharedVolume`: the volume mounted at `/workspace` in every step.
    pub shared_volume: Option<String>,
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template names a variable Kiln does not know.
    #[error("unknown template variable '{name}' in '{template}'")]
    UnknownVariable {
        /// The variable as written between the delimiters, trimmed.
        name: String,
        /// The whole template.
        template: String,
    },
    /// The variable exists but this run has no value for it.
    #[error("template variable '{name}' has no value: {reason} in '{template}'")]
    MissingValue {
        /// The variable, e.g. `.Run.Commit`.
        name: String,
        /// Why the run has no value for it.
        reason: &'static str,
        /// The whole template.
        template: String,
    },
    /// An opening delimiter without its closing partner.
    #[error("unterminated '{delimiter}' in '{template}'")]
    Unterminated {
        /// The opening delimiter, `<<` or `{{`.
        delimiter: &'static str,
        /// The whole template.
        template: String,
    },
    /// A task file calls a function Kiln does not know.
    #[error("unknown template function '{name}'")]
    UnknownFunction { name: String },
    /// A function called with the wrong number of arguments.
    #[error("template function '{function}' takes {expected} argument(s), got {got}")]
    BadArguments {
        function: String,
        expected: usize,
        got: usize,
    },
    /// A function given a value it cannot work on.
    #[error("template function '{function}': {reason}")]
    BadArgument {
        function: &'static str,
        reason: &'static str,
    },
    /// A value the run was not given (`--set`, `--set-secret` or `--values`).
    #[error("no value for '{name}': pass it with --set, --set-secret or --values, or use '| default \"...\"'")]
    NoValue { name: String },
    /// `required "message" .Values.x` without the value.
    #[error("{message}")]
    Required { message: String },
    /// An action Kiln's template subset cannot evaluate.
    #[error("cannot evaluate '{action}': {reason}")]
    BadAction {
        action: String,
        reason: &'static str,
    },
    /// ACR resolves `.Secrets.*` from Azure Key Vault, which Kiln cannot reach.
    #[error("'{name}': Key Vault secrets are not supported by Kiln; pass the value with --set-secret and use {{{{.Values.name}}}}")]
    KeyVault { name: String },
}

/// Replaces every `<<.Run.X>>` or `{{.Run.X}}` in `template` with its value.
///
/// Unlike ACR, which renders unknown or unset variables as empty strings, this
/// fails: a silently empty tag produces an image name nobody asked for.
pub fn render(template: &str, vars: &RunVars) -> Result<String, TemplateError> {
    let mut output = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((start, open, close)) = next_opening(rest) {
        output.push_str(&rest[..start]);
        let after_open = &rest[start + open.len()..];
        let end = after_open
            .find(close)
            .ok_or_else(|| TemplateError::Unterminated {
                delimiter: open,
                template: template.to_owned(),
            })?;
        let name = after_open[..end].trim();
        output.push_str(&lookup(name, vars).map_err(|err| err.in_template(name, template))?);
        rest = &after_open[end + close.len()..];
    }
    output.push_str(rest);
    Ok(output)
}

/// Finds the earliest opening delimiter of either spelling.
fn next_opening(s: &str) -> Option<(usize, &'static str, &'static str)> {
    DELIMITERS
        .iter()
        .filter_map(|&(open, close)| s.find(open).map(|start| (start, open, close)))
        .min_by_key(|&(start, _, _)| start)
}

/// Why a variable could not be looked up, before we know the template it came from.
pub(crate) enum LookupError {
    Unknown,
    Missing(&'static str),
}

impl LookupError {
    fn in_template(self, name: &str, template: &str) -> TemplateError {
        let (name, template) = (name.to_owned(), template.to_owned());
        match self {
            Self::Unknown => TemplateError::UnknownVariable { name, template },
            Self::Missing(reason) => TemplateError::MissingValue {
                name,
                reason,
                template,
            },
        }
    }
}

pub(crate) fn lookup(name: &str, vars: &RunVars) -> Result<String, LookupError> {
    let optional =
        |value: &Option<String>, reason| value.clone().ok_or(LookupError::Missing(reason));
    match name {
        ".Run.ID" => Ok(vars.id.clone()),
        ".Run.Registry" => optional(&vars.registry, "no registry is configured"),
        ".Run.RegistryName" => optional(&vars.registry, "no registry is configured")
            .map(|registry| registry.split('.').next().unwrap_or_default().to_owned()),
        ".Run.TaskName" => optional(&vars.task_name, "the run belongs to no saved task"),
        ".Run.SharedVolume" => optional(&vars.shared_volume, "the run has no shared volume"),
        ".Run.Date" => Ok(vars.date.format(DATE_FORMAT).to_string()),
        ".Run.OS" => Ok(vars.os.clone()),
        ".Run.Architecture" => Ok(vars.architecture.clone()),
        ".Run.Commit" => optional(&vars.commit, "the build context is not a git repository"),
        ".Run.Branch" => optional(&vars.branch, "the build context is not a git branch"),
        _ => Err(LookupError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn vars() -> RunVars {
        RunVars {
            id: "ca1".into(),
            registry: Some("kiln.example.com".into()),
            date: Utc.with_ymd_and_hms(2026, 11, 22, 13, 45, 1).unwrap(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: Some("0abc123".into()),
            branch: Some("main".into()),
            task_name: None,
            shared_volume: None,
        }
    }

    fn ok(template: &str) -> String {
        render(template, &vars()).unwrap()
    }

    #[test]
    fn renders_each_variable() {
        assert_eq!(ok("app:<<.Run.ID>>"), "app:ca1");
        assert_eq!(ok("<<.Run.Registry>>/app"), "kiln.example.com/app");
        assert_eq!(ok("app:<<.Run.Date>>"), "app:20261122-134501z");
        assert_eq!(ok("app:<<.Run.OS>>"), "app:linux");
        assert_eq!(ok("app:<<.Run.Architecture>>"), "app:amd64");
        assert_eq!(ok("app:<<.Run.Commit>>"), "app:0abc123");
        assert_eq!(ok("app:<<.Run.Branch>>"), "app:main");
    }

    #[test]
    fn renders_acr_spelling() {
        assert_eq!(ok("app:{{.Run.ID}}"), "app:ca1");
    }

    #[test]
    fn allows_whitespace_inside_delimiters() {
        assert_eq!(ok("app:<< .Run.ID >>"), "app:ca1");
        assert_eq!(ok("app:{{  .Run.ID\t}}"), "app:ca1");
    }

    #[test]
    fn renders_multiple_variables_in_both_spellings() {
        assert_eq!(
            ok("<<.Run.Registry>>/app-{{.Run.OS}}:<<.Run.ID>>-{{ .Run.Architecture }}"),
            "kiln.example.com/app-linux:ca1-amd64"
        );
    }

    #[test]
    fn leaves_text_without_variables_alone() {
        assert_eq!(ok("app:v1"), "app:v1");
        assert_eq!(ok(""), "");
        assert_eq!(ok("a>>b}}"), "a>>b}}");
    }

    #[test]
    fn rejects_unknown_variable() {
        let err = render("app:<<.Run.Foo>>", &vars()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown template variable '.Run.Foo' in 'app:<<.Run.Foo>>'"
        );
    }

    #[test]
    fn variable_names_are_case_sensitive() {
        let err = render("app:{{.run.id}}", &vars()).unwrap_err();
        assert!(matches!(err, TemplateError::UnknownVariable { name, .. } if name == ".run.id"));
    }

    #[test]
    fn rejects_variables_without_value() {
        let vars = RunVars {
            registry: None,
            commit: None,
            branch: None,
            ..vars()
        };
        let err = render("<<.Run.Registry>>/app", &vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template variable '.Run.Registry' has no value: \
             no registry is configured in '<<.Run.Registry>>/app'"
        );
        for name in [".Run.Commit", ".Run.Branch"] {
            let err = render(&format!("app:<<{name}>>"), &vars).unwrap_err();
            assert!(
                matches!(&err, TemplateError::MissingValue { name: n, .. } if n == name),
                "{err}"
            );
        }
    }

    #[test]
    fn rejects_unterminated_delimiters() {
        let err = render("app:<<.Run.ID", &vars()).unwrap_err();
        assert_eq!(err.to_string(), "unterminated '<<' in 'app:<<.Run.ID'");
        let err = render("app:{{.Run.ID>>", &vars()).unwrap_err();
        assert_eq!(err.to_string(), "unterminated '{{' in 'app:{{.Run.ID>>'");
    }

    #[test]
    fn earliest_delimiter_wins() {
        let err = render("app:{{.Run.ID}}-<<", &vars()).unwrap_err();
        assert_eq!(err.to_string(), "unterminated '<<' in 'app:{{.Run.ID}}-<<'");
    }
}
