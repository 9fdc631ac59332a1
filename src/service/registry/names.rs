//! Validated names from request paths: repository names, tags, manifest references and
//! digests, following the distribution spec's grammar.

use std::fmt;

use super::{Digest, RegistryError};

/// A repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for RepoName {
    type Error = RegistryError;

    fn try_from(s: &str) -> Result<RepoName, RegistryError> {
        if s.len() <= 255 && s.split('/').all(valid_component) {
            Ok(RepoName(s.to_string()))
        } else {
            Err(RegistryError::NameInvalid(s.to_string()))
        }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or any run of `-`.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            let ok = separator.is_empty()
                || matches!(separator.as_str(), "." | "_" | "__")
                || separator.bytes().all(|s| s == b'-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if b"._-".contains(&b) {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Tag {
    type Error = RegistryError;

    fn try_from(s: &str) -> Result<Tag, RegistryError> {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let valid = matches!(s.as_bytes().first(), Some(&b) if word(b))
            && s.len() <= 128
            && s.bytes().all(|b| word(b) || b == b'.' || b == b'-');
        if valid {
            Ok(Tag(s.to_string()))
        } else {
            Err(RegistryError::TagInvalid(s.to_string()))
        }
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl TryFrom<&str> for Reference {
    type Error = RegistryError;

    fn try_from(s: &str) -> Result<Reference, RegistryError> {
        if s.contains(':') {
            parse_digest(s).map(Reference::Digest)
        } else {
            Tag::try_from(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t.as_str()),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// A digest Kiln can verify: sha256 or sha512. A well-formed digest of another algorithm is
/// `Unsupported`; anything else is `DigestInvalid`.
pub fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "my-org/app_1",
            "a__b",
            "a---b/c.d",
            "x0/y1/z2",
        ] {
            assert!(RepoName::try_from(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "", "A", "a//b", "/a", "a/", "-a", "a-", "a___b", "a._b", "a..b", "a b", &long,
        ] {
            assert!(RepoName::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        assert!(Tag::try_from("latest").is_ok());
        assert!(Tag::try_from("_v1.2-rc.3").is_ok());
        assert!(Tag::try_from(&*"a".repeat(128)).is_ok());
        for bad in ["", ".a", "-a", "a/b", "a:b", &*"a".repeat(129)] {
            assert!(Tag::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        let hex = "a".repeat(64);
        assert!(matches!(
            Reference::try_from(format!("sha256:{hex}").as_str()),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(
            Reference::try_from(format!("sha512:{hex}{hex}").as_str()),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(Reference::try_from("v1"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::try_from(format!("md5:{}", &hex[..32]).as_str()),
            Err(RegistryError::Unsupported(_))
        ));
        assert!(matches!(
            Reference::try_from("sha256:xyz"),
            Err(RegistryError::DigestInvalid(_))
        ));
        assert!(matches!(
            Reference::try_from("bad:"),
            Err(RegistryError::DigestInvalid(_))
        ));
    }
}
