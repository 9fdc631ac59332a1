//! Managing timers: `kiln task create|update --schedule`, `kiln task timer add|list|update|
//! remove` and `/api/tasks/{name}/timers`; bad schedules refused naming the field with
//! nothing stored; changing timers needs the tasks role, listing them read access.

mod common;

use common::timer_cli::{create_cmd_task, timer_cmd};
use common::*;

async fn status_of(resp: reqwest::RequestBuilder) -> (u16, String) {
    let resp = resp.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn timers_round_trip_through_the_cli() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let schedules = [
        "--schedule",
        "0 2 * * *",
        "--schedule",
        "hourly:0 * * * Mon-Fri",
    ];
    let out = create_cmd_task(&server, "nightly", &schedules).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Timers:"), "{}", out.stdout);

    let weekly = ["--schedule", "0 4 * * Sun"];
    let out = timer_cmd(&server, "add", "nightly", "weekly", &weekly).await;
    assert_eq!(out.code, 0, "{out:#?}");
    // The same name again is a conflict.
    let out = timer_cmd(&server, "add", "nightly", "weekly", &weekly).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("already has a timer 'weekly'"),
        "{out:#?}"
    );

    let out = server
        .kiln_output(&["task", "timer", "list", "--name", "nightly"])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    for column in ["NAME", "SCHEDULE", "ENABLED", "NEXT", "LAST"] {
        assert!(lines[0].contains(column), "{}", out.stdout);
    }
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout))
            .to_string()
    };
    assert!(row("t1").contains("0 2 * * *"), "{}", out.stdout);
    assert!(row("hourly").contains("0 * * * Mon-Fri"), "{}", out.stdout);
    assert!(row("weekly").contains("0 4 * * Sun"), "{}", out.stdout);
    assert!(row("weekly").contains("true"), "{}", out.stdout);

    let change = ["--schedule", "30 5 * * Sat", "--enabled", "false"];
    let out = timer_cmd(&server, "update", "nightly", "weekly", &change).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let list = server.get_json("/api/tasks/nightly/timers").await;
    let weekly = list["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "weekly")
        .unwrap()
        .clone();
    assert_eq!(weekly["schedule"], "30 5 * * Sat", "{list:#}");
    assert_eq!(weekly["enabled"], false);
    let next: chrono::DateTime<chrono::Utc> =
        weekly["nextFireAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.format("%a %H:%M").to_string(), "Sat 05:30");

    let out = timer_cmd(&server, "remove", "nightly", "weekly", &[]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = timer_cmd(&server, "remove", "nightly", "weekly", &[]).await;
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("has no timer 'weekly'"), "{out:#?}");

    // `task update --schedule` makes the timers exactly those given.
    let out = server
        .kiln_output(&[
            "task",
            "update",
            "--name",
            "nightly",
            "--schedule",
            "15 3 * * *",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let task = server.get_json("/api/tasks/nightly").await;
    let timers = task["timers"].as_array().unwrap();
    assert_eq!(timers.len(), 1, "{task:#}");
    assert_eq!(timers[0]["name"], "t1");
    assert_eq!(timers[0]["schedule"], "15 3 * * *");
    let out = server
        .kiln_output(&["task", "show", "--name", "nightly"])
        .await;
    assert!(out.stdout.contains("15 3 * * *"), "{}", out.stdout);
}

#[tokio::test]
async fn a_bad_schedule_is_refused_naming_its_field_and_nothing_is_stored() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let out = create_cmd_task(&server, "bad", &["--schedule", "0 2 * * 7"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("day-of-week field '7'"), "{out:#?}");
    let (code, _) = status_of(server.http().get(format!("{}/api/tasks/bad", server.url))).await;
    assert_eq!(code, 404);

    // Through the API, the server says the same and stores nothing.
    let tasks = format!("{}/api/tasks", server.url);
    let body = serde_json::json!({
        "name": "bad", "context": "/dev/null", "cmd": "busybox true",
        "schedules": ["0 2 * * *", "61 * * * *"],
    });
    let (code, text) = status_of(server.http().post(&tasks).json(&body)).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("minute field '61'"), "{text}");
    let (code, _) = status_of(server.http().get(format!("{tasks}/bad"))).await;
    assert_eq!(code, 404);

    let out = create_cmd_task(&server, "good", &["--schedule", "0 2 * * *"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let timers = format!("{tasks}/good/timers");
    for (schedule, says) in [
        ("0 2 * *", "it has 4 fields"),
        ("0 0 30 Feb *", "never fires"),
        ("* * ? * *", "day-of-month field '?'"),
    ] {
        let body = serde_json::json!({"name": "x", "schedule": schedule});
        let (code, text) = status_of(server.http().post(&timers).json(&body)).await;
        assert_eq!(code, 400, "{schedule}: {text}");
        assert!(text.contains(says), "{schedule}: {text}");
    }
    let out = timer_cmd(&server, "add", "good", "x", &["--schedule", "0 25 * * *"]).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("hour field '25'"), "{out:#?}");
    let bad_month = ["--schedule", "0 2 * Foo *"];
    let out = timer_cmd(&server, "update", "good", "t1", &bad_month).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("month field 'Foo'"), "{out:#?}");
    let body = serde_json::json!({"schedules": ["0 2 * * *", "L * * * *"]});
    let (code, text) = status_of(server.http().patch(format!("{tasks}/good")).json(&body)).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("minute field 'L'"), "{text}");

    let list = server.get_json("/api/tasks/good/timers").await;
    let all = list["timers"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{list:#}");
    assert_eq!(all[0]["schedule"], "0 2 * * *");
}

#[tokio::test]
async fn changing_timers_needs_the_tasks_role_and_listing_them_read() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let out = create_cmd_task(&server, "web", &["--schedule", "0 2 * * *"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let timers = format!("{}/api/tasks/web/timers", server.url);
    let pull = server.create_token("reader", &["pull"], &["*"]).await;
    let http = server.http_as(&pull);
    let body = serde_json::json!({"name": "x", "schedule": "0 3 * * *"});
    let (code, text) = status_of(http.post(&timers).json(&body)).await;
    assert_eq!(code, 403, "{text}");
    let change = serde_json::json!({"enabled": false});
    let (code, _) = status_of(http.patch(format!("{timers}/t1")).json(&change)).await;
    assert_eq!(code, 403);
    let (code, _) = status_of(http.delete(format!("{timers}/t1"))).await;
    assert_eq!(code, 403);
    let (code, text) = status_of(http.get(&timers)).await;
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("\"t1\""), "{text}");

    let manager = server.create_token("tasks-admin", &["tasks"], &["*"]).await;
    let (code, text) = status_of(server.http_as(&manager).post(&timers).json(&body)).await;
    assert_eq!(code, 201, "{text}");
}
