//! `kiln task timer add | list | update | remove`: a task's cron timers, with the flags of
//! `az acr task timer`, and how `task show` prints them.

use clap::{Args, Subcommand};

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
use super::task::ShowArgs;
use super::{CliError, OutputFormat, ServerArgs};
use crate::schedule::{check_timer_name, Cron};
use crate::wire::timers::{CreateTimer, Timer, TimerList, UpdateTimer};

#[derive(Debug, Subcommand)]
pub enum TimerCommand {
    /// Add a timer: a 5-field cron schedule in UTC (minute hour day month weekday).
    Add(AddArgs),
    /// List a task's timers with their next and last firings.
    List(ShowArgs),
    /// Change a timer's schedule or turn it on or off.
    Update(UpdateArgs),
    /// Remove a timer.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The task.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The timer's name, unique in the task.
    #[arg(long)]
    pub timer_name: String,
    /// When it fires, in UTC: e.g. '0 2 * * *', '*/15 * * * Mon-Fri'.
    #[arg(long)]
    pub schedule: String,
    /// false: the timer's occurrences pass without a run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    #[arg(long)]
    pub timer_name: String,
    /// A new schedule: the next firing is counted from now.
    #[arg(long)]
    pub schedule: Option<String>,
    #[arg(long, action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(short = 'n', long)]
    pub name: String,
    #[arg(long)]
    pub timer_name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: TimerCommand) -> Result<(), CliError> {
    match cmd {
        TimerCommand::Add(a) => {
            check_timer_name(&a.timer_name).map_err(CliError::Input)?;
            check_schedule(&a.schedule)?;
            let req = CreateTimer {
                name: a.timer_name,
                schedule: a.schedule,
                enabled: a.enabled,
            };
            let timer: Timer = KilnClient::new(&a.server)?
                .post_json(&timers_path(&a.name), &req)
                .await?;
            print_timers(&[timer], a.output)
        }
        TimerCommand::List(a) => {
            let list: TimerList = KilnClient::new(&a.server)?
                .get_json(&timers_path(&a.name), &())
                .await?;
            match a.output {
                OutputFormat::Json => print_json(&list),
                _ => print_timers(&list.timers, a.output),
            }
        }
        TimerCommand::Update(a) => {
            if let Some(schedule) = &a.schedule {
                check_schedule(schedule)?;
            }
            if a.schedule.is_none() && a.enabled.is_none() {
                return Err(CliError::Input(
                    "nothing to change: give --schedule and/or --enabled".into(),
                ));
            }
            let req = UpdateTimer {
                schedule: a.schedule,
                enabled: a.enabled,
            };
            let timer: Timer = KilnClient::new(&a.server)?
                .patch_json(&timer_path(&a.name, &a.timer_name), &req)
                .await?;
            print_timers(&[timer], a.output)
        }
        TimerCommand::Remove(a) => {
            KilnClient::new(&a.server)?
                .delete(&timer_path(&a.name, &a.timer_name))
                .await?;
            eprintln!("Timer '{}' of task '{}' removed", a.timer_name, a.name);
            Ok(())
        }
    }
}

/// A schedule the server would refuse stops here, with the same message.
fn check_schedule(schedule: &str) -> Result<(), CliError> {
    Cron::parse(schedule)
        .map(drop)
        .map_err(|e| CliError::Input(e.to_string()))
}

fn timers_path(task: &str) -> String {
    format!("/api/tasks/{task}/timers")
}

fn timer_path(task: &str, timer: &str) -> String {
    format!("{}/{timer}", timers_path(task))
}

fn print_timers(timers: &[Timer], output: OutputFormat) -> Result<(), CliError> {
    if output == OutputFormat::Json {
        return match timers {
            [one] => print_json(one),
            _ => print_json(&timers),
        };
    }
    print!("{}", timers_table(timers));
    Ok(())
}

/// NAME, SCHEDULE, ENABLED, NEXT, LAST (with the run the last firing queued).
pub(super) fn timers_table(timers: &[Timer]) -> String {
    let rows: Vec<[String; 5]> = timers
        .iter()
        .map(|t| {
            let last = match (t.last_fired_at, t.last_run_id) {
                (Some(at), Some(run)) => format!("{} ({run})", timestamp(at)),
                (Some(at), None) => format!("{} (no run)", timestamp(at)),
                (None, _) => "-".into(),
            };
            [
                t.name.clone(),
                t.schedule.clone(),
                t.enabled.to_string(),
                t.next_fire_at.map_or("-".into(), timestamp),
                last,
            ]
        })
        .collect();
    table(["NAME", "SCHEDULE", "ENABLED", "NEXT", "LAST"], &rows)
}
