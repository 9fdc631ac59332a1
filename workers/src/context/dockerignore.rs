//! `.dockerignore` rules with Docker's exact semantics.
//!
//! Parsing follows `ignorefile.ReadAll` (docker CLI / BuildKit) and matching follows
//! `moby/patternmatcher`'s `MatchesOrParentMatches`, including its fast paths (a leading `**`
//! followed only by literal text is a plain suffix test, so `**foo` also matches `xfoo`).
//! Character classes and `\` escapes behave as in Go's `filepath.Match`, which is what the
//! regular expressions Docker builds from them mean for every sensible pattern.

use std::iter::Peekable;
use std::str::Chars;

use thiserror::Error;

/// A `.dockerignore` file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreError {
    /// A pattern is malformed.
    #[error("line {line}: invalid pattern `{pattern}`: {reason}")]
    BadPattern {
        /// 1-based line number.
        line: usize,
        /// The line as written (trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The parsed rules of one ignore file, in file order.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let Some(pattern) = normalize_line(line) else {
                continue;
            };
            let rule = Rule::compile(&pattern).map_err(|reason| IgnoreError::BadPattern {
                line: index + 1,
                pattern: line.trim().to_owned(),
                reason,
            })?;
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    /// Rules that exclude nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether `rel_path` (slash-separated, relative to the context root, no leading `./`) is
    /// left out of the build context. The context root itself (`""`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        !rel_path.is_empty()
            && self
                .last_match(rel_path)
                .is_some_and(|index| !self.rules[index].exception)
    }

    /// Whether walking into the excluded directory `dir_rel_path` is still needed because an
    /// exception (`!` rule) could re-include something under it. When this is false the walker
    /// can skip the whole tree, which keeps huge ignored folders (`node_modules`, build output)
    /// cheap. For a directory that is not excluded this is trivially true.
    pub fn may_reinclude_under(&self, dir_rel_path: &str) -> bool {
        if dir_rel_path.is_empty() {
            return true;
        }
        let Some(last) = self.last_match(dir_rel_path) else {
            return true;
        };
        if self.rules[last].exception {
            return true;
        }
        // Every rule up to `last` that matches the directory also matches everything below it
        // (through the parent check), and `last` overrides them all; so only a later exception
        // that can match some path under the directory can change the outcome there.
        let prefix = format!("{dir_rel_path}/");
        self.rules[last + 1..]
            .iter()
            .any(|rule| rule.exception && rule.matcher.can_match_under(&prefix))
    }

    /// The index of the last rule matching the path or one of its parents: with Docker's
    /// "later rules win" evaluation that rule alone decides.
    fn last_match(&self, rel_path: &str) -> Option<usize> {
        self.rules
            .iter()
            .rposition(|rule| rule.matches_self_or_parent(rel_path))
    }
}

