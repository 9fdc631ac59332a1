//! What can be done to repositories, and by which roles: the vocabulary of the access model.

use std::fmt;

/// What can be done to a repository.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The word Docker's token protocol uses in scopes (`repository:app:pull,push`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's role. A token may hold several user roles; `worker` stands alone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Role {
    Pull,
    Push,
    Delete,
    Owner,
    Worker,
    /// Create, change and delete saved tasks (and see repositories, as pull does). Running a
    /// task still needs push rights on what it pushes.
    Tasks,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pull => "pull",
            Role::Push => "push",
            Role::Delete => "delete",
            Role::Owner => "owner",
            Role::Worker => "worker",
            Role::Tasks => "tasks",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "pull" => Some(Role::Pull),
            "push" => Some(Role::Push),
            "delete" => Some(Role::Delete),
            "owner" => Some(Role::Owner),
            "worker" => Some(Role::Worker),
            "tasks" => Some(Role::Tasks),
            _ => None,
        }
    }

    /// The repository actions the role allows.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Role::Pull => &[Action::Pull],
            Role::Push => &[Action::Pull, Action::Push],
            Role::Delete => &[Action::Pull, Action::Delete],
            Role::Owner => &Action::ALL,
            Role::Worker => &[],
            Role::Tasks => &[Action::Pull],
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Role, String> {
        s.parse()
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| {
            format!("unknown role '{s}': use pull, push, delete, owner, worker or tasks")
        })
    }
}

impl From<Role> for &'static str {
    fn from(r: Role) -> &'static str {
        r.as_str()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repository name pattern: `*` matches any run of characters, `/` included, so `app/*`
/// covers `app/web` and `app/web/debug`, and `*` covers everything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPattern(String);

impl RepoPattern {
    pub fn any() -> RepoPattern {
        RepoPattern("*".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, repo: &str) -> bool {
        glob_match(self.0.as_bytes(), repo.as_bytes())
    }
}

impl TryFrom<String> for RepoPattern {
    type Error = String;

    fn try_from(s: String) -> Result<RepoPattern, String> {
        let valid = !s.is_empty()
            && s.len() <= 255
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*".contains(&b));
        if valid {
            Ok(RepoPattern(s))
        } else {
            Err(format!(
                "invalid repository pattern '{s}': use lowercase repository names with '*' \
                 as a wildcard, e.g. 'app/*'"
            ))
        }
    }
}

impl std::str::FromStr for RepoPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<RepoPattern, String> {
        RepoPattern::try_from(s.to_string())
    }
}

impl From<RepoPattern> for String {
    fn from(p: RepoPattern) -> String {
        p.0
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*`-only glob matching, linear in practice: patterns are short and hold few stars.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Actions allowed on the repositories a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub pattern: RepoPattern,
    pub actions: Vec<Action>,
}

impl Grant {
    pub fn new(pattern: RepoPattern, actions: &[Action]) -> Grant {
        Grant {
            pattern,
            actions: actions.to_vec(),
        }
    }

    pub(super) fn permits(&self, repo: &str, action: Action) -> bool {
        self.actions.contains(&action) && self.pattern.matches(repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> RepoPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_across_slashes() {
        assert!(pat("*").matches("a/b/c"));
        assert!(pat("app/*").matches("app/web"));
        assert!(pat("app/*").matches("app/web/debug"));
        assert!(!pat("app/*").matches("app"));
        assert!(!pat("app/*").matches("other/x"));
        assert!(pat("app").matches("app"));
        assert!(!pat("app").matches("app2"));
        assert!(pat("*/web").matches("team/web"));
        assert!(pat("a*b*c").matches("axxbyyc"));
        assert!(!pat("a*b*c").matches("axxbyy"));
        assert!("App/*".parse::<RepoPattern>().is_err());
        assert!("".parse::<RepoPattern>().is_err());
    }
}
