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

/// A TCP proxy in front of the server whose connections can be cut, as a restarting load
/// balancer would.
struct Proxy {
    url: String,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(to: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let to = to.trim_start_matches("http://").to_string();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let to = to.clone();
                held.lock().unwrap().push(tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(to).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }));
            }
        });
        Proxy { url, connections }
    }

    /// Drops every open connection.
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_reconnects_and_says_so() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let id = server.queue_scratch_run().await;
    let proxy = Proxy::start(&server.url).await;
    let mut logs = server.kiln(&["run", "logs", &id, "--follow"]);
    logs.env("KILN_SERVER", &proxy.url)
        .env("KILN_TOKEN", server.owner_token());
    let mut logs = Live::spawn(logs);
    logs.until(|l| l.starts_with("Waiting in the queue")).await;

    proxy.cut();
    // Reconnected: the stream goes on, and the run's end comes through it.
    let mut back = false;
    for _ in 0..100 {
        if !proxy.connections.lock().unwrap().is_empty() {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the CLI did not come back");
    let cancel = server.kiln_output(&["run", "cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{cancel:#?}");

    let (code, stdout, stderr) = logs.finish().await;
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert_eq!(
        stderr.matches("Lost the server, reconnecting…").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Reconnected to the server.").count(),
        1,
        "{stderr}"
    );
    // The log resumes where it broke: nothing printed twice.
    assert!(!stdout.contains("Waiting in the queue"), "{stdout}");
    assert!(
        stdout.contains(&format!("Run ID: {id} was canceled")),
        "{stdout}"
    );
}
