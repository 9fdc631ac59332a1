//! A task's values (`--set`, `--set-secret`, `--values`) and the `.Values.*` references in a
//! build task's image names. Precedence is ACR's: a `--set` beats the values file, and a
//! run's `--set` beats the task's.
//!
//! Only `.Values.*` is rendered here; every other variable is left for the run's own
//! templating (`<<.Run.ID>>`), which checks it.

use std::collections::BTreeMap;

use serde_norway::Value;

/// The values a task run sees.
#[derive(Debug, Default)]
pub struct Values {
    set: BTreeMap<String, String>,
    file: Option<Value>,
}

impl Values {
    /// `set` over the parsed `file`. A file that is not a YAML mapping is an error naming why.
    pub fn new(set: BTreeMap<String, String>, file: Option<&str>) -> Result<Values, String> {
        let file = file.map(parse_file).transpose()?;
        Ok(Values { set, file })
    }

    /// A dotted name's value: `--set` keys as written, else a path into the values file.
    fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.set.get(name) {
            return Some(v.clone());
        }
        let mut at = self.file.as_ref()?;
        for part in name.split('.') {
            at = at.as_mapping()?.get(part)?;
        }
        match at {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Checks a `--values` file: YAML whose top level is a mapping.
pub fn parse_file(text: &str) -> Result<Value, String> {
    let value: Value =
        serde_norway::from_str(text).map_err(|e| format!("invalid --values file: {e}"))?;
    match value {
        Value::Mapping(_) => Ok(value),
        Value::Null => Ok(Value::Mapping(Default::default())),
        _ => {
            Err("invalid --values file: its top level must be a mapping of names to values".into())
        }
    }
}

/// Replaces each `<<.Values.x>>` or `{{.Values.x}}` in `template`. `missing` is used for a
/// value that is not set; without it, an unset value is an error naming it.
pub fn render_values(
    template: &str,
    values: &Values,
    missing: Option<&str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    loop {
        let next = [("<<", ">>"), ("{{", "}}")]
            .into_iter()
            .filter_map(|(open, close)| rest.find(open).map(|at| (at, open, close)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, open, close)) = next else {
            out.push_str(rest);
            return Ok(out);
        };
        let inner_start = at + open.len();
        let Some(len) = rest[inner_start..].find(close) else {
            // Unterminated: the run's templating reports it.
            out.push_str(rest);
            return Ok(out);
        };
        let inner = rest[inner_start..inner_start + len].trim();
        let end = inner_start + len + close.len();
        match inner.strip_prefix(".Values.") {
            Some(name) => {
                let value = values.get(name).or_else(|| missing.map(str::to_string));
                let value = value.ok_or_else(|| {
                    format!("value '{name}' is not set: '{template}' needs it (give it with --set {name}=...)")
                })?;
                out.push_str(&rest[..at]);
                out.push_str(&value);
            }
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(set: &[(&str, &str)], file: Option<&str>) -> Values {
        let set = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Values::new(set, file).unwrap()
    }

    #[test]
    fn values_render_and_other_variables_stay() {
        let v = values(&[("tag", "v2")], Some("env: prod\nimage:\n  name: web\n"));
        assert_eq!(
            render_values(
                "{{.Values.image.name}}:<< .Values.tag >>-<<.Run.ID>>",
                &v,
                None
            ),
            Ok("web:v2-<<.Run.ID>>".into())
        );
        assert_eq!(
            render_values("a:{{.Values.env}}", &v, None),
            Ok("a:prod".into())
        );
    }

    #[test]
    fn set_beats_the_file() {
        let v = values(&[("env", "staging")], Some("env: prod\n"));
        assert_eq!(
            render_values("<<.Values.env>>", &v, None),
            Ok("staging".into())
        );
    }

    #[test]
    fn a_missing_value_is_named() {
        let v = values(&[], None);
        let err = render_values("app:<<.Values.tag>>", &v, None).unwrap_err();
        assert!(err.contains("value 'tag' is not set"), "{err}");
        assert_eq!(
            render_values("app:<<.Values.tag>>", &v, Some("x")),
            Ok("app:x".into())
        );
    }

    #[test]
    fn values_files_must_be_mappings() {
        assert!(parse_file("- a\n- b\n").is_err());
        assert!(parse_file("a: [").is_err());
        assert!(parse_file("").is_ok());
    }
}
