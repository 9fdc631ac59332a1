//! Names that credentials go by.

use serde::{Deserialize, Serialize};

/// The username that goes with run credentials.
pub const RUN_USERNAME: &str = "kiln-run";

/// A token's name: what `docker login -u` takes and what `kiln token revoke` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenName(String);

impl TokenName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenName {
    type Error = String;

    fn try_from(s: String) -> Result<TokenName, String> {
        let valid = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(format!(
                "invalid token name '{s}': use up to 64 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ));
        }
        if s == RUN_USERNAME {
            return Err(format!("'{s}' is reserved for build runs' credentials"));
        }
        Ok(TokenName(s))
    }
}

impl From<TokenName> for String {
    fn from(n: TokenName) -> String {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(TokenName::try_from("ci-bot.1".to_string()).is_ok());
        for bad in ["", "-x", "a b", "kiln-run", &"x".repeat(65)] {
            assert!(TokenName::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
