//! Timers firing, on a clock the test moves: one run per occurrence with trigger Timer and the
//! timer's detail, never two for one occurrence (a restart at the firing minute, two servers
//! on one database), a missed occurrence skipped with a log line, and disabled timers and
//! tasks passing their occurrences without a run. No worker runs: the runs stay queued.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::timer_cli::{create_cmd_task, timer_cmd};
use common::*;
use kiln::clock::{ManualClock, SharedClock};
use kiln::server::Server;

/// A minute before the timers of these tests fire ('0 2 * * *').
const START: &str = "2030-01-01T01:59:30Z";
const FIRST: &str = "2030-01-01T02:00:00Z";
const SECOND: &str = "2030-01-02T02:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn start(clock: &ManualClock) -> TestServer {
    let shared: SharedClock = Arc::new(clock.clone());
    TestServer::start_with_clock(shared, |a| a.workers = 0).await
}

/// A command task, which must be created.
async fn create_task(server: &TestServer, name: &str, extra: &[&str]) {
    let out = create_cmd_task(server, name, extra).await;
    assert_eq!(out.code, 0, "{out:#?}");
}

async fn runs_of(server: &TestServer, task: &str) -> Vec<serde_json::Value> {
    let list = server.get_json(&format!("/api/tasks/{task}/runs")).await;
    list["runs"].as_array().unwrap().clone()
}

