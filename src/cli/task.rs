//! `kiln task create | list | show | update | delete | run | list-runs | logs`: saved tasks,
//! with the flags of `az acr task`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kiln_worker::protocol::{PlatformSet, RunId, Secret};

use super::build::{finish, interrupted, pack_and_upload};
use super::client::KilnClient;
use super::follow::print_log;
use super::format::{duration, print_json, status_cell, table, timestamp};
use super::pairs::{pairs, secrets};
use super::run_steps::folder_context;
use super::{CliError, OutputArgs, OutputFormat, ReconnectArgs, ServerArgs};
use crate::config::parse_secret;
use crate::wire::tasks::{
    CreateTask, RunTask, Task, TaskKind, TaskList, TaskName, TaskRunsQuery, TaskStatus, UpdateTask,
};
use crate::wire::{Run, RunList};

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Save a task: a Dockerfile build, a multi-step task file (.yaml) or a command.
    Create(CreateArgs),
    /// List tasks.
    List(OutputArgs),
    /// Show one task; secret values show as ***.
    Show(ShowArgs),
    /// Change a task: only the flags given change; --set and --arg merge into what it has.
    Update(UpdateArgs),
    /// Delete a task. Its runs stay.
    Delete(NameArgs),
    /// Run a task now, stream its log and exit with its result, as `kiln build` does.
    Run(RunArgs),
    /// List a task's runs, newest first.
    ListRuns(ListRunsArgs),
    /// Print the log of a task's latest run (or of --run-id).
    Logs(LogsArgs),
    /// Check a task YAML offline: unknown keys, types, steps, templates (errors with line:column).
    Validate(super::task_validate::ValidateArgs),
    /// A task's timers: cron schedules that run it.
    #[command(subcommand)]
    Timer(super::task_timer::TimerCommand),
    /// List a task's recent webhook deliveries: what each started, or why nothing ran.
    Deliveries(ShowArgs),
}

