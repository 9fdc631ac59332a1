//! Validated container image references such as `registry.io:5000/team/app:v1`.
//!
//! The grammar follows github.com/distribution/reference, hand-parsed so the
//! error can say which part of the reference is wrong:
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [ registry "/" ] path-component [ "/" path-component ]*
//! registry  := host [ ":" port ]
//! ```
//!
//! Unlike Docker, a reference without a registry is not rewritten to
//! `docker.io/library/...`: it keeps `registry() == None` so Kiln can later
//! apply its own default with [`ImageRef::with_default_registry`].

use std::fmt;
use std::str::FromStr;

/// Longest allowed name (registry plus repository), as in the reference grammar.
const MAX_NAME_LEN: usize = 255;
/// Longest allowed tag.
const MAX_TAG_LEN: usize = 128;
/// Docker treats a first path component spelled exactly like this as a registry host.
const LOCALHOST: &str = "localhost";

/// A parsed and validated image reference: `[registry/]repository[:tag][@digest]`.
///
/// Serializes as its canonical string and deserializes by parsing one, so an
/// invalid reference can never be read from configuration or the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// An image reference (or registry host) that does not follow the reference grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{input}': {kind}")]
pub struct ImageRefError {
    /// The text that was rejected.
    pub input: String,
    /// What is wrong with it.
    pub kind: ImageRefErrorKind,
}

/// Why an image reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefErrorKind {
    /// The reference is the empty string.
    #[error("reference is empty")]
    Empty,
    /// Nothing precedes the tag or digest, as in `:v1`.
    #[error("repository name is missing")]
    MissingRepository,
    /// A path component would be valid if it were lowercase.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// Two consecutive slashes, or a leading or trailing slash.
    #[error(
        "repository name has an empty path component (check for '//' or a leading or trailing '/')"
    )]
    EmptyPathComponent,
    /// A path component breaks the grammar.
    #[error(
        "path component '{0}' must be lowercase letters and digits, \
         separated by '.', '_', '__' or dashes"
    )]
    InvalidPathComponent(String),
    /// Registry plus repository is too long.
    #[error("name is {0} characters long; the maximum is 255")]
    NameTooLong(usize),
    /// The registry host is not a host name, IPv4 or bracketed IPv6 address.
    #[error("registry host '{0}' is not a valid host name or IP address")]
    InvalidRegistryHost(String),
    /// The registry port is not a number.
    #[error("registry port '{0}' must be a number (a tag cannot contain '/')")]
    InvalidRegistryPort(String),
    /// A default registry that Docker would not recognize as a registry.
    #[error("registry '{0}' must contain '.' or ':' or be 'localhost', otherwise it reads as part of the repository")]
    UnrecognizedRegistry(String),
    /// `name:` with nothing after the colon.
    #[error("tag is empty")]
    EmptyTag,
    /// The tag is longer than 128 characters.
    #[error("tag is {0} characters long; the maximum is 128")]
    TagTooLong(usize),
    /// The tag contains characters outside `[A-Za-z0-9_.-]` or starts with '.' or '-'.
    #[error(
        "tag '{0}' must start with a letter, digit or '_' \
         and contain only letters, digits, '_', '.' and '-'"
    )]
    InvalidTag(String),
    /// The digest is not `algorithm:hex`.
    #[error("digest '{0}' must look like 'sha256:' followed by 64 lowercase hex digits")]
    InvalidDigest(String),
    /// The digest algorithm is not one registries accept.
    #[error("digest algorithm '{0}' is not supported (use sha256, sha384 or sha512)")]
    UnsupportedDigestAlgorithm(String),
}

impl ImageRef {
    /// Parses and validates `s` as an image reference.
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        parse_reference(s).map_err(|kind| ImageRefError {
            input: s.to_owned(),
            kind,
        })
    }

    /// Checks that `registry` can serve as [`ImageRef::with_default_registry`]'s
    /// argument: a valid host with optional port that Docker would also read
    /// as a registry (it contains '.' or ':' or is `localhost`).
    ///
    /// Call this where the default registry is configured, so bad
    /// configuration fails at startup rather than producing unparseable names.
    pub fn validate_registry(registry: &str) -> Result<(), ImageRefError> {
        let result = if looks_like_registry(registry) {
            validate_registry(registry)
        } else {
            Err(ImageRefErrorKind::UnrecognizedRegistry(registry.to_owned()))
        };
        result.map_err(|kind| ImageRefError {
            input: registry.to_owned(),
            kind,
        })
    }

    /// The registry host (with port, if any), or `None` when the reference names none.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path, e.g. `team/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`algorithm:hex`), if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Prefix the default registry when the reference names none (as ACR does
    /// for quick builds). The first path component counts as a registry host
    /// when it contains '.' or ':' or is 'localhost' (Docker's rule).
    ///
    /// `registry` must have passed [`ImageRef::validate_registry`]; otherwise
    /// the result's string form would not parse back to the same reference.
    pub fn with_default_registry(mut self, registry: &str) -> Self {
        if self.registry.is_none() {
            self.registry = Some(registry.to_owned());
        }
        self
    }

    /// The tag, or "latest" (Docker's default) when the reference has none.
    ///
    /// That includes a reference pinned only by digest: callers that must not
    /// treat such a reference as tagged should check [`ImageRef::digest`] first.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ImageRefError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ImageRef> for String {
    fn from(image: ImageRef) -> Self {
        image.to_string()
    }
}

