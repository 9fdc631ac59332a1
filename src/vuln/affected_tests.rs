//! The OSV evaluation on small records written here, one rule per test.

use serde_json::{json, Value};

use super::affected::{evaluate, Package, UnknownReason, Verdict};
use super::osv::Record;
use super::versions::Ecosystem;

fn record(affected: Value) -> Record {
    serde_json::from_value(
        json!({"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": affected}),
    )
    .unwrap()
}

/// A record naming one package with one range.
fn ranged(ecosystem: &str, name: &str, kind: &str, events: Value) -> Record {
    record(
        json!([{"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": kind, "events": events}]}]),
    )
}

fn package(ecosystem: &str, name: &str, version: &str) -> Package {
    Package {
        ecosystem: Ecosystem::parse(ecosystem),
        name: name.into(),
        version: version.into(),
    }
}

fn affected(fixed: Option<&str>) -> Verdict {
    Verdict::Affected {
        fixed: fixed.map(str::to_string),
    }
}

#[test]
fn introduced_zero_to_fixed_affects_everything_below_the_fix() {
    let r = ranged(
        "npm",
        "left-pad",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "1.0.2"}]),
    );
    assert_eq!(
        evaluate(&r, &package("npm", "left-pad", "0.0.1")),
        affected(Some("1.0.2"))
    );
    assert_eq!(
        evaluate(&r, &package("npm", "left-pad", "1.0.2-rc.1")),
        affected(Some("1.0.2"))
    );
    assert_eq!(
        evaluate(&r, &package("npm", "left-pad", "1.0.2")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(&r, &package("npm", "Left-Pad", "0.0.1")),
        Verdict::NotAffected,
        "npm names are case-sensitive"
    );
}

#[test]
fn several_intervals_in_one_range_and_unsorted_events() {
    let events = json!([{"fixed": "3.2.5"}, {"introduced": "3.0.0"}, {"fixed": "1.0.2"}, {"introduced": "1.0.0"}]);
    let r = ranged("crates.io", "x", "SEMVER", events);
    assert_eq!(
        evaluate(&r, &package("crates.io", "x", "0.9.0")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(&r, &package("crates.io", "x", "1.0.1")),
        affected(Some("1.0.2"))
    );
    assert_eq!(
        evaluate(&r, &package("crates.io", "x", "2.0.0")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(&r, &package("crates.io", "x", "3.1.0")),
        affected(Some("3.2.5"))
    );
    assert_eq!(
        evaluate(&r, &package("crates.io", "x", "3.2.5")),
        Verdict::NotAffected
    );
}

#[test]
fn last_affected_includes_that_version_and_nothing_above() {
    let r = ranged(
        "PyPI",
        "pkg",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"last_affected": "1.5"}]),
    );
    assert_eq!(evaluate(&r, &package("PyPI", "pkg", "1.5")), affected(None));
    assert_eq!(
        evaluate(&r, &package("PyPI", "pkg", "1.5.0")),
        affected(None)
    );
    assert_eq!(
        evaluate(&r, &package("PyPI", "pkg", "1.5.post1")),
        Verdict::NotAffected
    );
}

#[test]
fn a_limit_bounds_the_range_and_star_is_infinity() {
    let r = ranged(
        "PyPI",
        "pkg",
        "ECOSYSTEM",
        json!([{"introduced": "1.0"}, {"limit": "2.0"}]),
    );
    assert_eq!(evaluate(&r, &package("PyPI", "pkg", "1.9")), affected(None));
    assert_eq!(
        evaluate(&r, &package("PyPI", "pkg", "2.0")),
        Verdict::NotAffected
    );
    let r = ranged(
        "PyPI",
        "pkg",
        "ECOSYSTEM",
        json!([{"introduced": "1.0"}, {"limit": "*"}]),
    );
    assert_eq!(evaluate(&r, &package("PyPI", "pkg", "99")), affected(None));
}