/// What `create` and `update` take, as `az acr task create` does.
#[derive(Debug, Args)]
pub struct DefinitionArgs {
    /// A git URL (`https://host/repo.git#ref:subdir`), a tarball URL, or /dev/null with --cmd.
    #[arg(short = 'c', long)]
    pub context: Option<String>,
    /// A Dockerfile (a build task; default: Dockerfile) or a .yaml/.yml task file, relative
    /// to the context.
    #[arg(short = 'f', long)]
    pub file: Option<String>,
    /// One command step, `IMAGE [ARGS...]`, instead of a file.
    #[arg(long)]
    pub cmd: Option<String>,
    /// Image name, templated (`web:<<.Run.ID>>`, `web:{{.Values.tag}}`); repeatable. On
    /// update, replaces the task's images.
    #[arg(short = 't', long = "image")]
    pub images: Vec<String>,
    /// Build argument NAME=VALUE; repeatable.
    #[arg(long = "arg")]
    pub args: Vec<String>,
    /// Secret build argument NAME=VALUE, stored sealed and shown as ***; repeatable.
    #[arg(long = "secret-arg")]
    pub secret_args: Vec<String>,
    /// The Dockerfile stage to build ('' on update: the last one).
    #[arg(long)]
    pub target: Option<String>,
    /// Build, but push nothing (`--no-push false` on update: push again).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub no_push: Option<bool>,
    /// Do not use the build cache.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub no_cache: Option<bool>,
    /// Target platform(s), os/arch[/variant] (default: linux/amd64).
    #[arg(long)]
    pub platform: Option<PlatformSet>,
    /// A value NAME=VALUE for `.Values.NAME`; repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// A secret value NAME=VALUE, stored sealed and shown as ***; repeatable.
    #[arg(long = "set-secret")]
    pub set_secret: Vec<String>,
    /// A YAML file of values; `--set` wins over it.
    #[arg(long)]
    pub values: Option<PathBuf>,
    /// Run timeout in seconds (default: the server's, 3600).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Enabled or Disabled: a disabled task cannot run.
    #[arg(long)]
    pub status: Option<TaskStatus>,
    /// HTTP credentials for a private git context, stored sealed.
    #[arg(long, value_parser = parse_secret)]
    pub git_access_token: Option<Secret>,
    // Timers (issue 11).
    /// A timer, `[NAME:]CRON` in UTC ('0 2 * * *', 'hourly:0 * * * Mon-Fri'); repeatable;
    /// unnamed ones are t1, t2... On update, the task's timers become exactly these.
    #[arg(long = "schedule")]
    pub schedules: Vec<String>,
    // Source triggers (git webhooks).
    #[command(flatten)]
    pub triggers: super::task_hooks::TriggerArgs,
    #[command(flatten)]
    pub base_image: super::task_base_images::BaseImageTriggerArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The task's name: letters, digits, '-' and '_', up to 50.
    #[arg(short = 'n', long)]
    pub name: TaskName,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    /// Remove a value, secret value or build argument by name; repeatable.
    #[arg(long)]
    pub unset: Vec<String>,
    #[command(flatten)]
    pub rotate: super::task_hooks::RotateArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    /// A value NAME=VALUE for this run, over the task's; repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// A secret value NAME=VALUE for this run; repeatable.
    #[arg(long = "set-secret")]
    pub set_secret: Vec<String>,
    /// A local folder to build instead of the task's context: uploaded first.
    #[arg(short = 'c', long)]
    pub context: Option<PathBuf>,
    /// Target platform(s) for this run.
    #[arg(long)]
    pub platform: Option<PlatformSet>,
    /// Build, but push nothing, this time.
    #[arg(long)]
    pub no_push: bool,
    /// Print the run ID once queued and return.
    #[arg(long)]
    pub no_wait: bool,
    /// Wait for the run without streaming its log.
    #[arg(long, conflicts_with = "no_wait")]
    pub no_logs: bool,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ListRunsArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    /// How many runs to show.
    #[arg(long, default_value_t = 15)]
    pub top: u32,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    /// The run to show; default: the task's latest.
    #[arg(long)]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: TaskCommand) -> Result<(), CliError> {
    match cmd {
        TaskCommand::Create(a) => create(a).await,
        TaskCommand::List(a) => list(a).await,
        TaskCommand::Show(a) => {
            let client = KilnClient::new(&a.server)?;
            let task: Task = client.get_json(&task_path(&a.name), &()).await?;
            print_task(&task, a.output, client.server())
        }
        TaskCommand::Update(a) => update(a).await,
        TaskCommand::Delete(a) => {
            KilnClient::new(&a.server)?
                .delete(&task_path(&a.name))
                .await?;
            eprintln!("Task '{}' deleted", a.name);
            Ok(())
        }
        TaskCommand::Run(a) => run_task(a).await,
        TaskCommand::ListRuns(a) => list_runs(a).await,
        TaskCommand::Logs(a) => logs(a).await,
        TaskCommand::Validate(a) => super::task_validate::run(a),
        TaskCommand::Timer(a) => super::task_timer::run(a).await,
        TaskCommand::Deliveries(a) => super::task_hooks::deliveries(a).await,
    }
}

fn task_path(name: &str) -> String {
    format!("/api/tasks/{name}")
}

async fn create(a: CreateArgs) -> Result<(), CliError> {
    let d = a.definition;
    let Some(context) = d.context else {
        return Err(CliError::Input(
            "--context is required: a git URL, a tarball URL or /dev/null".into(),
        ));
    };
    let req = CreateTask {
        name: a.name,
        context,
        file: d.file,
        cmd: d.cmd,
        images: d.images,
        args: pairs("--arg", &d.args)?,
        secret_args: secrets("--secret-arg", &d.secret_args)?,
        target: d.target,
        no_push: d.no_push.unwrap_or(false),
        no_cache: d.no_cache.unwrap_or(false),
        platform: d.platform,
        values: pairs("--set", &d.set)?,
        secret_values: secrets("--set-secret", &d.set_secret)?,
        values_file: d.values.as_deref().map(read_values).transpose()?,
        timeout_secs: d.timeout,
        status: d.status.unwrap_or_default(),
        git_access_token: d.git_access_token,
        schedules: checked_schedules(d.schedules)?,
        source_triggers: d.triggers.settings(false),
        base_image_trigger_enabled: d.base_image.base_image_trigger_enabled,
        base_image_trigger_type: d.base_image.base_image_trigger_type,
    };
    let client = KilnClient::new(&a.server)?;
    let task: Task = client.post_json("/api/tasks", &req).await?;
    print_task(&task, a.output, client.server())
}

