//! What `kiln run show`, `kiln registry repository show-tags --top` and `kiln registry gc`
//! tell a user in their plain (not JSON) output.

mod common;

use common::oci::{push_blob, push_image};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_show_lists_the_status_history() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let id = server.queue_scratch_run().await;
    let cancel = server.kiln_output(&["run", "cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{cancel:#?}");

    let show = server.kiln_output(&["run", "show", &id]).await;
    assert_eq!(show.code, 0, "{show:#?}");
    let lines: Vec<&str> = show.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("History:"))
        .unwrap_or_else(|| panic!("no history: {}", show.stdout));
    assert!(lines[at].ends_with("  Queued"), "{}", show.stdout);
    assert!(
        lines[at + 1].trim_start().ends_with("Z  Canceled"),
        "{}",
        show.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_tags_top_lists_the_newest_and_gc_explains_the_grace_period() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let http = server.http();
    for tag in ["v1", "v2", "v3"] {
        push_image(&http, &server.url, "team/app", tag, tag).await;
    }
    let show_tags = |extra: &'static [&'static str]| {
        let mut args = vec!["registry", "repository", "show-tags", "team/app"];
        args.extend_from_slice(extra);
        let server = &server;
        async move { server.kiln_output(&args).await }
    };
    let top = show_tags(&["--top", "2"]).await;
    assert_eq!(top.code, 0, "{top:#?}");
    assert_eq!(top.stdout, "v3\nv2\n");
    let oldest = show_tags(&["--top", "1", "--orderby", "time_asc"]).await;
    assert_eq!(oldest.stdout, "v1\n", "{oldest:#?}");

    // A blob no manifest uses, just pushed: inside the 1h grace period, so it stays.
    push_blob(&http, &server.url, "team/app", b"an unused blob").await;
    let gc = server.kiln_output(&["registry", "gc"]).await;
    assert_eq!(gc.code, 0, "{gc:#?}");
    assert!(
        gc.stdout
            .starts_with("Deleted 0 blobs (0 B) and 0 abandoned uploads\n"),
        "{}",
        gc.stdout
    );
    assert!(
        gc.stdout.contains(
            "1 unreferenced blob is younger than the 1h grace period and was kept; run again after 20"
        ),
        "{}",
        gc.stdout
    );
}
