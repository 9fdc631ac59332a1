//! Each comparator against the answers of its ecosystem's own tool, recorded in `testdata/`
//! by `scripts/gen-version-vectors.sh` (apk: see the header of `testdata/apk.txt`).
//! Lines are `a < b`, `a = b`, `a > b` or `! v` (the tool rejects `v`).

use std::cmp::Ordering;

use super::*;

/// What a vector file asks, checked with `parse` and the parsed values' order. Returns the
/// number of comparisons checked and the lines skipped because `parse` refused a side
/// (only allowed where `skip_unparsable`); panics listing every disagreement.
fn check<V: Ord + std::fmt::Debug>(
    file: &str,
    vectors: &str,
    parse: impl Fn(&str) -> Result<V, VersionError>,
    skip_unparsable: bool,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let (mut checked, mut skipped) = (0, Vec::new());
    for line in vectors
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["!", version] => {
                if let Ok(parsed) = parse(version) {
                    failures.push(format!(
                        "{line}: the tool rejects it, Kiln parsed {parsed:?}"
                    ));
                }
            }
            [a, op, b] => {
                let expected = match op {
                    "<" => Ordering::Less,
                    "=" => Ordering::Equal,
                    ">" => Ordering::Greater,
                    _ => panic!("{file}: bad operator in {line:?}"),
                };
                match (parse(a), parse(b)) {
                    (Ok(pa), Ok(pb)) => {
                        checked += 1;
                        let got = pa.cmp(&pb);
                        if got != expected {
                            failures.push(format!("{line}: Kiln says {got:?}"));
                        }
                    }
                    (Err(e), _) | (_, Err(e)) if skip_unparsable => {
                        skipped.push(format!("{line} ({e})"))
                    }
                    (Err(e), _) | (_, Err(e)) => failures.push(format!("{line}: {e}")),
                }
            }
            _ => panic!("{file}: bad line {line:?}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{file}: {} disagreements with the tool:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 50, "{file}: only {checked} comparisons");
    println!(
        "{file}: {checked} comparisons agree with the tool, {} skipped",
        skipped.len()
    );
    (checked, skipped)
}

#[test]
fn dpkg_orders_versions_as_dpkg_compare_versions_does() {
    check(
        "dpkg.txt",
        include_str!("testdata/dpkg.txt"),
        Dpkg::parse,
        false,
    );
}

#[test]
fn pep440_orders_versions_as_python_packaging_does() {
    check(
        "pep440.txt",
        include_str!("testdata/pep440.txt"),
        Pep440::parse,
        false,
    );
}

#[test]
fn semver_orders_versions_as_node_semver_does() {
    check(
        "semver.txt",
        include_str!("testdata/semver.txt"),
        SemVer::parse,
        false,
    );
}

#[test]
fn go_orders_versions_as_golang_x_mod_semver_does() {
    check(
        "go.txt",
        include_str!("testdata/go.txt"),
        GoVersion::parse_module_version,
        false,
    );
}

#[test]
fn apk_orders_versions_as_apk_version_test_does() {
    // The file predates apk-tools refusing invalid versions in `apk version -t` (older apk
    // compared them anyway); Kiln refuses them too, so those lines are skipped, and every
    // skipped line must have a side that breaks apk's grammar.
    let (checked, skipped) = check(
        "apk.txt",
        include_str!("testdata/apk.txt"),
        Apk::parse,
        true,
    );
    assert!(checked > 600, "apk.txt: only {checked} comparisons");
    println!("skipped:\n{}", skipped.join("\n"));
    assert!(skipped.len() < 60, "apk.txt: {} skipped", skipped.len());
}

#[test]
fn apk_accepts_and_refuses_what_apk_version_validate_does() {
    // From apk-tools' own test/unit/version.data.
    for valid in [
        "1.2",
        "0.1_pre2",
        "0.1_pre2~1234abcd",
        "0.1_p1_pre2",
        "0.1_alpha1_pre2",
        "0.1_git20240101_pre1",
        "1.0~1234-r1",
    ] {
        assert!(Apk::parse(valid).is_ok(), "{valid} is valid");
    }
    for invalid in [
        "",
        "0.1bc",
        "1.0_post1",
        "a",
        ".1",
        "1-ruff",
        "1.2_",
        "1.0-r",
    ] {
        assert!(Apk::parse(invalid).is_err(), "{invalid} is invalid");
    }
    assert_eq!(
        Family::Apk.compare("1.0~1234-r1", "1.0~2345-r0"),
        Ok(Ordering::Less)
    );
    assert_eq!(
        Family::Apk.compare("1.0~1234-r1", "1.0~1234-r0"),
        Ok(Ordering::Greater)
    );
}

#[test]
fn go_accepts_osv_spellings_without_the_v_and_go_release_names() {
    assert_eq!(Family::Go.compare("1.2.3", "v1.2.3"), Ok(Ordering::Equal));
    assert_eq!(
        Family::Go.compare("v2.0.0+incompatible", "2.0.0"),
        Ok(Ordering::Equal)
    );
    assert_eq!(
        Family::Go.compare("0.0.0-20191109021931-daa7c04131f5", "0.1.0"),
        Ok(Ordering::Less)
    );
    assert_eq!(go_release_version("go1.21.4").as_deref(), Some("1.21.4"));
    assert_eq!(go_release_version("go1.21").as_deref(), Some("1.21.0"));
    assert_eq!(
        go_release_version("go1.22rc2").as_deref(),
        Some("1.22.0-rc.2")
    );
    assert_eq!(go_release_version("devel +abc"), None);
    assert_eq!(go_release_version("1.21.4"), None);
}

#[test]
fn unparsable_versions_are_errors_that_name_the_scheme() {
    let error = Family::Pep440.compare("1.0", "not a version").unwrap_err();
    assert_eq!(
        error.to_string(),
        "PEP 440 cannot parse version \"not a version\""
    );
    assert!(Family::Dpkg.compare("a1.0", "1.0").is_err());
    assert!(Family::SemVer.compare("1.2", "1.2.0").is_err());
}