async fn update(a: UpdateArgs) -> Result<(), CliError> {
    let d = a.definition;
    let req = UpdateTask {
        context: d.context,
        file: d.file,
        cmd: d.cmd,
        images: (!d.images.is_empty()).then_some(d.images),
        args: pairs("--arg", &d.args)?,
        secret_args: secrets("--secret-arg", &d.secret_args)?,
        target: d.target,
        no_push: d.no_push,
        no_cache: d.no_cache,
        platform: d.platform,
        values: pairs("--set", &d.set)?,
        secret_values: secrets("--set-secret", &d.set_secret)?,
        unset: a.unset,
        values_file: d.values.as_deref().map(read_values).transpose()?,
        timeout_secs: d.timeout,
        status: d.status,
        git_access_token: d.git_access_token,
        schedules: (!d.schedules.is_empty())
            .then(|| checked_schedules(d.schedules))
            .transpose()?,
        source_triggers: d.triggers.settings(a.rotate.rotate_webhook_secret),
        base_image_trigger_enabled: d.base_image.base_image_trigger_enabled,
        base_image_trigger_type: d.base_image.base_image_trigger_type,
    };
    let client = KilnClient::new(&a.server)?;
    let task: Task = client.patch_json(&task_path(&a.name), &req).await?;
    print_task(&task, a.output, client.server())
}

async fn list(a: OutputArgs) -> Result<(), CliError> {
    let list: TaskList = KilnClient::new(&a.server)?
        .get_json("/api/tasks", &())
        .await?;
    if a.output == OutputFormat::Json {
        return print_json(&list);
    }
    let rows: Vec<[String; 6]> = list
        .tasks
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                format!("{:?}", t.kind).to_lowercase(),
                t.status.to_string(),
                t.context.clone(),
                what(t),
                timestamp(t.updated_at),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            ["NAME", "KIND", "STATUS", "CONTEXT", "FILE/CMD", "UPDATED"],
            &rows
        )
    );
    Ok(())
}

fn what(t: &Task) -> String {
    t.cmd.clone().or_else(|| t.file.clone()).unwrap_or_default()
}

fn print_task(t: &Task, output: OutputFormat, server: &str) -> Result<(), CliError> {
    if output == OutputFormat::Json {
        return print_json(t);
    }
    let field = |k: &str, v: String| println!("{k:<16} {v}");
    field("Name:", t.name.clone());
    field("Kind:", format!("{:?}", t.kind).to_lowercase());
    field("Status:", t.status.to_string());
    field("Context:", t.context.clone());
    if let Some(file) = &t.file {
        field("File:", file.clone());
    }
    if let Some(cmd) = &t.cmd {
        field("Command:", cmd.clone());
    }
    if !t.images.is_empty() {
        field("Images:", t.images.join(", "));
    }
    field("Platform:", t.platform.to_string());
    field("Push:", if t.push { "yes" } else { "no" }.into());
    field("No cache:", if t.no_cache { "yes" } else { "no" }.into());
    if let Some(target) = &t.target {
        field("Target:", target.clone());
    }
    for (heading, map) in [
        ("Arguments:", &t.args),
        ("Secret args:", &t.secret_args),
        ("Values:", &t.values),
        ("Secret values:", &t.secret_values),
    ] {
        for (i, (k, v)) in map.iter().enumerate() {
            field(if i == 0 { heading } else { "" }, format!("{k}={v}"));
        }
    }
    if let Some(file) = &t.values_file {
        field("Values file:", format!("{} lines", file.lines().count()));
    }
    if let Some(token) = &t.git_access_token {
        field("Git token:", token.clone());
    }
    field("Timeout:", format!("{}s", t.timeout_secs));
    super::task_base_images::print_base_images(t, field);
    let by = |b: &Option<String>| b.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    field(
        "Created:",
        format!("{}{}", timestamp(t.created_at), by(&t.created_by)),
    );
    field(
        "Updated:",
        format!("{}{}", timestamp(t.updated_at), by(&t.updated_by)),
    );
    if !t.timers.is_empty() {
        println!("Timers:");
        print!("{}", super::task_timer::timers_table(&t.timers));
    }
    super::task_hooks::print_triggers(t, server);
    Ok(())
}

