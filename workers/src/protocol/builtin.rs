//! The one place that decides which `cmd` commands Kiln runs itself instead of in a
//! container: ACR's `acr` image alias and Kiln's own CLI (`acr purge …`, `kiln purge …`,
//! `kiln scan …`).
//! Task files, `--cmd` steps and tasks all ask here.

/// A command Kiln runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtin {
    /// `acr purge …` / `kiln purge …`: the words after `purge`.
    Purge(Vec<String>),
    /// `kiln scan …`: the words after `scan`. ACR has no `acr scan`, so only `kiln`'s.
    Scan(Vec<String>),
}

/// The tools whose commands may be built in: ACR's `acr` alias and `kiln`.
const TOOLS: &[&str] = &["acr", "kiln"];

/// The built-in command `words` (a command line split as a shell would) names, if any.
pub fn builtin_command(words: &[String]) -> Option<Builtin> {
    match words {
        [tool, verb, rest @ ..] if TOOLS.contains(&tool.as_str()) && verb == "purge" => {
            Some(Builtin::Purge(rest.to_vec()))
        }
        [tool, verb, rest @ ..] if tool == "kiln" && verb == "scan" => {
            Some(Builtin::Scan(rest.to_vec()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        shell_words::split(line).unwrap()
    }

    #[test]
    fn acr_and_kiln_purge_are_built_in_with_their_arguments() {
        assert_eq!(
            builtin_command(&words("acr purge --filter 'app/.*:.*' --ago 30d")),
            Some(Builtin::Purge(words("--filter app/.*:.* --ago 30d")))
        );
        assert_eq!(
            builtin_command(&words("kiln purge")),
            Some(Builtin::Purge(Vec::new()))
        );
        assert_eq!(
            builtin_command(&words("kiln scan --all --severity-threshold critical")),
            Some(Builtin::Scan(words("--all --severity-threshold critical")))
        );
        for other in [
            "acr tag list",
            "docker purge",
            "busybox acr purge",
            "acr",
            "acr scan app:v1",
            "",
        ] {
            assert_eq!(builtin_command(&words(other)), None, "{other}");
        }
    }
}
