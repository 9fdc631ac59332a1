//! `--filter <repoRegex>:<tagRegex>`, split and matched as `acr purge` does.
//!
//! Split: on every `:` that is not right after `(?` plus up to five of `imsU-` (a non-capture
//! or flag group), not right after `[` plus any `^` (`[[:alpha:]]`, `[^:]`) and not right
//! before `]`; exactly two non-empty parts must result (ACR's
//! `(?<!\(\?[imsU-]{0,5}|\[*\^*\[\^*):(?!\]\]*)`).
//! Match: the repository regex must match the whole name; the tag regex may match anywhere
//! (`app:v1` also matches tag `xv1y`: use `^v1$`). Unlike ACR's `"^"+repo+"$"`, the repository
//! regex is wrapped as `^(?:repo)$`, so `app|web` does not reach `app-old` or `myweb`.

use fancy_regex::{Regex, RegexBuilder};

/// Bound on backtracking per match: the counterpart of ACR's regex match timeout, so a
/// pathological filter fails the purge instead of hanging it.
const BACKTRACK_LIMIT: usize = 1_000_000;

/// One `--filter`: a repository regex and a tag regex.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    repository: Regex,
    tag: Regex,
    tag_source: String,
}

impl Filter {
    /// The filter as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the repository regex matches the whole repository name.
    pub fn reaches(&self, repository: &str) -> Result<bool, String> {
        self.repository
            .is_match(repository)
            .map_err(|e| format!("filter '{}' on repository {repository}: {e}", self.text))
    }

    /// The unanchored tag regex, as written.
    pub fn tag_regex(&self) -> &str {
        &self.tag_source
    }
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (repo, tag) = split_filter(text)?;
        Ok(Filter {
            text: text.to_owned(),
            repository: compile(&format!("^(?:{repo})$"))
                .map_err(|e| format!("invalid repository regex '{repo}': {e}"))?,
            tag: compile(tag).map_err(|e| format!("invalid tag regex '{tag}': {e}"))?,
            tag_source: tag.to_owned(),
        })
    }
}

fn compile(pattern: &str) -> Result<Regex, fancy_regex::Error> {
    RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
}

/// Splits `repo:tag` at ACR's split points (see the module doc), with ACR's error texts.
pub fn split_filter(text: &str) -> Result<(&str, &str), String> {
    let splits: Vec<usize> = text
        .char_indices()
        .filter(|&(at, c)| c == ':' && is_split_point(text, at))
        .map(|(at, _)| at)
        .collect();
    let [at] = splits[..] else {
        return Err(format!("unable to correctly parse filter flag '{text}'"));
    };
    let (repo, tag) = (&text[..at], &text[at + 1..]);
    if repo.is_empty() {
        return Err(format!("missing repository name/expression in '{text}'"));
    }
    if tag.is_empty() {
        return Err(format!("missing tag name/expression in '{text}'"));
    }
    Ok((repo, tag))
}

fn is_split_point(text: &str, colon: usize) -> bool {
    let before = &text[..colon];
    if text[colon + 1..].starts_with(']') {
        return false;
    }
    // `(?` followed by at most five group flags.
    let flags = before.len() - before.trim_end_matches(['i', 'm', 's', 'U', '-']).len();
    if flags <= 5 && before[..before.len() - flags].ends_with("(?") {
        return false;
    }
    // `[` followed by any number of `^`.
    !before.trim_end_matches('^').ends_with('[')
}

/// The tag regexes of the filters reaching one repository, OR-ed as ACR joins them.
#[derive(Debug, Clone, Default)]
pub struct TagMatcher {
    regexes: Vec<Regex>,
}