async fn timer(server: &TestServer, task: &str, name: &str) -> serde_json::Value {
    let list = server.get_json(&format!("/api/tasks/{task}/timers")).await;
    let timers = list["timers"].as_array().unwrap();
    timers
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no timer {name}: {list:#}"))
        .clone()
}

/// Polls the timer until `done` holds, for at most a minute.
async fn wait_timer(
    server: &TestServer,
    task: &str,
    name: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = timer(server, task, name).await;
        if done(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timer never got there: {t:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn time_of(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    v.as_str().map(at)
}

/// Waits until the timer's last firing is `occurrence` with its run queued: the run's ID.
async fn wait_fired(server: &TestServer, task: &str, name: &str, occurrence: &str) -> String {
    let t = wait_timer(server, task, name, |t| {
        time_of(&t["lastFiredAt"]) == Some(at(occurrence)) && t["lastRunId"].is_string()
    })
    .await;
    t["lastRunId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_timer_queues_one_run_per_occurrence_with_its_detail() {
    let clock = ManualClock::at(at(START));
    let server = start(&clock).await;
    create_task(&server, "nightly", &["--schedule", "0 2 * * *"]).await;
    let t1 = timer(&server, "nightly", "t1").await;
    assert_eq!(time_of(&t1["nextFireAt"]), Some(at(FIRST)), "{t1:#}");
    assert!(t1["lastFiredAt"].is_null());

    clock.set(at(FIRST) + Duration::from_secs(1));
    let id = wait_fired(&server, "nightly", "t1", FIRST).await;
    let runs = runs_of(&server, "nightly").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = server.run_json(&id).await;
    assert_eq!(run["trigger"], "Timer", "{run:#}");
    let detail = &run["triggerDetail"];
    assert_eq!(detail["timer"], "t1", "{run:#}");
    assert_eq!(detail["schedule"], "0 2 * * *");
    assert_eq!(time_of(&detail["occurrence"]), Some(at(FIRST)), "{run:#}");
    let t1 = timer(&server, "nightly", "t1").await;
    assert_eq!(time_of(&t1["nextFireAt"]), Some(at(SECOND)), "{t1:#}");
    let shown = server.kiln_output(&["run", "show", &id]).await;
    assert!(shown.stdout.contains("Timer"), "{shown:#?}");
    assert!(
        shown.stdout.contains("timer=t1") && shown.stdout.contains("2030-01-01T02:00:00"),
        "{shown:#?}"
    );

    // The next day: exactly one more.
    clock.set(at(SECOND) + Duration::from_secs(1));
    let second = wait_fired(&server, "nightly", "t1", SECOND).await;
    assert_ne!(second, id);
    assert_eq!(runs_of(&server, "nightly").await.len(), 2);
}

#[tokio::test]
async fn a_restart_at_the_firing_minute_fires_once() {
    let clock = ManualClock::at(at(START));
    let mut server = start(&clock).await;
    create_task(&server, "restarted", &["--schedule", "0 2 * * *"]).await;
    // A sentinel a minute later shows the restarted scheduler has looked past 02:00.
    create_task(&server, "sentinel", &["--schedule", "1 2 * * *"]).await;
    clock.set(at(FIRST) + Duration::from_secs(5));
    wait_fired(&server, "restarted", "t1", FIRST).await;

    server.restart_with(|_| {}).await;
    clock.set(at("2030-01-01T02:01:05Z"));
    wait_fired(&server, "sentinel", "t1", "2030-01-01T02:01:00Z").await;
    assert_eq!(runs_of(&server, "restarted").await.len(), 1);

    // Down just before the next occurrence and back up 20 s after it: fired, once.
    clock.set(at("2030-01-02T01:59:50Z"));
    server
        .restart_with(|_| clock.set(at(SECOND) + Duration::from_secs(20)))
        .await;
    wait_fired(&server, "restarted", "t1", SECOND).await;
    assert_eq!(runs_of(&server, "restarted").await.len(), 2);
}

#[tokio::test]
async fn two_servers_on_one_database_fire_an_occurrence_once() {
    let clock = ManualClock::at(at(START));
    let server = start(&clock).await;
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("shared{i}");
        create_task(&server, &name, &["--schedule", "0 2 * * *"]).await;
        names.push(name);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shared: SharedClock = Arc::new(clock.clone());
    let other = Server::start_with_clock(server.args.clone(), listener, shared)
        .await
        .unwrap();

    clock.set(at(FIRST) + Duration::from_secs(1));
    for name in &names {
        wait_fired(&server, name, "t1", FIRST).await;
    }
    // Both schedulers have passed 02:01 once the sentinel fired.
    create_task(&server, "sentinel2", &["--schedule", "1 2 * * *"]).await;
    clock.set(at("2030-01-01T02:01:01Z"));
    wait_fired(&server, "sentinel2", "t1", "2030-01-01T02:01:00Z").await;
    for name in &names {
        assert_eq!(runs_of(&server, name).await.len(), 1, "{name}");
    }
    other.shutdown().await;
}

#[tokio::test]
async fn an_occurrence_missed_while_down_is_skipped_and_logged() {
    let logs = captured_logs::captured_logs();
    let clock = ManualClock::at(at(START));
    let mut server = start(&clock).await;
    create_task(&server, "missed", &["--schedule", "missedtimer:0 2 * * *"]).await;
    server
        .restart_with(|_| clock.set(at("2030-01-01T02:05:00Z")))
        .await;
    let t = wait_timer(&server, "missed", "missedtimer", |t| {
        time_of(&t["nextFireAt"]) == Some(at(SECOND))
    })
    .await;
    assert!(t["lastFiredAt"].is_null(), "{t:#}");
    assert!(runs_of(&server, "missed").await.is_empty());
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let skipped: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("missedtimer") && l.contains("skipped, not made up"))
        .collect();
    assert_eq!(skipped.len(), 1, "{text}");
    assert!(skipped[0].contains("task=missed"), "{}", skipped[0]);
    assert!(skipped[0].contains("2030-01-01T02:00:00"), "{}", skipped[0]);
}

#[tokio::test]
async fn disabled_timers_and_tasks_pass_their_occurrences_without_a_run() {
    let clock = ManualClock::at(at(START));
    let server = start(&clock).await;
    create_task(&server, "quiet", &[]).await;
    let off = ["--schedule", "0 2 * * *", "--enabled", "false"];
    let out = timer_cmd(&server, "add", "quiet", "off", &off).await;
    assert_eq!(out.code, 0, "{out:#?}");
    create_task(
        &server,
        "paused",
        &["--schedule", "0 2 * * *", "--status", "Disabled"],
    )
    .await;

    clock.set(at(FIRST) + Duration::from_secs(1));
    let passed = wait_timer(&server, "quiet", "off", |t| {
        time_of(&t["nextFireAt"]) == Some(at(SECOND))
    })
    .await;
    assert!(passed["lastFiredAt"].is_null(), "{passed:#}");
    // The disabled task's timer fired, and its run was refused.
    let t1 = wait_timer(&server, "paused", "t1", |t| {
        time_of(&t["nextFireAt"]) == Some(at(SECOND))
    })
    .await;
    assert_eq!(time_of(&t1["lastFiredAt"]), Some(at(FIRST)), "{t1:#}");
    assert!(t1["lastRunId"].is_null(), "{t1:#}");
    assert!(runs_of(&server, "quiet").await.is_empty());
    assert!(runs_of(&server, "paused").await.is_empty());

    // Enabled again, the timer fires at its next occurrence.
    let enable = ["--enabled", "true"];
    let out = timer_cmd(&server, "update", "quiet", "off", &enable).await;
    assert_eq!(out.code, 0, "{out:#?}");
    clock.set(at(SECOND) + Duration::from_secs(1));
    wait_fired(&server, "quiet", "off", SECOND).await;
    assert_eq!(runs_of(&server, "quiet").await.len(), 1);
}
