//! `kiln vulndb import` and `kiln vulndb status` against a real server: the real OSV exports
//! in `../shared/osv/` (read from there, never copied; without them the tests that need them
//! say so and pass), a re-import replacing its source, a bad zip or record refused whole,
//! and importing kept to owners.

mod common;

use std::path::{Path, PathBuf};

use common::osv::osv_dir;
use common::*;
use serde_json::{json, Value};

/// The four exports, their record counts and newest `modified`, as their README lists them.
const EXPORTS: [(&str, u64, &str); 4] = [
    ("Debian:12", 99, "2026-11-28T20:17:18Z"),
    ("Go", 4291, "2026-08-21T20:38:00Z"),
    ("PyPI", 2661, "2024-10-10T17:22:00.587279Z"),
    ("crates.io", 1205, "2026-08-21T06:28:40Z"),
];

/// `kiln vulndb status -o json` as the owner.
async fn status(server: &TestServer) -> Value {
    let out = server
        .kiln_output(&["vulndb", "status", "-o", "json"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// A folder `<dir>/<source>` holding `records` as `<id>.json`.
fn record_folder(dir: &Path, source: &str, records: &[Value]) -> PathBuf {
    let folder = dir.join(source);
    std::fs::create_dir_all(&folder).unwrap();
    for record in records {
        let name = format!("{}.json", record["id"].as_str().unwrap());
        std::fs::write(folder.join(name), record.to_string()).unwrap();
    }
    folder
}

fn record(id: &str, name: &str, modified: &str) -> Value {
    json!({"id": id, "modified": modified, "affected": [{
        "package": {"ecosystem": "Debian:12", "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2-1"}]}]}]})
}

#[tokio::test]
async fn the_real_exports_import_and_status_shows_their_figures() {
    let Some(osv) = osv_dir() else { return };
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let empty = server.kiln_output(&["vulndb", "status"]).await;
    assert_eq!(empty.code, 0, "{empty:#?}");
    assert!(empty.stdout.contains("No vulnerability data"), "{empty:#?}");

    let paths: Vec<String> = EXPORTS
        .iter()
        .map(|(name, ..)| osv.join(name).join("all.zip").display().to_string())
        .collect();
    let mut args = vec!["vulndb", "import"];
    args.extend(paths.iter().map(String::as_str));
    let imported = server.kiln_output(&args).await;
    assert_eq!(imported.code, 0, "{imported:#?}");
    assert!(
        imported
            .stdout
            .contains("Imported 4291 records into Go (newest modified 2026-08-21T20:38:00Z)"),
        "{imported:#?}"
    );

    let db = status(&server).await;
    assert_eq!(db["version"], 4, "one version per import: {db:#}");
    let sources = db["sources"].as_array().unwrap();
    let figures: Vec<(String, u64, String)> = sources
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["records"].as_u64().unwrap(),
                s["newestModified"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, String)> = EXPORTS
        .iter()
        .map(|(n, r, m)| (n.to_string(), *r, m.to_string()))
        .collect();
    assert_eq!(figures, expected);

    let table = server.kiln_output(&["vulndb", "status"]).await;
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SOURCE") && lines[0].contains("NEWEST MODIFIED"),
        "{table:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("PyPI")
            && l.contains("2661")
            && l.contains("2024-10-10T17:22:00.587279Z")),
        "{table:#?}"
    );
}

#[tokio::test]
async fn a_reimport_replaces_its_source_and_leaves_the_others() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let first = record_folder(
        dir.path(),
        "Debian:12",
        &[
            record("DEBIAN-CVE-1", "openssl", "2024-01-01T00:00:00Z"),
            record("DEBIAN-CVE-2", "zlib", "2024-03-01T00:00:00Z"),
        ],
    );
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(
        other.join("X-1.yaml"),
        "id: X-1\nmodified: 2023-05-01T00:00:00Z\naffected:\n- package: {ecosystem: PyPI, name: x}\n  versions: ['1.0']\n",
    )
    .unwrap();
    let out = server
        .kiln_output(&[
            "vulndb",
            "import",
            first.to_str().unwrap(),
            other.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stdout,
        "Imported 2 records into Debian:12 (newest modified 2024-03-01T00:00:00Z)\n\
         Imported 1 record into other (newest modified 2023-05-01T00:00:00Z)\n"
    );

    let second = tempfile::tempdir().unwrap();
    let folder = record_folder(
        second.path(),
        "anything",
        &[record("DEBIAN-CVE-3", "expat", "2024-06-01T00:00:00Z")],
    );
    let out = server
        .kiln_output(&[
            "vulndb",
            "import",
            folder.to_str().unwrap(),
            "--source",
            "Debian:12",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let db = status(&server).await;
    assert_eq!(db["version"], 3);
    let sources = db["sources"].as_array().unwrap();
    assert_eq!(sources[0]["name"], "Debian:12");
    assert_eq!(sources[0]["records"], 1, "replaced, not added to: {db:#}");
    assert_eq!(sources[0]["newestModified"], "2024-06-01T00:00:00Z");
    assert_eq!(sources[1]["name"], "other");
    assert_eq!(sources[1]["records"], 1);
}

#[tokio::test]
async fn a_bad_zip_or_record_is_refused_whole_and_changes_nothing() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let good = record_folder(
        dir.path(),
        "Debian:12",
        &[record("DEBIAN-CVE-1", "openssl", "2024-01-01T00:00:00Z")],
    );
    let out = server
        .kiln_output(&["vulndb", "import", good.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let before = status(&server).await;

    let resp = server
        .http()
        .post(format!("{}/api/vulndb/sources/Debian:12", server.url))
        .body("this is not a zip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the upload for source Debian:12 is not a readable zip archive"),
        "{message}"
    );

    let bad = record_folder(
        dir.path(),
        "broken",
        &[record("DEBIAN-CVE-7", "zlib", "2024-01-01T00:00:00Z")],
    );
    std::fs::write(bad.join("DEBIAN-CVE-8.json"), "{\"id\": \"DEBIAN-CVE-8\"}").unwrap();
    let out = server
        .kiln_output(&[
            "vulndb",
            "import",
            bad.to_str().unwrap(),
            "--source",
            "Debian:12",
        ])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("DEBIAN-CVE-8.json is not an OSV record")
            && out.stderr.contains("missing field `modified`")
            && out.stderr.contains(bad.to_str().unwrap()),
        "{out:#?}"
    );
    assert_eq!(status(&server).await, before, "nothing changed");
}

#[tokio::test]
async fn only_owners_import_and_any_user_sees_the_status() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let folder = record_folder(
        dir.path(),
        "Debian:12",
        &[record("DEBIAN-CVE-1", "openssl", "2024-01-01T00:00:00Z")],
    );
    let pusher = server.create_token("ci", &["push"], &["app/*"]).await;
    let out = server
        .kiln_output_as(&pusher, &["vulndb", "import", folder.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("token 'ci' is not an owner: this needs the owner role"),
        "{out:#?}"
    );
    let resp = server
        .http_as(&pusher)
        .post(format!("{}/api/vulndb/sources/Debian:12", server.url))
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let shown = server
        .kiln_output_as(&pusher, &["vulndb", "status", "-o", "json"])
        .await;
    assert_eq!(shown.code, 0, "{shown:#?}");
    let db: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(db, json!({"version": 0, "sources": []}));
}
