//! What `kiln build` says: no push warning when nothing is pushed anyway, a failure's error
//! once, sizes and counts as people read them.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_build_reads_well() {
    let server = TestServer::start().await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let out = server
        .kiln_output(&["build", "--no-push", ctx.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(!out.stderr.contains("Skipping image push"), "{out:#?}");
    let uploaded = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Uploaded build context: "))
        .unwrap_or_else(|| panic!("no upload line: {out:#?}"));
    assert!(uploaded.contains(": 1 file, "), "{uploaded}");
    // A few bytes sent in milliseconds: a size, not a speed.
    assert!(!uploaded.contains("/s"), "{uploaded}");
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Summary: "))
        .unwrap_or_else(|| panic!("no summary: {out:#?}"));
    assert!(!summary.contains("/s"), "{summary}");

    // Without --no-push, no image still means no push, and the CLI says so.
    let out = server
        .kiln_output(&["build", ctx.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("Skipping image push"), "{out:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_says_why_once() {
    let server = TestServer::start().await;
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo no-such-luck && exit 3\n"),
    )]);
    let out = server
        .kiln_output(&["build", "--no-push", ctx.path().to_str().unwrap()])
        .await;
    assert_eq!(out.code, 1, "{out:#?}");
    let id = out.run_id();
    // BuildKit's own step output says it where it happened; then the log's closing line, and
    // nothing else.
    let all = format!("{}{}", out.stdout, out.stderr);
    let said: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("exit code: 3") && !l.starts_with('#'))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "the error is printed {} times:\n{all}",
        said.len()
    );
    assert!(
        said[0].starts_with(&format!("Run ID: {id} failed after")),
        "{all}"
    );
    assert!(
        out.stderr.contains(&format!(
            "Run {id} finished with status Failed. Show details with"
        )),
        "{all}"
    );
}
