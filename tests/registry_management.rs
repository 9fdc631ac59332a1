//! `kiln registry repository …` and `kiln registry gc` against images pushed with skopeo.

mod common;

use common::oci::skopeo_copy;
use common::{CliRun, TestServer, BASE_IMAGE};

async fn copy_in(server: &TestServer, to: &str) {
    let host = server.url.trim_start_matches("http://");
    let creds = format!("owner:{}", server.owner_token());
    let to = format!("docker://{host}/{to}");
    let extra = ["--all", "--dest-creds", &creds];
    skopeo_copy(&format!("docker://{BASE_IMAGE}"), &to, &extra).await;
}

async fn kiln(server: &TestServer, args: &[&str]) -> CliRun {
    let mut full = vec!["registry", "repository"];
    full.extend_from_slice(args);
    server.kiln_output(&full).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_tags_and_manifests_list_show_and_delete() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    copy_in(&server, "team/app:v1").await;
    copy_in(&server, "team/app:v2").await;
    copy_in(&server, "solo:latest").await;

    let list = kiln(&server, &["list"]).await;
    assert_eq!(list.code, 0, "{list:#?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{}", list.stdout);
    let cells = |line: &str| {
        line.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // An index and the two platform images it lists.
    assert_eq!(cells(lines[1]), "solo 1 3", "{}", list.stdout);
    assert_eq!(cells(lines[2]), "team/app 2 3", "{}", list.stdout);

    // v2 was pushed last, so it comes first newest-first.
    let tags = kiln(
        &server,
        &["show-tags", "team/app", "--orderby", "time_desc"],
    )
    .await;
    assert_eq!(tags.stdout, "v2\nv1\n");
    let tags = kiln(&server, &["show-tags", "team/app", "--orderby", "time_asc"]).await;
    assert_eq!(tags.stdout, "v1\nv2\n");

    // Both tags name the same index: one manifest with both tags, and the platform images
    // it lists.
    let manifests = kiln(
        &server,
        &["show-manifests", "team/app", "--detail", "-o", "json"],
    )
    .await;
    let manifests: serde_json::Value = serde_json::from_str(&manifests.stdout).unwrap();
    let index = manifests
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tags"] == serde_json::json!(["v1", "v2"]))
        .unwrap_or_else(|| panic!("no manifest tagged v1,v2: {manifests:#}"));
    assert_eq!(
        index["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let digest = index["digest"].as_str().unwrap().to_string();

    let untag = kiln(&server, &["untag", "team/app:v1"]).await;
    assert_eq!(untag.code, 0, "{untag:#?}");
    assert_eq!(
        kiln(&server, &["show-tags", "team/app"]).await.stdout,
        "v2\n"
    );

    // Not on a terminal and no --yes: refused, nothing deleted.
    let unconfirmed = kiln(&server, &["delete", &format!("team/app@{digest}")]).await;
    assert_eq!(unconfirmed.code, 2, "{unconfirmed:#?}");
    assert!(
        unconfirmed.stderr.contains("--yes"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(
        kiln(&server, &["show-tags", "team/app"]).await.stdout,
        "v2\n"
    );

    let deleted = kiln(&server, &["delete", &format!("team/app@{digest}"), "--yes"]).await;
    assert_eq!(deleted.code, 0, "{deleted:#?}");
    assert!(deleted
        .stdout
        .contains(&format!("Deleted team/app@{digest}")));
    assert!(deleted.stdout.contains("Deleted team/app:v2"));
    let missing = kiln(&server, &["show", &format!("team/app@{digest}")]).await;
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);

    let gone = kiln(&server, &["delete", "solo", "--yes"]).await;
    assert_eq!(gone.code, 0, "{gone:#?}");
    let shown = kiln(&server, &["show", "solo"]).await;
    assert_eq!(shown.code, 2);
    assert!(
        shown.stderr.contains("repository 'solo' not found"),
        "{}",
        shown.stderr
    );

    let gc = server.kiln_output(&["registry", "gc", "--dry-run"]).await;
    assert_eq!(gc.code, 0, "{gc:#?}");
    assert!(gc.stdout.starts_with("Would delete"), "{}", gc.stdout);
}