impl TagMatcher {
    /// Whether any of the tag regexes matches somewhere in `tag`.
    pub fn matches(&self, tag: &str) -> Result<bool, String> {
        for regex in &self.regexes {
            if regex
                .is_match(tag)
                .map_err(|e| format!("tag regex '{}' on tag {tag}: {e}", regex.as_str()))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Which repositories a list of filters reaches, and the tag matcher for each; with no
/// filters (allowed with `--untagged-only` only) every repository is reached.
pub fn reach(filters: &[Filter], repository: &str) -> Result<Option<TagMatcher>, String> {
    if filters.is_empty() {
        return Ok(Some(TagMatcher::default()));
    }
    let mut matcher = None::<TagMatcher>;
    for filter in filters {
        if filter.reaches(repository)? {
            // Kept as separate regexes rather than joined with `|`, so an inline flag in one
            // filter (`(?i)`) cannot leak into another.
            matcher
                .get_or_insert_with(TagMatcher::default)
                .regexes
                .push(filter.tag.clone());
        }
    }
    Ok(matcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> Filter {
        text.parse().unwrap()
    }

    #[test]
    fn splits_on_the_colon_outside_groups_and_classes() {
        assert_eq!(split_filter("app/web:.*").unwrap(), ("app/web", ".*"));
        assert_eq!(
            split_filter("(?:app|web):v1").unwrap(),
            ("(?:app|web)", "v1")
        );
        assert_eq!(
            split_filter("(?i:APP):(?i-s:v1)").unwrap(),
            ("(?i:APP)", "(?i-s:v1)")
        );
        assert_eq!(
            split_filter("app:[[:digit:]]+").unwrap(),
            ("app", "[[:digit:]]+")
        );
        assert_eq!(split_filter("app:[^:]+").unwrap(), ("app", "[^:]+"));
        assert_eq!(split_filter("repo:^$").unwrap(), ("repo", "^$"));
    }

    #[test]
    fn acr_errors_for_bad_splits() {
        for (text, why) in [
            ("app", "unable to correctly parse filter flag"),
            ("a:b:c", "unable to correctly parse filter flag"),
            (":v1", "missing repository name/expression"),
            ("app:", "missing tag name/expression"),
            ("app:(", "invalid tag regex '('"),
            ("a(:v1", "invalid repository regex 'a('"),
            ("a[:v1", "unable to correctly parse filter flag"),
        ] {
            let err = text.parse::<Filter>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn repository_is_anchored_as_a_whole_tag_is_not() {
        let f = filter("app|web:v1");
        assert!(f.reaches("app").unwrap() && f.reaches("web").unwrap());
        assert!(!f.reaches("app-old").unwrap() && !f.reaches("myweb").unwrap());
        let f = filter("app/.*:v1");
        assert!(f.reaches("app/web").unwrap() && !f.reaches("x/app/web").unwrap());
        let tags = reach(&[filter("app:v1")], "app").unwrap().unwrap();
        assert!(tags.matches("v1").unwrap() && tags.matches("xv1y").unwrap());
        assert!(!tags.matches("v2").unwrap());
        let exact = reach(&[filter("app:^v1$")], "app").unwrap().unwrap();
        assert!(!exact.matches("xv1y").unwrap());
    }

    #[test]
    fn several_filters_on_one_repository_are_ored_and_lookarounds_work() {
        let filters = [
            filter("app:^dev-"),
            filter("app|lib:(?i)^RC"),
            filter("lib:x"),
        ];
        let app = reach(&filters, "app").unwrap().unwrap();
        assert!(app.matches("dev-1").unwrap() && app.matches("rc1").unwrap());
        assert!(!app.matches("x").unwrap() && !app.matches("prod").unwrap());
        assert!(reach(&filters, "other").unwrap().is_none());
        let all_but_latest = reach(&[filter("app:^(?!latest$)")], "app")
            .unwrap()
            .unwrap();
        assert!(
            all_but_latest.matches("v1").unwrap() && !all_but_latest.matches("latest").unwrap()
        );
        let everything = reach(&[], "any").unwrap().unwrap();
        assert!(!everything.matches("v1").unwrap());
    }
}