/// Applies `ReadAll`'s and `patternmatcher.New`'s normalisation to one line; `None` for
/// comments and blank lines. The result keeps its `!` prefix.
fn normalize_line(line: &str) -> Option<String> {
    // Docker checks for comments before trimming, so "  # x" is a pattern, not a comment.
    if line.starts_with('#') {
        return None;
    }
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (exception, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let body = if body.is_empty() {
        String::new()
    } else {
        strip_leading_slash(go_clean(body))
    };
    let combined = if exception { format!("!{body}") } else { body };
    // patternmatcher cleans once more with the `!` still attached; that is what turns `!/`
    // into the illegal `!` and `/!foo` into an exception, so it is reproduced as is.
    Some(go_clean(combined.trim()))
}

/// Patterns are relative to the context root; Docker keeps a lone `/` (which then matches
/// nothing).
fn strip_leading_slash(pattern: String) -> String {
    match pattern.strip_prefix('/') {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => pattern,
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `..` cannot climb above the root of a rooted path.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// One pattern line.
#[derive(Debug, Clone)]
struct Rule {
    exception: bool,
    matcher: Matcher,
}

impl Rule {
    /// Compiles a normalised pattern (possibly `!`-prefixed).
    fn compile(pattern: &str) -> Result<Self, &'static str> {
        let (exception, body) = match pattern.strip_prefix('!') {
            Some("") => return Err("`!` must be followed by a pattern"),
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        Ok(Self {
            exception,
            matcher: Matcher::compile(body)?,
        })
    }

    /// `MatchesOrParentMatches` for a single pattern: the path itself or any of its parent
    /// directories matches, so `foo` excludes `foo/bar/baz`.
    fn matches_self_or_parent(&self, path: &str) -> bool {
        self.matcher.matches(path)
            || path
                .match_indices('/')
                .any(|(end, _)| self.matcher.matches(&path[..end]))
    }
}

/// How a pattern is matched; the literal forms mirror patternmatcher's fast paths, which are
/// not all equivalent to its regular expression (see the module docs).
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard at all.
    Exact(String),
    /// Literal text followed by a trailing `**` (the stored text excludes the `**`).
    Prefix(String),
    /// A leading `**` followed only by literal text (the stored text excludes the `**`).
    Suffix(String),
    /// Anything else.
    Tokens(Vec<Token>),
}

/// Which of patternmatcher's match types a pattern compiles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

impl Matcher {
    /// Mirrors patternmatcher's `compile`, validating the syntax the way Go's
    /// `filepath.Match` does.
    fn compile(pattern: &str) -> Result<Self, &'static str> {
        let mut tokens = Vec::new();
        let mut match_type = MatchType::Exact;
        let mut chars = pattern.chars().peekable();
        let mut first = true;
        while let Some(ch) = chars.next() {
            match ch {
                '*' if chars.next_if_eq(&'*').is_some() => {
                    // `**/` is treated as `**`.
                    chars.next_if_eq(&'/');
                    if chars.peek().is_none() {
                        tokens.push(Token::AnyTail);
                        match_type = if match_type == MatchType::Exact {
                            MatchType::Prefix
                        } else {
                            MatchType::Tokens
                        };
                    } else {
                        tokens.push(Token::AnyDirs);
                        match_type = MatchType::Tokens;
                    }
                    if first {
                        match_type = MatchType::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    match_type = MatchType::Tokens;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    match_type = MatchType::Tokens;
                }
                '\\' => {
                    let escaped = chars.next().ok_or("trailing backslash")?;
                    tokens.push(Token::Char(escaped));
                    match_type = MatchType::Tokens;
                }
                '[' => {
                    tokens.push(Token::Class(CharClass::parse(&mut chars)?));
                    match_type = MatchType::Tokens;
                }
                ']' => {
                    tokens.push(Token::Char(']'));
                    match_type = MatchType::Tokens;
                }
                other => tokens.push(Token::Char(other)),
            }
            first = false;
        }
        Ok(match match_type {
            MatchType::Exact => Self::Exact(pattern.to_owned()),
            MatchType::Prefix => {
                Self::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_owned())
            }
            MatchType::Suffix => {
                Self::Suffix(pattern.strip_prefix("**").unwrap_or(pattern).to_owned())
            }
            MatchType::Tokens => Self::Tokens(tokens),
        })
    }

    /// Whether the whole of `path` matches.
    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(text) => path == text,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            // `**/foo` must also match a top-level `foo`.
            Self::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path)
            }
            Self::Tokens(tokens) => {
                let states = run(tokens, path);
                states[final_state(tokens)]
            }
        }
    }

    /// Whether some path starting with `prefix` could match. Errs on the side of `true`: a
    /// false positive only costs a directory walk.
    fn can_match_under(&self, prefix: &str) -> bool {
        match self {
            Self::Exact(text) => text.starts_with(prefix),
            Self::Prefix(text) => text.starts_with(prefix) || prefix.starts_with(text.as_str()),
            Self::Suffix(_) => true,
            Self::Tokens(tokens) => {
                let states = run(tokens, prefix);
                states[..final_state(tokens)].contains(&true)
            }
        }
    }
}

