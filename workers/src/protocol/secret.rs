//! Secrets and the registry credentials that carry them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A string that never shows itself in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Credentials for one registry, handed to the worker that pushes there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryCredential {
    pub registry: String,
    pub username: String,
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let c = RegistryCredential {
            registry: "r".into(),
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