fn parse_reference(s: &str) -> Result<ImageRef, ImageRefErrorKind> {
    if s.is_empty() {
        return Err(ImageRefErrorKind::Empty);
    }
    // Names and tags cannot contain '@', so the first one starts the digest.
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(validate_digest(digest)?)),
        None => (s, None),
    };
    let (name, tag) = split_tag(rest);
    if name.is_empty() {
        return Err(ImageRefErrorKind::MissingRepository);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ImageRefErrorKind::NameTooLong(name.len()));
    }
    let tag = tag.map(validate_tag).transpose()?;
    let (registry, repository) = split_registry(name);
    if let Some(registry) = registry {
        validate_registry(registry)?;
    }
    validate_repository(repository)?;
    Ok(ImageRef {
        registry: registry.map(str::to_owned),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    })
}

/// Splits `name[:tag]`. Only a colon after the last '/' starts a tag; earlier
/// ones belong to a registry port.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_component_start = s.rfind('/').map_or(0, |slash| slash + 1);
    match s[last_component_start..].rfind(':') {
        Some(colon) => {
            let colon = last_component_start + colon;
            (&s[..colon], Some(&s[colon + 1..]))
        }
        None => (s, None),
    }
}

/// Splits off the registry using Docker's rule, so `team/app` stays a repository.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_registry(first) => (Some(first), rest),
        _ => (None, name),
    }
}

fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':']) || component == LOCALHOST
}

fn validate_registry(registry: &str) -> Result<(), ImageRefErrorKind> {
    let (host, port) = split_port(registry);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => !ipv6.is_empty() && ipv6.chars().all(|c| c.is_ascii_hexdigit() || c == ':'),
        None => is_domain_name(host),
    };
    if !host_ok {
        return Err(ImageRefErrorKind::InvalidRegistryHost(host.to_owned()));
    }
    match port {
        Some(port) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(ImageRefErrorKind::InvalidRegistryPort(port.to_owned()))
        }
        _ => Ok(()),
    }
}

/// Splits `host[:port]`; a bracketed IPv6 host has colons of its own.
fn split_port(registry: &str) -> (&str, Option<&str>) {
    let host_end = if registry.starts_with('[') {
        registry
            .find(']')
            .map_or(registry.len(), |bracket| bracket + 1)
    } else {
        registry.find(':').unwrap_or(registry.len())
    };
    let (host, rest) = registry.split_at(host_end);
    let port = (!rest.is_empty()).then(|| rest.strip_prefix(':').unwrap_or(rest));
    (host, port)
}

