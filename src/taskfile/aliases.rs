//! Aliases (task files of version v1.1.0 and later, acr-tasks §5.3): `$ID`, `$Registry`, …,
//! custom `alias.values` and `alias.src` files, substituted textually before templating.
//!
//! Unlike ACR, `alias.src` reads only files of the context (never URLs), and the image aliases
//! ACR maps to Microsoft images (`acr`, `az`, `cssc`) are refused unless the file defines them.

use std::collections::BTreeMap;

/// The predefined aliases: each stands for the run variable of the same name.
const PREDEFINED: &[&str] = &[
    "ID",
    "SharedVolume",
    "Registry",
    "RegistryName",
    "Date",
    "OS",
    "Architecture",
    "Commit",
    "Branch",
];

/// ACR's image aliases that name Microsoft images Kiln does not provide.
pub(crate) const MICROSOFT_IMAGE_ALIASES: &[&str] = &["acr", "az", "cssc"];

/// Whether aliases apply: ACR compares the first unindented `version:` as a string.
pub(crate) fn aliases_enabled(text: &str) -> bool {
    find_version(text).is_some_and(|v| v.to_ascii_lowercase().as_str() >= "v1.1.0")
}

/// The value of the first unindented `version:` line, unquoted.
pub(crate) fn find_version(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("version:")?;
        let value = value.split(" #").next().unwrap_or("").trim();
        Some(value.trim_matches(['"', '\'']).to_owned())
    })
}

/// Cuts the unindented `alias:` block out of `text`, leaving blank lines so that positions
/// in the rest of the file do not move. Returns the rest, the block and its first line.
pub(crate) fn cut_alias_block(text: &str) -> (String, Option<(String, usize)>) {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.starts_with("alias:") || l.starts_with("alias :"))
    else {
        return (text.to_owned(), None);
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with(|c: char| !c.is_whitespace() && c != '#'))
        .map_or(lines.len(), |i| start + 1 + i);
    let block = lines[start..end].join("\n");
    let rest: Vec<&str> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if (start..end).contains(&i) { "" } else { l })
        .collect();
    (rest.join("\n"), Some((block, start + 1)))
}

/// Whether `name` may be an alias key.
pub(crate) fn valid_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every alias: predefined, then each source file in order, then inline values (later wins).
pub(crate) fn resolve(
    sources: &[BTreeMap<String, String>],
    values: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut aliases: BTreeMap<String, String> = PREDEFINED
        .iter()
        .map(|name| (name.to_string(), format!("{{{{.Run.{name}}}}}")))
        .collect();
    for map in sources.iter().chain([values]) {
        aliases.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    aliases
}

/// Replaces `<directive>name` by its alias; `<directive><directive>` is a literal directive and
/// an unknown name is left as written (shell variables such as `$HOME` stay).
pub(crate) fn substitute(
    text: &str,
    aliases: &BTreeMap<String, String>,
    directive: char,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != directive {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&directive) {
            chars.next();
            out.push(directive);
            continue;
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if !n.is_ascii_alphanumeric() {
                break;
            }
            name.push(n);
            chars.next();
        }
        match aliases.get(&name) {
            Some(value) => out.push_str(value),
            None => {
                out.push(directive);
                out.push_str(&name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_predefined_custom_and_escaped() {
        let values = BTreeMap::from([("repo".to_owned(), "tools".to_owned())]);
        let aliases = resolve(&[], &values);
        assert_eq!(
            substitute("$Registry/$repo:$ID $$HOME $HOME", &aliases, '$'),
            "{{.Run.Registry}}/tools:{{.Run.ID}} $HOME $HOME"
        );
        assert_eq!(substitute("🐳repo-🐳🐳", &aliases, '🐳'), "tools-🐳");
    }

    #[test]
    fn later_sources_and_inline_values_win() {
        let first = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let second = BTreeMap::from([("a".to_owned(), "2".to_owned())]);
        assert_eq!(
            resolve(&[first.clone(), second.clone()], &BTreeMap::new())["a"],
            "2"
        );
        let inline = BTreeMap::from([("a".to_owned(), "3".to_owned())]);
        assert_eq!(resolve(&[first, second], &inline)["a"], "3");
        assert_eq!(resolve(&[], &BTreeMap::new())["ID"], "{{.Run.ID}}");
    }

    #[test]
    fn the_alias_block_is_cut_keeping_lines() {
        let text = "version: v1.1.0\nalias:\n  values:\n    a: b\nsteps:\n  - cmd: x\n";
        let (rest, block) = cut_alias_block(text);
        assert_eq!(rest, "version: v1.1.0\n\n\n\nsteps:\n  - cmd: x\n");
        assert_eq!(block, Some(("alias:\n  values:\n    a: b".to_owned(), 2)));
        assert!(aliases_enabled(text));
        assert!(!aliases_enabled("version: v1.0.0\n"));
        assert!(!aliases_enabled("steps: []\n"));
    }
}
