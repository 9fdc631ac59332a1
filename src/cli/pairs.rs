//! `NAME=VALUE` flags (`--set`, `--set-secret`, `--arg`, ...), shared by `kiln run` and
//! `kiln task`.

use std::collections::BTreeMap;

use kiln_worker::protocol::Secret;

use super::CliError;

/// `NAME=VALUE` flags as a map; a flag without `=` or a name is an error naming it.
pub(super) fn pairs(flag: &str, raw: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(CliError::Input(format!(
                "invalid {flag} '{pair}': expected NAME=VALUE"
            ))),
        })
        .collect()
}

/// `pairs`, for values that must never show.
pub(super) fn secrets(flag: &str, raw: &[String]) -> Result<BTreeMap<String, Secret>, CliError> {
    Ok(pairs(flag, raw)?
        .into_iter()
        .map(|(k, v)| (k, Secret::new(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_need_a_name_and_an_equals_sign() {
        let ok = pairs("--set", &["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(ok["b"], "x=y");
        assert_eq!(ok["c"], "");
        for bad in ["a", "=1"] {
            let err = pairs("--set", &[bad.into()]).unwrap_err();
            assert!(err.to_string().contains("invalid --set"), "{err}");
        }
        assert!(pairs("--set", &["=v".into()]).is_err());
    }
}
