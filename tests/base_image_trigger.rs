//! Base-image triggers end to end: the real server with its embedded worker, the real CLI,
//! Docker, skopeo and the registry on 127.0.0.1:5000. A task's successful run records the
//! bases its Dockerfile starts from (`task show` lists them with digests); a push that moves
//! a base's tag in Kiln's registry runs the task again within seconds, recorded as
//! ImageUpdate with the old and new digests; a base on another registry is noticed by
//! polling; a chain rebuilds in order, each task once; a task's own push never triggers it.

mod common;

use std::time::{Duration, Instant};

use common::skopeo::{push_base, Variant};
use common::*;

/// How long a triggered run may take to appear: generous, only a failure waits this long.
const APPEAR: Duration = Duration::from_secs(60);

/// Kiln's registry as image names spell it.
fn own(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// skopeo's `--dest-creds` for Kiln's registry: the owner token.
fn owner_creds(server: &TestServer) -> String {
    format!("owner:{}", server.owner_token())
}

/// Creates build task `name` whose Dockerfile starts `FROM base` and pushes `image`. Without
/// the build cache, so that each build is a new image (a new digest) even on the same base's
/// layers, as a real base update would make it.
async fn create_task(server: &TestServer, name: &str, base: &str, image: &str) {
    let dockerfile = format!("FROM {base}\nRUN echo {name} > /{name}\n");
    let url = serve_tarball(tar_gz(&[("Dockerfile", &dockerfile)])).await;
    let context = format!("{url}/ctx.tar.gz");
    let out = server
        .kiln_output(&[
            "task",
            "create",
            "--name",
            name,
            "--context",
            &context,
            "-t",
            image,
            "--no-cache",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
}

/// Runs task `name` by hand and waits for it to succeed.
async fn run_task(server: &TestServer, name: &str) {
    let out = server.kiln_output(&["task", "run", "--name", name]).await;
    assert_eq!(out.code, 0, "{out:#?}");
}

/// The task's runs, newest first, as `task list-runs -o json` shows them.
async fn task_runs(server: &TestServer, name: &str) -> Vec<serde_json::Value> {
    let out = server
        .kiln_output(&["task", "list-runs", "--name", name, "-o", "json"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    runs["runs"].as_array().unwrap().clone()
}

/// The task's runs an image update started.
async fn image_update_runs(server: &TestServer, name: &str) -> Vec<serde_json::Value> {
    let runs = task_runs(server, name).await;
    runs.into_iter()
        .filter(|r| r["trigger"] == "ImageUpdate")
        .collect()
}

/// Waits for the task's first ImageUpdate run and for it to end; returns it as `run show`
/// sees it once finished.
async fn triggered_run(server: &TestServer, name: &str) -> serde_json::Value {
    let deadline = Instant::now() + APPEAR;
    let id = loop {
        if let Some(run) = image_update_runs(server, name).await.first() {
            break run["id"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "task '{name}' was not triggered by its base image"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server
        .wait_status(&id, "Succeeded", Duration::from_secs(120))
        .await
}

/// `task show`'s text.
async fn show(server: &TestServer, name: &str) -> String {
    let out = server.kiln_output(&["task", "show", "--name", name]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out.stdout
}

/// Sets up task `watcher`, built on a base of its own in Kiln's registry, to show when the
/// events up to now were handled; returns that base.
async fn watcher(server: &TestServer) -> String {
    let sentinel = format!("{}/base/sentinel:latest", own(server));
    push_base(&sentinel, Variant::Index, Some(&owner_creds(server))).await;
    let image = format!("{}/watcher:1", own(server));
    create_task(server, "watcher", &sentinel, &image).await;
    run_task(server, "watcher").await;
    sentinel
}

/// Returns once every event recorded before this call was handled: events are handled in
/// order, so once a later push triggered `watcher`, the earlier ones were handled too.
async fn events_handled(server: &TestServer, sentinel: &str) {
    push_base(sentinel, Variant::Amd64, Some(&owner_creds(server))).await;
    triggered_run(server, "watcher").await;
}

#[tokio::test]
async fn a_base_pushed_to_kilns_registry_runs_its_dependant_with_from_and_to() {
    let server = TestServer::start().await;
    let base = format!("{}/base/alpine-ish:latest", own(&server));
    let first = push_base(&base, Variant::Index, Some(&owner_creds(&server))).await;
    let app = format!("{}/app:latest", own(&server));
    create_task(&server, "app", &base, &app).await;
    // Known only once the task ran: nothing tracked, nothing shown.
    assert!(!show(&server, "app").await.contains("Base images:"));
    run_task(&server, "app").await;
    let shown = show(&server, "app").await;
    assert!(
        shown.contains(&format!("{base}@{first} (runtime)")),
        "{shown}"
    );
    assert!(
        shown.contains("Base trigger:    enabled (Runtime)"),
        "{shown}"
    );

    let second = push_base(&base, Variant::Amd64, Some(&owner_creds(&server))).await;
    assert_ne!(first, second);
    let run = triggered_run(&server, "app").await;
    assert_eq!(run["trigger"], "ImageUpdate");
    assert_eq!(run["triggerDetail"]["image"], base.as_str());
    assert_eq!(run["triggerDetail"]["from"], first.as_str());
    assert_eq!(run["triggerDetail"]["to"], second.as_str());
    let id = run["id"].as_str().unwrap();
    let out = server.kiln_output(&["run", "show", id]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("ImageUpdate"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("from={first}, image={base}, to={second}")),
        "{}",
        out.stdout
    );
    // The run replaced the tracked digest; the change fired once.
    assert!(show(&server, "app")
        .await
        .contains(&format!("{base}@{second}")));
    assert_eq!(image_update_runs(&server, "app").await.len(), 1);
}

#[tokio::test]
async fn a_disabled_trigger_fires_nothing_and_a_bad_type_is_refused() {
    let server = TestServer::start().await;
    let base = format!("{}/base/quiet:latest", own(&server));
    push_base(&base, Variant::Index, Some(&owner_creds(&server))).await;
    create_task(
        &server,
        "quiet",
        &base,
        &format!("{}/quiet:1", own(&server)),
    )
    .await;
    run_task(&server, "quiet").await;
    let sentinel = watcher(&server).await;
    let out = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "quiet",
            "--base-image-trigger-enabled",
            "false",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains("Base trigger:    disabled"),
        "{}",
        out.stdout
    );

    push_base(&base, Variant::Amd64, Some(&owner_creds(&server))).await;
    events_handled(&server, &sentinel).await;
    assert!(image_update_runs(&server, "quiet").await.is_empty());

    let bad = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "quiet",
            "--base-image-trigger-type",
            "Sometimes",
        ])
        .await;
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("use Runtime or All"), "{}", bad.stderr);
}

#[tokio::test]
async fn a_task_is_not_triggered_by_its_own_push() {
    let server = TestServer::start().await;
    // `selfish` builds on the image it pushes.
    let itself = format!("{}/selfish:latest", own(&server));
    push_base(&itself, Variant::Index, Some(&owner_creds(&server))).await;
    create_task(&server, "selfish", &itself, &itself).await;
    let sentinel = watcher(&server).await;
    // Its push moves the tag it is based on.
    run_task(&server, "selfish").await;

    events_handled(&server, &sentinel).await;
    assert!(image_update_runs(&server, "selfish").await.is_empty());
}

#[tokio::test]
async fn a_chain_rebuilds_in_order_each_once() {
    let server = TestServer::start().await;
    let creds = owner_creds(&server);
    let base = format!("{}/chain/base:latest", own(&server));
    let app = format!("{}/chain/app:latest", own(&server));
    let debug = format!("{}/chain/app-debug:latest", own(&server));
    push_base(&base, Variant::Index, Some(&creds)).await;
    create_task(&server, "app", &base, &app).await;
    create_task(&server, "app-debug", &app, &debug).await;
    run_task(&server, "app").await;
    run_task(&server, "app-debug").await;

    let moved = push_base(&base, Variant::Amd64, Some(&creds)).await;
    let app_run = triggered_run(&server, "app").await;
    assert_eq!(app_run["triggerDetail"]["to"], moved.as_str());
    let debug_run = triggered_run(&server, "app-debug").await;
    // In order: app-debug rebuilt on the image app's triggered run pushed.
    let pushed = &app_run["outputImages"][0]["digest"];
    assert_eq!(debug_run["triggerDetail"]["image"], app.as_str());
    assert_eq!(&debug_run["triggerDetail"]["to"], pushed);
    let shown = show(&server, "app-debug").await;
    assert!(
        shown.contains(&format!("{app}@{}", pushed.as_str().unwrap())),
        "{shown}"
    );
    assert_eq!(image_update_runs(&server, "app").await.len(), 1);
    assert_eq!(image_update_runs(&server, "app-debug").await.len(), 1);
}

#[tokio::test]
async fn a_base_on_another_registry_is_noticed_by_polling() {
    let server = TestServer::start_with(|args| {
        args.base_image_poll_interval = Duration::from_millis(200);
    })
    .await;
    let base = format!("{REGISTRY}/{}:latest", unique_repo("base"));
    let first = push_base(&base, Variant::Index, None).await;
    let image = format!("{REGISTRY}/{}:latest", unique_repo("polled"));
    create_task(&server, "polled", &base, &image).await;
    run_task(&server, "polled").await;
    assert!(show(&server, "polled")
        .await
        .contains(&format!("{base}@{first}")));

    let second = push_base(&base, Variant::Amd64, None).await;
    let run = triggered_run(&server, "polled").await;
    assert_eq!(run["triggerDetail"]["from"], first.as_str());
    assert_eq!(run["triggerDetail"]["to"], second.as_str());
    assert_eq!(image_update_runs(&server, "polled").await.len(), 1);
}