/// One element of a compiled pattern.
#[derive(Debug, Clone)]
enum Token {
    /// A literal character.
    Char(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`.
    Class(CharClass),
    /// `**` with more pattern after it: any number of whole directories, i.e. `(.*/)?`.
    AnyDirs,
    /// `**` at the end of the pattern: anything at all, i.e. `.*`.
    AnyTail,
}

/// A `[...]` character class.
#[derive(Debug, Clone)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

const UNTERMINATED_CLASS: &str = "unterminated character class";

impl CharClass {
    /// Parses the class body after `[`, with the checks of Go's `filepath.Match`.
    fn parse(chars: &mut Peekable<Chars<'_>>) -> Result<Self, &'static str> {
        let negated = chars.next_if_eq(&'^').is_some();
        let mut ranges = Vec::new();
        loop {
            if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                return Ok(Self { negated, ranges });
            }
            let low = class_char(chars)?;
            let high = if chars.next_if_eq(&'-').is_some() {
                class_char(chars)?
            } else {
                low
            };
            // Go's filepath.Match accepts this, but the regular expression Docker builds
            // from it fails to compile, so the pattern is unusable there too.
            if low > high {
                return Err("character class range is out of order");
            }
            ranges.push((low, high));
        }
    }

    fn matches(&self, ch: char) -> bool {
        let inside = self
            .ranges
            .iter()
            .any(|&(low, high)| low <= ch && ch <= high);
        inside != self.negated
    }
}

/// One (possibly escaped) character of a class: Go's `getEsc`.
fn class_char(chars: &mut Peekable<Chars<'_>>) -> Result<char, &'static str> {
    let ch = match chars.next() {
        None => return Err(UNTERMINATED_CLASS),
        Some('-' | ']') => return Err("misplaced `-` or `]` in character class"),
        Some('\\') => chars.next().ok_or(UNTERMINATED_CLASS)?,
        Some(other) => other,
    };
    if chars.peek().is_none() {
        return Err(UNTERMINATED_CLASS);
    }
    Ok(ch)
}

/// Index of the accepting state in the state vector used by [`run`].
fn final_state(tokens: &[Token]) -> usize {
    2 * tokens.len()
}

/// Runs the pattern as an NFA over `input` and returns the live states: `2 * i` means "before
/// token `i`", `2 * i + 1` means "inside the `(.*/)?` of `AnyDirs` token `i`". Simulating all
/// states at once keeps matching linear however many `*` and `**` a pattern has.
fn run(tokens: &[Token], input: &str) -> Vec<bool> {
    let mut current = vec![false; 2 * tokens.len() + 2];
    current[0] = true;
    close(tokens, &mut current);
    let mut next = vec![false; current.len()];
    for ch in input.chars() {
        next.fill(false);
        for (index, token) in tokens.iter().enumerate() {
            if current[2 * index] || current[2 * index + 1] {
                step(token, index, ch, &mut next);
            }
        }
        close(tokens, &mut next);
        std::mem::swap(&mut current, &mut next);
        if !current.contains(&true) {
            break;
        }
    }
    current
}

/// Consumes `ch` from a live state at token `index`.
fn step(token: &Token, index: usize, ch: char, next: &mut [bool]) {
    let after = 2 * (index + 1);
    match token {
        Token::Char(expected) => next[after] |= ch == *expected,
        Token::AnyChar => next[after] |= ch != '/',
        Token::Class(class) => next[after] |= class.matches(ch),
        Token::Star => next[2 * index] |= ch != '/',
        Token::AnyTail => next[2 * index] = true,
        Token::AnyDirs => {
            next[2 * index + 1] = true;
            next[after] |= ch == '/';
        }
    }
}

/// Follows the empty transitions: `*`, `**` and `(.*/)?` may all match nothing.
fn close(tokens: &[Token], states: &mut [bool]) {
    for (index, token) in tokens.iter().enumerate() {
        let may_be_empty = matches!(token, Token::Star | Token::AnyDirs | Token::AnyTail);
        if may_be_empty && states[2 * index] {
            states[2 * (index + 1)] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).expect("valid ignore file")
    }

    /// (ignore file, path, excluded?)
    fn check_table(table: &[(&str, &str, bool)]) {
        for &(text, path, expected) in table {
            assert_eq!(
                rules(text).is_excluded(path),
                expected,
                "rules {text:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn exceptions_re_include() {
        check_table(&[
            ("*.md\n!README.md", "CHANGES.md", true),
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "docs/CHANGES.md", false),
            ("*.md\n!README.md", "main.rs", false),
            ("docs\n!docs/keep.txt", "docs", true),
            ("docs\n!docs/keep.txt", "docs/other.txt", true),
            ("docs\n!docs/keep.txt", "docs/keep.txt", false),
            ("docs\n!docs/keep.txt", "docs/sub/keep.txt", true),
            ("docs\n!docs/keep.txt", "docsx", false),
        ]);
    }

    #[test]
    fn double_star() {
        check_table(&[
            ("**/*.log", "a.log", true),
            ("**/*.log", "x/y/a.log", true),
            ("**/*.log", "a.log.txt", false),
            ("**/*.log", "logs.log/inner.txt", true),
            ("**", "anything", true),
            ("**", "deep/down/file", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/b/c", true),
            ("a/**/b", "ab", false),
            ("a/**/b", "x/a/b", false),
            ("a/**/b", "a/xb", false),
            ("**/foo", "foo", true),
            ("**/foo", "a/b/foo", true),
            ("**/foo", "afoo", false),
            // patternmatcher's suffix fast path: `**foo` is "ends with foo".
            ("**foo", "xfoo", true),
            ("**foo", "a/xfoo", true),
            ("foo/**", "foo/x", true),
            ("foo/**", "foo", false),
            ("foo**", "foobar/x", true),
            ("**/a/**", "x/a/y", true),
            ("**/a/**", "a/y", true),
            ("**/a/**", "x/ab/y", false),
            ("a/**/*.rs", "a/x/y/z.rs", true),
            ("a/**/*.rs", "a/z.rs", true),
            ("a/**/*.rs", "b/z.rs", false),
        ]);
    }

    #[test]
    fn single_character_wildcards_and_classes() {
        check_table(&[
            ("temp?", "temp1", true),
            ("temp?", "temp", false),
            ("temp?", "temp12", false),
            ("temp?", "temp1/file", true),
            ("temp?", "dir/temp1", false),
            ("*/temp*", "dir/temporary", true),
            ("*/temp*", "dir/sub/temporary", false),
            ("*", "top", true),
            ("*", "top/nested", true),
            ("[a-c].txt", "b.txt", true),
            ("[a-c].txt", "d.txt", false),
            ("[^a].txt", "b.txt", true),
            ("[^a].txt", "a.txt", false),
            ("[\\]].txt", "].txt", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("file.txt", "fileXtxt", false),
            ("a+b(c)", "a+b(c)", true),
        ]);
    }

    #[test]
    fn later_rules_win() {
        check_table(&[
            ("*.txt\n!keep.txt", "keep.txt", false),
            ("!keep.txt\n*.txt", "keep.txt", true),
            ("*.txt\n!keep.txt\nkeep.txt", "keep.txt", true),
            ("dir\n!dir\n", "dir/file", false),
            ("dir\n!dir/sub\ndir/sub/x", "dir/sub/x", true),
            ("dir\n!dir/sub\ndir/sub/x", "dir/sub/y", false),
        ]);
    }

    #[test]
    fn line_syntax() {
        check_table(&[
            ("# comment\n\n   \nfoo", "foo", true),
            ("# foo", "# foo", false),
            ("# foo", "foo", false),
            // Only a `#` in the first column starts a comment.
            ("  # foo", "# foo", true),
            ("  foo  \r\n", "foo", true),
            ("\u{feff}foo", "foo", true),
            ("/foo", "foo", true),
            ("/foo", "a/foo", false),
            ("!/foo\n*", "foo", true),
            ("*\n! /foo", "foo", false),
            ("./foo/", "foo", true),
            ("foo/../bar", "bar", true),
            ("foo/../bar", "foo", false),
            ("a//b", "a/b", true),
            ("/", "anything", false),
            // patternmatcher re-cleans with the `!` attached: `/!foo` ends up an exception.
            ("*\n/!foo", "foo", false),
        ]);
    }

    #[test]
    fn context_root_is_never_excluded() {
        assert!(!rules("**").is_excluded(""));
        assert!(!rules("*").is_excluded(""));
    }

    #[test]
    fn bad_patterns_name_their_line() {
        for (text, line) in [
            ("ok\n!", 2),
            ("[", 1),
            ("a\n\nb[", 3),
            ("[]", 1),
            ("[a-]", 1),
            ("[z-a]", 1),
            ("foo\\", 1),
            ("!/", 1),
        ] {
            match IgnoreRules::parse(text) {
                Err(IgnoreError::BadPattern { line: got, .. }) => {
                    assert_eq!(got, line, "{text:?}")
                }
                Ok(_) => panic!("{text:?} should be rejected"),
            }
        }
        let message = IgnoreRules::parse("x\n[abc").unwrap_err().to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("[abc"), "{message}");
    }

    #[test]
    fn empty_rules_exclude_nothing() {
        let empty = IgnoreRules::empty();
        assert!(!empty.is_excluded("a/b"));
        assert!(empty.may_reinclude_under("a"));
        assert!(!rules("# only comments\n\n").is_excluded("x"));
    }

    #[test]
    fn reinclusion_under_excluded_directories() {
        // (ignore file, excluded directory, may an exception apply below it?)
        let table = [
            ("node_modules", "node_modules", false),
            ("docs\n!docs/keep.txt", "docs", true),
            ("docs\n!docs/keep.txt", "docs/sub", false),
            ("!docs/keep.txt\ndocs", "docs", false),
            ("docs\n!docs/*.md", "docs", true),
            ("docs\n!docs/*.md", "docs/sub", false),
            ("node_modules\n!**/package.json", "node_modules", true),
            ("*\n!src/**/*.rs", "src", true),
            ("*\n!src/**/*.rs", "src/deep/er", true),
            ("*\n!src/**/*.rs", "target", false),
            ("*\n!src/**", "src", true),
            ("*\n!src/**", "lib", false),
            ("build\n!build?/x", "build", false),
            ("dir\n!dir/a/b", "dir/a", true),
        ];
        for (text, dir, expected) in table {
            let rules = rules(text);
            assert!(
                rules.is_excluded(dir),
                "{dir:?} should be excluded by {text:?}"
            );
            assert_eq!(
                rules.may_reinclude_under(dir),
                expected,
                "rules {text:?}, dir {dir:?}"
            );
        }
        assert!(rules("docs").may_reinclude_under("src"));
    }

    #[test]
    fn reinclusion_check_agrees_with_matching() {
        // Whenever a file below an excluded directory is included, the walker must have
        // been told to enter that directory.
        let texts = [
            "docs\n!docs/keep.txt",
            "*\n!src/**/*.rs",
            "a\n!a/*/c",
            "**/tmp\n!**/tmp/keep",
        ];
        let paths = [
            "docs/keep.txt",
            "src/a/b.rs",
            "a/b/c",
            "x/tmp/keep",
            "tmp/keep",
        ];
        for text in texts {
            let rules = rules(text);
            for path in paths {
                if rules.is_excluded(path) {
                    continue;
                }
                for (end, _) in path.match_indices('/') {
                    let dir = &path[..end];
                    assert!(
                        rules.may_reinclude_under(dir),
                        "{text:?}: {path:?} is included but {dir:?} would be skipped"
                    );
                }
            }
        }
    }

    #[test]
    fn go_clean_matches_go() {
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("a/", "a"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/..", "/"),
            ("/", "/"),
            ("/a/../../b", "/b"),
            ("!foo/../bar", "bar"),
        ] {
            assert_eq!(go_clean(input), expected, "{input:?}");
        }
    }
}
