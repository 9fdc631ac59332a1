//! When the server goes away, `kiln build` and `kiln run logs --follow` say they are
//! reconnecting, and give up after `--reconnect-timeout` with exit code 7, not the 1 of a
//! failed build.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_clients_say_they_lost_the_server_and_exit_7() {
    // No workers: the run waits in the queue, and its log stream stays open.
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let mut build = server.kiln(&["build", "--no-push", ctx.path().to_str().unwrap()]);
    build.env("KILN_RECONNECT_TIMEOUT", "2s");
    let mut build = Live::spawn(build);
    build.until(|l| l.starts_with("Waiting in the queue")).await;
    let id = server.get_json("/api/runs").await["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut logs = server.kiln(&["run", "logs", &id, "--follow"]);
    logs.env("KILN_RECONNECT_TIMEOUT", "2s");
    let mut logs = Live::spawn(logs);
    logs.until(|l| l.starts_with("Waiting in the queue")).await;

    drop(server);

    for (name, live) in [("build", build), ("run logs --follow", logs)] {
        let (code, _, stderr) = live.finish().await;
        assert_eq!(code, Some(7), "{name}: {stderr}");
        assert_eq!(
            stderr.matches("Lost the server, reconnecting…").count(),
            1,
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains("error: lost the server at http://127.0.0.1:")
                && stderr.contains("no answer for 2s")
                && stderr.contains(&format!("kiln run logs {id} --follow")),
            "{name}: {stderr}"
        );
    }
}