/// `component ('.' component)*` where a component is alphanumeric with inner dashes.
fn is_domain_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn validate_repository(repository: &str) -> Result<(), ImageRefErrorKind> {
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ImageRefErrorKind::EmptyPathComponent);
        }
        if !is_path_component(component) {
            // Docker's most common complaint gets its own message.
            if is_path_component(&component.to_ascii_lowercase()) {
                return Err(ImageRefErrorKind::Uppercase);
            }
            return Err(ImageRefErrorKind::InvalidPathComponent(
                component.to_owned(),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` where a separator is `.`, `_`, `__` or
/// one or more `-`.
fn is_path_component(component: &str) -> bool {
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    // Splitting on alphanumerics leaves exactly the separator runs.
    component.starts_with(is_alnum)
        && component.ends_with(is_alnum)
        && component
            .split(is_alnum)
            .filter(|separator| !separator.is_empty())
            .all(is_separator)
}

fn is_separator(s: &str) -> bool {
    matches!(s, "." | "_" | "__") || s.bytes().all(|b| b == b'-')
}

fn validate_tag(tag: &str) -> Result<&str, ImageRefErrorKind> {
    if tag.is_empty() {
        return Err(ImageRefErrorKind::EmptyTag);
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(ImageRefErrorKind::TagTooLong(tag.len()));
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = tag.bytes();
    let first_ok = bytes.next().is_some_and(is_word);
    if !first_ok || !bytes.all(|b| is_word(b) || b == b'.' || b == b'-') {
        return Err(ImageRefErrorKind::InvalidTag(tag.to_owned()));
    }
    Ok(tag)
}

/// Validates `algorithm:hex` the way registries do: only the registered
/// algorithms, each with its exact lowercase hex length.
fn validate_digest(digest: &str) -> Result<&str, ImageRefErrorKind> {
    let invalid = || ImageRefErrorKind::InvalidDigest(digest.to_owned());
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    if !is_digest_algorithm(algorithm) {
        return Err(invalid());
    }
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ImageRefErrorKind::UnsupportedDigestAlgorithm(
                algorithm.to_owned(),
            ))
        }
    };
    let is_lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != hex_len || !hex.bytes().all(is_lower_hex) {
        return Err(invalid());
    }
    Ok(digest)
}

/// `[A-Za-z][A-Za-z0-9]*` components joined by one of `+._-`.
fn is_digest_algorithm(algorithm: &str) -> bool {
    algorithm.split(['+', '.', '_', '-']).all(|component| {
        let mut bytes = component.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(s: &str) -> (Option<String>, String, Option<String>, Option<String>) {
        let image = ImageRef::parse(s).unwrap();
        (
            image.registry().map(str::to_owned),
            image.repository().to_owned(),
            image.tag().map(str::to_owned),
            image.digest().map(str::to_owned),
        )
    }

    fn kind(s: &str) -> ImageRefErrorKind {
        ImageRef::parse(s).unwrap_err().kind
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn parses_plain_name() {
        assert_eq!(parts("hello"), (None, "hello".into(), None, None));
    }

    #[test]
    fn parses_name_with_tag() {
        assert_eq!(
            parts("hello:ca1"),
            (None, "hello".into(), some("ca1"), None)
        );
    }

    #[test]
    fn parses_ip_registry_with_port() {
        assert_eq!(
            parts("127.0.0.1:5000/app/api:v1.2"),
            (some("127.0.0.1:5000"), "app/api".into(), some("v1.2"), None)
        );
    }

    #[test]
    fn parses_localhost_registry() {
        assert_eq!(
            parts("localhost/x"),
            (some("localhost"), "x".into(), None, None)
        );
    }

    #[test]
    fn parses_registry_with_digest() {
        let s = format!("reg.io:443/a/b@{SHA}");
        assert_eq!(
            parts(&s),
            (some("reg.io:443"), "a/b".into(), None, some(SHA))
        );
    }

    #[test]
    fn parses_tag_and_digest() {
        let s = format!("a:b@{SHA}");
        assert_eq!(parts(&s), (None, "a".into(), some("b"), some(SHA)));
    }

    #[test]
    fn parses_ipv6_registry() {
        assert_eq!(
            parts("[::1]:5000/app:v1"),
            (some("[::1]:5000"), "app".into(), some("v1"), None)
        );
    }

    #[test]
    fn plain_first_component_is_part_of_repository() {
        assert_eq!(parts("team/app"), (None, "team/app".into(), None, None));
    }

    #[test]
    fn accepts_separators_in_path_components() {
        for s in ["a.b", "a_b", "a__b", "a-b", "a---b", "x/a-b.c_d__e/f0"] {
            assert!(ImageRef::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn accepts_longest_tag() {
        let s = format!("app:{}", "t".repeat(128));
        assert!(ImageRef::parse(&s).is_ok());
    }

    #[test]
    fn rejects_uppercase_repository_with_clear_message() {
        let err = ImageRef::parse("Hello:v1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid image reference 'Hello:v1': repository name must be lowercase"
        );
    }

    #[test]
    fn uppercase_registry_host_is_fine() {
        assert_eq!(parts("Reg.IO/app").0, some("Reg.IO"));
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(kind(""), ImageRefErrorKind::Empty);
    }

    #[test]
    fn rejects_empty_tag() {
        assert_eq!(kind("hello:"), ImageRefErrorKind::EmptyTag);
    }

    #[test]
    fn rejects_too_long_tag() {
        let s = format!("app:{}", "t".repeat(129));
        assert_eq!(kind(&s), ImageRefErrorKind::TagTooLong(129));
    }

    #[test]
    fn rejects_tag_starting_with_dot_or_dash() {
        assert_eq!(kind("app:.v1"), ImageRefErrorKind::InvalidTag(".v1".into()));
        assert_eq!(kind("app:-v1"), ImageRefErrorKind::InvalidTag("-v1".into()));
    }

    #[test]
    fn rejects_missing_repository() {
        assert_eq!(kind(":tag"), ImageRefErrorKind::MissingRepository);
        assert_eq!(
            kind(&format!("@{SHA}")),
            ImageRefErrorKind::MissingRepository
        );
    }

    #[test]
    fn rejects_bad_digests() {
        let short = "sha256:abc";
        assert_eq!(
            kind(&format!("app@{short}")),
            ImageRefErrorKind::InvalidDigest(short.into())
        );
        let upper = SHA.to_uppercase().replacen("SHA256", "sha256", 1);
        assert!(matches!(
            kind(&format!("app@{upper}")),
            ImageRefErrorKind::InvalidDigest(_)
        ));
        assert!(matches!(kind("app@"), ImageRefErrorKind::InvalidDigest(_)));
        assert!(matches!(
            kind("app@sha256"),
            ImageRefErrorKind::InvalidDigest(_)
        ));
        assert_eq!(
            kind(&format!("app@md5:{}", "a".repeat(32))),
            ImageRefErrorKind::UnsupportedDigestAlgorithm("md5".into())
        );
    }

    #[test]
    fn rejects_empty_path_components() {
        assert_eq!(kind("a//b"), ImageRefErrorKind::EmptyPathComponent);
        assert_eq!(kind("a/b/"), ImageRefErrorKind::EmptyPathComponent);
        assert_eq!(kind("/a"), ImageRefErrorKind::EmptyPathComponent);
        assert_eq!(kind("reg.io/"), ImageRefErrorKind::EmptyPathComponent);
    }

    #[test]
    fn rejects_tag_containing_slash() {
        assert_eq!(
            kind("app:v1/x"),
            ImageRefErrorKind::InvalidRegistryPort("v1".into())
        );
        assert!(matches!(
            kind("reg.io/app:v1/x"),
            ImageRefErrorKind::InvalidPathComponent(_)
        ));
    }

    #[test]
    fn rejects_bad_path_components() {
        for s in ["a..b", "a.-b", "_a", "a_", "a___b", "a b", "a+b"] {
            assert!(
                matches!(kind(s), ImageRefErrorKind::InvalidPathComponent(_)),
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_bad_registry_hosts() {
        assert!(matches!(
            kind("-reg.io/app"),
            ImageRefErrorKind::InvalidRegistryHost(_)
        ));
        assert!(matches!(
            kind("reg..io/app"),
            ImageRefErrorKind::InvalidRegistryHost(_)
        ));
        assert!(matches!(
            kind("reg.io:/app"),
            ImageRefErrorKind::InvalidRegistryPort(_)
        ));
    }

    #[test]
    fn rejects_too_long_name() {
        let s = "a".repeat(256);
        assert_eq!(kind(&s), ImageRefErrorKind::NameTooLong(256));
        assert!(ImageRef::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn displays_canonical_form() {
        for s in [
            "hello",
            "hello:ca1",
            "127.0.0.1:5000/app/api:v1.2",
            &format!("a:b@{SHA}"),
        ] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn default_registry_is_added_when_missing() {
        let image = ImageRef::parse("team/app:v1").unwrap();
        let image = image.with_default_registry("kiln.example.com:5000");
        assert_eq!(image.registry(), Some("kiln.example.com:5000"));
        assert_eq!(image.to_string(), "kiln.example.com:5000/team/app:v1");
        assert_eq!(ImageRef::parse(&image.to_string()).unwrap(), image);
    }

    #[test]
    fn default_registry_keeps_explicit_registry() {
        for s in ["other.io/app", "localhost/app", "host:5000/app"] {
            let image = ImageRef::parse(s).unwrap();
            assert_eq!(image.clone().with_default_registry("kiln.io"), image);
        }
    }

    #[test]
    fn validates_default_registries() {
        assert!(ImageRef::validate_registry("kiln.io").is_ok());
        assert!(ImageRef::validate_registry("localhost:5000").is_ok());
        assert_eq!(
            ImageRef::validate_registry("kiln").unwrap_err().kind,
            ImageRefErrorKind::UnrecognizedRegistry("kiln".into())
        );
        assert!(ImageRef::validate_registry("kiln.io/").is_err());
    }

    #[test]
    fn tag_or_latest() {
        let tag_or_latest = |s: &str| ImageRef::parse(s).unwrap().tag_or_latest().to_owned();
        assert_eq!(tag_or_latest("app"), "latest");
        assert_eq!(tag_or_latest("app:v1"), "v1");
        assert_eq!(tag_or_latest(&format!("app:v2@{SHA}")), "v2");
    }

    #[test]
    fn conversions_round_trip() {
        let image: ImageRef = "reg.io/app:v1".parse().unwrap();
        let s: String = image.clone().into();
        assert_eq!(ImageRef::try_from(s).unwrap(), image);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let image = ImageRef::parse("reg.io/app:v1").unwrap();
        let json = serde_json::to_string(&image).unwrap();
        assert_eq!(json, "\"reg.io/app:v1\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), image);
        let err = serde_json::from_str::<ImageRef>("\"Bad\"").unwrap_err();
        assert!(err.to_string().contains("must be lowercase"), "{err}");
    }
}
