//! `kiln task` commands of the timer tests: a task that runs one command, and
//! `kiln task timer VERB`.

use super::{CliRun, TestServer};

/// `kiln task create --name NAME --context /dev/null --cmd 'busybox echo tick' EXTRA...`.
pub async fn create_cmd_task(server: &TestServer, name: &str, extra: &[&str]) -> CliRun {
    let mut args = vec!["task", "create", "--name", name, "--context", "/dev/null"];
    args.extend(["--cmd", "busybox echo tick"]);
    args.extend_from_slice(extra);
    server.kiln_output(&args).await
}

/// `kiln task timer VERB --name TASK --timer-name TIMER EXTRA...`.
pub async fn timer_cmd(
    server: &TestServer,
    verb: &str,
    task: &str,
    timer: &str,
    extra: &[&str],
) -> CliRun {
    let mut args = vec!["task", "timer", verb, "--name", task, "--timer-name", timer];
    args.extend_from_slice(extra);
    server.kiln_output(&args).await
}
