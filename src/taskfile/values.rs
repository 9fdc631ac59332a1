//! Values for `.Values.*` (acr-tasks §3.6): `--values FILE`, `--set k=v` and `--set-secret
//! k=v`. A `--set` key beats the values file; a secret is templated like any value but its
//! text is masked in every log.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_worker::protocol::Secret;

/// The values a task file is rendered with.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub plain: BTreeMap<String, String>,
    pub secret: BTreeMap<String, Secret>,
}

/// Values that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuesError {
    #[error("invalid value '{0}': expected key=value")]
    NotAPair(String),
    #[error("invalid value name '{0}': use letters, digits, '_' and '-' (and '.' between names)")]
    BadKey(String),
    #[error("values file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("value '{0}' is given both with --set and --set-secret")]
    Both(String),
}

/// Parses `k=v` entries (the value may contain `=`); a later entry for a key wins.
pub fn parse_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>, ValuesError> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| ValuesError::NotAPair(pair.clone()))?;
        check_key(key)?;
        map.insert(key.to_owned(), value.to_owned());
    }
    Ok(map)
}

fn check_key(key: &str) -> Result<(), ValuesError> {
    let ok = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    ok.then_some(())
        .ok_or_else(|| ValuesError::BadKey(key.to_owned()))
}

impl Values {
    /// Reads `values_file` (if any) and applies `set` over it; `set_secret` keys are secret.
    pub fn load(
        values_file: Option<&Path>,
        set: &[String],
        set_secret: &[String],
    ) -> Result<Values, ValuesError> {
        let file = match values_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ValuesError::File {
                    path: path.display().to_string(),
                    reason: if e.kind() == std::io::ErrorKind::NotFound {
                        "no such file".to_owned()
                    } else {
                        e.to_string()
                    },
                })?;
                Some((path.display().to_string(), text))
            }
        };
        let file = file.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
        Values::from_parts(file, &parse_pairs(set)?, &parse_pairs(set_secret)?)
    }

    /// Merges a values file's text (named for errors) with `--set` and `--set-secret` maps.
    pub fn from_parts(
        file: Option<(&str, &str)>,
        set: &BTreeMap<String, String>,
        set_secret: &BTreeMap<String, String>,
    ) -> Result<Values, ValuesError> {
        let mut plain = BTreeMap::new();
        if let Some((path, text)) = file {
            let bad = |reason: String| ValuesError::File {
                path: path.to_owned(),
                reason,
            };
            let doc: serde_norway::Value =
                serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
            match doc {
                serde_norway::Value::Null => {}
                serde_norway::Value::Mapping(map) => flatten("", &map, &mut plain).map_err(bad)?,
                _ => return Err(bad("expected a map of names to values".into())),
            }
        }
        plain.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(key) = set_secret.keys().find(|k| set.contains_key(*k)) {
            return Err(ValuesError::Both(key.clone()));
        }
        for key in set_secret.keys() {
            plain.remove(key);
        }
        let secret = set_secret
            .iter()
            .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
            .collect();
        Ok(Values { plain, secret })
    }

    /// Every value by name, as templates see them.
    pub fn all(&self) -> BTreeMap<String, String> {
        let mut all = self.plain.clone();
        all.extend(
            self.secret
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned())),
        );
        all
    }
}

/// Nested maps become dotted keys (`a: {b: 1}` is `a.b`), as `.Values.a.b` reads them.
fn flatten(
    prefix: &str,
    map: &serde_norway::Mapping,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    use serde_norway::Value;
    for (key, value) in map {
        let key = match key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err("value names must be strings".into()),
        };
        let full = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Null => {}
            Value::String(s) => {
                out.insert(full, s.clone());
            }
            Value::Number(n) => {
                out.insert(full, n.to_string());
            }
            Value::Bool(b) => {
                out.insert(full, b.to_string());
            }
            Value::Mapping(inner) => flatten(&full, inner, out)?,
            _ => {
                return Err(format!(
                    "value '{full}' is a list; Kiln takes text, numbers, booleans and maps"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[&str]) -> BTreeMap<String, String> {
        parse_pairs(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn set_beats_the_values_file_and_nested_maps_flatten() {
        let file = "tag: v1\nimage:\n  name: web\n  port: 80\nempty: null\n";
        let values = Values::from_parts(
            Some(("v.yaml", file)),
            &pairs(&["tag=v2", "x=a=b"]),
            &pairs(&["pw=s"]),
        )
        .unwrap();
        assert_eq!(values.plain["tag"], "v2");
        assert_eq!(values.plain["x"], "a=b");
        assert_eq!(values.plain["image.name"], "web");
        assert_eq!(values.plain["image.port"], "80");
        assert!(!values.plain.contains_key("empty"));
        assert_eq!(values.all()["pw"], "s");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let strs = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_pairs(&strs(&["novalue"])),
            Err(ValuesError::NotAPair("novalue".into()))
        );
        assert!(matches!(
            parse_pairs(&strs(&["a b=1"])),
            Err(ValuesError::BadKey(_))
        ));
        let err = Values::load(Some(Path::new("/nonexistent/values.yaml")), &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "values file /nonexistent/values.yaml: no such file"
        );
        let err = Values::from_parts(None, &pairs(&["a=1"]), &pairs(&["a=2"])).unwrap_err();
        assert_eq!(err, ValuesError::Both("a".into()));
        let err = Values::from_parts(
            Some(("v.yaml", "l: [1]")),
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("'l' is a list"), "{err}");
    }
}