/// `--schedule` values the server would refuse stop here, with the same message.
fn checked_schedules(values: Vec<String>) -> Result<Vec<String>, CliError> {
    crate::schedule::timer_specs(&values).map_err(CliError::Input)?;
    Ok(values)
}

async fn run_task(a: RunArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let mut req = RunTask {
        values: pairs("--set", &a.set)?,
        secret_values: secrets("--set-secret", &a.set_secret)?,
        context: None,
        platform: a.platform.clone(),
        no_push: a.no_push,
    };
    if let Some(dir) = &a.context {
        // The task's Dockerfile or task file, inside the folder that replaces its context.
        let task: Task = client.get_json(&task_path(&a.name), &()).await?;
        req.context = match task.kind {
            TaskKind::Build => {
                let dockerfile = dir.join(task.file.as_deref().unwrap_or("Dockerfile"));
                Some(pack_and_upload(&client, dir.clone(), dockerfile).await?.0)
            }
            TaskKind::Steps | TaskKind::Cmd => {
                folder_context(&client, dir.clone(), task.file.as_deref()).await?
            }
        };
    }
    let run: Run = client
        .post_json(&format!("{}/runs", task_path(&a.name)), &req)
        .await?;
    eprintln!("Queued a run of task '{}' with ID: {}", a.name, run.id);
    if let Some(warning) = &run.warning {
        eprintln!("warning: {warning}");
    }
    if a.no_wait {
        println!("{}", run.id);
        return Ok(());
    }
    eprintln!("Waiting for an agent...");
    let reconnect = a.reconnect.reconnect_timeout;
    let followed = tokio::select! {
        r = async {
            if a.no_logs {
                print_log(&client, run.id, true, reconnect, &mut std::io::sink()).await
            } else {
                print_log(&client, run.id, true, reconnect, &mut std::io::stdout()).await
            }
        } => r,
        _ = tokio::signal::ctrl_c() => return Err(interrupted(&run)),
    };
    followed?;
    finish(&client.run(&run.id.to_string()).await?, !a.no_logs)
}

async fn list_runs(a: ListRunsArgs) -> Result<(), CliError> {
    let list = task_runs(&KilnClient::new(&a.server)?, &a.name, a.top).await?;
    if a.output == OutputFormat::Json {
        return print_json(&list);
    }
    let rows: Vec<[String; 5]> = list
        .runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                status_cell(r),
                r.trigger.clone(),
                r.started_at.map(timestamp).unwrap_or_default(),
                duration(r).unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            ["RUN ID", "STATUS", "TRIGGER", "STARTED", "DURATION"],
            &rows
        )
    );
    Ok(())
}

async fn task_runs(client: &KilnClient, name: &str, top: u32) -> Result<RunList, CliError> {
    let query = TaskRunsQuery { top: Some(top) };
    client
        .get_json(&format!("{}/runs", task_path(name)), &query)
        .await
}

/// The log of `--run-id`, else of the task's latest run; a run still going is followed.
async fn logs(a: LogsArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let run = match &a.run_id {
        Some(id) => client.run(id).await?,
        None => {
            let latest = task_runs(&client, &a.name, 1)
                .await?
                .runs
                .into_iter()
                .next();
            let run = latest.ok_or_else(|| {
                CliError::Rejected(format!(
                    "task '{}' has no runs yet: start one with 'kiln task run --name {}'",
                    a.name, a.name
                ))
            })?;
            eprintln!("Showing logs of the last created run.");
            eprintln!("Run ID: {}", run.id);
            run
        }
    };
    let id: RunId = run.id;
    let follow = !run.status.is_finished();
    let mut stdout = std::io::stdout();
    tokio::select! {
        r = print_log(&client, id, follow, a.reconnect.reconnect_timeout, &mut stdout) => r,
        _ = tokio::signal::ctrl_c(), if follow => Err(interrupted(&run)),
    }
}

/// Reads a `--values` file: a missing or unreadable one stops here, before anything is sent.
pub(super) fn read_values(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::Input(format!(
            "cannot read the --values file '{}': {e}",
            path.display()
        ))
    })
}
