//! OSV ecosystem strings (`affected[].package.ecosystem`): which version order applies, how
//! package names are normalised, and which release a distribution record is scoped to.

use std::fmt;

use super::Family;

/// An OSV ecosystem. Distribution ecosystems carry their release, so a `Debian:12` record
/// applies to Debian 12 packages only; ecosystems Kiln does not compare are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// `Debian:<release>` (`Debian:12`); package names are source package names.
    Debian(String),
    /// `Ubuntu:<release>` (`Ubuntu:22.04:LTS`); source package names.
    Ubuntu(String),
    /// `Alpine:v<major.minor>` (`Alpine:v3.19`), kept with its `v`; origin package names.
    Alpine(String),
    /// `PyPI`.
    PyPI,
    /// `npm`.
    Npm,
    /// `Go`: module paths, plus `stdlib` and `toolchain`.
    Go,
    /// `crates.io`.
    CratesIo,
    /// Any other ecosystem (Maven, a bare `Debian`, …): its `versions` lists still match,
    /// its `ECOSYSTEM` ranges are "unknown".
    Other(String),
}

impl Ecosystem {
    /// Reads an OSV ecosystem string; never fails, as new ecosystems keep appearing.
    pub fn parse(text: &str) -> Ecosystem {
        let release = |prefix: &str| {
            text.strip_prefix(prefix)
                .filter(|r| !r.is_empty())
                .map(str::to_string)
        };
        if let Some(r) = release("Debian:") {
            return Ecosystem::Debian(r);
        }
        if let Some(r) = release("Ubuntu:") {
            return Ecosystem::Ubuntu(r);
        }
        if let Some(r) = release("Alpine:") {
            return Ecosystem::Alpine(r);
        }
        match text {
            "PyPI" => Ecosystem::PyPI,
            "npm" => Ecosystem::Npm,
            "Go" => Ecosystem::Go,
            "crates.io" => Ecosystem::CratesIo,
            other => Ecosystem::Other(other.to_string()),
        }
    }

    /// The ecosystem of an Alpine image whose `/etc/alpine-release` says `release`
    /// (`3.19.1` → `Alpine:v3.19`).
    pub fn alpine_release(release: &str) -> Ecosystem {
        let major_minor: Vec<&str> = release.trim().split('.').take(2).collect();
        Ecosystem::Alpine(format!("v{}", major_minor.join(".")))
    }

    /// The version order of this ecosystem's `ECOSYSTEM` ranges, if Kiln knows it.
    pub fn family(&self) -> Option<Family> {
        match self {
            Ecosystem::Debian(_) | Ecosystem::Ubuntu(_) => Some(Family::Dpkg),
            Ecosystem::Alpine(_) => Some(Family::Apk),
            Ecosystem::PyPI => Some(Family::Pep440),
            Ecosystem::Npm | Ecosystem::CratesIo => Some(Family::SemVer),
            Ecosystem::Go => Some(Family::Go),
            Ecosystem::Other(_) => None,
        }
    }

    /// The order of `SEMVER` ranges for this ecosystem's packages: SemVer, except that Go
    /// versions may carry their `v` and shorthand forms.
    pub fn semver_family(&self) -> Family {
        match self {
            Ecosystem::Go => Family::Go,
            _ => Family::SemVer,
        }
    }

    /// The name under which records and inventories are matched: PyPI names per PEP 503
    /// (lower case, runs of `-`, `_`, `.` become one `-`); every other ecosystem's names are
    /// compared as written (npm and Go are case-sensitive, Debian names are lower case).
    pub fn normalise_name(&self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => pep503(name),
            _ => name.to_string(),
        }
    }
}

/// `re.sub(r"[-_.]+", "-", name).lower()`, PEP 503's definition.
fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut after_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !after_separator {
                out.push('-');
            }
            after_separator = true;
        } else {
            after_separator = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ecosystem::Debian(r) => write!(f, "Debian:{r}"),
            Ecosystem::Ubuntu(r) => write!(f, "Ubuntu:{r}"),
            Ecosystem::Alpine(r) => write!(f, "Alpine:{r}"),
            Ecosystem::PyPI => f.write_str("PyPI"),
            Ecosystem::Npm => f.write_str("npm"),
            Ecosystem::Go => f.write_str("Go"),
            Ecosystem::CratesIo => f.write_str("crates.io"),
            Ecosystem::Other(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystem_strings_round_trip_and_keep_the_release() {
        for text in [
            "Debian:12",
            "Ubuntu:22.04:LTS",
            "Alpine:v3.19",
            "PyPI",
            "npm",
            "Go",
            "crates.io",
            "Maven",
            "Debian",
        ] {
            assert_eq!(Ecosystem::parse(text).to_string(), text);
        }
        assert_ne!(Ecosystem::parse("Debian:12"), Ecosystem::parse("Debian:11"));
        assert_eq!(
            Ecosystem::parse("Debian"),
            Ecosystem::Other("Debian".into())
        );
        assert_eq!(
            Ecosystem::alpine_release("3.19.1\n"),
            Ecosystem::parse("Alpine:v3.19")
        );
    }

    #[test]
    fn pypi_names_are_normalised_per_pep_503_and_others_are_not() {
        let pypi = Ecosystem::PyPI;
        for name in ["Django", "django", "DJANGO"] {
            assert_eq!(pypi.normalise_name(name), "django");
        }
        assert_eq!(pypi.normalise_name("Zope.Interface"), "zope-interface");
        assert_eq!(pypi.normalise_name("a__b-._c"), "a-b-c");
        assert_eq!(pypi.normalise_name("ruamel.yaml"), "ruamel-yaml");
        assert_eq!(Ecosystem::Npm.normalise_name("@Scope/Pkg"), "@Scope/Pkg");
        assert_eq!(
            Ecosystem::Go.normalise_name("github.com/BurntSushi/toml"),
            "github.com/BurntSushi/toml"
        );
    }
}