#[test]
fn the_versions_list_matches_the_same_string_and_pypi_names_normalise() {
    let r = record(
        json!([{"package": {"ecosystem": "PyPI", "name": "Zope.Interface"}, "versions": ["1.0", "1.1"]}]),
    );
    assert_eq!(
        evaluate(&r, &package("PyPI", "zope-interface", "1.0")),
        affected(None)
    );
    assert_eq!(
        evaluate(&r, &package("PyPI", "zope_interface", "1.1")),
        affected(None)
    );
    assert_eq!(
        evaluate(&r, &package("PyPI", "zope-interface", "1.1.0")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(&r, &package("PyPI", "zope-interface", "1.2")),
        Verdict::NotAffected
    );
}

#[test]
fn debian_records_apply_to_their_release_only_and_order_by_dpkg() {
    let r = ranged(
        "Debian:12",
        "openssl",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u1"}]),
    );
    assert_eq!(
        evaluate(&r, &package("Debian:12", "openssl", "3.0.11-1~deb12u2")),
        affected(Some("3.0.15-1~deb12u1"))
    );
    assert_eq!(
        evaluate(&r, &package("Debian:12", "openssl", "3.0.15-1")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(&r, &package("Debian:11", "openssl", "1.1.1n-0+deb11u5")),
        Verdict::NotAffected
    );
    let epoch = ranged(
        "Debian:12",
        "zlib",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1"}]),
    );
    assert_eq!(
        evaluate(&epoch, &package("Debian:12", "zlib", "1.3-1")),
        affected(Some("1:1.2.13.dfsg-1"))
    );
}

#[test]
fn alpine_and_go_use_their_own_orders() {
    let r = ranged(
        "Alpine:v3.19",
        "musl",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "1.2.4_git20230717-r5"}]),
    );
    assert_eq!(
        evaluate(&r, &package("Alpine:v3.19", "musl", "1.2.4_git20230717-r4")),
        affected(Some("1.2.4_git20230717-r5"))
    );
    assert_eq!(
        evaluate(&r, &package("Alpine:v3.19", "musl", "1.2.4_git20230717-r5")),
        Verdict::NotAffected
    );
    let go = ranged(
        "Go",
        "golang.org/x/net",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "0.17.0"}]),
    );
    assert_eq!(
        evaluate(&go, &package("Go", "golang.org/x/net", "v0.16.0")),
        affected(Some("0.17.0"))
    );
    assert_eq!(
        evaluate(
            &go,
            &package(
                "Go",
                "golang.org/x/net",
                "v0.0.0-20220722155237-a158d28d115b"
            )
        ),
        affected(Some("0.17.0"))
    );
    assert_eq!(
        evaluate(
            &go,
            &package("Go", "golang.org/x/net", "v0.17.0+incompatible")
        ),
        Verdict::NotAffected
    );
    // A Go binary names its toolchain `go1.21.4`; OSV's stdlib records say `1.21.4`.
    let stdlib = ranged(
        "Go",
        "stdlib",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "1.21.5"}]),
    );
    assert_eq!(
        evaluate(&stdlib, &package("Go", "stdlib", "go1.21.4")),
        affected(Some("1.21.5"))
    );
    assert_eq!(
        evaluate(&stdlib, &package("Go", "stdlib", "go1.21.5")),
        Verdict::NotAffected
    );
}

#[test]
fn a_version_that_cannot_be_ordered_is_unknown_never_clean() {
    let r = ranged(
        "npm",
        "p",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "1.0.0"}]),
    );
    let Verdict::Unknown(UnknownReason::UnparsableVersion(error)) =
        evaluate(&r, &package("npm", "p", "1.0"))
    else {
        panic!("expected unknown");
    };
    assert_eq!(error.version, "1.0");
    let bad_event = ranged(
        "npm",
        "p",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "garbage"}]),
    );
    assert!(matches!(
        evaluate(&bad_event, &package("npm", "p", "0.5.0")),
        Verdict::Unknown(_)
    ));
    let other = ranged("Maven", "g:a", "ECOSYSTEM", json!([{"introduced": "0"}]));
    assert_eq!(
        evaluate(&other, &package("Maven", "g:a", "1.0")),
        Verdict::Unknown(UnknownReason::UnsupportedEcosystem("Maven".into()))
    );
}

#[test]
fn a_range_that_affects_wins_over_one_that_is_unknown() {
    let r = record(
        json!([{"package": {"ecosystem": "npm", "name": "p"}, "ranges": [
        {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "not-semver"}]},
        {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]}]),
    );
    assert_eq!(
        evaluate(&r, &package("npm", "p", "1.0.0")),
        affected(Some("2.0.0"))
    );
}

#[test]
fn withdrawn_records_and_git_ranges_affect_nothing() {
    let mut r = ranged("npm", "p", "SEMVER", json!([{"introduced": "0"}]));
    r.withdrawn = Some(r.modified);
    assert_eq!(
        evaluate(&r, &package("npm", "p", "1.0.0")),
        Verdict::NotAffected
    );
    let git = ranged("npm", "p", "GIT", json!([{"introduced": "abc123"}]));
    assert_eq!(
        evaluate(&git, &package("npm", "p", "1.0.0")),
        Verdict::NotAffected
    );
}
