//! Debian-style control paragraphs (`Key: value`, continuation lines start with a space,
//! paragraphs end at a blank line), as dpkg's status and Python's METADATA write them.

/// The paragraphs of `text`, each as its fields' first lines.
pub fn paragraphs(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    text.split("\n\n")
        .map(fields)
        .filter(|fields| !fields.is_empty())
}

/// A paragraph's fields (continuation lines skipped: no field read here spans lines).
pub fn fields(paragraph: &str) -> Vec<(&str, &str)> {
    paragraph
        .lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim(), value.trim()))
        .collect()
}

/// The value of `key` (case-insensitive, as RFC 822 headers are).
pub fn get<'a>(fields: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}
